"""Exports of rule models: every export predicts what the model predicts, on every row.

Random rule models (rule lists, rule sets, additive models with every link) on a generated
mixed table with missing values are written as SQL (run by the standard library's sqlite3 on
an in-memory table of the rows, NaN stored as NULL), as a Python function (run on each row as
a dict), and as JSON (read back), and their predictions compared with the model's.

Near ties: the exports add a rule set's class distributions and an additive model's rule
weights rule by rule, in rule order; numpy's matrix product may add three or more terms in
another order. Only where a row has three or more such terms and the model's decision is
within 1e-9 of a tie (of 0, for a logistic link) may the two decide differently, so those
rows -- and only those -- are not compared (a regression value there is compared to 1e-9).
"""

from __future__ import annotations

import ast
import json
import math
import sqlite3

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pellucid.errors import NotFittedError, ParameterError
from pellucid.extraction import (
    AdditiveRules,
    Condition,
    LinearTerm,
    Rule,
    RuleList,
    RuleSet,
    distill,
    from_json,
    to_json,
    to_python,
    to_sql,
    to_text,
)
from pellucid.extraction.export import _float_literal

WEIRD = 'a"; DROP TABLE t; --'  # a feature name that tries to end the SQL
CATS = ("a", "b", "O'Brien", "q\"\\'); --")  # categories with quotes and a backslash
# Numbers the data takes and the thresholds test: halves (ties of <= and <), decimals that
# are not binary fractions, and one that SQLite misreads in its shortest form.
POOL = (-1.25, 0.0, 0.5, 1.0, 2.5, 3.0, 7.0, 0.1, 0.30000000000000004, 0.0454811, 7.3, 1e-7, 123456.789)
CLASSES3 = ("low", "it's", 'mid"dle')
CLASSES2 = ("no", "yes")


def frame(seed: int, n: int = 60) -> pd.DataFrame:
    """Canonical rows: numeric float64 with NaN, categorical objects with NaN."""
    rng = np.random.default_rng(seed)
    x = rng.choice(np.array(POOL), n)
    x[rng.random(n) < 0.15] = np.nan
    k = rng.integers(0, 6, n).astype(float)
    k[rng.random(n) < 0.1] = np.nan
    w = rng.choice(np.array(POOL), n)
    w[rng.random(n) < 0.1] = np.nan
    c = rng.choice(np.array(CATS, dtype=object), n)
    c[rng.random(n) < 0.15] = np.nan
    return pd.DataFrame({"x": x, "k": k, WEIRD: w, "c": c})


# ---------------------------------------------------------------------- strategies
threshold = st.sampled_from(POOL) | st.sampled_from([math.inf, -math.inf]) | st.floats(-10, 10, allow_nan=False)
numeric_cond = st.builds(
    Condition,
    feature=st.sampled_from(["x", "k", WEIRD]),
    op=st.sampled_from(["<=", "<", ">", ">="]),
    value=threshold,
    missing=st.booleans(),
    kind=st.sampled_from(["numeric", "integer"]),
)
set_cond = st.builds(
    Condition,
    feature=st.just("c"),
    op=st.sampled_from(["in", "not in"]),
    value=st.lists(st.sampled_from(CATS), unique=True, max_size=4),  # empty sets included
    missing=st.booleans(),
    kind=st.just("categorical"),
)


def _printable(conds) -> bool:
    # Rule.condition_text cannot yet print a lower and an upper bound on one feature as an
    # interval when one of them is infinite (an OverflowError); such rules are left out here.
    try:
        Rule(tuple(conds), "x").condition_text()
    except OverflowError:
        return False
    return True


conditions = st.lists(numeric_cond | set_cond, max_size=3).filter(_printable)
# Distributions from a small pool (exact ties among rules) or drawn at random.
dist_pool = [(0.2, 0.8, 0.0), (0.5, 0.5, 0.0), (0.1, 0.3, 0.6), (1 / 3, 1 / 3, 1 / 3), (0.0, 0.0, 1.0)]
weight = st.sampled_from([0.0, 0.5, -0.5, 0.1, 0.2, -0.3, 1.0]) | st.floats(-3, 3, allow_nan=False)


