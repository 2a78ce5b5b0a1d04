"""SkopeRules' learner (what imodels' ``SkopeRulesClassifier`` fits), step for step, on
scikit-learn's bagged regression trees, without importing imodels.

Importing imodels takes about a second (its package imports matplotlib's pyplot, numba and
its experimental models), paid by a run's own process and by every worker process that
refits a SkopeRules surrogate, and SkopeRules is a default candidate. The learner itself is
scikit-learn's ``BaggingRegressor`` of ``DecisionTreeRegressor`` with imodels' (and the
original skope-rules') bookkeeping around it, which lives here:

1. the trees: ``n_estimators`` regression trees on the 0/1 labels, each on
   ``int(max_samples * n)`` rows drawn without replacement and ``max_samples_features`` of
   the columns, seeded by ``random_state`` (imodels' ``extract_skope``);
2. a tree's rules: one per leaf, the tests on the path to it with each threshold rounded to
   five significant digits (imodels' ``tree_to_rules`` and ``_round_threshold``); a tree
   that never split proposes ``X_j == X_j``, which holds on every row;
3. each rule's precision and recall on the rows its tree was not fitted on,
   scored once each in the order the tree gave them (imodels scores them in the order of a
   Python ``set``, which follows the interpreter's hash seed, so rules tied on both kept a
   different order from one process to the next);
4. rules below ``precision_min`` or ``recall_min`` dropped, the scores of a rule proposed by
   several trees averaged, the rules sorted by precision then recall (``prune_mins``);
5. with ``max_depth_duplication``, rules grouped by a small tree on the features they test,
   the best F1 of each group kept, then all sorted by F1 (``deduplicate``).

A rule is kept as imodels' ``Rule`` keeps it (:class:`SkopeRule`): its text, its tests
merged per feature and direction to the tightest, and the text rewritten from them in
sorted order; that text is what identifies a rule in steps 4 and 5. The rules, their order
and their scores equal those of imodels' learner with step 3's order on the same rows
(``tests/test_skope.py``). Credit: skope-rules (BSD-3) and imodels (MIT).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._imodels import column_index

#: The comparisons the trees' rules make, as numpy reads them.
_OPS = {"<=": np.less_equal, ">": np.greater, "<": np.less, ">=": np.greater_equal}


class SkopeRule:
    """One rule as imodels' ``Rule`` keeps it: ``agg_dict`` maps (column name, comparison)
    to the threshold as text, tests of one column and direction merged to the tightest;
    ``rule`` is the text rewritten from it in sorted order; ``args`` the scores."""

    def __init__(self, rule: str, args: Any = None) -> None:
        self.args = args
        self.agg_dict: dict[tuple[str, str], str] = {}
        for feature, symbol, value in (t.split(" ") for t in rule.split(" and ")):
            key = (feature, symbol)
            if symbol == "==":  # "X_j == X_j": a tree that never split
                self.agg_dict[key] = value
            elif key not in self.agg_dict:
                self.agg_dict[key] = str(float(value))
            elif symbol[0] == "<":
                self.agg_dict[key] = str(min(float(self.agg_dict[key]), float(value)))
            else:
                self.agg_dict[key] = str(max(float(self.agg_dict[key]), float(value)))
        self.rule = " and ".join(f"{f} {s} {self.agg_dict[(f, s)]}" for f, s in sorted(self.agg_dict))

    def covers(self, X: np.ndarray) -> np.ndarray:
        """Whether each row of ``X`` passes every test (``X_j == X_j``: where ``X_j`` is a number)."""
        hit = np.ones(len(X), dtype=bool)
        for (feature, op), value in self.agg_dict.items():
            col = X[:, column_index(feature)]
            hit &= col == col if op == "==" else _OPS[op](col, float(value))
        return hit

    def __repr__(self) -> str:
        return f"SkopeRule({self.rule!r}, args={self.args!r})"


def round_threshold(threshold: float, digits: int = 5) -> float:
    """A split threshold as imodels writes it in a rule: rounded to ``digits`` significant
    digits (decimal places for values of order one and above), so that it stays between the
    two values it separates at any scale."""
    if threshold == 0 or not np.isfinite(threshold):
        return threshold
    magnitude = int(np.floor(np.log10(abs(threshold))))
    return float(np.round(threshold, decimals=max(digits, digits - magnitude)))


def tree_rules(tree: Any, names: np.ndarray) -> list[str]:
    """One rule per leaf of a fitted scikit-learn tree, depth first, left before right; the
    tree's column ``i`` is named ``names[i]``."""
    t = tree.tree_
    rules: list[str] = []

    def walk(node: int, tests: list[str]) -> None:
        if t.children_left[node] == -1:
            rules.append(" and ".join(tests) if tests else f"{names[0]} == {names[0]}")
            return
        name, threshold = names[t.feature[node]], round_threshold(t.threshold[node])
        walk(int(t.children_left[node]), [*tests, f"{name} <= {threshold}"])
        walk(int(t.children_right[node]), [*tests, f"{name} > {threshold}"])

    walk(0, [])
    return rules


def _scores(X: np.ndarray, target: np.ndarray, rule: SkopeRule) -> tuple:
    """Precision and recall of ``rule`` on rows ``X`` of 0/1 ``target`` (imodels'
    ``_eval_rule_perf`` with unit weights, whose sums are these counts: (0, 0) where it covers
    at most one row or no target row)."""
    idx = np.flatnonzero(rule.covers(X))
    if len(idx) <= 1:
        return (0, 0)
    true_pos = float(np.count_nonzero(target[idx]))
    if true_pos == 0:
        return (0, 0)
    return true_pos / len(idx), true_pos / float(np.count_nonzero(target))


