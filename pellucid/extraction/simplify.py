"""Post-processing of a rule model: fewer conditions and rules at (nearly) the same fidelity.

:func:`simplify` merges redundant thresholds, then greedily drops conditions and whole rules
whose loss does not lower the fidelity to the network (label agreement, or R² for a
regression) on the rows it is given by more than a tolerance. Every candidate is judged on
coverage matrices (one boolean column per rule, one mask per distinct condition computed once),
never by a loop over rows, and only the rows whose coverage a candidate changes are predicted
again. Predictions are computed as the model's ``predict`` computes them, operation for
operation; where predicting only some rows added a row's terms in another order and that
tipped the result below the promise, the choice is made again predicting every row, so the
model returned keeps the promise exactly.

The rows given should be a validation part of the *training* rows, never the holdout that
fidelity is later reported on: simplification chooses on these rows, and a fidelity measured
on the rows it chose on would flatter the result.
"""

from __future__ import annotations

from dataclasses import replace
from numbers import Real
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score

from .._validation import Interval, validate_params
from ..errors import ParameterError
from ..schema import Schema
from .export import RuleModel, _model
from .rules import AdditiveRules, Condition, RuleList, RuleSet, merge_conditions

MEASURES = {"classification": "agreement", "regression": "r2"}

#: Whether a candidate predicts again only the rows its change touches (fast), or every row.
_CHANGED_ROWS_ONLY = True


