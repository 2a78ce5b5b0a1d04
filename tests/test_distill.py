import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pellucid.errors import ParameterError, SchemaError
from pellucid.extraction import SAMPLERS, distill
from pellucid.extraction.samplers import marginal, perturb
from pellucid.oracle import Oracle
from pellucid.schema import Schema

from .conftest import mixed_frame


def counting_oracle():
    return Oracle(lambda d: np.column_stack([d["age"] / 100.0, 1 - d["age"] / 100.0]), task="classification")


def check_inside_schema(schema: Schema, rows: pd.DataFrame) -> None:
    for f in schema:
        col = rows[f.name]
        known = col.dropna()
        if f.is_numeric:
            v = known.to_numpy(dtype=float)
            assert np.all((v >= f.low) & (v <= f.high)), f.name
            if f.kind.value in ("integer", "binary"):
                assert np.all(v == np.round(v)), f.name
        else:
            assert set(known) <= set(f.categories), f.name


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_samplers_stay_inside_the_schema(sampler):
    df = mixed_frame(500)
    schema = Schema.from_frame(df)
    rows = SAMPLERS[sampler](schema, schema.validate(df), 3000, np.random.default_rng(0))
    assert len(rows) == 3000 and list(rows.columns) == schema.names
    check_inside_schema(schema, rows)
    # The result is valid input for everything downstream.
    schema.validate(rows)


def test_perturb_keeps_missing_values_and_stays_near_its_rows():
    df = mixed_frame(500)
    schema = Schema.from_frame(df)
    obs = schema.validate(df)
    rows = perturb(schema, obs.iloc[[0]].reset_index(drop=True), 500, np.random.default_rng(1), scale=0.1)
    assert rows["x"].isna().all() == pd.isna(obs["x"].iloc[0])
    if not pd.isna(obs["x"].iloc[0]):
        assert abs(rows["x"].mean() - obs["x"].iloc[0]) < 0.2
    # Categories are redrawn for about p_categorical of the rows.
    assert 0.02 < np.mean(rows["color"] != obs["color"].iloc[0]) < 0.25


def test_marginal_keeps_each_marginal_and_breaks_dependence():
    rng = np.random.default_rng(0)
    n = 4000
    a = rng.normal(size=n)
    df = pd.DataFrame({"a": a, "b": a + 0.1 * rng.normal(size=n), "c": rng.choice(["u", "v"], n, p=[0.8, 0.2])})
    df.loc[rng.random(n) < 0.1, "a"] = np.nan
    schema = Schema.from_frame(df)
    rows = marginal(schema, schema.validate(df), n, np.random.default_rng(1))
    # Marginals: a two-sample KS test does not tell them apart; missing rate and
    # category shares are kept.
    assert stats.ks_2samp(rows["b"], df["b"]).pvalue > 0.01
    assert abs(rows["a"].isna().mean() - 0.1) < 0.02
    assert abs((rows["c"] == "u").mean() - 0.8) < 0.03
    # Dependence: observed a and b are correlated 0.99; TREPAN's samples are independent.
    both = rows.dropna()
    assert abs(np.corrcoef(both["a"], both["b"])[0, 1]) < 0.1


def test_distill_plan_split_and_provenance():
    df = mixed_frame(400)
    oracle = counting_oracle()
    d = distill(oracle, df, strategy=["observed", "perturb", "marginal"], n=1001, holdout=0.25, random_state=3)
    assert (d.source[d.is_holdout] == "observed").all()
    assert d.is_holdout.sum() == 100
    counts = pd.Series(d.source[~d.is_holdout]).value_counts().to_dict()
    assert counts == {"observed": 300, "perturb": 501, "marginal": 500}
    assert d.n_queries == oracle.n_queries == len(d) == 1401
    # Observed rows are the user's rows, found again through `origin`.
    obs = d.origin >= 0
    canon = Schema.from_frame(df).validate(df)
    pd.testing.assert_frame_equal(
        d.rows[obs].reset_index(drop=True), canon.iloc[d.origin[obs]].reset_index(drop=True), check_dtype=False
    )
    assert sorted(d.origin[obs]) == list(range(400))
    # Outputs are the network's answers on those rows.
    np.testing.assert_allclose(d.outputs, oracle.query(d.rows))


def test_same_seed_same_set_other_seed_other_set():
    df = mixed_frame(200)
    a = distill(counting_oracle(), df, n=500, random_state=7)
    b = distill(counting_oracle(), df, n=500, random_state=7)
    c = distill(counting_oracle(), df, n=500, random_state=8)
    pd.testing.assert_frame_equal(a.rows, b.rows)
    assert not a.rows.equals(c.rows)


def test_strategy_mapping_and_pure_trepan():
    df = mixed_frame(200)
    d = distill(counting_oracle(), df, strategy={"marginal": 300})
    assert set(d.source[~d.is_holdout]) == {"marginal"} and (~d.is_holdout).sum() == 300


@pytest.mark.parametrize(
    "kwargs, err, pattern",
    [
        ({"strategy": "smote"}, ParameterError, "unknown distillation strategy.*smote"),
        ({"strategy": []}, ParameterError, "empty"),
        ({"n": -1, "strategy": ["perturb"]}, ParameterError, "n must be"),
        ({"holdout": 1.5}, ParameterError, "holdout"),
        ({"strategy": {"perturb": 10}, "n": 5}, ParameterError, "not both"),
    ],
)
def test_distill_argument_errors(kwargs, err, pattern):
    with pytest.raises(err, match=pattern):
        distill(counting_oracle(), mixed_frame(50), **kwargs)


def test_distill_validates_the_reference():
    df = mixed_frame(50)
    schema = Schema.from_frame(df)
    with pytest.raises(SchemaError, match="reference data.*missing column"):
        distill(counting_oracle(), df.drop(columns="age"), schema=schema)


def test_samplers_cope_with_a_feature_missing_from_every_training_row():
    df = mixed_frame(300)
    schema = Schema.from_frame(df)
    obs = schema.validate(df)
    obs["x"] = np.nan
    obs["color"] = np.nan
    for name, sampler in SAMPLERS.items():
        rows = sampler(schema, obs, 500, np.random.default_rng(0))
        check_inside_schema(schema, rows)