def prune_mins(rules: list[SkopeRule], precision_min: float, recall_min: float) -> list[SkopeRule]:
    """The rules that pass both minimums, one per text with the running mean of its scores
    (and how many trees proposed it), by precision then recall, highest first."""
    kept: dict[str, tuple[float, float, int]] = {}
    for r in rules:
        p, q = r.args
        if p >= precision_min and q >= recall_min:
            if r.rule in kept:
                a, b, c = kept[r.rule]
                c += 1
                kept[r.rule] = (a + 1.0 / c * (p - a), b + 1.0 / c * (q - b), c)
            else:
                kept[r.rule] = (p, q, 1)
    ordered = sorted(kept.items(), key=lambda kv: (kv[1][0], kv[1][1]), reverse=True)
    return [SkopeRule(text, args=scores) for text, scores in ordered]


def f1(rule: SkopeRule) -> float:
    p, q = rule.args[0], rule.args[1]
    return 2 * p * q / (p + q) if (p + q) > 0 else 0


def deduplicate(rules: list[SkopeRule], depth: int | None) -> list[SkopeRule]:
    """With ``depth``, the best F1 of each group of similar rules (:func:`similar_groups`);
    then every rule by F1, highest first."""
    if depth is not None:
        rules = [max(group, key=f1) for group in similar_groups(rules, depth)]
    return sorted(rules, key=lambda r: -f1(r))


def similar_groups(rules: list[SkopeRule], depth: int) -> list[list[SkopeRule]]:
    """The rules split ``depth`` times by the column most of them test (first tested on ties):
    those with a ``<=`` test on it, those with a ``>`` test, the rest; the non-empty groups
    in that order, depth first."""

    def split(group: list[SkopeRule], left: int, done: list[str]) -> Any:
        if left == 0:
            return group
        counter = Counter(t.split(" ")[0] for r in group for t in r.rule.split(" and "))
        for name in done:
            del counter[name]
        if not counter:
            return group
        top = counter.most_common()[0][0]
        parts: list[list[SkopeRule]] = [[], [], []]
        for r in group:
            parts[0 if f"{top} <=" in r.rule else 1 if f"{top} >" in r.rule else 2].append(r)
        return [split(p, left - 1, [*done, top]) for p in parts]

    groups: list[list[SkopeRule]] = []

    def leaves(node: Any) -> None:
        if len(node) == 0 or not isinstance(node[0], list):
            if node:
                groups.append(node)
        else:
            for child in node:
                leaves(child)

    leaves(split(rules, depth, []))
    return groups


@dataclass
class SkopeLearner:
    """The learner (see the module's docstring); ``fit(X, y)`` on a float matrix and 0/1
    labels. ``rules_``: the kept rules in order (imodels' ``rules_without_feature_names_``);
    :meth:`fires`: where any of the first rules fires (imodels' ``_predict_top_rules``).
    The parameters and their defaults are imodels'."""

    precision_min: float = 0.5
    recall_min: float = 0.01
    n_estimators: int = 10
    max_depth: int = 3
    max_depth_duplication: int | None = None
    max_samples: float = 0.8
    max_samples_features: float = 0.8
    random_state: Any = None

    def fit(self, X: np.ndarray, y: np.ndarray) -> "SkopeLearner":
        from sklearn.ensemble import BaggingRegressor
        from sklearn.tree import DecisionTreeRegressor

        X = np.asarray(X, dtype=float)
        target = (np.asarray(y) != 0).astype(float)
        if len(np.unique(target)) < 2:
            raise ValueError("SkopeRules needs rows of both classes")
        names = np.array([f"X_{j}" for j in range(X.shape[1])])
        bagging = BaggingRegressor(
            DecisionTreeRegressor(max_depth=self.max_depth, max_features=1.0, min_samples_split=2),
            n_estimators=self.n_estimators, max_samples=int(self.max_samples * X.shape[0]),
            max_features=self.max_samples_features, bootstrap=False, bootstrap_features=False, n_jobs=1,
            random_state=self.random_state)
        bagging.fit(X, target)
        scored: list[SkopeRule] = []
        for tree, samples, features in zip(bagging.estimators_, bagging.estimators_samples_,
                                           bagging.estimators_features_, strict=True):
            out_of_bag = np.ones(len(X), dtype=bool)
            out_of_bag[np.asarray(samples, dtype=int)] = False
            rows = out_of_bag if out_of_bag.any() else np.asarray(samples, dtype=int)  # else in-bag
            Xo, yo = X[rows], target[rows]
            for text in dict.fromkeys(tree_rules(tree, names[features])):
                rule = SkopeRule(text)
                rule.args = _scores(Xo, yo, rule)
                scored.append(rule)
        self.estimators_samples_ = bagging.estimators_samples_
        self.estimators_features_ = bagging.estimators_features_
        self.rules_ = deduplicate(prune_mins(scored, self.precision_min, self.recall_min),
                                  self.max_depth_duplication)
        return self

    def fires(self, X: np.ndarray, n_rules: int) -> np.ndarray:
        """Whether any of the first ``n_rules`` rules fires on each row of ``X``."""
        X = np.asarray(X, dtype=float)
        out = np.zeros(len(X), dtype=bool)
        for rule in self.rules_[:n_rules]:
            out |= rule.covers(X)
        return out
