"""The encoding map: which encoded (model-input) columns come from which raw feature.

:func:`build_encoding_map` finds it for an :class:`~pellucid.oracle.Oracle`: the identity
without preprocessing, read off a fitted ``ColumnTransformer`` where it can be, by perturbing
one raw feature at a time otherwise.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PowerTransformer,
    QuantileTransformer,
    RobustScaler,
    StandardScaler,
)

from ..errors import ModelError, ParameterError, PellucidWarning

__all__ = ["EncodingMap", "build_encoding_map"]

#: Rows of the reference the probe perturbs (plus one per distinct value of a few-valued column).
_PROBE_ROWS = 256
# Transformers whose output column i depends on input column i only.
_ONE_TO_ONE = (
    StandardScaler,
    MinMaxScaler,
    RobustScaler,
    MaxAbsScaler,
    OrdinalEncoder,
    PowerTransformer,
    QuantileTransformer,
)


@dataclass(frozen=True)
class EncodingMap:
    """Which encoded (model-input) columns come from which raw feature.

    Attributes
    ----------
    raw_features : tuple of str
        The reference frame's columns, in order.
    groups : dict of str to tuple of int
        Raw feature -> encoded column indices. Groups are disjoint: a column that depends on
        several raw features is in none of them but in ``shared``. A feature the preprocessing
        drops has an empty tuple.
    shared : tuple of int
        Encoded columns that depend on two or more raw features.
    n_encoded : int
        Number of encoded columns.
    method : {"identity", "structure", "probe"}
        How the map was found: no preprocessing, read off a ColumnTransformer, or by
        perturbing one raw feature at a time.
    """

    raw_features: tuple[str, ...]
    groups: dict[str, tuple[int, ...]] = field(default_factory=dict)
    shared: tuple[int, ...] = ()
    n_encoded: int = 0
    method: str = "identity"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "raw_features": list(self.raw_features),
            "groups": {k: [int(i) for i in v] for k, v in self.groups.items()},
            "shared": [int(i) for i in self.shared],
            "n_encoded": int(self.n_encoded),
            "method": self.method,
        }


def build_encoding_map(oracle: Any, reference: pd.DataFrame) -> EncodingMap:
    """Which encoded columns come from which raw feature.

    Parameters
    ----------
    oracle : Oracle
        The oracle whose preprocess (and model) is mapped; :meth:`Oracle.encoding_map` calls
        this with itself.
    reference : DataFrame
        Raw rows like those the model is queried on. Probing uses up to 256 of them plus
        one row for each distinct value of every column with at most 256 distinct values.

    Returns
    -------
    EncodingMap
        ``identity`` without preprocess, ``structure`` when read off a fitted
        ColumnTransformer (or a Pipeline ending in one), ``probe`` otherwise: each raw
        feature in turn is replaced by a cyclic shift of its distinct values and the
        encoded columns that change are its group.
    """
    if not isinstance(reference, pd.DataFrame):
        raise ParameterError(f"encoding_map needs a pandas DataFrame of raw rows; got {type(reference).__name__}")
    if len(reference) == 0:
        raise ParameterError("encoding_map needs at least one reference row; got an empty DataFrame")
    names = tuple(str(c) for c in reference.columns)
    if oracle.preprocess is None:
        expected = oracle.adapter.expected_width()  # the columns the model declares, if it does
        if expected is not None and expected != len(names):
            raise ParameterError(f"the model expects {expected} input columns but the reference has "
                                 f"{len(names)}; pass the preprocess that maps one to the other")
        return EncodingMap(names, {c: (i,) for i, c in enumerate(names)}, (), len(names), "identity")
    found = _structure_map(oracle, reference)
    if found is not None:
        groups, shared, n_encoded, method = *found, "structure"
    else:
        changes = _probe(oracle, reference, list(reference.columns))
        n_encoded = len(next(iter(changes.values()))) if changes else 0
        groups, shared = _split_changes({str(c): np.flatnonzero(m) for c, m in changes.items()}, n_encoded)
        method = "probe"
    if shared:
        warnings.warn(
            "encoded columns " + ", ".join(f"{i} (from {', '.join(f)})" for i, f in shared.items())
            + " depend on several raw features; they are kept apart from every feature's group",
            PellucidWarning, stacklevel=3)
    placed = {int(i) for g in groups.values() for i in g} | {int(i) for i in shared}
    orphans = [i for i in range(int(n_encoded)) if i not in placed]
    if orphans:
        warnings.warn(
            f"encoded columns {orphans[:20]} did not change with any raw feature of the reference rows "
            "(constant there, e.g. a category the rows never take); they belong to no feature's group",
            PellucidWarning, stacklevel=3)
    ordered = {c: tuple(int(i) for i in groups.get(c, ())) for c in names}
    return EncodingMap(names, ordered, tuple(sorted(int(i) for i in shared)), int(n_encoded), method)


def feature_blocks(oracle: Any, X: pd.DataFrame, Z: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The model's input of raw rows ``X`` and ``Z`` (the same columns) as blocks of encoded
    columns, one block per raw feature, where it is made so on these rows; None where not.

    A row built from several rows' raw values, feature by feature (a Shapley hybrid, an anchor's
    sample), is then encoded by taking each feature's block from the row that gives its value,
    without running the preprocess on it. That holds when every encoded column follows one raw
    feature (:func:`build_encoding_map` finds no shared column) and the columns in no feature's
    group hold one value on every row of ``X`` and ``Z``; or, with no preprocess, for a torch
    network whose input is the numeric table itself.

    Returns ``(oracle.encode(X), oracle.encode(Z), col_feat)``: per encoded column, the position
    in ``X``'s columns of the feature whose block holds it, -1 for a column that is constant.
    """
    if oracle.preprocess is None:
        if oracle.kind == "torch" and all(pd.api.types.is_numeric_dtype(X[c]) for c in X.columns):
            return oracle.encode(X), oracle.encode(Z), np.arange(X.shape[1], dtype=np.int64)
        return None
    with warnings.catch_warnings():  # columns constant on these rows are handled below
        warnings.simplefilter("ignore", PellucidWarning)
        emap = oracle.encoding_map(pd.concat([Z, X], ignore_index=True))
    if emap.shared:
        return None
    col_feat = np.full(emap.n_encoded, -1, dtype=np.int64)
    for j, f in enumerate(emap.raw_features):
        col_feat[list(emap.groups.get(f, ()))] = j
    XE, ZE = oracle.encode(X), oracle.encode(Z)
    # A column in no feature's group that holds one value on every row of X and Z is the same
    # in every row built from them.
    loose = np.flatnonzero(col_feat < 0)
    if not all(np.all(XE[:, c] == XE[0, c]) and np.all(ZE[:, c] == XE[0, c]) for c in loose):
        return None
    return XE, ZE, col_feat


