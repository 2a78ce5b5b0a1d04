"""Additive rule surrogates: RuleFit, boosted rules and SLIPPER on imodels, and FIGS.

Each model here is a weighted sum of rules, so each is read back as an
:class:`~pellucid.extraction.rules.AdditiveRules` on the raw features::

    score = intercept + Σ weight · [rule fires] + Σ weight · feature

with ``link="logistic"`` for two classes (the score is the log-odds of ``classes_[1]``),
``"softmax"`` for more (one score column per class) and ``"identity"`` for a regression.
The learners see the matrix of :class:`~pellucid.extraction.encoding.RawEncoder`; every test
they make on it is read back with :meth:`RawEncoder.condition`, which accepts exactly the
rows the test accepts, missing values included. Predictions come from the rules, and a fit
is refused (:class:`~pellucid.errors.SurrogateError`) unless the rules reproduce the
learner's own labels and scores on the training rows.

Where an imodels learner does not do what its model says, the wrapper corrects it and says
so in the class docstring: RuleFit's probabilities and shrunk weights, SLIPPER's weak
learner, the float32 rounding of scikit-learn's trees in boosted rules. What cannot be
written as a sum of rules is refused with a :class:`~pellucid.errors.ParameterError`
(boosted rules for a regression; RuleFit and SLIPPER for more than two classes).
"""

from __future__ import annotations

import copy
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd

from .._validation import Interval
from ..errors import ParameterError, PellucidWarning, SurrogateError
from ..extraction.dataset import DistillationSet
from ..extraction.encoding import RawEncoder
from ..extraction.rules import AdditiveRules, Condition, LinearTerm, Rule, merge_conditions
from ._boosted import StumpBooster
from ._figs import FigsLearner
from ._imodels import learner_context, rulefit_tests, slipper_tests
from .base import Surrogate, float32_split

#: Score of a class the network never gave on the training rows: it is never predicted and
#: its probability is 0 (exp(-1e6) underflows), as in the learner, which never saw it.
_ABSENT = -1e6
#: Log-odds of a model whose training rows all carry one label: nothing to learn.
_CERTAIN = 30.0
#: Relative tolerance when the rules' scores are compared with the learner's.
_SCORE_RTOL = 1e-8


# ---------------------------------------------------------------------- helpers


