"""Samplers that make synthetic rows for a distillation set.

Two kinds of sampler exist, each with its registry; :func:`~pellucid.extraction.distill` looks
a strategy's name up in both.

*Passive* samplers (:data:`SAMPLERS`) take the schema, the observed training rows (canonical
form), a row count and a numpy Generator, and return that many rows in the same canonical
form, inside the schema's ranges and categories. They never see the network: ``distill``
queries their rows, together with the observed ones, in one batch.

*Active* samplers (:data:`ACTIVE_SAMPLERS`) choose their rows from the network's answers.
They run after the passive rows are queried and take, besides the passive arguments, the
:class:`~pellucid.oracle.Oracle` and the rows queried so far with their outputs and weights
(never the holdout) as the keyword arguments ``oracle``, ``queried_rows``, ``queried_outputs``
and ``queried_weights``. They query the network themselves, in as many batches as they like,
and return an :class:`ActiveDraw`: exactly ``n`` rows, the network's outputs on them, their
weights, and a record of how they were chosen (kept in ``DistillationSet.params["active"]``).
Every row an active sampler sends to the network must be among the rows it returns, so that
``n_queries`` of a set equals its number of rows.

Every column is drawn at once; nothing loops over rows.

A passive sampler is added by writing a function here (or in a module of its own) and
registering it in :data:`SAMPLERS`; an active one by writing it in a module of its own,
decorating it with :func:`register_active`, and importing that module in
``pellucid/extraction/__init__.py`` (as :mod:`pellucid.extraction.boundary` is).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..schema import Feature, Kind, Schema

Sampler = Callable[..., pd.DataFrame]


def _spread(f: Feature, observed: np.ndarray) -> float:
    """A robust scale for a numeric feature: the smaller of std and IQR/1.349 (so a few
    extreme values do not blow up the noise), falling back to the range."""
    v = observed[~np.isnan(observed)]
    if len(v) < 2:
        return 0.0
    q75, q25 = np.percentile(v, [75, 25])
    iqr = (q75 - q25) / 1.349
    std = float(np.std(v))
    s = min(std, iqr) if iqr > 0 else std
    if s == 0 and f.high is not None and f.low is not None:
        s = (f.high - f.low) / 4
    return float(s)


def _finish_numeric(f: Feature, v: np.ndarray) -> np.ndarray:
    """Keep a synthetic numeric column inside the feature's observed range and kind."""
    v = np.clip(v, f.low, f.high)
    if f.kind in (Kind.INTEGER, Kind.BINARY):
        v = np.round(v)
    return v


def _draw_categories(f: Feature, n: int, rng: np.random.Generator) -> np.ndarray:
    cats = np.asarray(f.categories, dtype=object)
    p = np.asarray(f.frequencies, dtype=float)
    p = p / p.sum() if p.sum() > 0 else np.full(len(cats), 1 / len(cats))
    return cats[rng.choice(len(cats), size=n, p=p)]


def perturb(
    schema: Schema,
    observed: pd.DataFrame,
    n: int,
    rng: np.random.Generator,
    *,
    scale: float = 0.25,
    p_categorical: float = 0.15,
) -> pd.DataFrame:
    """Observed rows with schema-aware noise.

    Numeric features get Gaussian jitter of ``scale`` times their robust spread, clipped to
    the observed range (integers stay integers); binary features flip and categorical ones are
    redrawn from their observed frequencies with probability ``p_categorical``. Missing values
    stay missing.
    """
    base = observed.iloc[rng.integers(len(observed), size=n)].reset_index(drop=True)
    return jitter(schema, base, observed, rng, scale=scale, p_categorical=p_categorical)


def jitter(
    schema: Schema,
    base: pd.DataFrame,
    observed: pd.DataFrame,
    rng: np.random.Generator,
    *,
    scale: float,
    p_categorical: float,
) -> pd.DataFrame:
    """Schema-aware noise around given rows (the work of :func:`perturb`).

    Parameters
    ----------
    schema : Schema
    base : pandas.DataFrame
        Canonical rows to move, one output row per row, index 0..n-1.
    observed : pandas.DataFrame
        Canonical observed rows; each numeric feature's noise is ``scale`` times its robust
        spread here.
    rng : numpy.random.Generator
    scale : float
        Noise of numeric features, in robust spreads.
    p_categorical : float
        Chance that a binary feature flips or a categorical one is redrawn from its observed
        frequencies.

    Returns
    -------
    pandas.DataFrame
        Canonical rows inside the schema's ranges and categories; missing values stay missing.
    """
    n = len(base)
    out = {}
    for f in schema:
        col = base[f.name]
        if f.is_numeric:
            v = col.to_numpy(dtype=float)
            if f.kind is Kind.BINARY:
                flip = rng.random(n) < p_categorical
                v = np.where(flip & ~np.isnan(v), 1.0 - v, v)
            else:
                s = _spread(f, observed[f.name].to_numpy(dtype=float))
                v = _finish_numeric(f, v + rng.normal(0.0, scale * s, size=n))
            out[f.name] = v
        else:
            v = col.to_numpy(dtype=object).copy()
            redraw = (rng.random(n) < p_categorical) & ~pd.isna(v)
            if redraw.any():
                v[redraw] = _draw_categories(f, int(redraw.sum()), rng)
            out[f.name] = v
    return pd.DataFrame(out)


