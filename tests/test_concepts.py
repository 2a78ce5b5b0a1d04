"""TCAV (pellucid.attribution.concepts): a concept the label depends on is significant and an
irrelevant one is not; directional derivatives against a hand computation with autograd; the
batched logistic regression against scikit-learn; the rule parser against pandas; bad input."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch import nn

from pellucid import Oracle
from pellucid.attribution.concepts import (
    TCAVResult,
    directional_derivatives,
    fit_logistic,
    parse_rule,
    rule_mask,
    tcav,
    tcav_many,
)
from pellucid.errors import ParameterError, PellucidWarning
from pellucid.extraction.rules import Condition, Rule

from ._nets import cnn, mlp

pytestmark = pytest.mark.usefixtures("one_torch_thread")

COLS = [f"x{i}" for i in range(1, 7)]


def table(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 6)), columns=COLS)
    return X, ((X.x1 + X.x2) > 1).astype(int).to_numpy()


def trained(seed: int) -> nn.Module:
    """6-16-16-2 MLP on label = (x1 + x2 > 1); weight decay pushes the unused inputs' weights down."""
    X, y = table(3000, seed)
    net = mlp(6, 2, 16, seed=seed).train()
    opt = torch.optim.Adam(net.parameters(), 1e-2, weight_decay=1e-2)
    x, t = torch.tensor(X.to_numpy(), dtype=torch.float32), torch.tensor(y)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), t).backward()
        opt.step()
    return net.eval()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_relevant_concept_significant_irrelevant_not(seed):
    net = trained(seed)
    R, _ = table(1000, 100 + seed)
    T, yt = table(2000, 200 + seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = tcav_many(net, "1", {"A": "x1 > 0.8", "B": "x5 > 0.8"}, R, T[yt == 1], 1, repeats=20, random_state=seed)
    # The irrelevant concept may be one the layer barely separates: it is told, the relevant one never.
    assert all("concept 'B'" in str(w.message) for w in caught if issubclass(w.category, PellucidWarning))
    a, b = res["A"], res["B"]
    assert a.significant and a.p_value < 0.05 and a.score > 0.9
    assert not b.significant and b.p_value > 0.05
    assert a.n_tests == 2 and a.p_value == pytest.approx(min(1.0, 2 * a.p_value_raw))
    assert a.cav_accuracy > 0.7 and 0.4 < a.random_accuracy < 0.6
    assert len(a.scores) == len(a.random_scores) == len(a.derivatives) == len(a.random_derivatives) == 20
    # The test is on mean directional derivatives: recompute them and the p-value with scipy.
    T1 = torch.tensor(T[yt == 1].to_numpy(), dtype=torch.float32)
    for r in (a, b):
        d = directional_derivatives(net, "1", T1, 1, np.concatenate([r.cavs, r.random_cavs]))
        np.testing.assert_allclose(np.r_[r.derivatives, r.random_derivatives], d.mean(axis=0), rtol=1e-4, atol=1e-6)
        assert r.p_value_raw == pytest.approx(stats.ttest_ind(r.derivatives, r.random_derivatives).pvalue, rel=1e-9)
    # tcav alone gives the same scores (each concept draws from its own generator), uncorrected p
    one = tcav(net, "1", "x1 > 0.8", R, T[yt == 1], 1, repeats=20, random_state=seed)
    np.testing.assert_array_equal(one.scores, a.scores)
    assert one.p_value == pytest.approx(a.p_value_raw)
    d = json.loads(json.dumps(one.to_dict()))
    assert d["layer"] == "1" and d["target"] == 1 and d["repeats"] == 20 and d["concept"] == "x1 > 0.8"


def test_sign_statistic_is_kim_et_al_test_on_the_same_cavs():
    net = trained(1)
    R, _ = table(800, 11)
    T, yt = table(800, 12)
    d = tcav(net, "1", "x1 > 0.8", R, T[yt == 1], 1, repeats=6, random_state=4)
    s = tcav(net, "1", "x1 > 0.8", R, T[yt == 1], 1, repeats=6, random_state=4, statistic="sign")
    np.testing.assert_array_equal(d.cavs, s.cavs)  # same draws, same CAVs: only the test differs
    np.testing.assert_array_equal(d.scores, s.scores)
    assert (d.statistic, s.statistic) == ("derivative", "sign")
    with warnings.catch_warnings():  # sign shares of 1.0 every repeat: scipy warns of their zero spread
        warnings.simplefilter("ignore", RuntimeWarning)
        p = stats.ttest_ind(s.scores, s.random_scores).pvalue
    assert s.p_value == pytest.approx(p, rel=1e-9)
    with pytest.raises(ParameterError, match="statistic must be"):
        tcav(net, "1", "x1 > 0.8", R, T[yt == 1], 1, repeats=3, statistic="magnitude")


def test_same_seed_same_result_and_example_rows():
    net = trained(2)
    R, _ = table(600, 5)
    T, yt = table(600, 6)
    rows = R[R.x1 > 0.8]
    r1 = tcav(net, "1", rows, R, T[yt == 1], 1, repeats=5, random_state=3)
    r2 = tcav(net, "1", rows, R, T[yt == 1], 1, repeats=5, random_state=3)
    np.testing.assert_array_equal(r1.scores, r2.scores)
    np.testing.assert_array_equal(r1.random_scores, r2.random_scores)
    assert r1.description == f"{len(rows)} example rows" and r1.n_pool == len(R)


def test_oracle_probability_and_labels():
    net = trained(2)
    R, _ = table(600, 5)
    T, yt = table(600, 6)
    oracle = Oracle(net, task="classification", classes=["no", "yes"])
    r = tcav(oracle, "1", "x1 > 0.8", R, T[yt == 1], "yes", repeats=5)
    assert r.target == "yes" and r.target_index == 1 and r.output == "probability"
    with pytest.raises(ParameterError, match="target 'maybe'"):
        tcav(oracle, "1", "x1 > 0.8", R, T, "maybe", repeats=5)


# ---------------------------------------------------------------------------- the core, by hand
def test_directional_derivative_sign_share_matches_autograd():
    net = mlp(6, 3, 16, seed=4)
    x = torch.randn(40, 6, generator=torch.Generator().manual_seed(0))
    v = torch.randn(3, 16, generator=torch.Generator().manual_seed(1)).numpy()
    got = directional_derivatives(net, "2", x, 2, v)
    # By hand: h = net[:3](x); out = net[3:](h); d out[:, 2] / d h . v
    h = net[:3](x).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(net[3:](h)[:, 2].sum(), h)
    want = (g.double() @ torch.as_tensor(v, dtype=torch.float64).T).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal((got > 0).mean(0), (want > 0).mean(0))


def test_tcav_scores_are_sign_shares_of_its_cavs():
    net = cnn(4, seed=0)  # a conv layer: activations flattened per row
    g = torch.Generator().manual_seed(0)
    x = torch.rand(60, 1, 8, 8, generator=g)
    concept = torch.rand(20, 1, 8, 8, generator=g) + 0.5
    res = tcav(net, "3", concept, x, x[:30], 1, repeats=3)
    dd = directional_derivatives(net, "3", x[:30], 1, np.concatenate([res.cavs, res.random_cavs]))
    shares = (dd > 0).mean(0)
    np.testing.assert_allclose(shares[:3], res.scores)
    np.testing.assert_allclose(shares[3:], res.random_scores)
    assert res.cavs.shape == (3, 16 * 8 * 8)
    np.testing.assert_allclose(np.linalg.norm(res.cavs, axis=1), 1.0)


def test_sign_shares_match_captum_tcav(tmp_path):
    """captum's TCAV with a classifier that returns our fixed CAV gives the same sign counts."""
    pytest.importorskip("captum")
    from captum.concept import TCAV, Classifier, Concept
    from torch.utils.data import DataLoader, TensorDataset

    net = mlp(6, 3, 16, seed=4)
    x = torch.randn(50, 6, generator=torch.Generator().manual_seed(0))
    v = torch.randn(16, generator=torch.Generator().manual_seed(1))

    class Fixed(Classifier):
        def __init__(self):
            pass

        def train_and_eval(self, dataloader, **kwargs):
            return {"accs": torch.tensor(1.0)}

        def weights(self):
            return torch.stack([v, -v])  # concept id 0 gets +v

        def classes(self):
            return [0, 1]

    def concept(i, name):
        data = DataLoader(TensorDataset(torch.randn(10, 6, generator=torch.Generator().manual_seed(i))), batch_size=10)
        return Concept(i, name, (b[0] for b in data))

    cap = TCAV(net, layers=["2"], classifier=Fixed(), save_path=str(tmp_path))
    out = cap.interpret(x, experimental_sets=[[concept(0, "c"), concept(1, "r")]], target=2)
    ref = float(next(iter(out.values()))["2"]["sign_count"][0])
    ours = float((directional_derivatives(net, "2", x, 2, v.numpy()) > 0).mean())
    assert ours == pytest.approx(ref)


def test_logistic_matches_sklearn():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 60, 5))
    x[:, :30, 0] += 1.0
    y = np.r_[np.ones(30), np.zeros(30)]
    w, b = fit_logistic(x, y, C=0.5)
    for i in range(4):
        clf = LogisticRegression(C=0.5, tol=1e-10, max_iter=5000).fit(x[i], y)
        np.testing.assert_allclose(w[i], clf.coef_[0], atol=1e-6)
        assert b[i] == pytest.approx(clf.intercept_[0], abs=1e-6)


