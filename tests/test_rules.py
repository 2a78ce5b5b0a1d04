import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pellucid.extraction.rules import Condition, Rule, RuleList, RuleSet, merge_conditions

CATS = ("a", "b", "c", "d")


def frame(seed: int, n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 10, n).astype(float)
    x[rng.random(n) < 0.15] = np.nan
    c = rng.choice(CATS, n).astype(object)
    c[rng.random(n) < 0.15] = np.nan
    return pd.DataFrame({"x": x, "c": c})


numeric_cond = st.builds(
    Condition,
    feature=st.just("x"),
    op=st.sampled_from(["<=", "<", ">", ">="]),
    value=st.integers(-1, 10).map(lambda v: v + 0.5)
    | st.integers(-1, 10).map(float)
    | st.sampled_from([float("inf"), float("-inf")]),  # trees split missing from known with inf
    missing=st.booleans(),
    kind=st.sampled_from(["numeric", "integer"]),
)
set_cond = st.builds(
    Condition,
    feature=st.just("c"),
    op=st.sampled_from(["in", "not in"]),
    value=st.lists(st.sampled_from(CATS), unique=True, max_size=4),
    missing=st.booleans(),
    kind=st.just("categorical"),
)
any_cond = numeric_cond | set_cond


def reference_mask(c: Condition, df: pd.DataFrame) -> np.ndarray:
    """The meaning of a condition, written out row by row."""
    out = []
    for v in df[c.feature]:
        if pd.isna(v):
            out.append(c.missing)
        elif c.op == "in":
            out.append(v in c.value)
        elif c.op == "not in":
            out.append(v not in c.value)
        else:
            out.append({"<=": v <= c.value, "<": v < c.value, ">": v > c.value, ">=": v >= c.value}[c.op])
    return np.array(out, dtype=bool)


@settings(max_examples=150, deadline=None)
@given(c=any_cond, seed=st.integers(0, 5))
def test_condition_apply_matches_its_meaning(c, seed):
    df = frame(seed)
    np.testing.assert_array_equal(c.apply(df), reference_mask(c, df))


@settings(max_examples=150, deadline=None)
@given(c=numeric_cond.filter(lambda c: c.kind == "integer" and np.isfinite(c.value)), seed=st.integers(0, 5))
def test_integer_text_means_the_same_rows(c, seed):
    # Parse the printed bound back and check that it accepts the same rows.
    df = frame(seed)
    text = c.text().strip("()").split(" or ")[0]
    _, op, bound = text.split(" ")
    printed = Condition("x", op, float(bound), c.missing, "numeric")
    np.testing.assert_array_equal(printed.apply(df), c.apply(df))


@settings(max_examples=200, deadline=None)
@given(conds=st.lists(any_cond, min_size=1, max_size=6), seed=st.integers(0, 5), domains=st.booleans())
def test_merge_conditions_accepts_the_same_rows(conds, seed, domains):
    df = frame(seed)
    before = np.logical_and.reduce([c.apply(df) for c in conds])
    merged = merge_conditions(conds, order=["x", "c"], domains={"c": CATS} if domains else None)
    after = np.logical_and.reduce([c.apply(df) for c in merged]) if merged else np.ones(len(df), bool)
    np.testing.assert_array_equal(after, before)
    # At most one lower and one upper bound on x, one set on c, x before c.
    feats = [c.feature for c in merged]
    assert feats == sorted(feats, key=["x", "c"].index)
    assert feats.count("c") <= 1 and feats.count("x") <= 2


rule_strategy = st.builds(
    lambda conds, outcome: Rule(tuple(conds), outcome),
    st.lists(any_cond, max_size=3),
    st.sampled_from(["yes", "no"]),
)


@settings(max_examples=40, deadline=None)
@given(rules=st.lists(rule_strategy, max_size=5), default=st.sampled_from(["yes", "no"]), seed=st.integers(0, 5))
def test_rule_list_predict_equals_first_matching_rule(rules, default, seed):
    df = frame(seed, n=80)
    rl = RuleList(tuple(rules), Rule((), default), task="classification", classes=("no", "yes"))
    expected = []
    for i in range(len(df)):
        row = df.iloc[[i]]
        hit = next((r.outcome for r in rules if r.apply(row)[0]), default)
        expected.append(hit)
    assert list(rl.predict(df)) == expected


