"""The description of a table in the user's raw features and units.

A :class:`Schema` is read off a pandas DataFrame (or written by hand) once, and from then on
it is the one place that knows each feature's kind, range, categories and missing values.
Samplers draw inside it, surrogates read categories from it, reports print it, and
:meth:`Schema.validate` checks every later table against it at the boundary, so that code
further down can trust what it is given.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ._validation import plain
from ._validation import row as row_label
from .errors import ParameterError, SchemaError


class Kind(str, Enum):
    """What kind of values a feature holds; it decides how pellucid samples, splits and
    prints the feature."""

    NUMERIC = "numeric"
    INTEGER = "integer"
    BINARY = "binary"
    CATEGORICAL = "categorical"
    ORDINAL = "ordinal"

    @property
    def is_numeric(self) -> bool:
        """Whether values are numbers compared by size (thresholds make sense)."""
        return self in (Kind.NUMERIC, Kind.INTEGER, Kind.BINARY)


@dataclass(frozen=True)
class Feature:
    """One raw feature.

    Parameters
    ----------
    name : str
        The column name, exactly as in the user's table.
    kind : Kind
        numeric, integer, binary, categorical or ordinal.
    low, high : float, optional
        Observed range of a numeric, integer or binary feature.
    categories : tuple, optional
        The known categories of a categorical or ordinal feature (in order for ordinal ones),
        or the two values of a binary feature.
    n_missing : int
        Missing values seen when the schema was read.
    mean, std : float, optional
        Observed mean and standard deviation (numeric kinds), used to scale perturbations.
    frequencies : tuple of float, optional
        Observed share of each category (same order as ``categories``).
    dtype : str
        The pandas dtype the feature was read from.
    """

    name: str
    kind: Kind
    low: float | None = None
    high: float | None = None
    categories: tuple | None = None
    n_missing: int = 0
    mean: float | None = None
    std: float | None = None
    frequencies: tuple | None = None
    dtype: str = ""

    @property
    def is_numeric(self) -> bool:
        return self.kind.is_numeric

    @property
    def is_categorical(self) -> bool:
        """Categorical or ordinal: values are labels, rules speak in sets of them."""
        return not self.kind.is_numeric

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind.value,
            "low": plain(self.low, nonfinite="keep", other=None),
            "high": plain(self.high, nonfinite="keep", other=None),
            "categories": None if self.categories is None else plain(list(self.categories), nonfinite="keep", other=None),
            "frequencies": None if self.frequencies is None else [float(f) for f in self.frequencies],
            "n_missing": int(self.n_missing),
            "mean": plain(self.mean, nonfinite="keep", other=None),
            "std": plain(self.std, nonfinite="keep", other=None),
            "dtype": self.dtype,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Feature":
        cats = d.get("categories")
        freqs = d.get("frequencies")
        return cls(
            name=d["name"],
            kind=Kind(d["kind"]),
            low=d.get("low"),
            high=d.get("high"),
            categories=None if cats is None else tuple(cats),
            n_missing=int(d.get("n_missing", 0)),
            mean=d.get("mean"),
            std=d.get("std"),
            frequencies=None if freqs is None else tuple(freqs),
            dtype=d.get("dtype", ""),
        )


def _is_bool_dtype(s: pd.Series) -> bool:
    return pd.api.types.is_bool_dtype(s.dtype)


def _is_text_like(s: pd.Series) -> bool:
    return (
        isinstance(s.dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(s.dtype)
        or pd.api.types.is_object_dtype(s.dtype)
    )


def check_unique_columns(df: pd.DataFrame, what: str = "table") -> None:
    """Every column of ``df`` has a name of its own (compared as text, as features are named).

    Raises
    ------
    SchemaError
        Naming each repeated name and the positions (from 0) of its columns.
    """
    names = [str(c) for c in df.columns]
    if len(set(names)) == len(names):
        return
    where: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        where.setdefault(name, []).append(i)
    repeated = [(n, p) for n, p in where.items() if len(p) > 1]
    text = "; ".join(f"{n!r} (columns {', '.join(map(str, p))}, counting from 0)" for n, p in repeated[:5])
    raise SchemaError(f"the {what} has several columns with the same name: {text}; every column needs a name of "
                      "its own (rename or drop the copies)")


#: Values a cell cannot hold: a feature takes one number, label or text per row.
_NESTED = (dict, list, tuple, set, frozenset, np.ndarray, pd.Series, pd.DataFrame)


def _check_flat(s: pd.Series, name: str, what: str = "table") -> None:
    """Refuse a column of nested values (a Parquet struct or list column read into pandas).
    Only object columns can hold them, and only those are looked at, value by value."""
    if not pd.api.types.is_object_dtype(s.dtype):
        return
    nested = s.map(lambda v: isinstance(v, _NESTED)).to_numpy(dtype=bool)
    if nested.any():
        i = int(np.argmax(nested))
        value = s.iloc[i]
        raise SchemaError(
            f"column {name!r} of the {what} holds nested values ({type(value).__name__} at row "
            f"{row_label(s.index[i])}; {int(nested.sum())} rows); a feature takes one number, label or text per row: "
            "flatten the column into columns of its own"
        )


def _not_a_number(name: str, s: pd.Series, bad: np.ndarray, what: str, hint: str = "") -> SchemaError:
    """The error for text in a numeric column: the column, the first row, its value."""
    bad = np.asarray(bad, dtype=bool)
    i = int(np.argmax(bad))
    n_bad = int(bad.sum())
    many = f"; {n_bad} rows of the {what} hold text there" if n_bad > 1 else ""
    return SchemaError(f"column {name!r} row {row_label(s.index[i])}: {s.iloc[i]!r} is not a number{many}{hint}")


def _present_floats(s: pd.Series) -> np.ndarray | None:
    """A numeric (not boolean) column's values that are present, as float64; None for others.
    Read once per column: kind inference and the feature's statistics both use them."""
    if _is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s.dtype):
        return None
    v = s.to_numpy(dtype=float, na_value=np.nan)
    return v[~np.isnan(v)] if s.hasnans else v


