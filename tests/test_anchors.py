"""Anchors: known rules are found, precision holds on fresh samples drawn here, the rule's own
conditions reproduce coverage, queries are batched, and mistakes are named."""

from __future__ import annotations

import copy
import importlib
import json

import numpy as np
import pandas as pd
import pytest

from pellucid import Oracle
from pellucid.demo import CLASSES
from pellucid.errors import ParameterError, SchemaError
from pellucid.extraction.rules import Rule
from pellucid.schema import Schema
from pellucid.surrogates.anchors import Anchor, anchor, anchors, kl_lower, kl_upper

from .conftest import mixed_frame

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 3000
    return pd.DataFrame({
        "x1": rng.uniform(0, 10, n),
        "x2": rng.normal(size=n),
        "cat": rng.choice(["a", "b", "c"], n).astype(object),
        "k": rng.integers(0, 6, n),
    })


def rule_model(df: pd.DataFrame) -> np.ndarray:
    """Class 1 iff x1 > 5 and cat == "a"."""
    return ((df["x1"].to_numpy(dtype=float) > 5) & (df["cat"].to_numpy() == "a")).astype(int)


def x2_model(df: pd.DataFrame) -> np.ndarray:
    return (df["x2"].to_numpy(dtype=float) > 0).astype(int)


def oracle_of(fn) -> Oracle:
    return Oracle(fn, classes=[0, 1], verbose=0)


def canonical(reference: pd.DataFrame) -> pd.DataFrame:
    return Schema.from_frame(reference).validate(reference)


def fresh_precision(predict, reference: pd.DataFrame, a: Anchor, n: int = 4000, seed: int = 12345) -> float:
    """Precision on samples drawn here, independently of pellucid's sampler: reference rows
    whose anchored features take reference values that satisfy the rule's own conditions."""
    ref = canonical(reference)
    rng = np.random.default_rng(seed)
    base = ref.iloc[rng.integers(len(ref), size=n)].reset_index(drop=True)
    for f in a.features:
        ok = np.logical_and.reduce([c.apply(ref) for c in a.conditions if c.feature == f])
        base[f] = ref[f].to_numpy()[rng.choice(np.flatnonzero(ok), n)]
    assert a.rule.apply(base).all()  # the samples satisfy the anchor
    return float(np.mean(np.asarray(predict(base), dtype=object) == a.prediction))


# ---------------------------------------------------------------------- known rules
def test_known_rule_is_found_with_its_thresholds(table):
    row = pd.DataFrame({"x1": [7.3], "x2": [0.4], "cat": ["a"], "k": [2]})
    a = anchor(oracle_of(rule_model), row, table, 0.95, random_state=0)
    assert a.success and a.prediction == 1
    assert set(a.features) == {"x1", "cat"}
    by = {c.feature: c for c in a.conditions}
    assert by["cat"].op == "in" and by["cat"].value == ("a",)
    lower = [c for c in a.conditions if c.feature == "x1" and c.op in (">", ">=")]
    assert len(lower) == 1 and abs(lower[0].value - 5.0) <= 0.5  # within 5% of the range of the truth
    assert all(c.apply(canonical(row)).all() for c in a.conditions)
    assert a.precision >= 0.95 and a.precision_lb <= a.precision
    assert fresh_precision(rule_model, table, a) >= 0.95
    assert a.rule.outcome == 1 and isinstance(a.rule, Rule)
    assert "cat = a" in a.text() and "x1 >" in a.text()


def test_negative_instance_and_one_feature_model(table):
    row = pd.DataFrame({"x1": [1.0], "x2": [1.5], "cat": ["b"], "k": [0]})
    a = anchor(oracle_of(x2_model), row, table, random_state=0)
    assert a.length == 1 and a.features == ("x2",)
    assert a.conditions[0].op == ">"
    assert fresh_precision(x2_model, table, a) >= 0.95
    # Class 0 of the rule model: one condition suffices (x1 low, or cat not a).
    b = anchor(oracle_of(rule_model), row, table, random_state=0)
    assert b.prediction == 0 and b.length == 1 and b.features[0] in ("x1", "cat")
    assert fresh_precision(rule_model, table, b) >= 0.95


def test_constant_model_gives_the_empty_anchor(table):
    a = anchor(oracle_of(lambda df: np.zeros(len(df), dtype=int)), table.iloc[[0]], table)
    assert a.length == 0 and a.coverage == 1.0 and a.precision == 1.0
    assert a.rule.condition_text() == "always"


