"""What every surrogate shares: fitting on a DistillationSet, predicting from its rules, and
describing itself for fidelity and reports."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from .._validation import plain, validate_params
from ..errors import NotFittedError, ParameterError, SurrogateError
from ..extraction.dataset import DistillationSet
from ..extraction.encoding import CategoryOrderEncoder, RawEncoder  # noqa: F401  (re-exported)
from ..extraction.rules import (
    AdditiveRules,
    Condition,
    ConditionFitter,
    RuleList,
    RuleSet,
    features_with_missing,
    map_conditions,
    rule_shares,
    weight_digits,
)
from ..schema import Schema


class Surrogate:
    """Base class of the interpretable models pellucid fits to a network.

    Subclasses set ``name``, implement ``_fit(dset)`` (which sets ``rules_``) and may add to
    :meth:`complexity`. Parameters live in ``__init__``, fitted state ends in ``_``, and
    ``random_state`` is honoured wherever randomness enters. Predictions come from
    ``rules_``: the rules a reader sees are exactly what fidelity measures.
    """

    name: str = "surrogate"
    #: The ``__init__`` parameter that bounds the number of rules (the frontier varies it).
    size_param: str | None = None
    #: On ``explain``'s frontier by default (fits at every size in seconds).
    default: bool = False
    #: The fit at a smaller ``size_param`` is read off the fit at a larger one (a learner that
    #: grows one rule at a time): :meth:`fit_sizes` then fits once, at the largest size.
    size_path: bool = False
    #: Tasks the method handles, and the most classes (None: any number).
    tasks: tuple[str, ...] = ("classification", "regression")
    max_classes: int | None = None

    @classmethod
    def supports(cls, task: str, n_classes: int = 0) -> bool:
        """Whether the method can be fitted for ``task`` with ``n_classes`` classes."""
        if task not in cls.tasks:
            return False
        return task != "classification" or cls.max_classes is None or n_classes <= cls.max_classes

    #: What each ``__init__`` parameter may be (see :func:`pellucid._validation.validate_params`),
    #: checked by :meth:`fit` before any work; a subclass states every one of its parameters.
    _parameter_constraints: dict[str, list[Any]] = {}

    rules_: RuleSet | RuleList | AdditiveRules
    #: The rows it learned from: ``n_rows``, ``by_source`` (rows per strategy) and
    #: ``synthetic`` (rows not observed), as :func:`fitted_on` counts them.
    fitted_on_: dict[str, Any]
    schema_: Schema
    task_: str
    classes_: np.ndarray | None

    def fit(self, dset: DistillationSet) -> "Surrogate":
        """Fit on the training part of a distillation set (its holdout is never used)."""
        train = self._start(dset)
        self._fit(train)
        self._finalise(train)
        return self

    def fit_sizes(self, dset: DistillationSet, sizes: Sequence[int]) -> list["Surrogate"]:
        """One fit per value of ``size_param`` in ``sizes`` (other parameters as this one's),
        smallest first; each is what a fresh ``fit`` at that size gives.

        A class with ``size_path`` fits once, at the largest size, and reads the smaller fits
        off it (the 4-rule model of a learner that adds one rule at a time is the first four
        rules of its 32-rule model); the tests check each against a fresh fit. Any other
        class is fitted once per size.

        Raises
        ------
        ParameterError
            When the class has no ``size_param`` or ``sizes`` holds no positive integer.
        """
        param = type(self).size_param
        if param is None:
            raise ParameterError(f"{type(self).__name__} has no size parameter; fit it with fit()")
        try:
            values = sorted({int(v) for v in sizes})
        except (TypeError, ValueError):
            raise ParameterError(f"sizes must be positive integers, got {sizes!r}") from None
        if not values or values[0] < 1 or any(isinstance(v, bool) for v in sizes):
            raise ParameterError(f"sizes must be positive integers, got {sizes!r}")
        fits = [type(self)(**{**self.get_params(), param: v}) for v in values]
        for f in fits:
            if getattr(self, "name", None) != type(self).name:
                f.name = self.name  # a frontier candidate's own name
        if not type(self).size_path:
            return [f.fit(dset) for f in fits]
        largest = fits[-1]
        train = largest._start(dset)
        path = largest._fit_path(train)
        largest._finalise(train)
        for f in fits[:-1]:
            f._start(dset)
            f._fit_prefix(train, path)
            f._finalise(train)
        return fits

    def _start(self, dset: DistillationSet) -> DistillationSet:
        """Check the parameters and the set, record what the fit learns from; the training rows."""
        self._validate_params()
        if not isinstance(dset, DistillationSet):
            raise ParameterError(
                f"{type(self).__name__}.fit expects a DistillationSet from pellucid.distill, got {type(dset).__name__}"
            )
        train = dset.train if dset.is_holdout.any() else dset
        if len(train) == 0:
            raise ParameterError(f"{type(self).__name__}.fit: the distillation set has no training rows")
        self.schema_ = dset.schema
        self.task_ = dset.task
        self.classes_ = None if dset.classes is None else np.asarray(dset.classes, dtype=object)
        self.fitted_on_ = fitted_on(train)
        return train

    def _fit_path(self, train: DistillationSet) -> Any:
        """``size_path`` classes: fit at this (the largest) size and return what the smaller
        fits are read from."""
        raise NotImplementedError

    def _fit_prefix(self, train: DistillationSet, path: Any) -> None:
        """``size_path`` classes: become the fit at this size, read off ``path``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ printed = tested
    def _finalise(self, train: DistillationSet) -> None:
        """Make the fitted model the one its text prints, in one place for every surrogate.

        * Every numeric threshold becomes the shortest decimal that splits the training rows'
          values of its feature the same way (:func:`~pellucid.extraction.rules.snap_threshold`),
          and the model tests that value: a printed threshold, written in full, is the
          tested one, and the predictions on the training rows do not change.
        * Conditions on features that had no missing value in the data (the schema's table
          and the training rows) get ``missing=False``: no rule speaks of values that never
          occurred, and a row missing such a feature matches no condition on it.
        * An additive model's weights are printed with the fewest significant digits (at
          least 3) with which the printed weights decide every training row as the model
          does (regression: within 1e-4 of the spread of its predictions): ``digits``.
        * Each rule's weighted share of the training rows that match it and that it decides
          is recorded (``train_support_``), and its ``support`` is the share that matches.

        Sets ``missing_features_``, ``train_support_`` and ``learner_rules_`` (the model as
        read back from the learner, before this step: it reproduces the learner on any row,
        where ``rules_`` reproduces it on the training rows and tests its printed
        thresholds); the conditions of ``rules_`` and of whatever else
        :meth:`_map_conditions` maps (a tree's ``nodes_``) are replaced.

        Raises
        ------
        SurrogateError
            If the mapped rules cover other training rows than the fitted ones (a bug: the
            mapping keeps every split of the training rows).
        """
        rows = train.rows
        self.missing_features_ = features_with_missing(train.schema, rows)
        fitter = ConditionFitter(rows, self.missing_features_)
        self.learner_rules_ = self.rules_
        before = self.rules_.coverage_matrix(rows)
        self._map_conditions(fitter)
        after = self.rules_.coverage_matrix(rows)
        if before.shape != after.shape or not np.array_equal(before, after):
            bad = np.flatnonzero((before != after).any(axis=0)) if before.shape == after.shape else []
            raise SurrogateError(
                f"{type(self).__name__}: snapping thresholds to the training rows changed the rows of rule(s) "
                f"{[int(j) for j in bad]}; refusing to report rules that do not say what the model does"
            )
        if getattr(self.rules_, "additive", False):
            # Weights printed short enough to add up by hand, and still deciding every
            # training row as the model does.
            self.rules_ = replace(self.rules_, digits=weight_digits(self.rules_, rows, coverage=after))
        shares = rule_shares(self.rules_, rows, train.weights, coverage=after)
        self.train_support_ = shares
        model = self.rules_
        rules = tuple(replace(r, support=s["matches"]) for r, s in zip(model.rules, shares["rules"]))
        self.rules_ = replace(model, rules=rules)

    def _map_conditions(self, fn: Callable[[Condition], Condition]) -> None:
        """Replace every condition the fitted surrogate holds by ``fn(condition)``: those of
        ``rules_`` and, where present, of the tree's ``nodes_`` (drawn in the report), so the
        drawing and the rules agree. Subclasses holding conditions elsewhere extend this."""
        self.rules_ = map_conditions(self.rules_, fn)
        nodes = getattr(self, "nodes_", None)
        if nodes:
            self.nodes_ = [
                replace(
                    n,
                    condition=None if n.condition is None else fn(n.condition),
                    negation=None if n.negation is None else fn(n.negation),
                )
                for n in nodes
            ]

    def _fit(self, train: DistillationSet) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers for learners
    def _learner_data(
        self, train: DistillationSet, categorical: str = "ordered"
    ) -> tuple[RawEncoder, np.ndarray, np.ndarray]:
        """Encode the training rows for a learner that needs finite numbers.

        Returns the fitted :class:`RawEncoder` (whose ``condition`` turns the learner's tests
        back into raw conditions), the matrix, and the target: class indices into
        ``classes_`` (classification) or the network's outputs (regression).
        """
        enc = RawEncoder(categorical).fit(train.rows, train.schema, score=train.outputs, weights=train.weights)
        X = enc.transform(train.rows)
        y = train.outputs.argmax(axis=1) if train.task == "classification" else np.asarray(train.outputs, dtype=float)
        return enc, X, y

    def _check_reproduces(self, rows: pd.DataFrame, expected: np.ndarray, learner: str, atol: float = 1e-6) -> None:
        """Raise :class:`SurrogateError` unless ``rules_`` predicts ``expected`` (the learner's
        own predictions on the same rows): class labels exactly, values within ``atol``
        relative to their spread."""
        got = self.rules_.predict(rows)
        expected = np.asarray(expected)
        if self.task_ == "classification":
            bad = np.asarray(got, dtype=object) != np.asarray(expected, dtype=object)
        else:
            spread = max(float(np.ptp(expected)) if len(expected) else 0.0, 1.0)
            bad = np.abs(got.astype(float) - expected.astype(float)) > atol * spread
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise SurrogateError(
                f"{type(self).__name__}: the rules read back from {learner} disagree with its own predictions "
                f"on {int(bad.sum())} of {len(bad)} training rows (first: row {i}, rules say {got[i]!r}, "
                f"{learner} says {expected[i]!r}); refusing to report rules that do not say what the model does"
            )

    # ------------------------------------------------------------------ prediction
    def _check_fitted(self) -> None:
        if not hasattr(self, "rules_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(distillation_set) first")

    def _rows(self, X: pd.DataFrame) -> pd.DataFrame:
        self._check_fitted()
        return self.schema_.validate(X, what=f"table given to {type(self).__name__}")

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Class labels (classification) or values (regression) for raw rows."""
        rows = self._rows(X)
        return self.rules_.predict(rows)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities for raw rows, columns in the network's class order."""
        self._check_fitted()
        if self.task_ != "classification":
            raise ParameterError(f"{type(self).__name__} was fitted for {self.task_}; predict_proba needs classification")
        rows = self._rows(X)
        return self.rules_.predict_proba(rows)

    # ------------------------------------------------------------------ description
    def complexity(self) -> dict[str, Any]:
        """Size of what a reader must take in: rules and conditions."""
        self._check_fitted()
        lengths = [r.n_conditions for r in self.rules_.rules]
        # An additive model's linear terms are read like rules: each is one more thing to add.
        return {
            "n_rules": getattr(self.rules_, "n_terms", self.rules_.n_rules),
            "n_conditions": self.rules_.n_conditions,
            "max_rule_length": max(lengths, default=0),
            "mean_rule_length": float(np.mean(lengths)) if lengths else 0.0,
        }

    def _validate_params(self) -> None:
        """Raise :class:`ParameterError` naming the class and the parameter for a value outside
        ``_parameter_constraints``."""
        validate_params(type(self).__name__, self.get_params(), self._parameter_constraints)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The ``__init__`` parameters and their values (scikit-learn's convention; a surrogate
        holds no nested estimators, so ``deep`` changes nothing)."""
        import inspect

        sig = inspect.signature(type(self).__init__)
        return {p: getattr(self, p) for p in sig.parameters if p != "self"}

    def set_params(self, **params: Any) -> "Surrogate":
        """Set ``__init__`` parameters by name (checked at the next :meth:`fit`); returns self."""
        valid = self.get_params()
        for k, v in params.items():
            if k not in valid:
                raise ParameterError(
                    f"{type(self).__name__}: no parameter {k!r}; its parameters are {sorted(valid)}"
                )
            setattr(self, k, v)
        return self

    def describe(self) -> dict[str, Any]:
        self._check_fitted()
        return {"name": self.name, "type": type(self).__name__, "params": plain(self.get_params(), other=repr, depth=1)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def predict_each(surrogates: Sequence[Any], X: pd.DataFrame, *, schema: Schema | None = None) -> list[np.ndarray]:
    """``[s.predict(X) for s in surrogates]``, with ``X`` checked once per schema: a pellucid
    surrogate predicts its rules on the rows as its schema checks them, so surrogates of equal
    schemas (a surrogate and its refits, the entries of one frontier) share that check.
    ``schema``: ``X`` is already as that schema checks it (a distillation set's rows), so
    surrogates of that schema do not check it again. A surrogate that predicts otherwise is
    asked by its own ``predict``."""
    checked: list[tuple[Schema, pd.DataFrame]] = [] if schema is None else [(schema, X)]
    out = []
    for s in surrogates:
        if not (isinstance(s, Surrogate) and type(s).predict is Surrogate.predict):
            out.append(np.asarray(s.predict(X)))
            continue
        s._check_fitted()
        rows = next((r for known, r in checked if known == s.schema_), None)
        if rows is None:
            rows = s._rows(X)
            checked.append((s.schema_, rows))
        out.append(np.asarray(s.rules_.predict(rows)))
    return out


def fitted_on(train: DistillationSet) -> dict[str, Any]:
    """What a surrogate fitted on ``train`` learned from: its row count, the rows per strategy
    (``observed``, ``perturb``, ``marginal``, ...) and how many of them are synthetic."""
    sources, counts = np.unique(np.asarray(train.source, dtype=str), return_counts=True)
    by_source = {str(s): int(c) for s, c in zip(sources, counts)}
    return {"n_rows": int(len(train)), "by_source": by_source,
            "synthetic": int(len(train) - by_source.get("observed", 0))}


def float32_split(threshold: float) -> tuple[str, float]:
    """The float64 test equal to a scikit-learn tree's split.

    scikit-learn's trees compare ``float32(x) <= threshold``. For every float64 ``x`` that
    holds exactly when ``x op t`` holds, with ``(op, t)`` returned here: ``t`` is the point
    halfway between the largest float32 at or below the threshold and the next float32,
    and ``op`` is ``<=`` or ``<`` as round-half-to-even decides at ``t`` itself.
    """
    thr = float(threshold)
    a = np.float32(thr)
    if float(a) > thr:
        a = np.nextafter(a, np.float32(-np.inf))
    b = np.nextafter(a, np.float32(np.inf))
    mid = (float(a) + float(b)) / 2.0  # exact: float64 holds one more bit than float32 needs
    even = (int(np.asarray(a, dtype=np.float32).view(np.int32)) & 1) == 0
    return ("<=" if even else "<"), mid
