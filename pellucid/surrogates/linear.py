"""Sparse linear surrogates: a few terms in the raw features' own units, and points scorecards.

:class:`SparseLinear` follows an L1 regularisation path (scikit-learn's ``Lasso`` for a
regression, an L1-penalised logistic regression for classes: pellucid's exact solver for two,
scikit-learn's SAGA for more) to the largest model with at
most ``max_terms`` non-zero terms, and reports it per unit of each raw numeric feature, per
category and per missing value. :class:`Scorecard` bins the features, fits the same path on the
bin indicators and turns the weights into the integer points a credit team files.

Both fit on standardised columns (so the penalty treats every column alike) and convert the
weights back exactly: a weight ``b`` on ``(x - mean) / sd`` is ``b / sd`` per unit of ``x``, and
the intercept absorbs ``-b · mean / sd``. The model is an
:class:`~pellucid.extraction.rules.AdditiveRules`: numeric features are
:class:`~pellucid.extraction.rules.LinearTerm` objects (raw units, missing counts as the training
median), categories, missing values and bins are one-condition rules with weights. Predictions
come from these objects, and a fit is refused unless they reproduce scikit-learn's own
predictions on the training rows.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, replace
from numbers import Integral, Real
from typing import Any, Callable

import numpy as np
import pandas as pd
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression

from .._validation import Interval
from ..errors import ParameterError, SurrogateError
from ..extraction.dataset import DistillationSet
from ..extraction.rules import AdditiveRules, Condition, LinearTerm, Rule, _fmt_cat, map_conditions
from ._l1logistic import L1Logistic, l1_logistic_path
from .base import RawEncoder, Surrogate

#: Score given to a class the network never gave on the training rows: never predicted.
_ABSENT = -1e6
#: Log-odds of a model whose training rows all carry one label (no slope can be fitted).
_CERTAIN = 30.0
#: The penalty path spans this many decades, from the first term entering.
_DECADES = 4.0
_SKLEARN_18 = tuple(int(p) for p in sklearn.__version__.split(".")[:2]) >= (1, 8)


def _logistic(C: float, l1: bool, **kw: Any) -> LogisticRegression:
    # scikit-learn 1.8 replaced ``penalty`` by ``l1_ratio``; older versions ignore l1_ratio
    # unless the penalty is 'elasticnet'.
    if _SKLEARN_18:
        pen = {"l1_ratio": 1.0 if l1 else 0.0}
    else:
        pen = {"penalty": "l1" if l1 else "l2"}
    return LogisticRegression(C=C, solver="saga" if l1 else "lbfgs", **pen, **kw)


@dataclass(frozen=True)
class _Column:
    """One column of the design matrix, described in raw terms.

    ``role`` is ``value`` (a numeric feature in its own units, missing counted as ``fill``),
    ``category``, ``missing`` or ``bin`` (0/1: the row satisfies ``conditions``). Columns of one
    ``group`` hold exactly one 1 per row, so with an intercept one of them is redundant.
    """

    feature: str
    role: str
    term: str
    kind: str
    conditions: tuple[Condition, ...] = ()
    group: str | None = None
    fill: float = math.nan

    def text(self) -> str:
        if self.role == "value":
            return self.feature
        return Rule(self.conditions, None).condition_text()




class _L1Additive(Surrogate):
    """An L1 path on standardised columns, a refit on the chosen support, and the read-back
    of its weights in raw units. Subclasses build the design columns."""

    size_param = "max_terms"

    max_terms: int
    refit: bool
    refit_penalty: float
    path_points: int
    max_iter: int
    tol: float
    random_state: int | None

    # ------------------------------------------------------------------ design
    def _design(self, train: DistillationSet) -> tuple[list[_Column], np.ndarray]:
        raise NotImplementedError

    def _encode(self, rows: pd.DataFrame) -> np.ndarray:
        """The design matrix of canonical rows, every column."""
        raise NotImplementedError

    def _map_conditions(self, fn: Callable[[Condition], Condition]) -> None:
        # The design columns' conditions too: design_matrix reads rows through them.
        super()._map_conditions(fn)
        self.columns_ = [replace(c, conditions=tuple(fn(x) for x in c.conditions)) for c in self.columns_]

    def design_matrix(self, X: pd.DataFrame, standardised: bool = True) -> np.ndarray:
        """The columns ``estimator_`` sees, for raw rows: the design columns the model uses,
        standardised with the training means and standard deviations (``standardised=False``:
        as 0/1 indicators and raw values). ``estimator_.predict(design_matrix(X))`` is
        scikit-learn's prediction, which the surrogate's own equals."""
        rows = self._rows(X)
        cols = self.fit_columns_
        M = self._encode(rows)[:, cols]
        return (M - self.mean_[cols]) / self.scale_[cols] if standardised else M

    # ------------------------------------------------------------------ the path
    def _fit_linear(self, train: DistillationSet) -> np.ndarray | None:
        """Fit and read back; sets ``columns_``, ``coef_`` (raw, one row per column),
        ``intercept_``, ``estimator_``, ``path_`` and the standardisation. Returns the
        standardised training columns the estimator saw (None without an estimator)."""
        cols, X = self._design(train)
        w = np.asarray(train.weights, dtype=float)
        classification = train.task == "classification"
        y = train.outputs.argmax(axis=1) if classification else np.asarray(train.outputs, dtype=float)
        W = w.sum()
        mu = w @ X / W
        sd = np.sqrt(w @ (X - mu) ** 2 / W)
        # Columns constant on the training rows carry nothing a slope could use.
        kept = np.flatnonzero(sd > 1e-12 * np.maximum(1.0, np.abs(mu)))
        Z = (X[:, kept] - mu[kept]) / sd[kept]
        self.columns_, self.mean_, self.scale_, self.kept_ = cols, mu, sd, kept
        n_classes = len(self.classes_) if classification else 1
        present = np.unique(y) if classification else None

        est, support, path = None, np.zeros(len(kept), dtype=bool), []
        if len(kept) and (not classification or len(present) >= 2):
            est, support, path = self._path(Z, y, w, classification)
        self.path_ = path
        used = np.flatnonzero(support)
        if est is not None and self.refit and len(used):
            used = self._drop_references(used, np.abs(np.atleast_2d(est.coef_)).max(axis=0), kept)
            est = self._refit(Z[:, used], y, w, classification)
        elif est is not None:
            used = np.arange(len(kept))
        self.estimator_ = est
        self.fit_columns_ = kept[used]  # design columns the estimator sees, in its order
        coef_z, b_z = self._estimator_weights(est, len(used), y, w, classification)
        # Back to raw units: b·(x - mu)/sd = (b/sd)·x - b·mu/sd.
        cols_idx = kept[used]
        raw = np.zeros((len(cols), coef_z.shape[1]))
        raw[cols_idx] = coef_z / sd[cols_idx, None]
        intercept = b_z - (coef_z * (mu[cols_idx] / sd[cols_idx])[:, None]).sum(axis=0)
        if classification:
            raw, intercept = self._class_columns(raw, intercept, present, n_classes)
        self.coef_, self.intercept_ = raw, intercept
        return Z[:, used] if est is not None else None

    def _path(self, Z: np.ndarray, y: np.ndarray, w: np.ndarray, classification: bool):
        W = w.sum()
        p = Z.shape[1]
        if classification:
            present = np.unique(y)
            Y = (y[:, None] == present[None, :]).astype(float)
            # Where the first weight leaves zero: the gradient of the loss at the
            # intercept-only model (scikit-learn minimises C·Σ wᵢ·lossᵢ + |b|₁).
            G = Z.T @ (w[:, None] * (w @ Y / W - Y))
            gmax = float(np.abs(G[:, 1:] if len(present) == 2 else G).max())
            if gmax <= 0:
                return None, np.zeros(p, dtype=bool), []
            grid = (0.99 / gmax) * np.logspace(0.0, _DECADES, self.path_points)
            key = "C"
            if len(present) == 2:
                # Two classes: each point solved to optimality (pellucid's proximal Newton).
                point = l1_logistic_path(Z, (y == present[1]).astype(float), w, present)
            else:
                est = _logistic(grid[0], True, warm_start=True, tol=self.tol, max_iter=self.max_iter,
                                random_state=self.random_state)
                point = self._sklearn_point(est, key, Z, y, w)
        else:
            yc = y - (w @ y) / W
            gmax = float(np.abs(Z.T @ (w * yc)).max() / W)
            if gmax <= 0:
                return None, np.zeros(p, dtype=bool), []
            grid = gmax * np.logspace(0.0, -_DECADES, self.path_points)
            est = Lasso(alpha=grid[0], warm_start=True, tol=self.tol, max_iter=self.max_iter,
                        random_state=self.random_state)
            key = "alpha"
            point = self._sklearn_point(est, key, Z, y, w)
        best, best_k, best_nz, over, path = None, -1, None, 0, []
        for g in grid:
            est = point(float(g))
            nz = np.abs(np.atleast_2d(est.coef_)).max(axis=0) > 0
            k = int(nz.sum())
            path.append({key: float(g), "n_terms": k})
            if k <= self.max_terms:
                over = 0
                if k >= best_k:  # the largest model; at a tie the least penalised
                    best, best_k, best_nz = copy.deepcopy(est), k, nz
                if k == p and self.refit:
                    break  # every column is in: going on changes only the shrinkage
            else:
                over += 1
                if over >= 3:
                    break
        return best, best_nz, path

    @staticmethod
    def _sklearn_point(est: Any, key: str, Z: np.ndarray, y: np.ndarray, w: np.ndarray) -> Callable[[float], Any]:
        """The path's point at a penalty from a warm-started scikit-learn estimator."""

        def at(g: float) -> Any:
            est.set_params(**{key: g})
            with warnings.catch_warnings():
                # Points along the path need not be polished: only the support is kept, or
                # the last point within budget, which is refit or reported as it is.
                warnings.simplefilter("ignore", ConvergenceWarning)
                return est.fit(Z, y, sample_weight=w)

        return at

    def _drop_references(self, used: np.ndarray, strength: np.ndarray, kept: np.ndarray) -> np.ndarray:
        """When every column of a group (all categories and missing of a feature, all bins) is
        in the support, drop the one the L1 fit weighted least: with an intercept the group
        is redundant, and the dropped column becomes the reference the others are read
        against."""
        groups: dict[str, list[int]] = {}
        for i, c in enumerate(self.columns_):
            if c.group is not None:
                groups.setdefault(c.group, []).append(i)
        in_support = set(kept[used].tolist())
        drop: set[int] = set()
        pos = {int(j): i for i, j in enumerate(kept)}
        for members in groups.values():
            # A column constant on the training rows (a category never seen) is no part of it.
            members = [m for m in members if m in pos]
            if len(members) > 1 and all(m in in_support for m in members):
                weakest = min(members, key=lambda m: (strength[pos[m]], m))
                drop.add(weakest)
        return np.array([u for u in used if int(kept[u]) not in drop], dtype=int)

    def _refit(self, Zs: np.ndarray, y: np.ndarray, w: np.ndarray, classification: bool):
        if classification:
            # A light ridge: the network's labels are often (nearly) separable by the chosen
            # columns, where an unpenalised logistic fit has no finite solution.
            est = _logistic(1.0 / (self.refit_penalty * w.sum()), False, max_iter=max(self.max_iter, 1000),
                            tol=min(self.tol, 1e-6))
        else:
            est = LinearRegression()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return est.fit(Zs, y, sample_weight=w)

    def _estimator_weights(self, est, n_used: int, y: np.ndarray, w: np.ndarray, classification: bool):
        """Weights on the standardised columns, shape (n_used, n_scores), and intercepts."""
        if est is not None:
            coef = np.atleast_2d(est.coef_).T
            return coef.reshape(n_used, -1), np.atleast_1d(np.asarray(est.intercept_, dtype=float)).copy()
        # Intercept only: the weighted mean, or the class log-odds.
        if not classification:
            return np.zeros((0, 1)), np.array([float(w @ y / w.sum())])
        present = np.unique(y)
        if len(present) < 2:
            return np.zeros((0, 1)), np.array([0.0])
        share = np.array([w[y == c].sum() for c in present]) / w.sum()
        if len(present) == 2:
            return np.zeros((0, 1)), np.array([math.log(share[1] / share[0])])
        return np.zeros((0, len(present))), np.log(share)

    def _class_columns(self, raw, intercept, present, n_classes):
        """Lay the fitted scores out on the network's classes: one log-odds column for two
        classes, one score per class (softmax) for more."""
        p = raw.shape[0]
        if n_classes == 2:
            if len(present) == 2:
                return raw, intercept
            # One label only: a constant model.
            return np.zeros((p, 1)), np.array([_CERTAIN if present[0] == 1 else -_CERTAIN])
        W_ = np.zeros((p, n_classes))
        b = np.full(n_classes, _ABSENT)
        if len(present) == 1:
            b[present[0]] = 0.0
        elif raw.shape[1] == 1:
            # Two classes present: the binary log-odds is the softmax of (0, score).
            W_[:, present[1]] = raw[:, 0]
            b[present[0]], b[present[1]] = 0.0, intercept[0]
        else:
            W_[:, present] = raw
            b[present] = intercept
        return W_, b

    # ------------------------------------------------------------------ checks
    def _learner_name(self) -> str:
        if isinstance(self.estimator_, L1Logistic):
            return "the L1 path's two-class logistic regression"
        return f"scikit-learn's {type(self.estimator_).__name__}"

    def _check_against_estimator(self, rows: pd.DataFrame, Zs: np.ndarray | None) -> None:
        """The additive model must give scikit-learn's scores and labels on the training
        rows (labels only where scikit-learn's own margin is above float rounding); ``Zs``
        is what the estimator saw for them."""
        est = self.estimator_
        if est is None:
            return
        ours = self.rules_.decision_function(rows)
        if self.task_ != "classification":
            self._check_reproduces(rows, est.predict(Zs), self._learner_name())
            return
        d = np.asarray(est.decision_function(Zs), dtype=float)
        present = est.classes_.astype(int)
        if d.ndim == 1:
            mine = ours[:, 0] if ours.shape[1] == 1 else ours[:, present[1]] - ours[:, present[0]]
            margin = np.abs(d)
            d2 = d[:, None]
            mine = mine[:, None]
        else:
            mine = ours[:, present]
            top = np.sort(d, axis=1)
            margin = top[:, -1] - top[:, -2]
            d2 = d
        tol = 1e-6 * (1.0 + float(np.abs(d2).max()))
        err = np.abs(mine - d2).max(axis=1)
        if (err > tol).any():
            i = int(np.argmax(err))
            raise SurrogateError(
                f"{type(self).__name__}: the raw-unit weights give a score of {mine[i]} on training row {i} where "
                f"{self._learner_name()} gives {d2[i]}; refusing to report weights that do not say what the model does"
            )
        sure = margin > 1e-9 * (1.0 + float(np.abs(d2).max()))
        labels = np.asarray(self.classes_, dtype=object)[est.predict(Zs).astype(int)]
        self._check_reproduces(rows[sure].reset_index(drop=True), labels[sure], self._learner_name())

    # ------------------------------------------------------------------ reading
    def _score_names(self) -> list[str]:
        if self.task_ != "classification":
            return ["weight"]
        if len(self.classes_) == 2:
            return ["weight"]
        return [f"weight[{_fmt_cat(c)}]" for c in self.classes_]

    def _outcome(self, w: np.ndarray) -> Any:
        if self.task_ != "classification":
            return float(w[0])
        if len(self.classes_) == 2:
            return self.classes_[1] if w[0] > 0 else self.classes_[0]
        return self.classes_[int(np.argmax(w))]

    def _support_of(self, col: _Column, rows: pd.DataFrame, weights: np.ndarray) -> float:
        m = Rule(col.conditions, None).apply(rows)
        return float(weights[m].sum() / weights.sum())


