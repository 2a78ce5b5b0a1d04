"""Small surrogates found by exhaustive search rather than grown greedily.

CART and FIGS choose each split for its own gain; with two to four rules that is often not
the model that agrees most with the network. Two searches here look at every candidate:

* :class:`OptimalTree` — the tree of depth at most two (a stump, every three-leaf and every
  four-leaf tree) with the smallest training loss: the weighted share of rows on which it
  disagrees with the network's label (classification) or the weighted squared error against
  its output (regression). This is the depth-2 case of optimal decision trees (DL8.5,
  GOSDT), done in closed form with cumulative counts.
* :class:`ExhaustiveRuleList` — an ordered rule list built one rule at a time, each rule
  being the best conjunction of at most two conditions (every pair of features, every pair
  of thresholds, every side of each) for the rows the earlier rules left; the default rule
  takes the rest. Sequential covering, with the exact best rule at each step where imodels'
  greedy rule list takes a stump.

Both search over a grid of candidate thresholds per feature (:func:`candidate_thresholds`)
without a loop over rows: every feature's values are cut into at most ``max_bins + 1`` bins,
and for a pair of features one ``bincount`` gives the class counts (or the sums a squared
error needs) in every cell of the ``bins(j) × bins(k)`` grid; cumulative sums over that grid
give the counts on each side of every pair of thresholds at once. The cost is
``O(p² · (n + bins²))`` for ``p`` features and ``n`` rows.

Both see the matrix of :class:`~pellucid.extraction.encoding.RawEncoder` (missing numeric
values filled with the training median; categories as codes ordered by the network's mean
score, so a threshold on a code is a set of categories) and read every test back with
:meth:`RawEncoder.condition`, which accepts exactly the rows the test accepts, missing values
included; each fit checks that the rules predict what the searched model predicts on the
training rows.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np

from .._validation import Interval
from ..errors import ParameterError
from ..extraction.dataset import DistillationSet
from ..extraction.rules import Condition, Rule, RuleList, RuleSet, merge_conditions
from .base import Surrogate
from .tree import TreeNode, leaf_rule

#: Most leaves a depth-2 tree has.
_MAX_LEAVES = 4


def candidate_thresholds(x: np.ndarray, max_bins: int) -> np.ndarray:
    """Thresholds ``t`` for tests ``x <= t`` on one encoded column.

    Midpoints between consecutive distinct values; where there are more than ``max_bins``
    of them, only those next to the column's ``max_bins`` evenly spaced quantiles (so every
    bin holds about as many rows, and a split can still fall between any two values that
    differ at a quantile).

    Parameters
    ----------
    x : numpy.ndarray
        Finite values of one column.
    max_bins : int
        Most thresholds returned.

    Returns
    -------
    numpy.ndarray
        Sorted, distinct thresholds (empty for a constant column).
    """
    u = np.unique(x)
    if len(u) < 2:
        return np.empty(0)
    mids = (u[:-1] + u[1:]) / 2.0
    # The midpoint can round onto the upper value when the two are adjacent floats; the
    # lower value then separates the same rows.
    mids = np.where(mids < u[1:], mids, u[:-1])
    if len(mids) <= max_bins:
        return mids
    q = np.quantile(x, np.arange(1, max_bins + 1) / (max_bins + 1), method="lower")
    # The threshold just above each quantile value: that value goes left.
    pos = np.searchsorted(u, q, side="left")
    pos = np.clip(pos, 0, len(mids) - 1)
    return np.unique(mids[pos])


class _Loss:
    """Leaf loss from per-cell sums, for classification or regression.

    Each row contributes to ``C`` channels: its weight in its class's channel (classification)
    or ``w, w·y, w·y²`` (regression), and a last channel of 1 (the row count, for
    ``min_samples_leaf``).
    """

    def __init__(self, classification: bool, min_samples_leaf: int) -> None:
        self.classification = classification
        self.min_samples_leaf = min_samples_leaf

    def channels(self, y: np.ndarray, w: np.ndarray, n_classes: int) -> np.ndarray:
        if self.classification:
            ch = np.zeros((len(y), n_classes + 1))
            ch[np.arange(len(y)), y.astype(int)] = w
        else:
            ch = np.column_stack([w, w * y, w * y * y, np.zeros(len(y))])
        ch[:, -1] = 1.0
        return ch

    def __call__(self, s: np.ndarray) -> np.ndarray:
        """Loss of a leaf holding the rows whose channel sums are ``s`` (last axis)."""
        if self.classification:
            v = s[..., :-1]
            loss = v.sum(axis=-1) - v.max(axis=-1)
        else:
            s0, s1, s2 = s[..., 0], s[..., 1], s[..., 2]
            with np.errstate(invalid="ignore", divide="ignore"):
                loss = np.where(s0 > 0, s2 - s1 * s1 / np.where(s0 > 0, s0, 1.0), 0.0)
            loss = np.maximum(loss, 0.0)  # round-off below zero
        # An empty side is no split at all; a side below min_samples_leaf is not allowed.
        too_small = s[..., -1] < max(self.min_samples_leaf, 1)
        return np.where(too_small, np.inf, loss)


class OptimalTree(Surrogate):
    """The tree of depth at most two, with at most ``max_leaf_nodes`` leaves, that agrees
    most with the network on the training rows (exhaustive search, not greedy growth).

    Classification minimises the weighted share of training rows whose label the tree gets
    wrong — exactly what held-out agreement measures — rather than a proxy such as Gini;
    regression minimises the weighted squared error. Among trees with equal loss the one
    with fewer leaves wins, so a split is only kept where it changes the training loss.

    The leaves are read back as a :class:`~pellucid.extraction.rules.RuleSet` on raw
    features (each rule says where missing values go), as :class:`DecisionTree` gives them.

    Parameters
    ----------
    max_leaf_nodes : int
        Most leaves (rules): 1 (a constant), 2 (a stump), 3 or 4. Larger values are allowed
        (the frontier tries them) and give the best tree with at most four leaves.
    max_depth : {1, 2}
        Deepest path: 1 searches stumps only.
    max_bins : int
        Most candidate thresholds per feature (see :func:`candidate_thresholds`); features
        with fewer distinct values are searched at every midpoint.
    min_samples_leaf : int
        Fewest training rows a leaf may hold.
    random_state : int, optional
        Unused (the search is deterministic); accepted so that the frontier can pass it.

    Attributes
    ----------
    encoder_ : RawEncoder
    thresholds_ : list of numpy.ndarray
        The candidate thresholds searched, per encoded column.
    loss_ : float
        The chosen tree's training loss (weighted misclassified share, or weighted mean
        squared error).
    nodes_ : list of TreeNode
        The tree for drawing, as :class:`~pellucid.surrogates.DecisionTree` gives it.
    """

    name = "optimal_tree"
    size_param = "max_leaf_nodes"
    default = False

    _parameter_constraints: dict[str, list[Any]] = {
        "max_leaf_nodes": [Interval(Integral, 1, None, closed="left")],
        "max_depth": [Interval(Integral, 1, 2, closed="both")],
        "max_bins": [Interval(Integral, 1, None, closed="left")],
        "min_samples_leaf": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        max_leaf_nodes: int = 4,
        max_depth: int = 2,
        max_bins: int = 128,
        min_samples_leaf: int = 1,
        random_state: int | None = 0,
    ) -> None:
        self.max_leaf_nodes = max_leaf_nodes
        self.max_depth = max_depth
        self.max_bins = max_bins
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def _fit(self, train: DistillationSet) -> None:
        enc, X, y = self._learner_data(train, "ordered")
        self.encoder_ = enc
        classification = train.task == "classification"
        w = np.asarray(train.weights, dtype=float)
        n_classes = len(self.classes_) if classification else 0
        loss = _Loss(classification, int(self.min_samples_leaf))
        ch = loss.channels(y, w, n_classes)
        self.thresholds_ = [candidate_thresholds(X[:, j], int(self.max_bins)) for j in range(X.shape[1])]
        codes = _codes(X, self.thresholds_)
        leaves = min(int(self.max_leaf_nodes), 2 if self.max_depth == 1 else _MAX_LEAVES)
        total = float(w.sum())
        tree = search_tree(codes, [len(t) + 1 for t in self.thresholds_], ch, loss, leaves, 1e-9 * total)
        self.loss_ = float(tree["loss"]) / total
        # Bins back to thresholds on the encoded columns.
        self._thresholds(tree)
        self._read(tree, X, train)

    def _thresholds(self, node: dict) -> None:
        if node.get("split") is not None:
            col, b = node["split"]
            node["split"] = (int(col), float(self.thresholds_[col][b]))
            self._thresholds(node["left"])
            self._thresholds(node["right"])

    # ------------------------------------------------------------------ tree -> rules
    def _read(self, tree: dict, X: np.ndarray, train: DistillationSet) -> None:
        """Rules and nodes from the searched tree; checks that the rules predict what the
        tree predicts on the training rows."""
        classification = self.task_ == "classification"
        w = np.asarray(train.weights, dtype=float)
        total = float(w.sum())
        y = train.outputs.argmax(axis=1) if classification else np.asarray(train.outputs, dtype=float)
        order = self.schema_.names
        domains = {f.name: f.categories for f in self.schema_ if f.is_categorical}
        nodes: list[TreeNode | None] = []
        rules: list[Rule] = []
        expected = np.empty(len(X), dtype=object if classification else float)

        classes = self.classes_ if classification else None

        def value(mask: np.ndarray) -> np.ndarray | float:
            if classification:
                p = np.bincount(y[mask], weights=w[mask], minlength=len(self.classes_))
                return p / p.sum() if p.sum() > 0 else p
            return float(np.average(y[mask], weights=w[mask])) if w[mask].sum() > 0 else 0.0

        def visit(node: dict, depth: int, path: tuple[Condition, ...], mask: np.ndarray) -> int:
            # Depth-first, left before right: ids and rules in the order the tree reads.
            nid = len(nodes)
            nodes.append(None)
            v = value(mask)
            support = float(w[mask].sum()) / total
            stored = tuple(float(x) for x in v) if classification else v
            if node["split"] is None:
                rule = leaf_rule(merge_conditions(path, order, domains), v, support, classes)
                expected[mask] = rule.outcome
                nodes[nid] = TreeNode(nid, depth, None, None, None, None, stored, support, len(rules))
                rules.append(rule)
                return nid
            col, thr = node["split"]
            cond_l = self._readable(self.encoder_.condition(col, "<=", thr), domains)
            cond_r = self._readable(self.encoder_.condition(col, ">", thr), domains)
            go_left = X[:, col] <= thr
            left = visit(node["left"], depth + 1, path + (cond_l,), mask & go_left)
            right = visit(node["right"], depth + 1, path + (cond_r,), mask & ~go_left)
            nodes[nid] = TreeNode(nid, depth, left, right, cond_l, cond_r, stored, support, None)
            return nid

        visit(tree, 0, (), np.ones(len(X), dtype=bool))
        self.nodes_ = [n for n in nodes if n is not None]
        default = leaf_rule((), value(np.ones(len(X), dtype=bool)), 1.0, classes)
        self.rules_ = RuleSet(
            tuple(rules),
            default,
            task=self.task_,
            classes=None if self.classes_ is None else tuple(self.classes_),
            feature_order=tuple(order),
        )
        self._check_reproduces(train.rows, expected, "the searched tree")

    @staticmethod
    def _readable(cond: Condition, domains: dict) -> Condition:
        """A set condition written as the shorter of the set and its complement."""
        if cond.feature not in domains:
            return cond
        return (merge_conditions([cond], domains=domains) or (cond,))[0]

    def complexity(self) -> dict[str, Any]:
        out = super().complexity()
        out["n_leaves"] = self.rules_.n_rules
        out["depth"] = max((n.depth for n in self.nodes_), default=0)
        return out


# ---------------------------------------------------------------------- the search
def _cell_sums(index: np.ndarray, ch: np.ndarray, n_cells: int) -> np.ndarray:
    """Channel sums per cell: shape ``(n_cells, C)`` for rows in cells ``index`` (one
    ``bincount``, no loop over rows)."""
    C = ch.shape[1]
    if C == 1:  # two classes: the cells are the bins
        return np.bincount(index, weights=ch[:, 0], minlength=n_cells)[:, None]
    flat = (index[:, None] * C + np.arange(C)).ravel()
    return np.bincount(flat, weights=ch.ravel(), minlength=n_cells * C).reshape(n_cells, C)


def _leaf(loss: float) -> dict:
    return {"loss": loss, "split": None}


def search_tree(
    codes: np.ndarray,
    n_bins: list[int],
    ch: np.ndarray,
    loss: _Loss,
    max_leaves: int,
    tol: float,
) -> dict:
    """The best tree of depth <= 2 with at most ``max_leaves`` (<= 4) leaves.

    Parameters
    ----------
    codes : numpy.ndarray
        ``(n, p)`` bin of each row in each column; the test ``code <= b`` is a split.
    n_bins : list of int
        Bins per column (``codes[:, j] < n_bins[j]``).
    ch : numpy.ndarray
        ``(n, C)`` channels of each row (see :class:`_Loss`).
    loss : _Loss
        Leaf loss from channel sums.
    max_leaves : int
        Most leaves.
    tol : float
        A tree with more leaves must beat one with fewer by more than this.

    Returns
    -------
    dict
        ``{"loss", "leaves", "split": (column, bin) or None, "left", "right"}``, children
        in the same form.
    """
    n, p = codes.shape
    root = loss(ch.sum(axis=0))
    best: dict[int, tuple] = {1: (float(root),)}
    if max_leaves < 2:
        return {**_leaf(float(root)), "leaves": 1}
    # best[L] = (loss, column, bin, shape) over every root, for trees of L leaves.
    for j in range(p):
        Bj = n_bins[j]
        if Bj < 2:
            continue
        H = _cell_sums(codes[:, j], ch, Bj)
        left = np.cumsum(H, axis=0)[:-1]
        right = H.sum(axis=0) - left
        leaf_l, leaf_r = loss(left), loss(right)
        _offer(best, 2, leaf_l + leaf_r, j, None)
        if max_leaves < 3:
            continue
        # Best split of each side of every root threshold, over every child column.
        split_l = np.full(Bj - 1, np.inf)
        split_r = np.full(Bj - 1, np.inf)
        arg_l = np.zeros((Bj - 1, 2), dtype=int)
        arg_r = np.zeros((Bj - 1, 2), dtype=int)
        for k in range(p):
            Bk = n_bins[k]
            if Bk < 2:
                continue
            H2 = _cell_sums(codes[:, j] * Bk + codes[:, k], ch, Bj * Bk).reshape(Bj, Bk, -1)
            side_l = np.cumsum(H2, axis=0)[:-1]  # (root bin, child bin, C): left of the root
            side_r = H2.sum(axis=0)[None] - side_l
            for side, val, arg in ((side_l, split_l, arg_l), (side_r, split_r, arg_r)):
                Q = np.cumsum(side, axis=1)
                a = Q[:, :-1]
                lk = loss(a) + loss(Q[:, -1:] - a)  # (root threshold, child threshold)
                i = np.argmin(lk, axis=1)
                v = lk[np.arange(len(i)), i]
                better = v < val - tol
                val[better] = v[better]
                arg[better, 0] = k
                arg[better, 1] = i[better]
        three_l, three_r = split_l + leaf_r, leaf_l + split_r
        _offer(best, 3, np.minimum(three_l, three_r), j, (three_l, three_r, arg_l, arg_r))
        if max_leaves >= 4:
            _offer(best, 4, split_l + split_r, j, (None, None, arg_l, arg_r))
    # Fewest leaves unless more leaves lower the loss by more than tol.
    chosen = 1
    for L in range(2, min(max_leaves, _MAX_LEAVES) + 1):
        if L in best and best[L][0] < best[chosen][0] - tol:
            chosen = L
    if chosen == 1:
        return {**_leaf(float(root)), "leaves": 1}
    value, j, b, extra = best[chosen]
    tree = {"loss": float(value), "leaves": chosen, "split": (j, b)}
    kids = {"left": None, "right": None}
    if chosen == 3:
        three_l, three_r, arg_l, arg_r = extra
        kids["left" if three_l[b] <= three_r[b] else "right"] = (arg_l if three_l[b] <= three_r[b] else arg_r)[b]
    elif chosen == 4:
        _, _, arg_l, arg_r = extra
        kids = {"left": arg_l[b], "right": arg_r[b]}
    for side, arg in kids.items():
        if arg is None:
            tree[side] = _leaf(np.nan)
        else:
            tree[side] = {"loss": np.nan, "split": (int(arg[0]), int(arg[1])), "left": _leaf(np.nan), "right": _leaf(np.nan)}
    return tree


def _offer(best: dict, leaves: int, losses: np.ndarray, column: int, extra: Any) -> None:
    """Keep the root threshold of ``column`` with the lowest loss for trees of ``leaves``
    leaves if it beats the best so far (the earlier column wins ties)."""
    b = int(np.argmin(losses))
    v = float(losses[b])
    if np.isfinite(v) and (leaves not in best or v < best[leaves][0] - 1e-12 * max(abs(v), 1.0)):
        best[leaves] = (v, column, b, extra)


# ---------------------------------------------------------------------- rule list
class ExhaustiveRuleList(Surrogate):
    """An ordered rule list whose every rule is the best conjunction of at most two
    conditions for the rows not yet decided (sequential covering with an exhaustive step).

    The default class is the network's most frequent label on the training rows. Each step
    looks at every box ``x_j op a and x_k op b`` (``op`` in ``<=``, ``>``; ``j`` may equal
    ``k``, which gives an interval; one of the two may be absent) and every class ``c``, and
    takes the one that most lowers the training disagreement if the rows it covers, among
    those not covered by earlier rules, were given ``c`` rather than the default: the
    weighted count of ``c`` in the box minus that of the default class. The list stops at
    ``max_rules`` rules or when no box lowers the disagreement. A rule's outcome is the most
    frequent label among the rows it decides; the default's, among the rows no rule covers.

    With two or three rules this finds lists that greedy learners miss: on the demo credit
    network, "income <= 40 and debt_ratio > 0.62 → bad, else if employment = unemployed and
    home in {rent, other} → bad, else good" (see docs/surrogates.md for the measurements).

    Parameters
    ----------
    max_rules : int
        Most rules before the default.
    max_conditions : {1, 2}
        Most conditions per rule.
    max_bins : int
        Most candidate thresholds per feature (see :func:`candidate_thresholds`).
    random_state : int, optional
        Unused (the search is deterministic); accepted so that the frontier can pass it.

    Attributes
    ----------
    encoder_ : RawEncoder
    thresholds_ : list of numpy.ndarray
        The candidate thresholds searched, per encoded column.
    gains_ : list of float
        Weighted share of training rows each rule moved from disagreement to agreement.
    """

    name = "exhaustive_rule_list"
    size_param = "max_rules"
    # On explain's frontier: under a second at demo sizes, and the most faithful at 2-4 rules.
    default = True
    size_path = True
    tasks = ("classification",)

    _parameter_constraints: dict[str, list[Any]] = {
        "max_rules": [Interval(Integral, 1, None, closed="left")],
        "max_conditions": [Interval(Integral, 1, 2, closed="both")],
        "max_bins": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self, max_rules: int = 4, max_conditions: int = 2, max_bins: int = 64, random_state: int | None = 0
    ) -> None:
        self.max_rules = max_rules
        self.max_conditions = max_conditions
        self.max_bins = max_bins
        self.random_state = random_state

    def _fit(self, train: DistillationSet) -> None:
        self._use(train, self._grow(train))

    # Each rule is the best box on the rows the earlier rules left open, whatever the
    # budget: the list at max_rules=k is the first k rules of any longer one.
    def _fit_path(self, train: DistillationSet) -> Any:
        grown = self._grow(train)
        self._use(train, grown)
        return grown

    def _fit_prefix(self, train: DistillationSet, path: Any) -> None:
        self._use(train, path)

    def _grow(self, train: DistillationSet) -> dict[str, Any]:
        """Search up to ``max_rules`` boxes: the encoder, thresholds, boxes, the rows each
        decides, their gains, and the training labels and weights."""
        if train.task != "classification":
            raise ParameterError(
                f"{type(self).__name__} handles classification only; this distillation set is a {train.task}. "
                "Use OptimalTree or DecisionTree for a regression."
            )
        enc, X, y = self._learner_data(train, "ordered")
        w = np.asarray(train.weights, dtype=float)
        k = len(self.classes_)
        counts = np.zeros((len(y), k))
        counts[np.arange(len(y)), y] = w
        thresholds = [candidate_thresholds(X[:, j], int(self.max_bins)) for j in range(X.shape[1])]
        codes = _codes(X, thresholds)
        n_bins = [len(t) + 1 for t in thresholds]
        total = float(w.sum())
        tol = 1e-9 * total
        default = int(np.argmax(counts.sum(axis=0)))
        open_ = np.ones(len(y), dtype=bool)
        boxes: list[tuple[tuple[int, str, float], ...]] = []
        masks: list[np.ndarray] = []
        gains: list[float] = []
        for _ in range(int(self.max_rules)):
            # Only the rows no earlier rule decided: the others would add nothing to any sum.
            found = best_box(codes[open_], n_bins, counts[open_], default, int(self.max_conditions), tol)
            if found is None:
                break
            gain, tests = found
            tests = tuple((j, op, float(thresholds[j][b])) for j, op, b in tests)
            covered = open_.copy()
            for j, op, t in tests:
                covered &= X[:, j] <= t if op == "<=" else X[:, j] > t
            boxes.append(tests)
            masks.append(covered)
            gains.append(gain / total)
            open_ &= ~covered
        return {"encoder": enc, "thresholds": thresholds, "boxes": boxes, "masks": masks, "gains": gains,
                "y": y, "w": w}

    def _use(self, train: DistillationSet, grown: dict[str, Any]) -> None:
        """The list of the first ``max_rules`` boxes grown."""
        k = int(self.max_rules)
        self.encoder_ = grown["encoder"]
        self.thresholds_ = grown["thresholds"]
        self.gains_ = grown["gains"][:k]
        masks = grown["masks"][:k]
        rest = np.ones(len(grown["y"]), dtype=bool)
        for m in masks:
            rest &= ~m
        self._read(grown["boxes"][:k], masks, rest, grown["y"], grown["w"], train)

    def _read(
        self,
        boxes: list[tuple[tuple[int, str, float], ...]],
        masks: list[np.ndarray],
        rest: np.ndarray,
        y: np.ndarray,
        w: np.ndarray,
        train: DistillationSet,
    ) -> None:
        total = float(w.sum())
        k = len(self.classes_)
        domains = {f.name: f.categories for f in self.schema_ if f.is_categorical}
        expected = np.empty(len(y), dtype=object)

        def rule(conditions: tuple[Condition, ...], mask: np.ndarray, support: float | None) -> Rule:
            p = np.bincount(y[mask], weights=w[mask], minlength=k)
            p = p / p.sum() if p.sum() > 0 else np.full(k, 1.0 / k)
            r = Rule(conditions, self.classes_[int(np.argmax(p))], tuple(float(x) for x in p), support)
            expected[mask] = r.outcome
            return r

        rules = []
        for tests, mask in zip(boxes, masks):
            raw = [self.encoder_.condition(j, op, t) for j, op, t in tests]
            conds = merge_conditions(raw, self.schema_.names, domains)
            rules.append(rule(conds, mask, float(w[mask].sum()) / total))
        if rest.any():
            default = rule((), rest, 1.0)
        else:
            default = Rule((), rules[-1].outcome if rules else self.classes_[0], rules[-1].proba if rules else None, 1.0)
        self.rules_ = RuleList(
            tuple(rules), default, task=self.task_, classes=tuple(self.classes_), feature_order=tuple(self.schema_.names)
        )
        self._check_reproduces(train.rows, expected, "the searched rule list")


def _codes(X: np.ndarray, thresholds: list[np.ndarray]) -> np.ndarray:
    """Bin of each value: the number of thresholds below it (so ``x <= t[b]`` iff
    ``code <= b``)."""
    if not thresholds:
        return np.zeros((len(X), 0), dtype=np.int64)
    return np.column_stack([np.searchsorted(t, X[:, j], side="left") for j, t in enumerate(thresholds)])


def best_box(
    codes: np.ndarray, n_bins: list[int], counts: np.ndarray, default: int, max_conditions: int, tol: float
) -> tuple[float, tuple[tuple[int, str, int], ...]] | None:
    """The box of at most ``max_conditions`` tests with the largest gain
    ``max_c count_c(box) - count_default(box)`` (``c`` not the default).

    Parameters
    ----------
    codes : numpy.ndarray
        ``(n, p)`` bins (see :func:`_codes`).
    n_bins : list of int
        Bins per column.
    counts : numpy.ndarray
        ``(n, K)`` weight of each row in its class's column; rows already decided are 0.
    default : int
        The default class.
    max_conditions : int
        1 or 2.
    tol : float
        The gain must exceed this.

    Returns
    -------
    tuple or None
        ``(gain, tests)`` with tests ``(column, op, bin)`` (``x <= t[bin]`` or ``x > t[bin]``),
        or None when no box gains more than ``tol``.
    """
    n, p = codes.shape
    others = [c for c in range(counts.shape[1]) if c != default]
    if not others:
        return None
    # One gain per row and class: what giving the row that class instead of the default gains.
    g = counts[:, others] - counts[:, [default]]
    best: tuple[float, tuple] | None = None
    cols = list(np.asfortranarray(codes).T)  # each column contiguous: read once per pair
    C = g.shape[1]
    for j in range(p):
        Bj = n_bins[j]
        if Bj < 2:
            continue
        if max_conditions == 1:
            cum = np.cumsum(_cell_sums(cols[j], g, Bj), axis=0)[:-1]  # code_j <= a
            for op, Q in (("<=", cum), (">", cum[-1:] * 0 + g.sum(axis=0) - cum)):
                Q = Q.max(axis=-1)
                a = int(np.argmax(Q))
                v = float(Q[a])
                if v > tol and (best is None or v > best[0] + tol):
                    best = (v, ((j, op, a),))
            continue
        for k in range(j, p):
            Bk = n_bins[k]
            if Bk < 2:
                continue
            H = _cell_sums(cols[j] * Bk + cols[k], g, Bj * Bk).reshape(Bj, Bk, C)
            if C == 1:
                H = H[:, :, 0]  # two classes: one gain per cell, nothing to take the largest of
            S = H.cumsum(axis=0).cumsum(axis=1)  # (a, b): code_j <= a and code_k <= b
            col = S[:, -1:]  # code_j <= a
            row = S[-1:, :]  # code_k <= b
            quads = (
                (("<=", "<="), S),
                (("<=", ">"), col - S),
                ((">", "<="), row - S),
                ((">", ">"), S[-1:, -1:] - col - row + S),
            )
            for ops, Q in quads:
                if C > 1:
                    Q = Q.max(axis=-1)
                if ops == ("<=", "<="):
                    Q = Q.copy()
                    Q[-1, -1] = -np.inf  # no test at all: not a rule
                i = int(np.argmax(Q))
                v = float(Q.flat[i])
                if v > tol and (best is None or v > best[0] + tol):
                    a, b = np.unravel_index(i, Q.shape)
                    tests = []
                    # The last bin with <= admits every row: that test is dropped.
                    if not (ops[0] == "<=" and a == Bj - 1):
                        tests.append((j, ops[0], int(a)))
                    if not (ops[1] == "<=" and b == Bk - 1):
                        tests.append((k, ops[1], int(b)))
                    best = (v, tuple(tests))
    return best
