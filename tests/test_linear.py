import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pellucid
from pellucid.errors import NotFittedError, ParameterError
from pellucid.extraction import AdditiveRules, distill
from pellucid.fidelity import evaluate
from pellucid.surrogates.linear import Scorecard, SparseLinear

from .conftest import mixed_frame

X_FILL = 11.0  # what the oracles below put in for a missing x


def linear_oracle():
    """Exactly linear in raw units: y = 3·x - 2·[color = red] + 5 (x missing counts as 11)."""

    def f(df):
        x = df["x"].astype(float).fillna(X_FILL).to_numpy()
        return 3.0 * x - 2.0 * (df["color"] == "red").to_numpy() + 5.0

    return pellucid.Oracle(f, task="regression")


def class_oracle(classes=("no", "yes", "maybe")):
    """A smooth classifier with numeric, categorical, ordinal and missing-value effects."""

    def f(df):
        x = df["x"].astype(float).fillna(X_FILL).to_numpy()
        count = df["count"].astype(float).fillna(-1.0).to_numpy()
        s = 0.6 * (x - 10) + 1.5 * (df["color"] == "red").to_numpy() - 0.8 * count + 0.03 * (df["age"].to_numpy() - 50)
        s = s + 0.7 * (df["size"] == "L").to_numpy()
        if len(classes) == 2:
            p = 1 / (1 + np.exp(-s))
            return np.column_stack([1 - p, p])
        logits = np.column_stack([s, -s, 1.2 * df["flag"].to_numpy() - 0.3])
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return pellucid.Oracle(f, task="classification", classes=list(classes))


def fresh_rows(schema, seed):
    return schema.validate(mixed_frame(300, seed))


# ---------------------------------------------------------------------- SparseLinear
def test_recovers_raw_unit_coefficients_of_an_exactly_linear_function():
    d = distill(linear_oracle(), mixed_frame(400), strategy=["observed", "marginal"], n=600, random_state=0)
    s = SparseLinear(max_terms=10).fit(d)
    coef = s.coefficients()
    by_text = dict(zip(coef["text"], coef["weight"], strict=True))
    # Fitted on standardised columns, reported per unit of the raw feature.
    assert by_text["intercept"] == pytest.approx(5.0, abs=1e-3)
    assert by_text["x"] == pytest.approx(3.0, abs=1e-3)
    assert by_text["color = red"] == pytest.approx(-2.0, abs=1e-3)
    # A missing x counts as the training median in the linear term; its indicator adds
    # what the function does differently: 3 · (11 - median).
    fill = s.encoder_.fill_["x"]
    assert by_text["x is missing"] == pytest.approx(3.0 * (X_FILL - fill), abs=1e-3)
    others = coef[~coef["text"].isin(["intercept", "x", "color = red", "x is missing"])]
    assert np.all(np.abs(others["weight"]) < 1e-6)
    # The standardised weight is the raw weight times the column's training spread.
    x_row = coef[coef["text"] == "x"].iloc[0]
    sd = np.sqrt(np.var(s.encoder_.transform(d.train.rows)[:, 0]))
    assert x_row["standardised"] == pytest.approx(3.0 * sd, rel=1e-9)
    assert isinstance(s.rules_, AdditiveRules) and s.rules_.link == "identity"
    assert evaluate(s, rows=d).r2 == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("max_terms", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_max_terms_bounds_the_nonzero_terms(max_terms, task):
    oracle = class_oracle(("no", "yes")) if task == "classification" else linear_oracle()
    d = distill(oracle, mixed_frame(400), strategy="observed", random_state=1)
    s = SparseLinear(max_terms=max_terms).fit(d)
    n = s.rules_.n_terms
    assert 1 <= n <= max_terms
    assert s.complexity()["n_rules"] == n == len(s.coefficients()) - 1
    # The terms are exactly scikit-learn's non-zero weights.
    assert np.count_nonzero(np.atleast_2d(s.estimator_.coef_)) == n
    # The largest model within the budget along the path (a refit may drop a redundant
    # reference category, never add one).
    within = [p["n_terms"] for p in s.path_ if p["n_terms"] <= max_terms]
    assert n <= max(within)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 1000),
    max_terms=st.integers(1, 12),
    task=st.sampled_from(["binary", "multiclass", "regression"]),
    refit=st.booleans(),
)
def test_predictions_equal_sklearn_on_fresh_rows(seed, max_terms, task, refit):
    oracle = {
        "binary": lambda: class_oracle(("no", "yes")),
        "multiclass": class_oracle,
        "regression": linear_oracle,
    }[task]()
    d = distill(oracle, mixed_frame(300, seed), strategy=["observed", "perturb"], n=300, random_state=seed)
    s = SparseLinear(max_terms=max_terms, refit=refit).fit(d)
    rows = fresh_rows(d.schema, seed + 1)  # missing values, every category
    Z = s.design_matrix(rows)
    sk = s.estimator_.predict(Z)
    if task == "regression":
        np.testing.assert_allclose(s.predict(rows), sk, rtol=1e-9, atol=1e-9)
        return
    np.testing.assert_array_equal(s.predict(rows), np.asarray(s.classes_, dtype=object)[sk])
    np.testing.assert_allclose(s.predict_proba(rows), s.estimator_.predict_proba(Z), atol=1e-10)