def simplify(
    rules: Any,
    rows: pd.DataFrame,
    outputs: Any,
    task: str | None = None,
    classes: Sequence | None = None,
    tolerance: float = 0.0,
    weights: Any = None,
    *,
    schema: Schema | None = None,
) -> tuple[RuleModel, dict[str, Any]]:
    """Drop the conditions and rules a model does not need to keep its fidelity.

    In order:

    1. each rule's conditions are merged (one lower and one upper bound per numeric feature,
       one set per categorical one; :func:`~pellucid.extraction.merge_conditions`) and sorted
       by feature order -- a rule then accepts exactly the rows it accepted before;
    2. conditions are dropped, rule by rule and condition by condition in their order, where
       the model without the condition keeps its fidelity on ``rows`` within ``tolerance`` of
       the input model's;
    3. whole rules are dropped in their order on the same test: from a rule list the rows of
       a dropped rule fall to the rules after it (or the default); from a rule set they are
       decided by the other covering rules; from an additive model the rule's weight goes
       with it (its linear terms are kept);

    and steps 2 and 3 repeat until neither drops anything. The test is against the input's
    fidelity, so the result's fidelity on ``rows`` is never more than ``tolerance`` below it.

    Pass rows that are *not* the holdout fidelity is reported on -- the training rows
    (``DistillationSet.train``) or a validation part of them: what is chosen on some rows
    looks better on them than it is, and the holdout is there to say how good it is.

    Parameters
    ----------
    rules : RuleList, RuleSet, AdditiveRules or fitted surrogate
        The model (a surrogate's ``rules_``, and its schema unless ``schema`` is given).
    rows : pandas.DataFrame
        Raw rows in the schema's canonical form (:meth:`~pellucid.schema.Schema.validate`;
        validated here when a schema is known).
    outputs : array-like
        The network's answers on ``rows``: class probabilities or scores of shape
        ``(n_rows, n_classes)`` (argmax is the network's label) or the labels themselves
        (classification); values of shape ``(n_rows,)`` (regression).
    task : str, optional
        ``classification`` or ``regression``; the model's own by default (another is refused).
    classes : sequence, optional
        The classes the columns of ``outputs`` stand for; the model's by default.
    tolerance : float
        How far fidelity may fall below the input model's (agreement as a share, or R²).
        0 drops only what costs nothing.
    weights : array-like, optional
        Row weights of the fidelity (e.g. ``DistillationSet.weights``).
    schema : Schema, optional
        Validates ``rows``, orders the conditions, and lets sets of categories be written as
        the shorter of a set and its complement.

    Returns
    -------
    model : RuleList, RuleSet or AdditiveRules
        A new model of the input's type. Rules keep their outcome and class distribution; a
        rule that lost a condition loses its ``support`` (``None``), which described the rows
        it covered before.
    report : dict
        ``measure`` (``agreement`` or ``r2``), ``fidelity_before`` / ``fidelity_after`` on
        ``rows``, ``tolerance``, ``n_rows``, rule and condition counts before and after,
        ``merged`` (rules whose conditions merging rewrote), ``dropped_conditions`` (of the
        rules kept) and ``dropped_rules`` (each with the input's rule index, the text of the
        condition or of the input's rule, and the fidelity after the drop), and ``kept`` (the
        input's indices of the rules kept, in order).

    Raises
    ------
    ParameterError
        A bad tolerance, task, row count, output shape, weight, or a feature the rows lack.

    Examples
    --------
    >>> train = dset.train  # doctest: +SKIP
    >>> rules, report = simplify(tree, train.rows, train.outputs, weights=train.weights,
    ...                          tolerance=0.005)  # doctest: +SKIP
    >>> report["n_conditions_before"], report["n_conditions_after"]  # doctest: +SKIP
    (63, 20)
    """
    model = _model(rules, "simplify")
    if schema is None:
        schema = getattr(rules, "schema_", None) if model is not rules else None
    if schema is not None and not isinstance(schema, Schema):
        raise ParameterError(f"simplify: schema must be a pellucid Schema, got {type(schema).__name__}")
    tolerance = _check_tolerance(tolerance)
    task = _check_task(model, task)
    rows = _check_rows(model, rows, schema)
    n = len(rows)
    w = _check_weights(weights, n)
    fidelity = _fidelity_function(model, task, outputs, classes, n, w)

    order = _feature_order(model, schema)
    domains = None
    if schema is not None:
        domains = {f.name: list(f.categories or ()) for f in schema if f.is_categorical}

    # 1. Merge: each rule accepts the same rows with at most as many conditions.
    merged = [list(merge_conditions(r.conditions, order, domains)) for r in model.rules]
    merged_report = [
        {"rule": i, "before": [c.text() for c in r.conditions], "after": [c.text() for c in m]}
        for i, (r, m) in enumerate(zip(model.rules, merged))
        if [c.text() for c in m] != [c.text() for c in r.conditions]
    ]

    # One mask per distinct condition; a rule's coverage is their conjunction.
    masks: dict[Condition, np.ndarray] = {}

    def coverage(cs: Sequence[Condition]) -> np.ndarray:
        out = np.ones(n, dtype=bool)
        for c in cs:
            if c not in masks:
                masks[c] = c.apply(rows)
            out = out & masks[c]
        return out

    predict = _predictor(model, rows)
    before = fidelity(_predicted(model, rows))
    floor = before - tolerance
    first_cover = [coverage(cs) for cs in merged]

    def greedy(changed_rows_only: bool) -> tuple:
        """Steps 2 and 3. A candidate changes the predictions of some rows only (those whose
        coverage by the changed rule changes); with ``changed_rows_only`` just these rows
        are predicted again, else every row is."""
        conds = [list(m) for m in merged]
        cover = list(first_cover)
        alive = list(range(len(model.rules)))
        pred = predict(_stack(cover, alive, None, n), alive, None)
        current = fidelity(pred)
        touched: set[int] = set()
        dropped_conditions: list[dict[str, Any]] = []
        dropped_rules: list[dict[str, Any]] = []

        def evaluate(alive: list[int], idx: np.ndarray, i: int | None = None, col: np.ndarray | None = None):
            cols = [col if a == i else cover[a] for a in alive]
            if not changed_rows_only:
                p = predict(_stack(cols, alive, None, n), alive, None)
            else:
                p = pred.copy()
                p[idx] = predict(_stack(cols, alive, idx, len(idx)), alive, idx)
            return fidelity(p), p

        changed = True
        while changed:
            changed = False
            # 2. Conditions, rule by rule, in order.
            for i in alive:
                j = 0
                while j < len(conds[i]):
                    candidate = conds[i][:j] + conds[i][j + 1 :]
                    cm = coverage(candidate)
                    idx = np.flatnonzero(cm != cover[i])
                    # A condition true on every row the rule covers changes nothing.
                    f, p = (current, pred) if idx.size == 0 else evaluate(alive, idx, i, cm)
                    if f >= floor:
                        dropped_conditions.append({"rule": i, "condition": conds[i][j].text(), "fidelity": float(f)})
                        conds[i], cover[i], current, pred = candidate, cm, f, p
                        touched.add(i)
                        changed = True
                    else:
                        j += 1
            # 3. Whole rules, in order.
            k = 0
            while k < len(alive):
                i = alive[k]
                candidate = alive[:k] + alive[k + 1 :]
                idx = np.flatnonzero(cover[i])
                # A rule that covers no row decides none; but a column fewer may change the
                # order in which the matrix product adds up the others, so every row is
                # predicted again when predicting all.
                unchanged = idx.size == 0 and changed_rows_only
                f, p = (current, pred) if unchanged else evaluate(candidate, idx)
                if f >= floor:
                    dropped_rules.append({"rule": i, "text": model.rules[i].condition_text(), "fidelity": float(f)})
                    alive, current, pred = candidate, f, p
                    changed = True
                else:
                    k += 1
        # A dropped rule is reported whole, as the input wrote it, not condition by condition.
        dropped_conditions = [d for d in dropped_conditions if d["rule"] in alive]
        # A rule that lost a condition covers other rows than its support described.
        kept = tuple(
            replace(r, conditions=tuple(conds[i]), support=None if i in touched else r.support)
            for i, r in ((i, model.rules[i]) for i in alive)
        )
        if isinstance(model, AdditiveRules):
            out = replace(model, rules=kept, weights=tuple(model.weights[i] for i in alive))
        else:
            out = replace(model, rules=kept)
        return out, alive, dropped_conditions, dropped_rules

    out, alive, dropped_conditions, dropped_rules = greedy(changed_rows_only=_CHANGED_ROWS_ONLY)
    after = fidelity(_predicted(out, rows))
    if after < floor:
        # Predicting a few rows, or a matrix with a column fewer, may add up a row's terms in
        # another order than the model does; where the last bits tipped the test (a near tie,
        # or an R² of outputs that hardly vary), choose again on whole matrices, exactly as
        # the model predicts.
        out, alive, dropped_conditions, dropped_rules = greedy(changed_rows_only=False)
        after = fidelity(_predicted(out, rows))
    report = {
        "measure": MEASURES[task],
        "fidelity_before": float(before),
        "fidelity_after": float(after),
        "tolerance": float(tolerance),
        "n_rows": int(n),
        "n_rules_before": int(model.n_rules),
        "n_rules_after": int(out.n_rules),
        "n_conditions_before": int(model.n_conditions),
        "n_conditions_after": int(out.n_conditions),
        "merged": merged_report,
        "dropped_conditions": dropped_conditions,
        "dropped_rules": dropped_rules,
        "kept": [int(i) for i in alive],
    }
    return out, report