# ---------------------------------------------------------------------------- rules
@pytest.fixture
def raw():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"debt_ratio": rng.random(200), "age": rng.integers(18, 80, 200),
                         "home": rng.choice(["rent", "own", "other"], 200), "monthly income": rng.normal(size=200)})


@pytest.mark.parametrize("text,query", [
    ("debt_ratio > 0.6", lambda d: d.debt_ratio > 0.6),
    ("debt_ratio > 0.6 and home == 'rent'", lambda d: (d.debt_ratio > 0.6) & (d.home == "rent")),
    ("age >= 40 and age<50", lambda d: (d.age >= 40) & (d.age < 50)),
    ('home != "own"', lambda d: d.home != "own"),
    ("home in ['rent', 'other'] AND debt_ratio <= .3", lambda d: d.home.isin(["rent", "other"]) & (d.debt_ratio <= .3)),
    ("home not in {'rent'}", lambda d: ~d.home.isin(["rent"])),
    ("age == 30", lambda d: d.age == 30),
    ("`monthly income` > -0.5", lambda d: d["monthly income"] > -0.5),
])
def test_rule_selects_what_pandas_selects(raw, text, query):
    np.testing.assert_array_equal(rule_mask(text, raw), query(raw).to_numpy())


def test_rule_objects(raw):
    c = Condition("debt_ratio", ">", 0.6)
    np.testing.assert_array_equal(rule_mask(c, raw), (raw.debt_ratio > 0.6).to_numpy())
    r = Rule((c, Condition("home", "in", ("rent",))), outcome=None)
    np.testing.assert_array_equal(rule_mask(r, raw), ((raw.debt_ratio > 0.6) & (raw.home == "rent")).to_numpy())