def test_missing_values_and_categories_read_as_raw_terms():
    d = distill(class_oracle(("no", "yes")), mixed_frame(600), strategy="observed", random_state=0)
    s = SparseLinear(max_terms=30).fit(d)
    coef = s.coefficients(all_columns=True)
    texts = set(coef["text"])
    assert {"x", "x is missing", "color = red", "color is missing", "size = L", "flag", "age"} <= texts
    assert set(coef["kind"]) == {"intercept", "linear", "category", "missing"}
    red = coef[coef["text"] == "color = red"].iloc[0]
    assert red["feature"] == "color" and red["term"] == "red" and red["kind"] == "category"
    # The network pushes red rows to "yes" (the log-odds column is that of classes_[1]).
    assert s.classes_[1] == "yes" and red["weight"] > 0
    assert coef.attrs["score"] == "log-odds of yes"
    # Rules speak in raw features; a missing age (never missing in training) counts as its
    # median in the linear term.
    assert "color = red" in s.rules_.text()
    rows = fresh_rows(d.schema, 5)
    rows.loc[:4, "age"] = np.nan
    age = next(t for t in s.rules_.linear if t.feature == "age")
    filled = rows.assign(age=rows["age"].fillna(age.fill))
    np.testing.assert_allclose(s.rules_.decision_function(rows), s.rules_.decision_function(filled))


def test_multiclass_is_a_softmax_with_one_weight_per_class():
    d = distill(class_oracle(), mixed_frame(500), strategy="observed", random_state=2)
    s = SparseLinear(max_terms=6).fit(d)
    assert s.rules_.link == "softmax" and len(s.rules_.intercept) == 3
    coef = s.coefficients()
    assert [c for c in coef.columns if c.startswith("weight")] == ["weight[no]", "weight[yes]", "weight[maybe]"]
    assert 1 <= s.rules_.n_terms <= 6
    # Multinomial, as scikit-learn fits it: one coefficient row per class.
    assert np.atleast_2d(s.estimator_.coef_).shape[0] == 3
    rows = fresh_rows(d.schema, 9)
    np.testing.assert_allclose(s.predict_proba(rows), s.estimator_.predict_proba(s.design_matrix(rows)), atol=1e-10)
    assert evaluate(s, rows=d).agreement > 0.8


