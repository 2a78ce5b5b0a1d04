"""How far the synthetic distillation rows lie from the observed data.

Synthetic rows label regions the observed rows leave empty; that is why they help a surrogate
(and why TREPAN draws them). The price is that the network is asked about rows it may never have
seen anything like: marginal samples break the features' correlations, and the network's answer
there is an extrapolation. A surrogate that learns a rule from such rows documents the
extrapolation, not the model's behaviour on real cases. :func:`extrapolation` measures, per
strategy, the share of synthetic rows that lie farther from every observed row than observed rows
lie from one another, so the report can say how much of the distillation set is out of the data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from ..errors import ParameterError
from ..extraction.dataset import OBSERVED, DistillationSet
from ..extraction.samplers import _spread
from ..schema import Schema


def extrapolation(
    dset: DistillationSet,
    *,
    quantile: float = 0.99,
    max_rows: int = 2000,
    random_state: int | None = 0,
) -> dict[str, Any]:
    """Share of each strategy's synthetic rows that lie outside the observed data.

    Distances are Euclidean on the raw features: numbers divided by their robust spread (the
    smaller of the standard deviation and IQR/1.349 of the observed rows), a missing number one
    unit from any present one, and a different category one unit away. A row is *outside* when
    its distance to the nearest observed training row exceeds the ``quantile`` of the observed
    training rows' distances to their own nearest other observed row.

    Parameters
    ----------
    dset : DistillationSet
    quantile : float
        In (0, 1): how far out an observed row may lie and still count as inside.
    max_rows : int
        Rows drawn per strategy (and observed rows used as the reference, four times this); the
        shares are estimates from that sample.
    random_state : int, optional

    Returns
    -------
    dict
        ``quantile``, ``threshold`` (the distance), ``n_reference`` and ``strategies``: per
        synthetic strategy ``n`` (rows measured), ``outside`` (share beyond the threshold) and
        ``median_ratio`` (median distance / the observed rows' median nearest-neighbour
        distance). Empty ``strategies`` when the set has no synthetic rows.
    """
    if not 0 < quantile < 1:
        raise ParameterError(f"quantile must be in (0, 1), got {quantile!r}")
    if isinstance(max_rows, bool) or not isinstance(max_rows, (int, np.integer)) or max_rows < 10:
        raise ParameterError(f"max_rows must be an integer of at least 10, got {max_rows!r}")
    rng = np.random.default_rng(random_state)
    train = ~np.asarray(dset.is_holdout)
    source = np.asarray(dset.source).astype(str)
    obs = np.flatnonzero(train & (source == OBSERVED))
    out: dict[str, Any] = {"quantile": float(quantile), "threshold": None, "n_reference": 0, "strategies": {}}
    synth = [s for s in pd.unique(source[train]) if s != OBSERVED]
    if len(obs) < 3 or not synth:
        return out
    ref = rng.choice(obs, size=min(len(obs), 4 * max_rows), replace=False)
    enc = _Encoder(dset.schema, dset.rows.iloc[obs])
    R = enc(dset.rows.iloc[ref])
    nn = NearestNeighbors(n_neighbors=2).fit(R)
    # Observed rows against the others: the second neighbour, since the first is the row itself.
    own = nn.kneighbors(R, return_distance=True)[0][:, 1]
    threshold = float(np.quantile(own, quantile))
    typical = float(np.median(own)) or 1.0
    out.update(threshold=threshold, n_reference=int(len(ref)), typical=typical)
    for s in synth:
        idx = np.flatnonzero(train & (source == s))
        idx = rng.choice(idx, size=min(len(idx), max_rows), replace=False)
        d = nn.kneighbors(enc(dset.rows.iloc[idx]), n_neighbors=1, return_distance=True)[0][:, 0]
        out["strategies"][str(s)] = {
            "n": int(len(idx)),
            "outside": float(np.mean(d > threshold)),
            "median_ratio": float(np.median(d) / typical),
        }
    return out


class _Encoder:
    """Raw rows as the scaled matrix the distances are measured in."""

    def __init__(self, schema: Schema, observed: pd.DataFrame) -> None:
        self.schema = schema
        self.scale = {}
        for f in schema.features:
            if f.is_numeric:
                s = _spread(f, observed[f.name].to_numpy(dtype=float))
                self.scale[f.name] = s if s > 0 else 1.0

    def __call__(self, rows: pd.DataFrame) -> np.ndarray:
        cols = []
        for f in self.schema.features:
            v = rows[f.name]
            if f.is_numeric:
                x = v.to_numpy(dtype=float) / self.scale[f.name]
                miss = np.isnan(x)
                # A missing value sits one unit from every present one (the indicator), not at 0.
                cols += [np.where(miss, 0.0, x), miss.astype(float)]
            else:
                cats = list(f.categories or [])
                codes = pd.Categorical(v, categories=cats).codes
                onehot = np.zeros((len(v), len(cats) + 1))
                onehot[np.arange(len(v)), np.where(codes < 0, len(cats), codes)] = 1.0
                cols.append(onehot / np.sqrt(2.0))  # two categories differ by distance 1
        return np.column_stack(cols) if cols else np.zeros((len(rows), 1))