@settings(max_examples=40, deadline=None)
@given(rules=st.lists(rule_strategy, max_size=5), seed=st.integers(0, 5))
def test_rule_set_predict_is_the_vote_of_covering_rules(rules, seed):
    df = frame(seed, n=80)
    rules = [Rule(r.conditions, r.outcome, (0.2, 0.8) if r.outcome == "yes" else (0.7, 0.3)) for r in rules]
    rs = RuleSet(tuple(rules), Rule((), "no", (0.6, 0.4)), task="classification", classes=("no", "yes"))
    p = rs.predict_proba(df)
    for i in range(len(df)):
        row = df.iloc[[i]]
        covering = [r.proba for r in rules if r.apply(row)[0]]
        want = np.mean(covering, axis=0) if covering else (0.6, 0.4)
        np.testing.assert_allclose(p[i], want)


def test_regression_rule_list():
    df = frame(0)
    r = Rule((Condition("x", "<=", 4.5),), 1.5)
    rl = RuleList((r,), Rule((), -2.0), task="regression")
    np.testing.assert_array_equal(rl.predict(df), np.where(r.apply(df), 1.5, -2.0))



@pytest.mark.parametrize("category", ["a,b", "a, b", "{rent}", 'say "hi"', "back\\slash", " rent", "rent ", ""])
def test_a_category_that_would_read_as_another_is_quoted(category):
    # "city in {rent, a, b}" would read as three categories; the quoted text reads back as it.
    import json

    text = Condition("city", "in", ["rent", category], kind="categorical").text()
    assert text.startswith("city in {rent, ") and text.endswith("}")
    written = text[len("city in {rent, "):-1]
    assert written.startswith('"') and json.loads(written) == category
    one = Condition("city", "not in", [category], kind="categorical").text()
    assert json.loads(one[len("city ≠ "):]) == category
    # Everyday categories, accents and markup among them, are written as they are.
    for plain in ("rent", "São Paulo", "<i>x</i>", "n/a", "1-2 years"):
        assert Condition("city", "in", [plain], kind="categorical").text() == f"city = {plain}"


def test_texts_read_in_raw_units():
    assert Condition("Income", "<", 120.5).text() == "Income < 120.5"
    assert Condition("Home", "in", ["rent", "other"], kind="categorical").text() == "Home in {rent, other}"
    assert Condition("Home", "in", ["rent"], kind="categorical").text() == "Home = rent"
    # The operator and threshold the model tests, in full: "n > 2.5" is not rewritten as
    # "n >= 3", which says something else of a row holding 2.7.
    assert Condition("n", ">", 2.5, kind="integer").text() == "n > 2.5"
    assert Condition("n", ">", 2.0, kind="integer").text() == "n > 2"
    assert Condition("flag", "<=", 0.0, kind="binary").text() == "flag = 0"
    assert Condition("flag", ">", 0.5, kind="binary").text() == "flag = 1"
    assert Condition("x", "<=", 1.0, missing=True).text() == "(x <= 1 or x is missing)"
    r = Rule(
        (Condition("Income", "<", 120.0), Condition("Home", "in", ["rent", "other"], kind="categorical")),
        "bad",
        (0.09, 0.91),
        0.123,
    )
    assert r.text() == "Income < 120 and Home in {rent, other} → bad (p=0.91, covers 12.3%)"
    lo, hi = Condition("age", ">", 30.0, kind="integer"), Condition("age", "<=", 50.0, kind="integer")
    assert Rule((lo, hi), "x").condition_text() == "30 < age <= 50"
    lo, hi = Condition("age", ">=", 61.0, kind="integer"), Condition("age", "<=", 61.0, kind="integer")
    assert Rule((lo, hi), "x").condition_text() == "age = 61"


def test_to_dict_roundtrip_of_conditions():
    c = Condition("Home", "not in", ["own"], True, "categorical")
    assert Condition.from_dict(c.to_dict()) == c


def test_unknown_operator_is_refused():
    with pytest.raises(ValueError, match="operator"):
        Condition("x", "=>", 1.0)


def test_infinite_thresholds_read_as_missingness():
    assert Condition("x", "<=", float("inf")).text() == "x is not missing"
    assert Condition("x", ">", float("inf"), missing=True).text() == "x is missing"
    only_missing = merge_conditions([Condition("x", "<=", float("-inf"), True), Condition("x", ">", 3.0, True)])
    assert [c.text() for c in only_missing] == ["x is missing"]


def test_printed_threshold_is_the_tested_one():
    # A split at 27.195 printed "27.2" would reject a row holding 27.2 that the text accepts.
    c = Condition("income", "<=", 27.195)
    assert c.text() == "income <= 27.195"
    df = pd.DataFrame({"income": [27.19, 27.195, 27.2]})
    assert list(c.apply(df)) == [True, True, False]
    assert Condition("income", "<=", 27.19500064849853).text() == "income <= 27.19500064849853"
    assert Rule((Condition("a", ">", 0.0001234), Condition("a", "<=", 12345678.9)), "x").condition_text() == (
        "0.0001234 < a <= 12345678.9"
    )