def test_a_class_the_network_never_gives_is_never_predicted():
    base = class_oracle(("no", "yes"))
    oracle = pellucid.Oracle(
        lambda df: np.column_stack([base.query(df), np.zeros(len(df))]), task="classification", classes=["no", "yes", "never"]
    )
    d = distill(oracle, mixed_frame(300), strategy="observed", random_state=0)
    s = SparseLinear(max_terms=4).fit(d)
    rows = fresh_rows(d.schema, 3)
    assert "never" not in set(s.predict(rows))
    Z = s.design_matrix(rows)
    np.testing.assert_array_equal(s.predict(rows), np.asarray(s.classes_, dtype=object)[s.estimator_.predict(Z)])
    assert s.predict_proba(rows)[:, 2].max() < 1e-12


def test_refit_removes_the_l1_shrinkage():
    d = distill(linear_oracle(), mixed_frame(400), strategy="observed", random_state=0)
    relaxed = SparseLinear(max_terms=1).fit(d)
    lasso = SparseLinear(max_terms=1, refit=False).fit(d)
    w_relaxed = relaxed.coefficients().set_index("text")["weight"]
    w_lasso = lasso.coefficients().set_index("text")["weight"]
    assert list(w_relaxed.index) == list(w_lasso.index) == ["intercept", "x"]
    # The L1 weight is shrunk towards 0; least squares on the same term is not.
    assert 0 < w_lasso["x"] < w_relaxed["x"]
    x = relaxed.encoder_.transform(d.train.rows)[:, 0]
    assert w_relaxed["x"] == pytest.approx(np.polyfit(x, d.train.outputs, 1)[0], rel=1e-9)


# ---------------------------------------------------------------------- Scorecard
def credit_like(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    income = np.round(rng.lognormal(np.log(45), 0.5, n), 1)
    income[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "income": income,
            "debt_ratio": np.round(rng.beta(2, 4, n) * 1.5, 3),
            "delinquencies": rng.poisson(0.6, n).astype(float),
            "home": rng.choice(["rent", "own", "mortgage"], n).astype(object),
            "noise": rng.normal(size=n),
        }
    )


def monotone_oracle():
    """The risk of "bad" falls with income, rises with debt and delinquencies: a monotone
    function, as scorecards assume."""

    def f(df):
        inc = df["income"].astype(float).fillna(30.0).to_numpy()
        s = -0.06 * (inc - 45) + 3.0 * (df["debt_ratio"].to_numpy() - 0.5) + 0.9 * df["delinquencies"].to_numpy()
        s = s + 0.8 * (df["home"] == "rent").to_numpy() - 1.2
        p = 1 / (1 + np.exp(-s))
        return np.column_stack([1 - p, p])

    return pellucid.Oracle(f, task="classification", classes=["good", "bad"])


@pytest.fixture(scope="module")
def card_and_set():
    d = distill(monotone_oracle(), credit_like(), strategy=["observed", "marginal"], n=3000, random_state=0)
    return Scorecard(max_terms=16).fit(d), d


def test_scorecard_points_are_integers_and_predictions_threshold_the_total(card_and_set):
    card, d = card_and_set
    table = card.points_table()
    assert table["points"].dtype == np.int64
    assert table.iloc[0]["feature"] == "(base)" and table.iloc[0]["points"] == card.base_points_
    # The rules' weights are points / factor: scale × weight gives the points back exactly.
    r = card.rules_
    assert r.scale == -card.factor_ and r.offset == card.offset_
    pts = [r.scale * w[0] for w in r.weights]
    np.testing.assert_allclose(pts, np.round(pts), atol=1e-9)
    assert sorted(int(round(p)) for p in pts) == sorted(card.points_.tolist())
    assert 1 <= r.n_terms <= 16 and 0 not in card.points_
    rows = fresh_rows_credit(d.schema)
    total = card.score(rows)
    assert total.dtype == np.int64
    expected = np.where(total < card.cutoff_, "bad", "good")
    np.testing.assert_array_equal(card.predict(rows), expected)
    # The cutoff is the score at odds 1:1: base_score - pdo · log2(base_odds).
    assert card.cutoff_ == pytest.approx(600 - 20 * math.log2(50))


def fresh_rows_credit(schema):
    rows = schema.validate(credit_like(1000, seed=7))
    rows.loc[:9, "debt_ratio"] = np.nan  # never missing in training
    return rows


