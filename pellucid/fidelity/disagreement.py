"""Where a surrogate disagrees with the network, in words a reader can check.

Fidelity says how often a surrogate gives the network's answer; :func:`disagreement` says
where it does not. On the held-out observed rows of a distillation set (outputs already
known, so no query) it counts the disagreements, tabulates them (a confusion table of the
network's labels against the surrogate's for classification, the largest errors for
regression), measures them per rule of the surrogate, finds the regions where they
concentrate and lists example rows in raw units.

The regions are read from a small regression tree fitted to the disagreement indicator (the
absolute error for regression) on the rows encoded by
:class:`~pellucid.extraction.encoding.RawEncoder`; each leaf is read back as raw conditions
with :meth:`RawEncoder.condition` and :func:`~pellucid.extraction.rules.merge_conditions`, so a
region's text accepts exactly the rows it is said to hold (a feature never missing on those
rows gets no "or missing" clause). Every number is measured again on those rows through the
region's own conditions.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.tree import DecisionTreeRegressor

from .._validation import plain as _plain
from ..errors import ParameterError
from ..extraction.dataset import DistillationSet
from ..extraction.encoding import RawEncoder
from ..extraction.rules import Condition, ConditionFitter, Rule, merge_conditions
from .metrics import check_same_set

#: Depth of the tree that finds regions: a region is a rule of at most this many tests
#: (before tests on one feature are merged).
REGION_MAX_DEPTH = 3
#: Fewest rows a region may hold, and as a share of the rows compared.
REGION_MIN_ROWS = 5
REGION_MIN_SHARE = 0.02
#: Regression: a row disagrees when the surrogate is further than this share of the
#: standard deviation of the network's outputs from the network (unless ``tolerance`` is given).
DEFAULT_TOLERANCE_SD = 0.1


def disagreement(
    surrogate: Any,
    dset: DistillationSet,
    max_examples: int = 10,
    max_regions: int = 4,
    random_state: int | None = 0,
    *,
    tolerance: float | None = None,
) -> dict[str, Any]:
    """Where a fitted surrogate disagrees with the network, on held-out rows.

    Parameters
    ----------
    surrogate : Surrogate
        A fitted pellucid surrogate.
    dset : DistillationSet
        The set it was fitted on; its held-out observed rows are compared (all its rows when
        it holds none out, as :func:`pellucid.fidelity.evaluate` does).
    max_examples : int
        Most example rows listed.
    max_regions : int
        Most regions reported (0 for none).
    random_state : int, optional
        Seed of the tree that finds the regions (it breaks ties between equal splits).
    tolerance : float, optional
        Regression only: a row disagrees when ``|surrogate - network| > tolerance``. By
        default a tenth of the standard deviation of the network's outputs on the rows
        compared.

    Returns
    -------
    dict
        Plain JSON values:

        - ``surrogate`` (its name), ``task``, ``rows`` (``"holdout"`` or ``"all"``), ``n``,
          ``n_disagree``, ``share`` (``n_disagree / n``), ``tolerance`` and
          ``tolerance_from`` (``"argument"`` or ``"output_sd"``; both None for
          classification);
        - ``confusion`` (classification): ``classes`` and ``matrix`` (counts, one row per
          network label, one column per surrogate label, in ``classes`` order) and ``pairs``
          (the off-diagonal cells with a count, largest first: ``network``, ``surrogate``,
          ``n``, ``share`` of all rows); None for regression;
        - ``errors`` (regression): ``mae``, ``rmse``, ``median`` and ``max`` absolute error;
          None for classification;
        - ``rules``: per rule of the surrogate, ``index``, ``text``, ``n_covered``,
          ``n_disagree`` and ``share`` (among the rows it covers), and for rule lists and
          sets ``n_decided``, ``n_disagree_decided``, ``share_decided`` (among the rows it
          decides; None for an additive model, where no rule decides alone); regression
          adds ``mae`` on the covered rows;
        - ``default``: the same for the rows no rule covers (``index`` is the number of rules);
        - ``regions``: at most ``max_regions``, each ``conditions`` (condition dicts),
          ``text``, ``n_rows``, ``coverage``, ``n_disagree``, ``share``,
          ``share_of_disagreements``, ``lift`` (``share`` over the overall share) and, for
          regression, ``mae``. Only regions whose disagreement share (regression: mean
          absolute error) is above the overall one, highest first;
        - ``region_search``: how the regions were found (``target``, ``max_depth``,
          ``max_leaf_nodes``, ``min_samples_leaf``, ``random_state``);
        - ``features``: the raw feature names, in the schema's order;
        - ``examples``: at most ``max_examples`` rows, each ``row`` (the row's label in the
          user's data as text, None for a synthetic row),
          ``source`` (the strategy that made the row), ``values``
          (feature → raw value, None where missing), ``network`` (label or output),
          ``network_proba`` (the network's probability of its label), ``surrogate`` (label or
          output), ``surrogate_proba``, ``error`` (regression) and ``rule`` (index of the rule
          that decides the row, None when none does or in an additive model). For
          classification the disagreeing rows on which the network is most sure come first;
          for regression the largest absolute errors.

    Raises
    ------
    ParameterError
        When ``dset`` is not a DistillationSet, the surrogate was fitted on another schema or
        task, or a count or the tolerance is out of range.
    NotFittedError
        When the surrogate is not fitted.
    """
    if not isinstance(dset, DistillationSet):
        raise ParameterError(f"disagreement expects a DistillationSet from pellucid.distill, got {type(dset).__name__}")
    for name, value in (("max_examples", max_examples), ("max_regions", max_regions)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ParameterError(f"{name} must be a whole number >= 0, got {value!r}")
    if tolerance is not None and (
        isinstance(tolerance, bool) or not isinstance(tolerance, Real) or not math.isfinite(tolerance) or tolerance < 0
    ):
        raise ParameterError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    surrogate._check_fitted()
    check_same_set(surrogate, dset)
    part, which = (dset.holdout, "holdout") if dset.is_holdout.any() else (dset, "all")
    X = part.rows
    n = len(X)
    if n == 0:
        raise ParameterError("disagreement: the distillation set has no rows to compare on")
    rules = surrogate.rules_
    additive = bool(getattr(rules, "additive", False))
    classification = dset.task == "classification"

    out: dict[str, Any] = {"surrogate": surrogate.name, "task": dset.task, "rows": which, "n": n}
    if classification:
        classes = np.asarray(dset.classes, dtype=object)
        net_idx = part.outputs.argmax(axis=1)
        net_p = part.outputs[np.arange(n), net_idx]
        # As fidelity.evaluate reads the surrogate: the class of highest probability.
        sur_proba = rules.predict_proba(X)
        sur_idx = sur_proba.argmax(axis=1)
        sur_p = sur_proba[np.arange(n), sur_idx]
        wrong = sur_idx != net_idx
        target = wrong.astype(float)
        matrix = np.zeros((len(classes), len(classes)), dtype=int)
        np.add.at(matrix, (net_idx, sur_idx), 1)
        pairs = [
            {"network": classes[a], "surrogate": classes[b], "n": int(matrix[a, b]), "share": matrix[a, b] / n}
            for a in range(len(classes))
            for b in range(len(classes))
            if a != b and matrix[a, b] > 0
        ]
        pairs.sort(key=lambda d: -d["n"])  # stable: ties keep the table's order
        out.update(
            n_disagree=int(wrong.sum()),
            share=float(wrong.mean()),
            tolerance=None,
            tolerance_from=None,
            confusion={"classes": list(classes), "matrix": matrix, "pairs": pairs},
            errors=None,
        )
    else:
        net = np.asarray(part.outputs, dtype=float)
        sur = np.asarray(rules.predict(X), dtype=float)
        err = sur - net
        abs_err = np.abs(err)
        tolerance_from = "argument" if tolerance is not None else "output_sd"
        if tolerance is None:
            sd = float(np.std(net))
            tolerance = DEFAULT_TOLERANCE_SD * sd if sd > 0 else 1e-9 * max(1.0, float(np.abs(net).max()))
        tolerance = float(tolerance)
        wrong = abs_err > tolerance
        target = abs_err
        out.update(
            n_disagree=int(wrong.sum()),
            share=float(wrong.mean()),
            tolerance=tolerance,
            tolerance_from=tolerance_from,
            confusion=None,
            errors={
                "mae": float(abs_err.mean()),
                "rmse": float(np.sqrt(np.mean(err**2))),
                "median": float(np.median(abs_err)),
                "max": float(abs_err.max()),
            },
        )

    # ---------------------------------------------------------------- per rule
    cov = rules.coverage_matrix(X)
    fires = rules.firing_rule(X)
    n_rules = len(rules.rules)

    def counts(m: np.ndarray, decided: np.ndarray | None) -> dict[str, Any]:
        k = int(m.sum())
        d: dict[str, Any] = {
            "n_covered": k,
            "n_disagree": int(wrong[m].sum()),
            "share": float(wrong[m].mean()) if k else None,
        }
        if decided is None:
            d.update(n_decided=None, n_disagree_decided=None, share_decided=None)
        else:
            kd = int(decided.sum())
            d.update(
                n_decided=kd,
                n_disagree_decided=int(wrong[decided].sum()),
                share_decided=float(wrong[decided].mean()) if kd else None,
            )
        if not classification:
            d["mae"] = float(abs_err[m].mean()) if k else None
        return d

    out["rules"] = [
        {"index": j, "text": rule.text(), **counts(cov[:, j], None if additive else fires == j)}
        for j, rule in enumerate(rules.rules)
    ]
    none = fires == n_rules
    out["default"] = {"index": n_rules, "text": "no rule applies", **counts(none, None if additive else none)}

    # ---------------------------------------------------------------- regions
    regions, search = _regions(X, dset, target, wrong, classification, int(max_regions), random_state)
    out["regions"] = regions
    out["region_search"] = search

    # ---------------------------------------------------------------- examples
    names = list(dset.schema.names)
    out["features"] = names
    if classification:
        candidates = np.flatnonzero(wrong)
        # The network's surest answers first: those are the disagreements that matter most.
        order = candidates[np.argsort(-net_p[candidates], kind="stable")]
    else:
        order = np.argsort(-abs_err, kind="stable")
    shown = [int(i) for i in order[: int(max_examples)]]
    ids = part.row_ids(shown)
    examples = []
    for i, row_id in zip(shown, ids):
        ex: dict[str, Any] = {
            "row": row_id,  # the row's label in the user's data; None for a synthetic row
            "source": str(part.source[i]),
            "values": {name: _raw(X[name].iloc[i]) for name in names},
        }
        if classification:
            ex.update(
                network=classes[net_idx[i]],
                network_proba=float(net_p[i]),
                surrogate=classes[sur_idx[i]],
                surrogate_proba=float(sur_p[i]),
            )
        else:
            ex.update(network=float(net[i]), network_proba=None, surrogate=float(sur[i]), surrogate_proba=None, error=float(err[i]))
        ex["rule"] = None if additive or fires[i] == n_rules else int(fires[i])
        examples.append(ex)
    out["examples"] = examples
    return _plain(out)


def _raw(v: Any) -> Any:
    """A raw value as JSON: None where missing."""
    if v is None or (isinstance(v, (float, np.floating)) and math.isnan(v)):
        return None
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return v.item() if isinstance(v, np.generic) else v


def _regions(
    X: pd.DataFrame,
    dset: DistillationSet,
    target: np.ndarray,
    wrong: np.ndarray,
    classification: bool,
    max_regions: int,
    random_state: int | None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Leaves of a small tree on the disagreement target, read back as raw rules, keeping those
    above the overall level, highest first."""
    n = len(X)
    min_leaf = max(REGION_MIN_ROWS, int(math.ceil(REGION_MIN_SHARE * n)))
    max_leaves = max(2, 2 * max_regions)
    search = {
        "target": "disagreement indicator" if classification else "absolute error",
        "max_depth": REGION_MAX_DEPTH,
        "max_leaf_nodes": max_leaves,
        "min_samples_leaf": min_leaf,
        "random_state": random_state,
    }
    if max_regions == 0 or not wrong.any() or n < 2 * min_leaf:
        return [], search
    schema = dset.schema
    # Categories ordered by their disagreement, so a threshold on the code is the split into
    # the categories where the surrogate errs more and those where it errs less.
    enc = RawEncoder("ordered").fit(X, schema, score=target)
    Z = enc.transform(X)
    tree = DecisionTreeRegressor(
        max_depth=REGION_MAX_DEPTH, max_leaf_nodes=max_leaves, min_samples_leaf=min_leaf, random_state=random_state
    ).fit(Z, target)
    t = tree.tree_
    order = list(schema.names)
    domains = {f.name: f.categories for f in schema if f.is_categorical and f.categories is not None}
    has_missing = {name: bool(X[name].isna().any()) for name in order}
    fitter = ConditionFitter(X, [name for name in order if has_missing[name]])
    overall_share = float(wrong.mean())
    overall_level = overall_share if classification else float(target.mean())
    total_wrong = int(wrong.sum())
    found = []
    stack: list[tuple[int, tuple[Condition, ...]]] = [(0, ())]
    while stack:
        node, path = stack.pop()
        left, right = int(t.children_left[node]), int(t.children_right[node])
        if left != -1:
            col, thr = int(t.feature[node]), float(t.threshold[node])
            stack.append((right, path + (enc.condition(col, ">", thr),)))
            stack.append((left, path + (enc.condition(col, "<=", thr),)))
            continue
        if not path:
            continue  # the root: all rows, no region
        # As a surrogate's rules are: each threshold the shortest decimal that splits these
        # rows as the tree's split did (printed = tested), and a feature never missing on
        # them does not claim missing values.
        path = tuple(fitter(c) for c in path)
        conds = merge_conditions(path, order, domains)
        rule = Rule(conds, None)
        m = rule.apply(X)
        k = int(m.sum())
        if k == 0:
            continue
        n_wrong = int(wrong[m].sum())
        share = n_wrong / k
        level = share if classification else float(target[m].mean())
        if n_wrong == 0 or not level > overall_level:
            continue
        region: dict[str, Any] = {
            "conditions": [c.to_dict() for c in conds],
            "text": rule.condition_text(),
            "n_rows": k,
            "coverage": k / n,
            "n_disagree": n_wrong,
            "share": share,
            "share_of_disagreements": n_wrong / total_wrong,
            "lift": share / overall_share if overall_share > 0 else None,
        }
        if not classification:
            region["mae"] = level
        found.append((level, k, region))
    found.sort(key=lambda x: (-x[0], -x[1]))
    return [r for _, _, r in found[:max_regions]], search
