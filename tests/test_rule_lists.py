"""Rule lists and tree variants (imodels' greedy and Bayesian rule lists, C4.5, SkopeRules;
hierarchical shrinkage on pellucid's CART): the rules must say what the learners do, on raw
features, for every kind of feature and missing values."""

from __future__ import annotations

import copy
import dataclasses
import random
import warnings

import numpy as np
import pandas as pd
import pytest

import pellucid
from pellucid.errors import ParameterError, PellucidWarning, SurrogateError
from pellucid.extraction import distill
from pellucid.extraction.distill import DistillationSet
from pellucid.extraction.rules import RuleList, RuleSet
from pellucid.oracle import Oracle
from pellucid.schema import Schema
from pellucid.surrogates.rule_lists import (
    BayesianRuleList,
    C45Tree,
    GreedyRuleList,
    HSTree,
    SkopeRules,
    call_with_deadline,
)
from pellucid.surrogates.tree import DecisionTree

from .conftest import mixed_frame
from .test_tree import float32_frame, mixed_oracle

MODELS = {
    "greedy_rule_list": lambda: GreedyRuleList(max_rules=6),
    "bayesian_rule_list": lambda: BayesianRuleList(max_rules=6, max_iter=1000, max_samples=400),
    "c45_tree": lambda: C45Tree(max_leaf_nodes=8),
    "skope_rules": lambda: SkopeRules(max_rules=6),
    "hs_tree": lambda: HSTree(max_leaf_nodes=8),
}
IMODELS = ("greedy_rule_list", "bayesian_rule_list", "c45_tree", "skope_rules")
MULTICLASS = ("c45_tree", "hs_tree")


def truth(df: pd.DataFrame) -> np.ndarray:
    """The known rule: x > 10 and color = red (a missing x counts as 0)."""
    x = np.nan_to_num(df["x"].astype(float).to_numpy(), nan=0.0)
    return (x > 10) & df["color"].isin(["red"]).to_numpy()


def known_rule_oracle() -> Oracle:
    def f(df):
        p = np.where(truth(df), 0.9, 0.1)
        return np.column_stack([1 - p, p])

    return Oracle(f, task="classification", classes=["no", "yes"])


@pytest.fixture(scope="module")
def known():
    return distill(known_rule_oracle(), mixed_frame(600, 3), strategy="observed", random_state=0)


@pytest.fixture(scope="module")
def fitted(known):
    with warnings.catch_warnings():
        warnings.simplefilter("error", PellucidWarning)  # uniform weights: no warning
        return {name: make().fit(known) for name, make in MODELS.items()}


def fresh_rows(dset, surrogate, seed=11, n=300):
    """New rows in canonical form, missing values only in features the training rows had
    missing (elsewhere the encodings make no claim about them)."""
    rows = dset.schema.validate(mixed_frame(n, seed))
    train = dset.train.rows
    for f in dset.schema.names:
        if not train[f].isna().any():
            rows = rows[rows[f].notna()]
    return rows.reset_index(drop=True)


def learner_labels(s, rows: pd.DataFrame) -> np.ndarray:
    """The imodels learner's own predictions on raw rows, through the same encoding."""
    X = s.encoder_.transform(rows)
    classes = np.asarray(s.classes_, dtype=object)
    if isinstance(s, GreedyRuleList):
        t = list(classes).index(s.target_)
        return np.where(s.learner_.predict(X) == 1, classes[t], classes[1 - t])
    if isinstance(s, SkopeRules):
        t = list(classes).index(s.target_)
        fires = s.learner_.fires(X, s.rules_.n_rules)  # imodels' _predict_top_rules (tests/test_skope.py)
        return np.where(fires, classes[t], classes[1 - t])
    if isinstance(s, BayesianRuleList):
        B = s._binarize(X, s.items_)
        return classes[s.present_classes_[s.learner_.predict(B).astype(int)]]
    return classes[s.learner_.predict(X).astype(int)]  # C4.5: the class indices it was fitted on


# ---------------------------------------------------------------------- the rules say what the learner does
@pytest.mark.parametrize("name", IMODELS)
def test_rules_predict_what_the_imodels_learner_predicts_on_fresh_rows(fitted, known, name):
    s = fitted[name]
    rows = fresh_rows(known, s)
    assert len(rows) > 200
    assert rows[["x", "count", "color"]].isna().any().all()  # missing values are exercised
    np.testing.assert_array_equal(s.predict(rows), learner_labels(s, rows))