def test_coverage_is_the_rules_own(table):
    ref = canonical(table)
    found = anchors(oracle_of(rule_model), table.iloc[:12], table, random_state=1)
    for a in found:
        assert a.coverage == pytest.approx(a.rule.apply(ref).mean(), abs=1e-12)
        assert a.rule.support == a.coverage
    # On a sample of the reference, close to the full share.
    sub = anchors(oracle_of(rule_model), table.iloc[:4], table, coverage_samples=1000, random_state=1)
    for a in sub:
        assert abs(a.coverage - a.rule.apply(ref).mean()) < 0.06


def test_every_instance_satisfies_its_anchor_and_precision_holds(table):
    rows = table.iloc[20:40]
    found = anchors(oracle_of(rule_model), rows, table, random_state=0)
    assert len(found) == len(rows)
    canon_rows = canonical(table).iloc[20:40].reset_index(drop=True)
    assert all(a.rule.apply(canon_rows.iloc[[i]]).all() for i, a in enumerate(found))
    assert list(np.array([a.prediction for a in found])) == list(rule_model(rows))
    fresh = [fresh_precision(rule_model, table, a, n=1500, seed=i) for i, a in enumerate(found)]
    assert np.mean(fresh) >= 0.95 and min(fresh) >= 0.9


def test_mixed_kinds_ordinal_integer_binary():
    X = mixed_frame(600, seed=3)
    model = lambda df: (df["size"].to_numpy(dtype=object) == "L").astype(int)  # noqa: E731
    rows = X[X["size"] == "L"].iloc[:3]
    found = anchors(oracle_of(model), rows, X, random_state=0)
    for a in found:
        assert a.features == ("size",) and a.length == 1
        assert a.conditions[0].op == "in" and a.conditions[0].value == ("L",)
        assert "size = L" in a.text()
    flag = lambda df: (df["flag"].to_numpy(dtype=float) == 1).astype(int)  # noqa: E731
    b = anchor(oracle_of(flag), X[X["flag"]].iloc[[0]], X)
    assert b.features == ("flag",) and "flag = 1" in b.text()
    age = lambda df: (df["age"].to_numpy(dtype=float) > 60).astype(int)  # noqa: E731
    c = anchor(oracle_of(age), X[X["age"] > 80].iloc[[0]], X)
    assert c.features == ("age",) and "age > " in c.text()
    assert fresh_precision(age, X, c) >= 0.95


# ---------------------------------------------------------------------- the credit network
def test_credit_network_with_categories_and_missing_values(credit, credit_oracle_parts):
    X, _ = credit
    net, pre, classes = credit_oracle_parts
    oracle = Oracle(net, preprocess=pre, task="classification", classes=classes, verbose=0)
    rows = pd.concat([X[X["income"].isna()].iloc[:2], X[X["employment"].isna()].iloc[:2], X.iloc[:2]])
    found = anchors(oracle, rows, X, random_state=0)
    canon_rows = canonical(X).loc[rows.index].reset_index(drop=True)
    ref = canonical(X)
    assert [a.prediction for a in found] == list(oracle.predict(rows))
    for i, a in enumerate(found):
        assert a.prediction in CLASSES
        assert a.rule.apply(canon_rows.iloc[[i]]).all()
        assert a.coverage == pytest.approx(a.rule.apply(ref).mean())
        d = json.loads(json.dumps(a.to_dict()))
        assert d["rule"]["outcome"] == a.prediction and d["text"] == a.text()
    # A row's missing income is a predicate of its own, printed and applied as such.
    missing = [c for a in found for c in a.conditions if c.missing]
    assert all("is missing" in c.text() for c in missing)
    assert np.mean([a.success for a in found]) >= 0.5
    # A Series row works too.
    s = anchor(oracle, X.iloc[0], X, random_state=0)
    assert s.rule == found[4].rule or s.rule.apply(canon_rows.iloc[[4]]).all()


def _raw_samples_only(monkeypatch):
    A = importlib.import_module("pellucid.surrogates.anchors")

    monkeypatch.setattr(A._Space, "encode_blocks", lambda self, *a, **k: None)