#: The L1 path's and the refit's parameters, shared by :class:`SparseLinear` and :class:`Scorecard`.
_PATH_CONSTRAINTS: dict[str, list[Any]] = {
    "refit": ["boolean"],
    "refit_penalty": [Interval(Real, 0, None, closed="neither")],
    "path_points": [Interval(Integral, 2, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="neither")],
    "random_state": ["random_state"],
}


class SparseLinear(_L1Additive):
    """An L1-penalised linear model of the network, in raw units.

    Classification: logistic regression on the network's labels (two classes: the log-odds
    of ``classes_[1]``; more: a multinomial softmax with one score per class). Regression: the
    Lasso on the network's outputs. The penalty is decreased along a path until the model
    would have more than ``max_terms`` non-zero terms; the largest model within the budget
    is kept (at equal size, the least penalised one).

    Numeric features enter in their own units (a missing value counts as the training
    median, and a feature with missing values in the training rows also gets an
    ``is missing`` indicator), categorical and ordinal features one indicator per category
    and one for missing. A *term* is one non-zero column: a numeric feature, one category,
    or one missing indicator; a categorical feature with three non-zero categories counts
    three. For more than two classes a column counts once if any class weights it.

    Parameters
    ----------
    max_terms : int
        Most non-zero terms.
    refit : bool
        Refit on the chosen terms without the L1 shrinkage (the *relaxed* lasso): ordinary
        least squares for a regression, logistic regression with a light ridge penalty
        (``refit_penalty``) for classes. L1 shrinks every kept weight towards zero; the refit
        keeps the selection and removes that bias, which is what a reader takes the weights to
        mean. When every category (and missing) of a feature is selected, the one the L1 fit
        weighted least is dropped first and becomes the reference. ``False`` reports the L1
        solution itself.
    refit_penalty : float
        Ridge strength of the classification refit, per unit of (mean) sample weight on
        standardised columns: the refit minimises mean log-loss + ``refit_penalty``/2 · |b|².
    path_points : int
        Penalty values tried, spaced evenly in log over four decades from the one where the
        first term enters.
    max_iter, tol : int, float
        Passed to scikit-learn's solvers along the path (SAGA for three or more classes,
        coordinate descent for a regression). Only the support of each point is used when
        ``refit`` is on, so the tolerance is loose by default; the refit is solved to 1e-6.
        Two classes take neither: each point is solved to optimality by a proximal Newton
        method (``pellucid.surrogates._l1logistic``), so its support is exact.
    random_state : int, optional
        Seed passed to scikit-learn's SAGA solver (three or more classes).

    Attributes
    ----------
    rules_ : AdditiveRules
        The model: a ``LinearTerm`` per numeric feature, one-condition rules for categories
        and missing indicators. Its score is the prediction (regression), the log-odds of
        ``classes_[1]`` (two classes), or one softmax score per class. A class the network
        never gave on the training rows gets the score -1e6 (never predicted); when it gave
        one class only, the model is that constant (log-odds ±30 for two classes).
    coef_ : ndarray of shape (n_columns, n_scores)
        Raw-unit weights of every design column (zeros for unused ones).
    intercept_ : ndarray of shape (n_scores,)
    columns_ : list
        What each design column is (feature, role, category or bin, conditions).
    mean_, scale_ : ndarray of shape (n_columns,)
        The training mean and standard deviation of each design column (sample-weighted):
        the standardisation the path and the refit see.
    fit_columns_ : ndarray of int
        The design columns ``estimator_`` was fitted on, in its order.
    estimator_ : scikit-learn estimator or None
        The fitted model the weights come from (on standardised columns): ``LinearRegression``
        or ``LogisticRegression`` after a refit, the ``Lasso`` / L1 ``LogisticRegression`` of
        the chosen path point without (for two classes pellucid's ``L1Logistic``, which reads
        the same). None when only an intercept could be fitted.
    encoder_ : RawEncoder
        The one-hot encoder of the raw rows.
    path_ : list of dict
        Per penalty tried, its value (``C`` or ``alpha``) and the number of terms.
    """

    name = "sparse_linear"
    size_param = "max_terms"

    _parameter_constraints: dict[str, list[Any]] = {
        "max_terms": [Interval(Integral, 1, None, closed="left")],
        **_PATH_CONSTRAINTS,
    }

    def __init__(
        self,
        max_terms: int = 10,
        refit: bool = True,
        refit_penalty: float = 1e-4,
        path_points: int = 40,
        max_iter: int = 1000,
        tol: float = 1e-3,
        random_state: int | None = 0,
    ) -> None:
        self.max_terms = max_terms
        self.refit = refit
        self.refit_penalty = refit_penalty
        self.path_points = path_points
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _design(self, train: DistillationSet) -> tuple[list[_Column], np.ndarray]:
        enc = RawEncoder("onehot").fit(train.rows, train.schema, weights=train.weights)
        self.encoder_ = enc
        cols = []
        for j, c in enumerate(enc.columns_):
            if c.role == "value":
                cols.append(_Column(c.feature, "value", "per unit", c.kind, fill=enc.fill_[c.feature]))
                continue
            cond = enc.condition(j, ">", 0.5)
            categorical = c.kind in ("categorical", "ordinal")
            term = "missing" if c.role == "missing" else _fmt_cat(c.category)
            cols.append(_Column(c.feature, c.role, term, c.kind, (cond,), c.feature if categorical else None))
        return cols, enc.transform(train.rows)

    def _encode(self, rows: pd.DataFrame) -> np.ndarray:
        return self.encoder_.transform(rows)

    def _fit(self, train: DistillationSet) -> None:
        Zs = self._fit_linear(train)
        rules, weights, linear = [], [], []
        w = np.asarray(train.weights, dtype=float)
        for c, row in zip(self.columns_, self.coef_):
            if not np.any(row != 0):
                continue
            if c.role == "value":
                linear.append(LinearTerm(c.feature, tuple(row), c.fill, c.kind))
            else:
                rules.append(Rule(c.conditions, self._outcome(row), None, self._support_of(c, train.rows, w)))
                weights.append(tuple(row))
        classification = self.task_ == "classification"
        link = "identity" if not classification else ("logistic" if len(self.classes_) == 2 else "softmax")
        self.rules_ = AdditiveRules(
            tuple(rules),
            tuple(weights),
            tuple(self.intercept_),
            tuple(linear),
            link=link,
            task=self.task_,
            classes=None if self.classes_ is None else tuple(self.classes_),
            feature_order=tuple(self.schema_.names),
        )
        self._check_against_estimator(train.rows, Zs)

    def coefficients(self, all_columns: bool = False) -> pd.DataFrame:
        """The weights in raw units, one row per term.

        Parameters
        ----------
        all_columns : bool
            Also list the columns the model does not use (weight 0).

        Returns
        -------
        pandas.DataFrame
            ``feature``; ``term`` (``per unit`` for a numeric feature, the category, or
            ``missing``); ``kind`` (``linear``, ``category``, ``missing``, ``intercept``);
            ``text`` (``income``, ``home = rent``, ``income is missing``); ``weight`` -- added
            to the score per unit of the feature or when the indicator holds (the prediction
            for a regression, the log-odds of ``classes_[1]`` for two classes) -- or one
            ``weight[<class>]`` column per class; and ``standardised`` (``standardised[<class>]``):
            the weight times the column's standard deviation on the training rows, the
            change of the score for one standard deviation, which compares terms measured in
            different units. The first row is the intercept (the score of a row at 0 on every
            numeric feature and in no indicator).
        """
        self._check_fitted()
        names = self._score_names()
        std_names = [n.replace("weight", "standardised", 1) for n in names]
        kinds = {"value": "linear", "category": "category", "missing": "missing"}
        recs = [
            {"feature": "(intercept)", "term": "", "kind": "intercept", "text": "intercept",
             **dict(zip(names, self.intercept_)), **dict(zip(std_names, [np.nan] * len(names)))}
        ]
        for c, row, s in zip(self.columns_, self.coef_, self.scale_):
            if not all_columns and not np.any(row != 0):
                continue
            recs.append(
                {"feature": c.feature, "term": c.term, "kind": kinds[c.role], "text": c.text(),
                 **dict(zip(names, row)), **dict(zip(std_names, row * s))}
            )
        out = pd.DataFrame.from_records(recs, columns=["feature", "term", "kind", "text", *names, *std_names])
        out.attrs["score"] = self._score_meaning()
        return out

    def _score_meaning(self) -> str:
        if self.task_ != "classification":
            return "prediction"
        if len(self.classes_) == 2:
            return f"log-odds of {_fmt_cat(self.classes_[1])}"
        return "softmax score per class"

    def complexity(self) -> dict[str, Any]:
        out = super().complexity()
        out["n_terms"] = self.rules_.n_terms
        out["n_features"] = len({t.feature for t in self.rules_.linear} | {r.conditions[0].feature for r in self.rules_.rules})
        return out