def test_infinite_thresholds_survive_a_reports_json_and_read_back():
    import json
    import math

    from pellucid.reports.payload import jsonable

    df = frame(1)
    conds = [
        Condition("x", ">", math.inf, True),  # only a missing value passes
        Condition("x", ">", -math.inf, False),  # every known value passes
        Condition("x", "<=", math.inf, True),
        Condition("x", "<=", -math.inf, True),
    ]
    written = [json.dumps(jsonable(c.to_dict()), allow_nan=False) for c in conds]
    assert len(set(written)) == len(conds)
    for c, text in zip(conds, written, strict=True):
        back = Condition.from_dict(json.loads(text))
        assert back == c
        np.testing.assert_array_equal(back.apply(df), c.apply(df))
    rl = RuleList(tuple(Rule((c,), "yes") for c in conds), Rule((), "no"), classes=("no", "yes"))
    back = RuleList.from_dict(json.loads(json.dumps(jsonable(rl.to_dict()), allow_nan=False)))
    assert back == rl


@pytest.mark.parametrize(
    "entry,match",
    [
        ({"feature": "income", "op": ">", "value": None, "missing": True, "text": "income is missing"}, "'income is missing'.*threshold"),
        ({"feature": "income", "op": "=>", "value": 3.0}, "operator '=>'"),
        ({"feature": "income", "op": "<=", "value": [1, 2]}, "threshold"),
        ({"feature": "income", "op": "<=", "value": "27.2"}, "threshold"),
        ({"feature": "home", "op": "in", "value": "rent"}, "list"),
        ({"feature": "income", "op": "<=", "value": 1.0, "missing": "yes"}, "missing"),
        ({"feature": "income", "op": "<=", "value": 1.0, "kind": "weird"}, "kind 'weird'"),
        ({"op": "<=", "value": 1.0}, "feature"),
        ("income <= 3", "object"),
    ],
)
def test_unreadable_conditions_raise_a_named_error(entry, match):
    from pellucid.errors import ParameterError

    with pytest.raises(ParameterError, match=match):
        Condition.from_dict(entry)
    doc = {"type": "rule_list", "classes": ["no", "yes"], "default": {"outcome": "no"},
           "rules": [{"outcome": "yes", "conditions": []}, {"outcome": "yes", "conditions": [entry]}]}
    with pytest.raises(ParameterError, match="rule 1: "):
        RuleList.from_dict(doc)


def test_unreadable_rules_raise_a_named_error():
    from pellucid.errors import ParameterError

    base = {"type": "rule_set", "classes": ["no", "yes"], "default": {"outcome": "no"}}
    for rules, match in [
        ([{"conditions": []}], "rule 0: .*outcome"),
        ([{"outcome": "maybe"}], "rule 0: .*not one of the classes"),
        ([{"outcome": "yes", "proba": ["a", "b"]}], "rule 0: .*probability"),
        ([{"outcome": "yes", "proba": [0.5]}], "rule 0: .*2 classes"),
        ("nope", "'rules' must be a list"),
    ]:
        with pytest.raises(ParameterError, match=match):
            RuleSet.from_dict({**base, "rules": rules})


def test_additive_weights_print_short_and_decide_every_row_as_the_model():
    """Weights printed in full were seventeen digits each; they print with the fewest digits
    (at least 3) with which the printed score decides every given row as the model does."""
    import re

    from pellucid.extraction.rules import AdditiveRules, LinearTerm, round_weights, weight_digits

    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"x": rng.normal(size=3000), "z": rng.normal(size=3000)})
    rules = tuple(Rule((Condition("x", ">", float(t)),), "yes") for t in (-1.0, 0.0, 0.5, 1.0))
    weights = tuple((float(w),) for w in rng.normal(size=4) / 3)
    model = AdditiveRules(rules, weights, (0.123456789,), (LinearTerm("z", (0.987654321,), 0.0),), link="logistic",
                          task="classification", classes=("no", "yes"))
    digits = weight_digits(model, rows)
    assert digits is not None and 3 <= digits < 17
    # The printed model decides every row as the model; one digit fewer would not (or 3 is the floor).
    np.testing.assert_array_equal(round_weights(model, digits).predict(rows), model.predict(rows))
    if digits > 3:
        assert not np.array_equal(round_weights(model, digits - 1).predict(rows), model.predict(rows))
    short = AdditiveRules(**{**{f: getattr(model, f) for f in ("rules", "weights", "intercept", "linear", "link", "task",
                                                              "classes")}, "digits": digits})
    numbers = re.findall(r"\d+\.\d+", short.text())
    assert numbers and all(len(n.replace(".", "").lstrip("0")) <= digits for n in numbers)
    # The digits travel with the model.
    assert AdditiveRules.from_dict(short.to_dict()).text() == short.text()