def test_rule_lists_are_ordered_and_trees_are_rule_sets(fitted, known):
    assert isinstance(fitted["greedy_rule_list"].rules_, RuleList)
    assert isinstance(fitted["bayesian_rule_list"].rules_, RuleList)
    for name in ("c45_tree", "skope_rules", "hs_tree"):
        assert isinstance(fitted[name].rules_, RuleSet)
    # The leaves of a tree cover every row once.
    rows = fresh_rows(known, fitted["c45_tree"])
    assert (fitted["c45_tree"].rules_.coverage_matrix(rows).sum(axis=1) == 1).all()


@pytest.mark.parametrize("name", list(MODELS))
def test_known_rule_is_recovered(fitted, known, name):
    fid = pellucid.fidelity.evaluate(fitted[name], rows=known)
    assert fid.agreement >= 0.95, (name, fid.agreement, fitted[name].rules_.text())


@pytest.mark.parametrize("name", list(MODELS))
def test_rule_text_speaks_raw_features(fitted, name):
    s = fitted[name]
    text = s.rules_.text()
    assert "x" in text and "color" in text and "red" in text, text
    # No encoded column names, codes or placeholders.
    for encoded in ("X_", "color=", "\x00", "feature_"):
        assert encoded not in text, text
    feats = {c.feature for r in s.rules_ for c in r.conditions}
    assert feats <= set(s.schema_.names)


# ---------------------------------------------------------------------- tasks and classes
def three_class_oracle() -> Oracle:
    """low when x < 9 (or missing), else mid for red and high for the other colours."""

    def f(df):
        x = np.nan_to_num(df["x"].astype(float).to_numpy(), nan=0.0)
        k = np.where(x < 9, 0, np.where(df["color"].isin(["red"]).to_numpy(), 1, 2))
        return np.eye(3)[k] * 0.7 + 0.1

    return Oracle(f, task="classification", classes=["low", "mid", "high"])


@pytest.fixture(scope="module")
def three_classes():
    return distill(three_class_oracle(), mixed_frame(400, 5), strategy="observed", random_state=0)


@pytest.mark.parametrize("name", MULTICLASS)
def test_multiclass(three_classes, name):
    s = MODELS[name]().fit(three_classes)
    assert len(s.classes_) == 3
    assert set(s.predict(three_classes.rows)) == {"low", "mid", "high"}
    assert pellucid.fidelity.evaluate(s, rows=three_classes).agreement >= 0.9
    if name == "c45_tree":
        rows = fresh_rows(three_classes, s, seed=8, n=200)
        np.testing.assert_array_equal(s.predict(rows), learner_labels(s, rows))


@pytest.mark.parametrize("name", [n for n in MODELS if n not in MULTICLASS])
def test_two_class_methods_refuse_more_classes(three_classes, name):
    with pytest.raises(ParameterError, match="two classes"):
        MODELS[name]().fit(three_classes)
    assert not type(MODELS[name]()).supports("classification", 3)


@pytest.mark.parametrize("name", IMODELS)
def test_classifiers_refuse_a_regression(name):
    d = distill(mixed_oracle("regression"), mixed_frame(120, 1), strategy="observed", random_state=0)
    with pytest.raises(ParameterError, match="classification"):
        MODELS[name]().fit(d)


def test_constant_network_gives_the_default_alone():
    oracle = Oracle(lambda df: np.tile([0.2, 0.8], (len(df), 1)), task="classification", classes=["no", "yes"])
    d = distill(oracle, mixed_frame(100, 2), strategy="observed", random_state=0)
    for name in MODELS:
        s = MODELS[name]().fit(d)
        assert s.rules_.n_rules == 0 or name == "hs_tree"
        assert set(s.predict(d.rows)) == {"yes"}


# ---------------------------------------------------------------------- size
@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("size", [2, 3])
def test_size_param_bounds_the_rule_count(known, name, size):
    cls = type(MODELS[name]())
    s = MODELS[name]()
    setattr(s, cls.size_param, size)
    s.fit(known)
    assert 1 <= s.rules_.n_rules <= size, s.rules_.text()


def test_bayesian_rule_list_truncation_is_the_learners_own_list(known):
    full = MODELS["bayesian_rule_list"]().fit(known)
    assert full.rules_.n_rules >= 2
    s = MODELS["bayesian_rule_list"]()
    s.max_rules = 1
    s.fit(known)
    assert s.truncated_ == full.rules_.n_rules - 1
    assert s.rules_.rules[0].conditions == full.rules_.rules[0].conditions
    rows = fresh_rows(known, s)
    np.testing.assert_array_equal(s.predict(rows), learner_labels(s, rows))