@dataclass(frozen=True)
class ScoreBin:
    """One row of a scorecard: a bin (or category, or missing) of one feature and its points.

    ``conditions`` say which rows fall in the bin (one or two conditions on the feature);
    ``share`` is the share of the (weighted) training rows in it.
    """

    feature: str
    conditions: tuple[Condition, ...]
    points: int
    share: float

    @property
    def text(self) -> str:
        return Rule(self.conditions, None).condition_text()

    def apply(self, frame: pd.DataFrame) -> np.ndarray:
        """Boolean mask of the rows in the bin."""
        return Rule(self.conditions, None).apply(frame)


class Scorecard(_L1Additive):
    """A points scorecard: integer points per bin of each feature, summed to a score.

    Numeric features are cut into up to ``n_bins`` quantile bins (``20 < income <= 40``;
    edges of continuous features rounded to three significant digits), categorical ones have
    one bin per category, and a feature with missing values in the training rows has a
    ``missing`` bin. A feature missing in the data (the schema's table) but never in the
    training rows counts a missing value as its median (numeric) or most frequent category;
    a feature never missing in the data has no bin for a missing value (none occurred): a
    row missing it gets none of its points. Every row with known values falls in exactly one
    bin of every feature.

    An L1 logistic path on the bin indicators keeps at most ``max_terms`` active bins (the
    largest such model on the path; with ``refit``, refit with a light ridge penalty on those
    bins), and the weights become points with the usual PDO scaling:
    ``factor = pdo / ln 2``, ``offset = base_score - factor · ln(base_odds)``, and the score
    ``offset + factor · ln(odds of good)``. The bad (positive) class is ``classes_[1]``, the
    network's second class: **higher points mean lower risk**. A bin's points are
    ``round(-factor · weight)`` and the base points ``round(offset - factor · intercept)``;
    a bin whose weight is zero (L1 set it there, or it rounds to 0) has 0 points: it scores as
    the base does, and serves as the reference of its feature's other bins. (Points are
    relative within a feature: adding a number to every bin of a feature and taking it from
    the base changes no total.)

    Predictions come from the integer points: a row is ``classes_[1]`` (bad) when its total is
    below ``cutoff_ = offset`` (odds 1:1), ``classes_[0]`` otherwise (a total exactly at the
    cutoff is good). The probability of bad is ``1 / (1 + odds of good)`` with ``odds of good
    = base_odds · 2^((total - base_score) / pdo)``. Fidelity is measured on this rounded card.

    Parameters
    ----------
    max_terms : int
        Most bins with non-zero points.
    n_bins : int
        Most quantile bins per numeric feature (fewer where values repeat, as counts do).
    pdo : float
        Points to double the odds (of good).
    base_score : float
        The score at odds of good ``base_odds``.
    base_odds : float
        Odds of good (good:bad) at ``base_score``; 50 means 50:1.
    refit, refit_penalty, path_points, max_iter, tol, random_state
        As for :class:`SparseLinear`.

    Attributes
    ----------
    bins_ : list of ScoreBin
        Every bin of every feature the card uses (zero-point bins included), feature by
        feature in schema order.
    base_points_ : int
    factor_, offset_, cutoff_ : float
    rules_ : AdditiveRules
        The bins with non-zero points as rules, with weights ``-points / factor`` (log-odds of
        ``classes_[1]``), ``scale = -factor`` and ``offset = offset_``, so that
        ``round(scale × weight)`` is each bin's points and ``offset + scale × score`` the total.
    unrounded_rules_ : AdditiveRules
        The fitted model before rounding to points.
    rounding_agreement_ : float
        Share of training rows where the rounded card and the unrounded model agree.
    estimator_, columns_, mean_, scale_, fit_columns_, path_
        As for :class:`SparseLinear`; the design columns are the bin indicators.
    """

    name = "scorecard"
    size_param = "max_terms"
    tasks = ("classification",)
    max_classes = 2

    _parameter_constraints: dict[str, list[Any]] = {
        "max_terms": [Interval(Integral, 1, None, closed="left")],
        "n_bins": [Interval(Integral, 2, None, closed="left")],
        "pdo": [Interval(Real, 0, None, closed="neither")],
        "base_score": [Interval(Real, None, None)],
        "base_odds": [Interval(Real, 0, None, closed="neither")],
        **_PATH_CONSTRAINTS,
    }

    def __init__(
        self,
        max_terms: int = 16,
        n_bins: int = 5,
        pdo: float = 20.0,
        base_score: float = 600.0,
        base_odds: float = 50.0,
        refit: bool = True,
        refit_penalty: float = 1e-4,
        path_points: int = 40,
        max_iter: int = 1000,
        tol: float = 1e-3,
        random_state: int | None = 0,
    ) -> None:
        self.max_terms = max_terms
        self.n_bins = n_bins
        self.pdo = pdo
        self.base_score = base_score
        self.base_odds = base_odds
        self.refit = refit
        self.refit_penalty = refit_penalty
        self.path_points = path_points
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def fit(self, dset: DistillationSet) -> "Scorecard":
        """Fit on the training part of a distillation set of a two-class network.

        Raises
        ------
        ParameterError
            For a regression or a network with more than two classes, or a parameter out of
            range.
        """
        if isinstance(dset, DistillationSet):
            if dset.task != "classification":
                raise ParameterError(
                    "Scorecard needs a two-class classification network (good/bad); this distillation set is a "
                    "regression. Use SparseLinear for a regression"
                )
            if len(dset.classes) != 2:
                raise ParameterError(
                    f"Scorecard needs a two-class network (good/bad); this one has {len(dset.classes)} classes "
                    f"{[_fmt_cat(c) for c in dset.classes]}. Use SparseLinear for a softmax over several classes"
                )
        super().fit(dset)
        return self

    # ------------------------------------------------------------------ bins
    def _edges(self, v: np.ndarray, w: np.ndarray, kind: str) -> list[float]:
        order = np.argsort(v, kind="stable")
        v, cw = v[order], np.cumsum(w[order])
        qs = np.arange(1, self.n_bins) / self.n_bins
        # Weighted inverted-CDF quantiles: every edge is a value the data takes.
        idx = np.minimum(np.searchsorted(cw, qs * cw[-1], side="left"), len(v) - 1)
        edges = v[idx]
        lo, hi = v[0], v[-1]
        if lo < hi:
            # An edge at the largest value would leave its bin above empty: split below it
            # instead (a 0/1 feature that is mostly 1 still gets its two bins).
            below = v[v < hi][-1]
            edges = np.where(edges >= hi, below, edges)
        if kind == "numeric":
            edges = np.array([float(f"{e:.3g}") for e in edges])
        return sorted({float(e) for e in edges if lo <= e < hi})

    def _design(self, train: DistillationSet) -> tuple[list[_Column], np.ndarray]:
        rows, w = train.rows, np.asarray(train.weights, dtype=float)
        cols: list[_Column] = []
        for f in train.schema:
            name, kind = f.name, f.kind.value
            isna = rows[name].isna().to_numpy()
            has_missing = bool(isna.any())
            specs: list[tuple[str, tuple[Condition, ...]]] = []
            if f.is_numeric:
                v = rows[name].to_numpy(dtype="float64", na_value=np.nan)
                known = v[~isna]
                if len(known) == 0:
                    continue
                edges = self._edges(known, w[~isna], kind)
                median = float(np.median(known))
                bounds = [-math.inf, *edges, math.inf]
                for lo, hi in zip(bounds[:-1], bounds[1:]):
                    # A missing value never seen in training counts as the median.
                    miss = not has_missing and lo < median <= hi
                    conds = []
                    if lo > -math.inf:
                        conds.append(Condition(name, ">", lo, miss, kind))
                    if hi < math.inf:
                        conds.append(Condition(name, "<=", hi, miss, kind))
                    if not conds:
                        conds.append(Condition(name, "<=", math.inf, miss, kind))
                    specs.append(("", tuple(conds)))
                if has_missing:
                    specs.append(("missing", (Condition(name, ">", math.inf, True, kind),)))
            else:
                col = rows[name]
                counts = {c: float(w[(col == c).to_numpy()].sum()) for c in f.categories}
                mode = max(f.categories, key=lambda c: counts[c])
                for c in f.categories:
                    miss = not has_missing and c == mode
                    specs.append((_fmt_cat(c), (Condition(name, "in", (c,), miss, kind),)))
                if has_missing:
                    specs.append(("missing", (Condition(name, "in", (), True, kind),)))
            for term, conds in specs:
                cols.append(_Column(name, "bin", term or Rule(conds, None).condition_text(), kind, conds, name))
        self.columns_ = cols
        return cols, self._encode(rows)

    def _encode(self, rows: pd.DataFrame) -> np.ndarray:
        if not self.columns_:
            return np.zeros((len(rows), 0))
        cache: dict = {}
        return np.column_stack([Rule(c.conditions, None).apply(rows, cache) for c in self.columns_]).astype(float)

    # ------------------------------------------------------------------ fit
    def _fit(self, train: DistillationSet) -> None:
        Zs = self._fit_linear(train)
        w = np.asarray(train.weights, dtype=float)
        classes = tuple(self.classes_)
        # The fitted model first, checked against scikit-learn before anything is rounded.
        un_rules, un_weights = [], []
        for c, row in zip(self.columns_, self.coef_):
            if row[0] != 0:
                un_rules.append(Rule(c.conditions, self._outcome(row), None, self._support_of(c, train.rows, w)))
                un_weights.append((float(row[0]),))
        self.unrounded_rules_ = AdditiveRules(
            tuple(un_rules), tuple(un_weights), tuple(self.intercept_), link="logistic",
            task="classification", classes=classes, feature_order=tuple(self.schema_.names),
        )
        self.rules_ = self.unrounded_rules_
        self._check_against_estimator(train.rows, Zs)

        # Points: score = offset + factor · ln(odds of good) = offset - factor · log-odds(bad).
        F = self.pdo / math.log(2.0)
        O = self.base_score - F * math.log(self.base_odds)
        self.factor_, self.offset_, self.cutoff_ = F, O, O
        points = np.array([int(round(-F * row[0])) for row in self.coef_], dtype=np.int64)
        self.base_points_ = int(round(O - F * float(self.intercept_[0])))
        shares = {i: self._support_of(c, train.rows, w) for i, c in enumerate(self.columns_)}
        used = {c.feature for c, p in zip(self.columns_, points) if p != 0}
        self.bins_ = [
            ScoreBin(c.feature, c.conditions, int(p), shares[i])
            for i, (c, p) in enumerate(zip(self.columns_, points))
            if c.feature in used
        ]
        active = [(c, int(p), shares[i]) for i, (c, p) in enumerate(zip(self.columns_, points)) if p != 0]
        self.points_ = np.array([p for _, p, _ in active], dtype=np.int64)
        # A row is bad when offset - total > 0; the millionth of a point sends a total exactly
        # at a whole-number cutoff to good, whatever the float rounding of the sum.
        self.rules_ = AdditiveRules(
            tuple(Rule(c.conditions, classes[1] if p < 0 else classes[0], None, s) for c, p, s in active),
            tuple((-p / F,) for _, p, _ in active),
            ((O - self.base_points_ - 1e-6) / F,),
            link="logistic",
            task="classification",
            classes=classes,
            scale=-F,
            offset=O,
            feature_order=tuple(self.schema_.names),
        )
        total = self._total(train.rows)
        expected = np.where(total < self.cutoff_, classes[1], classes[0]).astype(object)
        self._check_reproduces(train.rows, expected, "the points table")
        self.rounding_agreement_ = float(
            np.mean(self.rules_.predict(train.rows) == self.unrounded_rules_.predict(train.rows))
        )

    def _map_conditions(self, fn: Callable[[Condition], Condition]) -> None:
        # The bins listed and the unrounded model state the same tests as the card's rules.
        super()._map_conditions(fn)
        self.bins_ = [replace(b, conditions=tuple(fn(x) for x in b.conditions)) for b in self.bins_]
        self.unrounded_rules_ = map_conditions(self.unrounded_rules_, fn)

    def _total(self, rows: pd.DataFrame) -> np.ndarray:
        cov = self.rules_.coverage_matrix(rows).astype(np.int64)
        return self.base_points_ + cov @ self.points_ if len(self.points_) else np.full(len(rows), self.base_points_)

    # ------------------------------------------------------------------ reading
    def score(self, X: pd.DataFrame) -> np.ndarray:
        """Total points of raw rows (integers; higher is lower risk)."""
        return self._total(self._rows(X))

    def points_table(self) -> pd.DataFrame:
        """The scorecard as filed: the base points, then every bin of every feature used.

        Returns
        -------
        pandas.DataFrame
            ``feature`` (``(base)`` for the base row), ``bin`` (``20 < income <= 40``,
            ``home = rent``, ``income is missing``), ``points`` (integers) and ``share`` (of
            the training rows in the bin). A row's total is the base plus the points of the one
            bin of each feature it falls in; a total below ``cutoff_`` is ``classes_[1]``.
        """
        self._check_fitted()
        recs = [{"feature": "(base)", "bin": "base points", "points": self.base_points_, "share": 1.0}]
        recs += [{"feature": b.feature, "bin": b.text, "points": b.points, "share": b.share} for b in self.bins_]
        out = pd.DataFrame.from_records(recs, columns=["feature", "bin", "points", "share"])
        out["points"] = out["points"].astype(np.int64)
        out.attrs["cutoff"] = self.cutoff_
        out.attrs["bad_class"] = self.classes_[1]
        return out

    def complexity(self) -> dict[str, Any]:
        out = super().complexity()
        out["n_terms"] = self.rules_.n_terms
        out["n_features"] = len({b.feature for b in self.bins_})
        out["n_bins_listed"] = len(self.bins_)
        return out