def test_samples_built_from_encoded_blocks_are_what_the_preprocess_gives(credit, credit_oracle_parts, monkeypatch):
    """Through the credit ColumnTransformer (scaled numbers, imputed missing values, one-hot
    categories) the samples are built from each feature's encoded block: bit for bit the
    preprocess's encoding of the raw samples, and the same anchors as the raw path."""
    A = importlib.import_module("pellucid.surrogates.anchors")

    X, _ = credit
    net, pre, classes = credit_oracle_parts
    oracle = Oracle(net, preprocess=pre, task="classification", classes=classes, verbose=0)
    rows = pd.concat([X[X["income"].isna()].iloc[:2], X[X["employment"].isna()].iloc[:2], X.iloc[:4]])
    seen = {}
    real = A._sample_encoded

    def both(space, states, reqs):
        # Each request's row stream is copied first, so that both builds draw the same samples.
        saved = [copy.deepcopy(st.rng) for st in states]
        raw = A._sample(space, states, reqs)
        for st, g in zip(states, saved, strict=True):
            st.rng = g
        out = real(space, states, reqs)
        np.testing.assert_array_equal(out, oracle.encode(raw))
        seen["n"] = seen.get("n", 0) + len(out)
        return out

    monkeypatch.setattr(A, "_sample_encoded", both)
    found = anchors(oracle, rows, X, random_state=0)
    assert seen["n"] > 10_000  # every sample went through the comparison
    monkeypatch.undo()
    _raw_samples_only(monkeypatch)
    raw = anchors(oracle, rows, X, random_state=0)
    assert [a.to_dict() for a in found] == [a.to_dict() for a in raw]


def test_a_preprocess_that_mixes_features_gets_raw_samples(table, monkeypatch):
    """A preprocess whose encoded columns each mix several raw features has no blocks: the
    samples go through it as raw rows."""
    A = importlib.import_module("pellucid.surrogates.anchors")

    def mixing(df):
        x = df[["x1", "x2"]].to_numpy(dtype=float)
        return np.column_stack([x[:, 0] + x[:, 1], x[:, 0] - x[:, 1]]).astype(np.float32)

    def model(z):
        s = np.asarray(z, dtype=float)[:, 0] > 5.0
        return np.column_stack([~s, s]).astype(float)

    oracle = Oracle(model, preprocess=mixing, task="classification", classes=["no", "yes"], verbose=0)
    space_blocks = []
    real = A._Space.encode_blocks

    def spy(self, *a, **k):
        real(self, *a, **k)
        space_blocks.append(self.blocks)

    monkeypatch.setattr(A._Space, "encode_blocks", spy)
    found = anchors(oracle, table.iloc[:3], table, random_state=0)
    assert space_blocks == [None]
    assert all(a.rule.apply(canonical(table).iloc[[i]]).all() for i, a in enumerate(found))


# ---------------------------------------------------------------------- reproducible, batched
def test_same_seed_same_anchors(table):
    o = oracle_of(rule_model)
    a = anchors(o, table.iloc[:6], table, random_state=7)
    b = anchors(o, table.iloc[:6], table, random_state=7)
    assert [x.to_dict() for x in a] == [x.to_dict() for x in b]


def test_queries_are_batched(table):
    o = oracle_of(rule_model)
    row = pd.DataFrame({"x1": [7.3], "x2": [0.4], "cat": ["a"], "k": [2]})
    a = anchor(o, row, table)
    rounds = a.length + 1
    # One call per step: the empty anchor, then per round the new candidates, a few bandit
    # steps and the confirmation; never one call per candidate (there are ~30 per round).
    assert o.n_calls <= 8 * rounds
    assert o.n_queries == a.n_queries > 30 * 100
    o.reset_counter()
    found = anchors(o, table.iloc[:40], table)
    # Forty rows in lockstep: about as many calls as the longest search alone.
    assert o.n_calls <= 8 * (max(x.length for x in found) + 1)
    assert o.n_queries == sum(x.n_queries for x in found)


# ---------------------------------------------------------------------- errors
def test_errors_are_named(table):
    o = oracle_of(rule_model)
    with pytest.raises(SchemaError, match=r"'cat'.*\['z'\]"):
        anchor(o, pd.DataFrame({"x1": [1.0], "x2": [0.0], "cat": ["z"], "k": [1]}), table)
    with pytest.raises(SchemaError, match=r"missing column.*'k'"):
        anchor(o, pd.DataFrame({"x1": [1.0], "x2": [0.0], "cat": ["a"]}), table)
    for bad in (0, 1.5, -0.1, True):
        with pytest.raises(ParameterError, match="precision"):
            anchor(o, table.iloc[[0]], table, precision=bad)
    with pytest.raises(ParameterError, match="beam_size"):
        anchor(o, table.iloc[[0]], table, beam_size=0)
    with pytest.raises(ParameterError, match="one row"):
        anchor(o, table.iloc[:2], table)
    reg = Oracle(lambda df: df["x1"].to_numpy(dtype=float), task="regression", verbose=0)
    with pytest.raises(ParameterError, match="regress"):
        anchor(reg, table.iloc[[0]], table)


