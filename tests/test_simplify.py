"""Rule simplification: never below the promised fidelity, never more conditions, and the
same predictions where nothing could be dropped."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import r2_score

from pellucid.errors import ParameterError
from pellucid.extraction import AdditiveRules, Condition, LinearTerm, Rule, RuleList, RuleSet, distill, simplify

from .test_export import CLASSES2, WEIRD, frame, rule_models

ORDER = ("x", "k", WEIRD, "c")


def fidelity(model, rows, outputs, weights=None) -> float:
    """Agreement with the network's labels, or R², computed from the model's own predict."""
    pred = model.predict(rows)
    if model.task == "regression":
        return float(r2_score(outputs, pred, sample_weight=weights))
    labels = np.asarray(model.classes, dtype=object)[outputs.argmax(axis=1)]
    agree = (pred == labels).astype(float)
    return float(np.average(agree, weights=weights))


def network_outputs(model, rows, flip: float, seed: int) -> np.ndarray:
    """The model's own answers with a share of them changed: what a network might say."""
    rng = np.random.default_rng(seed)
    changed = rng.random(len(rows)) < flip
    if model.task == "regression":
        y = np.asarray(model.predict(rows), dtype=float)
        return np.where(changed, y + rng.normal(0, 5, len(rows)), y)
    idx = pd.Index(list(model.classes), dtype=object).get_indexer(pd.Index(model.predict(rows), dtype=object))
    idx = np.where(changed, rng.integers(0, len(model.classes), len(rows)), idx)
    p = rng.random((len(rows), len(model.classes))) * 0.5
    p[np.arange(len(rows)), idx] = 1.0
    return p / p.sum(axis=1, keepdims=True)


def check_merged_and_ordered(model) -> None:
    for r in model.rules:
        feats = [c.feature for c in r.conditions]
        assert feats == sorted(feats, key=ORDER.index)
        for f in set(feats):
            assert feats.count(f) <= (1 if f == "c" else 2)


@settings(max_examples=120, deadline=None)
@given(
    model=rule_models(),
    seed=st.integers(0, 50),
    flip=st.sampled_from([0.0, 0.1, 0.4]),
    tolerance=st.sampled_from([0.0, 0.0, 0.02, 0.1, 0.5]),
    weighted=st.booleans(),
)
def test_simplify_keeps_its_promise(model, seed, flip, tolerance, weighted):
    rows = frame(seed, n=80)
    outputs = network_outputs(model, rows, flip, seed)
    weights = np.random.default_rng(seed).integers(0, 3, len(rows)).astype(float) + 0.5 if weighted else None
    out, report = simplify(model, rows, outputs, tolerance=tolerance, weights=weights)
    assert type(out) is type(model)
    before, after = fidelity(model, rows, outputs, weights), fidelity(out, rows, outputs, weights)
    assert report["fidelity_before"] == before and report["fidelity_after"] == after
    assert after >= before - tolerance
    assert out.n_conditions <= model.n_conditions and out.n_rules <= model.n_rules
    assert report["n_conditions_after"] == out.n_conditions and report["n_rules_after"] == out.n_rules
    assert report["measure"] == ("agreement" if model.task == "classification" else "r2")
    # What is reported dropped is what went; the kept rules are the input's, in order.
    assert len(report["dropped_rules"]) == model.n_rules - out.n_rules
    assert report["kept"] == sorted(report["kept"]) and len(report["kept"]) == out.n_rules
    assert all(d["fidelity"] >= before - tolerance for d in report["dropped_conditions"] + report["dropped_rules"])
    for i, r in zip(report["kept"], out.rules, strict=True):
        assert r.outcome == model.rules[i].outcome and r.proba == model.rules[i].proba
    if isinstance(model, AdditiveRules):
        assert out.weights == tuple(model.weights[i] for i in report["kept"])
        assert out.linear == model.linear and out.intercept == model.intercept
    check_merged_and_ordered(out)
    assert out.default == model.default and out.classes == model.classes
    if not report["dropped_conditions"] and not report["dropped_rules"]:
        # Only merging happened, which accepts the same rows: the same predictions anywhere.
        fresh = frame(seed + 1000)
        np.testing.assert_array_equal(out.predict(fresh), model.predict(fresh))
        np.testing.assert_array_equal(out.predict(rows), model.predict(rows))