def _infer_kind(s: pd.Series, present: np.ndarray | None = None) -> Kind:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return Kind.ORDINAL if s.dtype.ordered else Kind.CATEGORICAL
    if _is_bool_dtype(s):
        return Kind.BINARY
    if pd.api.types.is_numeric_dtype(s.dtype):
        v = _present_floats(s) if present is None else present
        # Elementwise tests first: a sort of every value (np.unique) is only needed for a
        # column of whole numbers, to tell an integer from a two-valued numeric column.
        if len(v) and np.all((v == 0) | (v == 1)):
            return Kind.BINARY
        if pd.api.types.is_integer_dtype(s.dtype):
            return Kind.INTEGER
        # Integers stored as float (pandas does this as soon as one value is missing).
        if np.all(np.isfinite(v)) and np.all(v == np.round(v)) and len(np.unique(v)) > 2:
            return Kind.INTEGER
        return Kind.NUMERIC
    if _is_text_like(s):
        # Object columns of numbers (e.g. read from a messy CSV) are still numbers.
        present = s.dropna()
        num = pd.to_numeric(present, errors="coerce")
        if len(num) and num.notna().all():
            return _infer_kind(pd.to_numeric(s, errors="coerce"))
        if len(num) and num.notna().mean() >= NUMBERS_WITH_TYPOS:
            # Numbers with a few words among them: a mistyped value, not a column of labels.
            raise _not_a_number(str(s.name), present, num.isna().to_numpy(), "table", (
                f"; the column's other values are numbers. Correct the value or leave it empty (missing), or "
                f"declare the column categorical ({_declare_kind()})"))
        return Kind.CATEGORICAL
    raise SchemaError(
        f"column {s.name!r} has dtype {s.dtype}, which pellucid cannot use as a feature "
        "(numbers, booleans, strings and pandas categoricals are supported)"
    )


#: Share of a text column's values that are numbers from which the rest are taken for typos:
#: such a column is refused with the first of them named, rather than read as categories.
NUMBERS_WITH_TYPOS = 0.9


def _declare_kind() -> str:
    from ._validation import at_cli

    return "a saved schema given with --schema" if at_cli() else "kinds={...} or schema="


#: Values (rows x columns) from which column-wise work runs on a thread per core.
PARALLEL_VALUES = 1 << 21
_POOL: list[ThreadPoolExecutor] = []


