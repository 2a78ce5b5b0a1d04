"""FIGS (Tan et al., 2022) grown in numpy: the learner behind :class:`~pellucid.surrogates.FIGS`.

It follows imodels' ``FIGS.fit`` step for step, so that on the same rows it makes the same
splits in the same order with the same leaf values:

* every leaf of every tree, and the root of a tree not yet begun, is a *candidate*; its best
  split is scikit-learn's depth-1 regression stump on the tree's residual (the targets minus
  every other tree's prediction; one-hot class indicators for a classification), weighted;
* each round splits the candidate whose split lowers the weighted squared error most
  (imodels' ``impurity_reduction``), after which every candidate is measured again;
* a leaf's value is the residual mean it had when its parent was split and never changes, so
  the model after *k* splits is exactly the model ``max_rules=k`` fits. :meth:`FigsLearner.prefix`
  reads it off: the frontier fits once at its largest budget.

What makes it fast: the rows of a candidate never change (only its residual does), so each
candidate's rows are sorted by every feature once, when it is made (a child's order is its
parent's, partitioned); a round then costs a gather and a cumulative sum per candidate whose
residual changed. With two classes a round sums one column, not two: the residual's two
columns sum to one number on every row, so the first alone ranks the splits (where the two
columns' sums differ only by rounding, a near-tie may fall to another of the splits that part
the rows alike). Candidate thresholds are scikit-learn's: midpoints of consecutive distinct
float32 values. Ties between equally good splits go to the first feature in column order,
where scikit-learn draws a random feature order.

One difference from imodels, on purpose: ``max_depth`` counts levels of splits (a root split
is level 0, so ``max_depth=2`` gives trees of depth 2). imodels gives a child the depth of
its parent plus two, except for the first tree's root's children (plus one), so its depth
limit lets the first tree grow one level deeper than the others.
"""

from __future__ import annotations

import numpy as np

#: scikit-learn's tree: a split needs consecutive float32 values further apart than this.
_FEATURE_THRESHOLD = np.float32(1e-7)
#: Two classes: how far the residual's two columns may be from one sum, over the rows, for the
#: first column alone to choose the split (they are one sum up to rounding).
_ONE_COLUMN_TOLERANCE = 1e-9
#: scikit-learn's tree: a node whose impurity is at most this is a leaf.
_EPSILON = np.finfo(np.float64).eps


def split_threshold(a: float, b: float) -> float:
    """scikit-learn's threshold between consecutive distinct float32 values ``a < b``: their
    midpoint, or ``a`` where the midpoint rounds to ``b`` (or overflows)."""
    threshold = a / 2.0 + b / 2.0
    return a if threshold == b or not np.isfinite(threshold) else threshold


class FigsNode:
    """A node of one tree: a split (``feature``, ``threshold``, ``left``, ``right``; rows with
    ``X[:, feature] <= threshold`` go left) or a leaf (``left`` and ``right`` None).
    ``value`` is the residual mean over the node's training rows when it was made (a leaf's
    contribution to the sum), ``n_rows`` how many training rows reach it."""

    __slots__ = ("feature", "threshold", "value", "left", "right", "n_rows", "depth")

    def __init__(self, value: np.ndarray, n_rows: int, depth: int) -> None:
        self.feature: int | None = None
        self.threshold: float | None = None
        self.value = value
        self.left: FigsNode | None = None
        self.right: FigsNode | None = None
        self.n_rows = n_rows
        self.depth = depth


class _Candidate:
    """A node that may be split next: its rows sorted by each feature, its tree (-1 for the
    root of a tree not yet begun) and its best split under the tree's current residual.
    What does not depend on the residual (each position's weight on either side, which
    positions fall between distinct values) is worked out once, when the node is made."""

    __slots__ = ("node", "tree", "order", "rows", "inv_left", "inv_right", "blocked",
                 "reduction", "feature", "threshold", "left", "right")

    def __init__(self, node: FigsNode, tree: int, order: np.ndarray, X32: np.ndarray, w: np.ndarray) -> None:
        self.node = node
        self.tree = tree
        self.order = order  # (rows, features): row indices sorted by each feature's float32 value
        self.rows = order[:, 0] if order.shape[1] else np.zeros(0, dtype=order.dtype)
        self.reduction: float | None = None
        self.feature = self.threshold = self.left = self.right = None
        m, d = order.shape
        if m < 2 or d == 0:
            self.blocked = None
            return
        xs = X32[order, np.arange(d)]
        wl = np.cumsum(w[order], axis=0)[:-1]
        wr = wl[-1:] + w[order[-1]] - wl  # the node's weight less the left side's
        # A split goes between consecutive distinct float32 values, with weight on both sides;
        # every other position is blocked.
        self.blocked = ~((xs[1:] > xs[:-1] + _FEATURE_THRESHOLD) & (wl > 0) & (wr > 0))
        with np.errstate(divide="ignore"):
            self.inv_left, self.inv_right = 1.0 / wl, 1.0 / wr


