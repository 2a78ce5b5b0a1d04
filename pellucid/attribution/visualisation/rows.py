"""Maximisation on rows: :func:`maximise_row` (for tabular networks behind an
:class:`~pellucid.oracle.Oracle`, the raw row inside the schema's bounds and categories with
the highest probability of a class, found by a batched coordinate search in raw space started
from the best real rows) and :func:`top_rows` (the real rows, or images, of a reference set
with the highest class probability or unit activation)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..._targets import target_indices
from ..._validation import plain
from ...errors import ModelError, ParameterError, SchemaError
from ...oracle import Oracle
from ...schema import Kind, Schema
from .._base import eval_mode, find_layer
from ._common import (
    device_dtype,
    nonnegative_int,
    positive_int,
    target_list,
    torch_module,
    unit_activation,
    unit_index,
)

__all__ = ["RowMaximisation", "TopRows", "maximise_row", "top_rows"]


@dataclass
class RowMaximisation:
    """The in-schema raw row that maximises one class probability.

    Attributes
    ----------
    row : DataFrame
        One raw row, in the columns and dtypes of the reference (schema order without one),
        that satisfies ``schema.validate``.
    probability : float
        The oracle's probability of ``target`` for ``row`` (re-scored on the final row).
    target : object
        The class label maximised.
    rows : DataFrame
        The final row of every start, best first.
    probabilities : ndarray
        Their probabilities.
    start_probability : float
        The best probability among the start rows (the best real row the search could start
        from, with a reference).
    history : ndarray
        The best probability after each round of the search.
    n_queries : int
        Rows sent to the oracle by the search.
    params : dict
        The settings used.
    """

    row: pd.DataFrame
    probability: float
    target: Any
    rows: pd.DataFrame
    probabilities: np.ndarray
    start_probability: float
    history: np.ndarray
    n_queries: int
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "row": {str(k): plain(v, other=None) for k, v in self.row.iloc[0].items()},
            "probability": float(self.probability),
            "target": plain(self.target, other=None),
            "rows": [{str(k): plain(v, other=None) for k, v in r.items()} for _, r in self.rows.iterrows()],
            "probabilities": self.probabilities.tolist(),
            "start_probability": float(self.start_probability),
            "history": self.history.tolist(),
            "n_queries": int(self.n_queries),
            "params": plain(self.params, other=None),
        }


@dataclass
class TopRows:
    """The rows of a reference set that excite a class or unit most, best first.

    Attributes
    ----------
    index : ndarray of int
        Positions of the rows in the reference (0-based, not its index labels).
    scores : ndarray
        Their class probability or unit activation.
    rows : DataFrame or ndarray
        The rows themselves (a DataFrame keeps the reference's index labels).
    what : str
        ``"probability"`` or ``"activation"``.
    """

    index: np.ndarray
    scores: np.ndarray
    rows: Any
    what: str

    def __len__(self) -> int:
        return int(len(self.index))

    def to_frame(self, column: str = "score") -> pd.DataFrame:
        """The rows with their score as a last column (tabular references only)."""
        if not isinstance(self.rows, pd.DataFrame):
            raise ParameterError("to_frame needs a tabular reference (a DataFrame); these rows are arrays")
        return self.rows.assign(**{column: self.scores})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index.tolist(), "scores": self.scores.tolist(), "what": self.what}
        if isinstance(self.rows, pd.DataFrame):
            out["rows"] = [{str(k): plain(v, other=None) for k, v in r.items()} for _, r in self.rows.iterrows()]
        return out


def maximise_row(
    oracle: Oracle,
    target: Any,
    schema: Schema,
    *,
    reference: pd.DataFrame | None = None,
    steps: int = 30,
    n_starts: int = 5,
    grid: int = 21,
    refine: int = 4,
    allow_missing: bool = False,
    random_state: int | None = 0,
) -> RowMaximisation:
    """The raw row inside the schema with the highest probability of class ``target``.

    A batched coordinate ascent in raw space, started from the ``n_starts`` reference rows
    with the highest probability (without a reference: the schema's typical row and random
    rows inside it). Each round scores, in one query, every row that differs from a start's
    current row in one feature: numeric features on a grid of ``grid`` values over the
    schema's ``[low, high]`` plus a finer grid around the current value, integer features on
    whole numbers, binary features on their two values, categorical and ordinal features on
    all their categories. Each start moves to its best candidate while that raises its
    probability; the local grid is halved when no start improves, ``refine`` times.

    Searching raw rows (rather than the network's encoded input) needs nothing from the
    preprocess but that it encodes rows, every candidate is a row a user could have, integer
    and categorical features never need rounding, and the answer can never be worse than the
    best start: with a reference, at least as probable as the best real row it starts from.

    Parameters
    ----------
    oracle : Oracle
        A classifier on raw rows (any kind of model: the search only queries).
    target : class label or output index
        The class whose probability is maximised.
    schema : Schema
        The raw features, their kinds, ranges and categories (e.g. ``Schema.from_frame`` of the
        training table). The answer satisfies ``schema.validate``.
    reference : DataFrame, optional
        Real rows to start from (the best ``n_starts`` by probability). With
        ``allow_missing=False`` rows with missing values are left out of the starts (unless
        every row has some; those are then filled with the schema's typical values).
    steps : int
        Largest number of rounds (moves of one feature per start).
    n_starts : int
        Starts searched side by side.
    grid : int
        Values per numeric feature on the global grid (at least 2).
    refine : int
        Times the local grid around the current value is halved before the search stops.
    allow_missing : bool
        Whether a feature that the schema saw missing may be missing in the answer (the
        network may read "not recorded" as evidence).
    random_state : int or None
        Seed of the random starts (used without a reference, or with fewer usable reference
        rows than ``n_starts``).

    Returns
    -------
    RowMaximisation

    Raises
    ------
    ParameterError
        For a bad setting, an oracle that is not a classifier, or an unknown target.
    SchemaError
        For a reference that does not fit the schema.
    """
    if not isinstance(oracle, Oracle):
        raise ModelError(f"maximise_row needs a pellucid Oracle on raw rows; got {type(oracle).__name__}")
    if not isinstance(schema, Schema):
        raise ParameterError(f"schema must be a pellucid Schema; got {type(schema).__name__}")
    steps = positive_int(steps, "steps")
    n_starts = positive_int(n_starts, "n_starts")
    grid = positive_int(grid, "grid")
    if grid < 2:
        raise ParameterError(f"grid must be at least 2 values; got {grid}")
    refine = nonnegative_int(refine, "refine")
    rng = np.random.default_rng(random_state)
    n_before = oracle.n_queries

    template = _template(schema, reference)
    if reference is not None:
        schema.validate(reference, what="reference")
        pool = reference[[c for c in template.columns]]
        if not allow_missing:
            complete = pool.notna().all(axis=1).to_numpy()
            pool = pool[complete] if complete.any() else _fill_missing(pool, schema)
        t = _class_index(oracle, target, pool.iloc[:1])
        p_pool = oracle.query(pool)[:, t]
        order = np.argsort(-p_pool, kind="stable")[:n_starts]
        starts = pool.iloc[order].reset_index(drop=True)
        if len(starts) < n_starts:
            starts = pd.concat([starts, _random_rows(schema, template, n_starts - len(starts), rng, allow_missing)],
                               ignore_index=True)
    else:
        typical = _fill_missing(_typical_row(schema, template), schema)
        starts = pd.concat([typical, _random_rows(schema, template, n_starts - 1, rng, allow_missing)],
                           ignore_index=True) if n_starts > 1 else typical
        t = _class_index(oracle, target, starts.iloc[:1])
    starts = _cast_like(starts, template)

    current = starts.copy()
    cur_p = oracle.query(current)[:, t]
    start_p = float(cur_p.max())
    history = [start_p]
    level = 0  # halvings of the local grid so far
    for _ in range(steps):
        cands, owner = _candidates(current, schema, template, grid, level, allow_missing)
        p = oracle.query(cands)[:, t]
        moved = False
        # Best candidate per start, all starts at once.
        best = pd.Series(p).groupby(owner).idxmax()
        for s, i in best.items():
            if p[i] > cur_p[s] + 1e-12:
                current.iloc[s] = cands.iloc[i]
                cur_p[s] = p[i]
                moved = True
        history.append(float(cur_p.max()))
        if not moved:
            level += 1
            if level > refine:
                break
    current = _cast_like(current, template)
    final_p = oracle.query(current)[:, t]  # re-scored on the final rows as returned
    order = np.argsort(-final_p, kind="stable")
    rows = current.iloc[order].reset_index(drop=True)
    schema.validate(rows, what="maximising rows", allow_empty_columns=True)
    return RowMaximisation(
        row=rows.iloc[:1],
        probability=float(final_p[order[0]]),
        target=oracle.classes_[t],
        rows=rows,
        probabilities=final_p[order],
        start_probability=start_p,
        history=np.asarray(history),
        n_queries=int(oracle.n_queries - n_before),
        params={"steps": steps, "n_starts": n_starts, "grid": grid, "refine": refine,
                "allow_missing": allow_missing, "random_state": random_state,
                "starts": "reference" if reference is not None else "schema", "search": "coordinate, raw space"},
    )


def _template(schema: Schema, reference: pd.DataFrame | None) -> pd.DataFrame:
    """An empty frame with the columns (schema order) and dtypes rows are built in."""
    if reference is not None:
        if not isinstance(reference, pd.DataFrame):
            raise ParameterError(f"reference must be a DataFrame of raw rows; got {type(reference).__name__}")
        cols = {str(c): c for c in reference.columns}
        missing = [f for f in schema.names if f not in cols]
        if missing:
            raise SchemaError(f"the reference is missing columns {missing} of the schema")
        return reference[[cols[f] for f in schema.names]].iloc[:0]
    out = {}
    for f in schema:
        if f.kind is Kind.INTEGER:
            out[f.name] = pd.Series([], dtype="int64")
        elif f.is_numeric:
            out[f.name] = pd.Series([], dtype=f.dtype if f.dtype == "bool" else "float64")
        else:
            out[f.name] = pd.Series([], dtype=object)
    return pd.DataFrame(out)


def _cast_like(rows: pd.DataFrame, template: pd.DataFrame) -> pd.DataFrame:
    rows = rows.copy()
    for c in template.columns:
        try:
            rows[c] = rows[c].astype(template[c].dtype)
        except (TypeError, ValueError):
            pass  # e.g. a missing value in an integer column: keep floats
    return rows


def _typical_row(schema: Schema, template: pd.DataFrame) -> pd.DataFrame:
    values = {}
    for f in schema:
        if f.is_categorical or f.kind is Kind.BINARY:
            freqs = f.frequencies or (1.0,) * len(f.categories)
            values[f.name] = f.categories[int(np.argmax(freqs))]
        else:
            v = f.mean if f.mean is not None else (f.low + f.high) / 2
            values[f.name] = float(np.round(v)) if f.kind is Kind.INTEGER else float(v)
    return _cast_like(pd.DataFrame({c: [values[str(c)]] for c in template.columns}), template)


def _fill_missing(rows: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    typical = _typical_row(schema, rows.iloc[:0])
    rows = rows.copy()
    for c in rows.columns:
        rows[c] = rows[c].where(rows[c].notna(), typical[c].iloc[0])
    return rows


def _random_rows(schema: Schema, template: pd.DataFrame, k: int, rng: np.random.Generator,
                 allow_missing: bool) -> pd.DataFrame:
    cols = {}
    for f in schema:
        if f.is_categorical or f.kind is Kind.BINARY:
            cats = np.asarray(f.categories, dtype=object)
            cols[f.name] = cats[rng.integers(0, len(cats), k)]
        else:
            v = rng.uniform(f.low, f.high, k)
            cols[f.name] = np.round(v) if f.kind is Kind.INTEGER else v
    return _cast_like(pd.DataFrame({c: cols[str(c)] for c in template.columns}), template)


def _feature_values(f: Any, current: pd.Series, grid: int, level: int, allow_missing: bool) -> list[np.ndarray]:
    """Candidate values of one feature for each start: a list of 1-D arrays (one per start)."""
    if f.is_categorical or f.kind is Kind.BINARY:
        base = list(f.categories)
        if allow_missing and f.n_missing:
            base.append(np.nan)
        arr = np.asarray(base, dtype=object)
        return [arr] * len(current)
    lo, hi = float(f.low), float(f.high)
    if f.kind is Kind.INTEGER:
        lo, hi = math.ceil(lo), math.floor(hi)
        glob = np.unique(np.round(np.linspace(lo, hi, min(grid, int(hi - lo) + 1))))
    else:
        glob = np.linspace(lo, hi, grid)
    step = (hi - lo) / (grid - 1) * 0.5 ** level
    local = np.linspace(-step, step, 5)
    # Candidates are rounded one decimal finer than the local grid's spacing: the row found is
    # the row the network was asked about, and it prints as 7.6, not 7.649999999999999.
    decimals = max(0, 1 - math.floor(math.log10(step / 2))) if step > 0 else 0
    out = []
    for v in current.to_numpy(dtype=float):
        vals = glob if np.isnan(v) else np.concatenate([glob, v + local])
        vals = np.clip(np.round(vals, 0 if f.kind is Kind.INTEGER else decimals), lo, hi)
        vals = np.unique(vals)
        if allow_missing and f.n_missing:
            vals = np.append(vals, np.nan)
        out.append(vals)
    return out


def _candidates(current: pd.DataFrame, schema: Schema, template: pd.DataFrame, grid: int, level: int,
                allow_missing: bool) -> tuple[pd.DataFrame, np.ndarray]:
    """Every row that differs from a current row in one feature, and the start it belongs to."""
    blocks, owners = [], []
    starts = np.arange(len(current))
    for f in schema:
        per = _feature_values(f, current[f.name], grid, level, allow_missing)
        counts = np.array([len(v) for v in per])
        owner = np.repeat(starts, counts)
        block = current.iloc[owner].reset_index(drop=True)
        values = np.concatenate(per) if len(per) else np.array([])
        block[f.name] = pd.Series(values, dtype=object if values.dtype == object else None)
        blocks.append(block)
        owners.append(owner)
    cands = _cast_like(pd.concat(blocks, ignore_index=True), template)
    return cands, np.concatenate(owners)


def _class_index(oracle: Oracle, target: Any, probe: pd.DataFrame) -> int:
    answer = oracle.query(probe)  # fixes the task and the classes if not known yet
    if oracle.task != "classification":
        raise ParameterError("maximise_row and top_rows by probability need a classifier; this oracle is a regressor")
    return int(target_indices(target, 1, answer.shape[1], list(oracle.classes_))[0])


def top_rows(
    model: Any,
    reference: Any,
    target: Any = None,
    k: int = 10,
    *,
    layer: Any = None,
    unit: int | None = None,
    batch_size: int = 4096,
) -> TopRows:
    """The ``k`` rows of ``reference`` that excite a class or a unit most, best first.

    Parameters
    ----------
    model : Oracle or torch.nn.Module
        With an Oracle and raw rows, rows are ranked by ``oracle.query`` (the probability of
        ``target``). With a bare module (inputs in the module's own form, e.g. images), by the
        softmax of its logits.
    reference : DataFrame, ndarray or Tensor
        The rows to rank.
    target : class label or output index
        The class, when ranking by probability.
    k : int
        Rows returned (all when the reference has fewer).
    layer, unit : optional
        Rank by the mean activation of channel ``unit`` of ``layer`` (a name in
        ``named_modules()`` of the torch module, or the module) instead; an Oracle's
        reference is encoded by its preprocess first.
    batch_size : int
        Rows per forward pass of a bare module or a unit.

    Returns
    -------
    TopRows
        Ties keep the reference's order (a stable sort).
    """
    k = positive_int(k, "k")
    batch_size = positive_int(batch_size, "batch_size")
    if (layer is None) != (unit is None):
        raise ParameterError("layer and unit go together: pass both to rank by a unit, or neither for a class")
    n = len(reference)
    if n == 0:
        raise ParameterError("reference has no rows")
    if layer is None and isinstance(model, Oracle):
        if target is None:
            raise ParameterError("pass target= (the class whose probability ranks the rows)")
        t = _class_index(model, target, reference[:1] if not isinstance(reference, pd.DataFrame)
                         else reference.iloc[:1])
        scores = model.query(reference)[:, t]
        what = "probability"
    else:
        module = torch_module(model)
        device, dtype = device_dtype(module)
        if isinstance(model, Oracle) and isinstance(reference, (pd.DataFrame, np.ndarray)) \
                and model.preprocess is not None:
            x = torch.as_tensor(model.encode(reference))
        elif isinstance(reference, torch.Tensor):
            x = reference.detach()
        else:
            try:
                x = torch.as_tensor(np.asarray(reference, dtype=np.float64))
            except (TypeError, ValueError) as e:
                raise ParameterError(f"reference must be numbers in the module's input form ({e}); pass an Oracle "
                                     "with its preprocess for raw rows") from None
        x = x.to(device=device, dtype=dtype)
        store: dict[str, torch.Tensor] = {}
        handle = None
        name = None
        if layer is not None:
            name, lay = find_layer(module, layer)
            unit = unit_index(unit)
            handle = lay.register_forward_hook(lambda _m, _i, out: store.__setitem__("a", out))
        elif target is None:
            raise ParameterError("pass target= (the class whose probability ranks the rows) or layer= and unit=")
        parts = []
        try:
            with torch.no_grad(), eval_mode(module):
                for i in range(0, n, batch_size):
                    out = module(x[i:i + batch_size])
                    if layer is not None:
                        parts.append(unit_activation(store, name, unit))
                    else:
                        if i == 0:
                            t = target_list(target, out.shape[1])[0]
                        parts.append(torch.softmax(out.to(torch.float64), dim=1)[:, t])
        finally:
            if handle is not None:
                handle.remove()
        scores = torch.cat(parts).detach().cpu().to(torch.float64).numpy()
        what = "activation" if layer is not None else "probability"
    order = np.argsort(-scores, kind="stable")[:k]
    if isinstance(reference, pd.DataFrame):
        rows = reference.iloc[order]
    elif isinstance(reference, torch.Tensor):
        rows = reference[torch.as_tensor(order)].detach().cpu().numpy()
    else:
        rows = np.asarray(reference)[order]
    return TopRows(index=order, scores=scores[order], rows=rows, what=what)