def test_scorecard_total_is_the_sum_of_one_bin_per_feature(card_and_set):
    card, d = card_and_set
    rows = fresh_rows_credit(d.schema)
    total = np.full(len(rows), card.base_points_)
    for feature in {b.feature for b in card.bins_}:
        bins = [b for b in card.bins_ if b.feature == feature]
        inside = np.column_stack([b.apply(rows) for b in bins])
        known = rows[feature].notna().to_numpy()
        assert (inside[known].sum(axis=1) == 1).all(), feature  # the bins cover every value once
        # A feature never missing in the data has no bin for a missing value: none occurred.
        if d.schema[feature].n_missing == 0 and not d.rows[feature].isna().any():
            assert not inside[~known].any(), feature
        total += inside.astype(np.int64) @ np.array([b.points for b in bins])
    np.testing.assert_array_equal(card.score(rows), total)
    # The table lists the same bins and points.
    table = card.points_table().iloc[1:]
    assert list(table["bin"]) == [b.text for b in card.bins_]
    assert list(table["points"]) == [b.points for b in card.bins_]
    assert "income is missing" in set(table["bin"])
    # Higher points, lower risk: the lowest income bin costs points, the highest earns them.
    inc_pts = [b.points for b in card.bins_ if b.feature == "income" and b.text != "income is missing"]
    assert inc_pts == sorted(inc_pts) and inc_pts[0] < inc_pts[-1]


def test_scorecard_points_follow_the_pdo_scaling(card_and_set):
    card, d = card_and_set
    rows = fresh_rows_credit(d.schema)
    p_bad = card.predict_proba(rows)[:, 1]
    odds_good = (1 - p_bad) / p_bad
    # odds of good = base_odds · 2^((total - base_score) / pdo): 20 more points, twice the odds.
    np.testing.assert_allclose(odds_good, 50.0 * 2.0 ** ((card.score(rows) - 600.0) / 20.0), rtol=1e-5)


def test_scorecard_is_faithful_on_a_monotone_function(card_and_set):
    card, d = card_and_set
    fid = evaluate(card, rows=d)
    majority = max(np.mean(d.holdout.labels == "bad"), np.mean(d.holdout.labels == "good"))
    assert majority < 0.8 and fid.agreement > 0.93
    assert card.rounding_agreement_ > 0.99
    # Before rounding, the model is scikit-learn's.
    rows = fresh_rows_credit(d.schema)
    np.testing.assert_allclose(
        card.unrounded_rules_.decision_function(rows)[:, 0],
        card.estimator_.decision_function(card.design_matrix(rows)),
        atol=1e-9,
    )
    # The card survives its JSON form, offset and scale included.
    back = AdditiveRules.from_dict(json.loads(json.dumps(card.rules_.to_dict())))
    np.testing.assert_array_equal(back.predict(rows), card.predict(rows))
    assert back.text() == card.rules_.text()
    text = card.rules_.text()
    assert text.startswith(f"points = {card.base_points_}")
    # Totals are whole numbers: the decision names the largest bad total, then the cutoff in
    # full (the number a total is compared with).
    line = text.splitlines()[-1]
    largest_bad = math.ceil(card.cutoff_) - 1
    assert line.startswith(f"→ bad if the points total is {largest_bad} or less (below ") and line.endswith(", else good")
    assert float(line.split("(below ")[1].split(")")[0]) == card.cutoff_
    totals = card._total(rows)
    assert (card.predict(rows) == np.where(totals <= largest_bad, "bad", "good")).all()
    # Base points that are not whole make totals that are not: the cutoff alone is said.
    from dataclasses import replace

    half = replace(card.rules_, intercept=(card.rules_.intercept[0] + 0.5 / card.rules_.scale,))
    assert half.text().splitlines()[-1].startswith(f"→ bad if the points total is below {card.cutoff_!r}")
    assert card.cutoff_ == pytest.approx(600 - 20 * math.log2(50))