class _RuleEnsemble(Surrogate):
    """Shared machinery: encode, fit the learner quietly, read rules back, check them.

    Subclasses set ``_encoding``, ``_multiclass``, ``_regression`` and implement
    ``_fit_learner(X, y, w)`` (returns the fitted learner), ``_read(learner)`` (returns
    ``(terms, intercept, linear)`` where ``terms`` is a list of ``(conditions, weights)`` in
    score columns of the learner's classes) and ``_reference(learner, X)`` (the learner's
    own labels or values and scores on ``X``).
    """

    _encoding = "ordered"
    _multiclass = True
    _regression = True

    @classmethod
    def supports(cls, task: str, n_classes: int = 0) -> bool:
        if task == "regression":
            return cls._regression
        return task == "classification" and (cls._multiclass or n_classes <= 2)
    _learner_name = "the learner"

    random_state: int | None

    # ------------------------------------------------------------------ fit
    def _fit(self, train: DistillationSet) -> None:
        data = self._prepare(train)
        if data is not None:
            X, y, w = data
            self._use(train, self._learn(X, y, w), X)

    def _fit_path(self, train: DistillationSet) -> Any:
        data = self._prepare(train)
        if data is None:
            return None
        X, y, w = data
        learner = self._learn(X, y, w)
        self._use(train, learner, X)
        return learner, X, self.encoder_, self.present_classes_

    def _fit_prefix(self, train: DistillationSet, path: Any) -> None:
        if path is None:  # one class on every training row: the same constant at every size
            self._fit(train)
            return
        learner, X, self.encoder_, self.present_classes_ = path
        self._use(train, self._prefix_learner(learner), X)

    def _prepare(self, train: DistillationSet) -> tuple | None:
        """Encode the rows and check the task; None where the network gives one class on every
        training row (the fitted model is then that constant)."""
        classification = train.task == "classification"
        k = len(self.classes_) if classification else 1
        if not classification and not self._regression:
            raise ParameterError(self._no_regression())
        if classification and k > 2 and not self._multiclass:
            raise ParameterError(self._no_multiclass(k))
        enc, X, y = self._learner_data(train, self._encoding)
        self.encoder_: RawEncoder = enc
        w = np.asarray(train.weights, dtype=float)
        present = np.unique(y).astype(int) if classification else None
        self.present_classes_ = present
        if classification and len(present) < 2:
            # The network gives one class on every training row: a constant says it all.
            self.estimator_ = None
            self.rules_ = self._assemble([], self._constant_intercept(int(present[0]), k), [], train)
            return None
        self._check_weights(w)
        return X, y, w

    def _learn(self, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> Any:
        try:
            # Seeded: imodels' learners fit scikit-learn trees that break ties between equally
            # good features from numpy's global state.
            with learner_context(self.random_state):
                return self._fit_learner(X, y, w)
        except (ValueError, IndexError, ZeroDivisionError, FloatingPointError) as e:
            raise SurrogateError(
                f"{type(self).__name__}: {self._learner_name} failed on {len(X)} training rows: {e}"
            ) from e

    def _use(self, train: DistillationSet, learner: Any, X: np.ndarray) -> None:
        """Read the fitted learner back as rules and check that they reproduce it."""
        classification = train.task == "classification"
        self.estimator_ = learner
        terms, intercept, linear = self._read(learner)
        if classification:
            terms, intercept, linear = self._to_class_columns(terms, intercept, linear, self.present_classes_,
                                                              len(self.classes_))
        self.rules_ = self._assemble(terms, intercept, linear, train)
        with learner_context():
            expected, scores = self._reference(learner, X)
        self._check_reproduces(train.rows, expected, self._learner_name)
        if scores is not None:
            self._check_scores(train.rows, scores)

    # ------------------------------------------------------------------ subclass hooks
    def _check_weights(self, w: np.ndarray) -> None:
        pass

    def _fit_learner(self, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> Any:
        raise NotImplementedError

    def _prefix_learner(self, learner: Any) -> Any:
        """The learner the fit at this size gives, read off ``learner`` fitted at a larger
        one (for a class with ``size_path``)."""
        raise NotImplementedError

    def _read(self, learner: Any) -> tuple[list, np.ndarray, list]:
        raise NotImplementedError

    def _reference(self, learner: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def _no_regression(self) -> str:
        return f"{type(self).__name__} is for classification only"

    def _no_multiclass(self, k: int) -> str:
        return f"{type(self).__name__} handles two classes; the network has {k}"

    # ------------------------------------------------------------------ read-back helpers
    def _conditions(self, column: int, op: str, threshold: float) -> tuple[Condition, ...]:
        """Raw conditions for the learner's test ``column op threshold``. An equality on a
        numeric value is a one-point interval."""
        c = self.encoder_.columns_[int(column)]
        if op == "==" and c.role == "value" and not (c.kind == "binary" and threshold in (0.0, 1.0)):
            return (self.encoder_.condition(column, ">=", threshold), self.encoder_.condition(column, "<=", threshold))
        return (self.encoder_.condition(column, op, threshold),)

    def _tree_split(self, column: int, threshold: float, float32: bool) -> tuple[tuple, tuple]:
        """Conditions of the left (``<=``) and right branch of a tree split."""
        if float32:
            op, t = float32_split(threshold)
            neg = ">" if op == "<=" else ">="
        else:
            op, t, neg = "<=", float(threshold), ">"
        return self._conditions(column, op, t), self._conditions(column, neg, t)

    def _to_class_columns(self, terms, intercept, linear, present, k):
        """Map score columns over the learner's classes (those present in training) onto
        the network's classes; two classes become one log-odds column."""
        if k == 2:
            return terms, intercept, linear  # the learner reads already as log-odds of class 1

        def widen(v):
            v = np.atleast_1d(np.asarray(v, dtype=float))
            if len(present) == 2 and len(v) == 1:
                v = np.array([0.0, v[0]])  # log-odds of the second present class
            full = np.zeros(k)
            full[present] = v
            return full

        terms = [(conds, widen(np.atleast_1d(wt))) for conds, wt in terms]
        full_icpt = widen(intercept)
        full_icpt[np.setdiff1d(np.arange(k), present)] = _ABSENT
        linear = [LinearTerm(t.feature, tuple(widen(np.asarray(t.weights))), t.fill, t.kind) for t in linear]
        return terms, full_icpt, linear

    def _constant_intercept(self, cls: int, k: int) -> np.ndarray:
        if k == 2:
            return np.array([_CERTAIN if cls == 1 else -_CERTAIN])
        out = np.full(k, _ABSENT)
        out[cls] = 0.0
        return out

    def _link(self) -> str:
        if self.task_ != "classification":
            return "identity"
        return "logistic" if len(self.classes_) == 2 else "softmax"

    def _assemble(self, terms, intercept, linear, train: DistillationSet) -> AdditiveRules:
        """Rules from ``(conditions, weights)`` terms: conditions merged into readable form,
        terms with the same conditions summed, always-true terms folded into the intercept,
        terms of weight 0 dropped."""
        schema = train.schema
        order = tuple(schema.names)
        domains = {f.name: f.categories for f in schema if f.is_categorical}
        intercept = np.array(np.atleast_1d(intercept), dtype=float)
        merged: dict[tuple[Condition, ...], np.ndarray] = {}
        for conds, wt in terms:
            wt = np.array(np.atleast_1d(wt), dtype=float)
            key = merge_conditions(conds, order, domains)
            if not key:
                intercept = intercept + wt
                continue
            merged[key] = merged[key] + wt if key in merged else wt
        w = np.asarray(train.weights, dtype=float)
        rows = train.rows
        rules, weights = [], []
        total = w.sum()
        for key, wt in merged.items():
            if not np.any(wt != 0):
                continue
            rule = Rule(key, None)
            support = float(w[rule.apply(rows)].sum() / total) if total > 0 else 0.0
            rules.append(Rule(key, self._outcome(wt), None, support))
            weights.append(tuple(wt))
        linear = [t for t in linear if any(x != 0 for x in t.weights)]
        return AdditiveRules(
            tuple(rules),
            tuple(weights),
            tuple(intercept),
            tuple(linear),
            link=self._link(),
            task=self.task_,
            classes=None if self.classes_ is None else tuple(self.classes_),
            feature_order=order,
        )

    def _outcome(self, w: np.ndarray) -> Any:
        if self.task_ != "classification":
            return float(w[0])
        if len(self.classes_) == 2:
            return self.classes_[1] if w[0] > 0 else self.classes_[0]
        return self.classes_[int(np.argmax(w))]

    def _labels(self, idx: np.ndarray) -> np.ndarray:
        """Class indices (as the learners return them, possibly floats) to labels."""
        return np.asarray(self.classes_, dtype=object)[np.asarray(idx, dtype=float).astype(int)]

    def _check_scores(self, rows: pd.DataFrame, expected: np.ndarray) -> None:
        """Raise unless the rules' scores equal the learner's (to rounding)."""
        got = self.rules_.decision_function(rows)
        expected = np.asarray(expected, dtype=float).reshape(len(rows), -1)
        if self.task_ != "classification":
            return  # the values were compared by _check_reproduces
        if len(self.classes_) > 2:
            got = got[:, self.present_classes_]
            if expected.shape[1] == 1:  # a learner that saw two classes gives their log-odds
                got = (got[:, 1] - got[:, 0])[:, None]
        scale = max(1.0, float(np.abs(expected).max()) if expected.size else 1.0)
        err = np.abs(got - expected)
        if err.size and float(err.max()) > _SCORE_RTOL * scale:
            i = int(np.unravel_index(np.argmax(err), err.shape)[0])
            raise SurrogateError(
                f"{type(self).__name__}: the rules' scores differ from {self._learner_name}'s by up to "
                f"{float(err.max()):.3g} (row {i}); refusing to report rules that do not say what the model does"
            )

    # ------------------------------------------------------------------ description
    def complexity(self) -> dict[str, Any]:
        out = super().complexity()
        out["n_linear"] = len(self.rules_.linear)
        return out


# ---------------------------------------------------------------------- RuleFit
class RuleFit(_RuleEnsemble):
    """RuleFit (Friedman and Popescu, 2008) on imodels: rules from boosted trees, plus linear
    terms, selected by an L1-penalised linear model.

    Categories and missing values are one-hot columns, so a linear term on a category or on
    "is missing" is a one-condition rule (``home = rent``, ``income is missing``) and a
    numeric feature's linear term is a :class:`~pellucid.extraction.rules.LinearTerm` in its
    own units (missing counts as the training median). Two classes or a regression; RuleFit
    has no multiclass form.

    What differs from calling imodels directly:

    * imodels' ``RuleFitClassifier.predict_proba`` passes the logistic model's log-odds
      ``c`` through ``softmax([1 - c, c])``, i.e. ``sigmoid(2c - 1)``, and ``predict`` takes
      the argmax of that, which calls class 1 only when ``c > 0.5``. The surrogate uses the
      fitted logistic model as fitted: log-odds ``c``, class 1 when ``c > 0``.
    * Winsorising of linear terms is switched off (``lin_trim_quantile=0``): a clipped
      feature is not a linear term in raw units. The 0.4/sd standardisation is kept (it
      makes the penalty fair across features) and undone exactly in the weights.
    * ``refit=True`` (the default): imodels chooses the terms, the weights are then refitted
      on those terms alone (a light ridge for two classes, least squares for a regression).
      imodels keeps the L1 path's weights, which at a small ``max_rules`` are shrunk so far
      that the model says little (on the demo credit network, 5 or 10 terms answer the
      majority class on every held-out row; refitted, they agree with the network on 94.5–95%).
      ``refit=False`` keeps imodels' weights.
    * imodels' RuleFit takes no sample weights, so the terms are chosen unweighted (with a
      :class:`~pellucid.errors.PellucidWarning` when the distillation set's weights differ);
      the refit uses the weights.

    Parameters
    ----------
    max_rules : int
        Most non-zero terms (rules and linear terms) the penalty path may keep.
    n_estimators : int
        Boosted trees grown to generate candidate rules; the main cost of a fit.
    tree_size : int
        Mean leaves per generated tree (sizes drawn around it, as Friedman and Popescu do).
    memory_par : float
        Learning rate of the boosting that generates candidates.
    include_linear : bool
        Whether numeric features, categories and missing indicators may enter as linear
        terms beside the rules.
    cv : bool
        Choose the penalty by 5-fold cross-validation among those within ``max_rules``
        (two to three times the time); otherwise the least penalised model within the budget.
    refit : bool
        Refit the weights of the chosen terms without the L1 penalty.
    refit_penalty : float
        Ridge strength of the two-class refit on standardised term columns: it minimises the
        mean log-loss + ``refit_penalty``/2 · |b|² (the network's labels are often separable
        by the terms, where an unpenalised fit has no finite solution).
    random_state : int, optional
        Seed of the tree generator and the linear models.

    Attributes
    ----------
    estimator_ : imodels RuleFitClassifier or RuleFitRegressor
        The fitted imodels model (its terms; its weights unless ``refit=False`` was asked).
    refit_ : scikit-learn LogisticRegression or LinearRegression or None
        The refit on the chosen terms (columns: the imodels rules, then the linear terms).
    """

    name = "rulefit"
    size_param = "max_rules"
    _encoding = "onehot"
    _multiclass = False

    @property
    def _learner_name(self) -> str:  # type: ignore[override]
        return "the refit on imodels' RuleFit terms" if self.refit else "imodels' RuleFit"

    _parameter_constraints: dict[str, list[Any]] = {
        "max_rules": [Interval(Integral, 1, None, closed="left")],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "tree_size": [Interval(Integral, 2, None, closed="left")],
        "memory_par": [Interval(Real, 0, None, closed="neither")],
        "include_linear": ["boolean"],
        "cv": ["boolean"],
        "refit": ["boolean"],
        "refit_penalty": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        max_rules: int = 20,
        n_estimators: int = 100,
        tree_size: int = 4,
        memory_par: float = 0.01,
        include_linear: bool = True,
        cv: bool = False,
        refit: bool = True,
        refit_penalty: float = 1e-4,
        random_state: int | None = 0,
    ) -> None:
        self.max_rules = max_rules
        self.n_estimators = n_estimators
        self.tree_size = tree_size
        self.memory_par = memory_par
        self.include_linear = include_linear
        self.cv = cv
        self.refit = refit
        self.refit_penalty = refit_penalty
        self.random_state = random_state

    def _no_multiclass(self, k: int) -> str:
        return (
            f"RuleFit handles two classes or a regression; the network has {k} classes (imodels' RuleFit "
            "has no multiclass form). Use FIGS or BoostedRules, which have one."
        )

    def _check_weights(self, w: np.ndarray) -> None:
        if len(w) and not np.allclose(w, w[0]):
            warnings.warn(
                "RuleFit: imodels' RuleFit takes no sample weights; its terms are chosen without the "
                "distillation set's row weights" + (" (the refit uses them)" if self.refit else ""),
                PellucidWarning,
                stacklevel=4,
            )

    def _fit_learner(self, X, y, w):
        from imodels import RuleFitClassifier, RuleFitRegressor

        cls = RuleFitClassifier if self.task_ == "classification" else RuleFitRegressor
        learner = cls(
            n_estimators=self.n_estimators,
            tree_size=self.tree_size,
            max_rules=self.max_rules,
            memory_par=self.memory_par,
            lin_trim_quantile=0.0,
            lin_standardise=True,
            include_linear=self.include_linear,
            cv=self.cv,
            random_state=self.random_state,
        ).fit(X, y)
        self.refit_ = None
        if self.refit:
            self._refit_on_terms(learner, X, y, w)
        return learner

    # ------------------------------------------------------------------ terms
    def _linear_columns(self, learner) -> tuple[np.ndarray, np.ndarray]:
        """Encoded columns with a non-zero linear weight, and the weights in raw units."""
        n = learner.n_features_
        if not self.include_linear:
            return np.array([], dtype=int), np.array([])
        # Weights on 0.4·x/sd, back to raw units (winsorising is off: trim is the identity).
        scale = np.asarray(learner.friedscale.scale_multipliers, dtype=float)
        raw = np.asarray(learner.coef[:n], dtype=float) * scale
        cols = np.flatnonzero(raw)
        return cols, raw[cols]

    def _design(self, learner, X: np.ndarray) -> np.ndarray:
        """One column per chosen term, as imodels evaluates it: each rule's indicator (its
        own query on the encoded rows), then each linear column."""
        rules = [str(r) for r in learner.rules_without_feature_names_]
        parts = [learner.transform(X, rules)] if rules else []
        cols, _ = self._linear_columns(learner)
        if len(cols):
            parts.append(X[:, cols])
        return np.hstack(parts) if parts else np.zeros((len(X), 0))

    def _refit_on_terms(self, learner, X, y, w) -> None:
        from sklearn.linear_model import LinearRegression, LogisticRegression

        D = self._design(learner, X)
        W = w.sum()
        mu = w @ D / W if D.shape[1] else np.zeros(0)
        sd = np.sqrt(w @ (D - mu) ** 2 / W) if D.shape[1] else np.zeros(0)
        # A term constant on the training rows is part of the intercept.
        kept = np.flatnonzero(sd > 1e-12 * np.maximum(1.0, np.abs(mu)))
        Z = (D[:, kept] - mu[kept]) / sd[kept]
        if self.task_ == "classification":
            est = LogisticRegression(C=1.0 / (self.refit_penalty * W), max_iter=2000, tol=1e-8)
        else:
            est = LinearRegression()
        est.fit(Z if len(kept) else np.zeros((len(y), 1)), y, sample_weight=w)
        coef = np.zeros(D.shape[1])
        b = np.ravel(est.coef_)
        if len(kept):
            coef[kept] = b / sd[kept]
        icpt = float(np.ravel(est.intercept_)[0]) - (float(b @ (mu[kept] / sd[kept])) if len(kept) else 0.0)
        self.refit_ = est
        self.refit_columns_ = kept
        self.refit_mean_, self.refit_scale_ = mu, sd
        self._refit_weights = (coef, icpt)

    def _refit_scores(self, learner, X) -> np.ndarray:
        D = self._design(learner, X)
        kept = self.refit_columns_
        Z = (D[:, kept] - self.refit_mean_[kept]) / self.refit_scale_[kept] if len(kept) else np.zeros((len(X), 1))
        if self.task_ == "classification":
            return self.refit_.decision_function(Z)
        return self.refit_.predict(Z)

    # ------------------------------------------------------------------ read-back
    def _read(self, learner):
        rules = learner.rules_without_feature_names_
        cols, raw = self._linear_columns(learner)
        if self.refit:
            coef, icpt = self._refit_weights
            rule_w, raw = coef[: len(rules)], coef[len(rules) :]
            intercept = np.array([icpt])
        else:
            rule_w = [float(r.args[0]) for r in rules]
            intercept = np.atleast_1d(np.asarray(learner.intercept, dtype=float)).ravel()[:1]
        terms = []
        for r, wt in zip(rules, rule_w):
            conds: list[Condition] = []
            for col, sym, val in rulefit_tests(r):
                conds.extend(self._conditions(col, sym, val))
            terms.append((conds, [float(wt)]))
        linear: list[LinearTerm] = []
        for j, wt in zip(cols, raw):
            c = self.encoder_.columns_[j]
            if c.role == "value":
                linear.append(LinearTerm(c.feature, (float(wt),), self.encoder_.fill_[c.feature], c.kind))
            else:
                # A 0/1 column (category, missing): its weight applies when it is 1.
                terms.append((self._conditions(j, ">", 0.5), [float(wt)]))
        return terms, intercept, linear

    def _reference(self, learner, X):
        c = self._refit_scores(learner, X) if self.refit else learner._predict_continuous_output(X)
        if self.task_ == "classification":
            return self._labels(learner.classes_[(c > 0).astype(int)]), c
        return c, None


# ---------------------------------------------------------------------- FIGS
class FIGS(_RuleEnsemble):
    """FIGS (Tan et al., 2022): a sum of small trees grown greedily together.

    A row's score is the sum of the values of the leaves it reaches, one per tree; per tree
    the largest leaf's value is part of the intercept and every other leaf is a rule adding
    its difference, so the model has exactly as many rules as FIGS has splits. Categorical features are split
    as sets of categories and missing values as the training median (each rule says where
    they go). Regression: the sum is the prediction. Classification: FIGS regresses the
    one-hot class indicators and the probabilities are the softmax of the summed values
    (labels their argmax), as imodels' ``FIGSClassifier.predict_proba`` gives them; for two
    classes that is the logistic link on ``score(classes_[1]) − score(classes_[0])``, which
    is the score written here, and for more classes the softmax link with one score per class.

    The learner is pellucid's own (:mod:`pellucid.surrogates._figs`): it makes imodels'
    splits in imodels' order with imodels' leaf values (the tests compare the two on the same
    rows), several times faster, and since a leaf's value never changes once made, the fit
    at ``max_rules=k`` is the first ``k`` splits of any larger fit (``size_path``): the
    frontier fits once per training view. Ties between equally good splits go to the first
    column, where imodels draws a random order.

    Parameters
    ----------
    max_rules : int
        Most splits over all trees, which is the most rules.
    max_trees : int, optional
        Most trees in the sum.
    max_depth : int, optional
        Most levels of splits in a tree (``max_depth=1``: stumps). imodels counts the levels
        of its first tree differently and can grow it one level deeper.
    min_impurity_decrease : float
        A split must lower the weighted squared error by at least this much.
    random_state : int, optional
        Taken for the frontier's sake, as every candidate takes one; the fit is deterministic
        and does not use it.
    """

    name = "figs"
    default = True
    size_param = "max_rules"
    size_path = True
    _learner_name = "the FIGS learner"

    _parameter_constraints: dict[str, list[Any]] = {
        "max_rules": [Interval(Integral, 1, None, closed="left")],
        "max_trees": [Interval(Integral, 1, None, closed="left"), None],
        "max_depth": [Interval(Integral, 1, None, closed="left"), None],
        "min_impurity_decrease": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        max_rules: int = 12,
        max_trees: int | None = None,
        max_depth: int | None = None,
        min_impurity_decrease: float = 0.0,
        random_state: int | None = 0,
    ) -> None:
        self.max_rules = max_rules
        self.max_trees = max_trees
        self.max_depth = max_depth
        self.min_impurity_decrease = min_impurity_decrease
        self.random_state = random_state

    def _fit_learner(self, X, y, w):
        return FigsLearner(self.max_rules, self.max_trees, self.max_depth, self.min_impurity_decrease,
                           classification=self.task_ == "classification").fit(X, y, w)

    def _prefix_learner(self, learner: FigsLearner) -> FigsLearner:
        return learner.prefix(self.max_rules)

    def _read(self, learner):
        classification = self.task_ == "classification"
        if classification:
            pos = {int(c): j for j, c in enumerate(learner.classes_)}
            # Learner columns in the order of the classes present (what _to_class_columns expects).
            perm = np.array([pos[int(c)] for c in self.present_classes_])
        terms = []
        n_leaves = []
        width = 1 if not classification or len(self.classes_) == 2 else len(self.present_classes_)
        intercept = np.zeros(width)
        for root in learner.trees_:
            stack = [(root, ())]
            leaves = []
            while stack:
                node, conds = stack.pop()
                if node.left is None:
                    v = np.asarray(node.value, dtype=float).ravel()
                    if classification:
                        v = v[perm]
                        v = np.array([v[1] - v[0]]) if len(self.classes_) == 2 else v
                    leaves.append((conds, v, node.n_rows))
                    continue
                left, right = self._tree_split(int(node.feature), float(node.threshold), float32=False)
                stack.append((node.right, conds + right))
                stack.append((node.left, conds + left))
            n_leaves.append(len(leaves))
            # Every row reaches exactly one leaf of each tree: the largest leaf's value goes
            # into the intercept and every other leaf adds its difference, so a tree with s
            # splits is s rules and the model has as many rules as FIGS counts splits.
            base = max(range(len(leaves)), key=lambda i: leaves[i][2])
            intercept = intercept + leaves[base][1]
            terms.extend((c, v - leaves[base][1]) for i, (c, v, _) in enumerate(leaves) if i != base)
        self.n_leaves_ = n_leaves
        return terms, intercept, []

    def _reference(self, learner, X):
        if self.task_ != "classification":
            return learner.predict(X)[:, 0], None
        sums = learner.predict(X)
        labels = self._labels(learner.classes_[np.argmax(sums, axis=1)])
        pos = {int(c): j for j, c in enumerate(learner.classes_)}
        sums = sums[:, [pos[int(c)] for c in self.present_classes_]]
        scores = sums[:, 1] - sums[:, 0] if len(self.classes_) == 2 else sums
        return labels, scores

    def complexity(self) -> dict[str, Any]:
        out = super().complexity()
        if self.estimator_ is not None:
            out["n_trees"] = len(self.estimator_.trees_)
            out["n_splits"] = int(self.estimator_.complexity_)
        return out


# ---------------------------------------------------------------------- boosted rules
class BoostedRules(_RuleEnsemble):
    """Boosted rules as imodels' ``BoostedRulesClassifier`` fits them: discrete AdaBoost (SAMME)
    of small decision trees, stumps by default. Stumps are fitted in numpy
    (:mod:`pellucid.surrogates._boosted`: scikit-learn's splits and weights, the rows sorted
    once); deeper trees by imodels.

    Each weak tree votes for the class of the leaf a row reaches, with the tree's boosting
    weight; the log-odds (two classes) or class scores (more) are the sums of the votes,
    exactly as scikit-learn's ``decision_function`` and ``predict_proba`` compute them. Per
    tree, the vote of its largest leaf goes into the intercept and every other leaf is a
    rule adding the difference, so a stump is one rule. Rules that come out the same are
    summed. Splits are read back with the float32 rounding scikit-learn's trees apply
    (:func:`float32_split`), so the rules reproduce the trees on any row, not only on the
    training rows.

    No regression: imodels' ``BoostedRulesRegressor`` is AdaBoost.R2, whose prediction is
    the weighted *median* of its trees' values, not a sum; no additive model reproduces it.

    Parameters
    ----------
    n_estimators : int
        Boosting rounds, so at most this many rules (with ``max_depth=1``).
    max_depth : int
        Depth of each weak tree; a tree of depth d gives up to 2^d − 1 rules.
    learning_rate : float
        Shrinks each round's weight.
    random_state : int, optional
        Seed of the weak trees' tie-breaking.
    """

    name = "boosted_rules"
    default = True
    size_param = "n_estimators"
    size_path = True
    _regression = False

    _parameter_constraints: dict[str, list[Any]] = {
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "max_depth": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_estimators: int = 16,
        max_depth: int = 1,
        learning_rate: float = 1.0,
        random_state: int | None = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.random_state = random_state

    def _no_regression(self) -> str:
        return (
            "BoostedRules is for classification: imodels' BoostedRulesRegressor (AdaBoost.R2) predicts the "
            "weighted median of its rules' values, which no sum of rules reproduces. Use FIGS or RuleFit "
            "for a regression."
        )

    @property
    def _learner_name(self) -> str:  # type: ignore[override]
        if self._native():
            return "pellucid's SAMME boosting of stumps"
        return "imodels' BoostedRulesClassifier"

    def _native(self) -> bool:
        # Stumps. The learner's matrix holds no missing value (the encoder fills them), so
        # scikit-learn's own routing of missing values never enters.
        return int(self.max_depth) == 1

    def _fit_learner(self, X, y, w):
        if self._native():
            # imodels' learner split for split, three to five times faster (_boosted.py).
            return StumpBooster(self.n_estimators, self.learning_rate).fit(X, y, sample_weight=w)
        from imodels import BoostedRulesClassifier
        from sklearn.tree import DecisionTreeClassifier

        return BoostedRulesClassifier(
            estimator=DecisionTreeClassifier(max_depth=self.max_depth),
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            random_state=self.random_state,
        ).fit(X, y, sample_weight=w)

    def _prefix_learner(self, learner):
        # AdaBoost adds one tree a round, each seeded in turn from one generator, and nothing
        # about a round depends on how many follow: the first k trees and weights are the
        # k-round fit (its votes are normalised by their own sum).
        k = int(self.n_estimators)
        out = copy.copy(learner)
        out.n_estimators = k
        out.estimators_ = learner.estimators_[:k]
        out.estimator_weights_ = learner.estimator_weights_[:k].copy()
        out.estimator_errors_ = learner.estimator_errors_[:k].copy()
        out.complexity_ = len(out.estimators_)
        return out

    def _votes(self, learner, predicted: np.ndarray, weight: float) -> np.ndarray:
        """SAMME's vote of one weak learner for each predicted class, in score columns:
        log-odds of class 1 (two classes) or per-class scores divided by K − 1 (the
        ``predict_proba`` scaling)."""
        k = len(learner.classes_)
        total = float(np.sum(learner.estimator_weights_))
        onehot = predicted[:, None] == np.asarray(learner.classes_)[None, :]
        cols = np.where(onehot, weight, -weight / (k - 1)) / total
        if k == 2:
            return (cols[:, 1] - cols[:, 0])[:, None]
        return cols / (k - 1)

    def _read(self, learner):
        terms = []
        k = len(learner.classes_)
        intercept = np.zeros(1 if k == 2 else k)
        for est, wt in zip(learner.estimators_, learner.estimator_weights_):
            t = est.tree_
            leaves, paths = [], []
            stack = [(0, ())]
            while stack:
                node, conds = stack.pop()
                left, right = int(t.children_left[node]), int(t.children_right[node])
                if left == -1:
                    leaves.append(node)
                    paths.append(conds)
                    continue
                cl, cr = self._tree_split(int(t.feature[node]), float(t.threshold[node]), float32=True)
                stack.append((right, conds + cr))
                stack.append((left, conds + cl))
            leaves = np.array(leaves)
            predicted = est.classes_[np.argmax(t.value[leaves][:, 0, :], axis=1)]
            votes = self._votes(learner, predicted, float(wt))
            base = int(np.argmax(t.n_node_samples[leaves]))
            intercept = intercept + votes[base]
            for i, conds in enumerate(paths):
                if i != base and np.any(votes[i] != votes[base]):
                    terms.append((conds, votes[i] - votes[base]))
        return terms, intercept, []

    def _reference(self, learner, X):
        labels = self._labels(learner.predict(X))
        d = learner.decision_function(X)
        k = len(learner.classes_)
        return labels, (d if k == 2 else d / (k - 1))


# ---------------------------------------------------------------------- SLIPPER
class Slipper(_RuleEnsemble):
    """SLIPPER-style boosted rules (Cohen and Singer, 1999) on imodels' ``SlipperClassifier``.

    Each boosting round grows one conjunctive rule that favours class 1 (``classes_[1]``) on
    two thirds of the rows and prunes it on the rest; discrete AdaBoost (SAMME) weighs the
    rules. A rule votes for class 1 where it fires and for class 0 elsewhere, so the log-odds
    are ``intercept + Σ weight · [rule fires]`` with every weight positive. Two classes only
    (imodels' SLIPPER is binary); no regression.

    The rule learner is imodels' with three faults corrected; with them, imodels' SLIPPER on
    the demo credit network stops after two rounds, both taken by its random "default rule",
    and agrees with the network on 58% of held-out rows (always answering the majority class
    would agree on 83%). Corrected: the boosting weights follow the grow/prune split, pruning
    prunes (keeping rules that favour class 1), and there is no random default rule (it
    fired on nearly every row and so voted for class 1 there, the opposite polarity to
    SLIPPER's default rule). Rules are also evaluated with array operations (same result,
    faster).

    The weights are discrete AdaBoost's, not the confidence-rated weights of the SLIPPER
    paper (where a rule abstains where it does not fire): that is how imodels combines the
    rules, and what the surrogate reproduces.

    Parameters
    ----------
    n_estimators : int
        Boosting rounds: at most this many rules (rounds stop early when a rule is no
        better than chance).
    random_state : int, optional
        Seed of the grow/prune splits.
    """

    name = "slipper"
    size_param = "n_estimators"
    _multiclass = False
    _regression = False
    _learner_name = "imodels' SlipperClassifier"

    _parameter_constraints: dict[str, list[Any]] = {
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, n_estimators: int = 8, random_state: int | None = 0) -> None:
        self.n_estimators = n_estimators
        self.random_state = random_state

    def _no_regression(self) -> str:
        return (
            "Slipper is for two classes: SLIPPER learns rules for one class against the other; "
            "use FIGS or RuleFit for a regression"
        )

    def _no_multiclass(self, k: int) -> str:
        return (
            f"Slipper handles two classes; the network has {k} (imodels' SlipperClassifier is binary). "
            "Use FIGS or BoostedRules, which have a multiclass form."
        )

    def _fit_learner(self, X, y, w):
        from imodels import SlipperClassifier

        from ._learners import SlipperRule

        learner = SlipperClassifier(n_estimators=self.n_estimators, random_state=self.random_state)
        learner.estimator = SlipperRule()
        return learner.fit(X, y, sample_weight=w / w.sum())

    def _read(self, learner):
        total = float(np.sum(learner.estimator_weights_))
        terms = []
        intercept = 0.0
        for est, wt in zip(learner.estimators_, learner.estimator_weights_):
            # SAMME, two classes: log-odds += 2w/W where the rule fires, −2w/W elsewhere.
            intercept -= 2 * float(wt) / total
            conds: list[Condition] = []
            for col, op, pivot in slipper_tests(est.rule):
                conds.extend(self._conditions(col, op, pivot))
            terms.append((conds, [4 * float(wt) / total]))
        return terms, np.array([intercept]), []

    def _reference(self, learner, X):
        return self._labels(learner.predict(X)), learner.decision_function(X)


__all__ = ["RuleFit", "FIGS", "BoostedRules", "Slipper", "float32_split"]
