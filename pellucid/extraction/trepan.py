"""Rows drawn inside the regions a tree is unsure of, from the data's own local distribution.

TREPAN (Craven and Shavlik, 1996) grows its tree node by node and, where a node holds too few
rows to choose its split reliably, asks the network about new rows drawn *inside that node*.
Its draws came from each feature's marginal distribution, which breaks the features'
correlations and asks the network about rows unlike any it meets. :func:`trepan` keeps the idea
and draws from the data instead. In rounds, it

1. fits a tree (scikit-learn's CART, ``max_leaf_nodes`` leaves; numeric features as they are,
   categorical ones as codes, missing values as NaN) to the network's scores on every row
   queried so far (the observed training rows first of all; never the holdout): by squared
   error on its log-odds (centred log-probabilities for several classes, as
   :class:`~pellucid.surrogates.FaithfulTree` grows), so that leaves close in where the scores
   change, which a tree of labels does not do once its leaves are pure;
2. gives each leaf a share of the round's rows in proportion to the observed rows it holds
   (the data's mass there) times how unsure the answers are there plus a floor (``floor``):
   for a classifier the Gini impurity of the network's labels in the leaf plus the mean of
   one minus its margin (the gap between its two likeliest classes), for a regression the
   leaf's variance of the outputs over their whole variance. Rows go where the data are and
   the network's answers are mixed or close, and a sure leaf still gets a few;
3. draws each leaf's rows from a kernel density estimate of the *observed rows in that leaf*:
   an observed row of the leaf, chosen at random, moved by Gaussian noise whose width is
   ``bandwidth`` times Silverman's rule on the leaf's own rows (the spread of the feature among
   them), then clipped to the leaf's box (the thresholds on the path to it) and to the schema's
   range, integers rounded; a categorical (or binary) feature keeps the row's value, or with
   chance ``p_categorical`` takes the value of another observed row of the same leaf, so it
   stays inside the node's category sets; a missing value stays missing;
4. queries the network on the round's rows in one batch.

Each row carries an importance weight, (its leaf's share of the observed rows) / (its leaf's
share of the round's rows), so that the rows as a whole keep the data's distribution: a
surrogate fitted with the weights sees more rows where its splits are hard to choose without
giving those regions more mass than they have. ``weighting="none"`` gives each row weight 1.

The report's extrapolation check (:func:`pellucid.fidelity.extrapolation`) measures, as for
every strategy, the share of these rows that lie farther from every observed row than observed
rows lie from each other; drawn from the data's local density, they stay near it.

Registered as the active strategy ``"trepan"``; options through
``distill(..., sampler_params={"trepan": {...}})``.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.tree import DecisionTreeRegressor

from .._validation import Interval, Options, validate_params
from ..schema import Kind, Schema
from .boundary import _encode, round_sizes
from .dataset import network_scores
from .samplers import ActiveDraw, _finish_numeric, _spread, register_active

_CONSTRAINTS = {
    "rounds": [Interval(Integral, 1, None)],
    "max_leaf_nodes": [Interval(Integral, 2, None)],
    "min_samples_leaf": [Interval(Integral, 1, None)],
    "bandwidth": [Interval(Real, 0, None, closed="neither")],
    "p_categorical": [Interval(Real, 0, 1)],
    "floor": [Interval(Real, 0, 1, closed="right")],
    "weighting": [Options(("importance", "none"))],
}


@register_active("trepan")
def trepan(
    schema: Schema,
    observed: pd.DataFrame,
    n: int,
    rng: np.random.Generator,
    *,
    oracle: Any,
    queried_rows: pd.DataFrame,
    queried_outputs: np.ndarray,
    queried_weights: np.ndarray | None = None,
    rounds: int = 4,
    max_leaf_nodes: int = 64,
    min_samples_leaf: int = 5,
    bandwidth: float = 1.0,
    p_categorical: float = 0.1,
    floor: float = 0.05,
    weighting: str = "importance",
) -> ActiveDraw:
    """Draw ``n`` rows inside the leaves of a tree of the network's answers, from the observed
    rows' local density, most where the data are and the answers are mixed (see the module's
    description).

    Parameters
    ----------
    schema : Schema
    observed : pandas.DataFrame
        The observed training rows, canonical: the density rows are drawn from.
    n : int
        Rows to draw, all of them queried.
    rng : numpy.random.Generator
    oracle : Oracle
        The network; :meth:`query` is called once per round.
    queried_rows, queried_outputs, queried_weights
        What the network has answered so far (never holdout rows), which the tree is fitted
        on; with nothing queried yet, the observed rows are queried first.
    rounds : int
        Rounds to spend the budget in; each round's tree sees the rows of the rounds before.
    max_leaf_nodes, min_samples_leaf : int
        Size of the tree whose leaves are sampled.
    bandwidth : float
        Width of the noise, as a multiple of Silverman's rule on the leaf's observed rows.
    p_categorical : float
        Chance that a categorical or binary feature takes another observed row's value (from
        the same leaf).
    floor : float
        Added to every leaf's impurity when sharing out rows, so that no leaf with data is
        left without rows.
    weighting : {"importance", "none"}
        Importance weights that keep the data's distribution, or weight 1 for every row.

    Returns
    -------
    ActiveDraw
        ``n`` canonical rows (source ``"trepan"``), the network's outputs on them, their
        weights, and ``info``: the settings and per round ``n_rows``, ``n_fit`` (rows the
        tree was fitted on), ``leaves`` (leaves that received rows) and ``max_weight``.
    """
    validate_params("trepan sampling", dict(
        rounds=rounds, max_leaf_nodes=max_leaf_nodes, min_samples_leaf=min_samples_leaf, bandwidth=bandwidth,
        p_categorical=p_categorical, floor=floor, weighting=weighting,
    ), _CONSTRAINTS)
    classification = oracle.task == "classification"
    observed = observed[schema.names].reset_index(drop=True)
    X_obs = _encode(schema, observed)
    rows_so_far = queried_rows[schema.names].reset_index(drop=True)
    y_so_far = np.asarray(queried_outputs, dtype=float)
    if len(rows_so_far) == 0:  # nothing queried yet: the observed rows are what the tree needs
        rows_so_far = observed
        y_so_far = np.asarray(oracle.query(observed), dtype=float)
    X_so_far = _encode(schema, rows_so_far)
    w_so_far = (np.ones(len(rows_so_far)) if queried_weights is None or len(queried_weights) != len(rows_so_far)
                else np.asarray(queried_weights, dtype=float))
    sizes = round_sizes(n, rounds)
    tree_seed = int(rng.integers(2**31 - 1))
    spreads = {f.name: _spread(f, observed[f.name].to_numpy(dtype=float)) for f in schema if f.is_numeric}
    parts, outs, wts, records = [], [], [], []
    for r, m in enumerate(sizes):
        tree = DecisionTreeRegressor(max_leaf_nodes=max_leaf_nodes, min_samples_leaf=min_samples_leaf,
                                     random_state=tree_seed).fit(X_so_far, network_scores(y_so_far, oracle.task),
                                                                 sample_weight=w_so_far)
        leaf_obs = tree.apply(X_obs)
        leaves, obs_leaf = np.unique(leaf_obs, return_inverse=True)
        mass = np.bincount(obs_leaf, minlength=len(leaves)) / len(X_obs)
        impurity = _impurity(tree, leaves, X_so_far, y_so_far, w_so_far, classification)
        need = mass * (impurity + floor)
        alloc = _shares(need / need.sum(), m, rng)
        boxes = _boxes(tree)
        batch_parts, weight_parts = [], []
        for i in np.flatnonzero(alloc):
            members = np.flatnonzero(obs_leaf == i)
            batch_parts.append(_draw_in_leaf(schema, observed.iloc[members].reset_index(drop=True), int(alloc[i]),
                                             boxes[int(leaves[i])], spreads, bandwidth, p_categorical, rng))
            weight_parts.append(np.full(int(alloc[i]), mass[i] / (alloc[i] / m)))
        batch = pd.concat(batch_parts, ignore_index=True)
        weights = np.concatenate(weight_parts) if weighting == "importance" else np.ones(m)
        answers = np.asarray(oracle.query(batch), dtype=float)  # one query per round
        records.append({"round": r, "n_rows": m, "n_fit": len(rows_so_far), "leaves": int((alloc > 0).sum()),
                        "max_weight": float(weights.max())})
        parts.append(batch)
        outs.append(answers)
        wts.append(weights)
        rows_so_far = pd.concat([rows_so_far, batch], ignore_index=True)
        X_so_far = np.vstack([X_so_far, _encode(schema, batch)])
        y_so_far = np.concatenate([y_so_far, answers])
        w_so_far = np.concatenate([w_so_far, weights])
    if parts:
        rows, outputs, weights = pd.concat(parts, ignore_index=True), np.concatenate(outs), np.concatenate(wts)
    else:
        rows, outputs, weights = observed.iloc[:0], np.asarray(queried_outputs, dtype=float)[:0], np.ones(0)
    info = {"rounds": records, "settings": {
        "rounds": int(rounds), "max_leaf_nodes": int(max_leaf_nodes), "min_samples_leaf": int(min_samples_leaf),
        "bandwidth": float(bandwidth), "p_categorical": float(p_categorical), "floor": float(floor),
        "weighting": weighting}}
    return ActiveDraw(rows=rows, outputs=outputs, weights=weights, info=info)


def _impurity(tree: Any, leaves: np.ndarray, X: np.ndarray, y: np.ndarray, w: np.ndarray,
              classification: bool) -> np.ndarray:
    """Per leaf, on every row queried so far: the Gini impurity of the network's labels plus
    the mean of one minus its margin (classification), or the variance of its outputs over
    their overall variance (regression)."""
    leaf = tree.apply(X)
    # Position of each row's leaf among ``leaves`` (sorted); leaves no observed row reaches drop out.
    idx = np.minimum(np.searchsorted(leaves, leaf), len(leaves) - 1)
    keep = leaves[idx] == leaf
    idx, w = idx[keep], w[keep]
    if classification:
        k = y.shape[1]
        lab = y[keep].argmax(axis=1)
        counts = np.bincount(idx * k + lab, weights=w, minlength=len(leaves) * k).reshape(len(leaves), k)
        tot = counts.sum(axis=1, keepdims=True)
        p = counts / np.where(tot > 0, tot, 1.0)
        top2 = -np.partition(-y[keep], 1, axis=1)[:, :2] if k >= 2 else np.c_[y[keep][:, 0], 0 * y[keep][:, 0]]
        close = np.bincount(idx, weights=w * (1.0 - (top2[:, 0] - top2[:, 1])), minlength=len(leaves))
        close = close / np.where(tot[:, 0] > 0, tot[:, 0], 1.0)
        return np.where(tot[:, 0] > 0, 1.0 - (p**2).sum(axis=1) + close, 2.0)
    v = y[keep].astype(float)
    sw = np.bincount(idx, weights=w, minlength=len(leaves))
    m1 = np.bincount(idx, weights=w * v, minlength=len(leaves)) / np.where(sw > 0, sw, 1.0)
    m2 = np.bincount(idx, weights=w * v * v, minlength=len(leaves)) / np.where(sw > 0, sw, 1.0)
    total = float(np.var(v)) or 1.0
    return np.where(sw > 0, np.clip(m2 - m1**2, 0, None) / total, 1.0)


def _shares(p: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """``m`` rows shared out in proportion to ``p``: the whole parts, and the remainder drawn."""
    base = np.floor(p * m).astype(int)
    rest = m - int(base.sum())
    if rest:
        frac = p * m - base
        extra = rng.choice(len(p), size=rest, replace=False, p=frac / frac.sum()) if frac.sum() > 0 else \
            rng.choice(len(p), size=rest)
        np.add.at(base, extra, 1)
    return base


def _boxes(tree: Any) -> dict[int, dict[int, tuple[float, float]]]:
    """Per leaf, per feature split on the way to it: ``(low, high)`` with ``low < x <= high``
    (in the encoded units the tree splits on)."""
    t = tree.tree_
    out: dict[int, dict[int, tuple[float, float]]] = {}
    stack: list[tuple[int, dict[int, tuple[float, float]]]] = [(0, {})]
    while stack:
        node, box = stack.pop()
        if t.children_left[node] == -1:
            out[node] = box
            continue
        f, thr = int(t.feature[node]), float(t.threshold[node])
        lo, hi = box.get(f, (-np.inf, np.inf))
        stack.append((int(t.children_left[node]), {**box, f: (lo, min(hi, thr))}))
        stack.append((int(t.children_right[node]), {**box, f: (max(lo, thr), hi)}))
    return out


def _draw_in_leaf(schema: Schema, members: pd.DataFrame, m: int, box: dict[int, tuple[float, float]],
                  spreads: dict[str, float], bandwidth: float, p_categorical: float,
                  rng: np.random.Generator) -> pd.DataFrame:
    """``m`` rows from a kernel density estimate of a leaf's observed rows, inside its box."""
    k = len(members)
    pick = rng.integers(k, size=m)
    other = rng.integers(k, size=m)
    out = {}
    for j, f in enumerate(schema):
        col = members[f.name]
        if f.is_numeric and f.kind is not Kind.BINARY:
            vals = col.to_numpy(dtype=float)
            v = vals[pick]
            present = vals[~np.isnan(vals)]
            s = _spread(f, present) if present.size >= 2 and np.ptp(present) > 0 else 0.0
            if s <= 0:  # one row, or one value: a quarter of the feature's spread in the data
                s = 0.25 * spreads.get(f.name, 0.0)
            h = bandwidth * 0.9 * s * max(present.size, 1) ** (-1 / 5)
            v = v + rng.normal(0.0, h, size=m) if h > 0 else v.copy()
            lo, hi = box.get(j, (-np.inf, np.inf))
            # Strictly inside the leaf's box: low < x <= high, as the tree's splits read.
            v = np.where(np.isnan(v), v, np.clip(v, np.nextafter(lo, np.inf), hi))
            out[f.name] = _finish_numeric(f, v)
        else:
            vals = col.to_numpy(dtype=object if not f.is_numeric else float)
            v = vals[pick].copy()
            swap = (rng.random(m) < p_categorical) & ~pd.isna(v) & ~pd.isna(vals[other])
            v[swap] = vals[other][swap]
            out[f.name] = v
    return pd.DataFrame(out)
