"""Outcomes and fidelity per group: against a direct groupby, a surrogate wrong in one group
flagged there alone, numeric columns cut into quartile bands, and the bad-input errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from pellucid import Oracle
from pellucid.errors import ParameterError
from pellucid.fidelity.groups import group_fidelity
from pellucid.fidelity.intervals import wilson

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Sign(torch.nn.Module):
    def forward(self, x):
        gap = 3.0 * x[:, 0]
        return torch.stack([torch.zeros_like(gap), gap], dim=1)


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    n = 3000
    X = pd.DataFrame({"x": rng.normal(size=n), "age": rng.integers(18, 80, n).astype(float)})
    region = pd.Series(rng.choice(["north", "south", "east"], n), name="region")
    oracle = Oracle(Sign().double(), classes=["declined", "approved"], verbose=0)
    truth = np.where(rng.random(n) < 0.9, np.where(X.x > 0, "approved", "declined"),
                     np.where(X.x > 0, "declined", "approved"))

    class WrongInSouth:
        """Agrees with the network except on 30% of the south's rows."""

        def predict(self, rows):
            net = np.where(rows["x"].to_numpy() > 0, "approved", "declined")
            flip = (region.to_numpy() == "south") & (np.arange(len(rows)) % 10 < 3)
            return np.where(flip, np.where(net == "approved", "declined", "approved"), net)

    return X, region, oracle, truth, WrongInSouth()


def test_rates_equal_a_direct_groupby_and_the_wrong_group_is_flagged(setup):
    X, region, oracle, truth, surrogate = setup
    out = group_fidelity(oracle, X, "region", target=truth, surrogate=surrogate, favourable="approved",
                         group_data=region.to_frame())
    pred = np.where(X.x > 0, "approved", "declined")
    frame = pd.DataFrame({"g": region, "fav": pred == "approved", "ok": pred == truth,
                          "agree": surrogate.predict(X) == pred})
    want = frame.groupby("g").agg(["mean", "size"])
    for _, row in out.iterrows():
        w = want.loc[row["group"]]
        assert row["rows"] == w[("fav", "size")]
        assert row["favourable_rate"] == pytest.approx(w[("fav", "mean")])
        assert row["accuracy"] == pytest.approx(w[("ok", "mean")])
        assert row["agreement"] == pytest.approx(w[("agree", "mean")])
        assert row["agreement_ci"] == pytest.approx(wilson(w[("agree", "mean")] * row["rows"], row["rows"]))
    assert set(out.loc[out["lower_fidelity"], "group"]) == {"south"}


def test_numeric_columns_become_quartile_bands_and_missing_is_a_group(setup):
    X, region, oracle, truth, _ = setup
    out = group_fidelity(oracle, X, ["age"], favourable="approved")
    assert len(out) == 4 and out["group"].str.match(r"^\[\d+, \d+[)\]]$").all()
    assert out["rows"].sum() == len(X) and out["agreement"].isna().all() and not out["lower_fidelity"].any()
    with_missing = X.assign(band=np.where(np.arange(len(X)) % 5 == 0, None, np.where(X.x > 1, "high", "low")))
    got = group_fidelity(oracle, X, "band", favourable="approved", group_data=with_missing)
    assert set(got["group"]) == {"high", "low", "missing"}


def test_bad_input_gets_one_clear_error(setup):
    X, region, oracle, truth, surrogate = setup
    with pytest.raises(ParameterError, match=r"group column\(s\) \['Marital'\] are not columns"):
        group_fidelity(oracle, X, "Marital", favourable="approved")
    with pytest.raises(ParameterError, match="'one' holds a single value"):
        group_fidelity(oracle, X, "one", favourable="approved", group_data=X.assign(one="a"))
    with pytest.raises(ParameterError, match="target has 5 values; rows has 3000"):
        group_fidelity(oracle, X, "age", target=truth[:5])
    with pytest.raises(ParameterError, match="favourable 'yes' is not one of the model's classes"):
        group_fidelity(oracle, X, "age", favourable="yes")
    with pytest.raises(ParameterError, match="nothing to compare"):
        group_fidelity(oracle, X, "age")
    reg = Oracle(torch.nn.Linear(2, 1).double(), task="regression", verbose=0)
    with pytest.raises(ParameterError, match="this model is a regressor"):
        group_fidelity(reg, X, "age", favourable="approved")