@st.composite
def distribution(draw, n_classes: int):
    if draw(st.booleans()):
        p = draw(st.sampled_from(dist_pool))
        if n_classes == 2:
            p = (p[0], 1 - p[0])
        return tuple(p)
    raw = [draw(st.floats(0.0, 1.0)) for _ in range(n_classes)]
    total = sum(raw)
    return tuple(r / total for r in raw) if total > 0 else (1.0,) + (0.0,) * (n_classes - 1)


@st.composite
def rule_models(draw):
    kind = draw(st.sampled_from(["list", "set", "additive"]))
    task = draw(st.sampled_from(["classification", "regression"]))
    n_rules = draw(st.integers(0, 6))
    conds = [tuple(draw(conditions)) for _ in range(n_rules)]
    order = ("x", "k", WEIRD, "c")
    if kind == "additive":
        if task == "regression":
            link, classes, m = "identity", None, 1
        else:
            link = draw(st.sampled_from(["logistic", "softmax"]))
            classes, m = (CLASSES2, 1) if link == "logistic" else (CLASSES3, 3)
        weights = tuple(tuple(draw(weight) for _ in range(m)) for _ in range(n_rules))
        rules = tuple(Rule(c, classes[0] if classes else w[0]) for c, w in zip(conds, weights, strict=True))
        linear = tuple(
            LinearTerm(f, tuple(draw(weight) for _ in range(m)), draw(st.sampled_from(POOL)))
            for f in draw(st.lists(st.sampled_from(["x", "k", WEIRD]), unique=True, max_size=2))
        )
        intercept = tuple(draw(weight) for _ in range(m))
        return AdditiveRules(
            rules, weights, intercept, linear, link=link, task=task, classes=classes, feature_order=order
        )
    cls = RuleList if kind == "list" else RuleSet
    if task == "regression":
        value = st.sampled_from([0.0, 1.5, -2.0, 0.1]) | st.floats(-100, 100, allow_nan=False)
        rules = tuple(Rule(c, draw(value)) for c in conds)
        return cls(rules, Rule((), draw(value)), task="regression", feature_order=order)
    classes = draw(st.sampled_from([CLASSES2, CLASSES3]))
    with_proba = draw(st.booleans())

    def make(c):
        if with_proba:
            p = draw(distribution(len(classes)))
            return Rule(c, classes[int(np.argmax(p))], p)
        return Rule(c, draw(st.sampled_from(classes)))

    return cls(tuple(make(c) for c in conds), make(()), task="classification", classes=classes, feature_order=order)


# ---------------------------------------------------------------------- running the exports
def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sqlite_table(df: pd.DataFrame, table: str = "t") -> sqlite3.Connection:
    con = sqlite3.connect(":memory:")
    con.execute(f"CREATE TABLE {q(table)} ({', '.join(q(c) for c in df.columns)})")
    records = [tuple(None if pd.isna(v) else v for v in row) for row in df.itertuples(index=False)]
    con.executemany(f"INSERT INTO {q(table)} VALUES ({', '.join('?' * len(df.columns))})", records)
    return con


def sql_predict(model, df: pd.DataFrame) -> list:
    con = sqlite_table(df)
    got = [r[0] for r in con.execute(f"SELECT {to_sql(model)} FROM t ORDER BY rowid")]
    # The whole statement gives the same, after the table's own columns.
    full = [r[-1] for r in con.execute(to_sql(model, table="t"))]
    assert full == got
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == len(df)
    return got


def python_predict(model, df: pd.DataFrame, none_for_missing: bool = False) -> list:
    ns: dict = {}
    exec(to_python(model, name="score_row"), ns)
    f = ns["score_row"]
    records = df.to_dict("records")
    if none_for_missing:
        records = [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in records]
    return [f(r) for r in records]


