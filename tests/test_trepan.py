"""The "trepan" strategy: rows drawn inside a tree's leaves from the observed rows' local density."""

import numpy as np
import pandas as pd
import pytest

from pellucid import Oracle, distill
from pellucid.errors import ParameterError
from pellucid.fidelity.extrapolation import extrapolation


def correlated(n=1500, seed=0):
    """Two strongly correlated numbers, an integer, a category and missing values."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    df = pd.DataFrame({
        "a": a.round(4),
        "b": (a + 0.15 * rng.normal(size=n)).round(4),
        "k": rng.integers(0, 10, n),
        "c": rng.choice(["x", "y", "z"], n, p=[0.6, 0.3, 0.1]).astype(object),
    })
    df.loc[rng.random(n) < 0.05, "b"] = np.nan
    return df


def oracle(threshold=1.0):
    # Sure almost everywhere; the answers are mixed only near a = threshold.
    def net(d):
        p = 1 / (1 + np.exp(-8 * (d["a"].to_numpy() - threshold)))
        return np.c_[1 - p, p]

    return Oracle(net, task="classification", classes=["no", "yes"])


def test_rows_stay_in_the_data_where_marginal_rows_leave_it():
    df = correlated()
    d = distill(oracle(), df, strategy={"observed": None, "trepan": 3000, "marginal": 3000}, random_state=0)
    t = d.rows[d.source == "trepan"]
    obs = df.dropna()
    # The features' correlation is the data's, not broken as independent marginals break it.
    r_obs = np.corrcoef(obs["a"], obs["b"])[0, 1]
    tt = t.dropna()
    assert abs(np.corrcoef(tt["a"], tt["b"])[0, 1] - r_obs) < 0.03
    m = d.rows[d.source == "marginal"].dropna()
    assert np.corrcoef(m["a"], m["b"])[0, 1] < 0.5
    ex = extrapolation(d, random_state=0)
    share = {k: v["outside"] for k, v in ex["strategies"].items()}
    assert share["trepan"] < 0.05 < share["marginal"]
    # Inside the schema: categories seen, integers whole, ranges kept, missing values where seen.
    assert set(t["c"].dropna()) <= set(df["c"]) and (t["k"] == t["k"].round()).all()
    assert t["a"].between(df["a"].min(), df["a"].max()).all()


def test_rows_go_where_the_answers_are_mixed_and_weights_restore_the_data():
    df = correlated(seed=1)
    d = distill(oracle(), df, strategy={"observed": None, "trepan": 4000}, random_state=1)
    t = d.subset(d.source == "trepan")
    near = lambda x: (np.abs(x - 1.0) < 0.4)  # noqa: E731
    # Observed rows near the threshold are a small share of the data; drawn rows crowd there.
    assert near(t.rows["a"]).mean() > 2 * near(df["a"]).mean()
    # The importance weights give the drawn rows, as a whole, the data's distribution.
    w = t.weights
    assert np.average(near(t.rows["a"]), weights=w) == pytest.approx(near(df["a"]).mean(), abs=0.03)
    assert np.average(t.rows["a"], weights=w) == pytest.approx(df["a"].mean(), abs=0.08)
    info = d.params["active"]["trepan"]
    assert [r["n_rows"] for r in info["rounds"]] == [1000] * 4 and info["settings"]["weighting"] == "importance"
    flat = distill(oracle(), df, strategy={"observed": None, "trepan": 400}, random_state=1,
                   sampler_params={"trepan": {"weighting": "none"}})
    assert (flat.weights[flat.source == "trepan"] == 1).all()


def test_the_same_seed_gives_the_same_rows_and_bad_options_are_named():
    df = correlated(n=400, seed=2)
    a = distill(oracle(), df, strategy={"observed": None, "trepan": 500}, random_state=3)
    b = distill(oracle(), df, strategy={"observed": None, "trepan": 500}, random_state=3)
    pd.testing.assert_frame_equal(a.rows, b.rows)
    with pytest.raises(ParameterError, match="bandwidth"):
        distill(oracle(), df, strategy={"observed": None, "trepan": 50}, sampler_params={"trepan": {"bandwidth": 0}})
