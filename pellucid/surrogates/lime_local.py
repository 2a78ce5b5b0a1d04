"""LIME for many rows at once: local weighted linear surrogates of the network around each row.

:func:`lime` explains every row of a table in a few batched steps instead of one LIME run per
row:

1. *Sampling*, schema-aware and in arrays: around each row, numeric features move by Gaussian
   noise scaled by the feature's robust spread (clipped to the observed range, integers kept
   integral), or, with ``discretize="quartile"`` as lime does, a quartile bin is drawn and a
   value observed in that bin; categorical and binary features keep the row's value or are
   redrawn among the other values by their frequency; a missing numeric value stays missing or
   is replaced by an observed value. The draws are *balanced* (each non-numeric feature keeps
   the row's value in half of the samples, so its indicator is as informative as it can be) and
   *antithetic* (numeric noise comes in pairs ``+e, -e`` sharing everything else, which cancels
   the curvature of the network from the slope estimates): both cut the variance of the
   coefficients, which is what makes the top reasons stable from one seed to the next.
2. *One query* of the network for all neighbourhoods of a chunk of rows (float32 arrays straight
   into a torch/ONNX model that has no preprocess; a raw DataFrame otherwise).
3. *Weighted ridge fits solved together*: the interpretable representation (per raw feature:
   the displacement of a numeric value from the row in units of the neighbourhood's noise --
   unit variance, as lime's scaled data -- or an indicator "same as the row" for categories,
   bins and missing values) is weighted by lime's exponential kernel (width
   ``0.75 * sqrt(n_features)`` on the distance in that space), and the normal
   equations of every row are solved in one batched ``torch.linalg.solve`` (the same centring
   and penalty as scikit-learn's ``Ridge(alpha)`` with sample weights).
4. *Held-out fidelity*: a share of each neighbourhood (``holdout``) is never used in the fit;
   ``local_r2`` is the kernel-weighted R² of the local model on those samples.

Results do not depend on ``chunk_rows``: each kind of random draw has its own stream, consumed
row after row in the same order whatever the chunking. A piece of a table (``part``, as
:mod:`pellucid.cluster` explains a table on a Dask cluster) reads its streams past the rows
before it, so pieces explained apart equal one call on the whole table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from .._plain import is_missing as _isna
from .._targets import target_indices
from .._validation import Interval, Options, as_oracle, validate_params
from ..errors import ParameterError
from ..extraction.samplers import _spread
from ..oracle import Oracle
from ..schema import Kind, Schema
from .local import check_local_rows

__all__ = ["lime", "LocalExplanations", "LimeStability", "lime_stability", "top_k_agreement", "as_oracle",
           "FEATURE_SELECTION", "MIN_SHARE"]

#: Feature selection methods: all features, lime's "highest_weights" (the ``num_features``
#: largest |contributions| of a fit on all features, then refitted) and greedy forward selection
#: on the weighted R² of the fit (lime's "forward_selection"), both solved on the Gram matrices.
FEATURE_SELECTION = ("none", "highest_weights", "forward")
#: Sample rows per chunk: neighbourhoods are made, queried and fitted this many rows at a time.
_CHUNK_ARRAY = 500_000
_CHUNK_FRAME = 100_000
#: A reason must carry at least this share of the row's total |contribution|: LIME's estimate of
#: a feature the network ignores is noise of about that size, not a reason.
MIN_SHARE = 0.01
_NUM, _IND, _BIN = 0, 1, 2  # how a feature enters the local model of a row


# ----------------------------------------------------------------------------- the result
@dataclass
class LocalExplanations:
    """Local linear explanations of many rows (the result of :func:`lime`).

    Attributes
    ----------
    rows : DataFrame
        The explained rows, canonical (schema order), with the caller's index.
    coef : DataFrame
        Rows x raw features: the local model's coefficient on each feature's interpretable
        representation: per robust spread of a numeric feature (the fit itself works in units
        of the neighbourhood's noise, ``scale`` spreads, where lime's unit-variance scaling and
        ``ridge_alpha`` mean what they mean in lime); for an indicator -- a category, a
        quartile bin, a missing value -- the effect of being as the row is.
    coef_raw : DataFrame
        Per unit of the feature, in the user's units, for numeric features explained by their
        value (continuous representation) and binary ones (0 -> 1); NaN elsewhere.
    contributions : DataFrame
        Each feature's push on the explained output at the row: ``coef_raw * (x - median)``
        for a numeric value (against the reference's median), the coefficient for an
        indicator. Positive values push towards the explained outcome.
    representation : DataFrame
        Per row and feature, "value" (displacement, in units of the noise), "bin", "category" or
        "missing" (indicators).
    intercept, local_r2, score, prediction_local, prediction_network : Series
        Per row: intercept of the local model (its value at the row when every numeric
        feature is at the row's value and no indicator is set), the kernel-weighted R² on the
        held-out neighbourhood samples, the weighted R² on the samples fitted (lime's
        ``score``), the local model at the row and the network at the row.
    target : Series
        The class whose probability is explained (classification), else None values.
    target_index : ndarray of int or None
    task : str
    output_name : Series
        How the explained output reads in text, e.g. "P(bad)" or "the prediction".
    params : dict
        The settings used (JSON-ready).
    """

    rows: pd.DataFrame
    coef: pd.DataFrame
    coef_raw: pd.DataFrame
    contributions: pd.DataFrame
    representation: pd.DataFrame
    intercept: pd.Series
    local_r2: pd.Series
    score: pd.Series
    prediction_local: pd.Series
    prediction_network: pd.Series
    target: pd.Series
    target_index: np.ndarray | None
    task: str
    output_name: pd.Series
    params: dict[str, Any] = field(default_factory=dict)
    bins: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def features(self) -> list[str]:
        return list(self.coef.columns)

    def top_features(self, k: int = 3, by: str = "positive", min_share: float = MIN_SHARE) -> np.ndarray:
        """Feature names ranked per row, shape ``(rows, k)``, None where there are fewer.

        ``by="positive"``: the features pushing towards the explained outcome (positive
        contributions), largest first -- the reasons. ``by="abs"``: the largest |contributions|.
        Contributions below ``min_share`` of the row's total |contribution| do not count.
        """
        return _top(self.contributions.to_numpy(), np.asarray(self.features, dtype=object), k, by, min_share)

    def reasons(self, k: int = 3, min_share: float = MIN_SHARE) -> pd.DataFrame:
        """The top-``k`` reasons per row as text in raw units.

        Returns
        -------
        DataFrame
            Columns ``reason_1`` .. ``reason_k``, e.g. ``"debt_ratio = 0.82 (raises P(bad) by
            0.21)"`` or ``"home = rent (raises P(bad) by 0.05)"``; None where fewer than ``k``
            features push towards the outcome by at least ``min_share`` of the row's total
            |contribution|.
        """
        k = _check_k(k, len(self.features))
        contrib = self.contributions.to_numpy()
        order = _order(contrib, k, "positive", min_share)
        out = np.full((len(self), k), None, dtype=object)
        for j, name in enumerate(self.features):  # a loop over features; rows are vectorised
            hit = order == j
            if not hit.any():
                continue
            r, slot = np.nonzero(hit)
            texts = self._texts(name, r)
            out[r, slot] = texts
        return pd.DataFrame(out, index=self.rows.index, columns=[f"reason_{i + 1}" for i in range(k)])

    def describe_value(self, feature: str, rows: np.ndarray | None = None) -> np.ndarray:
        """The rows' value of ``feature`` as text ("debt_ratio = 0.82", "income is missing")."""
        r = np.arange(len(self)) if rows is None else np.asarray(rows)
        values = self.rows[feature].to_numpy(dtype=object)[r]
        rep = self.representation[feature].to_numpy(dtype=object)[r]
        out = np.empty(len(r), dtype=object)
        for i, (v, kind) in enumerate(zip(values, rep)):
            if kind == "missing" or _isna(v):
                out[i] = f"{feature} is missing"
            elif kind == "bin" and feature in self.bins:
                out[i] = f"{feature} = {_fmt(v)} ({_bin_text(feature, v, self.bins[feature])})"
            else:
                out[i] = f"{feature} = {_fmt(v)}"
        return out

    def _texts(self, feature: str, r: np.ndarray) -> list[str]:
        values = self.describe_value(feature, r)
        c = self.contributions[feature].to_numpy()[r]
        names = self.output_name.to_numpy(dtype=object)[r]
        return [f"{v} ({'raises' if ci >= 0 else 'lowers'} {o} by {_fmt(abs(ci), 2)})"
                for v, ci, o in zip(values, c, names)]

    def to_frame(self) -> pd.DataFrame:
        """Tidy export: one row per (explained row, feature) with value, representation,
        coefficient, coefficient per raw unit, contribution and its rank among the row's
        positive contributions, plus the row's target, intercept, local R² and predictions."""
        n, p = self.coef.shape
        rank = np.full((n, p), np.nan)
        order = _order(self.contributions.to_numpy(), p, "positive", 0.0)
        r, slot = np.nonzero(order >= 0)
        rank[r, order[r, slot]] = slot + 1
        idx = np.repeat(np.arange(n), p)
        feats = np.tile(np.asarray(self.features, dtype=object), n)
        frame = pd.DataFrame({
            "row": np.repeat(np.asarray(self.rows.index, dtype=object), p),
            "feature": feats,
            "value": self.rows.to_numpy(dtype=object).ravel(),
            "representation": self.representation.to_numpy(dtype=object).ravel(),
            "coef": self.coef.to_numpy().ravel(),
            "coef_raw": self.coef_raw.to_numpy().ravel(),
            "contribution": self.contributions.to_numpy().ravel(),
            "reason_rank": rank.ravel(),
            "target": self.target.to_numpy(dtype=object)[idx],
            "intercept": self.intercept.to_numpy()[idx],
            "local_r2": self.local_r2.to_numpy()[idx],
            "prediction_local": self.prediction_local.to_numpy()[idx],
            "prediction_network": self.prediction_network.to_numpy()[idx],
        })
        return frame


def _fmt(v: Any, digits: int = 4) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        if float(v).is_integer() and abs(v) < 1e15:
            return str(int(v))
        return f"{float(v):.{digits}g}"
    return str(v)


def _bin_text(feature: str, v: float, edges: np.ndarray) -> str:
    b = int(np.searchsorted(edges, v, side="left"))
    if b == 0:
        return f"{feature} <= {_fmt(edges[0])}"
    if b == len(edges):
        return f"{feature} > {_fmt(edges[-1])}"
    return f"{_fmt(edges[b - 1])} < {feature} <= {_fmt(edges[b])}"


def _check_k(k: Any, p: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParameterError(f"k must be a positive integer; got {k!r}")
    return int(min(k, p))


def _order(contrib: np.ndarray, k: int, by: str, min_share: float = MIN_SHARE) -> np.ndarray:
    """Feature indices ranked per row, ``(rows, k)``, -1 where fewer qualify (a positive
    contribution, or any for "abs", of at least ``min_share`` of the row's total |contribution|)."""
    if by not in ("positive", "abs"):
        raise ParameterError(f"by must be 'positive' or 'abs'; got {by!r}")
    if not isinstance(min_share, (int, float)) or not 0 <= min_share < 1:
        raise ParameterError(f"min_share must be in [0, 1); got {min_share!r}")
    c = np.nan_to_num(contrib, nan=0.0)
    floor = min_share * np.abs(c).sum(axis=1, keepdims=True)
    small = np.abs(c) <= floor
    score = np.where(small, -np.inf, np.abs(c) if by == "abs" else np.where(c > 0, c, -np.inf))
    # Stable sort on the negated score: ties keep the schema order, so ranks are reproducible.
    order = np.argsort(-score, axis=1, kind="stable")[:, :k]
    ok = np.take_along_axis(score, order, axis=1)
    return np.where(np.isfinite(ok), order, -1)


def _top(contrib: np.ndarray, names: np.ndarray, k: int, by: str, min_share: float = MIN_SHARE) -> np.ndarray:
    k = _check_k(k, contrib.shape[1])
    order = _order(contrib, k, by, min_share)
    out = np.full(order.shape, None, dtype=object)
    ok = order >= 0
    out[ok] = names[order[ok]]
    return out


# ----------------------------------------------------------------------------- the plan
@dataclass
class _Plan:
    """What the reference tells about each feature, in arrays."""

    schema: Schema
    names: list[str]
    numeric: np.ndarray  # bool per feature: sampled as a number (numeric/integer, not binary)
    integer: np.ndarray
    spread: np.ndarray  # robust spread of numeric features (1 where undefined)
    median: np.ndarray
    low: np.ndarray
    high: np.ndarray
    observed: list[np.ndarray | None]  # sorted observed values of numeric features
    edges: list[np.ndarray | None]  # quartile edges (discretize) of numeric features
    levels: list[np.ndarray | None]  # categories (+ NaN last when missing occurs) of the others
    freqs: list[np.ndarray | None]
    needs_draw: np.ndarray  # bool per feature: sampled from uniforms (categories, bins, missing values)
    noise_sd: np.ndarray = None  # type: ignore[assignment]  # numeric noise; the unit of the representation


def _plan(schema: Schema, ref: pd.DataFrame, rows: pd.DataFrame, discretize: bool) -> _Plan:
    p = len(schema)
    numeric = np.array([f.kind in (Kind.NUMERIC, Kind.INTEGER) for f in schema])
    integer = np.array([f.kind is Kind.INTEGER for f in schema])
    spread, median = np.ones(p), np.zeros(p)
    low, high = np.zeros(p), np.zeros(p)
    observed: list = [None] * p
    edges: list = [None] * p
    levels: list = [None] * p
    freqs: list = [None] * p
    for j, f in enumerate(schema):
        col = ref[f.name]
        if numeric[j]:
            v = col.to_numpy(dtype=float)
            v = np.sort(v[~np.isnan(v)])
            s = _spread(f, v)
            spread[j] = s if s > 0 else 1.0
            median[j] = float(np.median(v))
            low[j], high[j] = float(v[0]), float(v[-1])
            observed[j] = v
            if discretize:
                edges[j] = np.unique(np.percentile(v, [25, 50, 75]))
        else:
            cats = list(f.categories or ())
            values = col.to_numpy(dtype=object)
            miss = np.array([_isna(x) for x in values])
            counts = pd.Index(cats, dtype=object).get_indexer(values[~miss]) if (~miss).any() else np.array([], int)
            fr = np.bincount(counts[counts >= 0], minlength=len(cats)).astype(float)
            row_miss = bool(rows[f.name].isna().any())
            if miss.any() or row_miss:
                cats = cats + [np.nan]
                fr = np.append(fr, float(miss.sum()))
            levels[j] = np.asarray(cats, dtype=object)
            freqs[j] = fr / fr.sum() if fr.sum() > 0 else np.full(len(cats), 1.0 / len(cats))
    # Which features draw from the uniform streams is fixed by the whole table, never by a chunk.
    needs = np.array([not numeric[j] or discretize or bool(rows[f.name].isna().any()) for j, f in enumerate(schema)])
    return _Plan(schema, list(schema.names), numeric, integer, spread, median, low, high, observed, edges, levels,
                 freqs, needs)


def _codes(levels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of each value among ``levels`` (NaN matches a trailing NaN level)."""
    present = np.array([not _isna(v) for v in values])
    out = np.full(len(values), len(levels) - 1, dtype=np.int64)
    if present.any():
        out[present] = pd.Index(list(levels[:len(levels) - (1 if _isna(levels[-1]) else 0)]),
                                dtype=object).get_indexer(values[present])
    return out


# ----------------------------------------------------------------------------- sampling
class _Streams:
    """Independent random streams, one per kind of draw, consumed row by row in order so that
    any chunking of the rows gives the same draws."""

    def __init__(self, random_state: Any) -> None:
        self.root = seed_sequence(random_state)
        self.noise, self.keep, self.draw = (np.random.default_rng(s) for s in self.root.spawn(3))

    def take(self, c: int, q: int, d: int, n_pert: int) -> tuple[np.ndarray | None, ...]:
        """The next ``c`` rows' draws: numeric noise ``(c, q, half)`` and the uniforms behind
        the keep/redraw choices and the drawn values of ``d`` features (per pair of samples when
        there is numeric noise to mirror, per sample otherwise)."""
        half = (n_pert + 1) // 2
        eps = self.noise.standard_normal((c, q, half), dtype=np.float32) if q else None
        keep = draw = None
        if d:
            m = half if q else n_pert
            keep = self.keep.random((c, m, d), dtype=np.float32)
            draw = self.draw.random((c, m, d))
        return eps, keep, draw

    def skip(self, rows: int, q: int, d: int, n_pert: int, block: int = 64) -> None:
        """Consume the draws of ``rows`` rows, in blocks of ``block`` rows (each stream is read
        in order, so the streams then stand where a call on the whole table has them)."""
        for start in range(0, rows, block):
            self.take(min(block, rows - start), q, d, n_pert)


def seed_sequence(random_state: Any) -> np.random.SeedSequence:
    """The root seed of :func:`lime`'s streams: an int or None seeds it, a Generator gives one
    draw for it, a SeedSequence is used as is. Pieces of one table explained apart must be given
    the same root (pass this SeedSequence as their ``random_state``)."""
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(2**63)))
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if random_state is not None and (isinstance(random_state, bool)
                                     or not isinstance(random_state, (int, np.integer))):
        raise ParameterError(f"random_state must be an int, a numpy Generator or None; got {random_state!r}")
    return np.random.SeedSequence(random_state)


def _other_level(u: np.ndarray, own: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """For each row ``i`` and sample, a level other than ``own[i]`` drawn by ``freqs``
    (renormalised without ``own[i]``); ``own[i]`` itself when it is the only level with mass.

    ``u`` is ``(c, m)`` uniforms. All rows at once: each row's cumulative distribution is
    shifted by the row's index, so one ``searchsorted`` on the concatenation serves all.
    """
    c, m = u.shape
    L = len(freqs)
    p = np.broadcast_to(freqs, (c, L)).copy()
    p[np.arange(c), own] = 0.0
    tot = p.sum(axis=1)
    alone = tot <= 0
    p[alone, own[alone]] = 1.0
    cdf = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    cdf[:, -1] = 1.0 + 1e-12
    flat = (cdf + 2.0 * np.arange(c)[:, None]).ravel()
    idx = np.searchsorted(flat, (u + 2.0 * np.arange(c)[:, None]).ravel(), side="right")
    codes = idx.reshape(c, m) - L * np.arange(c)[:, None]
    codes = np.minimum(codes, L - 1)
    # Levels without mass are never drawn (searchsorted lands past zero-width steps).
    return codes


def _antithetic(a: np.ndarray, n: int, sign: bool, out: np.ndarray | None = None) -> np.ndarray:
    """``(c, h, ...)`` draws -> ``(c, n, ...)``: each draw followed by its mirror (``-a`` when
    ``sign``, a copy otherwise)."""
    if out is None:
        out = np.empty((a.shape[0], n, *a.shape[2:]), dtype=a.dtype)
    n_even = n // 2 + n % 2
    out[:, 0::2] = a[:, :n_even]
    out[:, 1::2] = -a[:, :n // 2] if sign else a[:, :n // 2]
    return out


def _noise_sd(plan: _Plan, idx: np.ndarray, scale: float) -> np.ndarray:
    """Noise of numeric features: ``scale`` robust spreads, at least half a unit for integer
    features (so that rounding still moves them in about a third of the samples)."""
    sd = scale * plan.spread[idx]
    return np.where(plan.integer[idx], np.maximum(sd, 0.5), sd)


def _neighbourhoods(plan: _Plan, rows: pd.DataFrame, n_pert: int, streams: _Streams, scale: float,
                    discretize: bool, fast: bool) -> dict[str, Any]:
    """Samples around ``rows`` (``c`` rows), the row itself first: the model's input (a float32
    array ``(c * s, p)`` on the fast path, else per feature raw values or category codes
    ``(c, s)``), the interpretable representation ``(c, s, p)``, the squared kernel distance
    ``(c, s)`` and how each feature enters each row's model."""
    c = len(rows)
    s = 1 + n_pert
    p = len(plan.names)
    num_idx = np.flatnonzero(plan.numeric & ~plan.needs_draw)
    drawn = np.flatnonzero(plan.needs_draw)
    # Every stream is drawn with shapes fixed by (c, n_pert) and the plan, never by the chunk's data.
    eps, keep_u, draw_u = streams.take(c, len(num_idx), len(drawn), n_pert)
    keep = draw = None
    if len(drawn) and len(num_idx):
        # Pairs share their categories and bins, so that a pair differs only in the sign of its
        # numeric noise (which cancels the network's curvature from the slopes).
        keep = _antithetic(keep_u < 0.5, n_pert, sign=False)
        draw = _antithetic(draw_u, n_pert, sign=False)
    elif len(drawn):
        # No numeric noise to mirror (every feature drawn: categories, bins): a mirrored pair
        # would be the same sample twice, so every sample is drawn afresh.
        keep = keep_u < 0.5
        draw = draw_u

    model_in = np.empty((c, p, s), dtype=np.float32) if fast else None
    raw: list[np.ndarray] = [None] * p  # type: ignore[list-item]
    interp = np.empty((c, p, s), dtype=np.float32)  # feature-major: each (row, feature) contiguous
    d2 = np.zeros((c, s), dtype=np.float64)
    kind = np.empty((c, p), dtype=np.int8)
    if len(num_idx):  # the common case, all such numeric features at once
        x = np.stack([rows[plan.names[j]].to_numpy(dtype=float) for j in num_idx], axis=1)  # (c, q)
        # float32 on the fast path (the model's own input type), float64 for raw frames.
        dt = np.float32 if fast else np.float64
        sd = plan.noise_sd[num_idx].astype(dt)[None, :, None]
        xs = x.astype(dt)[:, :, None]
        contiguous = len(num_idx) == num_idx[-1] - num_idx[0] + 1
        v = model_in[:, num_idx[0]:num_idx[-1] + 1] if fast and contiguous else np.empty((c, len(num_idx), s), dt)
        v[:, :, 0] = x
        delta = eps if fast else eps.astype(np.float64)  # (c, q, half)
        delta *= sd
        n_even = n_pert // 2 + n_pert % 2
        np.add(xs, delta[:, :, :n_even], out=v[:, :, 1::2])  # +e, then its mirror -e
        np.subtract(xs, delta[:, :, :n_pert // 2], out=v[:, :, 2::2])
        np.clip(v, np.minimum(plan.low[num_idx], x).astype(dt)[:, :, None],
                np.maximum(plan.high[num_idx], x).astype(dt)[:, :, None], out=v)
        ints = plan.integer[num_idx]
        if ints.any():
            v[:, ints] = np.round(v[:, ints])
        z = interp[:, num_idx[0]:num_idx[-1] + 1] if contiguous else np.empty((c, len(num_idx), s), np.float32)
        np.subtract(v, xs, out=z, casting="same_kind" if fast else "unsafe")
        z /= sd.astype(np.float32)
        d2 += np.einsum("cqs,cqs->cs", z, z)
        if not contiguous:
            interp[:, num_idx] = z
        kind[:, num_idx] = _NUM
        if fast and not contiguous:
            model_in[:, num_idx] = v
        elif not fast:
            for i, j in enumerate(num_idx):
                raw[j] = v[:, i]
    for j in drawn:  # features drawn from uniforms: categories, bins, missing values
        name = plan.names[j]
        values = rows[name].to_numpy(dtype=float if plan.numeric[j] else object)
        col = interp[:, j, :]
        if plan.numeric[j]:
            k = int(np.searchsorted(drawn, j))
            u, kp = draw[:, :, k], keep[:, :, k]
            x = values
            miss = np.isnan(x)
            obs = plan.observed[j]
            v = np.empty((c, s))
            v[:, 0] = x
            col[:, 0] = 1.0
            if discretize:
                edges = plan.edges[j]
                nb = len(edges) + 1
                bins_obs = np.searchsorted(edges, obs, side="left")
                start = np.searchsorted(bins_obs, np.arange(nb), side="left")
                stop = np.searchsorted(bins_obs, np.arange(nb), side="right")
                own = np.searchsorted(edges, np.where(miss, obs[0], x), side="left")
                other = _other_level(u, own, (stop - start) / len(obs))
                b = np.where(kp, own[:, None], other)
                frac = (u * 1e6) % 1.0  # a value observed in the bin: further digits of the same uniform
                v[:, 1:] = obs[np.minimum(start[b] + (frac * (stop - start)[b]).astype(np.int64), len(obs) - 1)]
                col[:, 1:] = b == own[:, None]
                kind[:, j] = _BIN
            else:
                # A numeric feature with missing values: noise from the same kind of draw (the
                # uniform turned normal) so that missing rows and present rows share one stream.
                from scipy.special import ndtri
                half_u = u[:, 0::2]
                e = ndtri(np.clip(half_u, 1e-12, 1 - 1e-12))
                delta = _antithetic(plan.noise_sd[j] * e, n_pert, sign=True)
                lo = np.minimum(plan.low[j], np.where(miss, plan.low[j], x))[:, None]
                hi = np.maximum(plan.high[j], np.where(miss, plan.high[j], x))[:, None]
                vv = np.clip(x[:, None] + delta, lo, hi)
                if plan.integer[j]:
                    vv = np.round(vv)
                v[:, 1:] = vv
                col[:, 0] = 0.0
                col[:, 1:] = (vv - x[:, None]) / plan.noise_sd[j]
                kind[:, j] = _NUM
            if miss.any():  # missing at the row: stays missing or takes an observed value
                pick = obs[np.minimum((u[miss] * len(obs)).astype(np.int64), len(obs) - 1)]
                stay = kp[miss]
                v[miss, 1:] = np.where(stay, np.nan, pick)
                col[miss, 0] = 1.0
                col[miss, 1:] = stay
                kind[miss, j] = _IND
            is_num = kind[:, j] == _NUM
            d2 += np.where(is_num[:, None], col * col, 1.0 - col)
        else:
            k = int(np.searchsorted(drawn, j))
            levels, freqs = plan.levels[j], plan.freqs[j]
            own = _codes(levels, values)
            other = _other_level(draw[:, :, k], own, freqs)
            codes = np.empty((c, s), dtype=np.int64)
            codes[:, 0] = own
            codes[:, 1:] = np.where(keep[:, :, k], own[:, None], other)
            np.equal(codes, own[:, None], out=col, casting="unsafe")
            d2 += 1.0 - col
            kind[:, j] = _IND
            v = codes
            if fast:
                v = levels[codes].astype(np.float64)
        if fast:
            model_in[:, j] = v
        else:
            raw[j] = v
    return {"input": model_in.transpose(0, 2, 1).reshape(c * s, p) if fast else raw, "interp": interp, "d2": d2,
            "kind": kind}


def _model_input(plan: _Plan, raw: list[np.ndarray], dtypes: dict[str, Any]) -> pd.DataFrame:
    """Raw rows for a model with a preprocess (or a callable): a DataFrame in the reference's dtypes."""
    cols: dict[str, Any] = {}
    for j, name in enumerate(plan.names):
        r = raw[j].reshape(-1)
        if plan.numeric[j]:
            v: Any = r
        else:
            v = plan.levels[j][r]
            f = plan.schema[name]
            if f.kind is Kind.BINARY:
                v = v.astype(float)
        s_ = pd.Series(v)
        dt = dtypes.get(name)
        if dt is not None and s_.dtype != dt:
            try:
                if not (pd.api.types.is_integer_dtype(dt) or pd.api.types.is_bool_dtype(dt)) or not s_.isna().any():
                    s_ = s_.astype(dt)
            except (TypeError, ValueError):
                pass
        cols[name] = s_
    return pd.DataFrame(cols)


# ----------------------------------------------------------------------------- fitting
def _kernel(d2: np.ndarray, width: float) -> np.ndarray:
    """lime's exponential kernel ``sqrt(exp(-d^2 / width^2))`` on the distance from the row:
    numeric displacements in units of their noise, 1 per indicator that differs."""
    return np.exp(-d2 / (2.0 * width ** 2))


def _gram(X: torch.Tensor, y: torch.Tensor, w: torch.Tensor):
    """Weighted means and the centred normal equations of each row (scikit-learn's Ridge with
    sample weights): ``G = Xc' W Xc``, ``b = Xc' W yc``, ``yy = yc' W yc``, from one weighted
    pass and one batched matrix product, summed in float64 (so that a row's result does not
    depend on the rows beside it). ``X`` is feature-major, ``(rows, features, samples)``."""
    X = X.double()
    sw = w.sum(1)
    Xw = X * w.unsqueeze(1)
    sx = Xw.sum(2)
    G = Xw @ X.transpose(1, 2) - sx.unsqueeze(2) * sx.unsqueeze(1) / sw[:, None, None]
    swy = (w * y).sum(1)
    b = (Xw @ y.unsqueeze(2)).squeeze(2) - sx * (swy / sw).unsqueeze(1)
    yy = (w * y * y).sum(1) - swy * swy / sw
    return G, b, yy, sx / sw.unsqueeze(1), swy / sw


def _solve(G: torch.Tensor, b: torch.Tensor, alpha: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Batched ridge solve; features outside ``mask`` get coefficient 0."""
    p = G.shape[-1]
    eye = torch.eye(p, dtype=G.dtype, device=G.device)
    A = G + alpha * eye
    if mask is not None:
        m = mask.to(G.dtype)
        outer = m.unsqueeze(-1) * m.unsqueeze(-2)
        A = A * outer + eye * (1 - m).unsqueeze(-1)
        b = b * m
    # A tiny jitter keeps constant columns (a feature no sample moved) solvable with alpha=0.
    A = A + eye * (1e-10 * (A.diagonal(dim1=-2, dim2=-1).abs().amax(-1, keepdim=True).unsqueeze(-1) + 1e-30))
    return torch.linalg.solve(A, b)


def _sse(G: torch.Tensor, b: torch.Tensor, yy: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    return yy - 2 * (beta * b).sum(-1) + (beta.unsqueeze(-2) @ G @ beta.unsqueeze(-1)).squeeze(-1).squeeze(-1)


def _select(G, b, yy, alpha, how, k, scale_at_row):
    """Mask ``(c, p)`` of the features kept by ``how``."""
    c, p = b.shape
    if how == "none" or k >= p:
        return None
    if how == "highest_weights":
        beta = _solve(G, b, alpha)
        score = (beta * scale_at_row).abs()
        top = score.argsort(dim=1, descending=True, stable=True)[:, :k]
        mask = torch.zeros((c, p), dtype=torch.bool)
        mask.scatter_(1, top, True)
        return mask
    # forward: add, k times, the feature whose addition fits best (all rows and candidates at once)
    mask = torch.zeros((c, p), dtype=torch.bool)
    for _ in range(k):
        cand = mask.unsqueeze(1) | torch.eye(p, dtype=torch.bool).unsqueeze(0)  # (c, p, p)
        beta = _solve(G.unsqueeze(1).expand(c, p, p, p), b.unsqueeze(1).expand(c, p, p), alpha, cand)
        sse = _sse(G.unsqueeze(1), b.unsqueeze(1), yy.unsqueeze(1), beta)
        sse = sse.masked_fill(mask, float("inf"))
        best = sse.argmin(dim=1)
        mask[torch.arange(c), best] = True
    return mask


def _weighted_r2(y: torch.Tensor, pred: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    sw = w.sum(1, keepdim=True)
    ym = (w * y).sum(1, keepdim=True) / sw
    sst = (w * (y - ym) ** 2).sum(1)
    sse = (w * (y - pred) ** 2).sum(1)
    r2 = 1 - sse / sst
    return torch.where(sst > 1e-300, r2, torch.full_like(r2, float("nan")))


# ----------------------------------------------------------------------------- validation
#: What each of :func:`lime`'s settings must be (checked by ``validate_params``).
_CONSTRAINTS = {
    "num_samples": [Interval(Integral, 1, None)],
    "holdout": [Interval(Real, 0, 0.9, closed="left")],
    "kernel_width": [Interval(Real, 0, None, closed="neither"), None],
    "ridge_alpha": [Interval(Real, 0, None)],
    "discretize": [Options((False, None, "quartile"))],
    "feature_selection": [Options(FEATURE_SELECTION)],
    "num_features": [Interval(Integral, 1, None), None],
    "scale": [Interval(Real, 0, None, closed="neither")],
}


def _check_params(num_samples, holdout, kernel_width, ridge_alpha, discretize, feature_selection, num_features,
                  scale, p) -> tuple[int, int, bool]:
    validate_params("lime", dict(num_samples=num_samples, holdout=holdout, kernel_width=kernel_width,
                                 ridge_alpha=ridge_alpha, discretize=discretize, feature_selection=feature_selection,
                                 num_features=num_features, scale=scale), _CONSTRAINTS)
    n_hold = int(round(holdout * num_samples))
    if holdout > 0:
        n_hold = max(n_hold, 10)
    n_fit = num_samples - 1 - n_hold
    need_fit = 2 * (p + 1)
    if n_fit < need_fit:
        least = need_fit + 1 + (max(10, int(np.ceil(holdout * (need_fit + 1) / (1 - holdout)))) if holdout > 0 else 0)
        raise ParameterError(f"num_samples={num_samples} is too small for {p} features: the fit needs at least "
                             f"{need_fit} perturbed samples besides the row and {n_hold} held-out ones "
                             f"(holdout={holdout}); use num_samples >= {least} (lime's default is 5000)")
    if feature_selection != "none" and num_features is None:
        raise ParameterError(f"feature_selection={feature_selection!r} needs num_features")
    return n_fit, n_hold, discretize == "quartile"


def _resolve_target(target: Any, oracle: Oracle, at_rows: np.ndarray, n: int) -> np.ndarray | None:
    if oracle.task == "regression":
        if target is not None:
            raise ParameterError("target is for classifiers; this model is a regressor (its output is explained)")
        return None
    if target is None:
        return at_rows.argmax(axis=1)
    return target_indices(target, n, at_rows.shape[1], list(oracle.classes_))


# ----------------------------------------------------------------------------- the function
def lime(
    model: Any,
    rows: pd.DataFrame,
    reference: pd.DataFrame,
    num_samples: int = 5000,
    random_state: Any = 0,
    *,
    kernel_width: float | None = None,
    discretize: bool | str = False,
    feature_selection: str = "none",
    num_features: int | None = None,
    ridge_alpha: float = 1.0,
    target: Any = None,
    chunk_rows: int | None = None,
    holdout: float = 0.2,
    scale: float = 0.1,
    part: tuple[int, int] | None = None,
    output: str = "probability",
) -> LocalExplanations:
    """LIME explanations of many rows, sampled, queried and fitted in batches.

    Parameters
    ----------
    model : Oracle or anything :class:`~pellucid.oracle.Oracle` adapts
        The network (with its preprocessing, for an Oracle).
    rows : DataFrame
        Raw rows to explain.
    reference : DataFrame
        Raw rows the neighbourhood statistics come from (spreads, ranges, quartiles, category
        frequencies, medians), typically the training table. Both are validated against
        ``Schema.from_frame(reference)``.
    num_samples : int
        Neighbourhood size per row, the row itself included (lime's meaning). ``holdout`` of
        them are kept out of the fit.
    random_state : int, Generator or None
    kernel_width : float, optional
        Width of the exponential kernel; lime's default ``0.75 * sqrt(n_features)``.
    discretize : False or "quartile"
        False: numeric features enter by value (displacement from the row in units of the
        noise, ``scale`` robust spreads).
        "quartile": as lime's default, by an indicator "in the row's quartile bin" (bins of the
        reference), with samples drawn bin first, then a value observed in the bin.
    feature_selection : {"none", "highest_weights", "forward"}
        Which features the local model may use (``num_features`` of them); see
        :data:`FEATURE_SELECTION`.
    num_features : int, optional
        Features kept by ``feature_selection``.
    ridge_alpha : float
        Ridge penalty (lime's ``Ridge(alpha=1)``), as scikit-learn applies it (unscaled sum
        of weighted squared errors, intercept unpenalised).
    target : class label, sequence of labels (one per row), or None
        The class whose probability is explained; by default each row's predicted class.
        Regression models: their output, ``target`` must be None.
    chunk_rows : int, optional
        Rows whose neighbourhoods are handled at once; by default about 500,000 samples per
        chunk (100,000 when rows go through a DataFrame and a preprocess). Results do not
        depend on it.
    holdout : float
        Share of each neighbourhood kept out of the fit for ``local_r2``.
    scale : float
        Standard deviation of the numeric perturbation in robust spreads of the feature (at
        least half a unit for integer features). The default, 0.1, keeps the neighbourhood
        local: on the benchmark MLP (20 features) a linear model explains about 85% of the
        network's variation there (held-out R²) against about 40% at one spread, and the top
        reasons are about as stable across seeds as the sampling allows at 5000 samples. A
        larger scale describes a wider region (closer to lime's, which samples the whole data
        distribution) at the cost of fidelity and stability.
    part : (start, stop), optional
        Explain only the rows at positions ``start:stop`` of ``rows``, as part of the whole
        table: the neighbourhood plan (which features are drawn, missing-value levels) comes
        from all of ``rows`` and each row draws from the streams of its position, so pieces
        explained apart and concatenated equal one call on the whole table (see
        :func:`pellucid.cluster.explain_rows`). ``target`` is given for all of ``rows``.
    output : {"probability", "log_odds"}
        The scale of the class's answer the local model fits: its probability, or its
        log-odds (probabilities kept inside ``[1e-12, 1 - 1e-12]``), on which a confident
        decision's reasons keep their size. Classifiers only.

    Returns
    -------
    LocalExplanations
    """
    oracle = as_oracle(model)
    if output not in ("probability", "log_odds"):
        raise ParameterError(f"output must be 'probability' or 'log_odds'; got {output!r}")
    schema, ref, canon = check_local_rows(rows, reference)
    p = len(schema)
    n_fit, n_hold, discretize = _check_params(num_samples, holdout, kernel_width, ridge_alpha, discretize,
                                              feature_selection, num_features, scale, p)
    width = float(kernel_width) if kernel_width is not None else 0.75 * np.sqrt(p)
    plan = _plan(schema, ref, canon, discretize)
    plan.noise_sd = _noise_sd(plan, np.arange(p), float(scale))
    fast = oracle.preprocess is None and oracle.kind in ("torch", "onnx") and all(f.is_numeric for f in schema)
    dtypes = {str(c): reference[c].dtype for c in reference.columns}
    n_pert = n_fit + n_hold
    s = 1 + n_pert
    if chunk_rows is None:
        chunk_rows = max(1, (_CHUNK_ARRAY if fast else _CHUNK_FRAME) // s)
    elif isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ParameterError(f"chunk_rows must be a positive integer or None; got {chunk_rows!r}")
    streams = _Streams(random_state)
    n = len(canon)
    k_sel = p if num_features is None else min(int(num_features), p)

    target_seq = None
    if isinstance(target, (list, tuple, np.ndarray, pd.Series)):
        target_seq = list(np.asarray(target, dtype=object).ravel())
        if len(target_seq) != n:
            raise ParameterError(f"target has {len(target_seq)} entries for {n} rows; give one per row or a single "
                                 "class")
    first = 0
    if part is not None:
        first, stop = _check_part(part, n)
        canon = canon.iloc[first:stop]
        target_seq = None if target_seq is None else target_seq[first:stop]
        n = stop - first
        # The streams run through the whole table: read past the rows before this part.
        numeric_free = int(np.sum(plan.numeric & ~plan.needs_draw))
        streams.skip(first, numeric_free, int(np.sum(plan.needs_draw)), n_pert)
    parts: dict[str, list] = {key: [] for key in ("beta", "icpt", "r2", "score", "local", "net", "target", "kind")}
    for start in range(0, n, chunk_rows):  # chunks of rows bound the memory; each is one batch
        chunk = canon.iloc[start:start + chunk_rows]
        c = len(chunk)
        hood = _neighbourhoods(plan, chunk, n_pert, streams, float(scale), discretize, fast)
        answer = oracle.query(hood["input"] if fast else _model_input(plan, hood["input"], dtypes))
        if oracle.task == "regression":
            if target is not None or output != "probability":
                raise ParameterError("target and output='log_odds' are for classifiers; this model is a regressor "
                                     "(its output is explained)")
            y_all = answer.reshape(c, s)
            tgt = None
        else:
            answer = answer.reshape(c, s, -1)
            tgt = _resolve_target(target if target_seq is None else target_seq[start:start + c], oracle,
                                  answer[:, 0, :], c)
            y_all = np.take_along_axis(answer, tgt[:, None, None], axis=2)[:, :, 0]
            if output == "log_odds":
                q = np.clip(y_all.astype(np.float64), 1e-12, 1 - 1e-12)
                y_all = np.log(q) - np.log1p(-q)
        interp, kind = hood["interp"], hood["kind"]
        w_all = _kernel(hood["d2"], width)
        X = torch.from_numpy(interp)
        y = torch.from_numpy(np.ascontiguousarray(y_all, dtype=np.float64))
        w = torch.from_numpy(w_all)
        fit = slice(0, 1 + n_fit)
        G, b, yy, xm, ym = _gram(X[:, :, fit], y[:, fit], w[:, fit])
        # Contribution at the row per unit coefficient: distance of a numeric value from the median
        # in spreads; 1 for an indicator.
        unit = torch.from_numpy(_unit_contrib(plan, chunk, kind))
        mask = _select(G, b, yy, float(ridge_alpha), feature_selection, k_sel, unit)
        beta = _solve(G, b, float(ridge_alpha), mask)
        icpt = ym - (xm * beta).sum(1)
        score = 1 - _sse(G, b, yy, beta) / yy
        pred = icpt.unsqueeze(1) + (beta.unsqueeze(1) @ X.double()).squeeze(1)
        if n_hold:
            r2 = _weighted_r2(y[:, 1 + n_fit:], pred[:, 1 + n_fit:], w[:, 1 + n_fit:])
        else:
            r2 = torch.full((c,), float("nan"), dtype=torch.float64)
        parts["beta"].append(beta.numpy())
        parts["icpt"].append(icpt.numpy())
        parts["r2"].append(r2.numpy())
        parts["score"].append(torch.where(yy > 1e-300, score, torch.full_like(score, float("nan"))).numpy())
        parts["local"].append(pred[:, 0].numpy())
        parts["net"].append(y_all[:, 0].astype(np.float64))
        parts["target"].append(tgt if tgt is not None else np.zeros(c, dtype=np.int64))
        parts["kind"].append(kind)
        del X, y, w, interp, hood
    return _assemble(plan, canon, oracle, parts, dict(
        num_samples=int(num_samples), n_fit=int(n_fit), n_holdout=int(n_hold), random_state=_json_seed(random_state),
        kernel_width=width, discretize="quartile" if discretize else False, feature_selection=feature_selection,
        num_features=None if num_features is None else int(num_features), ridge_alpha=float(ridge_alpha),
        scale=float(scale), chunk_rows=int(chunk_rows), fast_path=bool(fast), output=output))


def _check_part(part: Any, n: int) -> tuple[int, int]:
    """``(start, stop)`` of a ``part=`` argument, checked against ``n`` rows."""
    try:
        start, stop = (int(v) for v in part)
    except (TypeError, ValueError):
        raise ParameterError(f"part must be a pair (start, stop) of row positions; got {part!r}") from None
    if not 0 <= start < stop <= n:
        raise ParameterError(f"part {(start, stop)} is not a non-empty range of positions of the {n} rows")
    return start, stop


def default_chunk_rows(model: Any, reference: pd.DataFrame, num_samples: int = 5000) -> int:
    """The ``chunk_rows`` :func:`lime` uses by default for ``model`` and ``reference``: pieces of
    a table cut at multiples of it are sampled, queried and fitted in the very batches one call
    on the whole table uses (so their results are equal bit for bit)."""
    oracle = as_oracle(model)
    schema = Schema.from_frame(reference)
    fast = oracle.preprocess is None and oracle.kind in ("torch", "onnx") and all(f.is_numeric for f in schema)
    return max(1, (_CHUNK_ARRAY if fast else _CHUNK_FRAME) // int(num_samples))


def _json_seed(seed: Any) -> Any:
    return int(seed) if isinstance(seed, (int, np.integer)) else (None if seed is None else repr(seed))


def _unit_contrib(plan: _Plan, rows: pd.DataFrame, kind: np.ndarray) -> np.ndarray:
    out = np.ones(kind.shape)
    for j, name in enumerate(plan.names):
        if plan.numeric[j]:
            x = rows[name].to_numpy(dtype=float)
            d = (x - plan.median[j]) / plan.noise_sd[j]
            out[:, j] = np.where(kind[:, j] == _NUM, np.nan_to_num(d), 1.0)
    return out


_REP = {_NUM: "value", _BIN: "bin"}


def _assemble(plan: _Plan, canon: pd.DataFrame, oracle: Oracle, parts: dict, params: dict) -> LocalExplanations:
    fitted = np.concatenate(parts["beta"])
    kind = np.concatenate(parts["kind"])
    index = canon.index
    names = plan.names
    unit = _unit_contrib(plan, canon, kind)
    contrib = fitted * unit
    # The fit's unit for a numeric value is its noise; report per spread and per raw unit.
    is_value = kind == _NUM
    beta = np.where(is_value, fitted * (plan.spread / plan.noise_sd)[None, :], fitted)
    coef_raw = np.full(beta.shape, np.nan)
    rep = np.empty(beta.shape, dtype=object)
    for j, name in enumerate(names):
        f = plan.schema[name]
        is_num = kind[:, j] == _NUM
        coef_raw[is_num, j] = fitted[is_num, j] / plan.noise_sd[j]
        if f.kind is Kind.BINARY:
            x = canon[name].to_numpy(dtype=float)
            coef_raw[:, j] = np.where(x == 1, beta[:, j], np.where(x == 0, -beta[:, j], np.nan))
        rep[:, j] = np.where(is_num, "value", np.where(kind[:, j] == _BIN, "bin", "category"))
        if plan.numeric[j]:
            rep[kind[:, j] == _IND, j] = "missing"
        elif plan.levels[j] is not None:
            rep[canon[name].isna().to_numpy(), j] = "missing"
    tidx = np.concatenate(parts["target"])
    if oracle.task == "regression":
        target = pd.Series([None] * len(canon), index=index, dtype=object)
        output_name = pd.Series(["the prediction"] * len(canon), index=index, dtype=object)
        tidx_out = None
    else:
        labels = np.asarray(oracle.classes_, dtype=object)
        target = pd.Series(labels[tidx], index=index, dtype=object)
        word = "log-odds of {}" if params.get("output") == "log_odds" else "P({})"
        output_name = pd.Series([word.format(c) for c in labels[tidx]], index=index, dtype=object)
        tidx_out = tidx
    frame = lambda a: pd.DataFrame(a, index=index, columns=names)  # noqa: E731
    series = lambda key: pd.Series(np.concatenate(parts[key]), index=index)  # noqa: E731
    return LocalExplanations(
        rows=canon, coef=frame(beta), coef_raw=frame(coef_raw), contributions=frame(contrib),
        representation=frame(rep), intercept=series("icpt"), local_r2=series("r2"), score=series("score"),
        prediction_local=series("local"), prediction_network=series("net"), target=target, target_index=tidx_out,
        task=oracle.task, output_name=output_name, params=params,
        bins={name: plan.edges[j] for j, name in enumerate(names) if plan.edges[j] is not None})


# ----------------------------------------------------------------------------- stability
@dataclass
class LimeStability:
    """How often LIME gives a row the same top-``k`` features across seeds.

    Attributes
    ----------
    set_identical : float
        Share of rows whose top-``k`` features, as a set, are the same for every seed.
    ordered_identical : float
        Share of rows whose top-``k`` features are the same in the same order for every seed.
    per_row : DataFrame
        Per row: ``set_identical``, ``ordered_identical`` and the top features of each seed.
    k, seeds, by
    """

    set_identical: float
    ordered_identical: float
    per_row: pd.DataFrame
    k: int
    seeds: tuple
    by: str

    def to_dict(self) -> dict[str, Any]:
        return {"set_identical": self.set_identical, "ordered_identical": self.ordered_identical, "k": self.k,
                "seeds": list(self.seeds), "by": self.by, "rows": len(self.per_row)}


def top_k_agreement(tops: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per row, whether every array of top features ``(rows, k)`` holds the same set, and the
    same sequence, as the first."""
    first = tops[0]
    same_set = np.ones(first.shape[0], dtype=bool)
    same_order = np.ones(first.shape[0], dtype=bool)
    key = lambda row: frozenset(x for x in row if x is not None)  # noqa: E731
    sets0 = [key(r) for r in first]
    for t in tops[1:]:
        same_order &= np.all(t == first, axis=1)
        same_set &= np.array([key(r) == s0 for r, s0 in zip(t, sets0)])
    return same_set, same_order


def lime_stability(model: Any, rows: pd.DataFrame, reference: pd.DataFrame, seeds: Sequence[int] = (0, 1, 2, 3, 4),
                   k: int = 3, *, by: str = "positive", **lime_kwargs: Any) -> LimeStability:
    """Run :func:`lime` once per seed and measure how often each row's top-``k`` reasons agree.

    Parameters
    ----------
    model, rows, reference
        As for :func:`lime`.
    seeds : sequence of int
        One LIME run per seed (fresh draws each).
    k : int
        Reasons compared.
    by : {"positive", "abs"}
        Rank the reasons (positive contributions) or the largest |contributions|.
    **lime_kwargs
        Passed to :func:`lime` (``num_samples``, ``discretize``, ...).
    """
    seeds = tuple(seeds)
    if len(seeds) < 2:
        raise ParameterError(f"stability needs at least two seeds; got {list(seeds)}")
    if len(set(seeds)) != len(seeds):
        raise ParameterError(f"seeds must differ (the same seed gives the same draws); got {list(seeds)}")
    if "random_state" in lime_kwargs:
        raise ParameterError("pass the seeds as seeds=, not random_state=")
    oracle = as_oracle(model)
    tops = [lime(oracle, rows, reference, random_state=s, **lime_kwargs).top_features(k, by=by) for s in seeds]
    same_set, same_order = top_k_agreement(tops)
    per_row = pd.DataFrame({"set_identical": same_set, "ordered_identical": same_order}, index=rows.index)
    for s, t in zip(seeds, tops):
        per_row[f"top_seed_{s}"] = [" > ".join(x for x in r if x is not None) for r in t]
    return LimeStability(float(same_set.mean()), float(same_order.mean()), per_row, int(tops[0].shape[1]), seeds, by)
