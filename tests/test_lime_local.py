"""Batched LIME: known slopes, agreement with the lime package, the batched ridge against
scikit-learn per row, held-out R² by hand, credit table (categories, NaN), errors, chunking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import Ridge

from pellucid import Oracle
from pellucid.demo import CLASSES
from pellucid.errors import ParameterError, SchemaError
from pellucid.extraction.samplers import _spread
from pellucid.surrogates.lime_local import lime, lime_stability

pytestmark = pytest.mark.usefixtures("one_torch_thread")

W = np.array([2.0, -1.0, 0.5, 0.0, 3.0])
COLS = list("abcde")


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(size=(1000, 5)) * [1, 2, 0.5, 1, 3] + [0, 1, 0, 0, 5], columns=COLS)


def linear_oracle() -> Oracle:
    net = torch.nn.Linear(5, 1)
    with torch.no_grad():
        net.weight.copy_(torch.tensor(W, dtype=torch.float32)[None])
        net.bias.fill_(0.3)
    return Oracle(torch.nn.Sequential(net, torch.nn.Flatten(0)), task="regression", verbose=0)


def logistic_oracle(w=W, b=-0.5) -> Oracle:
    net = torch.nn.Linear(len(w), 1)
    with torch.no_grad():
        net.weight.copy_(torch.tensor(w, dtype=torch.float32)[None])
        net.bias.fill_(b)
    return Oracle(torch.nn.Sequential(net, torch.nn.Sigmoid()), classes=[0, 1], output="proba", verbose=0)


def test_linear_model_slopes_are_recovered_in_raw_units(table):
    e = lime(linear_oracle(), table.iloc[:20], table, num_samples=1000)
    np.testing.assert_allclose(e.coef_raw.to_numpy(), np.tile(W, (20, 1)), rtol=2e-2, atol=2e-2)  # ridge shrinks a little
    e = lime(linear_oracle(), table.iloc[:20], table, num_samples=1000, ridge_alpha=0.0)
    np.testing.assert_allclose(e.coef_raw.to_numpy(), np.tile(W, (20, 1)), rtol=1e-5, atol=1e-5)
    assert (e.local_r2 > 0.9999).all()
    np.testing.assert_allclose(e.prediction_local, e.prediction_network, atol=1e-3)
    assert e.target.isna().all() and e.task == "regression"
    # The contribution of a numeric feature is its slope times its distance from the median.
    med = table.median().to_numpy()
    np.testing.assert_allclose(e.contributions.to_numpy(), W * (table.iloc[:20].to_numpy() - med), rtol=5e-3, atol=1e-3)


def test_logistic_local_slopes(table):
    w = W / table.std().to_numpy() / 3  # gentle enough that the neighbourhood sees a near-linear sigmoid
    oracle = logistic_oracle(w, b=-float(w @ table.mean().to_numpy()))
    rows = table.iloc[:15]
    e = lime(oracle, rows, table, num_samples=2000, target=1)
    p = oracle.query(rows)[:, 1]
    truth = (p * (1 - p))[:, None] * w[None]  # d sigmoid(w.x + b) / dx at the row
    np.testing.assert_allclose(e.coef_raw.to_numpy(), truth, atol=0.03 * np.abs(truth).max())
    assert list(e.target) == [1] * 15
    # The default target is each row's predicted class.
    d = lime(oracle, rows, table, num_samples=500)
    assert list(d.target) == list(np.where(p > 0.5, 1, 0))
    assert np.allclose(d.prediction_network, np.maximum(p, 1 - p))


def test_rankings_agree_with_the_lime_package_on_the_same_representation(table):
    from lime.lime_tabular import LimeTabularExplainer

    w = np.array([1.5, -0.9, 0.3, 0.0, 0.6])  # per standard deviation after scaling below
    scaled = w / table.std().to_numpy()
    oracle = logistic_oracle(scaled, b=-float(scaled @ table.mean().to_numpy()))
    rows = table.iloc[:6]
    ours = lime(oracle, rows, table, num_samples=5000, discretize="quartile", target=1)
    ex = LimeTabularExplainer(table.to_numpy(), mode="classification", feature_names=COLS, random_state=0,
                              discretize_continuous=True, discretizer="quartile")
    for i in range(len(rows)):
        got = ex.explain_instance(rows.iloc[i].to_numpy(), oracle.predict_proba, labels=(1,), num_features=5,
                                  num_samples=5000)
        theirs = np.zeros(5)
        for j, v in got.local_exp[1]:
            theirs[j] = v
        mine = ours.coef.iloc[i].to_numpy()
        big = np.abs(theirs) > 0.02  # features the model uses: same sign, same ranking
        assert np.array_equal(np.sign(mine[big]), np.sign(theirs[big]))
        # Every pair of features lime ranks clearly apart (by more than sampling noise) is
        # ranked the same way here; nearly equal ones may swap.
        a, b = np.abs(mine), np.abs(theirs)
        clear = b[:, None] - b[None, :] > 0.04
        assert np.all((a[:, None] > a[None, :])[clear])
        assert np.argmax(a) == np.argmax(b)
        assert set(ours.representation.iloc[i]) == {"bin"}


def _recording(fn):
    seen = []

    def model(frame: pd.DataFrame) -> np.ndarray:
        seen.append(frame.copy())
        return fn(frame)

    return model, seen


def test_batched_ridge_equals_each_row_alone_and_r2_is_held_out(table):
    def f(frame):
        x = frame[COLS].to_numpy()
        return np.tanh(x @ W / 4) + 0.3 * x[:, 0] * x[:, 1]

    model, seen = _recording(f)
    oracle = Oracle(model, task="regression", verbose=0)
    rows = table.iloc[:5]
    e = lime(oracle, rows, table, num_samples=600, holdout=0.25, ridge_alpha=1.0, random_state=3)
    samples = pd.concat(seen, ignore_index=True)[COLS].to_numpy()
    s = 600
    n_hold = e.params["n_holdout"]
    n_fit = 1 + e.params["n_fit"]
    spread = np.array([_spread(None, table[c].to_numpy()) for c in COLS])
    width = 0.75 * np.sqrt(5)
    for i in range(len(rows)):  # the loop lives in the test only
        block = samples[i * s:(i + 1) * s]
        assert np.allclose(block[0], rows.iloc[i].to_numpy())
        z = (block - block[0]) / (0.1 * spread)  # the fit's unit: the noise, scale=0.1 spreads
        w = np.sqrt(np.exp(-(z ** 2).sum(1) / width ** 2))
        y = f(pd.DataFrame(block, columns=COLS))
        ridge = Ridge(alpha=1.0).fit(z[:n_fit], y[:n_fit], sample_weight=w[:n_fit])
        # Reported per spread; the representation is float32 (about 1e-7 relative).
        tol = 1e-4 * np.abs(ridge.coef_).max()
        np.testing.assert_allclose(e.coef.iloc[i] * 0.1, ridge.coef_, rtol=1e-4, atol=tol)
        np.testing.assert_allclose(e.intercept.iloc[i], ridge.intercept_, rtol=1e-6, atol=tol)
        assert e.score.iloc[i] == pytest.approx(ridge.score(z[:n_fit], y[:n_fit], sample_weight=w[:n_fit]), rel=1e-4)
        hz, hy, hw = z[n_fit:], y[n_fit:], w[n_fit:]
        assert len(hy) == n_hold
        pred = ridge.predict(hz)
        ybar = np.average(hy, weights=hw)
        r2 = 1 - np.sum(hw * (hy - pred) ** 2) / np.sum(hw * (hy - ybar) ** 2)
        assert e.local_r2.iloc[i] == pytest.approx(r2, rel=1e-4)
        assert e.local_r2.iloc[i] != pytest.approx(e.score.iloc[i], rel=1e-6)  # really other samples
        assert e.prediction_network.iloc[i] == pytest.approx(y[0])


def test_chunking_gives_identical_results(table, audit):
    oracle = linear_oracle()
    a = lime(oracle, table.iloc[:9], table, num_samples=300)
    b = lime(oracle, table.iloc[:9], table, num_samples=300, chunk_rows=2)
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.local_r2, b.local_r2, rtol=1e-10)
    credit_oracle, X, _, _ = audit
    rows = X.iloc[:6]
    a = lime(credit_oracle, rows, X, num_samples=300)
    b = lime(credit_oracle, rows, X, num_samples=300, chunk_rows=1)
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-9, atol=1e-12)
    assert a.reasons(3).equals(b.reasons(3))
    c = lime(credit_oracle, rows, X, num_samples=300, random_state=1)
    assert not np.allclose(a.coef, c.coef)


def test_credit_table_with_categories_and_missing_values(audit):
    oracle, X, _, _ = audit
    miss = X.index[X["income"].isna()][:2].tolist()
    rows = X.loc[X.index[:8].tolist() + miss]
    e = lime(oracle, rows, X, num_samples=1000)
    assert e.coef.shape == (10, X.shape[1]) and np.isfinite(e.coef.to_numpy()).all()
    assert set(e.target) <= set(CLASSES)
    assert (e.representation.loc[miss, "income"] == "missing").all()
    assert (e.representation["home"] == "category").all()
    assert e.coef_raw["home"].isna().all() and e.coef_raw["debt_ratio"].notna().all()
    texts = e.reasons(3)
    assert texts.shape == (10, 3)
    first = texts["reason_1"].dropna()
    assert len(first) >= 8 and first.str.contains(r"\(raises P\((?:good|bad)\) by ").all()
    assert list(e.describe_value("income", np.arange(8, 10))) == ["income is missing"] * 2
    assert (np.abs(e.prediction_local - e.prediction_network) < 0.2).mean() > 0.7
    tidy = e.to_frame()
    assert len(tidy) == 10 * X.shape[1] and {"feature", "coef", "contribution", "reason_rank"} <= set(tidy.columns)
    q = lime(oracle, rows, X, num_samples=1000, discretize="quartile", feature_selection="forward", num_features=4)
    assert ((q.coef.to_numpy() != 0).sum(axis=1) <= 4).all()
    assert (q.representation["debt_ratio"] == "bin").all()
    h = lime(oracle, rows, X, num_samples=1000, feature_selection="highest_weights", num_features=3)
    assert ((h.coef.to_numpy() != 0).sum(axis=1) <= 3).all()


def test_errors_are_clear(audit, table):
    oracle, X, _, _ = audit
    with pytest.raises(SchemaError, match="'colour'"):
        lime(oracle, X.iloc[:3].assign(colour="red"), X)
    bad = X.iloc[:4].copy()
    bad.loc[bad.index[2], "home"] = "boat"
    with pytest.raises(SchemaError, match=r"'home'.*'boat'.*index \[2\]"):
        lime(oracle, bad, X)
    with pytest.raises(SchemaError, match="missing column.*'income'"):
        lime(oracle, X.iloc[:3].drop(columns="income"), X)
    with pytest.raises(ParameterError, match="num_samples=20 is too small for 11 features"):
        lime(oracle, X.iloc[:3], X, num_samples=20)
    with pytest.raises(ParameterError, match="holdout"):
        lime(linear_oracle(), table.iloc[:2], table, holdout=1.5)
    with pytest.raises(ParameterError, match="needs num_features"):
        lime(linear_oracle(), table.iloc[:2], table, feature_selection="forward")
    with pytest.raises(ParameterError, match="target"):
        lime(linear_oracle(), table.iloc[:2], table, target=1)
    with pytest.raises(ParameterError, match="not one of the classes"):
        lime(oracle, X.iloc[:2], X, num_samples=300, target="maybe")


def test_stability_is_perfect_on_a_linear_model_and_seeds_differ(table):
    st = lime_stability(linear_oracle(), table.iloc[:10], table, seeds=(0, 1, 2), num_samples=500)
    assert st.set_identical == 1.0 and st.ordered_identical == 1.0
    assert len(st.per_row) == 10
    with pytest.raises(ParameterError, match="differ"):
        lime_stability(linear_oracle(), table.iloc[:2], table, seeds=(1, 1))


def test_drawn_only_neighbourhoods_hold_no_duplicate_samples():
    # With every feature drawn (quartile bins, categories) there is no numeric noise to mirror:
    # each neighbourhood sample must be a fresh draw, not a copy of its neighbour.
    from pellucid.surrogates.lime_local import _neighbourhoods, _plan, _Streams
    from pellucid.surrogates.local import check_local_rows

    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(size=300), "y": rng.uniform(0, 5, 300), "c": rng.choice(list("abcd"), 300)})
    schema, canon_ref, rows = check_local_rows(ref.iloc[:3], ref)
    plan = _plan(schema, canon_ref, rows, True)
    out = _neighbourhoods(plan, rows, 400, _Streams(0), 0.1, True, False)
    # "input": per feature, raw values (numbers within the drawn bin) or category codes, (rows, samples).
    samples = np.stack([np.asarray(col, dtype=float) for col in out["input"]], axis=-1)  # (rows, 1 + 400, p)
    for i in range(3):
        assert len(np.unique(samples[i, 1:], axis=0)) > 0.9 * 400