def test_kl_bounds():
    p = np.array([0.0, 0.3, 0.9, 1.0])
    level = np.full(4, 0.05)
    lo, hi = kl_lower(p, level), kl_upper(p, level)
    assert np.all(lo <= p) and np.all(hi >= p) and np.all((lo >= 0) & (hi <= 1))
    # KL(p || bound) = level where the bound is inside (0, 1).
    def kl(a, b):
        a, b = np.clip(a, 1e-12, 1 - 1e-12), np.clip(b, 1e-12, 1 - 1e-12)
        return a * np.log(a / b) + (1 - a) * np.log((1 - a) / (1 - b))
    assert np.allclose(kl(p[1:], lo[1:]), 0.05, atol=1e-4)
    assert np.allclose(kl(p[:3], hi[:3]), 0.05, atol=1e-4)
    assert kl_lower(np.array([0.9]), np.array([0.001]))[0] > kl_lower(np.array([0.9]), np.array([0.01]))[0]


@pytest.mark.parametrize("sizes", [(1, 1), (3, 5), (8, 1), (17, 30), (64, 64)])
def test_kl_bounds_in_one_bisection_equal_each_alone(sizes):
    # The search fuses its lower and upper bounds into one bisection; each arm's bound must be
    # the one it gets alone, to the last bit, whatever its place in the arrays.
    from pellucid.surrogates.anchors import kl_bounds

    rng = np.random.default_rng(sum(sizes))
    a, b = sizes
    p_lo, p_hi = rng.choice([0.0, 1.0, 0.5], a) * (rng.random(a) < 0.2) + rng.random(a), rng.random(b)
    p_lo = np.clip(p_lo, 0, 1)
    lev_lo, lev_hi = rng.gamma(1.0, 0.05, a), rng.gamma(1.0, 0.05, b)
    lo, hi = kl_bounds(p_lo, lev_lo, p_hi, lev_hi)
    np.testing.assert_array_equal(lo, kl_lower(p_lo, lev_lo))
    np.testing.assert_array_equal(hi, kl_upper(p_hi, lev_hi))
    assert np.all(lo <= p_lo) and np.all(hi >= p_hi)


# ---------------------------------------------------------------------- printed = tested
def test_thresholds_are_the_shortest_decimals_between_reference_values(table):
    from pellucid._validation import exact

    from .test_contract_surrogates import shortest_decimal

    ref = canonical(table)
    found = anchors(oracle_of(rule_model), table.iloc[:10], table, random_state=0)
    found += anchors(oracle_of(x2_model), table.iloc[10:16], table, random_state=0)
    checked = 0
    for a in found:
        for c in a.conditions:
            if c.op not in ("<=", "<", ">", ">="):
                continue
            v = np.unique(ref[c.feature].dropna().to_numpy(dtype=float))
            below, above = v[v <= c.value], v[v > c.value]
            assert len(below) and len(above)
            assert c.value == shortest_decimal(below.max(), above.min(), "left"), c.text()
            # The number printed, applied to the reference with pandas, selects the rows the
            # condition selects.
            written = exact(c.value, c.kind in ("integer", "binary"))
            assert f"{c.feature} {c.op} {written}" in a.text()
            col = ref[c.feature]
            printed = col <= float(written) if c.op == "<=" else col > float(written)
            np.testing.assert_array_equal(printed.to_numpy(), c.apply(ref))
            checked += 1
    assert checked


@pytest.mark.parametrize(
    "precision,lb,success",
    [(0.9549, 0.9496, False), (0.96, 0.9412, False), (0.9449, 0.90, False), (0.97, 0.9512, True), (0.95, 0.95001, True)],
)
def test_text_says_the_target_is_judged_on_the_confidence_bound(precision, lb, success):
    import re

    rule = Rule((), 1, None, 0.5)
    a = Anchor(rule, precision, lb, 0.5, 0.95, success, 100, 101, 1, bar=0.95, confidence=0.95)
    text = a.text()
    # Every printed comparison is true of the numbers printed.
    pairs = re.findall(r"(\d+(?:\.\d+)?) (≥|<|>|≤) (\d+(?:\.\d+)?)", text)
    assert pairs, text
    ops = {"≥": float.__ge__, "<": float.__lt__, ">": float.__gt__, "≤": float.__le__}
    for x, op, y in pairs:
        assert ops[op](float(x), float(y)), (x, op, y, text)
    assert ("not reached" in text) == (not success)
    if precision >= 0.95:
        assert "lower bound" in text and "95% confidence" in text
    if precision >= 0.95 and not success:
        assert "judged on the precision's lower confidence bound" in text