@settings(max_examples=80, deadline=None)
@given(model=rule_models(), seed=st.integers(0, 50))
def test_a_model_simplified_on_its_own_answers_gives_them_all(model, seed):
    # Nothing that changes a prediction on the rows can be dropped at tolerance 0.
    rows = frame(seed, n=80)
    outputs = network_outputs(model, rows, 0.0, seed)
    out, report = simplify(model, rows, outputs)
    if model.task == "classification":
        assert report["fidelity_before"] == report["fidelity_after"] == 1.0
        np.testing.assert_array_equal(out.predict(rows), model.predict(rows))
    else:
        np.testing.assert_allclose(out.predict(rows), model.predict(rows), rtol=1e-7, atol=1e-7)


# ---------------------------------------------------------------------- examples
IN_AB = Condition("c", "in", ["a", "b"], kind="categorical")


def rows_and_list():
    rows = frame(0, n=300)
    rl = RuleList(
        (
            Rule((Condition("x", "<=", 5.0), IN_AB, Condition("x", "<=", 3.0)), "yes"),
            Rule((Condition("k", ">", 2.5),), "yes"),
            Rule((Condition("k", ">", 3.5),), "no"),  # shadowed by the rule before: never decides
        ),
        Rule((), "no"),
        classes=CLASSES2,
        feature_order=ORDER,
    )
    return rows, rl


def test_redundant_bounds_merge_and_shadowed_rules_go():
    rows, rl = rows_and_list()
    out, report = simplify(rl, rows, rl.predict(rows))
    assert [r.condition_text() for r in out.rules] == ["x <= 3 and c in {a, b}", "k > 2.5"]
    merged = {"rule": 0, "before": ["x <= 5", "c in {a, b}", "x <= 3"], "after": ["x <= 3", "c in {a, b}"]}
    assert report["merged"] == [merged]
    assert [d["rule"] for d in report["dropped_rules"]] == [2] and report["kept"] == [0, 1]
    assert report["dropped_conditions"] == []
    np.testing.assert_array_equal(out.predict(frame(7)), rl.predict(frame(7)))
    # Merged only: supports kept; the rule that lost nothing keeps its outcome and support.
    assert out.rules[0].support == rl.rules[0].support


def test_a_condition_the_network_ignores_is_dropped():
    rows, _ = rows_and_list()
    # The network: "yes" where x <= 3 (or x is missing), whatever c is.
    labels = np.where(rows["x"].isna() | (rows["x"] <= 3.0), "yes", "no").astype(object)
    rs = RuleSet(
        (
            Rule(
                (Condition("x", "<=", 3.0, missing=True), Condition("c", "not in", ["b"], True, "categorical")),
                "yes",
                (0.1, 0.9),
                0.4,
            ),
        ),
        Rule((), "no", (0.8, 0.2)),
        classes=CLASSES2,
        feature_order=ORDER,
    )
    out, report = simplify(rs, rows, labels)
    assert [r.condition_text() for r in out.rules] == ["(x <= 3 or x is missing)"]
    assert report["fidelity_after"] == 1.0 > report["fidelity_before"]
    assert [d["condition"] for d in report["dropped_conditions"]] == ["(c ≠ b or c is missing)"]
    assert out.rules[0].support is None  # it covers other rows now
    assert out.rules[0].proba == (0.1, 0.9)


def test_tolerance_buys_shorter_rules():
    rows, rl = rows_and_list()
    y = rl.predict(rows)
    exact, _ = simplify(rl, rows, y)
    loose, report = simplify(rl, rows, y, tolerance=0.2)
    assert loose.n_conditions < exact.n_conditions
    assert report["fidelity_after"] >= 1.0 - 0.2


def test_additive_rules_lose_a_rule_with_its_weight():
    rows = frame(1, n=200)
    model = AdditiveRules(
        (
            Rule((Condition("x", "<=", 1.0),), "yes"),
            Rule((Condition("k", ">", 100.0),), "yes"),  # never fires on these rows
            Rule((Condition("c", "in", ["a"], kind="categorical"),), "no"),
        ),
        ((2.0,), (5.0,), (-0.5,)),
        (-1.0,),
        (LinearTerm("k", (0.25,), 2.0),),
        link="logistic",
        task="classification",
        classes=CLASSES2,
    )
    out, report = simplify(model, rows, model.predict(rows))
    assert 1 in [d["rule"] for d in report["dropped_rules"]]
    assert out.weights == tuple(model.weights[i] for i in report["kept"]) and len(out.weights) == out.n_rules
    assert out.linear == model.linear
    np.testing.assert_array_equal(out.predict(rows), model.predict(rows))