@pytest.mark.parametrize("text,match", [
    ("debt > 0.6", "feature 'debt'"),
    ("debt_ratio = 0.6", r"'=' .*==|=="),
    ("debt_ratio > 0.6 or age > 3", "'or' is not supported"),
    ("debt_ratio >", "end of the rule"),
    ("debt_ratio > high", "'high'"),
    ("home > 'rent'", "non-number"),
    ("__import__('os').system('true')", "expected an operator|unexpected character"),
    ("debt_ratio > 0.6 age > 3", "expected 'and'"),
    ("home in ['rent'", "expected ','"),
])
def test_bad_rules_name_the_token(raw, text, match):
    with pytest.raises(ParameterError, match=match):
        rule_mask(text, raw)


def test_rule_kind_checks(raw):
    with pytest.raises(ParameterError, match="'home'.*not numeric"):
        rule_mask(parse_rule("home > 3"), raw)
    with pytest.raises(ParameterError, match="numeric feature 'age'"):
        rule_mask("age == 'old'", raw)


# ---------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def small():
    net = mlp(6, 2, 8, seed=0)
    X, y = table(300, 0)
    return net, X


def test_unknown_layer_lists_names(small):
    net, X = small
    with pytest.raises(ParameterError, match=r"no layer named 'fc'.*\['0 \(Linear\)', '1 \(ReLU\)', '2 \(Linear\)', '3 \(ReLU\)', '4 \(Linear\)'\]"):
        tcav(net, "fc", "x1 > 0.8", X, X, 1)


def test_too_few_concept_rows(small):
    net, X = small
    with pytest.raises(ParameterError, match="selects 0 of the 300 rows.*at least 5"):
        tcav(net, "1", "x1 > 10", X, X, 1)
    with pytest.raises(ParameterError, match="has 3 example rows"):
        tcav(net, "1", X.iloc[:3], X, X, 1)


def test_target_not_a_class(small):
    net, X = small
    with pytest.raises(ParameterError, match="target 7"):
        tcav(net, "1", "x1 > 0.8", X, X, 7)
    with pytest.raises(ParameterError, match="one class"):
        tcav(net, "1", "x1 > 0.8", X, X, [0, 1])


def test_mismatched_columns(small):
    net, X = small
    with pytest.raises(ParameterError, match="concept 'c' has columns.*missing \\['x6'\\]"):
        tcav(net, "1", X.drop(columns="x6"), X, X, 1, name="c")
    with pytest.raises(ParameterError, match="random_rows has columns"):
        tcav(net, "1", "x1 > 0.8", X.rename(columns={"x1": "z"}), X, 1)


def test_rule_needs_a_table_and_settings(small):
    net, X = small
    with pytest.raises(ParameterError, match="must then be a DataFrame"):
        tcav(net, "1", "x1 > 0.8", X.to_numpy(), X.to_numpy(), 1)
    with pytest.raises(ParameterError, match="repeats"):
        tcav(net, "1", "x1 > 0.8", X, X, 1, repeats=1)
    with pytest.raises(ParameterError, match="random pool"):
        tcav(net, "1", X.iloc[:50], X.iloc[:8], X, 1)


def test_unseparable_concept_warns(small):
    net, X = small
    from pellucid.errors import PellucidWarning

    with pytest.warns(PellucidWarning, match="not meaningful"):
        r = tcav(net, "1", X.sample(60, random_state=0), X, X, 1, repeats=4)
    assert isinstance(r, TCAVResult) and not r.separable