def comparable(model, df: pd.DataFrame) -> np.ndarray:
    """Rows where the export must agree exactly (see the module's note on near ties)."""
    cov = model.coverage_matrix(df)
    if isinstance(model, RuleList):
        return np.ones(len(df), dtype=bool)
    if isinstance(model, AdditiveRules):
        w = np.asarray(model.weights).reshape(len(model.rules), len(model.intercept))
        terms = (cov[:, :, None] & (w != 0)[None, :, :]).sum(axis=1).max(axis=1)
        s = model.decision_function(df)
        if model.link == "logistic" or s.shape[1] == 1:
            margin = np.abs(s[:, 0])
        else:
            top = np.sort(s, axis=1)
            margin = top[:, -1] - top[:, -2]
    else:
        terms = cov.sum(axis=1)
        if model.task == "classification":
            top = np.sort(model.predict_proba(df), axis=1)
            margin = top[:, -1] - top[:, -2]
        else:
            margin = np.full(len(df), np.inf)
    return ~((np.asarray(terms) >= 3) & (margin < 1e-9))


def assert_same_predictions(model, df: pd.DataFrame, got: list) -> None:
    want = model.predict(df)
    ok = comparable(model, df)
    if model.task == "classification":
        assert [g for g, o in zip(got, ok, strict=True) if o] == [w for w, o in zip(want, ok, strict=True) if o]
        return
    got = np.asarray(got, dtype=float)
    exact = ok
    if not isinstance(model, RuleList):
        # Regression sums of three or more rule values: numpy may add them in another order.
        cov = model.coverage_matrix(df)
        exact = cov.sum(axis=1) < 3 if cov.shape[1] else np.ones(len(df), dtype=bool)
    np.testing.assert_array_equal(got[exact], want[exact])
    np.testing.assert_allclose(got[~exact], want[~exact], rtol=1e-12, atol=1e-9)


# ---------------------------------------------------------------------- properties
@settings(max_examples=150, deadline=None)
@given(model=rule_models(), seed=st.integers(0, 50))
def test_sql_predicts_what_the_model_predicts(model, seed):
    df = frame(seed)
    assert_same_predictions(model, df, sql_predict(model, df))


@settings(max_examples=150, deadline=None)
@given(model=rule_models(), seed=st.integers(0, 50), none_for_missing=st.booleans())
def test_python_function_predicts_what_the_model_predicts(model, seed, none_for_missing):
    df = frame(seed)
    assert_same_predictions(model, df, python_predict(model, df, none_for_missing))


@settings(max_examples=150, deadline=None)
@given(model=rule_models(), seed=st.integers(0, 50))
def test_json_round_trip_gives_an_equal_model(model, seed):
    text = to_json(model)
    back = from_json(text)
    assert type(back) is type(model)
    assert back == model
    assert back.feature_order == model.feature_order
    assert to_json(back) == text
    df = frame(seed)
    np.testing.assert_array_equal(back.predict(df), model.predict(df))
    if model.task == "classification":
        np.testing.assert_array_equal(back.predict_proba(df), model.predict_proba(df))


@settings(max_examples=60, deadline=None)
@given(model=rule_models())
def test_text_is_the_models_text(model):
    assert to_text(model) == model.text()


# ---------------------------------------------------------------------- exactness and safety
def test_numbers_sqlite_misreads_in_shortest_form_are_written_exactly():
    con = sqlite3.connect(":memory:")
    # SQLite reads the shortest form of this float one unit in the last place off.
    assert con.execute("SELECT 0.0454811").fetchone()[0] != 0.0454811
    for x in [0.0454811, 0.1, 1 / 3, 7.3, 1e-7, 123456.789, 5e-324, 1e-300, 1.7976931348623157e308, -2.5e250, 3.5, 0.0]:
        lit = _float_literal(x)
        assert con.execute(f"SELECT {lit}").fetchone()[0] == x, lit
        assert float(eval(lit.replace("CAST(", "float(").replace(" AS DOUBLE PRECISION", ""))) == x
    assert _float_literal(3.5) == "3.5" and _float_literal(120.0) == "120.0"
    # A threshold equal to a data value: "<=" passes it, "<" does not, in SQL as in the model.
    x = 0.0454811
    df = pd.DataFrame({"x": [x, np.nextafter(x, 0), np.nextafter(x, 1), np.nan]})
    for op in ("<=", "<", ">", ">="):
        rl = RuleList((Rule((Condition("x", op, x),), "yes"),), Rule((), "no"), classes=CLASSES2)
        assert sql_predict(rl, df) == list(rl.predict(df)) == python_predict(rl, df)


