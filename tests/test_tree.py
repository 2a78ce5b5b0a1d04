import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pellucid.errors import NotFittedError, ParameterError
from pellucid.extraction import distill
from pellucid.oracle import Oracle
from pellucid.surrogates import DecisionTree

from .conftest import mixed_frame


def mixed_oracle(task="classification", classes=("no", "yes", "maybe")):
    """A model with categorical and missing-value effects, as a plain callable."""

    def f(df):
        score = np.nan_to_num(df["x"].astype(float), nan=12.0) / 5 + df["color"].isin(["red"]).astype(float)
        score = score + 0.4 * np.nan_to_num(df["count"].astype(float), nan=-1.0) - 0.01 * df["age"].astype(float)
        if task == "regression":
            return score.to_numpy()
        logits = np.column_stack([score, 3.2 - score, np.full(len(df), 0.4) + df["flag"].astype(float)])
        logits = logits[:, : len(classes)]  # two classes: the first two scores
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return Oracle(f, task=task, classes=list(classes) if task == "classification" else None)


def float32_frame(seed):
    """Values exactly representable in float32, so scikit-learn's float32 traversal and the
    rules' float64 comparisons see the same numbers."""
    df = mixed_frame(400, seed)
    df["x"] = df["x"].astype(np.float32).astype(float)
    return df


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), leaves=st.integers(2, 24), task=st.sampled_from(["classification", "regression"]))
def test_rules_predict_exactly_what_the_sklearn_tree_predicts(seed, leaves, task):
    df = float32_frame(seed)
    d = distill(mixed_oracle(task), df, strategy="observed", random_state=seed)
    tree = DecisionTree(max_leaf_nodes=leaves, random_state=0).fit(d)
    fresh = d.schema.validate(float32_frame(seed + 1))
    # Missing values only where training saw them: elsewhere no rule claims them.
    for f in d.schema.names:
        if not tree.missing_seen_[f]:
            fresh = fresh[fresh[f].notna()]
    # The rules read back from the tree say what it does on any row; the fitted model, whose
    # thresholds are snapped to short decimals between training values, on the training rows.
    for model, rows in ((tree.learner_rules_, fresh), (tree.rules_, d.train.rows)):
        sk = tree.estimator_.predict(tree.encoder_.transform(rows))
        ours = model.predict(rows)
        if task == "classification":
            np.testing.assert_array_equal(ours, np.asarray(tree.classes_)[sk.astype(int)])
            np.testing.assert_allclose(model.predict_proba(rows), _sk_proba(tree, rows), atol=1e-12)
        else:
            np.testing.assert_allclose(ours, sk, rtol=1e-12)
        # The leaves partition the rows: each row is covered by exactly one rule.
        assert (model.coverage_matrix(rows).sum(axis=1) == 1).all()
    assert (tree.rules_.coverage_matrix(fresh).sum(axis=1) == 1).all()
    assert tree.complexity()["n_leaves"] == tree.rules_.n_rules <= leaves


def _sk_proba(tree, rows):
    p = tree.estimator_.predict_proba(tree.encoder_.transform(rows))
    full = np.zeros((len(rows), len(tree.classes_)))
    full[:, tree.estimator_.classes_.astype(int)] = p
    return full


def test_categorical_split_is_a_set_of_categories():
    rng = np.random.default_rng(0)
    n = 2000
    home = rng.choice(["rent", "own", "mortgage", "other"], n).astype(object)
    df = pd.DataFrame({"home": home, "noise": rng.normal(size=n)})
    oracle = Oracle(
        lambda d: np.where(d["home"].isin(["rent", "other"]).to_numpy()[:, None], [[0.1, 0.9]], [[0.9, 0.1]]),
        task="classification",
        classes=["good", "bad"],
    )
    d = distill(oracle, df, strategy="observed")
    tree = DecisionTree(max_leaf_nodes=2).fit(d)
    texts = sorted(r.condition_text() for r in tree.rules_)
    assert texts == ["home in {mortgage, own}", "home in {other, rent}"]
    bad_rule = next(r for r in tree.rules_ if r.outcome == "bad")
    assert bad_rule.condition_text() == "home in {other, rent}"


def test_fits_the_network_labels_not_a_target():
    df = mixed_frame(500)
    d = distill(mixed_oracle(), df, strategy=["observed", "perturb"], n=1000)
    tree = DecisionTree(max_leaf_nodes=None, random_state=0).fit(d)
    train = d.train
    # Unbounded, the tree reproduces the labels it learnt from wherever rows are distinct.
    assert np.mean(tree.predict(train.rows) == train.labels) > 0.99


def test_not_fitted_and_wrong_input():
    with pytest.raises(NotFittedError, match="fit"):
        DecisionTree().predict(mixed_frame())
    with pytest.raises(ParameterError, match="DistillationSet"):
        DecisionTree().fit(mixed_frame())


def test_predict_validates_raw_input():
    df = mixed_frame()
    tree = DecisionTree(max_leaf_nodes=4).fit(distill(mixed_oracle(), df, strategy="observed"))
    with pytest.raises(Exception, match="missing column"):
        tree.predict(df.drop(columns="x"))