# ---------------------------------------------------------------------- fixes to the learners
def test_greedy_rule_list_follows_the_class_that_agrees_more(known):
    auto = GreedyRuleList(max_rules=4).fit(known)
    y = known.train.labels
    agree = lambda s: float(np.mean(s.predict(known.train.rows) == y))  # noqa: E731
    fixed = [GreedyRuleList(max_rules=4, target=c).fit(known) for c in ("no", "yes")]
    assert agree(auto) == max(agree(f) for f in fixed)
    with pytest.raises(ParameterError, match="target"):
        GreedyRuleList(target="maybe").fit(known)


def test_c45_ties_go_to_the_first_class():
    """A leaf whose rows tie between classes took whichever class Python's string hashing
    listed first; pellucid gives it the first class in the network's order."""
    a = np.r_[-np.arange(1.0, 201.0), np.arange(1.0, 101.0)]
    b = np.where(np.arange(300) % 2 == 0, 1.0, -1.0)
    df = pd.DataFrame({"a": a, "b": b})
    schema = Schema.from_frame(df)
    label = ((df["a"] > 0) & (df["b"] > 0)).to_numpy().astype(int)
    # Every row trains (no holdout), so the rows with a > 0 tie 50 / 50.
    d = DistillationSet(
        rows=schema.validate(df),
        outputs=np.eye(2)[label] * 0.8 + 0.1,
        weights=np.ones(len(df)),
        source=np.full(len(df), "observed"),
        is_holdout=np.zeros(len(df), dtype=bool),
        schema=schema,
        task="classification",
        classes=np.array(["A", "B"], dtype=object),
    )
    s = C45Tree(max_leaf_nodes=2).fit(d)
    (tied,) = [r for r in s.rules_ if r.proba is not None and r.proba[0] == r.proba[1]]
    assert tied.outcome == "A"
    assert s.relabelled_ in (0, 1)


def test_skope_rules_calls_the_target_where_any_rule_fires(fitted, known):
    s = fitted["skope_rules"]
    rows = known.train.rows
    fires = s.rules_.coverage_matrix(rows).any(axis=1)
    np.testing.assert_array_equal(s.predict(rows) == s.target_, fires)


