"""A decision-tree surrogate on scikit-learn's CART, read back as rules on raw features."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from .._validation import Interval, Options
from ..extraction.dataset import DistillationSet
from ..extraction.rules import Condition, Rule, RuleSet, merge_conditions
from .base import CategoryOrderEncoder, Surrogate, float32_split


@dataclass(frozen=True)
class TreeNode:
    """One node of the fitted tree, for drawing: internal nodes carry the condition that
    sends rows to the left child (the right child takes its negation)."""

    id: int
    depth: int
    left: int | None
    right: int | None
    condition: Condition | None
    negation: Condition | None
    value: tuple[float, ...] | float
    support: float
    rule_index: int | None


class DecisionTree(Surrogate):
    """CART fitted to the network's labels (or outputs, for regression).

    Categorical features are split as sets of categories without any encoding by the user,
    missing values are routed as scikit-learn's trees route them (each rule says where),
    and the leaves are returned as a :class:`~pellucid.extraction.RuleSet` on raw features.

    Parameters
    ----------
    max_leaf_nodes : int, optional
        Most leaves (rules); the main knob of readability.
    max_depth : int, optional
        Deepest path (longest rule before merging).
    min_samples_leaf : int or float
        Fewest training rows (or share of them) a leaf may hold.
    criterion : str, optional
        scikit-learn's split criterion; ``gini`` / ``squared_error`` by default.
    random_state : int, optional
        Seed for scikit-learn's tie-breaking among equally good splits.
    """

    name = "decision_tree"
    size_param = "max_leaf_nodes"
    default = True
    _parameter_constraints = {
        "max_leaf_nodes": [Interval(Integral, 2, None, closed="left"), None],
        "max_depth": [Interval(Integral, 1, None, closed="left"), None],
        "min_samples_leaf": [Interval(Integral, 1, None, closed="left"), Interval(Real, 0, 1, closed="neither")],
        "criterion": [
            Options(("gini", "entropy", "log_loss", "squared_error", "friedman_mse", "absolute_error", "poisson")),
            None,
        ],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        max_leaf_nodes: int | None = 16,
        max_depth: int | None = None,
        min_samples_leaf: int | float = 1,
        criterion: str | None = None,
        random_state: int | None = 0,
    ) -> None:
        self.max_leaf_nodes = max_leaf_nodes
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.criterion = criterion
        self.random_state = random_state

    def _fit(self, train: DistillationSet) -> None:
        self._grow(train)
        self._finish_tree(train)

    # scikit-learn grows a tree with max_leaf_nodes best first, one split at a time, and
    # numbers the nodes as it makes them: the k-leaf tree is the first k - 1 splits of any
    # larger one (best_first_prefix).
    size_path = True

    def _fit_path(self, train: DistillationSet) -> Any:
        self._fit(train)
        return self

    def _fit_prefix(self, train: DistillationSet, path: Any) -> None:
        self.encoder_, self.missing_seen_ = path.encoder_, path.missing_seen_
        self.estimator_ = best_first_prefix(path.estimator_, int(self.max_leaf_nodes))
        self._finish_tree(train)

    def _grow(self, train: DistillationSet) -> None:
        """Encode the rows and fit scikit-learn's tree (``encoder_``, ``estimator_``)."""
        classification = train.task == "classification"
        score = train.outputs
        self.encoder_ = CategoryOrderEncoder().fit(train.rows, train.schema, score, train.weights)
        X = self.encoder_.transform(train.rows)
        # Features never missing in training: the tree learnt nothing about missing values
        # there, so no rule claims them (such rows fall to the default rule).
        self.missing_seen_ = dict(zip(train.schema.names, np.isnan(X).any(axis=0).tolist()))
        kw = dict(
            max_leaf_nodes=self.max_leaf_nodes,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            random_state=self.random_state,
        )
        if self.criterion is not None:
            kw["criterion"] = self.criterion
        if classification:
            # Class indices, not labels: keeps the tree's class order equal to the network's.
            y = train.outputs.argmax(axis=1)
            self.estimator_ = DecisionTreeClassifier(**kw).fit(X, y, sample_weight=train.weights)
        else:
            self.estimator_ = DecisionTreeRegressor(**kw).fit(X, train.outputs, sample_weight=train.weights)

    def _finish_tree(self, train: DistillationSet) -> None:
        """Read the fitted tree's rules."""
        self._read_tree()

    # ------------------------------------------------------------------ tree -> rules
    def _node_value(self, node: int) -> np.ndarray | float:
        t = self.estimator_.tree_
        v = t.value[node]
        if self.task_ != "classification":
            return float(v.ravel()[0])
        full = np.zeros(len(self.classes_))
        full[self.estimator_.classes_.astype(int)] = v.ravel()
        s = full.sum()
        return full / s if s > 0 else full

    def _split_conditions(self, node: int) -> tuple[Condition, Condition]:
        t = self.estimator_.tree_
        f = self.schema_.features[t.feature[node]]
        thr = float(t.threshold[node])
        # Where scikit-learn sends a missing value at this split (absent on old versions:
        # they refuse NaN, so no row is missing there).
        go_left = bool(getattr(t, "missing_go_to_left", np.zeros(t.node_count, dtype=bool))[node])
        seen = self.missing_seen_[f.name]
        miss_l, miss_r = seen and go_left, seen and not go_left
        kind = f.kind.value
        if f.is_numeric:
            # scikit-learn compares float32(x) <= thr; this float64 test accepts the same rows.
            op, t = float32_split(thr)
            neg = ">" if op == "<=" else ">="
            return Condition(f.name, op, t, miss_l, kind), Condition(f.name, neg, t, miss_r, kind)
        left, right = self.encoder_.split_sets(f.name, thr)
        # Written as the shorter of the set and its complement, as rules are.
        domains = {f.name: f.categories}
        out = []
        for cats, miss in ((left, miss_l), (right, miss_r)):
            raw = Condition(f.name, "in", cats, miss, kind)
            out.append((merge_conditions([raw], domains=domains) or (raw,))[0])
        return out[0], out[1]

    def _read_tree(self) -> None:
        t = self.estimator_.tree_
        total = float(t.weighted_n_node_samples[0])
        order = self.schema_.names
        domains = {f.name: f.categories for f in self.schema_ if f.is_categorical}
        classes = self.classes_ if self.task_ == "classification" else None
        nodes: list[TreeNode] = []
        rules: list[Rule] = []
        rule_of_node: dict[int, int] = {}
        # Depth-first, left before right: rules come out in the order the tree reads.
        stack: list[tuple[int, int, tuple[Condition, ...]]] = [(0, 0, ())]
        pending: dict[int, tuple] = {}
        while stack:
            node, depth, path = stack.pop()
            left, right = int(t.children_left[node]), int(t.children_right[node])
            value = self._node_value(node)
            support = float(t.weighted_n_node_samples[node]) / total
            if left == -1:
                rule_of_node[node] = len(rules)
                rules.append(leaf_rule(merge_conditions(path, order, domains), value, support, classes))
                pending[node] = (depth, None, None, None, None, value, support)
                continue
            cond_l, cond_r = self._split_conditions(node)
            pending[node] = (depth, left, right, cond_l, cond_r, value, support)
            stack.append((right, depth + 1, path + (cond_r,)))
            stack.append((left, depth + 1, path + (cond_l,)))
        for node in sorted(pending):
            depth, left, right, cl, cr, value, support = pending[node]
            nodes.append(
                TreeNode(
                    id=node,
                    depth=depth,
                    left=left,
                    right=right,
                    condition=cl,
                    negation=cr,
                    value=tuple(value) if isinstance(value, np.ndarray) else value,
                    support=support,
                    rule_index=rule_of_node.get(node),
                )
            )
        self.nodes_ = nodes
        root = self._node_value(0)
        default = leaf_rule((), root, 1.0, classes)
        self.rules_ = RuleSet(
            tuple(rules),
            default,
            task=self.task_,
            classes=None if self.classes_ is None else tuple(self.classes_),
            feature_order=tuple(order),
        )

    def complexity(self) -> dict[str, Any]:
        out = super().complexity()
        out["n_leaves"] = int(self.estimator_.get_n_leaves())
        out["depth"] = int(self.estimator_.get_depth())
        return out