def by_column(fn: Callable[[Any], Any], items: Sequence[Any], n_rows: int) -> list[Any]:
    """``[fn(item) for item in items]``, the columns shared among the cores on large tables.

    numpy lets go of the GIL inside its loops and copies, so columns of a large table are
    checked side by side. Results come in order, and the first column (in order) that raises
    is the one whose error is raised, as in a plain loop.
    """
    items = list(items)
    cores = os.cpu_count() or 1
    if cores < 2 or len(items) < 2 or n_rows * len(items) < PARALLEL_VALUES:
        return [fn(item) for item in items]
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(max_workers=cores, thread_name_prefix="pellucid-columns"))
    return list(_POOL[0].map(fn, items))


def _feature_from_series(s: pd.Series, kind: Kind, present: np.ndarray | None = None) -> Feature:
    name = str(s.name)
    n_missing = int(s.isna().sum())
    if n_missing == len(s):
        raise SchemaError(f"column {name!r} has no values: all {len(s)} rows are missing")
    if kind.is_numeric:
        if _is_bool_dtype(s):
            v = s.dropna().astype(float).to_numpy()
        elif pd.api.types.is_numeric_dtype(s.dtype):
            v = _present_floats(s) if present is None else present
        else:
            v = pd.to_numeric(s, errors="coerce")
            bad = v.isna() & s.notna()
            if bad.any():
                raise _not_a_number(name, s, bad.to_numpy(), "table", f" (the column is declared {kind.value})")
            v = v.dropna().to_numpy(dtype=float)
        if not np.all(np.isfinite(v)):
            n_inf = int((~np.isfinite(v)).sum())
            raise SchemaError(f"column {name!r} holds {n_inf} infinite values; replace them or mark them missing")
        cats = (False, True) if _is_bool_dtype(s) else ((0, 1) if kind is Kind.BINARY else None)
        freqs = None
        if kind is Kind.BINARY:
            freqs = (float(np.mean(v == 0)), float(np.mean(v == 1)))
        return Feature(
            name=name,
            kind=kind,
            low=float(v.min()),
            high=float(v.max()),
            categories=cats,
            n_missing=n_missing,
            mean=float(v.mean()),
            std=float(v.std()),
            frequencies=freqs,
            dtype=str(s.dtype),
        )
    # Categorical / ordinal: categories in their declared order (pandas categoricals) or sorted.
    present = s.dropna()
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = tuple(s.dtype.categories.tolist())
        # Categories that never occur stay known: they are part of the user's declared domain.
    else:
        try:
            cats = tuple(sorted(pd.unique(present).tolist()))
        except TypeError:  # mixed types: sort by their text
            cats = tuple(sorted(pd.unique(present).tolist(), key=str))
    if any(isinstance(c, _NESTED) for c in cats):  # hashable nested values (tuples) get this far
        _check_flat(s, name)
    counts = present.value_counts()
    n = max(len(present), 1)
    freqs = tuple(float(counts.get(c, 0)) / n for c in cats)
    return Feature(
        name=name,
        kind=kind,
        categories=cats,
        n_missing=n_missing,
        frequencies=freqs,
        dtype=str(s.dtype),
    )