def test_thresholds_are_written_as_the_rules_print_them():
    # A fitted model's thresholds are short decimals: the exports write them as printed, in
    # full (never 0.59850000000000003197), and whole values of integer kinds as integers.
    rl = RuleList(
        (Rule((Condition("x", "<=", 0.5985), Condition("k", ">", 61.0, kind="integer")), "yes"),),
        Rule((), "no"),
        classes=CLASSES2,
    )
    sql, py = to_sql(rl), to_python(rl)
    assert '"x" <= 0.5985)' in sql and '"k" > 61)' in sql
    assert "0.59850000" not in sql and "61.0" not in sql
    assert "<= 0.5985)" in py and "> 61)" in py and "61.0" not in py
    assert "x <= 0.5985" in rl.text() and "k > 61" in rl.text()
    x = 0.5985
    df = pd.DataFrame({"x": [x, np.nextafter(x, 0), np.nextafter(x, 1), 0.5, np.nan], "k": [62.0, 61.0, 61.5, 70.0, 62.0]})
    assert sql_predict(rl, df) == list(rl.predict(df)) == python_predict(rl, df)


def test_a_fitted_surrogates_exports_print_its_thresholds_as_its_text(tmp_path):
    from pellucid._validation import exact
    from pellucid.oracle import Oracle
    from pellucid.surrogates import ExhaustiveRuleList

    from .conftest import mixed_frame

    df = mixed_frame(400, 2)
    oracle = Oracle(
        lambda d: np.eye(2)[((d["x"].fillna(0).to_numpy() > 10.3) | (d["age"].to_numpy() > 61)).astype(int)],
        task="classification",
        classes=["no", "yes"],
    )
    s = ExhaustiveRuleList(max_rules=3).fit(distill(oracle, df, strategy="observed", random_state=0))
    sql, py = to_sql(s), to_python(s)
    conds = [c for r in s.rules_ for c in r.conditions if c.op in ("<=", "<", ">", ">=")]
    assert conds
    for c in conds:
        written = exact(c.value, c.kind in ("integer", "binary"))
        assert f"{c.feature} {c.op} {written}" in s.rules_.text()
        assert f'"{c.feature}" {c.op} {written}' + (" OR" if c.missing else ")") in sql
        assert f" {c.op} {written})" in py
        assert len(written.replace("-", "").replace(".", "").lstrip("0")) <= 6  # short, after snapping
    rows = s.schema_.validate(mixed_frame(200, 9))
    assert sql_predict(s.rules_, rows) == list(s.predict(rows)) == python_predict(s.rules_, rows)


def only_expected_code(src: str) -> None:
    """The source is ``import math`` and one function calling nothing but what pellucid writes:
    names and texts from data appear only as string literals and comments."""
    tree = ast.parse(src)
    assert [type(n) for n in tree.body] == [ast.Import, ast.FunctionDef]
    for node in ast.walk(tree.body[1]):
        assert not isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.Lambda)) or node is tree.body[1]
        if isinstance(node, ast.Call):
            f = node.func
            called = f.id if isinstance(f, ast.Name) else f"{f.value.id}.{f.attr}"
            assert called in {"float", "isinstance", "range", "math.isnan"}


