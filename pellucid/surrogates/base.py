"""What every surrogate shares: fitting on a DistillationSet, predicting from its rules, and
describing itself for fidelity and reports."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import NotFittedError, ParameterError
from ..extraction.distill import DistillationSet
from ..extraction.rules import RuleList, RuleSet
from ..schema import Kind, Schema


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

    rules_: RuleSet | RuleList
    schema_: Schema
    task_: str
    classes_: np.ndarray | None

    def fit(self, dset: DistillationSet) -> "Surrogate":
        """Fit on the training part of a distillation set (its holdout is never used)."""
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
        self._fit(train)
        return self

    def _fit(self, train: DistillationSet) -> None:
        raise NotImplementedError

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
        return {
            "n_rules": self.rules_.n_rules,
            "n_conditions": self.rules_.n_conditions,
            "max_rule_length": max(lengths, default=0),
            "mean_rule_length": float(np.mean(lengths)) if lengths else 0.0,
        }

    def get_params(self) -> dict[str, Any]:
        import inspect

        sig = inspect.signature(type(self).__init__)
        return {p: getattr(self, p) for p in sig.parameters if p != "self"}

    def describe(self) -> dict[str, Any]:
        self._check_fitted()
        return {"name": self.name, "type": type(self).__name__, "params": _jsonable(self.get_params())}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def _jsonable(d: dict) -> dict:
    return {k: (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v)) for k, v in d.items()}


class CategoryOrderEncoder:
    """Raw canonical rows to the float matrix CART splits on, reversibly.

    Numeric kinds pass through (missing values stay NaN: scikit-learn's trees route them and
    record where). A categorical feature becomes integer codes ordered by the mean network
    score of its categories, so that a threshold on the codes is a split into two sets of
    categories; for two classes or a regression this order contains the best such split
    (Breiman et al., 1984). With more classes the score is the projection of the per-category
    class distribution on its first principal component. Ordinal features keep their order.
    """

    def fit(self, rows: pd.DataFrame, schema: Schema, score: np.ndarray, weights: np.ndarray) -> "CategoryOrderEncoder":
        self.schema_ = schema
        self.order_: dict[str, tuple] = {}
        score = np.asarray(score, dtype=float)
        if score.ndim == 2:
            score = self._principal_score(rows, schema, score, weights)
        for f in schema:
            if f.is_numeric:
                continue
            cats = list(f.categories or ())
            if f.kind is Kind.ORDINAL:
                self.order_[f.name] = tuple(cats)
                continue
            col = rows[f.name]
            frame = pd.DataFrame({"c": col.to_numpy(dtype=object), "s": score * weights, "w": weights})
            frame = frame[col.notna().to_numpy()]
            g = frame.groupby("c", sort=False)[["s", "w"]].sum()
            means = (g["s"] / g["w"]).to_dict()
            overall = float(np.average(score, weights=weights)) if weights.sum() > 0 else 0.0
            # Categories absent from the training rows sort as if average; stable on ties.
            keyed = sorted(range(len(cats)), key=lambda i: (means.get(cats[i], overall), i))
            self.order_[f.name] = tuple(cats[i] for i in keyed)
        return self

    @staticmethod
    def _principal_score(rows, schema, proba, weights) -> np.ndarray:
        if proba.shape[1] == 2:
            return proba[:, 1]
        # First principal direction of the class distributions, weighted.
        w = weights / weights.sum()
        centred = proba - w @ proba
        cov = (centred * w[:, None]).T @ centred
        vals, vecs = np.linalg.eigh(cov)
        return proba @ vecs[:, -1]

    def transform(self, rows: pd.DataFrame) -> np.ndarray:
        cols = []
        for f in self.schema_:
            if f.is_numeric:
                cols.append(rows[f.name].to_numpy(dtype="float64", na_value=np.nan))
            else:
                idx = pd.Index(self.order_[f.name], dtype=object).get_indexer(rows[f.name].to_numpy(dtype=object))
                cols.append(np.where(idx < 0, np.nan, idx).astype(float))
        return np.column_stack(cols)

    def split_sets(self, feature: str, threshold: float) -> tuple[tuple, tuple]:
        """The categories on each side of ``code <= threshold``."""
        order = self.order_[feature]
        if not np.isfinite(threshold):
            # A split of known values from missing ones.
            return (order, ()) if threshold > 0 else ((), order)
        k = int(np.floor(threshold)) + 1
        return order[:k], order[k:]