def marginal(schema: Schema, observed: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Each feature drawn independently from its empirical marginal, as TREPAN does.

    Numeric features: a Gaussian kernel density estimate (observed values plus noise of
    Silverman's bandwidth), clipped to the range; integers rounded. Categorical features: by
    observed frequency. Missing values appear at each feature's observed rate.
    """
    out = {}
    for f in schema:
        col = observed[f.name]
        isna = col.isna().to_numpy()
        present = np.flatnonzero(~isna)
        vals = col.to_numpy(dtype=float if f.is_numeric else object)[present]
        if len(vals) == 0:
            # A rare feature whose few values all fell in the holdout: draw from the schema.
            vals = (
                np.linspace(f.low, f.high, 16) if f.is_numeric else np.asarray(f.categories, dtype=object)
            )
            isna = np.zeros(len(col), dtype=bool)
        draw = vals[rng.integers(len(vals), size=n)]
        if f.is_numeric and f.kind is not Kind.BINARY:
            s = _spread(f, vals.astype(float))
            h = 0.9 * s * len(vals) ** (-1 / 5)
            draw = _finish_numeric(f, draw + rng.normal(0.0, h, size=n))
        rate = isna.mean()
        miss = rng.random(n) < rate if rate > 0 else None  # no draw for a feature never missing
        if f.is_numeric:
            draw = draw.astype(float) if miss is None else np.where(miss, np.nan, draw.astype(float))
        elif miss is not None:
            draw = draw.copy()
            draw[miss] = np.nan
        out[f.name] = draw
    return pd.DataFrame(out)


#: Observed rows a ``neighbours`` draw searches at most (a seeded sample of them beyond it), so
#: that its cost stays bounded on large tables.
NEIGHBOUR_POOL = 20_000


def _neighbour_space(schema: Schema, rows: pd.DataFrame) -> np.ndarray:
    """Rows as points for a nearest-neighbour search: a numeric feature in its robust spreads
    (a missing value at the median), a categorical one as indicators scaled so that two
    different values lie one spread apart (SMOTE-NC's distance, with the spread as the unit)."""
    cols = []
    for f in schema:
        col = rows[f.name]
        if f.is_numeric:
            v = col.to_numpy(dtype=float)
            present = v[~np.isnan(v)]
            centre = float(np.median(present)) if len(present) else 0.0
            s = _spread(f, v) or 1.0
            cols.append(((np.where(np.isnan(v), centre, v) - centre) / s)[:, None])
        else:
            codes, _ = pd.factorize(col, use_na_sentinel=True)
            k = int(codes.max()) + 2  # every value and missing
            onehot = np.zeros((len(codes), k))
            onehot[np.arange(len(codes)), codes + 1] = np.sqrt(0.5)
            cols.append(onehot)
    return np.hstack(cols) if cols else np.zeros((len(rows), 0))


def neighbours(
    schema: Schema,
    observed: pd.DataFrame,
    n: int,
    rng: np.random.Generator,
    *,
    k: int = 5,
) -> pd.DataFrame:
    """Rows on the segments between observed rows and their nearest neighbours (SMOTE-NC's
    draw, over all rows rather than one class).

    Each row takes an observed row ``a``, one of its ``k`` nearest observed rows ``b`` (numeric
    features in robust spreads, two categories one spread apart), and a point ``u`` drawn
    uniformly in [0, 1]: every numeric feature is ``a + u (b - a)`` (integers rounded), every
    binary, categorical or missing value is ``a``'s when ``u < 1/2`` and ``b``'s otherwise. The
    rows follow the data where its features move together (correlated measurements, images),
    which independent marginals and per-feature noise do not; each lies between two observed
    rows. Beyond :data:`NEIGHBOUR_POOL` observed rows, neighbours come from a seeded sample of
    that many.
    """
    from sklearn.neighbors import NearestNeighbors

    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParameterError(f"neighbours: k must be a whole number of neighbours, 1 or more, got {k!r}")
    m = len(observed)
    if m < 2:
        return perturb(schema, observed, n, rng)
    pool = np.sort(rng.choice(m, size=NEIGHBOUR_POOL, replace=False)) if m > NEIGHBOUR_POOL else np.arange(m)
    pool_rows = observed.iloc[pool].reset_index(drop=True)
    space = _neighbour_space(schema, pool_rows)
    kk = min(int(k), len(pool) - 1)
    a = rng.integers(len(pool), size=n)
    used, inverse = np.unique(a, return_inverse=True)
    nn = NearestNeighbors(n_neighbors=kk + 1).fit(space)
    _, idx = nn.kneighbors(space[used])
    # A row's own index is among its nearest (duplicates may push it out of first place).
    near = np.array([[j for j in row if j != u][:kk] for row, u in zip(idx, used)])
    b = near[inverse.ravel(), rng.integers(kk, size=n)]
    u = rng.random(n)
    take_b = u >= 0.5
    out = {}
    for f in schema:
        col = pool_rows[f.name]
        if f.is_numeric:
            v = col.to_numpy(dtype=float)
            va, vb = v[a], v[b]
            if f.kind is Kind.BINARY:
                out[f.name] = np.where(take_b, vb, va)
            else:
                mixed = va + u * (vb - va)
                either = np.isnan(va) | np.isnan(vb)
                mixed = np.where(either, np.where(take_b, vb, va), mixed)
                out[f.name] = _finish_numeric(f, mixed)
        else:
            v = col.to_numpy(dtype=object)
            out[f.name] = np.where(take_b, v[b], v[a])
    return pd.DataFrame(out)


#: name -> passive sampler; ``distill(strategy=...)`` looks names up here.
SAMPLERS: dict[str, Sampler] = {
    "perturb": perturb,
    "marginal": marginal,
    "neighbours": neighbours,
}


@dataclass
class ActiveDraw:
    """What an active sampler returns.

    Attributes
    ----------
    rows : pandas.DataFrame
        The rows it drew, canonical, index 0..n-1.
    outputs : numpy.ndarray
        The network's answers on ``rows`` (as :meth:`Oracle.query` gives them).
    weights : numpy.ndarray, optional
        Sample weight of each row (e.g. importance weights of rows drawn away from the data's
        own distribution); ones when not given.
    info : dict
        How the rows were chosen (settings, and one entry per round), JSON-ready; it ends up
        in ``DistillationSet.params["active"][name]``.
    """

    rows: pd.DataFrame
    outputs: np.ndarray
    weights: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)


ActiveSampler = Callable[..., ActiveDraw]

#: name -> active sampler (see the module docstring); filled by :func:`register_active`.
ACTIVE_SAMPLERS: dict[str, ActiveSampler] = {}


def register_active(name: str) -> Callable[[ActiveSampler], ActiveSampler]:
    """Register an active sampler under ``name`` (a decorator).

    Parameters
    ----------
    name : str
        The strategy name ``distill`` will know it by; it must not be taken by a passive
        sampler or by ``"observed"``.
    """
    if name in SAMPLERS or name == "observed":
        raise ParameterError(f"the strategy name {name!r} is taken by a passive strategy")

    def register(sampler: ActiveSampler) -> ActiveSampler:
        ACTIVE_SAMPLERS[name] = sampler
        return sampler

    return register


def draw_active(name: str, count: int, schema: Schema, observed_train: pd.DataFrame, rng: np.random.Generator,
                oracle: Any, train_rows: pd.DataFrame, train_outputs: np.ndarray, train_weights: np.ndarray,
                sampler_params: Mapping[str, Mapping[str, Any]]) -> tuple[Any, pd.DataFrame, np.ndarray]:
    """Run one active sampler on what was queried before it; its draw, rows and weights."""
    draw = ACTIVE_SAMPLERS[name](
        schema, observed_train, count, rng,
        oracle=oracle, queried_rows=train_rows, queried_outputs=train_outputs, queried_weights=train_weights,
        **sampler_params.get(name, {}),
    )
    rows_new = draw.rows[schema.names].reset_index(drop=True)
    weights_new = np.ones(count) if draw.weights is None else np.asarray(draw.weights, dtype=float)
    if not len(rows_new) == len(draw.outputs) == len(weights_new) == count:
        raise RuntimeError(f"the active sampler {name!r} returned {len(rows_new)} rows for {count} asked")
    return draw, rows_new, weights_new