def test_regression_fidelity_is_r2():
    rows = frame(2, n=200)
    model = RuleSet(
        (Rule((Condition("x", ">", 2.0), Condition("x", ">", 0.0)), 10.0), Rule((Condition("k", "<=", 1.5),), -3.0)),
        Rule((), 1.0),
        task="regression",
    )
    y = model.predict(rows) + np.random.default_rng(0).normal(0, 0.1, len(rows))
    out, report = simplify(model, rows, y)
    assert report["measure"] == "r2"
    assert report["fidelity_before"] == pytest.approx(r2_score(y, model.predict(rows)))
    assert report["fidelity_after"] >= report["fidelity_before"]
    assert out.rules[0].conditions == (Condition("x", ">", 2.0),)


def test_zero_weight_rows_do_not_count():
    rows, _ = rows_and_list()
    rl = RuleList((Rule((Condition("k", ">", 4.5),), "yes"),), Rule((), "no"), classes=CLASSES2)
    y = rl.predict(rows)
    w = np.where(rows["k"] > 4.5, 0.0, 1.0)  # the only rows the rule decides weigh nothing
    out, report = simplify(rl, rows, y, weights=w)
    assert out.n_rules == 0 and report["fidelity_after"] == 1.0


def test_surrogate_and_schema():
    from pellucid.oracle import Oracle
    from pellucid.surrogates import DecisionTree

    from .conftest import mixed_frame

    df = mixed_frame(400, 0)
    oracle = Oracle(
        lambda d: np.column_stack([d["x"].fillna(0) > 10, d["x"].fillna(0) <= 10]).astype(float),
        task="classification",
        classes=["big", "small"],
    )
    d = distill(oracle, df, strategy="observed", random_state=0)
    tree = DecisionTree(max_leaf_nodes=12).fit(d)
    train = d.train
    out, report = simplify(tree, train.rows, train.outputs, weights=train.weights)
    assert isinstance(out, RuleSet) and out.n_conditions <= tree.rules_.n_conditions
    assert report["fidelity_after"] >= report["fidelity_before"]
    assert out.feature_order == tree.rules_.feature_order


def test_bad_input_is_refused_with_a_clear_error():
    rows, rl = rows_and_list()
    y = rl.predict(rows)
    with pytest.raises(ParameterError, match="tolerance"):
        simplify(rl, rows, y, tolerance=-0.1)
    with pytest.raises(ParameterError, match="tolerance"):
        simplify(rl, rows, y, tolerance=math.nan)
    with pytest.raises(ParameterError, match="task 'regression'"):
        simplify(rl, rows, y, task="regression")
    with pytest.raises(ParameterError, match="DataFrame"):
        simplify(rl, rows.to_numpy(), y)
    with pytest.raises(ParameterError, match=r"lack the feature \['k'\]"):
        simplify(rl, rows.drop(columns="k"), y)
    with pytest.raises(ParameterError, match="one entry per row"):
        simplify(rl, rows, y[:-1])
    with pytest.raises(ParameterError, match="3 classes"):
        simplify(rl, rows, np.ones((len(rows), 2)), classes=["a", "b", "c"])
    with pytest.raises(ParameterError, match="weights"):
        simplify(rl, rows, y, weights=-np.ones(len(rows)))
    with pytest.raises(ParameterError, match="RuleList, RuleSet or AdditiveRules"):
        simplify("rules", rows, y)


@settings(max_examples=60, deadline=None)
@given(model=rule_models(), seed=st.integers(0, 50), tolerance=st.sampled_from([0.0, 0.05]))
def test_predicting_only_the_changed_rows_chooses_as_predicting_all(model, seed, tolerance):
    import pellucid.extraction.simplify as module

    rows = frame(seed, n=80)
    outputs = network_outputs(model, rows, 0.2, seed)
    fast = simplify(model, rows, outputs, tolerance=tolerance)
    try:
        module._CHANGED_ROWS_ONLY = False
        slow = simplify(model, rows, outputs, tolerance=tolerance)
    finally:
        module._CHANGED_ROWS_ONLY = True
    assert fast[0] == slow[0]
    assert fast[1] == slow[1]


def test_the_promise_holds_where_the_last_bits_decide():
    # Outputs that hardly vary (the model's own sum, added up in different orders for
    # different rows) make R² hang on the last bits of each prediction; dropping a rule
    # changes the order the rest are added in. The result must still be within tolerance.
    always = [Rule((), w) for w in (0.0, -0.3, 0.5, -2.0, 0.0)]
    model = AdditiveRules(
        tuple(always) + (Rule((Condition("x", "<=", -math.inf),), 0.5),),
        ((0.0,), (-0.3,), (0.5,), (-2.0,), (0.0,), (0.5,)),
        (0.0,),
        task="regression",
    )
    rows = frame(0, n=80)
    y = model.predict(rows)
    out, report = simplify(model, rows, y)
    assert fidelity(out, rows, y) == report["fidelity_after"] >= report["fidelity_before"] == fidelity(model, rows, y)
