"""SkopeRules' learner without imodels (pellucid.surrogates._skope): the same rules, in the same
order, with the same scores, as imodels' SkopeRulesClassifier on the same rows, once each
tree's rules are scored in the order the tree gave them (imodels scores them in the order of
a set, which follows the interpreter's hash seed)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pellucid.surrogates._skope import SkopeLearner, SkopeRule, round_threshold


class _ImodelsInTreeOrder:
    """imodels' SkopeRulesClassifier, its own scoring (a pandas query per rule) with each
    tree's rules put back in the order the tree gave them: the reference."""

    def __new__(cls, **params):
        from imodels import SkopeRulesClassifier
        from imodels.util.rule import Rule
        from imodels.util.score import score_precision_recall

        class Reference(SkopeRulesClassifier):
            def _score_rules(self, X, y, rules):
                out = []
                for made, samples, features in zip(rules, self.estimators_samples_, self.estimators_features_,
                                                   strict=True):
                    scored = score_precision_recall(X, y, [made], [samples], [features], self.feature_placeholders,
                                                    sample_weight=self.sample_weight)
                    first = {}
                    for i, text in enumerate(made):
                        first.setdefault(Rule(text).rule, i)
                    out += sorted(scored, key=lambda r: first[r.rule])
                return out

        return Reference(**params)


def _both(X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = _ImodelsInTreeOrder(**params).fit(X, y)
    ours = SkopeLearner(**params).fit(X, y)
    return ours, theirs


def _assert_same(ours, theirs, X):
    assert [r.rule for r in ours.rules_] == [r.rule for r in theirs.rules_without_feature_names_]
    assert [r.args for r in ours.rules_] == [r.args for r in theirs.rules_without_feature_names_]
    assert [r.agg_dict for r in ours.rules_] == [r.agg_dict for r in theirs.rules_without_feature_names_]
    for n in sorted({1, 2, len(ours.rules_)} & set(range(1, len(ours.rules_) + 1))):  # as the surrogate asks
        np.testing.assert_array_equal(ours.fires(X, n), theirs._predict_top_rules(X, n).astype(bool))


def _data(seed: int, n: int, p: int, kind: str):
    rng = np.random.default_rng(seed)
    if kind == "codes":  # few values a column: many tied splits and tied scores
        X = rng.integers(0, 4, size=(n, p)).astype(float)
        y = (X[:, 0] + X[:, 1 % p] > 3).astype(int)
    elif kind == "scales":  # columns from 1e-6 to 1e6: the thresholds' rounding at every scale
        X = rng.normal(size=(n, p)) * np.logspace(-6, 6, p)
        y = ((X[:, 0] > 0) | (X[:, -1] < -1e5)).astype(int)
    else:  # a noisy threshold rule on continuous columns
        X = rng.normal(size=(n, p))
        y = ((X[:, 0] + 0.5 * X[:, 1 % p] + 0.3 * rng.normal(size=n)) > 0.4).astype(int)
    return X, y


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(40, 400),
    p=st.integers(1, 7),
    kind=st.sampled_from(["codes", "scales", "noise"]),
    precision_min=st.sampled_from([0.3, 0.5, 0.9]),
    recall_min=st.sampled_from([0.01, 0.2]),
    max_depth=st.integers(1, 4),
    dedup=st.sampled_from([None, 1, 2, 3]),
    max_samples=st.sampled_from([0.5, 0.8]),
)
def test_the_same_rules_scores_and_order_as_imodels(seed, n, p, kind, precision_min, recall_min, max_depth, dedup,
                                                    max_samples):
    X, y = _data(seed, n, p, kind)
    if len(np.unique(y)) < 2:
        y[0] = 1 - y[0]
    params = dict(precision_min=precision_min, recall_min=recall_min, n_estimators=6, max_depth=max_depth,
                  max_depth_duplication=dedup, max_samples=max_samples, random_state=seed % 7)
    ours, theirs = _both(X, y, **params)
    _assert_same(ours, theirs, X)