def test_conditions_select_what_pandas_selects_on_every_column_dtype():
    """Conditions read each column once into codes of its distinct values (shared by every
    condition of a model on one frame); the rows chosen are those pandas' own isin and
    comparisons choose, on object, Arrow-string, categorical and mixed columns with every
    kind of missing value."""
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({
        "obj": rng.choice(np.array(["a", "b", "c", None, np.nan], dtype=object), n),
        "arrow": pd.array(rng.choice(["x", "y", "z", None], n), dtype="string[pyarrow]"),
        "cat": pd.Categorical(rng.choice(["p", "q", None], n)),
        "ints": pd.Series(rng.choice([1, 2, 3, None], n), dtype=object),
        "none": pd.Series([None] * n, dtype=object),
        "num": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
    })
    store: dict = {}
    sets = [("obj", ("a", "c")), ("obj", ()), ("arrow", ("x", "w")), ("cat", ("p",)), ("ints", (1, 3)),
            ("ints", (2.0,)), ("none", ("a",))]
    for feature, values in sets:
        col = df[feature]
        isna = col.isna().to_numpy()
        inside = col.isin(list(values)).to_numpy() & ~isna
        for op, missing in [("in", False), ("in", True), ("not in", False), ("not in", True)]:
            want = (inside if op == "in" else ~inside & ~isna) | (isna & missing)
            c = Condition(feature, op, values, missing, "categorical")
            np.testing.assert_array_equal(c.apply(df), want)
            np.testing.assert_array_equal(c.apply(df, store), want)
    v = df["num"].to_numpy()
    for op, fn in [("<=", np.less_equal), ("<", np.less), (">", np.greater), (">=", np.greater_equal)]:
        for missing in (False, True):
            with np.errstate(invalid="ignore"):
                want = (fn(v, 0.1) & ~np.isnan(v)) | (np.isnan(v) & missing)
            np.testing.assert_array_equal(Condition("num", op, 0.1, missing).apply(df, store), want)


@settings(max_examples=30, deadline=None)
@given(rules=st.lists(rule_strategy, min_size=1, max_size=5), seed=st.integers(0, 5))
def test_a_given_coverage_is_what_the_rules_read(rules, seed):
    """Every reading of which rules fire takes the coverage matrix where the caller has it:
    the same answers as evaluating the conditions, and the matrix given is the one read."""
    from pellucid.extraction.rules import AdditiveRules, rule_shares, weight_digits

    df = frame(seed, n=80)
    probs = [Rule(r.conditions, r.outcome, (0.2, 0.8) if r.outcome == "yes" else (0.7, 0.3)) for r in rules]
    models = [
        RuleList(tuple(probs), Rule((), "no", (0.6, 0.4)), task="classification", classes=("no", "yes")),
        RuleSet(tuple(probs), Rule((), "no", (0.6, 0.4)), task="classification", classes=("no", "yes")),
        RuleSet(tuple(Rule(r.conditions, float(i)) for i, r in enumerate(rules)), Rule((), -1.0), task="regression"),
        AdditiveRules(tuple(rules), tuple((0.5 - i,) for i in range(len(rules))), (0.25,), link="logistic",
                      task="classification", classes=("no", "yes")),
        AdditiveRules(tuple(rules), tuple((1.0 + i,) for i in range(len(rules))), (0.25,), task="regression"),
    ]
    for model in models:
        cov = model.coverage_matrix(df)
        np.testing.assert_array_equal(model.predict(df, cov), model.predict(df))
        np.testing.assert_array_equal(model.firing_rule(df, cov), model.firing_rule(df))
        if model.task == "classification":
            np.testing.assert_array_equal(model.predict_proba(df, cov), model.predict_proba(df))
        assert rule_shares(model, df, coverage=cov) == rule_shares(model, df)
        if isinstance(model, AdditiveRules):
            assert weight_digits(model, df, coverage=cov) == weight_digits(model, df)
        # Every rule firing everywhere: the first rule decides every row of a list.
        everywhere = np.ones_like(cov)
        np.testing.assert_array_equal(model.firing_rule(df, everywhere), np.zeros(len(df)))
        if isinstance(model, RuleList):
            assert set(model.predict(df, everywhere)) == {probs[0].outcome}