# ---------------------------------------------------------------------- hierarchical shrinkage
@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("reg_param", [0.0, 10.0, 200.0])
def test_hs_tree_matches_imodels_on_the_same_tree(task, reg_param):
    from imodels import HSTreeClassifier, HSTreeRegressor

    d = distill(mixed_oracle(task), float32_frame(0), strategy="observed", random_state=0)
    hs = HSTree(max_leaf_nodes=12, reg_param=reg_param).fit(d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Handed an already fitted tree, imodels shrinks (a copy of) it in place.
        learner = (HSTreeClassifier if task == "classification" else HSTreeRegressor)(
            copy.deepcopy(hs.estimator_), reg_param=reg_param
        )
    np.testing.assert_array_equal(learner.estimator_.tree_.value[:, 0, :], hs.shrunk_values_)
    rows = d.schema.validate(float32_frame(1))
    for f in d.schema.names:
        if not hs.missing_seen_[f]:
            rows = rows[rows[f].notna()]
    # The rules read back say what the shrunk tree does on any row; the fitted model (its
    # thresholds snapped between training values) on the training rows.
    for model, rs in ((hs.learner_rules_, rows), (hs.rules_, d.train.rows)):
        X = hs.encoder_.transform(rs)
        if task == "classification":
            theirs = np.zeros((len(rs), len(hs.classes_)))
            theirs[:, hs.estimator_.classes_.astype(int)] = learner.estimator_.predict_proba(X)
            np.testing.assert_allclose(model.predict_proba(rs), theirs, atol=1e-12)
            labels = np.asarray(hs.classes_)[learner.estimator_.predict(X).astype(int)]
            np.testing.assert_array_equal(model.predict(rs), labels)
        else:
            np.testing.assert_allclose(model.predict(rs), learner.estimator_.predict(X), rtol=1e-12)
    plain = DecisionTree(max_leaf_nodes=12).fit(d)
    # The partition is the tree's; only the values move (and not at all for λ = 0).
    assert [r.conditions for r in hs.rules_] == [r.conditions for r in plain.rules_]
    if reg_param == 0.0:
        if task == "classification":
            np.testing.assert_allclose(hs.predict_proba(rows), plain.predict_proba(rows), atol=1e-12)
        else:
            np.testing.assert_allclose(hs.predict(rows), plain.predict(rows), rtol=1e-12)


def test_hs_tree_leaf_values_are_convex_combinations_of_their_path():
    """Shrinkage pulls a leaf's value towards its ancestors': it ends inside the range of
    the plain values along its path, and the partition does not change."""
    d = distill(mixed_oracle("regression"), float32_frame(0), strategy="observed", random_state=0)
    hs = HSTree(max_leaf_nodes=12, reg_param=50.0).fit(d)
    t = hs.estimator_.tree_
    plain = t.value[:, 0, 0]
    parent = {int(c): i for i in range(t.node_count) for c in (t.children_left[i], t.children_right[i]) if c != -1}
    moved = 0
    for leaf in np.flatnonzero(t.children_left == -1):
        path, node = [int(leaf)], int(leaf)
        while node in parent:
            node = parent[node]
            path.append(node)
        v = hs.shrunk_values_[leaf, 0]
        assert plain[path].min() - 1e-9 <= v <= plain[path].max() + 1e-9
        moved += abs(v - plain[leaf]) > 1e-6
    assert moved > 0


# ---------------------------------------------------------------------- time, weights, parameters
def test_bayesian_rule_list_stops_at_max_seconds(known):
    state = np.random.get_state()[1].copy()
    with pytest.raises(SurrogateError, match=r"max_seconds=0.01 s"):
        BayesianRuleList(max_seconds=0.01, min_support=0.05).fit(known)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_call_with_deadline_stops_a_python_loop_and_keeps_global_state():
    def spin():
        while True:
            random.random()

    with pytest.raises(TimeoutError):
        call_with_deadline(spin, 0.2)
    assert call_with_deadline(lambda: 42, 5.0)[0] == 42
    with pytest.raises(ValueError, match="boom"):
        call_with_deadline(lambda: (_ for _ in ()).throw(ValueError("boom")), 5.0)


def test_ctrl_c_while_a_learner_runs_stops_it_before_the_interrupt_goes_on():
    """An interrupt of the waiting caller leaves no learner thread running (one left importing
    a library while the interpreter shuts down can crash the process)."""
    import os
    import signal
    import threading
    import time

    steps = [0]

    def spin():
        while True:
            steps[0] += 1
            random.random()

    # Ctrl-C raises KeyboardInterrupt here even where this process was started ignoring it.
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        t = time.perf_counter()
        with pytest.raises(KeyboardInterrupt):
            call_with_deadline(spin, 60.0)
    finally:
        signal.signal(signal.SIGINT, handler)
    assert time.perf_counter() - t < 30  # the interrupt, not the deadline
    before = steps[0]
    time.sleep(0.3)
    assert before > 0 and steps[0] == before  # stopped, not running on


def test_same_seed_same_rules(known):
    for name in ("greedy_rule_list", "bayesian_rule_list", "skope_rules"):
        a, b = MODELS[name]().fit(known), MODELS[name]().fit(known)
        assert a.rules_.text() == b.rules_.text(), name


def test_unequal_weights_are_reported(known):
    w = np.where(np.arange(len(known)) % 2 == 0, 1.0, 2.0)
    d = dataclasses.replace(known, weights=w)
    with pytest.warns(PellucidWarning, match="weights"):
        GreedyRuleList(max_rules=2).fit(d)


@pytest.mark.parametrize(
    "make",
    [
        lambda: GreedyRuleList(max_rules=0),
        lambda: GreedyRuleList(criterion="mse"),
        lambda: BayesianRuleList(min_support=0.0),
        lambda: BayesianRuleList(max_seconds=-1),
        lambda: C45Tree(max_leaf_nodes=1),
        lambda: SkopeRules(precision_min=2.0),
        lambda: SkopeRules(target="maybe"),
        lambda: HSTree(reg_param=-1.0),
    ],
)
def test_bad_parameters_are_refused(known, make):
    with pytest.raises(ParameterError):
        make().fit(known)


def test_registry_attributes():
    for name, make in MODELS.items():
        cls = type(make())
        assert cls.name == name
        assert cls.size_param in cls.__init__.__code__.co_varnames
        assert "random_state" in cls.__init__.__code__.co_varnames
        assert cls.__doc__ and "Parameters" in cls.__doc__


def test_skope_rule_that_always_holds_reads_as_no_condition():
    from pellucid.surrogates._skope import SkopeRule

    assert SkopeRules._tests(SkopeRule("X_0 == X_0")) == []
    assert SkopeRules._tests(SkopeRule("X_2 <= 1.5 and X_0 > 3.0")) == [(2, "<=", 1.5), (0, ">", 3.0)]
