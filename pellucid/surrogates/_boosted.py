"""Discrete AdaBoost (SAMME) of decision stumps in numpy: the learner behind
:class:`~pellucid.surrogates.BoostedRules` at its default depth of one.

It follows scikit-learn's ``AdaBoostClassifier`` with ``DecisionTreeClassifier(max_depth=1)``
(what imodels' ``BoostedRulesClassifier`` fits) step for step, so that on the same rows it
makes the same stumps with the same boosting weights:

* the sample weights start as the training weights over their sum; each round clips them at
  machine epsilon (a weight that was zero stays zero), fits a stump, and, unless the stump is
  perfect or no better than chance, multiplies the weights of the rows it gets wrong by
  ``exp(learning_rate · (log((1 - err) / err) + log(K - 1)))`` and normalises them;
* a stump is scikit-learn's best split by the Gini criterion on the weighted rows:
  thresholds are midpoints of consecutive distinct float32 values (rows of zero weight take
  no part), the split maximising scikit-learn's proxy of the impurity decrease wins, and a
  node that is pure (or has no split) stays a leaf; a leaf predicts the class of largest
  weight;
* predictions compare the float32 value with the threshold, as scikit-learn's trees do.

What makes it fast: the rows are sorted by every column once, and a round costs one gather
and one cumulative sum per column and class, where scikit-learn sorts every column again in
every round. Ties between equally good splits go to the first column in order (and the first
threshold in it), where scikit-learn draws a random column order; sums are added in the
sorted order, so a split that ties another to the last bits may fall the other way.

The fitted object reads like the scikit-learn ensemble where :class:`BoostedRules` reads it:
``estimators_`` (each with ``tree_`` arrays, ``classes_`` and ``predict``),
``estimator_weights_``, ``estimator_errors_``, ``classes_``, ``decision_function``,
``predict_proba``, ``predict``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._figs import _EPSILON, _FEATURE_THRESHOLD, split_threshold


def _running_sum(a: np.ndarray) -> float:
    return float(np.cumsum(a)[-1]) if len(a) else 0.0


class _Tree:
    """The arrays of a fitted stump, laid out as scikit-learn's ``tree_`` (node 0 the root,
    1 its left child, 2 its right; or the root alone)."""

    def __init__(self, feature: int | None, threshold: float, counts: np.ndarray, n_rows: np.ndarray) -> None:
        if feature is None:
            self.children_left = np.array([-1])
            self.children_right = np.array([-1])
            self.feature = np.array([-2])
            self.threshold = np.array([-2.0])
        else:
            self.children_left = np.array([1, -1, -1])
            self.children_right = np.array([2, -1, -1])
            self.feature = np.array([feature, -2, -2])
            self.threshold = np.array([threshold, -2.0, -2.0])
        self.value = counts[:, None, :]  # (nodes, 1, classes): weighted class counts
        self.n_node_samples = n_rows
        self.node_count = len(n_rows)


class Stump:
    """A fitted depth-1 tree: ``tree_``, ``classes_`` and ``predict``."""

    def __init__(self, tree: _Tree, classes: np.ndarray) -> None:
        self.tree_ = tree
        self.classes_ = classes

    def predict(self, X: np.ndarray) -> np.ndarray:
        t = self.tree_
        counts = t.value[:, 0, :]
        if t.node_count == 1:
            return np.full(len(X), self.classes_[int(np.argmax(counts[0]))])
        x = np.asarray(X, dtype=np.float32)[:, int(t.feature[0])].astype(np.float64)
        left = x <= float(t.threshold[0])
        return np.where(left, self.classes_[int(np.argmax(counts[1]))], self.classes_[int(np.argmax(counts[2]))])


@dataclass
class _Sorted:
    """What every round of a fit reads: the rows of non-zero weight (``keep``, and as a mask
    ``kept``), their indices sorted by each column (``order``, columns × rows) with the sorted
    float32 values (``xs``), where a split may fall (``between``), which sorted position holds
    each class (``of_class``), and the work arrays of a round (``work``: fresh arrays of this
    size every round cost more in page faults than the arithmetic)."""

    codes: np.ndarray
    keep: np.ndarray
    kept: np.ndarray
    order: np.ndarray
    xs: np.ndarray
    between: np.ndarray
    of_class: list[np.ndarray]
    work: dict[str, np.ndarray]

    @classmethod
    def of(cls, X32: np.ndarray, codes: np.ndarray, zero: np.ndarray, k: int) -> "_Sorted":
        keep = np.flatnonzero(~zero)  # scikit-learn's tree leaves rows of zero weight out
        # (columns, rows): row indices sorted by each column's float32 value, a column a row.
        order = np.ascontiguousarray(keep[np.argsort(X32[keep], axis=0, kind="stable")].T)
        xs = np.take_along_axis(X32.T, order, axis=1)
        d, m = order.shape
        work = {name: np.empty((d, m)) for name in ("ws", "part", "cum", "cum_c")}
        work.update({name: np.empty((d, max(m - 1, 0))) for name in ("right", "sq_left", "sq_right", "t")})
        # Positions p (1..m-1) where a split may fall: between distinct float32 values, compared
        # in float32 as scikit-learn's splitter does.
        return cls(codes, keep, ~zero, order, xs, xs[:, 1:] > xs[:, :-1] + _FEATURE_THRESHOLD,
                   [codes[order] == c for c in range(k)], work)


class StumpBooster:
    """SAMME boosting of decision stumps (see the module's docstring)."""

    def __init__(self, n_estimators: int = 16, learning_rate: float = 1.0) -> None:
        self.n_estimators = int(n_estimators)
        self.learning_rate = float(learning_rate)

    # ------------------------------------------------------------------ fit
    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> "StumpBooster":
        X32 = np.asarray(X, dtype=np.float32)
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        self.n_classes_ = k = len(self.classes_)
        codes = np.searchsorted(self.classes_, y)
        n, d = X32.shape
        sw = np.ones(n) if sample_weight is None else np.array(sample_weight, dtype=np.float64, copy=True)
        sw /= sw.sum()
        zero = sw == 0.0
        rows = _Sorted.of(X32, codes, zero, k)
        self.estimators_: list[Stump] = []
        self.estimator_weights_ = np.zeros(self.n_estimators, dtype=np.float64)
        self.estimator_errors_ = np.ones(self.n_estimators, dtype=np.float64)
        eps = np.finfo(sw.dtype).eps
        for i in range(self.n_estimators):
            sw = np.clip(sw, a_min=eps, a_max=None)
            sw[zero] = 0.0
            stump = self._stump(rows, sw)
            self.estimators_.append(stump)
            incorrect = stump.predict(X32) != y
            error = np.mean(np.average(incorrect, weights=sw, axis=0))
            if error <= 0:
                self.estimator_weights_[i], self.estimator_errors_[i] = 1.0, 0.0
                break
            if error >= 1.0 - (1.0 / k):
                self.estimators_.pop(-1)
                if not self.estimators_:
                    raise ValueError("BaseClassifier in AdaBoostClassifier ensemble is worse than random, ensemble "
                                     "can not be fit.")
                break
            weight = self.learning_rate * (np.log((1.0 - error) / error) + np.log(k - 1.0))
            if i != self.n_estimators - 1:
                with np.errstate(divide="ignore"):  # a zero weight: log 0 = -inf, and exp(-inf) = 0 again
                    sw = np.exp(np.log(sw) + weight * incorrect * (sw > 0))
            self.estimator_weights_[i], self.estimator_errors_[i] = weight, error
            total = np.sum(sw)
            if not np.isfinite(total) or total <= 0:
                break
            if i < self.n_estimators - 1:
                sw /= total
        self.complexity_ = len(self.estimators_)
        return self

    def _stump(self, rows: _Sorted, sw: np.ndarray) -> Stump:
        k = self.n_classes_
        codes, order, xs, between = rows.codes, rows.order, rows.xs, rows.between
        wk = sw[rows.keep]
        # Sums taken in row order, one row after another, as scikit-learn's criterion takes them.
        counts = np.array([_running_sum(wk[codes[rows.keep] == c]) for c in range(k)])
        total = _running_sum(wk)
        d, m = order.shape
        root = _Tree(None, 0.0, counts[None, :], np.array([m]))
        impurity = 1.0 - float(np.sum(counts * counts)) / (total * total)
        if m < 2 or d == 0 or impurity <= _EPSILON or not between.any():
            return Stump(root, self.classes_)
        buf = rows.work
        ws, part = buf["ws"], buf["part"]
        np.take(sw, order, out=ws)  # (columns, rows) in sorted order
        np.cumsum(ws, axis=1, out=buf["cum"])
        left_w = buf["cum"][:, :-1]  # weight left of position p = 1..m-1
        right_w = np.subtract(total, left_w, out=buf["right"])
        sq_left, sq_right, t = buf["sq_left"], buf["sq_right"], buf["t"]
        sq_left.fill(0.0)
        sq_right.fill(0.0)
        for c in range(k):
            np.multiply(ws, rows.of_class[c], out=part)
            np.cumsum(part, axis=1, out=buf["cum_c"])
            lc = buf["cum_c"][:, :-1]
            np.subtract(counts[c], lc, out=t)  # the class's weight right of the position
            np.multiply(t, t, out=t)
            sq_right += t
            np.multiply(lc, lc, out=t)
            sq_left += t
        # scikit-learn's proxy of the impurity decrease: - w_r · gini_r - w_l · gini_l.
        with np.errstate(divide="ignore", invalid="ignore"):
            sq_right /= np.multiply(right_w, right_w, out=t)
            sq_left /= np.multiply(left_w, left_w, out=t)
            np.subtract(1.0, sq_right, out=sq_right)
            np.subtract(1.0, sq_left, out=sq_left)
            sq_right *= right_w
            sq_left *= left_w
            proxy = np.negative(sq_right, out=sq_right)
            proxy -= sq_left
        proxy[~between] = -np.inf
        flat = int(np.argmax(proxy))  # the first best: column by column, threshold by threshold
        j, p = divmod(flat, m - 1)
        threshold = split_threshold(float(xs[j, p]), float(xs[j, p + 1]))
        left = np.zeros(len(sw), dtype=bool)
        left[order[j, : p + 1]] = True  # rows of non-zero weight only
        right = rows.kept & ~left
        node_counts = np.vstack([counts,
                                 [sw[left & (codes == c)].sum() for c in range(k)],
                                 [sw[right & (codes == c)].sum() for c in range(k)]])
        tree = _Tree(j, threshold, node_counts, np.array([m, int(left.sum()), int(right.sum())]))
        return Stump(tree, self.classes_)

    # ------------------------------------------------------------------ predict
    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """scikit-learn's ``AdaBoostClassifier.decision_function`` (SAMME), term for term."""
        k = self.n_classes_
        classes = self.classes_[:, np.newaxis]
        if k == 1:
            return np.zeros((np.asarray(X).shape[0], 1))
        pred = sum(np.where((est.predict(X) == classes).T, w, -1 / (k - 1) * w)
                   for est, w in zip(self.estimators_, self.estimator_weights_))
        pred /= self.estimator_weights_.sum()
        if k == 2:
            pred[:, 0] *= -1
            return pred.sum(axis=1)
        return pred

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """scikit-learn's ``AdaBoostClassifier.predict_proba``: the softmax of the decision
        function over ``K - 1`` (two classes: of ``(-d, d) / 2``)."""
        from sklearn.utils.extmath import softmax

        k = self.n_classes_
        if k == 1:
            return np.ones((np.asarray(X).shape[0], 1))
        decision = self.decision_function(X)
        if k == 2:
            decision = np.vstack([-decision, decision]).T / 2
        else:
            decision /= k - 1
        return softmax(decision, copy=False)

    def predict(self, X: np.ndarray) -> np.ndarray:
        pred = self.decision_function(X)
        if self.n_classes_ == 2:
            return self.classes_.take(pred > 0, axis=0)
        return self.classes_.take(np.argmax(pred, axis=1), axis=0)