def _probe(oracle: Any, reference: pd.DataFrame, features: list) -> dict[Any, np.ndarray]:
    """For each feature, which encoded columns change when it alone is perturbed."""
    sample = reference
    if len(sample) > _PROBE_ROWS:
        rows = set(np.random.default_rng(0).choice(len(sample), _PROBE_ROWS, replace=False).tolist())
        # Each distinct value of a column with few of them, at least once: a rare category
        # must still move its own one-hot column.
        for col in reference.columns:
            codes, uniques = pd.factorize(reference[col], use_na_sentinel=False)
            if len(uniques) <= _PROBE_ROWS:
                rows.update(np.unique(codes, return_index=True)[1].tolist())
        sample = sample.iloc[sorted(rows)]
    base = oracle.encode(sample)
    changes = {}
    frames = {}
    for col in features:
        shifted = _cyclic_shift(sample[col])
        if shifted is None:
            changes[col] = np.zeros(base.shape[1], dtype=bool)
            continue
        frame = sample.copy()
        frame[col] = shifted
        frames[col] = frame
    encoded = _encode_together(oracle, frames, base.shape[1])
    for col, frame in frames.items():
        try:
            enc = encoded[col] if encoded is not None else oracle.encode(frame)
        except ModelError as e:
            warnings.warn(f"could not probe feature {col!r} ({e}); it is given no encoded columns",
                          PellucidWarning, stacklevel=4)
            changes[col] = np.zeros(base.shape[1], dtype=bool)
            continue
        if enc.shape != base.shape:
            raise ModelError(f"the preprocess gave {enc.shape[1]} columns when feature {col!r} was changed "
                             f"but {base.shape[1]} before; it must give a fixed number of columns")
        changes[col] = ((enc != base) & ~(np.isnan(enc) & np.isnan(base))).any(axis=0)
    return {col: changes[col] for col in features}


#: Most rows :func:`_encode_together` sends to the preprocess in one call.
_TOGETHER_ROWS = 65536


