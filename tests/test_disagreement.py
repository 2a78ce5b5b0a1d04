"""Tests of pellucid.fidelity.disagreement: counts, confusion, per-rule numbers, regions, examples.

The surrogates here are written by hand and are wrong on purpose in one known region, so the
expected numbers are counted directly on the held-out rows, and the region found must be that
region.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pellucid.errors import NotFittedError, ParameterError
from pellucid.extraction import AdditiveRules, Condition, LinearTerm, Rule, RuleList, RuleSet, distill
from pellucid.fidelity import disagreement, evaluate
from pellucid.oracle import Oracle
from pellucid.surrogates import DecisionTree, Surrogate

CAT = "categorical"


class Fixed(Surrogate):
    """A surrogate whose rules are given: fitting only records the schema and task."""

    name = "fixed"

    def __init__(self, rules=None):
        self.rules = rules

    def _fit(self, train):
        self.rules_ = self.rules


def _table(n=2400, seed=0, missing=False):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.uniform(-5, 5, n), "z": rng.normal(size=n), "c": rng.choice(["a", "b", "c"], n)})
    if missing:
        df.loc[rng.random(n) < 0.1, "z"] = np.nan
    return df


def _classification(df, seed=0):
    def fn(d):
        return np.where((d["x"] > 0).to_numpy()[:, None], [[0.2, 0.8]], [[0.7, 0.3]])

    return distill(Oracle(fn, task="classification", classes=["lo", "hi"]), df, strategy="observed", random_state=seed)


def _regression(df, seed=0):
    def fn(d):
        return (d["x"] > 0).to_numpy(dtype=float) * 3.0 - 1.0

    return distill(Oracle(fn, task="regression"), df, strategy="observed", random_state=seed)


@pytest.fixture(scope="module")
def cls_set():
    return _classification(_table())


@pytest.fixture(scope="module")
def reg_set():
    return _regression(_table())


# The known region where the hand-written surrogates are wrong.
WRONG = (Condition("x", ">", 2.0), Condition("c", "in", ("a",), False, CAT))


def _wrong_list():
    """Right everywhere (hi iff x > 0) except where x > 2 and c = a: says lo there."""
    return RuleList(
        (Rule(WRONG, "lo"), Rule((Condition("x", ">", 0.0),), "hi")),
        Rule((), "lo"),
        task="classification",
        classes=("lo", "hi"),
    )


def _in_wrong(rows):
    return Rule(WRONG, None).apply(rows)


def _region_mask(region, rows):
    return Rule(tuple(Condition.from_dict(c) for c in region["conditions"]), None).apply(rows)


# ---------------------------------------------------------------------------- classification
def test_counts_and_confusion_are_those_of_the_rows(cls_set):
    s = Fixed(_wrong_list()).fit(cls_set)
    d = disagreement(s, cls_set)
    hold = cls_set.holdout
    wrong = _in_wrong(hold.rows) & (hold.rows["x"] > 0).to_numpy()  # the network says hi there
    assert d["rows"] == "holdout" and d["n"] == len(hold)
    assert d["n_disagree"] == int(wrong.sum()) > 0
    assert d["share"] == pytest.approx(wrong.mean())
    # The same count fidelity.evaluate reports as agreement.
    assert 1 - d["share"] == pytest.approx(evaluate(s, rows=cls_set).agreement)
    net = pd.Series(hold.labels, dtype=object)
    sur = pd.Series(s.predict(hold.rows), dtype=object)
    expected = pd.crosstab(net, sur).reindex(index=["lo", "hi"], columns=["lo", "hi"], fill_value=0)
    assert d["confusion"]["classes"] == ["lo", "hi"]
    assert d["confusion"]["matrix"] == expected.to_numpy().tolist()
    assert d["confusion"]["pairs"] == [{"network": "hi", "surrogate": "lo", "n": int(wrong.sum()), "share": d["share"]}]
    assert d["errors"] is None and d["tolerance"] is None and d["tolerance_from"] is None


def test_the_region_found_is_where_the_surrogate_is_wrong(cls_set):
    s = Fixed(_wrong_list()).fit(cls_set)
    d = disagreement(s, cls_set)
    rows = cls_set.holdout.rows
    wrong = _in_wrong(rows)
    assert d["regions"], "no region found"
    top = d["regions"][0]
    m = _region_mask(top, rows)
    # The region covers the wrong rows and little else.
    assert (m & wrong).sum() >= 0.9 * wrong.sum()
    assert top["share"] >= 0.9
    assert {c["feature"] for c in top["conditions"]} == {"x", "c"}
    assert any(c["feature"] == "c" and c["op"] == "in" and c["value"] == ["a"] for c in top["conditions"])
    x_bound = next(c for c in top["conditions"] if c["feature"] == "x")
    assert x_bound["op"] == ">" and 1.5 < x_bound["value"] < 2.5
    # Never missing on these rows: no "or missing" clause.
    assert not any(c["missing"] for c in top["conditions"])
    assert "or x is missing" not in top["text"]


def test_region_numbers_are_measured_through_the_region_text(cls_set):
    s = Fixed(_wrong_list()).fit(cls_set)
    d = disagreement(s, cls_set, max_regions=8)
    rows, n = cls_set.holdout.rows, d["n"]
    wrong = s.predict(rows) != cls_set.holdout.labels
    for g in d["regions"]:
        m = _region_mask(g, rows)
        assert g["n_rows"] == int(m.sum())
        assert g["n_disagree"] == int(wrong[m].sum())
        assert g["share"] == pytest.approx(wrong[m].mean())
        assert g["coverage"] == pytest.approx(m.mean())
        assert g["share_of_disagreements"] == pytest.approx(wrong[m].sum() / wrong.sum())
        assert g["share"] > d["share"]  # only regions above the overall share
        assert g["text"] == Rule(tuple(Condition.from_dict(c) for c in g["conditions"]), None).condition_text()
    shares = [g["share"] for g in d["regions"]]
    assert shares == sorted(shares, reverse=True)
    assert len(d["regions"]) <= 8 and n == len(rows)
    # Thresholds are the shortest decimals between the rows' values on either side (as a
    # surrogate's are), never the tree's float32 midpoints written out in full.
    from pellucid._validation import shortest_between

    checked = 0
    for g in d["regions"]:
        for c in g["conditions"]:
            if c["op"] not in ("<=", ">") or not isinstance(c["value"], float):
                continue
            v = rows[c["feature"]].dropna().to_numpy(dtype=float)
            below, above = v[v <= c["value"]], v[v > c["value"]]
            if len(below) and len(above):
                assert c["value"] == shortest_between(below.max(), above.min(), closed="left"), c["text"]
                checked += 1
    assert checked


def test_per_rule_counts(cls_set):
    s = Fixed(_wrong_list()).fit(cls_set)
    rl = s.rules_  # as fitted: thresholds snapped to the training rows, supports recorded
    d = disagreement(s, cls_set)
    rows = cls_set.holdout.rows
    wrong = s.predict(rows) != cls_set.holdout.labels
    fires = rl.firing_rule(rows)
    for j, rule in enumerate(rl.rules):
        covered = rule.apply(rows)
        e = d["rules"][j]
        assert e["index"] == j and e["text"] == rule.text()
        assert e["n_covered"] == int(covered.sum()) and e["n_disagree"] == int(wrong[covered].sum())
        assert e["n_decided"] == int((fires == j).sum())
        assert e["n_disagree_decided"] == int(wrong[fires == j].sum())
    # The wrong rule is wrong on every row it decides; the right one on none it decides.
    assert d["rules"][0]["share_decided"] == 1.0 and d["rules"][1]["share_decided"] == 0.0
    # Rule 2 covers the wrong region too (x > 2 implies x > 0), but does not decide it.
    assert d["rules"][1]["share"] > 0
    assert d["default"]["n_covered"] == int((fires == 2).sum()) and d["default"]["n_disagree"] == 0


def test_examples_are_raw_rows_surest_network_first(cls_set):
    s = Fixed(_wrong_list()).fit(cls_set)
    d = disagreement(s, cls_set, max_examples=5)
    hold = cls_set.holdout
    assert d["features"] == ["x", "z", "c"]
    assert len(d["examples"]) == 5
    probs = [ex["network_proba"] for ex in d["examples"]]
    assert probs == sorted(probs, reverse=True)
    ids = hold.row_ids()
    for ex in d["examples"]:
        # Named by the row's label in the user's data; that row's values are shown.
        i = ids.index(ex["row"])
        assert ex["source"] == "observed"
        assert ex["values"] == {"x": hold.rows["x"][i], "z": hold.rows["z"][i], "c": hold.rows["c"][i]}
        assert ex["network"] == hold.labels[i] == "hi" and ex["surrogate"] == "lo"
        assert ex["network_proba"] == pytest.approx(hold.outputs[i].max())
        assert ex["rule"] == 0  # the rule that decides it is the wrong one
    assert disagreement(s, cls_set, max_examples=0)["examples"] == []


def test_a_faithful_surrogate_has_nothing_to_show(cls_set):
    right = RuleList((Rule((Condition("x", ">", 0.0),), "hi"),), Rule((), "lo"), task="classification", classes=("lo", "hi"))
    d = disagreement(Fixed(right).fit(cls_set), cls_set)
    assert d["n_disagree"] == 0 and d["share"] == 0.0
    assert d["regions"] == [] and d["examples"] == [] and d["confusion"]["pairs"] == []


def test_a_tree_surrogate_gives_plain_json():
    dset = _classification(_table(n=1200, seed=3, missing=True), seed=3)
    tree = DecisionTree(max_leaf_nodes=3).fit(dset)
    d = disagreement(tree, dset, max_examples=50)
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert d["n_disagree"] == round((1 - evaluate(tree, rows=dset).agreement) * d["n"])
    assert d["region_search"]["random_state"] == 0
    # Same inputs, same result.
    assert disagreement(tree, dset, max_examples=50) == d


def test_missing_values_are_none_in_examples():
    dset = _regression(_table(n=800, seed=4, missing=True), seed=4)
    tree = DecisionTree(max_leaf_nodes=3).fit(dset)
    n = len(dset.holdout)
    d = disagreement(tree, dset, max_examples=n)  # regression: every row, largest error first
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    missing = dset.holdout.rows["z"].isna().to_numpy()
    assert missing.any()
    ids = dset.holdout.row_ids()
    assert sorted(ex["row"] for ex in d["examples"] if ex["values"]["z"] is None) == sorted(
        ids[i] for i in np.flatnonzero(missing))


# ---------------------------------------------------------------------------- additive
def test_additive_surrogate_has_no_deciding_rule(cls_set):
    # Log-odds of hi: +4 when x > 0, -8 more in the wrong region, a small slope on z.
    add = AdditiveRules(
        (Rule((Condition("x", ">", 0.0),), "hi"), Rule(WRONG, "lo")),
        ((4.0,), (-8.0,)),
        (-2.0,),
        (LinearTerm("z", (0.01,), 0.0),),
        link="logistic",
        task="classification",
        classes=("lo", "hi"),
    )
    s = Fixed(add).fit(cls_set)
    d = disagreement(s, cls_set)
    rows = cls_set.holdout.rows
    wrong = _in_wrong(rows)
    assert d["n_disagree"] == int(wrong.sum())
    assert all(e["n_decided"] is None and e["share_decided"] is None for e in d["rules"])
    assert d["rules"][1]["share"] == 1.0
    assert all(ex["rule"] is None for ex in d["examples"])
    assert (_region_mask(d["regions"][0], rows) & wrong).sum() >= 0.9 * wrong.sum()


# ---------------------------------------------------------------------------- regression
def test_regression_region_and_largest_errors(reg_set):
    # The network gives 2 for x > 0, -1 otherwise; the surrogate says 4 where x <= -1 and c = b.
    off = (Condition("x", "<=", -1.0), Condition("c", "in", ("b",), False, CAT))
    rs = RuleList(
        (Rule(off, 4.0), Rule((Condition("x", ">", 0.0),), 2.0)),
        Rule((), -1.0),
        task="regression",
    )
    s = Fixed(rs).fit(reg_set)
    d = disagreement(s, reg_set, max_examples=4)
    rows = reg_set.holdout.rows
    bad = Rule(off, None).apply(rows)
    assert d["confusion"] is None
    assert d["tolerance"] == pytest.approx(0.1 * np.std(reg_set.holdout.outputs))
    assert d["tolerance_from"] == "output_sd"
    assert d["n_disagree"] == int(bad.sum())
    assert d["errors"]["max"] == pytest.approx(5.0) and d["errors"]["mae"] == pytest.approx(5.0 * bad.mean())
    errors = [abs(ex["error"]) for ex in d["examples"]]
    assert errors == sorted(errors, reverse=True) and errors[0] == pytest.approx(5.0)
    for ex in d["examples"]:
        assert ex["error"] == pytest.approx(ex["surrogate"] - ex["network"])
    top = d["regions"][0]
    m = _region_mask(top, rows)
    assert (m & bad).sum() >= 0.9 * bad.sum() and top["share"] >= 0.9
    assert top["mae"] > d["errors"]["mae"]
    assert d["rules"][0]["mae"] == pytest.approx(5.0)
    # A tolerance above every error: nothing disagrees.
    given = disagreement(s, reg_set, tolerance=10.0)
    assert given["n_disagree"] == 0 and given["tolerance_from"] == "argument"


# ---------------------------------------------------------------------------- errors
def test_bad_arguments_are_parameter_errors(cls_set, reg_set):
    s = Fixed(_wrong_list()).fit(cls_set)
    with pytest.raises(ParameterError, match="DistillationSet"):
        disagreement(s, cls_set.holdout.rows)
    for kw in ({"max_examples": -1}, {"max_regions": 1.5}, {"max_examples": True}, {"tolerance": -1.0}, {"tolerance": float("nan")}):
        with pytest.raises(ParameterError):
            disagreement(s, cls_set, **kw)
    with pytest.raises(ParameterError, match="fitted for classification"):
        disagreement(s, reg_set)
    with pytest.raises(NotFittedError):
        disagreement(Fixed(_wrong_list()), cls_set)


def test_no_regions_when_asked_for_none(cls_set):
    s = Fixed(_wrong_list()).fit(cls_set)
    assert disagreement(s, cls_set, max_regions=0)["regions"] == []
    assert len(disagreement(s, cls_set, max_regions=1)["regions"]) == 1


def test_a_set_without_holdout_is_compared_on_all_rows(cls_set):
    whole = cls_set.subset(np.ones(len(cls_set), dtype=bool))
    whole.is_holdout = np.zeros(len(whole), dtype=bool)
    rs = RuleSet((Rule(WRONG, "lo"),), Rule((), "hi"), task="classification", classes=("lo", "hi"))
    d = disagreement(Fixed(rs).fit(whole), whole)
    assert d["rows"] == "all" and d["n"] == len(whole)
