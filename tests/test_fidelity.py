import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import f1_score, r2_score

from pellucid.errors import ParameterError
from pellucid.extraction import distill
from pellucid.fidelity import evaluate, wilson_interval
from pellucid.surrogates import DecisionTree

from .conftest import mixed_frame
from .test_tree import mixed_oracle


@pytest.mark.parametrize("k, n", [(0, 10), (3, 10), (10, 10), (950, 1000), (1, 3)])
@pytest.mark.parametrize("conf", [0.9, 0.95, 0.99])
def test_wilson_interval_matches_scipy(k, n, conf):
    ref = binomtest(k, n).proportion_ci(confidence_level=conf, method="wilson")
    assert wilson_interval(k, n, conf) == pytest.approx((ref.low, ref.high), abs=1e-12)
    low, high = wilson_interval(k, n, conf)
    assert low <= k / n <= high  # exactly, also at 0 and 1 where rounding used to leave p outside


@pytest.mark.parametrize("n", [126, 300, 1234])
def test_wilson_interval_ends_at_0_and_1_for_perfect_counts(n):
    assert wilson_interval(n, n)[1] == 1.0 and wilson_interval(0, n)[0] == 0.0


@pytest.fixture(scope="module")
def fitted():
    d = distill(mixed_oracle(), mixed_frame(1200), n=3000, random_state=0)
    return d, DecisionTree(max_leaf_nodes=6).fit(d)


def test_classification_fidelity_against_sklearn(fitted):
    d, tree = fitted
    f = evaluate(tree, rows=d)
    hold = d.holdout
    net = hold.outputs.argmax(1)
    sur_p = tree.predict_proba(hold.rows)
    sur = sur_p.argmax(1)
    assert f.n == len(hold) and f.rows == "holdout"
    assert f.agreement == pytest.approx(np.mean(net == sur))
    assert f.macro_f1 == pytest.approx(f1_score(net, sur, average="macro", labels=[0, 1, 2], zero_division=0))
    assert f.r2 == pytest.approx(r2_score(hold.outputs, sur_p, multioutput="variance_weighted"))
    lo, hi = f.agreement_ci
    assert lo < f.agreement < hi
    for c, entry in enumerate(f.per_class):
        assert entry["n_network"] == np.sum(net == c)
        if entry["agreement"] is not None:
            assert entry["agreement"] == pytest.approx(np.mean(sur[net == c] == c))
    # Per rule: coverage and precision on the held-out rows, from the rules' own masks.
    cov = tree.rules_.coverage_matrix(hold.rows)
    for j, entry in enumerate(f.rules):
        m = cov[:, j]
        assert entry["coverage"] == pytest.approx(m.mean())
        if m.any():
            want = np.mean(np.asarray(d.classes)[net[m]] == tree.rules_.rules[j].outcome)
            assert entry["precision"] == pytest.approx(want)
    assert sum(e["coverage"] for e in f.rules) == pytest.approx(1.0 - f.default["coverage"])
    assert f.complexity["n_rules"] == tree.rules_.n_rules


def test_evaluate_on_a_frame_queries_the_network(fitted):
    d, tree = fitted
    oracle = mixed_oracle()
    df = mixed_frame(300, seed=9)
    f = evaluate(tree, oracle, df)
    assert oracle.n_queries == 300 and f.rows == "given"
    net = oracle.predict(df)
    assert f.agreement == pytest.approx(np.mean(tree.predict(df) == net))


def test_regression_fidelity():
    d = distill(mixed_oracle("regression"), mixed_frame(800), n=2000)
    tree = DecisionTree(max_leaf_nodes=8).fit(d)
    f = evaluate(tree, rows=d)
    hold = d.holdout
    pred = tree.predict(hold.rows)
    assert f.agreement is None
    assert f.r2 == pytest.approx(r2_score(hold.outputs, pred))
    assert f.mae == pytest.approx(np.mean(np.abs(pred - hold.outputs)))


def test_evaluate_errors(fitted):
    d, tree = fitted
    with pytest.raises(ParameterError, match="needs rows"):
        evaluate(tree)
    with pytest.raises(ParameterError, match="oracle"):
        evaluate(tree, None, mixed_frame(10))
