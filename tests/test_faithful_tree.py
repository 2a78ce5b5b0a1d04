"""FaithfulTree: grown on the network's scores, pruned and re-thresholded for agreement."""

import numpy as np
import pandas as pd
import pytest

from pellucid import Oracle, distill
from pellucid.surrogates import DecisionTree, FaithfulTree
from pellucid.surrogates.faithful import GrownTree, _Loss, refine_thresholds

from .test_stability import wiggly_set


def mixed_set(n=900, seed=0, strategy=("observed", "perturb")):
    """Numeric, categorical and missing values; the network is a smooth score of all three."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "income": rng.gamma(3.0, 20.0, n).round(1),
        "age": rng.integers(18, 80, n),
        "home": rng.choice(["rent", "own", "mortgage", "other"], n).astype(object),
    })
    df.loc[rng.random(n) < 0.1, "income"] = np.nan

    def net(d):
        inc = d["income"].fillna(40.0).to_numpy()
        bonus = d["home"].map({"rent": -0.8, "own": 0.9, "mortgage": 0.4, "other": -0.2}).to_numpy()
        z = 0.05 * (inc - 55) + 0.04 * (d["age"].to_numpy() - 45) + bonus
        p = 1 / (1 + np.exp(-z))
        return np.c_[1 - p, p]

    oracle = Oracle(net, task="classification", classes=["deny", "grant"])
    return distill(oracle, df, strategy=list(strategy), n=n, random_state=seed)


def train_agreement(s, d):
    tr = d.train
    w = tr.weights * np.where(tr.source != "observed", s.synthetic_weight, 1.0)
    labels = np.asarray(d.classes, dtype=object)[tr.outputs.argmax(axis=1)]
    return float(np.average(s.predict(tr.rows) == labels, weights=w))


def test_rules_say_what_the_tree_does_on_every_training_row():
    d = mixed_set()
    for k in (2, 5, 12):
        s = FaithfulTree(max_leaf_nodes=k).fit(d)
        tree = s.estimator_.tree_
        X32 = s.encoder_.transform(d.train.rows).astype(np.float32)
        leaf = tree.descend(X32)
        by_tree = np.asarray(d.classes, dtype=object)[tree.value[leaf, 0, :].argmax(axis=1)]
        # Refined thresholds are float64 between float32 values; the printed rules must still
        # send every row where the tree sends it (missing values and category sets included).
        np.testing.assert_array_equal(s.predict(d.train.rows), by_tree)
        assert s.complexity()["n_rules"] <= k


def test_refined_threshold_of_a_stump_is_the_best_single_threshold():
    # One split on one feature: the refinement must find the threshold with the most
    # agreement, checked here against every midpoint by brute force.
    rng = np.random.default_rng(1)
    x = rng.normal(size=400).astype(np.float32)
    y = ((x + 0.6 * rng.normal(size=400)) > 0.3).astype(int)
    tree = GrownTree(np.array([1, -1, -1]), np.array([2, -1, -1]), np.array([0, -2, -2]), np.array([-1.0, 0, 0]),
                     np.zeros(3, dtype=bool), np.zeros((3, 1, 1)), np.zeros(3))
    loss = _Loss(y, np.ones(400), 2)
    refine_thresholds(tree, x[:, None], loss, n_candidates=10_000)
    v = np.unique(x).astype(np.float64)
    mids = (v[:-1] + v[1:]) / 2

    def agreement(t):
        left = x <= t
        return sum(max(np.sum(y[m] == 0), np.sum(y[m] == 1)) for m in (left, ~left))

    best = max(agreement(t) for t in mids)
    assert agreement(tree.threshold[0]) == best


def test_refining_never_loses_agreement_on_the_training_rows():
    for seed in range(3):
        d = mixed_set(seed=seed)
        for k in (3, 6, 10):
            a = train_agreement(FaithfulTree(max_leaf_nodes=k, refine=False).fit(d), d)
            b = train_agreement(FaithfulTree(max_leaf_nodes=k, refine=True).fit(d), d)
            assert b >= a - 1e-12, (seed, k, a, b)


def test_sibling_leaves_never_give_the_same_class():
    d = wiggly_set(n=800, seed=2)
    s = FaithfulTree(max_leaf_nodes=16).fit(d)
    nodes = {n.id: n for n in s.nodes_}
    for n in nodes.values():
        if n.left is not None and nodes[n.left].left is None and nodes[n.right].left is None:
            assert np.argmax(nodes[n.left].value) != np.argmax(nodes[n.right].value)


def test_without_its_three_steps_it_predicts_as_cart_does():
    # Labels, no growing beyond the budget, no refinement, every row at its weight: CART's tree.
    # Sibling leaves of one class are still merged, which changes the rules but no prediction.
    d = mixed_set(seed=3)
    for k in (4, 9):
        s = FaithfulTree(max_leaf_nodes=k, fit_to="labels", grow=1, refine=False, synthetic_weight=1.0,
                         min_samples_leaf=1).fit(d)
        ref = DecisionTree(max_leaf_nodes=k, random_state=0).fit(d)
        np.testing.assert_array_equal(s.predict(d.rows), ref.predict(d.rows))
        assert s.complexity()["n_rules"] <= ref.complexity()["n_rules"]


def test_synthetic_weight_zero_learns_from_the_observed_rows_alone():
    d = mixed_set(seed=5)
    a = FaithfulTree(max_leaf_nodes=8, synthetic_weight=0.0).fit(d)
    b = FaithfulTree(max_leaf_nodes=8, synthetic_weight=0.0).fit(d.subset(d.source == "observed"))
    np.testing.assert_array_equal(a.predict(d.rows), b.predict(d.rows))


def test_a_threshold_rule_is_recovered_on_few_rows():
    # The network says yes above 0.37; 60 observed rows leave a gap around it that the refined
    # threshold must fall in, whatever the squared error of the log-odds preferred.
    rng = np.random.default_rng(7)
    df = pd.DataFrame({"x": rng.uniform(0, 1, 60).round(3), "z": rng.normal(size=60)})
    oracle = Oracle(lambda t: np.c_[(t["x"] <= 0.37), (t["x"] > 0.37)].astype(float), task="classification",
                    classes=["no", "yes"])
    d = distill(oracle, df, strategy=["observed"], random_state=0, holdout=0.2)
    s = FaithfulTree(max_leaf_nodes=2).fit(d)
    (rule,) = [r for r in s.rules_.rules if r.outcome == "yes"]
    (cond,) = rule.conditions
    xs = np.sort(d.train.rows["x"].to_numpy())
    below, above = xs[xs <= 0.37].max(), xs[xs > 0.37].min()
    assert cond.feature == "x" and below <= cond.value <= above


def test_regression_refinement_lowers_squared_error():
    d = wiggly_set(task="regression", n=600, seed=1)
    a = FaithfulTree(max_leaf_nodes=6, refine=False).fit(d)
    b = FaithfulTree(max_leaf_nodes=6).fit(d)
    y = d.train.outputs
    assert np.mean((b.predict(d.train.rows) - y) ** 2) <= np.mean((a.predict(d.train.rows) - y) ** 2) + 1e-12


@pytest.mark.parametrize("bad, match", [({"fit_to": "margin"}, "fit_to"), ({"grow": 0.5}, "grow"),
                                        ({"synthetic_weight": 2}, "synthetic_weight")])
def test_bad_parameters_are_named(bad, match):
    from pellucid.errors import ParameterError

    with pytest.raises(ParameterError, match=match):
        FaithfulTree(**bad).fit(mixed_set(n=200))


def _refined_both_ways(tree_of, X, y, w, k, monkeypatch):
    """refine_thresholds on two copies of a tree: with the running sums over candidates
    (class weights whose sums are exact) and with every candidate's leaves summed over the
    rows; the thresholds, the count moved and the leaves must be the same."""
    out = []
    for exact in (True, False):
        tree = tree_of()
        loss = _Loss(y, w, k)
        assert loss.exact_sums
        monkeypatch.setattr(loss, "exact_sums", exact)
        moved = refine_thresholds(tree, X, loss, n_candidates=24)
        out.append((moved, tree.threshold.copy(), tree.descend(X)))
    assert out[0][0] == out[1][0]
    np.testing.assert_array_equal(out[0][1], out[1][1])
    np.testing.assert_array_equal(out[0][2], out[1][2])
    return out[0][0]


@pytest.mark.parametrize("seed", range(4))
def test_running_sums_choose_the_thresholds_summing_every_candidate_chooses(seed, monkeypatch):
    # CART grown on labels, then re-thresholded: three classes, missing values going either
    # way, tied values, unit and half weights (synthetic rows).
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(seed)
    n = 1500
    X = np.column_stack([rng.normal(size=n), rng.integers(0, 6, n), rng.gamma(2.0, 1.0, n)]).astype(np.float32)
    X[rng.random(n) < 0.08, 0] = np.nan
    X[rng.random(n) < 0.05, 2] = np.nan
    y = (np.nan_to_num(X[:, 0]) + 0.4 * X[:, 1] + rng.normal(size=n) > 1).astype(int) + (X[:, 2] > 3)
    w = np.where(rng.random(n) < 0.5, 0.5, 1.0)
    est = DecisionTreeClassifier(max_leaf_nodes=12, random_state=seed).fit(X, y, sample_weight=w)
    moved = _refined_both_ways(lambda: GrownTree.from_sklearn(est), X, y, w, 3, monkeypatch)
    assert moved > 0  # the search moved thresholds, so both ways were compared on real moves


def test_sums_that_are_not_exact_keep_summing_every_candidate():
    assert not _Loss(np.zeros(3, dtype=int), np.array([0.1, 0.2, 0.3]), 2).exact_sums
    assert not _Loss(np.zeros(3), np.ones(3), 0).exact_sums  # regression: sums of outputs
    assert _Loss(np.zeros(3, dtype=int), np.array([1.0, 0.5, 2.0]), 2).exact_sums


@pytest.mark.parametrize("missing_left", [False, True])
def test_running_sums_at_thresholds_equal_to_values(missing_left):
    # Candidates that equal a value of the column (whole numbers here): rows at the value go
    # left (x <= t), as the tree compares; missing values go the node's missing side.
    from pellucid.surrogates.faithful import _class_losses

    rng = np.random.default_rng(3)
    x = rng.integers(0, 5, 300).astype(np.float32)
    x[:20] = np.nan
    y = rng.integers(0, 2, 300)
    w = np.where(rng.random(300) < 0.3, 0.5, 1.0)
    tree = GrownTree(np.array([1, -1, -1]), np.array([2, -1, -1]), np.array([0, -2, -2]), np.array([2.0, 0, 0]),
                     np.array([missing_left, False, False]), np.zeros((3, 1, 1)), np.zeros(3))
    thr = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    got = _class_losses(tree, 0, x[:, None], y, w, np.full(300, 1), np.full(300, 2), thr, _Loss(y, w, 2))
    for t, loss in zip(thr, got, strict=True):
        left = np.where(np.isnan(x), missing_left, x <= t)
        want = sum(min(w[m & (y == 0)].sum(), w[m & (y == 1)].sum()) for m in (left, ~left))
        assert loss == want