@dataclass(frozen=True)
class Schema:
    """The raw features of a table, in order.

    Build it with :meth:`from_frame` (kinds inferred, then overridable) or by hand from
    :class:`Feature` objects.
    """

    features: tuple[Feature, ...]
    n_rows: int | None = None
    _index: dict = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        feats = tuple(self.features)
        object.__setattr__(self, "features", feats)
        names = [f.name for f in feats]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise SchemaError(f"duplicate feature names: {dup}")
        if not feats:
            raise SchemaError("a schema needs at least one feature")
        object.__setattr__(self, "_index", {f.name: i for i, f in enumerate(feats)})

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        kinds: Mapping[str, str | Kind] | None = None,
        *,
        exclude: Iterable[str] = (),
        ordinal_categories: Mapping[str, Sequence] | None = None,
    ) -> "Schema":
        """Read the schema off a table.

        Parameters
        ----------
        df : pandas.DataFrame
            The user's table, raw units, one row per case.
        kinds : mapping, optional
            Overrides of the inferred kind by column name, e.g. ``{"zip": "categorical"}``.
        exclude : iterable of str
            Columns that are not features (a target, an id).
        ordinal_categories : mapping, optional
            Order of the categories of ordinal features, e.g. ``{"grade": ["A", "B", "C"]}``.
        """
        if not isinstance(df, pd.DataFrame):
            raise SchemaError(f"Schema.from_frame expects a pandas DataFrame, got {type(df).__name__}")
        if len(df) == 0:
            raise SchemaError("the table is empty (0 rows): a schema is read from observed rows")
        check_unique_columns(df)
        exclude = set(exclude)
        missing_ex = exclude - set(map(str, df.columns))
        if missing_ex:
            raise SchemaError(f"cannot exclude columns that are not in the table: {sorted(missing_ex)}")
        kinds = {str(k): check_kind(v) for k, v in (kinds or {}).items()}
        ordinal_categories = dict(ordinal_categories or {})
        unknown = (set(kinds) | set(ordinal_categories)) - set(map(str, df.columns))
        if unknown:
            raise SchemaError(f"kinds given for columns that are not in the table: {sorted(unknown)}")
        def feature(col: Any) -> Feature:
            name = str(col)
            s = df[col].rename(name)
            try:
                return _read_feature(s, name)
            except (TypeError, ValueError) as e:
                if isinstance(e, SchemaError):
                    raise
                _check_flat(s, name)  # nested values (a Parquet struct or list) fail in pandas' hashing
                raise

        def _read_feature(s: pd.Series, name: str) -> Feature:
            if name in ordinal_categories:
                order = list(ordinal_categories[name])
                unseen = set(s.dropna().unique().tolist()) - set(order)
                if unseen:
                    raise SchemaError(f"column {name!r} holds values not in its ordinal order: {sorted(map(str, unseen))}")
                s = pd.Series(pd.Categorical(s, categories=order, ordered=True), name=name)
                kind, present = Kind.ORDINAL, None
            else:
                present = _present_floats(s)
                kind = kinds.get(name) or _infer_kind(s, present)
                if kind is Kind.ORDINAL and not (isinstance(s.dtype, pd.CategoricalDtype) and s.dtype.ordered):
                    raise SchemaError(
                        f"column {name!r} is declared ordinal but its order is unknown; pass "
                        "ordinal_categories={name: [...]} or an ordered pandas Categorical"
                    )
            return _feature_from_series(s, kind, present)

        columns = [c for c in df.columns if str(c) not in exclude]
        return cls(tuple(by_column(feature, columns, len(df))), n_rows=len(df))

    # ------------------------------------------------------------------ access
    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def __len__(self) -> int:
        return len(self.features)

    def __iter__(self):
        return iter(self.features)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __getitem__(self, name: str) -> Feature:
        try:
            return self.features[self._index[name]]
        except KeyError:
            raise SchemaError(f"no feature named {name!r}; the schema has {self.names}") from None

    def index(self, name: str) -> int:
        """Position of a feature (rules sort their conditions by it)."""
        self[name]
        return self._index[name]

    def with_kind(self, name: str, kind: str | Kind) -> "Schema":
        """A copy with one feature's kind changed (range/categories kept)."""
        feats = [replace(f, kind=Kind(kind)) if f.name == name else f for f in self.features]
        self[name]
        return Schema(tuple(feats), n_rows=self.n_rows)

    # ------------------------------------------------------------------ validation
    def validate(self, df: Any, *, what: str = "table", allow_empty_columns: bool = False,
                 rows: np.ndarray | None = None) -> pd.DataFrame:
        """Check a table against the schema and return it in canonical form.

        The result has exactly the schema's columns in schema order (extra columns are
        dropped), numeric kinds as float64, binary features as 0/1 floats, and categorical
        or ordinal features as object columns holding the schema's category values (missing
        as NaN). The input is not modified.

        ``allow_empty_columns`` accepts a column with every value missing: right for a few
        rows to explain (one row with one unrecorded value), wrong for a table to learn from.

        ``rows`` (positions) validates ``df.iloc[rows]`` without making that copy first: the
        rows are gathered column by column into the result.

        Raises
        ------
        SchemaError
            Not a DataFrame, no rows, a missing column, a column with every value missing
            (unless ``allow_empty_columns``),
            non-numeric values in a numeric feature, infinite values, or categories the
            schema has never seen (named with their rows count).
        """
        if not isinstance(df, pd.DataFrame):
            raise SchemaError(f"the {what} must be a pandas DataFrame, got {type(df).__name__}")
        if len(df) == 0:
            raise SchemaError(f"the {what} is empty (0 rows)")
        check_unique_columns(df, what)
        cols = {str(c): c for c in df.columns}
        missing = [n for n in self.names if n not in cols]
        if missing:
            raise SchemaError(
                f"the {what} is missing column{'s' if len(missing) > 1 else ''} {missing} "
                f"(it has {list(cols)[:20]}{'...' if len(cols) > 20 else ''})"
            )
        index = df.index
        if rows is not None:
            rows = np.asarray(rows)
            if rows.ndim != 1 or rows.dtype.kind not in "iu" or (len(rows) and not (
                    0 <= rows.min() and rows.max() < len(df))):
                raise SchemaError(f"rows must be positions 0..{len(df) - 1} of the {what}")
            index = index[rows]
        n = len(index)
        # Numeric features are written straight into one float64 block (a column of it each),
        # which becomes the frame without another copy when every feature is numeric.
        numeric = [f for f in self.features if f.is_numeric]
        block = np.empty((len(numeric), n), dtype=np.float64)
        rows_of = {f.name: i for i, f in enumerate(numeric)}
        def column(f: Feature) -> np.ndarray:
            s = df[cols[f.name]]
            if f.is_numeric:
                v = self._coerce(f, s, what, into=block[rows_of[f.name]], rows=rows)
                empty = not (n and (v == v).any())  # NaN != NaN: a column of only NaN is empty
            else:
                v = self._coerce(f, s, what, rows=rows)
                empty = bool(pd.isna(v).all())
            if empty and not allow_empty_columns:
                raise SchemaError(f"column {f.name!r} of the {what} has no values: all {n} rows are missing")
            return v

        out = dict(zip(self.names, by_column(column, self.features, n)))
        if len(numeric) == len(self.features):
            return pd.DataFrame(block.T, index=index, columns=self.names, copy=False)
        return pd.DataFrame(out, index=index)

    def _coerce(self, f: Feature, s: pd.Series, what: str, into: np.ndarray | None = None,
                rows: np.ndarray | None = None) -> np.ndarray:
        """Column ``s`` (its ``rows``, when given) in canonical form; a numeric one is written
        to ``into`` when given."""
        labels = s.index if rows is None else s.index[rows]  # rows are named by label in errors
        # numpy dtypes: the rows gathered and converted straight into place, no other copy
        placed = f.is_numeric and into is not None and isinstance(s.dtype, np.dtype) and s.dtype.kind in "iuf"
        if placed:
            into[:] = s.to_numpy() if rows is None else s.to_numpy()[rows]
            v = into
        elif rows is not None:
            s = s.iloc[rows]
        if f.is_numeric and not placed:
            if _is_bool_dtype(s):
                v = s.astype("float64").to_numpy()
            elif pd.api.types.is_numeric_dtype(s.dtype):
                v = s.to_numpy(dtype="float64", na_value=np.nan)
            else:
                num = pd.to_numeric(s, errors="coerce")
                bad = num.isna() & s.notna()
                if bad.any():
                    # Booleans written as text ("True") are still binary.
                    if f.kind is Kind.BINARY:
                        mapped = s.map({"True": 1.0, "False": 0.0, "true": 1.0, "false": 0.0})
                        num = num.where(~bad, mapped)
                        bad = num.isna() & s.notna()
                if bad.any():
                    _check_flat(s, f.name, what)
                    raise _not_a_number(f.name, s, bad.to_numpy(), what, f" (the feature is {f.kind.value})")
                v = num.to_numpy(dtype="float64", na_value=np.nan)
            if into is not None:
                into[:] = v
                v = into
        if f.is_numeric:
            inf = np.isinf(v)
            if inf.any():
                first = labels[np.argmax(inf)]
                first = first.item() if isinstance(first, np.generic) else first
                raise SchemaError(
                    f"column {f.name!r} of the {what} holds {int(inf.sum())} infinite values "
                    f"(first at row {first!r}); replace them or mark them missing"
                )
            if f.kind is Kind.BINARY:
                ok = np.isnan(v) | (v == 0) | (v == 1)
                if not ok.all():
                    raise SchemaError(
                        f"column {f.name!r} of the {what} is binary but holds {v[~ok][0]!r} "
                        f"({int((~ok).sum())} rows); binary features take 0/1 or False/True"
                    )
            return v
        # Categorical / ordinal: values must be known categories.
        values = s.astype(object).to_numpy() if isinstance(s.dtype, pd.CategoricalDtype) else s.to_numpy(dtype=object)
        present = ~pd.isna(values)
        known = pd.Index(list(f.categories or ()), dtype=object)
        try:
            codes = known.get_indexer(values[present]) if present.any() else np.array([], dtype=int)
        except TypeError:  # unhashable values: a nested column
            _check_flat(s, f.name, what)
            raise
        if (codes < 0).any():
            unseen = pd.unique(values[present][codes < 0])
            if any(isinstance(u, _NESTED) for u in unseen):
                _check_flat(s, f.name, what)
            first = labels[np.flatnonzero(present)[np.argmax(codes < 0)]]
            raise SchemaError(
                f"column {f.name!r} of the {what} holds categor{'ies' if len(unseen) > 1 else 'y'} "
                f"never seen in the reference data: {[str(u) for u in unseen[:10]]} "
                f"({int((codes < 0).sum())} rows, first at row {row_label(first)}); known: {[str(c) for c in known[:20]]}"
            )
        out = np.full(len(values), np.nan, dtype=object)
        # Canonical objects: the schema's own category values (so "1" vs 1 never diverge).
        out[present] = known.to_numpy()[codes]
        return out

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        return {"n_rows": self.n_rows, "features": [f.to_dict() for f in self.features]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Schema":
        return cls(tuple(Feature.from_dict(f) for f in d["features"]), n_rows=d.get("n_rows"))

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The schema as JSON text (names, order, kinds, ranges, categories), written to
        ``path`` when given: the file ``pellucid explain --schema`` and ``explain(schema=...)``
        (through :meth:`from_json`) pin a table to.

        Returns
        -------
        str
            The JSON text (also when written).
        """
        import json

        text = json.dumps({"pellucid_schema": 1, **self.to_dict()}, indent=2, ensure_ascii=False) + "\n"
        if path is not None:
            target = Path(path)
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(target)  # whole or not at all
        return text

    @classmethod
    def from_json(cls, source: str | os.PathLike) -> "Schema":
        """Read a schema saved by :meth:`to_json` (a path, or the JSON text itself); a
        ``report.json`` pellucid wrote gives the schema of the table it explained.

        Raises
        ------
        DataFileError
            The file does not exist or is not JSON.
        SchemaError
            The JSON is not a schema (naming what is missing or wrong).
        """
        import json

        from .errors import DataFileError

        text, where = source, "the schema text"
        looks_like_json = isinstance(source, str) and source.lstrip().startswith("{")
        if not looks_like_json:
            from ._files import read_text

            where = f"schema file {str(source)!r}"
            text, _ = read_text(source, where)
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataFileError(f"{where} is not JSON: {e}") from e
        if isinstance(d, dict) and "features" not in d and isinstance(d.get("data"), dict):
            d = d["data"].get("schema")  # a report.json: the schema of the table it explained
        if not isinstance(d, dict) or not isinstance(d.get("features"), list):
            raise SchemaError(f"{where} is not a pellucid schema: it has no list of 'features' "
                              "(write one with Schema.to_json)")
        try:
            return cls.from_dict(d)
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, SchemaError):
                raise
            what = f"lacks {e}" if isinstance(e, KeyError) else f"is malformed ({e})"
            raise SchemaError(f"{where} is not a pellucid schema: a feature {what}") from e

    def describe(self) -> pd.DataFrame:
        """One row per feature: kind, range or categories, missing values."""
        rows = []
        for f in self.features:
            if f.is_numeric:
                domain = f"{_fmt(f.low)} … {_fmt(f.high)}"
            else:
                cats = [str(c) for c in (f.categories or ())]
                domain = "{" + ", ".join(cats[:12]) + (", …" if len(cats) > 12 else "") + "}"
            rows.append({"feature": f.name, "kind": f.kind.value, "values": domain, "missing": f.n_missing})
        return pd.DataFrame(rows)


def _fmt(x: float | None) -> str:
    if x is None:
        return "?"
    return f"{x:.6g}"


def check_kind(kind: str | Kind) -> Kind:
    """Turn a user's kind string into a :class:`Kind`, with a clear error."""
    try:
        return Kind(kind)
    except ValueError:
        raise ParameterError(f"unknown feature kind {kind!r}; use one of {[k.value for k in Kind]}") from None