class FigsLearner:
    """Fit FIGS on an encoded matrix; see the module's docstring.

    Parameters
    ----------
    max_rules : int
        Most splits over all trees.
    max_trees : int, optional
        Most trees.
    max_depth : int, optional
        Most levels of splits in a tree.
    min_impurity_decrease : float
        The fit stops when the best split lowers the weighted squared error by less.
    classification : bool
        Regress one-hot indicators of the classes present (``classes_``) or the values.

    Attributes
    ----------
    trees_ : list of FigsNode
        The roots, in the order the trees were begun.
    splits_ : list of (tree index, FigsNode)
        Every split in the order it was made: the first ``k`` are the model ``max_rules=k``
        fits.
    complexity_ : int
        Splits made.
    classes_ : numpy.ndarray
        Classification: the class indices present, one score column each.
    """

    def __init__(self, max_rules: int, max_trees: int | None = None, max_depth: int | None = None,
                 min_impurity_decrease: float = 0.0, classification: bool = True) -> None:
        self.max_rules = int(max_rules)
        self.max_trees = max_trees
        self.max_depth = max_depth
        self.min_impurity_decrease = float(min_impurity_decrease)
        self.classification = classification

    # ------------------------------------------------------------------ fit
    def fit(self, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> "FigsLearner":
        X = np.asarray(X, dtype=float)
        w = np.asarray(w, dtype=float)
        if self.classification:
            self.classes_ = np.unique(y)
            Y = (np.asarray(y)[:, None] == self.classes_[None, :]).astype(float)
        else:
            Y = np.asarray(y, dtype=float).reshape(len(X), -1)
        self._X, self._X32, self._w = X, X.astype(np.float32), w
        n = len(X)
        self.n_outputs_ = Y.shape[1]
        root_order = np.argsort(self._X32, axis=0, kind="stable").astype(np.intp)
        self.trees_: list[FigsNode] = []
        self.splits_: list[tuple[int, FigsNode]] = []
        self.complexity_ = 0
        preds: list[np.ndarray] = []  # each tree's prediction on the training rows

        def residual(tree: int) -> np.ndarray:
            # As imodels computes it: the targets less every other tree, in tree order.
            r = Y.copy()
            for j, p in enumerate(preds):
                if j != tree:
                    r -= p
            return r

        def root_candidate() -> _Candidate:
            return _Candidate(FigsNode(np.zeros(Y.shape[1]), n, 0), -1, root_order, self._X32, w)

        first = root_candidate()
        self._measure(first, *self._residual(Y))
        first.node.value = self._mean(first.rows, Y)
        candidates = [first]
        while candidates:
            best = candidates.pop()  # sorted by reduction: the largest is last
            if best.reduction is None or best.reduction < self.min_impurity_decrease:
                if best.tree == -1 and not self.trees_:
                    self.trees_.append(best.node)  # nothing to split: the mean is the model
                break
            if best.tree == -1 and self.max_trees is not None and len(self.trees_) >= self.max_trees:
                continue
            if self.max_depth is not None and best.node.depth >= self.max_depth:
                continue
            self.complexity_ += 1
            children = self._split(best)
            if best.tree == -1:
                best.tree = len(self.trees_)
                self.trees_.append(best.node)
                preds.append(np.zeros_like(Y))
                candidates.append(root_candidate())
            t = best.tree
            self.splits_.append((t, best.node))
            for c in children:
                c.tree = t
                preds[t][c.rows] = c.node.value
            candidates.extend(children)
            if self.complexity_ >= self.max_rules:
                break
            # Every residual but tree t's has changed: measure those candidates again. Tree
            # t's other leaves keep their split (same rows, same residual).
            residuals: dict[int, tuple] = {}  # the residual, times the weights, and its one column
            kept = []
            for c in candidates:
                if c.tree != t or c in children:
                    if c.tree not in residuals:
                        residuals[c.tree] = self._residual(residual(c.tree))
                    self._measure(c, *residuals[c.tree])
                if c.reduction is not None:
                    kept.append(c)
            candidates = sorted(kept, key=lambda c: c.reduction)
        del self._X, self._X32, self._w
        return self

    def _mean(self, rows: np.ndarray, R: np.ndarray) -> np.ndarray:
        w = self._w[rows]
        return (R[rows] * w[:, None]).sum(axis=0) / w.sum()

    def _residual(self, R: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``R``, ``R`` times the weights, and the first column of that where one column
        decides the split: with two classes the indicators sum to one, so the residual's two
        columns sum to one number on every row (1 for the first tree, 0 for the others: each
        tree's leaf values sum to what its rows' residuals sum to). Then the second column's
        cumulative sums are that number times the weights less the first's, and every
        split's summed squared error is twice the first column's plus one constant: the same
        split wins, found with half the sums."""
        Rw = R * self._w[:, None]
        one = None
        if R.shape[1] == 2:
            total = R[:, 0] + R[:, 1]
            if total.size and float(np.ptp(total)) <= _ONE_COLUMN_TOLERANCE:
                one = np.ascontiguousarray(Rw[:, 0])
        return R, Rw, one

    def _measure(self, c: _Candidate, R: np.ndarray, Rw: np.ndarray, Rw0: np.ndarray | None = None) -> None:
        """Set the candidate's best split under residual ``R`` (``Rw``: times the weights),
        as scikit-learn's stump finds it, or ``reduction`` None where it would not split.
        ``Rw0``: the weighted first column where it alone decides the split
        (:meth:`_residual`)."""
        c.reduction = None
        if c.blocked is None or c.blocked.all():
            return
        rows = c.rows
        w = self._w[rows]
        W = w.sum()
        S = Rw[rows].sum(axis=0)
        impurity = float(np.mean((R[rows] * Rw[rows]).sum(axis=0) / W - (S / W) ** 2))
        if impurity <= _EPSILON:
            return
        if Rw0 is not None:
            SL = np.cumsum(Rw0[c.order[:-1]], axis=0)  # (positions, features)
            SR = S[0] - SL
            proxy = SL * SL * c.inv_left + SR * SR * c.inv_right
        else:
            SL = np.cumsum(Rw[c.order[:-1]], axis=0)  # (positions, features, outputs)
            SR = S - SL
            proxy = np.einsum("mdk,mdk->md", SL, SL) * c.inv_left + np.einsum("mdk,mdk->md", SR, SR) * c.inv_right
        proxy[c.blocked] = -np.inf
        m = len(rows)
        k = int(np.argmax(proxy.T))  # feature-major: the first feature wins a tie, then the first position
        f, p = divmod(k, m - 1)
        o = c.order[:, f]
        threshold = split_threshold(float(self._X32[o[p], f]), float(self._X32[o[p + 1], f]))
        goes_left = self._X[rows, f] <= threshold
        wl = w[goes_left].sum()
        wr = W - wl
        if wl <= 0 or wr <= 0:
            return
        sl = Rw[rows[goes_left]].sum(axis=0)
        sr = S - sl
        c.reduction = float(np.sum(sl * sl / wl + sr * sr / wr - S * S / W) / len(S))
        c.feature, c.threshold = int(f), float(threshold)
        c.left, c.right = sl / wl, sr / wr

    def _split(self, c: _Candidate) -> list[_Candidate]:
        node = c.node
        node.feature, node.threshold = c.feature, c.threshold
        # A child's rows, in each feature's order: the parent's order, partitioned.
        goes_left = self._X[:, c.feature] <= c.threshold
        m, d = c.order.shape
        mask = goes_left[c.order]  # (m, d), the same count of True in every column
        n_left = int(mask[:, 0].sum())
        left_order = c.order.T[mask.T].reshape(d, n_left).T
        right_order = c.order.T[~mask.T].reshape(d, m - n_left).T
        node.left = FigsNode(c.left, n_left, node.depth + 1)
        node.right = FigsNode(c.right, m - n_left, node.depth + 1)
        return [_Candidate(node.left, c.tree, left_order, self._X32, self._w),
                _Candidate(node.right, c.tree, right_order, self._X32, self._w)]

    # ------------------------------------------------------------------ read-off and prediction
    def prefix(self, k: int) -> "FigsLearner":
        """The model after the first ``k`` splits: what ``max_rules=k`` fits on the same rows."""
        out = FigsLearner(k, self.max_trees, self.max_depth, self.min_impurity_decrease, self.classification)
        out.n_outputs_ = self.n_outputs_
        if self.classification:
            out.classes_ = self.classes_
        copies: dict[int, FigsNode] = {}

        def copy(node: FigsNode) -> FigsNode:
            new = FigsNode(node.value, node.n_rows, node.depth)
            copies[id(node)] = new
            return new

        out.trees_ = []
        out.splits_ = []
        if not self.splits_:
            out.trees_ = [copy(r) for r in self.trees_]
        for t, node in self.splits_[:k]:
            if t == len(out.trees_):
                out.trees_.append(copy(node))
            new = copies[id(node)]
            new.feature, new.threshold = node.feature, node.threshold
            new.left, new.right = copy(node.left), copy(node.right)
            out.splits_.append((t, new))
        out.complexity_ = len(out.splits_)
        return out

    def predict(self, X: np.ndarray, by_tree: bool = False) -> np.ndarray:
        """The sum of the trees' leaf values per row, shape (rows, outputs); with ``by_tree``
        each tree's, shape (rows, outputs, trees)."""
        X = np.asarray(X, dtype=float)
        out = np.zeros((len(X), self.n_outputs_, len(self.trees_)))
        for i, root in enumerate(self.trees_):
            stack: list[tuple[FigsNode, np.ndarray]] = [(root, np.arange(len(X)))]
            while stack:
                node, idx = stack.pop()
                if node.left is None:
                    out[idx, :, i] = node.value
                    continue
                left = X[idx, node.feature] <= node.threshold
                stack.append((node.left, idx[left]))
                stack.append((node.right, idx[~left]))
        return out if by_tree else out.sum(axis=-1)

    def labels(self, X: np.ndarray) -> np.ndarray:
        """Classification: the class index of the largest summed score."""
        return self.classes_[np.argmax(self.predict(X), axis=1)]

    def __repr__(self) -> str:
        return f"FigsLearner({self.complexity_} splits, {len(self.trees_)} trees)"


__all__ = ["FigsLearner", "FigsNode"]