def best_first_prefix(estimator: Any, n_leaves: int) -> Any:
    """A copy of a fitted scikit-learn tree cut back to its first ``n_leaves - 1`` splits:
    the tree the same estimator with ``max_leaf_nodes=n_leaves`` grows on the same rows.

    With ``max_leaf_nodes`` scikit-learn grows best first and adds both children of a split
    as it makes it, so split ``j`` (from 0) makes nodes ``2j + 1`` and ``2j + 2``. Nodes
    ``0 .. 2(n_leaves - 1)`` are therefore those of the smaller fit, whose draws of the
    feature order were the same ones in the same order; a node whose children come later is a
    leaf there, with the same value. The estimator itself is returned where it has no more
    leaves than that.
    """
    import copy

    from sklearn.tree._tree import Tree

    t = estimator.tree_
    last = 2 * (int(n_leaves) - 1)
    if t.node_count <= last + 1:
        return estimator
    state = t.__getstate__()
    nodes = state["nodes"][: last + 1].copy()
    cut = nodes["left_child"] > last
    nodes["left_child"][cut] = -1
    nodes["right_child"][cut] = -1
    nodes["feature"][cut] = -2
    nodes["threshold"][cut] = -2.0
    if "missing_go_to_left" in (nodes.dtype.names or ()):
        nodes["missing_go_to_left"][cut] = 0
    depth = np.zeros(last + 1, dtype=np.int64)
    for i in range(last + 1):  # children come after their parent
        if nodes["left_child"][i] != -1:
            depth[nodes["left_child"][i]] = depth[nodes["right_child"][i]] = depth[i] + 1
    tree = Tree(t.n_features, np.asarray(t.n_classes, dtype=np.intp), t.n_outputs)
    tree.__setstate__({"max_depth": int(depth.max()), "node_count": last + 1, "nodes": nodes,
                       "values": state["values"][: last + 1].copy()})
    out = copy.copy(estimator)
    out.tree_ = tree
    out.max_leaf_nodes = int(n_leaves)
    return out


def leaf_rule(conditions: tuple[Condition, ...], value: Any, support: float, classes: Any = None) -> Rule:
    """The rule of a tree's leaf: its class (the most probable of ``classes``) with the leaf's
    probabilities, or, without ``classes`` (a regression), its value."""
    if classes is not None:
        return Rule(conditions, classes[int(np.argmax(value))], tuple(float(p) for p in value), support)
    return Rule(conditions, float(value), None, support)