# ---------------------------------------------------------------------- checks
def _check_tolerance(tolerance: Any) -> float:
    validate_params("simplify", {"tolerance": tolerance}, {"tolerance": [Interval(Real, 0, None)]})
    return float(tolerance)


def _check_task(model: RuleModel, task: str | None) -> str:
    if task is None:
        task = model.task
    if task not in MEASURES:
        raise ParameterError(f"simplify: task must be 'classification' or 'regression', got {task!r}")
    if task != model.task:
        raise ParameterError(f"simplify: task {task!r} given for a {model.task} rule model")
    return task


def _check_rows(model: RuleModel, rows: Any, schema: Schema | None) -> pd.DataFrame:
    if not isinstance(rows, pd.DataFrame):
        raise ParameterError(f"simplify: rows must be a pandas DataFrame, got {type(rows).__name__}")
    if schema is not None:
        rows = schema.validate(rows, what="rows given to simplify")
    used = {c.feature for r in model.rules for c in r.conditions}
    used |= {t.feature for t in getattr(model, "linear", ())}
    lacking = sorted(f for f in used if f not in rows.columns)
    if lacking:
        s = "s" if len(lacking) > 1 else ""
        raise ParameterError(f"simplify: the rows lack the feature{s} {lacking} the rules test")
    if len(rows) == 0:
        raise ParameterError("simplify: no rows to measure fidelity on (0 rows)")
    if model.task == "regression" and len(rows) < 2:
        raise ParameterError(f"simplify: R² needs at least 2 rows, got {len(rows)}")
    return rows