def test_every_row_in_bag_scores_in_bag_as_imodels():
    # max_samples=1: each tree sees every row, so none is out of bag and the rules are
    # scored on the tree's own rows, as imodels does (it warns).
    X, y = _data(3, 120, 4, "noise")
    ours, theirs = _both(X, y, max_samples=1.0, n_estimators=4, precision_min=0.5, random_state=0)
    assert ours.rules_
    _assert_same(ours, theirs, X)


def test_a_tree_that_never_splits_proposes_a_rule_that_always_holds():
    # Five rows of one class among 200: a depth-1 tree on rows drawn without them never
    # splits and proposes "X_j == X_j"; imodels scores it with a query that holds on every row.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = np.zeros(200, dtype=int)
    y[:5] = 1
    ours, theirs = _both(X, y, max_samples=0.05, n_estimators=8, max_depth=1, precision_min=0.0, recall_min=0.0,
                         random_state=1)
    assert any(" == " in r.rule for r in ours.rules_)
    _assert_same(ours, theirs, X)


def test_the_merged_text_is_imodels_rule_text():
    from imodels.util.rule import Rule

    for text in ["X_2 <= 1.5 and X_0 > 3.0", "X_1 <= 2 and X_1 <= 3 and X_1 > -1 and X_1 > 0.5", "X_10 > 1e-05 and X_2 <= 7",
                 "X_0 == X_0", "X_3 > -0.0"]:
        ours, theirs = SkopeRule(text), Rule(text)
        assert (ours.rule, ours.agg_dict) == (theirs.rule, theirs.agg_dict)


def test_thresholds_round_as_imodels():
    from imodels.util.convert import _round_threshold

    values = [0.0, -0.0, 1.23456789, -98765.4321, 3.3333333e-7, 1e12 / 3, np.inf, 0.5, 2.0000049999]
    assert [round_threshold(np.float64(v)) for v in values] == [_round_threshold(np.float64(v)) for v in values]


def test_the_learner_fits_without_importing_imodels(tmp_path):
    # SkopeRules is a default candidate: a run that fits it must not pay imodels' import
    # (about a second, in the run's process and in each worker that refits it).
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import pandas as pd
        from pellucid import Oracle, distill
        from pellucid.surrogates import SkopeRules
        rng = np.random.default_rng(0)
        X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
        def f(df):
            p = 1 / (1 + np.exp(-4 * df["a"].to_numpy()))
            return np.column_stack([1 - p, p])
        d = distill(Oracle(f, task="classification", classes=["no", "yes"]), X, strategy="observed")
        s = SkopeRules(max_rules=4).fit(d)
        assert s.rules_.rules, "no rules"
        print("imodels" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_the_rules_do_not_depend_on_the_hash_seed(tmp_path):
    # Rules tied on precision and recall keep the order they were scored in; imodels scored
    # a tree's rules in the order of a set of their texts, which followed the hash seed.
    code = textwrap.dedent("""
        import numpy as np
        from pellucid.surrogates._skope import SkopeLearner
        rng = np.random.default_rng(0)
        X = rng.integers(0, 4, size=(400, 6)).astype(float)
        y = (X[:, 0] + X[:, 1] > 3).astype(int)
        s = SkopeLearner(precision_min=0.0, recall_min=0.0, max_depth=3, random_state=0).fit(X, y)
        print([(r.rule, r.args) for r in s.rules_])
    """)
    outs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                           env={**os.environ, "PYTHONHASHSEED": seed}) for seed in ("0", "1", "2")]
    assert all(o.returncode == 0 for o in outs), [o.stderr for o in outs]
    assert outs[0].stdout.count("(0, 0, 1)") >= 2  # rules tied at no score
    assert outs[0].stdout == outs[1].stdout == outs[2].stdout


def test_one_class_is_refused():
    with pytest.raises(ValueError, match="both classes"):
        SkopeLearner().fit(np.zeros((10, 2)), np.zeros(10))
