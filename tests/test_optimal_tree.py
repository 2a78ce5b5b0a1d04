"""The exhaustive searches (OptimalTree, ExhaustiveRuleList) against brute force, against
scikit-learn's greedy tree, and their rules against their own predictions."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.tree import DecisionTreeClassifier

from pellucid.errors import ParameterError
from pellucid.extraction import distill
from pellucid.fidelity import frontier
from pellucid.surrogates import SURROGATES, ExhaustiveRuleList, OptimalTree
from pellucid.surrogates.exhaustive import _Loss, best_box, candidate_thresholds, search_tree

from .conftest import mixed_frame
from .test_tree import mixed_oracle


# ---------------------------------------------------------------------- brute force
def _leaf_loss(y, w, mask, classification):
    if not mask.any():
        return np.inf
    if classification:
        counts = np.bincount(y[mask], weights=w[mask])
        return counts.sum() - counts.max()
    mean = np.average(y[mask], weights=w[mask])
    return float(np.sum(w[mask] * (y[mask] - mean) ** 2))


def _brute_tree(codes, n_bins, y, w, max_leaves, classification):
    """Loss of the best depth <= 2 tree by enumeration, one candidate at a time."""
    n, p = codes.shape
    everyone = np.ones(n, dtype=bool)
    splits = [(j, b) for j in range(p) for b in range(n_bins[j] - 1)]

    def side(mask, may_split):
        best = _leaf_loss(y, w, mask, classification)
        if may_split:
            for j, b in splits:
                go = codes[:, j] <= b
                best = min(best, _leaf_loss(y, w, mask & go, classification) + _leaf_loss(y, w, mask & ~go, classification))
        return best

    best = _leaf_loss(y, w, everyone, classification)
    for j, b in splits if max_leaves >= 2 else []:
        go = codes[:, j] <= b
        left, right = go, ~go
        best = min(best, side(left, False) + side(right, False))
        if max_leaves >= 3:
            best = min(best, side(left, True) + side(right, False), side(left, False) + side(right, True))
        if max_leaves >= 4:
            best = min(best, side(left, True) + side(right, True))
    return best


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    leaves=st.integers(1, 4),
    classes=st.integers(2, 3),
    regression=st.booleans(),
)
def test_search_equals_brute_force(seed, leaves, classes, regression):
    rng = np.random.default_rng(seed)
    n, p = 40, 3
    n_bins = [int(b) for b in rng.integers(1, 6, p)]
    codes = np.column_stack([rng.integers(0, b, n) for b in n_bins])
    w = rng.choice([0.5, 1.0, 2.0], n)
    y = rng.normal(size=n) + codes[:, 0] if regression else rng.integers(0, classes, n)
    loss = _Loss(not regression, 1)
    ch = loss.channels(y, w, classes)
    tree = search_tree(codes, n_bins, ch, loss, leaves, 1e-9)
    expected = _brute_tree(codes, n_bins, y, w, leaves, not regression)
    assert tree["loss"] == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert tree["leaves"] <= leaves


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), classes=st.integers(2, 3), pairs=st.booleans())
def test_best_box_equals_brute_force(seed, classes, pairs):
    rng = np.random.default_rng(seed)
    n, p = 40, 3
    n_bins = [int(b) for b in rng.integers(1, 5, p)]
    codes = np.column_stack([rng.integers(0, b, n) for b in n_bins])
    y = rng.integers(0, classes, n)
    counts = np.zeros((n, classes))
    counts[np.arange(n), y] = rng.choice([0.5, 1.0, 2.0], n)
    counts[rng.random(n) < 0.2] = 0.0  # rows already decided
    default = int(np.argmax(counts.sum(axis=0)))
    found = best_box(codes, n_bins, counts, default, 2 if pairs else 1, 1e-9)
    # Every test on every column, and (with pairs) every conjunction of two.
    tests = [(j, op, b) for j in range(p) for b in range(n_bins[j] - 1) for op in ("<=", ">")]
    boxes = [(t,) for t in tests] + (list(itertools.combinations(tests, 2)) if pairs else [])

    def gain(box):
        m = np.ones(n, dtype=bool)
        for j, op, b in box:
            m &= codes[:, j] <= b if op == "<=" else codes[:, j] > b
        c = counts[m].sum(axis=0)
        return max(c[k] - c[default] for k in range(classes) if k != default)

    best = max((gain(b) for b in boxes), default=0.0)
    if best <= 1e-9:
        assert found is None
    else:
        assert found is not None
        assert found[0] == pytest.approx(best)
        assert gain(found[1]) == pytest.approx(best)
        assert 1 <= len(found[1]) <= (2 if pairs else 1)



def _best_pair_one_at_a_time(codes, n_bins, counts, default, tol):
    """Two-test boxes searched as written down: every pair of columns, each class's gain
    summed per cell and the largest taken, the first box in order kept among near ties."""
    others = [c for c in range(counts.shape[1]) if c != default]
    g = counts[:, others] - counts[:, [default]]
    C = g.shape[1]
    best = None
    p = codes.shape[1]
    for j, k in itertools.combinations_with_replacement(range(p), 2):
        Bj, Bk = n_bins[j], n_bins[k]
        if Bj < 2 or Bk < 2:
            continue
        flat = ((codes[:, j] * Bk + codes[:, k])[:, None] * C + np.arange(C)).ravel()
        H = np.bincount(flat, weights=g.ravel(), minlength=Bj * Bk * C).reshape(Bj, Bk, C)
        S = H.cumsum(axis=0).cumsum(axis=1)
        col, row = S[:, -1:], S[-1:, :]
        quads = ((("<=", "<="), S), (("<=", ">"), col - S), ((">", "<="), row - S),
                 ((">", ">"), S[-1:, -1:] - col - row + S))
        for ops, Q in quads:
            Q = Q.max(axis=-1)
            if ops == ("<=", "<="):
                Q[-1, -1] = -np.inf
            i = int(np.argmax(Q))
            v = float(Q.flat[i])
            if v > tol and (best is None or v > best[0] + tol):
                a, b = np.unravel_index(i, Q.shape)
                tests = []
                if not (ops[0] == "<=" and a == Bj - 1):
                    tests.append((j, ops[0], int(a)))
                if not (ops[1] == "<=" and b == Bk - 1):
                    tests.append((k, ops[1], int(b)))
                best = (v, tuple(tests))
    return best


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), classes=st.integers(2, 4), p=st.integers(1, 6),
       most_bins=st.integers(1, 9), ties=st.booleans())
def test_best_box_equals_the_plain_search_to_the_last_bit(seed, classes, p, most_bins, ties):
    # Columns of one bin among them (skipped), two classes (one gain per cell) and more,
    # weights that tie (the first box in order must win) and weights that do not add
    # exactly (the sums must be added in the same order).
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 120))
    n_bins = [int(b) for b in rng.integers(1, most_bins + 1, p)]
    codes = np.column_stack([rng.integers(0, b, n) for b in n_bins])
    y = rng.integers(0, classes, n)
    counts = np.zeros((n, classes))
    counts[np.arange(n), y] = rng.choice([1.0, 2.0], n) if ties else rng.random(n) * 0.3
    counts[rng.random(n) < 0.2] = 0.0
    # Not always the open rows' majority: after the first rule, every row at once can gain.
    default = int(rng.integers(0, classes))
    tol = 1e-9 * max(counts.sum(), 1.0)
    assert best_box(codes, n_bins, counts, default, 2, tol) == _best_pair_one_at_a_time(
        codes, n_bins, counts, default, tol)


def test_candidate_thresholds():
    x = np.array([3.0, 1.0, 2.0, 2.0, 5.0])
    np.testing.assert_array_equal(candidate_thresholds(x, 10), [1.5, 2.5, 4.0])
    assert len(candidate_thresholds(np.ones(4), 10)) == 0
    many = candidate_thresholds(np.arange(1000.0), 16)
    assert 1 <= len(many) <= 16 and np.all(np.diff(many) > 0)
    # Adjacent floats: the midpoint rounds onto the upper value; the lower one separates them.
    a = 1.0
    b = np.nextafter(a, 2.0)
    t = candidate_thresholds(np.array([a, b]), 4)
    assert a <= t[0] < b


# ---------------------------------------------------------------------- on a distillation set
def _dset(seed, task="classification", classes=("no", "yes", "maybe"), n=300):
    return distill(mixed_oracle(task, classes), mixed_frame(n, seed), strategy="observed", random_state=seed)


def _apply_rules(rules, rows):
    """Each row's outcome from the rules' own conditions: the first that fires (a list), or
    the one leaf that covers it (a tree); not through RuleList/RuleSet.predict."""
    fires = np.zeros((len(rows), len(rules.rules)), dtype=bool)
    for i, r in enumerate(rules.rules):
        fires[:, i] = np.all([c.apply(rows) for c in r.conditions] or [np.ones(len(rows), bool)], axis=0)
    outcomes = np.asarray([r.outcome for r in rules.rules] + [rules.default.outcome], dtype=object)
    if not rules.ordered:
        assert (fires.sum(axis=1) == 1).all()  # the leaves partition the rows
    first = np.where(fires.any(axis=1), fires.argmax(axis=1), len(rules.rules))
    return outcomes[first]


@pytest.mark.parametrize("leaves", [2, 3, 4])
def test_never_worse_than_sklearn_tree_on_training_rows(leaves):
    for seed in range(3):
        d = _dset(seed, classes=("no", "yes"))
        tr = d.train
        ours = OptimalTree(max_leaf_nodes=leaves, max_bins=10_000).fit(d)
        X = ours.encoder_.transform(tr.rows)
        y = tr.outputs.argmax(axis=1)
        # Every tree of at most 3 leaves has depth <= 2; a 4-leaf CART may be a chain of depth 3.
        sk = DecisionTreeClassifier(max_leaf_nodes=leaves, max_depth=2 if leaves == 4 else None, random_state=0)
        sk_error = np.mean(sk.fit(X, y).predict(X) != y)
        our_error = np.mean(ours.predict(tr.rows) != np.asarray(d.classes, dtype=object)[y])
        assert our_error == pytest.approx(ours.loss_)
        assert our_error <= sk_error + 1e-12
        assert ours.rules_.n_rules <= leaves


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 500), size=st.integers(1, 6), task=st.sampled_from(["classification", "regression"]))
def test_tree_predict_is_its_rules_on_new_rows_with_missing_values(seed, size, task):
    d = _dset(seed, task, n=150)
    tree = OptimalTree(max_leaf_nodes=size, max_bins=32).fit(d)
    rows = d.schema.validate(mixed_frame(40, seed + 1))
    assert rows.isna().any().any()  # missing numbers and categories are among the rows
    got = tree.predict(rows)
    walked = _apply_rules(tree.rules_, rows)
    if task == "classification":
        np.testing.assert_array_equal(got, walked)
    else:
        np.testing.assert_allclose(got.astype(float), walked.astype(float))
    # The drawn nodes route each row to the leaf whose rule fires.
    node = {n.id: n for n in tree.nodes_}
    leaf = np.zeros(len(rows), dtype=int)
    for i in range(len(rows)):
        n = node[0]
        while n.left is not None:
            n = node[n.left] if bool(n.condition.apply(rows.iloc[[i]])[0]) else node[n.right]
        leaf[i] = n.rule_index
    np.testing.assert_array_equal(tree.rules_.firing_rule(rows), leaf)
    assert tree.complexity()["n_rules"] <= min(size, 4)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 500), size=st.integers(1, 5))
def test_rule_list_predict_is_its_rules(seed, size):
    d = _dset(seed, n=150)
    rl = ExhaustiveRuleList(max_rules=size, max_bins=32).fit(d)
    rows = d.schema.validate(mixed_frame(40, seed + 1))
    np.testing.assert_array_equal(rl.predict(rows), _apply_rules(rl.rules_, rows))
    assert rl.rules_.n_rules <= size
    assert all(1 <= r.n_conditions <= 2 for r in rl.rules_.rules)
    assert all(g > 0 for g in rl.gains_)


def test_rule_list_first_rule_beats_every_single_box():
    d = _dset(3, classes=("no", "yes"))
    tr = d.train
    one = ExhaustiveRuleList(max_rules=1, max_bins=10_000).fit(d)
    labels = np.asarray(d.classes, dtype=object)[tr.outputs.argmax(axis=1)]
    ours = np.mean(one.predict(tr.rows) == labels)
    # Any stump read as "IF side → its majority ELSE the other majority" is a one-rule list.
    stump = OptimalTree(max_leaf_nodes=2, max_bins=10_000).fit(d)
    assert ours >= np.mean(stump.predict(tr.rows) == labels) - 1e-12
    # And more rules never lower the training agreement.
    two = ExhaustiveRuleList(max_rules=2, max_bins=10_000).fit(d)
    assert np.mean(two.predict(tr.rows) == labels) >= ours


@pytest.mark.parametrize("cls", [ExhaustiveRuleList, OptimalTree])
def test_missing_numbers_go_where_the_median_goes(cls):
    d = _dset(7, classes=("no", "yes"))
    model = cls(**{cls.size_param: 3}).fit(d)
    rows = d.schema.validate(mixed_frame(40, 11))
    holes = rows.copy()
    holes.loc[::2, ["x", "count"]] = np.nan
    filled = holes.fillna({"x": model.encoder_.fill_["x"], "count": model.encoder_.fill_["count"]})
    np.testing.assert_array_equal(model.predict(holes), model.predict(filled))
    # A category missing in training has its own place in the order; the rules name it.
    assert rows["color"].isna().any()
    np.testing.assert_array_equal(model.predict(rows), _apply_rules(model.rules_, rows))


def test_bad_parameters_and_tasks():
    d = _dset(0)
    for bad in (dict(max_leaf_nodes=0), dict(max_depth=3), dict(max_bins=True), dict(min_samples_leaf=0.5)):
        with pytest.raises(ParameterError):
            OptimalTree(**bad).fit(d)
    for bad in (dict(max_rules=0), dict(max_conditions=3), dict(max_bins=0)):
        with pytest.raises(ParameterError):
            ExhaustiveRuleList(**bad).fit(d)
    with pytest.raises(ParameterError, match="classification only"):
        ExhaustiveRuleList().fit(_dset(0, "regression"))
    assert not ExhaustiveRuleList.supports("regression")


def test_min_samples_leaf_and_depth_one():
    d = _dset(2)
    tree = OptimalTree(max_leaf_nodes=4, min_samples_leaf=40).fit(d)
    assert min(r.support for r in tree.rules_.rules) * len(d.train) >= 40 - 1e-9
    stump = OptimalTree(max_leaf_nodes=4, max_depth=1).fit(d)
    assert stump.rules_.n_rules <= 2 and stump.complexity()["depth"] <= 1


def test_on_the_frontier():
    d = distill(mixed_oracle(classes=("no", "yes")), mixed_frame(300, 0), strategy="observed", random_state=0)
    front = frontier(d, candidates=["optimal_tree", "exhaustive_rule_list"], sizes=(2, 4), verbose=0)
    assert not front.failed
    assert {e.candidate for e in front.entries} == {"optimal_tree", "exhaustive_rule_list"}
    assert SURROGATES["optimal_tree"] is OptimalTree
