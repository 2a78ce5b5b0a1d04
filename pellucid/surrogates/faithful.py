"""A tree grown on the network's scores and then tuned for agreement with the network.

:class:`FaithfulTree` is the decision tree pellucid recommends when fidelity is what counts.
Three things set it apart from CART fitted to the network's labels:

1. **It learns from the scores, not only the labels.** The tree is grown (best first, as
   scikit-learn grows a tree with ``max_leaf_nodes``) by squared error on the network's
   log-odds (centred log-probabilities for several classes), so a split that separates rows the
   network is sure about from rows it is unsure about counts, where a split on labels sees only
   which side of 0.5 a row lies. Each leaf then takes the class most of its rows get from the
   network.
2. **It is grown larger than asked, then cut back by agreement.** It grows ``grow`` times the
   budget of leaves and merges, one at a time, the pair of sibling leaves whose merging loses
   the least agreement on the training rows, until the budget is met; sibling leaves that give
   the same class are always merged (the rule list they make says the same thing in fewer
   rules).
3. **Its thresholds are re-fitted for agreement.** Each split's threshold is searched again,
   top down, among the quantiles of the rows that reach it, keeping the subtrees below as they
   are, for the threshold at which the tree agrees with the network on the most training rows
   (weighted); passes repeat while agreement rises. Splitting criteria such as Gini or squared
   error are stand-ins for agreement; this step optimises the measure the report states.

Rows the distillation drew (perturbed, marginal, boundary rows) weigh ``synthetic_weight``
times their own weight: they tell the tree about regions the observed rows leave thin, without
outvoting the rows the model actually meets. With ``synthetic_weight=0`` the tree learns from
the observed rows alone.

For a regression the tree is grown on the outputs and the same pruning and threshold search
minimise the squared error instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.tree import DecisionTreeRegressor

from .._validation import Interval, Options
from ..extraction.dataset import OBSERVED, DistillationSet, network_scores
from .base import CategoryOrderEncoder
from .tree import DecisionTree, best_first_prefix


@dataclass
class GrownTree:
    """A binary tree in scikit-learn's array layout (what :class:`DecisionTree` reads rules
    from), with values a leaf can be re-labelled and a split re-thresholded in."""

    children_left: np.ndarray
    children_right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_go_to_left: np.ndarray
    value: np.ndarray  # (nodes, 1, n_classes) class weights, or (nodes, 1, 1) mean output
    weighted_n_node_samples: np.ndarray

    @property
    def node_count(self) -> int:
        return len(self.children_left)

    @classmethod
    def from_sklearn(cls, tree) -> "GrownTree":
        t = tree.tree_
        n = t.node_count
        miss = getattr(t, "missing_go_to_left", np.zeros(n, dtype=bool))
        return cls(
            t.children_left.copy(), t.children_right.copy(), t.feature.copy(), t.threshold.astype(np.float64),
            np.asarray(miss, dtype=bool).copy(), np.zeros((n, 1, 1)), t.weighted_n_node_samples.copy(),
        )

    def is_leaf(self, node: int) -> bool:
        return self.children_left[node] == -1

    def reachable(self) -> list[int]:
        """Nodes reachable from the root, parents before children."""
        out, stack = [], [0]
        while stack:
            n = stack.pop()
            out.append(n)
            if not self.is_leaf(n):
                stack += [int(self.children_right[n]), int(self.children_left[n])]
        return out

    def leaves(self) -> list[int]:
        return [n for n in self.reachable() if self.is_leaf(n)]

    def goes_left(self, node: int, X: np.ndarray, threshold: float | np.ndarray | None = None) -> np.ndarray:
        """Whether rows of ``X`` (float32, as scikit-learn compares) go left at ``node``; with
        an array of thresholds, one row of answers per threshold."""
        x = X[:, self.feature[node]]
        thr = self.threshold[node] if threshold is None else threshold
        thr = np.asarray(thr, dtype=np.float64)
        left = x[None, :] <= thr[..., None] if thr.ndim else x <= thr
        return np.where(np.isnan(x), bool(self.missing_go_to_left[node]), left)

    def descend(self, X: np.ndarray, start: int = 0) -> np.ndarray:
        """The leaf each row of ``X`` reaches from node ``start``."""
        node = np.full(len(X), start, dtype=np.int64)
        active = np.flatnonzero(self.children_left[node] != -1)
        while active.size:
            groups = node[active]
            for n in np.unique(groups):
                idx = active[groups == n]
                node[idx] = np.where(self.goes_left(int(n), X[idx]), self.children_left[n], self.children_right[n])
            active = active[self.children_left[node[active]] != -1]
        return node

    def depth(self) -> int:
        best, stack = 0, [(0, 0)]
        while stack:
            n, d = stack.pop()
            best = max(best, d)
            if not self.is_leaf(n):
                stack += [(int(self.children_left[n]), d + 1), (int(self.children_right[n]), d + 1)]
        return best


class _Fitted:
    """What :class:`DecisionTree` reads from ``estimator_``: a tree, its classes, its size."""

    def __init__(self, tree: GrownTree, n_classes: int) -> None:
        self.tree_ = tree
        self.classes_ = np.arange(max(n_classes, 1))

    def get_n_leaves(self) -> int:
        return len(self.tree_.leaves())

    def get_depth(self) -> int:
        return self.tree_.depth()


class _Loss:
    """The tree's loss on training rows, leaf by leaf, from per-leaf sums.

    Classification: the weight of rows whose network label is not their leaf's majority
    class (the leaf takes that class). Regression: the weighted squared error around the
    leaf's weighted mean.
    """

    def __init__(self, y: np.ndarray, w: np.ndarray, n_classes: int) -> None:
        self.y, self.w, self.k = y, w, n_classes
        #: Whether every sum of the weights is exact in float64 (multiples of 2**-30 whose
        #: total stays under 2**23, such as unit weights and synthetic rows at 0.5), so that
        #: class weights summed in any order are equal to the last bit.
        scaled = np.asarray(w, dtype=np.float64) * 2.0**30
        self.exact_sums = bool(n_classes) and bool(np.all(scaled == np.round(scaled))) \
            and float(np.abs(w).sum()) < 2.0**23

    def sums(self, leaf: np.ndarray, n_nodes: int, rows: np.ndarray | None = None) -> np.ndarray:
        """Per node: class weights (classification) or (Σw, Σwy, Σwy²)."""
        y = self.y if rows is None else self.y[rows]
        w = self.w if rows is None else self.w[rows]
        if self.k:
            return np.bincount(leaf * self.k + y, weights=w, minlength=n_nodes * self.k).reshape(n_nodes, self.k)
        cols = [np.bincount(leaf, weights=w * y**p, minlength=n_nodes) for p in (0, 1, 2)]
        return np.stack(cols, axis=-1)

    def of(self, sums: np.ndarray) -> np.ndarray:
        """Loss of each node holding ``sums`` (last axis the per-node sums)."""
        if self.k:
            return sums.sum(axis=-1) - sums.max(axis=-1)
        sw, swy, swy2 = sums[..., 0], sums[..., 1], sums[..., 2]
        return swy2 - swy**2 / np.where(sw > 0, sw, 1.0)  # Σw(y - ȳ)²; 0 for an empty node


def candidate_thresholds(x: np.ndarray, current: float, n: int) -> np.ndarray:
    """Up to ``n`` thresholds between the distinct float32 values of ``x`` (at its quantiles),
    and ``current``."""
    v = np.unique(x[~np.isnan(x)])
    if v.size < 2:
        return np.array([current])
    mids = (v[:-1].astype(np.float64) + v[1:].astype(np.float64)) / 2.0
    if mids.size > n:
        mids = mids[np.unique(np.linspace(0, mids.size - 1, n).round().astype(int))]
    return np.unique(np.append(mids, current))


def refine_thresholds(tree: GrownTree, X: np.ndarray, loss: _Loss, *, n_candidates: int = 64,
                      max_passes: int = 3) -> int:
    """Coordinate search: each split's threshold re-chosen, top down, for the least loss of
    the tree on ``X`` with the subtrees below kept; passes repeat while the loss falls.
    Returns the number of thresholds changed."""
    n_nodes = tree.node_count
    changed = 0
    for _ in range(max_passes):
        moved = 0
        leaf_of = tree.descend(X)
        for node in [n for n in tree.reachable() if not tree.is_leaf(n)]:
            # Rows through this node: those whose leaf lies in its subtree.
            sub = _subtree(tree, node)
            rows = np.flatnonzero(np.isin(leaf_of, sub))
            if rows.size < 2:
                continue
            Xr = X[rows]
            to_left = tree.descend(Xr, int(tree.children_left[node]))
            to_right = tree.descend(Xr, int(tree.children_right[node]))
            thr = candidate_thresholds(Xr[:, tree.feature[node]], float(tree.threshold[node]), n_candidates)
            if loss.exact_sums:
                total = _class_losses(tree, node, Xr, loss.y[rows], loss.w[rows], to_left, to_right, thr, loss)
            else:
                go = tree.goes_left(node, Xr, thr)  # (candidates, rows)
                leaves = np.where(go, to_left[None, :], to_right[None, :])
                offsets = (np.arange(len(thr)) * n_nodes)[:, None]
                flat = (leaves + offsets).ravel()
                sums = loss.sums(flat, n_nodes * len(thr), np.tile(rows, len(thr)))
                total = loss.of(sums.reshape(len(thr), n_nodes, -1)).sum(axis=1)
            cur = int(np.flatnonzero(thr == tree.threshold[node])[0])
            best = int(np.argmin(total))
            if total[best] < total[cur] - 1e-12:
                tree.threshold[node] = thr[best]
                leaf_of[rows] = np.where(tree.goes_left(node, Xr), to_left, to_right)
                moved += 1
        changed += moved
        if not moved:
            break
    return changed


def _class_losses(tree: GrownTree, node: int, Xr: np.ndarray, y: np.ndarray, w: np.ndarray, to_left: np.ndarray,
                  to_right: np.ndarray, thr: np.ndarray, loss: _Loss) -> np.ndarray:
    """The tree's loss on rows ``Xr`` (classes ``y``, weights ``w``) with ``node``'s threshold
    at each of ``thr`` (ascending), for a classification loss whose sums are exact
    (:attr:`_Loss.exact_sums`): equal to the last bit to summing each candidate's leaves
    over the rows, at the cost of one pass. A row goes left for every candidate at or
    above its value (a missing value goes the node's missing side for all), so each
    subtree leaf's class weights are running sums over the candidates."""
    x = Xr[:, tree.feature[node]]
    C, k = len(thr), loss.k
    first = np.searchsorted(thr, x, side="left")  # the first candidate a row goes left at
    nan = np.isnan(x)
    first[nan] = 0 if tree.missing_go_to_left[node] else C

    def by_candidate(leaf: np.ndarray) -> np.ndarray:
        _, at = np.unique(leaf, return_inverse=True)
        n = int(at.max()) + 1
        return np.bincount((first * n + at) * k + y, weights=w, minlength=(C + 1) * n * k).reshape(C + 1, n, k)

    left = np.cumsum(by_candidate(to_left), axis=0)[:C]  # rows whose first candidate is at or below
    right = np.cumsum(by_candidate(to_right)[::-1], axis=0)[::-1][1:]  # rows whose first is above
    return loss.of(left).sum(axis=1) + loss.of(right).sum(axis=1)


def _subtree(tree: GrownTree, node: int) -> np.ndarray:
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        out.append(n)
        if not tree.is_leaf(n):
            stack += [int(tree.children_left[n]), int(tree.children_right[n])]
    return np.asarray(out)


def prune_to(tree: GrownTree, X: np.ndarray, loss: _Loss, max_leaves: int) -> int:
    """Merge sibling leaves, the cheapest in loss first, until at most ``max_leaves`` remain;
    merges that cost nothing (siblings that give the same answer) are made whatever the
    count. Returns the number of merges."""
    merges = 0
    # Per node, the sums of the training rows in its leaf; a merged node takes its children's.
    sums = loss.sums(tree.descend(X), tree.node_count)
    while True:
        pairs = [n for n in tree.reachable() if not tree.is_leaf(n)
                 and tree.is_leaf(tree.children_left[n]) and tree.is_leaf(tree.children_right[n])]
        if not pairs:
            return merges
        l, r = tree.children_left[pairs], tree.children_right[pairs]
        cost = loss.of(sums[l] + sums[r]) - loss.of(sums[l]) - loss.of(sums[r])
        i = int(np.argmin(cost))
        n_leaves = len(tree.leaves())
        if n_leaves <= max_leaves and cost[i] > 1e-9 * max(1.0, float(loss.w.sum())):
            return merges
        if n_leaves <= 1:
            return merges
        node = pairs[i]
        sums[node] = sums[l[i]] + sums[r[i]]
        tree.children_left[node] = tree.children_right[node] = -1
        merges += 1


def finish_values(tree: GrownTree, X: np.ndarray, loss: _Loss) -> None:
    """Each node's class weights (or mean output) and weight, from the training rows."""
    n_nodes = tree.node_count
    leaf_of = tree.descend(X)
    sums = loss.sums(leaf_of, n_nodes)
    # Internal nodes: the sum over their leaves (children after parents in reachable()).
    for n in reversed(tree.reachable()):
        if not tree.is_leaf(n):
            sums[n] = sums[tree.children_left[n]] + sums[tree.children_right[n]]
    if loss.k:
        tree.value = sums[:, None, :].astype(np.float64)
        tree.weighted_n_node_samples = sums.sum(axis=1)
    else:
        sw = sums[:, 0]
        tree.value = np.where(sw > 0, sums[:, 1] / np.where(sw > 0, sw, 1), 0.0)[:, None, None]
        tree.weighted_n_node_samples = sw


class FaithfulTree(DecisionTree):
    """A decision tree grown on the network's scores, pruned and re-thresholded for agreement.

    See the module's description for the three steps. The rules read exactly as those of
    :class:`DecisionTree` (raw features, categorical features as sets, missing values routed
    as stated).

    Parameters
    ----------
    max_leaf_nodes : int
        Most leaves (rules).
    fit_to : {"auto", "scores", "labels"}
        Grow on the network's log-odds (``scores``) or on its labels (Gini, as CART);
        ``auto``: scores for two classes and for a regression, labels for more classes (where
        ``benchmarks/rule_frontier.py`` found Gini's splits, which isolate one class at a time,
        more faithful than squared error on ten centred log-probabilities).
    grow : float
        The tree is grown to ``grow × max_leaf_nodes`` leaves before pruning back (1: no
        pruning beyond merging siblings that agree).
    refine : bool
        Re-fit thresholds for agreement after pruning.
    synthetic_weight : float
        Weight of rows the distillation drew, relative to observed rows (0: observed rows only).
    min_samples_leaf : int
        Fewest training rows a leaf may hold while growing.
    max_candidates : int
        Thresholds tried per split in the refinement.
    random_state : int, optional
        Seed for scikit-learn's tie-breaking among equally good splits.
    """

    name = "faithful_tree"
    size_param = "max_leaf_nodes"
    default = True
    _parameter_constraints = {
        "max_leaf_nodes": [Interval(Integral, 2, None, closed="left")],
        "fit_to": [Options(("auto", "scores", "labels"))],
        "grow": [Interval(Real, 1, 8, closed="both")],
        "refine": ["boolean"],
        "synthetic_weight": [Interval(Real, 0, 1, closed="both")],
        "min_samples_leaf": [Interval(Integral, 1, None, closed="left")],
        "max_candidates": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        max_leaf_nodes: int = 16,
        fit_to: str = "auto",
        grow: float = 2.0,
        refine: bool = True,
        synthetic_weight: float = 0.5,
        min_samples_leaf: int = 5,
        max_candidates: int = 64,
        random_state: int | None = 0,
    ) -> None:
        self.max_leaf_nodes = max_leaf_nodes
        self.fit_to = fit_to
        self.grow = grow
        self.refine = refine
        self.synthetic_weight = synthetic_weight
        self.min_samples_leaf = min_samples_leaf
        self.max_candidates = max_candidates
        self.random_state = random_state

    def _fit(self, train: DistillationSet) -> None:
        self._shape(self._grow_faithful(train))

    # Grown best first by scikit-learn, so the tree grown for a smaller budget is a prefix
    # of the one grown for a larger (best_first_prefix); merging and re-thresholding then
    # start from it for each budget.
    def _fit_path(self, train: DistillationSet) -> Any:
        grown = self._grow_faithful(train)
        self._shape(grown)
        return grown

    def _fit_prefix(self, train: DistillationSet, path: Any) -> None:
        self._shape({**path, "estimator": best_first_prefix(path["estimator"], self._grow_to())})

    def _grow_to(self) -> int:
        return max(int(self.max_leaf_nodes), int(round(float(self.grow) * int(self.max_leaf_nodes))))

    def _grow_faithful(self, train: DistillationSet) -> dict[str, Any]:
        """Encode the rows and grow scikit-learn's tree to ``grow`` times the budget."""
        classification = train.task == "classification"
        synthetic = np.asarray(train.source != OBSERVED)
        w = np.asarray(train.weights, dtype=np.float64) * np.where(synthetic, float(self.synthetic_weight), 1.0)
        keep = w > 0
        if not keep.any():
            keep[:] = True
            w = np.ones(len(w))
        rows = train.rows[keep].reset_index(drop=True) if not keep.all() else train.rows
        outputs, w = train.outputs[keep], w[keep]
        encoder = CategoryOrderEncoder().fit(rows, train.schema, outputs, w)
        X = encoder.transform(rows)
        missing_seen = dict(zip(train.schema.names, np.isnan(X).any(axis=0).tolist()))
        n_classes = outputs.shape[1] if classification else 0
        y = outputs.argmax(axis=1) if classification else np.asarray(outputs, dtype=np.float64)
        kw = dict(max_leaf_nodes=self._grow_to(), min_samples_leaf=int(self.min_samples_leaf),
                  random_state=self.random_state)
        fit_to = self.fit_to if self.fit_to != "auto" else ("labels" if n_classes > 2 else "scores")
        if classification and fit_to == "labels":
            from sklearn.tree import DecisionTreeClassifier

            est = DecisionTreeClassifier(**kw).fit(X, y, sample_weight=w)
        else:
            est = DecisionTreeRegressor(**kw).fit(X, network_scores(outputs, train.task), sample_weight=w)
        return {"encoder": encoder, "missing_seen": missing_seen, "X32": X.astype(np.float32), "y": y, "w": w,
                "n_classes": n_classes, "estimator": est}

    def _shape(self, grown: dict[str, Any]) -> None:
        """Merge the grown tree down to the budget, re-threshold it for agreement, read it."""
        self.encoder_, self.missing_seen_ = grown["encoder"], grown["missing_seen"]
        X32 = grown["X32"]  # what the splits compare, as scikit-learn compares them
        tree = GrownTree.from_sklearn(grown["estimator"])
        loss = _Loss(grown["y"], grown["w"], grown["n_classes"])
        self.merged_ = prune_to(tree, X32, loss, int(self.max_leaf_nodes))
        self.refined_ = refine_thresholds(tree, X32, loss, n_candidates=int(self.max_candidates)) if self.refine else 0
        if self.refine:  # a moved threshold can leave siblings that now agree
            self.merged_ += prune_to(tree, X32, loss, int(self.max_leaf_nodes))
        finish_values(tree, X32, loss)
        self.estimator_ = _Fitted(tree, grown["n_classes"])
        self._read_tree()

    def _node_value(self, node: int) -> np.ndarray | float:
        v = self.estimator_.tree_.value[node].ravel()
        if self.task_ != "classification":
            return float(v[0])
        s = v.sum()
        return v / s if s > 0 else v