def test_names_and_categories_cannot_inject_code():
    df = frame(3)
    name = 'x"]; import os; os.remove("f") #\n\'\'\''
    df[name] = df["x"]
    rules = (
        Rule((Condition(WEIRD, "<=", 0.5), Condition("c", "in", ["O'Brien", CATS[3]], kind="categorical")), "it's"),
        Rule((Condition(name, ">", 1.0, missing=True),), 'mid"dle'),
    )
    rl = RuleList(rules, Rule((), "low"), classes=CLASSES3)
    table = 't"; DROP TABLE t; --'
    sql = to_sql(rl, table=table)
    assert "'O''Brien'" in sql and '"a""; DROP TABLE t; --"' in sql
    con = sqlite_table(df, table)
    got = [r[-1] for r in con.execute(sql)]
    assert got == list(rl.predict(df))
    # The table is still there, with all its rows.
    assert con.execute(f"SELECT count(*) FROM {q(table)}").fetchone()[0] == len(df)
    only_expected_code(to_python(rl))
    assert python_predict(rl, df) == list(rl.predict(df))
    # A rule text with a line break stays inside its comment.
    rs = RuleSet((Rule((Condition("c\nimport os", "in", ["a"], kind="categorical"),), "yes", (0.1, 0.9)),),
                 Rule((), "no", (0.9, 0.1)), classes=CLASSES2)
    src = to_python(rs)
    only_expected_code(src)
    ns: dict = {}
    exec(src, ns)
    assert ns["predict"]({"c\nimport os": "a"}) == "yes" and ns["predict"]({"c\nimport os": None}) == "no"


def test_sql_columns_map_features_to_other_column_names():
    df = frame(1)
    rl = RuleList((Rule((Condition("x", "<=", 0.5, True),), "yes"),), Rule((), "no"), classes=CLASSES2)
    con = sqlite_table(df.rename(columns={"x": "income col"}))
    sql = to_sql(rl, columns={"x": "income col"})
    assert [r[0] for r in con.execute(f"SELECT {sql} FROM t")] == list(rl.predict(df))
    sql = to_sql(rl, table=("main", "t"), alias="label")
    assert sql.startswith('SELECT "main"."t".*') and sql.endswith('AS "label"\nFROM "main"."t"')


def test_infinite_thresholds_and_empty_sets_speak_only_of_missingness():
    df = frame(2)
    conds = [
        Condition("x", "<=", math.inf),  # x is not missing
        Condition("x", ">", math.inf, missing=True),  # x is missing
        Condition("c", "in", [], missing=True, kind="categorical"),  # c is missing
        Condition("c", "not in", [], kind="categorical"),  # c is not missing
        Condition("k", "<", -math.inf),  # never
        Condition("k", ">=", -math.inf, missing=True),  # always
    ]
    for c in conds:
        rl = RuleList((Rule((c,), "yes"),), Rule((), "no"), classes=CLASSES2)
        sql = to_sql(rl)
        assert "inf" not in sql.lower()
        want = list(rl.predict(df))
        assert sql_predict(rl, df) == want == python_predict(rl, df) == python_predict(rl, df, True)


def test_integer_and_boolean_labels_and_categories():
    df = pd.DataFrame({"flag": np.array([True, False, np.nan, True], dtype=object), "n": [1.0, 2.0, 3.0, np.nan]})
    rl = RuleList(
        (Rule((Condition("flag", "in", [True], kind="categorical"),), 1), Rule((Condition("n", ">", 2.5),), 2)),
        Rule((), 0),
        classes=(0, 1, 2),
    )
    assert python_predict(rl, df) == list(rl.predict(df)) == [1, 0, 2, 1]
    assert "TRUE" in to_sql(rl)
    assert from_json(to_json(rl)) == rl


def test_empty_models_give_their_default():
    df = frame(4)
    for model in (
        RuleList((), Rule((), "yes", (0.4, 0.6)), classes=CLASSES2),
        RuleSet((), Rule((), 2.5), task="regression"),
        AdditiveRules((), (), (0.25,), link="identity", task="regression"),
        AdditiveRules((), (), (-0.25,), link="logistic", task="classification", classes=CLASSES2),
    ):
        want = list(model.predict(df))
        assert sql_predict(model, df) == want == python_predict(model, df)


