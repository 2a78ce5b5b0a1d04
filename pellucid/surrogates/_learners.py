"""imodels' SLIPPER weak rule learner as pellucid fits it, corrected (:class:`SlipperRule`). A
module of its own, imported when such a surrogate is fitted, so that importing imodels waits
until it is needed; the class is defined here, at the top level, so that a fitted surrogate,
learner included, pickles. (SkopeRules' learner needs no imodels: :mod:`._skope`.)"""

from __future__ import annotations

import numpy as np
from imodels.rule_set.slipper_util import SlipperBaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state


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
