"""Active sampling near the network's decision boundary, in the manner of TREPAN.

Passive samplers spread their rows by the data's own density, so a tree fitted to them sees
few rows where the network changes its mind, and that is where a small tree's thresholds are
decided. :func:`boundary` spends its row budget in rounds. Each round it

1. fits a small internal tree (scikit-learn's CART, on numeric features as they are and
   categorical ones as category codes, missing values as NaN) to the network's answers on
   every row queried so far, except the holdout;
2. scores those rows: for classification, 1 where that tree's label differs from the
   network's, plus ``1 - margin`` (the gap between the network's two highest class
   probabilities), so rows the tree gets wrong and rows the network is unsure about score
   high; for regression, the tree's absolute error;
3. draws anchors among them, a share ``1 - explore_share`` in proportion to score times
   weight and the rest by weight alone, and moves each anchor a little
   (:func:`~pellucid.extraction.samplers.jitter`, the noise of ``perturb`` at a smaller
   scale: rows stay inside the schema's ranges and categories, integers stay integers,
   missing values stay missing);
4. for a share ``pool_share`` of the round's rows, draws a pool of TREPAN marginal
   candidates and keeps those on which the internal tree is least sure (highest leaf
   impurity);
5. queries the network on the round's rows, in one batch, and adds them to the rows queried
   so far.

Rows drawn this way crowd where the network changes its mind, which is not where the data
lies. With ``weighting="importance"`` (the default) each row carries an importance weight
that gives the boundary rows, as a whole, the distribution of the rows they were drawn from:
an anchor's jittered row weighs (the anchor's share of the weight) / (its chance to be
drawn), at most ``1 / explore_share``, so that a surrogate fitted with the weights sees more
rows near the boundary without giving that region more mass than it has; a pool row stands
for the candidates of its leaf that were not kept. ``weighting="none"`` gives every row the
weight 1, as TREPAN does. On the credit example (``benchmarks/boundary_gain.py``), trees of
4 to 32 leaves fitted with the importance weights agree with the network as often as trees
fitted on passive rows of the same budget; without the weights they agree less often.

When nothing has been queried yet (``strategy="boundary"`` alone), the first round jitters
observed training rows drawn uniformly. The internal tree only chooses rows: its rules are
never shown. The holdout never reaches the sampler, so it cannot steer where rows are drawn.

The sampler is registered under the name ``"boundary"`` in
:data:`~pellucid.extraction.samplers.ACTIVE_SAMPLERS`; options are passed through
``distill(..., sampler_params={"boundary": {...}})``.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from .._validation import Interval, Options, validate_params
from ..schema import Schema
from .encoding import CategoryOrderEncoder
from .samplers import ActiveDraw, jitter, marginal, register_active


@register_active("boundary")
def boundary(
    schema: Schema,
    observed: pd.DataFrame,
    n: int,
    rng: np.random.Generator,
    *,
    oracle: Any,
    queried_rows: pd.DataFrame,
    queried_outputs: np.ndarray,
    queried_weights: np.ndarray | None = None,
    rounds: int = 6,
    scale: float = 0.15,
    p_categorical: float = 0.1,
    explore_share: float = 0.5,
    pool_share: float = 0.25,
    pool_factor: int = 4,
    max_leaf_nodes: int = 32,
    min_samples_leaf: int = 5,
    weighting: str = "importance",
) -> ActiveDraw:
    """Draw ``n`` rows where a small tree of the network's answers is wrong or the network is
    unsure, in rounds (see the module docstring).

    Parameters
    ----------
    schema : Schema
    observed : pandas.DataFrame
        The observed training rows, canonical; they set the scale of the noise, seed the first
        round when nothing has been queried, and feed the marginal candidate pool.
    n : int
        Rows to draw, all of them queried.
    rng : numpy.random.Generator
    oracle : Oracle
        The network; :meth:`query` is called once per round.
    queried_rows : pandas.DataFrame
        Canonical rows the network has answered so far (never holdout rows); may be empty.
    queried_outputs : numpy.ndarray
        The network's answers on ``queried_rows``.
    queried_weights : numpy.ndarray, optional
        Their sample weights (ones when not given).
    rounds : int
        Rounds to spend the budget in (at most ``n``); each round's rows are chosen with a
        tree fitted on everything queried before it.
    scale : float
        Noise around an anchor, in each numeric feature's robust spread (``perturb`` uses
        0.25).
    p_categorical : float
        Chance that a binary feature of an anchor flips or a categorical one is redrawn.
    explore_share : float
        Share of anchors drawn without regard to the score, by weight alone (as ``perturb``
        draws its rows), in (0, 1]. It keeps every queried row's chance above zero and the
        importance weights at most ``1 / explore_share``.
    pool_share : float
        Share of each round's rows taken from a TREPAN marginal candidate pool, filtered by
        the internal tree's leaf impurity; the rest are drawn near anchors.
    pool_factor : int
        Candidates drawn per pool row kept.
    max_leaf_nodes : int
        Size of the internal tree. A small tree leaves errors where the network's function is
        more intricate than a few thresholds, which is where rows are wanted.
    min_samples_leaf : int
        Fewest rows in a leaf of the internal tree.
    weighting : {"importance", "none"}
        Importance weights that keep the data's distribution (see the module docstring), or
        weight 1 for every row.

    Returns
    -------
    ActiveDraw
        ``n`` canonical rows (source ``"boundary"``), the network's outputs on them, their
        weights, and ``info``: the settings and one record per round (``n_rows``,
        ``n_near``, ``n_pool``, ``n_fit`` rows the tree was fitted on, ``max_weight``, and
        for classification ``disagreement``, the weighted share of those rows on which the
        tree and the network disagree, and ``new_disagreement``, the same share on the
        round's new rows; for regression ``mean_abs_error`` and ``new_mean_abs_error``).
        A round fitted on no rows records ``None`` for these.

    Raises
    ------
    ParameterError
        An option outside its range, named with its value.
    """
    validate_params("boundary sampling", dict(
        rounds=rounds, scale=scale, p_categorical=p_categorical, explore_share=explore_share, pool_share=pool_share,
        pool_factor=pool_factor, max_leaf_nodes=max_leaf_nodes, min_samples_leaf=min_samples_leaf, weighting=weighting,
    ), _CONSTRAINTS)
    classification = oracle.task == "classification"
    importance = weighting == "importance"
    sizes = round_sizes(n, rounds)
    tree_seed = int(rng.integers(2**31 - 1))

    rows_so_far = queried_rows[schema.names].reset_index(drop=True)
    X_so_far = _encode(schema, rows_so_far)
    y_so_far = np.asarray(queried_outputs, dtype=float)
    w_so_far = np.ones(len(rows_so_far)) if queried_weights is None else np.asarray(queried_weights, dtype=float)
    new_parts: list[pd.DataFrame] = []
    new_outputs: list[np.ndarray] = []
    new_weights: list[np.ndarray] = []
    records: list[dict[str, Any]] = []

    for r, m in enumerate(sizes):
        record: dict[str, Any] = {"round": r, "n_rows": m, "n_fit": len(rows_so_far)}
        if len(rows_so_far) == 0:
            base = observed.iloc[rng.integers(len(observed), size=m)].reset_index(drop=True)
            batch = jitter(schema, base, observed, rng, scale=scale, p_categorical=p_categorical)
            weights = np.ones(m)
            record.update(n_near=m, n_pool=0)
            tree, fit_error = None, None
        else:
            tree = _fit_tree(X_so_far, y_so_far, w_so_far, classification, max_leaf_nodes, min_samples_leaf, tree_seed)
            score, fit_error = _score(tree, X_so_far, y_so_far, w_so_far, classification)
            n_pool = int(round(pool_share * m))
            n_near = m - n_pool
            # Anchors by score, with a share by weight alone so that no row's chance is nil
            # and importance weights stay below 1 / explore_share.
            q = w_so_far / w_so_far.sum()
            ws = w_so_far * score
            p = (1 - explore_share) * ws / ws.sum() + explore_share * q if ws.sum() > 0 else q
            pick = rng.choice(len(rows_so_far), size=n_near, p=p)
            anchors = rows_so_far.iloc[pick].reset_index(drop=True)
            parts = [jitter(schema, anchors, observed, rng, scale=scale, p_categorical=p_categorical)]
            weights_parts = [q[pick] / p[pick]]
            if n_pool:
                candidates = marginal(schema, observed, pool_factor * n_pool, rng)
                leaf = tree.apply(_encode(schema, candidates))
                keep = np.sort(np.argsort(-tree.tree_.impurity[leaf], kind="stable")[:n_pool])
                parts.append(candidates.iloc[keep])
                # Each kept candidate stands for the candidates of its leaf that were not kept.
                ids, per_leaf = np.unique(leaf, return_inverse=True)
                n_leaf = np.bincount(per_leaf, minlength=len(ids))
                k_leaf = np.bincount(per_leaf[keep], minlength=len(ids))
                weights_parts.append(n_leaf[per_leaf[keep]] / k_leaf[per_leaf[keep]] / pool_factor)
            batch = pd.concat(parts, ignore_index=True)
            weights = np.concatenate(weights_parts) if importance else np.ones(m)
            record.update(n_near=n_near, n_pool=n_pool)
        answers = np.asarray(oracle.query(batch), dtype=float)  # one query per round
        X_batch = _encode(schema, batch)
        key = "disagreement" if classification else "mean_abs_error"
        record[key] = fit_error
        record[f"new_{key}"] = None if tree is None else _error(tree, X_batch, answers, weights, classification)
        record["max_weight"] = float(weights.max())
        records.append(record)

        new_parts.append(batch)
        new_outputs.append(answers)
        new_weights.append(weights)
        rows_so_far = pd.concat([rows_so_far, batch], ignore_index=True)
        X_so_far = np.vstack([X_so_far, X_batch])
        y_so_far = np.concatenate([y_so_far, answers])
        w_so_far = np.concatenate([w_so_far, weights])

    if new_parts:
        rows = pd.concat(new_parts, ignore_index=True)
        outputs = np.concatenate(new_outputs)
        weights = np.concatenate(new_weights)
    else:
        rows = observed.iloc[:0].reset_index(drop=True)
        outputs = np.asarray(queried_outputs, dtype=float)[:0]
        weights = np.ones(0)
    info = {
        "rounds": records,
        "settings": {
            "rounds": int(rounds),
            "scale": float(scale),
            "p_categorical": float(p_categorical),
            "explore_share": float(explore_share),
            "pool_share": float(pool_share),
            "pool_factor": int(pool_factor),
            "max_leaf_nodes": int(max_leaf_nodes),
            "min_samples_leaf": int(min_samples_leaf),
            "weighting": weighting,
        },
    }
    return ActiveDraw(rows=rows, outputs=outputs, weights=weights, info=info)


#: What each of the boundary sampler's options must be (checked by ``validate_params``).
_CONSTRAINTS = {
    "rounds": [Interval(Integral, 1, None)],
    "pool_factor": [Interval(Integral, 1, None)],
    "max_leaf_nodes": [Interval(Integral, 2, None)],
    "min_samples_leaf": [Interval(Integral, 1, None)],
    "scale": [Interval(Real, 0, None, closed="neither")],
    "p_categorical": [Interval(Real, 0, 1)],
    "pool_share": [Interval(Real, 0, 1)],
    "explore_share": [Interval(Real, 0, 1, closed="right")],
    "weighting": [Options(("importance", "none"))],
}


def round_sizes(n: int, rounds: int) -> list[int]:
    """``n`` rows spread over ``rounds`` rounds (at most ``n`` of them), the first ones one row
    larger where ``n`` does not divide."""
    k = min(int(rounds), n)
    return [n // k + (1 if r < n % k else 0) for r in range(k)] if k else []


def _encode(schema: Schema, rows: pd.DataFrame) -> np.ndarray:
    """Canonical rows as the float matrix the internal tree splits on: numeric kinds as they
    are (missing as NaN, which scikit-learn's trees route), categorical kinds as the position
    of the category in the schema (missing as NaN)."""
    return CategoryOrderEncoder().fit(rows.iloc[:0], schema).transform(rows)


def _fit_tree(
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    classification: bool,
    max_leaf_nodes: int,
    min_samples_leaf: int,
    seed: int,
) -> DecisionTreeClassifier | DecisionTreeRegressor:
    kw = dict(max_leaf_nodes=max_leaf_nodes, min_samples_leaf=min_samples_leaf, random_state=seed)
    if classification:
        return DecisionTreeClassifier(**kw).fit(X, y.argmax(axis=1), sample_weight=w)
    return DecisionTreeRegressor(**kw).fit(X, y, sample_weight=w)


def _error(tree: Any, X: np.ndarray, y: np.ndarray, w: np.ndarray, classification: bool) -> float:
    """Weighted disagreement share (classification) or mean absolute error (regression) of
    the tree."""
    if classification:
        return float(np.average(tree.predict(X) != y.argmax(axis=1), weights=w))
    return float(np.average(np.abs(tree.predict(X) - y), weights=w))


def _score(tree: Any, X: np.ndarray, y: np.ndarray, w: np.ndarray, classification: bool) -> tuple[np.ndarray, float]:
    """Each queried row's claim to be an anchor, and the tree's weighted error on those rows."""
    if classification:
        wrong = tree.predict(X) != y.argmax(axis=1)
        if y.shape[1] >= 2:
            top2 = -np.partition(-y, 1, axis=1)[:, :2]
            margin = top2[:, 0] - top2[:, 1]
        else:
            margin = np.ones(len(y))
        return wrong + (1.0 - margin), float(np.average(wrong, weights=w))
    err = np.abs(tree.predict(X) - y)
    return err, float(np.average(err, weights=w))