def test_scorecard_parameters_change_the_scale():
    d = distill(monotone_oracle(), credit_like(1500), strategy="observed", random_state=0)
    a = Scorecard(max_terms=6).fit(d)
    b = Scorecard(max_terms=6, pdo=40, base_score=500, base_odds=20).fit(d)
    rows = d.holdout.rows
    np.testing.assert_array_equal(a.predict(rows), b.predict(rows))  # same model, other units
    assert b.cutoff_ == pytest.approx(500 - 40 * math.log2(20))
    assert np.abs(b.points_).max() > np.abs(a.points_).max()


def test_scorecard_refuses_regression_and_multiclass():
    assert Scorecard.supports("classification", 2) and not Scorecard.supports("classification", 3)
    assert not Scorecard.supports("regression") and SparseLinear.supports("classification", 5)
    df = mixed_frame(200)
    with pytest.raises(ParameterError, match="two-class.*regression"):
        Scorecard().fit(distill(linear_oracle(), df, strategy="observed"))
    with pytest.raises(ParameterError, match="3 classes"):
        Scorecard().fit(distill(class_oracle(), df, strategy="observed"))


@pytest.mark.parametrize(
    "cls, kwargs, pattern",
    [
        (SparseLinear, {"max_terms": 0}, "max_terms"),
        (SparseLinear, {"refit_penalty": -1.0}, "refit_penalty"),
        (Scorecard, {"n_bins": 1}, "n_bins"),
        (Scorecard, {"pdo": 0}, "pdo"),
        (Scorecard, {"base_odds": -2}, "base_odds"),
    ],
)
def test_bad_parameters(cls, kwargs, pattern):
    d = distill(class_oracle(("no", "yes")), mixed_frame(100), strategy="observed")
    with pytest.raises(ParameterError, match=pattern):
        cls(**kwargs).fit(d)


def test_not_fitted():
    with pytest.raises(NotFittedError):
        SparseLinear().coefficients()
    with pytest.raises(NotFittedError):
        Scorecard().points_table()


def test_same_seed_same_model():
    d = distill(class_oracle(), mixed_frame(300), strategy="observed", random_state=0)
    a = SparseLinear(max_terms=5, random_state=3).fit(d).coefficients()
    b = SparseLinear(max_terms=5, random_state=3).fit(d).coefficients()
    pd.testing.assert_frame_equal(a, b)


def test_scorecard_bins_every_feature_that_varies():
    rng = np.random.default_rng(0)
    n = 1500
    df = pd.DataFrame(
        {
            "mostly_one": rng.random(n) < 0.9,  # every quantile is 1: the split goes below it
            "count": rng.poisson(1.0, n),
            "amount": rng.lognormal(3.0, 1.0, n),
        }
    )
    oracle = pellucid.Oracle(
        lambda d: np.column_stack(
            [p := 1 / (1 + np.exp(2.0 * d["mostly_one"].to_numpy() - 0.5 * d["count"].to_numpy() - 1.0)), 1 - p]
        ),
        task="classification",
        classes=["bad", "good"],
    )
    d = distill(oracle, df, strategy="observed", random_state=0)
    card = Scorecard(max_terms=20).fit(d)
    texts = {c.feature: [] for c in card.columns_}
    for c in card.columns_:
        texts[c.feature].append(c.text())
    # Never missing in the data: no bin speaks of a missing value; a binary split is an equality.
    assert texts["mostly_one"] == ["mostly_one = 0", "mostly_one = 1"]
    assert texts["count"][0] == "count <= 0" and len(texts["count"]) >= 3
    assert len(texts["amount"]) == 5
    # Edges of a continuous feature are rounded to three significant digits (or fewer: the
    # shortest decimal between the training values on either side).
    for c in card.columns_:
        if c.feature == "amount":
            for cond in c.conditions:
                assert float(f"{cond.value:.3g}") == cond.value
    # The network's second class is the "bad" (positive) one, whatever its name.
    assert card.classes_[1] == "good" and card.points_table().attrs["bad_class"] == "good"
