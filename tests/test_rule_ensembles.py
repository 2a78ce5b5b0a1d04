"""Additive rule surrogates on imodels: the rules must say what the learners do, on raw
features, for every kind of feature and missing values."""

from __future__ import annotations

import dataclasses
import operator
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

import pellucid
from pellucid.errors import ParameterError, PellucidWarning
from pellucid.extraction import distill
from pellucid.extraction.rules import AdditiveRules
from pellucid.oracle import Oracle
from pellucid.surrogates.rule_ensembles import FIGS, BoostedRules, RuleFit, Slipper, float32_split

from .conftest import mixed_frame

MODELS = {
    "rulefit": lambda: RuleFit(max_rules=12, n_estimators=20, random_state=0),
    "rulefit_imodels_weights": lambda: RuleFit(max_rules=12, n_estimators=20, refit=False, random_state=0),
    "figs": lambda: FIGS(max_rules=10, random_state=0),
    "boosted_rules": lambda: BoostedRules(n_estimators=12, random_state=0),
    "slipper": lambda: Slipper(n_estimators=8, random_state=0),
}
MULTICLASS = ("figs", "boosted_rules")
REGRESSION = ("rulefit", "rulefit_imodels_weights", "figs")


def truth(df):
    """The known rule: (x > 11 and color in {red, blue}) or count >= 4; a missing x counts as
    12, a missing count as 0, a missing color as neither."""
    x = np.nan_to_num(df["x"].astype(float).to_numpy(), nan=12.0)
    count = np.nan_to_num(df["count"].astype(float).to_numpy(), nan=0.0)
    return ((x > 11) & df["color"].isin(["red", "blue"]).to_numpy()) | (count >= 4)


def known_rule_oracle(task="classification"):
    def f(df):
        s = truth(df)
        if task == "regression":
            return 2.0 * s + 0.05 * df["age"].astype(float).to_numpy()
        if task == "multiclass":
            large = (df["size"].astype(str) == "L").to_numpy()
            k = np.where(s, 1, np.where(large, 2, 0))
            return np.eye(3)[k] * 0.7 + 0.1
        p = np.where(s, 0.9, 0.1)
        return np.column_stack([1 - p, p])

    classes = {"classification": ["no", "yes"], "multiclass": ["a", "b", "c"]}.get(task)
    return Oracle(f, task="regression" if task == "regression" else "classification", classes=classes)


@pytest.fixture(scope="module")
def dsets():
    df = mixed_frame(900, 0)
    return {
        task: distill(known_rule_oracle(task), df, strategy="observed", random_state=0)
        for task in ("classification", "multiclass", "regression")
    }


@pytest.fixture(scope="module")
def fitted(dsets):
    out = {}
    for name, make in MODELS.items():
        out[name, "classification"] = make().fit(dsets["classification"])
        if name in MULTICLASS:
            out[name, "multiclass"] = make().fit(dsets["multiclass"])
        if name in REGRESSION:
            out[name, "regression"] = make().fit(dsets["regression"])
    return out


@pytest.fixture(scope="module")
def fresh(dsets):
    """Rows none of the learners saw, with missing values in x, count and color."""
    return dsets["classification"].schema.validate(mixed_frame(400, 7))


def learner_outputs(model, rows):
    """The imodels learner's own labels and probabilities (or values) on raw rows."""
    X = model.encoder_.transform(rows)
    est = model.estimator_
    classes = np.asarray(model.classes_, dtype=object) if model.classes_ is not None else None
    if isinstance(model, RuleFit):
        c = rulefit_scores(model, X)
        if model.task_ == "regression":
            return c, None
        return classes[(c > 0).astype(int)], np.column_stack([1 - expit(c), expit(c)])
    if isinstance(model, FIGS):
        sums = est.predict(X)
        if model.task_ == "regression":
            return sums[:, 0], None
        labels = classes[est.classes_[np.argmax(sums, axis=1)]]
        proba = np.exp(sums - sums.max(axis=1, keepdims=True))
        proba = proba / proba.sum(axis=1, keepdims=True)
    elif model.task_ == "regression":
        return est.predict(X), None
    else:
        labels = classes[np.asarray(est.predict(X), dtype=float).astype(int)]
        proba = est.predict_proba(X)
    full = np.zeros((len(rows), len(classes)))
    full[:, model.present_classes_] = proba
    return labels, full


