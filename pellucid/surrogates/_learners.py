"""imodels' learners as pellucid fits them, corrected: SkopeRules' rules scored in the order its
trees made them, in numpy (:class:`SeededOrderSkopeRules`), and SLIPPER's weak rule learner
(:class:`SlipperRule`). A module of its own, imported when such a surrogate is fitted, so that
importing imodels waits until it is needed; the classes are defined here, at the top level, so
that a fitted surrogate, learner included, pickles."""

from __future__ import annotations

from typing import Any

import numpy as np
from imodels import SkopeRulesClassifier
from imodels.rule_set.slipper_util import SlipperBaseEstimator
from imodels.util.rule import Rule
from imodels.util.score import score_precision_recall
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

from ._imodels import column_index

#: The comparisons imodels' trees write in SkopeRules' rules, as numpy reads them.
_OPS = {"<=": np.less_equal, ">": np.greater, "<": np.less, ">=": np.greater_equal}


def _terms(rule: Rule) -> list[tuple[int, Any, float]] | None:
    """A rule's tests as (column, comparison, threshold), read from imodels' own parse of it
    (tests of one feature and direction merged to the tightest, which passes the same rows);
    None for a test other than a comparison with a number."""
    terms = []
    for (feature, op), value in rule.agg_dict.items():
        if op not in _OPS:
            return None
        terms.append((column_index(feature), _OPS[op], float(value)))
    return terms


def _perf(X: np.ndarray, y: np.ndarray, weights: np.ndarray, pos: float, terms: list) -> tuple[float, float]:
    """imodels' ``_eval_rule_perf`` (weighted out-of-bag precision and recall) with numpy
    comparisons in place of a pandas query: the same rows, sums in the same order."""
    hit = np.ones(len(X), dtype=bool)
    for j, op, value in terms:
        hit &= op(X[:, j], value)
    idx = np.flatnonzero(hit)
    if len(idx) <= 1:
        return (0, 0)
    w = weights[idx]
    true_pos = float((w * (y[idx] > 0)).sum())
    if true_pos == 0:
        return (0, 0)
    detected = float(w.sum())
    if detected == 0 or pos == 0:
        return (0, 0)
    return true_pos / detected, true_pos / pos


class SeededOrderSkopeRules(SkopeRulesClassifier):
    """imodels' SkopeRulesClassifier, each tree's rules scored once each in the order the tree
    gave them.

    imodels scores each tree's rules in the order of a Python ``set`` of their texts, which
    changes with the interpreter's hash seed; rules tied on precision and recall then keep that
    order through its pruning and deduplication, so the first ``max_rules`` rules (and which of
    two similar rules survives) changed from one process to the next. The scores are imodels'
    (out-of-bag precision and recall, weighted), computed with numpy comparisons where imodels
    runs a pandas query per rule, a third of a fit."""

    def _score_rules(self, X: Any, y: Any, rules: Any) -> list:
        X = np.asarray(X)
        out: list = []
        for made, samples, features in zip(rules, self.estimators_samples_, self.estimators_features_, strict=True):
            oob = np.ones(X.shape[0], dtype=bool)
            oob[np.asarray(samples, dtype=int)] = False  # the rows this tree was not fitted on
            parsed = [Rule(text) for text in dict.fromkeys(made)]
            terms = [_terms(rule) for rule in parsed]
            if not oob.any() or any(t is None for t in terms):
                # In-bag scoring or a test other than a comparison: imodels' own scoring, in order.
                scored = score_precision_recall(X, y, [made], [samples], [features], self.feature_placeholders,
                                                sample_weight=self.sample_weight)
                first = {rule.rule: i for i, rule in reversed(list(enumerate(parsed)))}
                out += sorted(scored, key=lambda r: first[r.rule])
                continue
            Xo, yo = X[oob], np.asarray(y)[oob] != 0
            weights = np.ones(len(yo)) if self.sample_weight is None else np.asarray(self.sample_weight, dtype=float)[oob]
            pos = float((weights * (yo > 0)).sum())
            for rule, t in zip(parsed, terms, strict=True):
                rule.args = _perf(Xo, yo, weights, pos, t)
            out += parsed
        return out


class SlipperRule(SlipperBaseEstimator):
    """imodels' SLIPPER rule learner, corrected:

    * the boosting weights follow the grow/prune split (imodels indexes the weights of
      the whole set with positions in the shuffled grow set);
    * pruning compares the candidate rules (imodels compares one rule with itself, so
      it never prunes), and keeps only prunes after which the rule still covers more
      class-1 than class-0 weight (eq. 7 of the paper also rewards a strongly negative
      rule, which only makes sense when a rule can vote against class 1);
    * no "default rule": imodels' stand-in is a random conjunction of ``x > min(x)``
      and ``x < max(x)`` that fires on nearly every row and so votes for class 1 there,
      the opposite of SLIPPER's default, which votes for the negative class. Under
      discrete AdaBoost every rule already votes for class 0 where it does not fire;
    * rules are evaluated with array operations instead of Python sets (same result).
    """

    def _rule_predict(self, X, rule):
        m = np.ones(X.shape[0], dtype=bool)
        for c in rule:
            col = X[:, int(c["feature"])]
            p = float(c["pivot"])
            op = c["operator"]
            m &= col > p if op == ">" else (col < p if op == "<" else col == p)
        return m.astype(float)

    def _get_design_matrices(self, X, y, rule):
        fires = self._rule_predict(X, rule) == 1
        return float(self.D[fires & (y == 1)].sum()), float(self.D[fires & (y == 0)].sum())

    def _prune_objective(self, X, y, rule):
        # SLIPPER's eq. 7 rewards rules that are strongly negative as much as strongly
        # positive ones; here a rule votes for class 1 where it fires, so a prune that
        # leaves it covering more class-0 than class-1 weight is not allowed.
        plus, minus = self._get_design_matrices(X, y, rule)
        return self._prune_rule_obj(X, y, rule) if plus > minus else np.inf

    def _prune_rule(self, X, y, rule):
        curr = list(rule)
        while len(curr) > 1:
            candidates = [curr[:i] + curr[i + 1 :] for i in range(len(curr))]
            objs = [self._prune_objective(X, y, r) for r in candidates]
            best = int(np.argmin(objs))
            if objs[best] < self._prune_objective(X, y, curr):
                curr = candidates[best]
            else:
                break
        return curr

    def fit(self, X, y, sample_weight=None, feature_names=None):
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        self.classes_ = np.unique(y)
        D = np.full(len(y), 1 / len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        rng = check_random_state(self.random_state)
        grow, prune = train_test_split(np.arange(len(y)), test_size=0.33, random_state=rng)
        self.D = D[grow]
        rule = self._grow_rule(X[grow], y[grow])
        self.D = D[prune]
        self.rule = self._prune_rule(X[prune], y[prune], rule)
        self.D = D
        return self