def _encode_together(oracle: Any, frames: dict[Any, pd.DataFrame], width: int) -> dict[Any, np.ndarray] | None:
    """Each of ``frames`` encoded, the frames stacked into as few calls of the preprocess as
    :data:`_TOGETHER_ROWS` allows: a fitted transformer's call costs far more than its rows
    (a ColumnTransformer validates and dispatches every block on every call), and it encodes
    a row alone as it does among others. None (encode them one by one) for a preprocess that is
    a plain function, frames whose stacking would change a column's dtype, or a call that fails
    or gives another width (the frames one by one say which and why)."""
    if len(frames) < 2 or not hasattr(oracle.preprocess, "transform"):
        return None
    parts = list(frames.values())
    dtypes = parts[0].dtypes
    if any(not f.dtypes.equals(dtypes) for f in parts[1:]):
        return None
    out: dict[Any, np.ndarray] = {}
    keys = list(frames)
    per = max(1, _TOGETHER_ROWS // max(1, len(parts[0])))
    for i in range(0, len(keys), per):
        group = keys[i:i + per]
        stacked = pd.concat([frames[k] for k in group], ignore_index=True)
        if not stacked.dtypes.equals(dtypes):
            return None
        try:
            enc = oracle.encode(stacked)
        except ModelError:
            return None
        if enc.ndim != 2 or enc.shape[0] != len(stacked) or enc.shape[1] != width:
            return None
        start = 0
        for k in group:
            out[k] = enc[start:start + len(frames[k])]
            start += len(frames[k])
    return out

def _structure_map(oracle: Any, reference: pd.DataFrame) -> tuple[dict, dict, int] | None:
    """Read the map off a fitted ColumnTransformer; None when the preprocess is not one."""
    ct = _column_transformer(oracle.preprocess)
    if ct is None:
        return None
    columns = list(reference.columns)
    by_name = {str(c): c for c in columns}
    names = getattr(ct, "feature_names_in_", None)
    if names is None:
        names = getattr(oracle.preprocess, "feature_names_in_", None)
    if names is not None and all(str(n) in by_name for n in names):
        inputs = [str(n) for n in names]
    elif getattr(ct, "n_features_in_", None) == len(columns):
        inputs = [str(c) for c in columns]
    else:
        return None
    # Each block's input positions (kept by scikit-learn >= 1.2); without them, probe.
    positions = getattr(ct, "_transformer_to_input_indices", None)
    if positions is None:
        return None
    n_encoded = max((s.stop for s in ct.output_indices_.values()), default=0)
    if oracle.encode(reference.iloc[:2]).shape[1] != n_encoded:
        return None
    groups: dict[str, set] = {str(c): set() for c in columns}
    to_probe = []
    for name, trans, _ in ct.transformers_:
        block = ct.output_indices_.get(name, slice(0, 0))
        width = block.stop - block.start
        if width == 0 or (isinstance(trans, str) and trans == "drop"):
            continue
        feats = [inputs[int(i)] for i in positions.get(name, ())]
        counts = _block_counts(trans, len(feats), width)
        if counts is None:
            to_probe.append((block, feats))
            continue
        pos = block.start
        for f, k in zip(feats, counts):
            groups[f].update(range(pos, pos + k))
            pos += k
    shared: dict[int, list[str]] = {}
    if to_probe:
        wanted = sorted({f for _, feats in to_probe for f in feats})
        changes = _probe(oracle, reference, [by_name[f] for f in wanted])
        for block, feats in to_probe:
            inside = np.zeros(n_encoded, dtype=bool)
            inside[block] = True
            hits = {f: np.flatnonzero(changes[by_name[f]] & inside) for f in feats}
            sub_groups, sub_shared = _split_changes(hits, n_encoded)
            for f, cols in sub_groups.items():
                groups[f].update(cols)
            shared.update(sub_shared)
    return {f: tuple(sorted(g - set(shared))) for f, g in groups.items()}, shared, n_encoded


# ---------------------------------------------------------------------- helpers
def _cyclic_shift(values: pd.Series) -> pd.Series | None:
    """Each value replaced by the next distinct value, so every row changes."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    if len(uniques) >= 2:
        return pd.Series(uniques.take((codes + 1) % len(uniques)), index=values.index)
    if len(uniques) == 1 and not pd.isna(uniques[0]):
        return values.where(pd.Series(False, index=values.index))  # the single value plus NaN
    return None  # all missing: nothing to shift to


def _split_changes(hits: dict[str, np.ndarray], n_encoded: int) -> tuple[dict[str, tuple], dict[int, list[str]]]:
    """Disjoint groups, plus each column hit by two or more features with those features."""
    counts = np.zeros(n_encoded, dtype=int)
    for cols in hits.values():
        counts[cols] += 1
    groups = {f: tuple(int(i) for i in cols if counts[i] == 1) for f, cols in hits.items()}
    shared = {int(i): [f for f, cols in hits.items() if i in cols] for i in np.flatnonzero(counts >= 2)}
    return groups, shared


def _column_transformer(preprocess: Any) -> ColumnTransformer | None:
    if isinstance(preprocess, ColumnTransformer):
        return preprocess
    if isinstance(preprocess, Pipeline) and isinstance(preprocess.steps[-1][1], ColumnTransformer):
        if all(_is_one_to_one(step) for _, step in preprocess.steps[:-1]):
            return preprocess.steps[-1][1]
    return None


def _is_one_to_one(trans: Any) -> bool:
    if trans is None or (isinstance(trans, str) and trans == "passthrough"):
        return True
    if isinstance(trans, Pipeline):
        return all(_is_one_to_one(step) for _, step in trans.steps)
    if isinstance(trans, FunctionTransformer):
        return trans.func is None  # identity, as ColumnTransformer uses for 'passthrough'
    if isinstance(trans, SimpleImputer):
        return not trans.add_indicator
    return isinstance(trans, _ONE_TO_ONE)


def _block_counts(trans: Any, n_in: int, width: int) -> list[int] | None:
    """Output columns per input column of one ColumnTransformer block; None to probe it."""
    if n_in == 1:
        return [width]
    if _is_one_to_one(trans):
        return [1] * n_in if width == n_in else None
    last = trans.steps[-1][1] if isinstance(trans, Pipeline) else trans
    if isinstance(last, OneHotEncoder) and (last is trans or all(_is_one_to_one(s) for _, s in trans.steps[:-1])):
        counts = getattr(last, "_n_features_outs", None)
        if counts is not None and len(counts) == n_in and sum(counts) == width:
            return [int(k) for k in counts]
    return None
