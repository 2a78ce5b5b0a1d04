"""Checks of the attribution evaluations: completeness, deletion/insertion curves (against
curves computed here by brute force), the model-parameter randomisation check, and the
per-method summary."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from pellucid import Oracle
from pellucid.attribution._base import Attribution
from pellucid.attribution.evaluation import (
    completeness,
    deletion_insertion,
    evaluate_attributions,
    randomisation_check,
)
from pellucid.demo import CLASSES
from pellucid.errors import ParameterError

from . import _nets

pytestmark = pytest.mark.usefixtures("one_torch_thread")


gxi = _nets.reference_gradient_x_input


def linear_net(d=5, k=2, seed=0):
    torch.manual_seed(seed)
    return nn.Linear(d, k).double().eval()


# ------------------------------------------------------------------------------ completeness
def test_completeness_is_none_without_delta_and_measures_the_gap():
    net = linear_net()
    x = torch.randn(12, 5, dtype=torch.float64)
    attr = gxi(net, x)
    assert completeness(attr) is None

    # For a linear model with baseline 0, gradient × input sums exactly to f(x) - f(0).
    t = torch.as_tensor(attr.targets)
    with torch.no_grad():
        gap = (net(x) - net(torch.zeros_like(x))).gather(1, t[:, None]).squeeze(1).numpy()
    exact = attr.encoded.sum(axis=1) - gap
    res = completeness(dataclasses.replace(attr, delta=exact))
    assert res["max_abs_delta"] < 1e-10
    assert res["n_rows"] == 12

    # Attributions off by a known error per row: delta is that error, and the relative
    # figures are |error| / |f(x) - f(0)|.
    err = np.linspace(-0.2, 0.3, 12)
    enc = attr.encoded.copy()
    enc[:, 0] += err
    res = completeness(dataclasses.replace(attr, encoded=enc, delta=enc.sum(axis=1) - gap))
    rel = np.abs(err) / np.abs(gap)
    assert res["max_abs_delta"] == pytest.approx(np.abs(err).max())
    assert res["mean_relative"] == pytest.approx(rel.mean(), rel=1e-6)
    assert res["max_relative"] == pytest.approx(rel.max(), rel=1e-6)
    assert res["mean_abs_gap"] == pytest.approx(np.abs(gap).mean(), rel=1e-6)


# ------------------------------------------------------------------------------ deletion / insertion
def test_linear_model_attribution_order_beats_every_order():
    """On a linear model gradient × input is each feature's exact contribution relative to 0,
    so deleting in attribution order lowers the output at least as fast as any order; here
    every one of the 5! orders is computed independently."""
    d = 5
    net = linear_net(d)
    x = torch.randn(16, d, dtype=torch.float64) * 2
    attr = gxi(net, x)
    res = deletion_insertion(net, x, attr, baseline=0.0, n_random=3, random_state=1)
    t = torch.as_tensor(attr.targets)

    perms = np.array(list(itertools.permutations(range(d))))  # (120, d)
    # Brute force: for every row, order and step, the input with the first `step` features of
    # the order set to 0 (deletion) or only those kept (insertion).
    steps = np.arange(d + 1)
    first = (np.argsort(perms, axis=1)[:, None, :] < steps[None, :, None])  # (orders, steps, d)
    xs = x.numpy()[:, None, None, :]
    with torch.no_grad():
        dele = net(torch.as_tensor(np.where(first[None], 0.0, xs))).numpy()
        ins = net(torch.as_tensor(np.where(first[None], xs, 0.0))).numpy()
    idx = t.numpy()[:, None, None, None]
    dele = np.take_along_axis(dele, idx, axis=3)[..., 0]  # (rows, orders, steps)
    ins = np.take_along_axis(ins, idx, axis=3)[..., 0]

    assert res.fractions.tolist() == pytest.approx((steps / d).tolist())
    tol = 1e-9
    assert np.all(res.deletion[:, None, :] <= dele + tol)
    assert np.all(res.insertion[:, None, :] >= ins - tol)
    # The attribution order's curve is the brute-force curve of the sorted order.
    order = np.argsort(-attr.values, axis=1, kind="stable")
    which = np.array([np.flatnonzero((perms == o).all(axis=1))[0] for o in order])
    np.testing.assert_allclose(res.deletion, dele[np.arange(len(x)), which], atol=1e-9)
    np.testing.assert_allclose(res.insertion, ins[np.arange(len(x)), which], atol=1e-9)
    # Ends: nothing deleted is f(x); everything deleted is f(baseline).
    np.testing.assert_allclose(res.deletion[:, 0], dele[:, 0, 0])
    np.testing.assert_allclose(res.deletion[:, -1], ins[:, 0, 0])
    # AUCs by the trapezoid rule, and the ranking beats random orders.
    assert res.deletion_auc == pytest.approx(np.mean(np.trapezoid(res.deletion, steps / d, axis=1)))
    assert res.deletion_auc <= res.random_deletion_auc
    assert res.insertion_auc >= res.random_insertion_auc
    # The random reference curves are mean curves over genuine orders: within the brute-force envelope.
    assert np.all(res.random_deletion >= dele.min(axis=1) - tol)
    assert np.all(res.random_deletion <= dele.max(axis=1) + tol)


def test_image_patches_match_a_brute_force_loop():
    net = _nets.cnn(10, seed=1)
    torch.manual_seed(3)
    x = torch.rand(3, 1, 8, 8)
    attr = gxi(net, x)
    res = deletion_insertion(net, x, attr, patch=2, baseline=0.5)
    assert res.deletion.shape == (3, 17) and res.params["positions"] == 16
    # Independent loop: rank the 2x2 patches by summed attribution, blank them one by one.
    for i in range(3):
        a = attr.values[i, 0]
        patch_scores = a.reshape(4, 2, 4, 2).sum(axis=(1, 3)).ravel()
        order = np.argsort(-patch_scores, kind="stable")
        img = x[i].clone()
        expected = []
        with torch.no_grad():
            expected.append(float(net(img[None])[0, attr.targets[i]]))
            for p in order:
                r, c = divmod(int(p), 4)
                img[:, 2 * r:2 * r + 2, 2 * c:2 * c + 2] = 0.5
                expected.append(float(net(img[None])[0, attr.targets[i]]))
        np.testing.assert_allclose(res.deletion[i], expected, rtol=1e-5, atol=1e-5)


def test_digits_gradient_x_input_beats_random_deletion():
    x, _ = _nets.digits()
    net = _nets.digits_cnn()
    attr = gxi(net, x[:80])
    res = deletion_insertion(net, x[:80], attr, n_random=2)
    assert res.params["steps"] == 20 and res.deletion.shape == (80, 21)
    assert res.deletion_auc < res.random_deletion_auc
    assert res.insertion_auc > res.random_insertion_auc


def test_sklearn_oracle_on_raw_rows_is_asked_in_one_batch():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    n = 40
    df = pd.DataFrame({"x": rng.normal(size=n), "k": rng.integers(0, 10, n),
                       "c": rng.choice(["a", "b", "c"], n).astype(object)})
    y = np.where(df.x + (df.c == "a") > 0.5, "yes", "no")
    pipe = make_pipeline(ColumnTransformer([("n", StandardScaler(), ["x", "k"]),
                                            ("c", OneHotEncoder(), ["c"])]), LogisticRegression()).fit(df, y)
    oracle = Oracle(pipe)
    # Any attribution will do: the curves must follow its order on the oracle's answers.
    values = rng.normal(size=(n, 3))
    attr = Attribution(values=values, method="given", features=("x", "k", "c"), targets=np.ones(n, dtype=int),
                       outputs=np.zeros(n), encoded=values)
    oracle.reset_counter()
    res = deletion_insertion(oracle, df, attr, target="yes")
    assert oracle.n_calls == 1  # every row and step of all four curves in one query
    assert oracle.n_queries == n * 4 * 4

    base = {"x": df.x.median(), "k": int(round(df.k.median())), "c": df.c.mode().iloc[0]}
    col = list(oracle.classes_).index("yes")
    for i in (0, 7, 21):
        order = np.argsort(-values[i], kind="stable")
        rows = [df.iloc[[i]].copy()]
        for j in order:
            nxt = rows[-1].copy()
            nxt[attr.features[j]] = base[attr.features[j]]
            rows.append(nxt)
        expected = pipe.predict_proba(pd.concat(rows, ignore_index=True))[:, col]
        np.testing.assert_allclose(res.deletion[i], expected, rtol=1e-12)
        ins_rows = [pd.DataFrame([base])[df.columns]]
        for j in order:
            nxt = ins_rows[-1].copy()
            nxt[attr.features[j]] = df.iloc[i][attr.features[j]]
            ins_rows.append(nxt)
        expected = pipe.predict_proba(pd.concat(ins_rows, ignore_index=True))[:, col]
        np.testing.assert_allclose(res.insertion[i], expected, rtol=1e-12)


def test_array_and_frame_inputs_agree_for_an_oracle_without_preprocess():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(4)
    x = rng.normal(size=(24, 3))
    model = LogisticRegression().fit(x, (x[:, 0] - x[:, 2] > 0).astype(int))
    oracle = Oracle(model)
    values = rng.normal(size=(24, 3))
    attr = Attribution(values=values, method="given", features=("x0", "x1", "x2"), targets=None,
                       outputs=np.zeros(24), encoded=values)
    on_array = deletion_insertion(oracle, x, attr, random_state=3)
    frame = pd.DataFrame(x)  # integer column labels, as the model was fitted on an array
    on_frame = deletion_insertion(oracle, frame, dataclasses.replace(attr, features=("0", "1", "2")),
                                  random_state=3)
    for curve in ("deletion", "insertion", "random_deletion", "random_insertion"):
        np.testing.assert_allclose(getattr(on_array, curve), getattr(on_frame, curve), rtol=1e-12)
    # No target and no attributed class: the predicted class is followed.
    pred = model.predict(x)
    np.testing.assert_allclose(on_array.deletion[:, 0], model.predict_proba(x)[np.arange(24), pred])


def test_credit_oracle_curves_on_raw_rows(credit, credit_net):
    X, _ = credit
    net, pre = credit_net
    oracle = Oracle(net, pre, classes=list(CLASSES))
    rows = X.iloc[:30]
    attr = gxi(oracle, rows)
    base = X.iloc[[100]]
    res = deletion_insertion(oracle, rows, attr, baseline=base)
    start = oracle.query(rows)[np.arange(30), attr.targets]
    end = oracle.query(pd.concat([base] * 30))[np.arange(30), attr.targets]
    np.testing.assert_allclose(res.deletion[:, 0], start, rtol=1e-6)
    np.testing.assert_allclose(res.deletion[:, -1], end, rtol=1e-6)
    np.testing.assert_allclose(res.insertion[:, 0], end, rtol=1e-6)
    np.testing.assert_allclose(res.insertion[:, -1], start, rtol=1e-6)
    assert res.deletion.shape == (30, len(X.columns) + 1)


# ------------------------------------------------------------------------------ errors
def test_deletion_errors_name_the_problem():
    net = linear_net()
    x = torch.randn(10, 5, dtype=torch.float64)
    attr = gxi(net, x)
    with pytest.raises(ParameterError, match="10 rows but inputs has 6"):
        deletion_insertion(net, x[:6], attr)
    with pytest.raises(ParameterError, match="steps"):
        deletion_insertion(net, x, attr, steps=0)
    with pytest.raises(ParameterError, match="baseline has shape"):
        deletion_insertion(net, x, attr, baseline=np.zeros(3))
    frame = pd.DataFrame(x.numpy(), columns=list("abcde"))
    oracle = Oracle(lambda d: d.to_numpy() @ np.ones(5), task="regression")
    renamed = dataclasses.replace(attr, features=("a", "b", "c", "zz", "e"))
    with pytest.raises(ParameterError, match=r"\['zz'\]"):
        deletion_insertion(oracle, frame, renamed)
    with pytest.raises(ParameterError, match=r"no value for features \['e'\]"):
        deletion_insertion(oracle, frame, dataclasses.replace(attr, features=tuple("abcde")),
                           baseline={"a": 0, "b": 0, "c": 0, "d": 0})


def test_randomisation_check_refuses_non_torch_models():
    oracle = Oracle(lambda d: d.to_numpy().sum(axis=1), task="regression")
    with pytest.raises(ParameterError, match="torch"):
        randomisation_check(gxi, oracle, pd.DataFrame({"a": [1.0, 2.0]}))
    with pytest.raises(ParameterError, match="torch"):
        randomisation_check(gxi, object(), np.zeros((2, 2)))


# ------------------------------------------------------------------------------ randomisation
def _hooks(module):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(getattr(m, "_backward_pre_hooks", {})) for m in module.modules())


def test_randomisation_mlp_similarity_falls_and_model_is_untouched():
    net = _nets.mlp()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    hooks = _hooks(net)
    rng_state = torch.get_rng_state()
    x = torch.randn(64, 6, generator=torch.Generator().manual_seed(0))
    res = randomisation_check(gxi, net, x, random_state=0)
    steps = res.steps
    assert list(steps["layer"][1:]) == ["4", "2", "0"]  # top-down
    assert steps["spearman_abs"].iloc[0] == pytest.approx(1.0)
    assert steps["spearman_abs"].iloc[-1] < 0.8
    assert steps["spearman"].iloc[-1] < 0.5
    assert res.passed == (res.final < 0.5)
    # The user's module: same weights, no hooks, eval mode; the global RNG untouched.
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert _hooks(net) == hooks == 0
    assert not net.training
    assert torch.equal(torch.get_rng_state(), rng_state)
    # Same seed, same table, whatever the global RNG holds; another seed, other weights.
    torch.randn(100)
    again = randomisation_check(gxi, net, x, random_state=0)
    pd.testing.assert_frame_equal(steps, again.steps)
    other = randomisation_check(gxi, net, x, random_state=1)
    assert not np.allclose(other.steps["spearman"], steps["spearman"])


def test_randomisation_digits_cnn_signed_similarity_falls():
    x, _ = _nets.digits()
    net = _nets.digits_cnn()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    res = randomisation_check(gxi, net, x[:40], cascade=True)
    last = res.steps.iloc[-1]
    assert res.steps["n_randomised"].iloc[-1] == 5
    assert last["spearman"] < 0.5 and last["cosine"] < 0.5
    assert last["spearman_abs"] < 0.98  # |gradient × input| keeps the digit's shape (Adebayo et al.)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert _hooks(net) == 0
    independent = randomisation_check(gxi, net, x[:40], cascade=False)
    assert independent.passed is None and (independent.steps["n_randomised"][1:] == 1).all()


def test_randomisation_with_a_torch_oracle_keeps_classes(credit, credit_net):
    X, _ = credit
    net, pre = credit_net
    oracle = Oracle(net, pre, classes=list(CLASSES))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    seen = []

    def spy(model, inputs, target=None):
        seen.append((model, target))
        return gxi(model, inputs, target=target)

    res = randomisation_check(spy, oracle, X.iloc[:20])
    assert len(seen) == 1 + 3
    assert seen[0][0] is oracle
    for model, target in seen[1:]:
        assert isinstance(model, Oracle) and model is not oracle and model.model is not net
        assert model.preprocess is pre and list(model.classes_) == list(CLASSES)
        assert set(target) <= set(CLASSES) and len(target) == 20  # the trained model's class per row
        # The same preprocess: the encoded columns of each feature, found once, come along.
        assert model.__dict__["_attribution_maps"] == oracle.__dict__["_attribution_maps"]
        assert model.__dict__["_attribution_maps"] is not oracle.__dict__["_attribution_maps"]
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert res.steps["spearman"].iloc[-1] < 0.5


def test_randomisation_compares_the_trained_models_attributions_when_given(credit, credit_net):
    X, _ = credit
    net, pre = credit_net
    oracle = Oracle(net, pre, classes=list(CLASSES))
    seen = []

    def spy(model, inputs, target=None):
        seen.append(model)
        return gxi(model, inputs, target=target)

    computed = randomisation_check(gxi, oracle, X.iloc[:20])
    given = randomisation_check(spy, oracle, X.iloc[:20], original=gxi(oracle, X.iloc[:20]))
    assert len(seen) == 3 and all(m is not oracle for m in seen)  # only the randomised copies
    pd.testing.assert_frame_equal(computed.steps, given.steps)
    # Another row's attributions in first place: the comparison sees them.
    swapped = gxi(oracle, X.iloc[[1, 0, *range(2, 20)]])
    moved = randomisation_check(gxi, oracle, X.iloc[:20], original=swapped)
    assert not np.allclose(moved.steps["spearman"], computed.steps["spearman"])
    with pytest.raises(ParameterError, match="original holds attributions of 30 rows; the inputs have 20"):
        randomisation_check(gxi, oracle, X.iloc[:20], original=gxi(oracle, X.iloc[:30]))
    with pytest.raises(ParameterError, match="original must be the Attribution.*ndarray"):
        randomisation_check(gxi, oracle, X.iloc[:20], original=np.zeros((20, 11)))


def test_the_summary_s_shapley_check_is_the_check_computed_afresh():
    """measure() hands the randomised-network check the Shapley values it computed for the
    first rows; they must be the ones the check computes itself, exact (11 players) and
    sampled (16 players, permutations seeded by the row's place)."""
    from pellucid.attribution import METHODS
    from pellucid.attribution.summary import SHAPLEY_SANITY_ROWS, _bound, _options, measure

    for d in (11, 16):
        torch.manual_seed(d)
        net = nn.Sequential(nn.Linear(d, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
        rng = np.random.default_rng(d)
        X = pd.DataFrame(rng.normal(size=(40, d)), columns=[f"x{j}" for j in range(d)])
        oracle = Oracle(net, classes=["no", "yes"], verbose=0)
        background = X.iloc[::2].reset_index(drop=True)
        got = measure(oracle, X, methods=["shapley"], max_rows=40, shapley_rows=24, random_state=3,
                      background=background)
        head = got.rows_of["shapley"].iloc[:SHAPLEY_SANITY_ROWS]
        method = _bound(METHODS["shapley"], _options("shapley", head, "median", 3, background))
        fresh = randomisation_check(method, oracle, head, random_state=3, verbose=0).to_dict()
        fresh["n_rows"] = SHAPLEY_SANITY_ROWS
        assert got.attrs["shapley"].params["shapley_method"] == ("exact" if d == 11 else "permutation")
        assert got.checks["shapley"] == fresh


# ------------------------------------------------------------------------------ summary
def test_evaluate_attributions_table_and_json():
    net = _nets.mlp()
    x = torch.randn(30, 6, generator=torch.Generator().manual_seed(1))
    pre = gxi(net, x)
    ev = evaluate_attributions(net, x, {"gxi": gxi, "precomputed": pre}, baseline=0.0, sanity_rows=16)
    t = ev.table.set_index("method")
    assert list(t.index) == ["gxi", "precomputed"]
    # Same attributions, same faithfulness; only the callable gets the sanity check and a time.
    assert t.loc["gxi", "deletion_auc"] == pytest.approx(t.loc["precomputed", "deletion_auc"])
    assert t.loc["gxi", "deletion_auc"] == pytest.approx(deletion_insertion(net, x, pre, baseline=0.0).deletion_auc)
    assert math.isnan(t.loc["precomputed", "sanity_spearman_abs"]) and math.isnan(t.loc["precomputed", "time_s"])
    assert t.loc["gxi", "time_s"] >= 0 and not math.isnan(t.loc["gxi", "sanity_spearman_abs"])
    assert ev.details["gxi"]["sanity"].params["rows"] == 16
    assert "precomputed" in ev.details["precomputed"]["sanity_skipped"]
    assert math.isnan(t.loc["gxi", "completeness_max_relative"])  # gradient × input claims no completeness
    text = json.dumps(ev.to_dict(), allow_nan=False)
    assert "deletion_auc" in text
    with pytest.raises(ParameterError, match="methods"):
        evaluate_attributions(net, x, {})


def test_with_the_package_methods_on_a_linear_model():
    """Integrated Gradients from a zero baseline equals gradient × input on a linear model:
    complete, and the same curves."""
    gradients = pytest.importorskip("pellucid.attribution.gradients")
    net = linear_net(4)
    x = torch.randn(20, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    ev = evaluate_attributions(net, x, {"ig": gradients.integrated_gradients, "gxi": gxi}, baseline=0.0,
                               sanity_rows=8)
    ig = ev.details["ig"]["attribution"]
    comp = ev.details["ig"]["completeness"]
    assert comp is not None and comp["max_abs_delta"] < 1e-6
    np.testing.assert_allclose(ig.values, ev.details["gxi"]["attribution"].values, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ev.details["ig"]["faithfulness"].deletion, ev.details["gxi"]["faithfulness"].deletion,
                               rtol=1e-6, atol=1e-9)
