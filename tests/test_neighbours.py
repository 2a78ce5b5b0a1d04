"""The "neighbours" strategy (rows between observed rows and their nearest neighbours), and what
it shares with "trepan": rows that keep the data's joint distribution, the same rows for a seed."""

import numpy as np
import pandas as pd
import pytest

from pellucid import distill
from pellucid.errors import ParameterError
from pellucid.extraction import samplers
from pellucid.fidelity.extrapolation import extrapolation
from pellucid.schema import Schema

from .conftest import correlated_frame, threshold_oracle


@pytest.mark.parametrize("strategy", ["neighbours", "trepan"])
def test_rows_keep_the_datas_correlation_and_stay_inside_it(strategy):
    # Both draw from the observed rows' own joint distribution (trepan within a tree's leaves),
    # not from independent marginals.
    df = correlated_frame()
    d = distill(threshold_oracle(), df, strategy={"observed": None, strategy: 3000, "marginal": 3000}, random_state=0)
    t = d.rows[d.source == strategy]
    obs = df.dropna()
    r_obs = np.corrcoef(obs["a"], obs["b"])[0, 1]
    tt = t.dropna()
    assert abs(np.corrcoef(tt["a"], tt["b"])[0, 1] - r_obs) < 0.03
    m = d.rows[d.source == "marginal"].dropna()
    assert np.corrcoef(m["a"], m["b"])[0, 1] < 0.5
    ex = extrapolation(d, random_state=0)
    share = {k: v["outside"] for k, v in ex["strategies"].items()}
    assert share[strategy] < 0.05 < share["marginal"]
    # Inside the schema: categories seen, integers whole, ranges kept, missing values at about
    # the data's rate.
    assert set(t["c"].dropna()) <= set(df["c"]) and (t["k"] == t["k"].round()).all()
    assert t["a"].between(df["a"].min(), df["a"].max()).all()
    assert t["b"].isna().mean() == pytest.approx(df["b"].isna().mean(), abs=0.02)
    assert not t.duplicated().all()


def test_each_row_lies_between_an_observed_row_and_one_of_its_nearest():
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"x": rng.normal(size=200).round(3), "y": rng.normal(size=200).round(3),
                       "g": rng.choice(["p", "q"], 200).astype(object)})
    schema = Schema.from_frame(df)
    out = samplers.neighbours(schema, df, 500, np.random.default_rng(0), k=3)
    space = samplers._neighbour_space(schema, df)
    dist = ((space[:, None, :] - space[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    near = np.argsort(dist, axis=1)[:, :3]
    X = df[["x", "y"]].to_numpy()
    for row in out.itertuples(index=False):
        p = np.array([row.x, row.y])
        found = False
        for a in range(len(df)):
            for b in near[a]:
                d = X[b] - X[a]
                u = float(np.dot(p - X[a], d) / np.dot(d, d)) if np.dot(d, d) else 0.0
                if 0 <= u <= 1 and np.allclose(X[a] + u * d, p, atol=1e-9) and row.g == df["g"][b if u >= 0.5 else a]:
                    found = True
                    break
            if found:
                break
        assert found, row


@pytest.mark.parametrize("strategy, bad, message", [("neighbours", {"k": 0}, "neighbours: k"),
                                                     ("trepan", {"bandwidth": 0}, "bandwidth")])
def test_the_same_seed_gives_the_same_rows_and_bad_options_are_named(strategy, bad, message):
    df = correlated_frame(n=400, seed=2)
    a = distill(threshold_oracle(), df, strategy={"observed": None, strategy: 500}, random_state=3)
    b = distill(threshold_oracle(), df, strategy={"observed": None, strategy: 500}, random_state=3)
    pd.testing.assert_frame_equal(a.rows, b.rows)
    with pytest.raises(ParameterError, match=message):
        distill(threshold_oracle(), df, strategy={"observed": None, strategy: 50}, sampler_params={strategy: bad})
