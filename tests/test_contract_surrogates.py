"""One contract over every registered surrogate (``pellucid.surrogates.SURROGATES``): what the
fitted model prints is what it tests, on the training rows and on fresh ones.

Every surrogate that handles the task is fitted on a small distillation set of a table with
every feature kind (``x``, ``count`` and ``color`` have missing values; ``flag``, ``size`` and
``age`` never do), and its rules are checked against the rows with pandas: thresholds are the
shortest decimals between the training values on either side, the printed threshold accepts
exactly the rows the model's condition accepts, no condition speaks of missing values of a
feature that never had one, each rule's training support is counted on both bases, and a
report's JSON reads back into a model that predicts what the surrogate predicts. Expected
values are computed here from the rows (pandas masks, :mod:`decimal`), never copied from the
code's own output.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from decimal import ROUND_CEILING, Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from pellucid._validation import Interval, exact
from pellucid.errors import ParameterError, PellucidError
from pellucid.extraction import distill, from_json, from_report, to_json
from pellucid.extraction.rules import NUMERIC_OPS, AdditiveRules, RuleList, snap_threshold
from pellucid.fidelity import evaluate
from pellucid.oracle import Oracle
from pellucid.reports import build_payload
from pellucid.surrogates import SURROGATES

from .conftest import mixed_frame

NEVER_MISSING = ("flag", "size", "age")
TASKS = ("classification", "regression")


def network(task: str):
    """Thresholds inside the data (x near 10.3, age 61, count 3), categories, a binary flag."""

    def f(df):
        x = np.nan_to_num(df["x"].astype(float).to_numpy(), nan=12.0)
        age = df["age"].astype(float).to_numpy()
        count = np.nan_to_num(df["count"].astype(float).to_numpy(), nan=0.0)
        s = 1.3 * (x > 10.3) * df["color"].isin(["red", "blue"]).to_numpy() + 1.1 * (age > 61) + 0.6 * (count > 3)
        s = s + 0.4 * df["flag"].astype(float).to_numpy() - 0.9
        if task == "regression":
            return s
        p = 1 / (1 + np.exp(-3 * s))
        return np.column_stack([1 - p, p])

    return Oracle(f, task=task, classes=["no", "yes"] if task == "classification" else None)


@pytest.fixture(scope="module")
def dsets():
    df = mixed_frame(500, 3)
    return {task: distill(network(task), df, strategy=("observed", "perturb"), n=300, random_state=0) for task in TASKS}


@pytest.fixture(scope="module")
def fresh(dsets):
    """Rows the surrogates never saw, with missing values in every feature, including those
    never missing in the data."""
    df = mixed_frame(300, 11)
    df = df.astype({"flag": object, "age": float})
    rng = np.random.default_rng(5)
    for name in df.columns:
        df.loc[rng.random(len(df)) < 0.08, name] = np.nan
    return dsets["classification"].schema.validate(df)


CASES = [(n, t) for n, cls in SURROGATES.items() for t in TASKS if cls.supports(t, 2)]


@pytest.fixture(scope="module")
def fitted(dsets):
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, task in CASES:
            s = SURROGATES[name]()
            returned = s.fit(dsets[task])
            assert returned is s, f"{name}.fit returned {returned!r}, not the surrogate itself"
            out[name, task] = s
    return out


# ---------------------------------------------------------------------- independent helpers
def known_values(rows: pd.DataFrame, feature: str) -> np.ndarray:
    return np.unique(rows[feature].dropna().to_numpy(dtype=float))


def shortest_decimal(lo: float, hi: float, closed: str) -> float:
    """The smallest point of the coarsest decimal grid inside the gap, found by trying grids
    from 10**20 down: ``[lo, hi)`` (closed left) or ``(lo, hi]`` (closed right)."""

    def inside(t: float) -> bool:
        return lo <= t < hi if closed == "left" else lo < t <= hi

    for p in range(-20, 340):
        step = Decimal(1).scaleb(-p)
        k = (Decimal(lo) / step).to_integral_value(rounding=ROUND_CEILING)
        for j in (k - 1, k, k + 1, k + 2):
            if inside(float(j * step)):
                return float(j * step)
    raise AssertionError("no decimal in the gap")


def numeric_conditions(model):
    for r in list(model.rules) + [model.default]:
        for c in r.conditions:
            if c.op in NUMERIC_OPS:
                yield r, c


def every_condition(s):
    """The conditions of the rules and, for trees, of the drawn nodes."""
    out = [c for r in s.rules_.rules for c in r.conditions]
    for n in getattr(s, "nodes_", None) or ():
        out += [c for c in (n.condition, n.negation) if c is not None]
    return out


def printed_mask(c, rows: pd.DataFrame) -> np.ndarray:
    """The rows a reader selects from the condition as printed: the number written in its
    text (``exact``), compared with pandas; a missing value passes only where the text says
    ``or ... is missing``."""
    col = rows[c.feature]
    isna = col.isna().to_numpy()
    text = c.text()
    says_missing = f"{c.feature} is missing" in text
    assert says_missing == (c.missing and c.known_values != "all"), text
    if c.known_values != "some":
        passes = np.zeros(len(rows), bool) if c.known_values == "none" else np.ones(len(rows), bool)
    elif c.op in NUMERIC_OPS:
        v = col.to_numpy(dtype=float)
        if c.kind == "binary" and f"{c.feature} = " in text:
            equal = [x for x in (0, 1) if f"{c.feature} = {x}" in text]
            assert len(equal) == 1, text
            passes = v == equal[0]
        else:
            written = exact(c.value, c.kind in ("integer", "binary"))
            assert f"{c.feature} {c.op} {written}" in text, (text, written)
            t = float(written)
            with np.errstate(invalid="ignore"):
                passes = {"<=": v <= t, "<": v < t, ">": v > t, ">=": v >= t}[c.op]
    else:
        passes = col.isin(list(c.value)).to_numpy()
        if c.op == "not in":
            passes = ~passes
    return (passes & ~isna) | (isna & c.missing)


def rule_mask(rule, rows):
    m = np.ones(len(rows), bool)
    for c in rule.conditions:
        m &= printed_mask(c, rows)
    return m


def train_of(dset):
    return dset.train if dset.is_holdout.any() else dset


# ---------------------------------------------------------------------- the contract
@pytest.mark.parametrize("name,task", CASES)
def test_thresholds_are_the_shortest_decimals_between_training_values(fitted, dsets, name, task):
    s = fitted[name, task]
    train = train_of(dsets[task]).rows
    checked = 0
    for c in every_condition(s):
        if c.op not in NUMERIC_OPS or not math.isfinite(c.value):
            continue
        v = known_values(train, c.feature)
        below = v[v <= c.value] if c.op in ("<=", ">") else v[v < c.value]
        above = v[v > c.value] if c.op in ("<=", ">") else v[v >= c.value]
        if len(below) and len(above):
            closed = "left" if c.op in ("<=", ">") else "right"
            assert c.value == shortest_decimal(below.max(), above.min(), closed), c.text()
            checked += 1
    if name not in ("sparse_linear",):
        assert checked, f"{name} tested no threshold between training values"


@pytest.mark.parametrize("name,task", CASES)
def test_snapping_keeps_every_training_prediction(fitted, dsets, name, task):
    s = fitted[name, task]
    train = train_of(dsets[task])
    before, after = s.learner_rules_, s.rules_
    np.testing.assert_array_equal(after.coverage_matrix(train.rows), before.coverage_matrix(train.rows))
    np.testing.assert_array_equal(s.predict(train.rows), before.predict(train.rows))
    if task == "classification":
        np.testing.assert_array_equal(s.predict_proba(train.rows), before.predict_proba(train.rows))


@pytest.mark.parametrize("name,task", CASES)
def test_every_printed_rule_selects_the_rows_the_model_selects(fitted, dsets, fresh, name, task):
    s = fitted[name, task]
    train = train_of(dsets[task]).rows
    for rows in (train, fresh):
        for j, rule in enumerate(s.rules_.rules):
            np.testing.assert_array_equal(rule_mask(rule, rows), rule.apply(rows), err_msg=rule.text())
            # The rule's own line prints each threshold as its condition does.
            for c in rule.conditions:
                if c.op in NUMERIC_OPS and c.known_values == "some" and not (c.kind == "binary"):
                    assert exact(c.value, c.kind in ("integer", "binary")) in rule.text(), rule.text()
        # A tree's drawing: each leaf's rule is its path through the drawn nodes.
        nodes = getattr(s, "nodes_", None)
        if nodes:
            by_id = {n.id: n for n in nodes}
            paths = {nodes[0].id: np.ones(len(rows), bool)}
            for n in sorted(nodes, key=lambda n: n.depth):
                if n.left is not None:
                    paths[n.left] = paths[n.id] & printed_mask(n.condition, rows)
                    paths[n.right] = paths[n.id] & printed_mask(n.negation, rows)
            for n in by_id.values():
                if n.rule_index is not None:
                    np.testing.assert_array_equal(paths[n.id], s.rules_.rules[n.rule_index].apply(rows))


@pytest.mark.parametrize("name,task", CASES)
def test_no_condition_speaks_of_missing_values_that_never_occurred(fitted, dsets, fresh, name, task):
    s = fitted[name, task]
    d = dsets[task]
    never = [f for f in NEVER_MISSING if d.schema[f].n_missing == 0 and not d.rows[f].isna().any()]
    assert never == list(NEVER_MISSING)
    assert set(s.missing_features_) == {"x", "count", "color"}
    for c in every_condition(s):
        if c.feature in never:
            assert not c.missing, c.text()
            assert "missing" not in c.text(), c.text()
            # A row missing the feature matches no condition on it.
            assert not c.apply(fresh)[fresh[c.feature].isna().to_numpy()].any()
    assert not any(f"{f} is missing" in s.rules_.text() for f in never)


@pytest.mark.parametrize("name,task", CASES)
def test_training_support_is_counted_on_both_bases(fitted, dsets, name, task):
    s = fitted[name, task]
    train = train_of(dsets[task])
    w = np.asarray(train.weights, dtype=float)
    masks = [rule_mask(r, train.rows) for r in s.rules_.rules]
    undecided = np.ones(len(w), bool)
    shares = s.train_support_
    assert len(shares["rules"]) == s.rules_.n_rules
    for j, (r, m) in enumerate(zip(s.rules_.rules, masks, strict=True)):
        matches = w[m].sum() / w.sum()
        assert shares["rules"][j]["matches"] == pytest.approx(matches, abs=1e-12)
        assert r.support == pytest.approx(matches, abs=1e-12)
        if isinstance(s.rules_, AdditiveRules):
            assert shares["rules"][j]["decides"] is None
        else:
            # The first rule that matches a row decides it (a tree's leaves match once).
            decides = w[m & undecided].sum() / w.sum()
            assert shares["rules"][j]["decides"] == pytest.approx(decides, abs=1e-12)
        undecided &= ~m
    if not isinstance(s.rules_, AdditiveRules):
        assert shares["default"]["decides"] == pytest.approx(w[undecided].sum() / w.sum(), abs=1e-12)


@pytest.mark.parametrize("task", TASKS)
def test_report_entries_read_back_into_models_that_predict_the_same(fitted, dsets, task):
    d = dsets[task]
    surrogates = [fitted[n, t] for n, t in CASES if t == task]
    assert len(surrogates) == sum(cls.supports(task, 2) for cls in SURROGATES.values())
    fids = [evaluate(s, rows=d) for s in surrogates]
    payload = build_payload(model={}, schema=d.schema, dset=d, surrogates=surrogates, fidelities=fids)
    text = json.dumps(payload, allow_nan=False)
    back = json.loads(text)
    rows = d.holdout.rows
    for i, s in enumerate(surrogates):
        entry = back["surrogates"][i]
        model = from_report(back, i)
        assert type(model) is type(s.rules_)
        np.testing.assert_array_equal(model.predict(rows), s.predict(rows), err_msg=entry["name"])
        if task == "classification":
            np.testing.assert_array_equal(model.predict_proba(rows), s.predict_proba(rows))
        # The same from the entry alone and from the JSON text.
        np.testing.assert_array_equal(from_report(entry).predict(rows), s.predict(rows))
        np.testing.assert_array_equal(from_report(text, i).predict(rows), s.predict(rows))
        # Training support on both bases, labelled; the features that had missing values.
        for r, share in zip(entry["rules"], s.train_support_["rules"], strict=True):
            assert r["train_matches"] == share["matches"] and r["train_decides"] == share["decides"]
        assert entry["missing_values"]["features"] == ["x", "count", "color"]
        assert "x, count, color" in entry["missing_values"]["text"]


# ---------------------------------------------------------------------- the estimator contract
# After scikit-learn's ``parametrize_with_checks``: the habits every registered surrogate keeps,
# whatever it is, so that a new one is covered by adding it to the registry.
NAMES = sorted(SURROGATES)


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_is_declared_and_the_defaults_pass(name):
    cls = SURROGATES[name]
    params = cls().get_params()
    assert set(cls._parameter_constraints) == set(params), name
    cls()._validate_params()
    assert "random_state" in params, f"{name} has no random_state"


@pytest.mark.parametrize("name", NAMES)
def test_get_params_set_params_and_clone_round_trip(name, dsets):
    cls = SURROGATES[name]
    s = cls()
    params = s.get_params()
    assert s.set_params(**params) is s and s.get_params() == params
    size = cls.size_param or "random_state"
    changed = {size: 3}
    s.set_params(**changed)
    assert s.get_params()[size] == 3
    c = clone(s)
    assert type(c) is cls and c is not s and c.get_params() == s.get_params()
    assert repr(c) == repr(s)
    with pytest.raises(ParameterError, match=rf"{cls.__name__}: no parameter 'nonsense'"):
        s.set_params(nonsense=1)


@pytest.mark.parametrize("name", NAMES)
def test_predict_before_fit_is_a_pellucid_error(name, dsets):
    s = SURROGATES[name]()
    rows = dsets["classification"].rows.head(5)
    for method in (s.predict, s.predict_proba, s.complexity, s.describe):
        with pytest.raises(PellucidError, match="not fitted"):
            method(rows) if method in (s.predict, s.predict_proba) else method()


@pytest.mark.parametrize("name,task", CASES)
def test_predict_is_the_rules_own_prediction(fitted, dsets, fresh, name, task):
    s = fitted[name, task]
    for rows in (dsets[task].holdout.rows, fresh):
        np.testing.assert_array_equal(s.predict(rows), s.rules_.predict(rows))
        if task == "classification":
            np.testing.assert_array_equal(s.predict_proba(rows), s.rules_.predict_proba(rows))


@pytest.mark.parametrize("name,task", CASES)
def test_rules_speak_raw_feature_names(fitted, dsets, name, task):
    s = fitted[name, task]
    schema = dsets[task].schema
    names = set(schema.names)
    used = {c.feature for r in s.rules_.rules for c in r.conditions}
    used |= {t.feature for t in getattr(s.rules_, "linear", ())}
    assert used and used <= names, (name, used - names)
    # No encoded column (one-hot "color_red", "flag_True", positional "x3", "feature_2") in the text.
    text = s.rules_.text()
    for f in schema:
        for c in f.categories or ():
            for encoded in (f"{f.name}_{c}", f"{f.name}={c}", f"{f.name}[{c}]"):
                assert encoded not in text, (name, encoded, text)
    assert not re.search(r"\b(?:x|X|feature_?|f|col_?)\d+\b", text), text
    for flag in ("flag_True", "flag_False", "flag_1", "flag_0"):
        assert flag not in text, text


@pytest.mark.parametrize("name,task", CASES)
def test_json_round_trip_predicts_identically(fitted, dsets, fresh, name, task):
    s = fitted[name, task]
    back = from_json(to_json(s))
    assert back == s.rules_ or back.text() == s.rules_.text()
    for rows in (dsets[task].holdout.rows, fresh):
        np.testing.assert_array_equal(back.predict(rows), s.predict(rows))
        if task == "classification":
            np.testing.assert_array_equal(back.predict_proba(rows), s.predict_proba(rows))


@pytest.mark.parametrize("name,task", CASES)
def test_a_fitted_surrogate_pickles_and_predicts_as_before(fitted, dsets, fresh, name, task):
    """Stability refits come back from worker processes, and users keep fitted surrogates:
    plain pickle (not cloudpickle) must carry every one, learner included."""
    import pickle

    s = fitted[name, task]
    back = pickle.loads(pickle.dumps(s))
    assert back.rules_.to_dict() == s.rules_.to_dict()
    for rows in (dsets[task].holdout.rows, fresh):
        np.testing.assert_array_equal(back.predict(rows), s.predict(rows))


@pytest.mark.parametrize("name,task", CASES)
def test_same_seed_same_rules(fitted, dsets, name, task):
    s = fitted[name, task]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = clone(s).fit(dsets[task])
    assert again.rules_.text() == s.rules_.text()
    assert again.rules_.to_dict() == s.rules_.to_dict()


SIZED = [(n, t) for n, t in CASES if SURROGATES[n].size_param is not None]


@pytest.mark.parametrize("name,task", SIZED)
def test_fits_at_several_sizes_equal_fresh_fits(dsets, fresh, name, task):
    """fit_sizes, which reads the smaller fits off the largest where the class has a size
    path, gives at each size what a fresh fit at that size gives."""
    cls = SURROGATES[name]
    # One rule is a size the rule counts allow (a tree needs two leaves); a list that stops at
    # two rules on these rows then still differs between sizes.
    smallest = 1 if cls.size_param == "max_rules" else 2
    sizes = (smallest, 5, 9) if cls.size_path else (2, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = cls().fit_sizes(dsets[task], sizes[::-1])
        for size, got in zip(sizes, fits, strict=True):
            assert getattr(got, cls.size_param) == size
            want = cls(**{cls.size_param: size}).fit(dsets[task])
            assert got.rules_.to_dict() == want.rules_.to_dict(), (name, size)
            np.testing.assert_array_equal(got.predict(fresh), want.predict(fresh))
    if cls.size_path:
        # The sizes are not all the same model: the path is read, not repeated.
        assert len({f.rules_.text() for f in fits}) > 1 or name == "skope_rules"


class _Nonsense:
    """A value no constraint but ``no_validation`` accepts."""

    def __repr__(self) -> str:
        return "<nonsense>"


def _below(constraints):
    """A value just outside the first bounded interval of ``constraints`` (None if none)."""
    for c in constraints:
        if isinstance(c, Interval) and c.left is not None:
            return c.left - 1 if c.closed in ("left", "both") else c.left
    return None


@pytest.mark.parametrize("name", NAMES)
def test_a_bad_parameter_is_refused_naming_class_and_parameter(name, dsets):
    cls = SURROGATES[name]
    d = dsets["classification"]
    for param, constraints in cls._parameter_constraints.items():
        if constraints == ["no_validation"]:
            continue
        for bad in (_Nonsense(), _below(constraints), True):
            if bad is None or (bad is True and "boolean" in constraints):
                continue
            s = cls().set_params(**{param: bad})
            pattern = rf"^{cls.__name__}: {param} must be .*, got {re.escape(repr(bad))}$"
            with pytest.raises(ParameterError, match=pattern):
                s.fit(d)


# ---------------------------------------------------------------------- snapping itself
@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.floats(-1e4, 1e4, allow_nan=False) | st.integers(-50, 50).map(float), min_size=1, max_size=30),
    t=st.floats(-2e4, 2e4, allow_nan=False),
    op=st.sampled_from(NUMERIC_OPS),
)
def test_snapped_threshold_splits_the_values_as_the_original(values, t, op):
    v = np.unique(np.array(values))
    snapped = snap_threshold(op, t, v)
    cmp = {"<=": np.less_equal, "<": np.less, ">": np.greater, ">=": np.greater_equal}[op]
    np.testing.assert_array_equal(cmp(v, snapped), cmp(v, t))
    below = v[v <= t] if op in ("<=", ">") else v[v < t]
    above = v[v > t] if op in ("<=", ">") else v[v >= t]
    if len(below) and len(above):
        assert snapped == shortest_decimal(below.max(), above.min(), "left" if op in ("<=", ">") else "right")
    # Beyond every value it moves no further than the nearest one.
    elif len(below):
        assert below.max() <= snapped <= t
    elif len(above):
        assert t <= snapped <= above.min()


def test_a_rule_list_decides_with_its_first_matching_rule_in_its_support():
    # Two rules matching the same rows: the second matches as many but decides none.
    from pellucid.extraction.rules import Condition, Rule, rule_shares

    rows = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    c = Condition("x", "<=", 2.0)
    rl = RuleList((Rule((c,), "yes"), Rule((c,), "no")), Rule((), "no"), classes=("no", "yes"))
    shares = rule_shares(rl, rows)
    assert [r["matches"] for r in shares["rules"]] == [0.5, 0.5]
    assert [r["decides"] for r in shares["rules"]] == [0.5, 0.0]
    assert shares["default"] == {"matches": 1.0, "decides": 0.5}
