"""RawEncoder: every test on an encoded column reads back as a raw condition that accepts
exactly the same rows, missing values and unseen-in-training categories included."""

from __future__ import annotations

import operator

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pellucid.errors import ParameterError
from pellucid.extraction import RawEncoder
from pellucid.schema import Schema

from .conftest import mixed_frame

OPS = {"<=": operator.le, "<": operator.lt, ">": operator.gt, ">=": operator.ge}


@pytest.mark.parametrize("mode", ["ordered", "onehot"])
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), op=st.sampled_from(sorted(OPS)), q=st.floats(-0.2, 1.2))
def test_conditions_read_back_exactly(mode, seed, op, q):
    train = mixed_frame(200, seed=seed % 7)
    schema = Schema.from_frame(train)
    rows = schema.validate(train)
    score = np.random.default_rng(seed).random(len(rows))
    enc = RawEncoder(mode).fit(rows, schema, score=score)
    # Fresh rows from another draw: missing values and categories in other proportions.
    other = schema.validate(mixed_frame(150, seed=seed % 7 + 1))
    X = enc.transform(other)
    assert X.shape == (len(other), len(enc.columns_)) and np.isfinite(X).all()
    for j in range(X.shape[1]):
        lo, hi = X[:, j].min(), X[:, j].max()
        t = lo + q * (hi - lo)
        # Thresholds halfway between codes, and on a code itself.
        for thr in (t, np.round(t)):
            cond = enc.condition(j, op, thr)
            expected = OPS[op](X[:, j], thr)
            np.testing.assert_array_equal(cond.apply(other), expected, err_msg=f"{enc.names_[j]} {op} {thr}: {cond.text()}")


def test_onehot_columns_and_names():
    rows_raw = mixed_frame(300)
    schema = Schema.from_frame(rows_raw)
    rows = schema.validate(rows_raw)
    enc = RawEncoder("onehot").fit(rows, schema)
    assert "color=red" in enc.names_ and "color is missing" in enc.names_ and "x is missing" in enc.names_
    # A feature with no missing training values gets no indicator.
    assert "age is missing" not in enc.names_
    X = enc.transform(rows)
    j = enc.names_.index("color=red")
    assert X[:, j].sum() == (rows["color"] == "red").sum()
    assert enc.condition(j, ">", 0.5).text() == "color = red"
    assert enc.condition(enc.names_.index("x is missing"), ">", 0.5).text() == "x is missing"


def test_fill_is_the_training_median_and_missing_follows_it():
    rows_raw = mixed_frame(300)
    schema = Schema.from_frame(rows_raw)
    rows = schema.validate(rows_raw)
    enc = RawEncoder().fit(rows, schema)
    med = float(np.nanmedian(rows["x"]))
    assert enc.fill_["x"] == pytest.approx(med)
    j = enc.names_.index("x")
    assert enc.condition(j, "<=", med + 1).missing and not enc.condition(j, "<=", med - 1).missing


def test_bad_arguments_are_named():
    with pytest.raises(ParameterError, match="categorical"):
        RawEncoder("dummy")
    rows_raw = mixed_frame(50)
    schema = Schema.from_frame(rows_raw)
    enc = RawEncoder().fit(schema.validate(rows_raw), schema)
    with pytest.raises(ParameterError, match="column 99"):
        enc.condition(99, "<=", 0)
    with pytest.raises(ParameterError, match="operator"):
        enc.condition(0, "~", 0)


def test_missing_category_unseen_in_training_reads_back_exactly():
    import pandas as pd

    train = pd.DataFrame({"color": ["red", "green", "blue", "red"] * 5, "x": np.arange(20.0)})
    schema = Schema.from_frame(train)
    enc = RawEncoder("ordered").fit(schema.validate(train), schema, score=np.arange(20.0))
    fresh = schema.validate(pd.DataFrame({"color": [None, "red", "blue", "green"], "x": [1.0, 2.0, 3.0, 4.0]}))
    X = enc.transform(fresh)
    for op in OPS:
        for thr in (-0.5, 0.5, 1.5, 2.5, 3.5):
            np.testing.assert_array_equal(enc.condition(0, op, thr).apply(fresh), OPS[op](X[:, 0], thr))


def _category_means_by_value(col, score, weights, missing=None):
    """The category means grouped by the values themselves (object keys)."""
    values = col.to_numpy(dtype=object)
    isna = col.isna().to_numpy()
    if missing is not None:
        values = np.where(isna, missing, values)
        keep = np.ones(len(values), dtype=bool)
    else:
        keep = ~isna
    frame = pd.DataFrame({"c": values[keep], "s": (score * weights)[keep], "w": weights[keep]})
    g = frame.groupby("c", sort=False)[["s", "w"]].sum()
    return (g["s"] / g["w"].where(g["w"] > 0)).dropna().to_dict()


@pytest.mark.parametrize("make", [
    lambda v: pd.Series(pd.array(v, dtype="string")),
    lambda v: pd.Series(v, dtype=object),
    lambda v: pd.Series(pd.Categorical(v)),
    lambda v: pd.Series(pd.Categorical([None if x is None else len(x) for x in v])),
])
def test_category_means_are_the_means_grouped_by_value(make):
    from pellucid.extraction.encoding import _category_means

    rng = np.random.default_rng(0)
    v = list(rng.choice(np.array(["a", "bb", "ccc", "dddd"], dtype=object), 3000))
    v = [None if i % 7 == 0 else x for i, x in enumerate(v)]
    col = make(v)
    score = rng.random(3000)
    weights = rng.choice([0.0, 0.5, 1.0, 2.0], 3000)
    weights[np.array([x == "dddd" for x in v])] = 0.0  # a category without weight is left out
    for missing in (None, "(missing)"):
        got = _category_means(col, score, weights, missing=missing)
        want = _category_means_by_value(col, score, weights, missing=missing)
        assert got == want  # the same sums, to the last bit
        assert len(got) == 3 + (missing is not None)
