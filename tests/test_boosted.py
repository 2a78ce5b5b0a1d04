"""pellucid's SAMME boosting of stumps (pellucid/surrogates/_boosted.py) against what it
replaces: imodels' BoostedRulesClassifier, scikit-learn's AdaBoost of depth-1 trees."""

import numpy as np
import pytest
from imodels import BoostedRulesClassifier
from sklearn.tree import DecisionTreeClassifier

from pellucid.extraction import distill
from pellucid.surrogates import BoostedRules
from pellucid.surrogates._boosted import StumpBooster
from pellucid.surrogates._imodels import learner_context

from .conftest import mixed_frame
from .test_linear import class_oracle


def _reference(X, y, w, n_estimators, learning_rate=1.0):
    with learner_context(0):
        return BoostedRulesClassifier(estimator=DecisionTreeClassifier(max_depth=1), n_estimators=n_estimators,
                                      learning_rate=learning_rate, random_state=0).fit(X, y, sample_weight=w)


def _problem(kind, seed):
    rng = np.random.default_rng(seed)
    n = 1500
    if kind == "integers":  # few distinct values: thresholds between them, many rows alike
        X = rng.integers(0, 6, size=(n, 5)).astype(float)
    else:
        X = rng.normal(size=(n, 6)) * rng.uniform(0.1, 100, 6)  # columns of other scales
    score = X[:, 0] / X[:, 0].std() - 0.7 * X[:, 1] / X[:, 1].std() + 0.5 * rng.normal(size=n)
    if kind == "multiclass":
        y = np.digitize(score, np.quantile(score, [0.3, 0.7]))
    else:
        y = (score > 0.2).astype(int)
    w = rng.uniform(0.5, 2.0, n)
    if kind == "zero weights":
        w[rng.random(n) < 0.1] = 0.0
    return X, y, w


@pytest.mark.parametrize("kind", ["continuous", "integers", "multiclass", "zero weights"])
@pytest.mark.parametrize("learning_rate", [1.0, 0.5])
def test_every_stump_and_weight_is_scikit_learns(kind, learning_rate):
    X, y, w = _problem(kind, 3)
    ref = _reference(X, y, w, 24, learning_rate)
    ours = StumpBooster(24, learning_rate).fit(X, y, sample_weight=w)
    assert len(ours.estimators_) == len(ref.estimators_)
    for a, b in zip(ref.estimators_, ours.estimators_, strict=True):
        ta, tb = a.tree_, b.tree_
        assert ta.node_count == tb.node_count
        np.testing.assert_array_equal(ta.feature[:1], tb.feature[:1])
        np.testing.assert_array_equal(ta.threshold[:1], tb.threshold[:1])
        np.testing.assert_array_equal(ta.n_node_samples, tb.n_node_samples)
        np.testing.assert_array_equal(np.argmax(ta.value[:, 0], axis=1), np.argmax(tb.value[:, 0], axis=1))
    np.testing.assert_array_equal(ours.estimator_weights_, ref.estimator_weights_)
    np.testing.assert_array_equal(ours.estimator_errors_, ref.estimator_errors_)
    fresh = _problem(kind, 4)[0]
    np.testing.assert_array_equal(ours.decision_function(fresh), ref.decision_function(fresh))
    np.testing.assert_array_equal(ours.predict(fresh), ref.predict(fresh))
    np.testing.assert_allclose(ours.predict_proba(fresh), ref.predict_proba(fresh), rtol=1e-15, atol=0)


def test_a_perfect_stump_ends_the_boosting_as_scikit_learn_ends_it():
    X, _, w = _problem("continuous", 5)
    y = (X[:, 2] > np.median(X[:, 2])).astype(int)
    ref = _reference(X, y, w, 10)
    ours = StumpBooster(10).fit(X, y, sample_weight=w)
    assert len(ours.estimators_) == len(ref.estimators_) == 1
    np.testing.assert_array_equal(ours.estimator_weights_, ref.estimator_weights_)
    assert ours.estimators_[0].tree_.threshold[0] == ref.estimators_[0].tree_.threshold[0]


def test_boosted_rules_read_the_same_rules_from_either_learner(monkeypatch):
    """The surrogate fitted on the native stumps equals the one fitted on imodels' learner:
    the same rules and scores on a distillation set with categories and missing values."""
    d = distill(class_oracle(("no", "yes")), mixed_frame(800, 2), strategy=["observed", "perturb"], n=2000,
                random_state=0)
    native = BoostedRules(n_estimators=16).fit(d)
    monkeypatch.setattr(BoostedRules, "_native", lambda self: False)
    imodels_fit = BoostedRules(n_estimators=16).fit(d)
    assert type(imodels_fit.estimator_).__name__ == "BoostedRulesClassifier"
    assert type(native.estimator_).__name__ == "StumpBooster"
    assert native.rules_.to_dict() == imodels_fit.rules_.to_dict()
    rows = mixed_frame(300, 9)
    np.testing.assert_array_equal(native.predict_proba(rows), imodels_fit.predict_proba(rows))


def test_deeper_trees_stay_with_imodels():
    d = distill(class_oracle(("no", "yes")), mixed_frame(400, 1), strategy="observed", random_state=0)
    assert type(BoostedRules(n_estimators=4, max_depth=2).fit(d).estimator_).__name__ == "BoostedRulesClassifier"