def _check_weights(weights: Any, n: int) -> np.ndarray | None:
    if weights is None:
        return None
    try:
        w = np.asarray(weights, dtype=float)
    except (TypeError, ValueError):
        raise ParameterError("simplify: weights must be numbers") from None
    if w.shape != (n,):
        raise ParameterError(f"simplify: weights must have one entry per row ({n}), got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ParameterError("simplify: weights must be finite, non-negative and not all 0")
    return w


def _fidelity_function(
    model: RuleModel, task: str, outputs: Any, classes: Sequence | None, n: int, w: np.ndarray | None
) -> Callable[[np.ndarray], float]:
    """Fidelity of predictions (class indices into the model's classes, or values)."""
    try:
        out = np.asarray(outputs)
    except Exception:  # noqa: BLE001 - any array-like the caller passes
        raise ParameterError(f"simplify: outputs must be an array, got {type(outputs).__name__}") from None
    if out.ndim == 0 or len(out) != n:
        raise ParameterError(f"simplify: outputs must have one entry per row ({n}), got shape {out.shape}")
    if task == "regression":
        y = out.astype(float).reshape(n, -1) if out.ndim == 2 else out.astype(float)
        if y.ndim != 1 and y.shape[1] != 1:
            raise ParameterError(f"simplify: regression outputs must have one value per row, got shape {out.shape}")
        y = y.ravel()
        if not np.isfinite(y).all():
            raise ParameterError("simplify: the outputs hold non-finite values")
        return lambda pred: float(r2_score(y, pred, sample_weight=w))
    model_classes = pd.Index(list(model.classes or ()), dtype=object)
    if not model_classes.is_unique or len(model_classes) == 0:
        raise ParameterError(f"simplify: the model's classes must be distinct and given, got {list(model_classes)}")
    given = model_classes if classes is None else pd.Index(list(classes), dtype=object)
    if out.ndim == 2:
        if out.shape[1] != len(given):
            raise ParameterError(
                f"simplify: outputs have {out.shape[1]} columns but there are {len(given)} classes {list(given)}"
            )
        labels = given.to_numpy()[out.argmax(axis=1)]
    elif out.ndim == 1:
        labels = out.astype(object)
    else:
        raise ParameterError(
            f"simplify: classification outputs must be 1-d labels or 2-d scores, got shape {out.shape}"
        )
    # The network's label as an index into the model's classes (-1: a class the model lacks).
    net = model_classes.get_indexer(pd.Index(labels, dtype=object))
    if w is None:
        return lambda pred: float(np.mean(pred == net))
    return lambda pred: float(np.sum(w * (pred == net)) / np.sum(w))


def _feature_order(model: RuleModel, schema: Schema | None) -> list[str]:
    if model.feature_order is not None:
        return list(model.feature_order)
    if schema is not None:
        return schema.names
    order: list[str] = []
    for r in model.rules:
        for c in r.conditions:
            if c.feature not in order:
                order.append(c.feature)
    return order


# ---------------------------------------------------------------------- prediction
def _predicted(model: RuleModel, rows: pd.DataFrame) -> np.ndarray:
    """The model's own prediction: class indices into its classes, or values."""
    pred = model.predict(rows)
    if model.task != "classification":
        return np.asarray(pred, dtype=float)
    return pd.Index(list(model.classes), dtype=object).get_indexer(pd.Index(pred, dtype=object))


def _stack(cols: Sequence[np.ndarray], alive: Sequence[int], idx: np.ndarray | None, n: int) -> np.ndarray:
    """The coverage matrix (rows ``idx``, or all) of the rules whose columns are ``cols``."""
    if not cols:
        return np.zeros((n, 0), dtype=bool)
    return np.column_stack(cols if idx is None else [c[idx] for c in cols])


Predictor = Callable[[np.ndarray, Sequence[int], "np.ndarray | None"], np.ndarray]


def _predictor(model: RuleModel, rows: pd.DataFrame) -> Predictor:
    """Prediction from a coverage matrix of some of the model's rules (``alive``, by index)
    on some rows (``idx``, or all), computed as the model's ``predict`` computes it, operation
    for operation, so that a candidate's fidelity is the fidelity its model will have."""
    classification = model.task == "classification"
    if isinstance(model, AdditiveRules):
        intercept = np.asarray(model.intercept)
        W = np.asarray(model.weights)
        linear = [np.outer(t.values(rows), t.weights) for t in model.linear]

        def additive(cov: np.ndarray, alive: Sequence[int], idx: np.ndarray | None) -> np.ndarray:
            s = np.tile(intercept, (cov.shape[0], 1))
            if len(alive):
                s += cov.astype(float) @ W[list(alive)]
            for term in linear:
                s += term if idx is None else term[idx]
            if not classification:
                return s[:, 0]
            if model.link == "logistic":
                return (s[:, 0] > 0).astype(int)
            return s.argmax(axis=1)

        return additive

    vals = model._rule_values()  # each rule's distribution or value, the default last

    def rule_values(alive: Sequence[int]) -> np.ndarray:
        return vals[list(alive) + [len(vals) - 1]]

    if isinstance(model, RuleList):

        def first_match(cov: np.ndarray, alive: Sequence[int], idx: np.ndarray | None) -> np.ndarray:
            v = rule_values(alive)
            m, r = cov.shape
            any_ = cov.any(axis=1) if r else np.zeros(m, dtype=bool)
            first = cov.argmax(axis=1) if r else np.zeros(m, dtype=int)
            chosen = v[np.where(any_, first, r)]
            return chosen.argmax(axis=1) if classification else chosen

        return first_match

    def mean_of_covering(cov: np.ndarray, alive: Sequence[int], idx: np.ndarray | None) -> np.ndarray:
        v = rule_values(alive)
        c = cov.astype(float)
        k = c.sum(axis=1)
        summed = c @ v[:-1]
        if summed.ndim == 1:
            return np.where(k > 0, summed / np.maximum(k, 1), v[-1])
        p = np.where((k > 0)[:, None], summed / np.maximum(k, 1)[:, None], v[-1][None, :])
        return p.argmax(axis=1)

    assert isinstance(model, RuleSet)
    return mean_of_covering


__all__ = ["simplify"]