CASES = (
    [(n, "classification") for n in MODELS]
    + [(n, "multiclass") for n in MULTICLASS]
    + [(n, "regression") for n in REGRESSION]
)


def rulefit_scores(model, X):
    """RuleFit's score on encoded rows: imodels' own, or the refit applied to the terms as
    imodels evaluates them (its rule queries, then its non-zero linear columns)."""
    est = model.estimator_
    if not model.refit:
        return est._predict_continuous_output(X)
    terms = est.transform(X, [str(r) for r in est.rules_without_feature_names_])
    lin = np.flatnonzero(np.asarray(est.coef[: est.n_features_]) != 0)
    D = np.hstack([terms, X[:, lin]])
    k = model.refit_columns_
    Z = (D[:, k] - model.refit_mean_[k]) / model.refit_scale_[k]
    return model.refit_.decision_function(Z) if model.task_ == "classification" else model.refit_.predict(Z)


@pytest.mark.parametrize("name,task", CASES)
def test_rules_reproduce_the_learner_on_fresh_rows(fitted, fresh, dsets, name, task):
    # The rules as read back from the learner say what it does on any row; the fitted model
    # (thresholds snapped to short decimals between training values) on the training rows.
    model = fitted[name, task]
    read = model.learner_rules_
    assert isinstance(model.rules_, AdditiveRules) and isinstance(read, AdditiveRules)
    assert fresh.isna().any().any()  # missing values are part of the check
    labels, proba = learner_outputs(model, fresh)
    train = dsets[task].train.rows
    train_labels, train_proba = learner_outputs(model, train)
    if task == "regression":
        assert model.rules_.link == "identity"
        np.testing.assert_allclose(read.predict(fresh), labels, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(model.predict(train), train_labels, rtol=1e-9, atol=1e-9)
        return
    assert model.rules_.link == ("logistic" if task == "classification" else "softmax")
    np.testing.assert_array_equal(read.predict(fresh), labels)
    np.testing.assert_allclose(read.predict_proba(fresh), proba, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(model.predict(train), train_labels)
    np.testing.assert_allclose(model.predict_proba(train), train_proba, rtol=1e-9, atol=1e-12)


def test_rulefit_uses_the_logistic_model_not_imodels_probability(fitted, fresh):
    """imodels' RuleFitClassifier.predict_proba is sigmoid(2c - 1) of its logistic model's
    log-odds c; the surrogate keeps sigmoid(c). If imodels changes, this test says so."""
    model = fitted["rulefit_imodels_weights", "classification"]
    X = model.encoder_.transform(fresh)
    c = model.estimator_._predict_continuous_output(X)
    np.testing.assert_allclose(model.estimator_.predict_proba(X)[:, 1], expit(2 * c - 1), rtol=1e-12)
    np.testing.assert_allclose(model.learner_rules_.decision_function(fresh)[:, 0], c, rtol=1e-9, atol=1e-9)


def test_boosted_rules_follow_float32_splits(fitted, fresh):
    """scikit-learn's trees compare float32(x) <= threshold; rows placed right at the
    float32 rounding boundary of each split must still go where the tree sends them."""
    model = fitted["boosted_rules", "classification"]
    est = model.estimator_
    names = [c.name for c in model.encoder_.columns_]
    probes = []
    for tree in est.estimators_:
        t = tree.tree_
        for node in np.flatnonzero(t.children_left != -1):
            col = model.encoder_.columns_[t.feature[node]]
            if col.role != "value":
                continue
            op, mid = float32_split(t.threshold[node])
            for v in (mid, np.nextafter(mid, -np.inf), np.nextafter(mid, np.inf), t.threshold[node]):
                row = fresh.iloc[[len(probes) % len(fresh)]].copy()
                row[names[t.feature[node]]] = v
                probes.append(row)
    assert probes, "the boosted stumps should split a numeric feature"
    rows = model.schema_.validate(pd.concat(probes, ignore_index=True))
    labels, proba = learner_outputs(model, rows)
    np.testing.assert_array_equal(model.learner_rules_.predict(rows), labels)
    np.testing.assert_allclose(model.learner_rules_.predict_proba(rows), proba, rtol=1e-9, atol=1e-12)


def test_float32_split_is_exact():
    rng = np.random.default_rng(0)
    lo = rng.normal(0, 50, 300).astype(np.float32)
    hi = np.nextafter(lo, np.float32(np.inf)) + (rng.random(300) < 0.5) * np.abs(lo) * np.float32(1e-6)
    thr = lo.astype(float) / 2 + hi.astype(np.float32).astype(float) / 2  # how scikit-learn places them
    ops = {"<=": operator.le, "<": operator.lt}
    for t in thr:
        op, m = float32_split(t)
        xs = [m, np.nextafter(m, -np.inf), np.nextafter(m, np.inf), t, np.nextafter(t, np.inf), m + 1e-3, m - 1e-3]
        for x in xs:
            assert (float(np.float32(x)) <= t) == ops[op](x, m), (t, x)


@pytest.mark.parametrize("name", list(MODELS))
def test_rule_text_speaks_raw_features_and_categories(fitted, dsets, name):
    model = fitted[name, "classification"]
    schema = dsets["classification"].schema
    text = model.rules_.text()
    assert "X_" not in text and "=" in text
    feats = {c.feature for r in model.rules_ for c in r.conditions} | {t.feature for t in model.rules_.linear}
    assert feats <= set(schema.names)
    for r in model.rules_:
        for c in r.conditions:
            if c.op in ("in", "not in"):
                assert set(c.value) <= set(schema[c.feature].categories)
        assert 0 < r.support <= 1
        w = model.rules_.weights[model.rules_.rules.index(r)][0]
        assert r.outcome == ("yes" if w > 0 else "no")
    # The known rule involves color: some rule names its categories.
    assert any(c.feature == "color" and c.op in ("in", "not in") for r in model.rules_ for c in r.conditions)
    assert any(c.feature in ("x", "count") for r in model.rules_ for c in r.conditions)


@pytest.mark.parametrize("name", list(MODELS))
def test_known_rule_is_learnt(fitted, dsets, name):
    model = fitted[name, "classification"]
    fid = pellucid.fidelity.evaluate(model, rows=dsets["classification"])
    share = np.mean(truth(dsets["classification"].holdout.rows))
    majority = max(share, 1 - share)
    assert majority < 0.75
    assert fid.agreement >= {"figs": 0.95, "boosted_rules": 0.9, "slipper": 0.85}.get(name, 0.93)
    assert len(fid.rules) == model.rules_.n_rules


def test_regression_and_multiclass_fidelity(fitted, dsets):
    # imodels' L1 weights are shrunk at a 12-term budget; refitted on the same terms they
    # do better. FIGS's leaf values are plain means of residuals.
    r2 = {}
    for name, least in (("rulefit", 0.75), ("rulefit_imodels_weights", 0.6), ("figs", 0.85)):
        r2[name] = pellucid.fidelity.evaluate(fitted[name, "regression"], rows=dsets["regression"]).r2
        assert r2[name] > least
    assert r2["rulefit"] > r2["rulefit_imodels_weights"] + 0.05
    fid = pellucid.fidelity.evaluate(fitted["figs", "multiclass"], rows=dsets["multiclass"])
    assert fid.agreement > 0.95


def test_rulefit_refit_rescues_a_small_budget(dsets):
    """At 3 terms imodels' L1 weights are shrunk towards the majority class; the refit on the
    same terms is not."""
    d = dsets["classification"]
    shrunk = RuleFit(max_rules=3, n_estimators=20, refit=False).fit(d)
    refit = RuleFit(max_rules=3, n_estimators=20).fit(d)
    assert refit.rules_.n_terms == shrunk.rules_.n_terms <= 3
    a_shrunk = pellucid.fidelity.evaluate(shrunk, rows=d).agreement
    a_refit = pellucid.fidelity.evaluate(refit, rows=d).agreement
    assert a_refit > a_shrunk + 0.05


def test_methods_without_a_form_refuse_clearly(dsets):
    with pytest.raises(ParameterError, match="RuleFit.*3 classes"):
        RuleFit(n_estimators=5).fit(dsets["multiclass"])
    with pytest.raises(ParameterError, match="Slipper.*two classes"):
        Slipper().fit(dsets["multiclass"])
    with pytest.raises(ParameterError, match="BoostedRules.*median"):
        BoostedRules().fit(dsets["regression"])
    with pytest.raises(ParameterError, match="Slipper"):
        Slipper().fit(dsets["regression"])
    with pytest.raises(ParameterError, match="max_rules"):
        FIGS(max_rules=0).fit(dsets["classification"])


def test_size_param_bounds_the_count(dsets):
    d = dsets["classification"]
    for cls, size in ((RuleFit, 4), (FIGS, 3), (BoostedRules, 3), (Slipper, 2)):
        assert cls.size_param in cls.__init__.__code__.co_varnames
        kw = {"n_estimators": 10} if cls is RuleFit else {}
        small = cls(**{cls.size_param: size}, **kw).fit(d)
        big = cls(**{cls.size_param: 4 * size}, **kw).fit(d)
        if cls is FIGS:
            comp = small.complexity()
            assert comp["n_splits"] <= size and small.rules_.n_rules <= size + comp["n_trees"]
        else:
            assert small.rules_.n_terms <= size
        assert big.rules_.n_terms > small.rules_.n_terms


def test_one_class_network_gives_a_constant(dsets):
    df = mixed_frame(200, 3)
    oracle = Oracle(lambda d: np.tile([0.8, 0.2], (len(d), 1)), task="classification", classes=["no", "yes"])
    d = distill(oracle, df, strategy="observed", random_state=0)
    for make in MODELS.values():
        model = make().fit(d)
        assert model.rules_.n_terms == 0
        assert (model.predict(df) == "no").all()


def test_rulefit_leaves_global_random_state_and_warns_on_weights(dsets):
    d = dsets["classification"]
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    RuleFit(n_estimators=5, max_rules=3).fit(d)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    weighted = dataclasses.replace(d, weights=np.linspace(0.5, 1.5, len(d)))
    with pytest.warns(PellucidWarning, match="weights"):
        RuleFit(n_estimators=5, max_rules=3).fit(weighted)


def test_slipper_fixes_beat_imodels_as_is(fitted, dsets):
    """imodels' own SLIPPER (misaligned boosting weights, a default rule voting for the
    positive class) against the corrected learner, on the same encoded rows."""
    from imodels import SlipperClassifier

    model = fitted["slipper", "classification"]
    d = dsets["classification"]
    train, hold = d.train, d.holdout
    X = model.encoder_.transform(train.rows)
    y = train.outputs.argmax(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = SlipperClassifier(n_estimators=8, random_state=0).fit(X, y)
        raw_pred = raw.predict(model.encoder_.transform(hold.rows))
    ours = np.mean(model.predict(hold.rows) == hold.labels)
    theirs = np.mean(np.asarray(model.classes_, dtype=object)[raw_pred.astype(int)] == hold.labels)
    assert ours > theirs + 0.05


@pytest.mark.parametrize("name", ["figs", "boosted_rules", "rulefit"])
def test_same_seed_same_rules_whatever_numpys_global_state(name):
    """imodels' FIGS fits scikit-learn stumps without a random_state: between two equally good
    features (here two copies of one column) numpy's global state chose, so the same seed gave
    other rules in another process. The learner is seeded now."""
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 10, 600)
    df = pd.DataFrame({"a": x, "b": x.copy(), "c": rng.normal(size=600)})
    oracle = Oracle(lambda d: np.column_stack([d["a"] <= 4, d["a"] > 4]).astype(float) * 0.8 + 0.1,
                    task="classification", classes=["no", "yes"])
    dset = distill(oracle, df, strategy="observed", random_state=0)
    texts = set()
    for state in range(6):
        np.random.seed(state)
        model = MODELS[name]().fit(dset)
        texts.add(model.rules_.text())
    assert len(texts) == 1


@pytest.mark.parametrize("task", ["classification", "multiclass", "regression"])
def test_figs_makes_imodels_splits_and_values(dsets, fresh, task):
    """pellucid's FIGS learner against imodels' FIGS on the same encoded, weighted rows: the
    same trees and the same scores (to rounding), so the same labels and probabilities."""
    from imodels import FIGSClassifier, FIGSRegressor

    d = dsets[task]
    weights = np.random.default_rng(0).uniform(0.5, 1.5, len(d))
    d = dataclasses.replace(d, weights=weights)
    model = FIGS(max_rules=12).fit(d)
    train = d.train
    X = model.encoder_.transform(train.rows)
    y = train.outputs.argmax(axis=1) if task != "regression" else train.outputs
    ref = (FIGSRegressor if task == "regression" else FIGSClassifier)(max_rules=12)
    np.random.seed(0)
    ref.fit(X, y, sample_weight=np.asarray(train.weights))
    est = model.estimator_
    assert len(est.trees_) == len(ref.trees_) and est.complexity_ == ref.complexity_ > 3
    for rows in (train.rows, fresh):
        Z = model.encoder_.transform(rows)
        theirs = ref.predict(Z, by_tree=True).sum(axis=-1)
        ours = est.predict(Z)
        np.testing.assert_allclose(ours.reshape(theirs.shape), theirs, rtol=0, atol=1e-9)
        if task != "regression":
            classes = np.asarray(model.classes_, dtype=object)
            np.testing.assert_array_equal(model.rules_.predict(rows) if rows is fresh else model.predict(rows),
                                          classes[ref.predict(Z).astype(int)])


def test_figs_at_a_smaller_budget_is_the_first_splits_of_a_larger_one(dsets):
    d = dsets["multiclass"]
    big = FIGS(max_rules=14).fit(d)
    for k in (1, 4, 9):
        small = FIGS(max_rules=k).fit(d)
        assert [(t, n.feature, n.threshold) for t, n in small.estimator_.splits_] == [
            (t, n.feature, n.threshold) for t, n in big.estimator_.splits_[:k]]
        assert small.rules_.to_dict() == FIGS(max_rules=14).fit_sizes(d, [k, 14])[0].rules_.to_dict()


@pytest.mark.parametrize("classification", [True, False])
def test_figs_learner_grows_several_trees_as_imodels_does(classification):
    """An additive target, so that FIGS begins new trees: every tree, split and leaf value
    as imodels' FIGS makes them, with weights. (At 25 splits both isolate the same single row
    of a small leaf, by different features: an exact tie, which imodels breaks at random and
    pellucid by column order; hence 20.)"""
    from imodels import FIGSClassifier, FIGSRegressor

    from pellucid.surrogates._figs import FigsLearner

    rng = np.random.default_rng(1)
    X = rng.normal(size=(2000, 6))
    s = np.sin(2 * X[:, 0]) + 1.5 * (X[:, 1] > 0.5) + 0.5 * X[:, 2] ** 2 - (X[:, 3] > -0.2)
    y = (s + rng.normal(size=2000) * 0.5 > 0.5).astype(int) + (X[:, 4] > 1) if classification else s
    w = rng.uniform(0.5, 1.5, 2000)
    np.random.seed(0)
    ref = (FIGSClassifier if classification else FIGSRegressor)(max_rules=20).fit(X, y, sample_weight=w)
    ours = FigsLearner(20, classification=classification).fit(X, y, w)
    assert len(ref.trees_) >= 3 and len(ours.trees_) == len(ref.trees_)

    def walk(node):
        if node is None or node.left is None:
            return [("leaf", tuple(np.round(np.ravel(node.value), 9)))]
        return [(int(node.feature), round(float(node.threshold), 9))] + walk(node.left) + walk(node.right)

    assert [walk(t) for t in ours.trees_] == [walk(t) for t in ref.trees_]


def test_figs_two_classes_choose_by_one_column_as_by_both(monkeypatch):
    """With two classes the learner finds each split from the residual's first column alone
    (the two sum to one number on every row); grown with both columns instead, every tree,
    split and leaf value is the same, several trees and weights included."""
    from pellucid.surrogates import _figs

    rng = np.random.default_rng(4)
    X = rng.normal(size=(3000, 7))
    s = np.sin(2 * X[:, 0]) + 1.5 * (X[:, 1] > 0.5) + 0.5 * X[:, 2] ** 2 - (X[:, 3] > -0.2) + X[:, 5]
    y = (s + rng.normal(size=3000) * 0.5 > 0.7).astype(int)
    w = rng.uniform(0.5, 1.5, 3000)
    used = []
    residual = _figs.FigsLearner._residual

    def spy(self, R):
        out = residual(self, R)
        used.append(out[2] is not None)
        return out

    monkeypatch.setattr(_figs.FigsLearner, "_residual", spy)
    one = _figs.FigsLearner(24).fit(X, y, w)
    assert used and all(used)  # every measure took the one-column path
    used.clear()
    monkeypatch.setattr(_figs, "_ONE_COLUMN_TOLERANCE", -1.0)  # never one sum: both columns
    both = _figs.FigsLearner(24).fit(X, y, w)
    assert used and not any(used)

    def walk(node):
        if node.left is None:
            return [("leaf", tuple(np.ravel(node.value)))]
        return [(int(node.feature), float(node.threshold))] + walk(node.left) + walk(node.right)

    assert len(one.trees_) >= 3
    assert [walk(t) for t in one.trees_] == [walk(t) for t in both.trees_]
