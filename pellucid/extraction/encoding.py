"""Raw rows to the numbers a learner needs, and the learner's tests back to raw conditions.

Rule learners (CART, imodels' rule lists and ensembles, L1-penalised linear models) want a
finite float matrix; readers want rules on the raw features. :class:`RawEncoder` makes the
matrix and, for every encoded column, turns a test ``column op threshold`` back into
:class:`~pellucid.extraction.rules.Condition` objects that accept *exactly* the rows the test
accepts, missing values included. A surrogate that predicts from rules read back this way
predicts what its learner predicts.

How each kind is encoded:

* numeric kinds: the raw value; a missing value is filled with the training median
  (``fill_``), and the read-back condition says whether missing values pass (they pass
  exactly when the fill value does). In ``onehot`` mode a feature with missing values in the
  training rows also gets a ``<name> is missing`` indicator column, so a linear model can
  give missingness its own weight.
* categorical kinds, ``ordered`` mode: one integer code per category, categories ordered by
  the mean network score (:class:`CategoryOrderEncoder`), so a threshold on the code is a
  split into two sets of categories; missing is placed in that order like a category.
* categorical kinds, ``onehot`` mode: one 0/1 column per category (and one for missing when
  the training rows have missing values).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..schema import Kind, Schema
from .rules import Condition

_OPS = {
    "<=": operator.le,
    "<": operator.lt,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}

#: The code that stands for a missing category in ``ordered`` mode, before ordering.
MISSING = "\x00missing"


class CategoryOrderEncoder:
    """Raw canonical rows to the float matrix CART splits on, reversibly.

    Numeric kinds pass through (missing values stay NaN: scikit-learn's trees route them and
    record where). A categorical feature becomes integer codes ordered by the mean network
    score of its categories, so that a threshold on the codes is a split into two sets of
    categories; for two classes or a regression this order contains the best such split
    (Breiman et al., 1984). With more classes the score is the projection of the per-category
    class distribution on its first principal component. Ordinal features keep their order.
    """

    def fit(
        self, rows: pd.DataFrame, schema: Schema, score: np.ndarray | None = None, weights: np.ndarray | None = None
    ) -> "CategoryOrderEncoder":
        """Learn each categorical feature's order; without ``score``, the schema's order."""
        self.schema_ = schema
        self.order_: dict[str, tuple] = {}
        weights = np.ones(len(rows)) if weights is None else np.asarray(weights, dtype=float)
        if score is not None:
            score = category_score(score, weights)
        for f in schema:
            if f.is_numeric:
                continue
            cats = list(f.categories or ())
            if f.kind is Kind.ORDINAL or score is None:
                self.order_[f.name] = tuple(cats)
                continue
            self.order_[f.name] = _order_by_score(cats, rows[f.name], score, weights)
        return self

    def transform(self, rows: pd.DataFrame) -> np.ndarray:
        cols = []
        for f in self.schema_:
            if f.is_numeric:
                cols.append(rows[f.name].to_numpy(dtype="float64", na_value=np.nan))
            else:
                idx = pd.Index(self.order_[f.name], dtype=object).get_indexer(rows[f.name].to_numpy(dtype=object))
                cols.append(np.where(idx < 0, np.nan, idx).astype(float))
        if not cols:
            return np.empty((len(rows), 0))
        return np.column_stack(cols)

    def split_sets(self, feature: str, threshold: float) -> tuple[tuple, tuple]:
        """The categories on each side of ``code <= threshold``."""
        order = self.order_[feature]
        if not np.isfinite(threshold):
            # A split of known values from missing ones.
            return (order, ()) if threshold > 0 else ((), order)
        k = int(np.floor(threshold)) + 1
        return order[:k], order[k:]


def category_score(score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """One number per row by which categories are ordered: the output (regression), the
    probability of the second class (two classes), or the projection of the class
    distribution on its first weighted principal direction (more classes)."""
    score = np.asarray(score, dtype=float)
    if score.ndim == 1:
        return score
    if score.shape[1] == 2:
        return score[:, 1]
    w = weights / weights.sum()
    centred = score - w @ score
    cov = (centred * w[:, None]).T @ centred
    _, vecs = np.linalg.eigh(cov)
    return score @ vecs[:, -1]


def _category_means(col: pd.Series, score: np.ndarray, weights: np.ndarray, missing: Any = None) -> dict:
    """Each category's weighted mean score (``missing``: the key of the missing rows' mean;
    None leaves them out), categories without weight left out. Grouped by the column's codes,
    not its values: pandas sums each group in row order either way."""
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    keys = list(uniques)
    isna = codes < 0
    if missing is not None:
        codes = np.where(isna, len(keys), codes)
        keys.append(missing)
        keep = np.ones(len(codes), dtype=bool)
    else:
        keep = ~isna
    frame = pd.DataFrame({"s": (score * weights)[keep], "w": weights[keep]})
    g = frame.groupby(codes[keep], sort=False).sum()
    means = (g["s"] / g["w"].where(g["w"] > 0)).dropna()
    return {keys[k]: v for k, v in means.items()}


def _order_by_score(entries: list, col: pd.Series, score: np.ndarray, weights: np.ndarray, missing: Any = None) -> tuple:
    """``entries`` sorted by the mean score of their rows; entries absent from the rows sort
    as if average, and ties keep the given order."""
    means = _category_means(col, score, weights, missing=missing)
    overall = float(np.average(score, weights=weights)) if weights.sum() > 0 else 0.0
    keyed = sorted(range(len(entries)), key=lambda i: (means.get(entries[i], overall), i))
    return tuple(entries[i] for i in keyed)


@dataclass(frozen=True)
class EncodedColumn:
    """What one column of the encoded matrix holds.

    ``role`` is ``value`` (a numeric feature, missing filled), ``code`` (ordered category
    codes), ``category`` (0/1 for ``category``), or ``missing`` (0/1: the feature is missing).
    """

    feature: str
    role: str
    kind: str
    category: Any = None
    name: str = ""


class RawEncoder:
    """Raw canonical rows to a finite float matrix, with exact read-back of conditions.

    Parameters
    ----------
    categorical : {"ordered", "onehot"}
        How categorical features are encoded (see the module docstring).

    Attributes
    ----------
    columns_ : list of EncodedColumn
        One per column of :meth:`transform`'s output.
    names_ : list of str
        Readable column names (``income``, ``home=rent``, ``income is missing``).
    fill_ : dict
        Numeric feature -> the value that stands in for a missing one.
    """

    def __init__(self, categorical: str = "ordered") -> None:
        if categorical not in ("ordered", "onehot"):
            raise ParameterError(f"categorical must be 'ordered' or 'onehot', got {categorical!r}")
        self.categorical = categorical

    def fit(
        self,
        rows: pd.DataFrame,
        schema: Schema,
        score: np.ndarray | None = None,
        weights: np.ndarray | None = None,
    ) -> "RawEncoder":
        """Learn fills, category orders and columns from canonical training rows.

        ``score`` (network outputs) orders categories in ``ordered`` mode; without it they
        keep the schema's order.
        """
        self.schema_ = schema
        weights = np.ones(len(rows)) if weights is None else np.asarray(weights, dtype=float)
        if score is not None:
            score = category_score(score, weights)
        self.fill_: dict[str, float] = {}
        self.order_: dict[str, tuple] = {}
        self.columns_: list[EncodedColumn] = []
        for f in schema:
            col = rows[f.name]
            has_missing = bool(col.isna().any())
            kind = f.kind.value
            if f.is_numeric:
                v = col.to_numpy(dtype="float64", na_value=np.nan)
                known = v[~np.isnan(v)]
                if len(known):
                    fill = float(np.median(known))
                else:
                    fill = float(f.low) if f.low is not None else 0.0
                if f.kind in (Kind.INTEGER, Kind.BINARY):
                    # A whole number, so thresholds between integers read back cleanly.
                    fill = float(np.round(fill))
                self.fill_[f.name] = fill
                self.columns_.append(EncodedColumn(f.name, "value", kind, name=f.name))
                if has_missing and self.categorical == "onehot":
                    self.columns_.append(EncodedColumn(f.name, "missing", kind, name=f"{f.name} is missing"))
                continue
            cats = list(f.categories or ())
            if self.categorical == "onehot":
                for c in cats:
                    self.columns_.append(EncodedColumn(f.name, "category", kind, c, f"{f.name}={c}"))
                if has_missing:
                    self.columns_.append(EncodedColumn(f.name, "missing", kind, name=f"{f.name} is missing"))
                continue
            entries = cats + ([MISSING] if has_missing else [])
            if f.kind is Kind.ORDINAL or score is None:
                order = entries
            else:
                order = _order_by_score(entries, col, score, weights, missing=MISSING)
            self.order_[f.name] = tuple(order)
            self.columns_.append(EncodedColumn(f.name, "code", kind, name=f.name))
        self.names_ = [c.name for c in self.columns_]
        return self

    # ------------------------------------------------------------------ forward
    def transform(self, rows: pd.DataFrame) -> np.ndarray:
        """The float matrix, one column per entry of ``columns_``; never NaN.

        A category the training rows never held gets the code of missing in ``ordered``
        mode when missing has one, else the code after the last (all tests read back on
        known categories stay exact; rows with new categories are rare by construction,
        since canonical rows hold only the schema's categories)."""
        self._check()
        out = np.empty((len(rows), len(self.columns_)), dtype=float)
        cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for j, c in enumerate(self.columns_):
            if c.feature not in cache:
                col = rows[c.feature]
                cache[c.feature] = (col.to_numpy(dtype=object), col.isna().to_numpy())
            values, isna = cache[c.feature]
            if c.role == "value":
                v = rows[c.feature].to_numpy(dtype="float64", na_value=np.nan)
                out[:, j] = np.where(np.isnan(v), self.fill_[c.feature], v)
            elif c.role == "missing":
                out[:, j] = isna
            elif c.role == "category":
                out[:, j] = (values == c.category) & ~isna
            else:
                order = self.order_[c.feature]
                keys = np.where(isna, MISSING, values)
                idx = pd.Index(order, dtype=object).get_indexer(keys)
                out[:, j] = np.where(idx < 0, len(order), idx)
        return out

    def _check(self) -> None:
        if not hasattr(self, "columns_"):
            raise ParameterError("this RawEncoder is not fitted yet; call fit(rows, schema) first")

    # ------------------------------------------------------------------ back
    def condition(self, column: int, op: str, threshold: float) -> Condition:
        """The raw condition that accepts exactly the rows whose encoded ``column`` satisfies
        ``op threshold`` (``<=``, ``<``, ``>``, ``>=``, ``==``, ``!=``).

        Raises
        ------
        ParameterError
            For an unknown column or operator.
        """
        self._check()
        if not 0 <= int(column) < len(self.columns_):
            raise ParameterError(f"encoded column {column} does not exist (the encoder has {len(self.columns_)})")
        if op not in _OPS:
            raise ParameterError(f"unknown operator {op!r}; use one of {list(_OPS)}")
        c = self.columns_[int(column)]
        test = _OPS[op]
        threshold = float(threshold)
        if c.role == "value":
            missing = bool(test(self.fill_[c.feature], threshold))
            if op in ("==", "!="):
                return self._equality(c, op, threshold, missing)
            return Condition(c.feature, op, threshold, missing, c.kind)
        if c.role == "missing":
            # 1 when missing, 0 when known.
            missing, known = bool(test(1.0, threshold)), bool(test(0.0, threshold))
            if c.kind in ("categorical", "ordinal"):
                return Condition(c.feature, "not in" if known else "in", (), missing, c.kind)
            return Condition(c.feature, "<=" if known else ">", math.inf, missing, c.kind)
        if c.role == "category":
            inside, outside = bool(test(1.0, threshold)), bool(test(0.0, threshold))
            # Rows of other categories and missing rows both hold 0 here.
            if inside and outside:
                return Condition(c.feature, "not in", (), True, c.kind)
            if inside:
                return Condition(c.feature, "in", (c.category,), False, c.kind)
            if outside:
                return Condition(c.feature, "not in", (c.category,), True, c.kind)
            return Condition(c.feature, "in", (), False, c.kind)
        order = self.order_[c.feature]
        passing = [v for i, v in enumerate(order) if test(float(i), threshold)]
        # Missing has its own place in the order when training rows had it; otherwise it is
        # encoded after the last category (see transform).
        missing = MISSING in passing if MISSING in order else bool(test(float(len(order)), threshold))
        cats = tuple(v for v in passing if v != MISSING)
        domain = [v for v in order if v != MISSING]
        if len(cats) * 2 > len(domain):
            return Condition(c.feature, "not in", tuple(v for v in domain if v not in cats), missing, c.kind)
        return Condition(c.feature, "in", cats, missing, c.kind)

    def _equality(self, c: EncodedColumn, op: str, threshold: float, missing: bool) -> Condition:
        # Equality on a numeric value is only readable where the feature takes few values;
        # a binary 0/1 feature is the case learners produce.
        if c.kind == "binary" and threshold in (0.0, 1.0):
            equal_one = (threshold == 1.0) == (op == "==")
            return Condition(c.feature, ">" if equal_one else "<=", 0.5, missing, c.kind)
        raise ParameterError(
            f"an equality test ({op} {threshold}) on numeric feature {c.feature!r} has no raw condition; "
            "use <=, <, > or >="
        )

    def feature_of(self, column: int) -> str:
        """The raw feature an encoded column comes from."""
        self._check()
        return self.columns_[int(column)].feature