def test_surrogates_are_exported_through_their_rules():
    from pellucid.oracle import Oracle
    from pellucid.surrogates import DecisionTree

    from .conftest import mixed_frame

    df = mixed_frame(300, 0)
    oracle = Oracle(
        lambda d: np.column_stack([d["x"].fillna(0).to_numpy() > 10, d["x"].fillna(0).to_numpy() <= 10]).astype(float),
        task="classification",
        classes=["big", "small"],
    )
    d = distill(oracle, df, strategy="observed", random_state=0)
    tree = DecisionTree(max_leaf_nodes=6).fit(d)
    rows = d.schema.validate(mixed_frame(80, 1))
    assert to_text(tree) == tree.rules_.text()
    assert from_json(to_json(tree)) == tree.rules_
    con = sqlite_table(rows)
    assert [r[-1] for r in con.execute(to_sql(tree, table="t"))] == list(tree.predict(rows))
    assert python_predict(tree, rows) == list(tree.predict(rows))
    with pytest.raises(NotFittedError):
        to_sql(DecisionTree())


def test_bad_input_is_refused_with_a_clear_error():
    rl = RuleList((), Rule((), "no"), classes=CLASSES2)
    with pytest.raises(ParameterError, match="RuleList, RuleSet or AdditiveRules"):
        to_sql("not a model")
    with pytest.raises(ParameterError, match="identifier"):
        to_python(rl, name="def")
    with pytest.raises(ParameterError, match="identifier"):
        to_python(rl, name="a b")
    with pytest.raises(ParameterError, match="table"):
        to_sql(rl, table=3)
    with pytest.raises(ParameterError, match="columns"):
        to_sql(rl, columns=["x"])
    with pytest.raises(ParameterError, match="not valid JSON"):
        from_json("{")
    with pytest.raises(ParameterError, match="not a rule model"):
        from_json("[1, 2]")
    with pytest.raises(ParameterError, match="version"):
        from_json('{"type": "rule_list", "format": "pellucid.rules", "version": 99}')
    with pytest.raises(ParameterError, match="malformed 'rule_set'"):
        from_json('{"type": "rule_set", "rules": []}')
    odd = Condition("c", "in", [object()], kind="categorical")
    weird = RuleList((Rule((odd,), "yes"),), Rule((), "no"), classes=CLASSES2)
    with pytest.raises(ParameterError, match="category"):
        to_sql(weird)
    with pytest.raises(ParameterError, match="category"):
        to_python(weird)


def test_from_report_names_what_it_cannot_read(tmp_path):
    from pellucid.extraction import from_report

    rule = {"outcome": "yes", "conditions": [{"feature": "x", "op": ">", "value": None, "missing": True,
                                              "text": "x is missing"}]}
    entry = {"name": "decision_tree", "label": "decision_tree (max_leaf_nodes=4)", "ordered": False,
             "task": "classification", "classes": ["no", "yes"], "rules": [rule], "default": {"outcome": "no"}}
    report = {"surrogates": [entry], "recommended": 0}
    # A report before version 2.0 wrote the infinite threshold as null: the error names it.
    with pytest.raises(ParameterError, match=r"surrogate 0 \(decision_tree \(max_leaf_nodes=4\)\): rule 0: condition 'x is missing'"):
        from_report(report)
    good = {**entry, "rules": [{**rule, "conditions": [{**rule["conditions"][0], "value": "inf"}]}]}
    model = from_report({"surrogates": [good], "recommended": None}, 0)
    df = pd.DataFrame({"x": [1.0, np.nan]})
    assert list(model.predict(df)) == ["no", "yes"]
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"surrogates": [good], "recommended": 0}))
    assert from_report(path) == from_report(str(path)) == model
    with pytest.raises(ParameterError, match="recommends no surrogate"):
        from_report({"surrogates": [good], "recommended": None})
    with pytest.raises(ParameterError, match="index"):
        from_report({"surrogates": [good], "recommended": 0}, 3)
    with pytest.raises(ParameterError, match="neither JSON text nor a file"):
        from_report(str(tmp_path / "absent.json"))
    with pytest.raises(ParameterError, match="from_report"):
        from_report({"schema_version": "1.5"})
    with pytest.raises(ParameterError, match="from_report"):
        from_report(good, 0)
    with pytest.raises(ParameterError, match="is a report"):
        from_json(path.read_text())
