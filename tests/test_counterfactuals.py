"""Counterfactuals: on networks whose closest flip is known, against brute force over single
changes, inside the schema (observed ranges, known categories, whole numbers), immutable and
monotone features respected, and the bad-input errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from pellucid import Oracle
from pellucid.errors import ParameterError
from pellucid.surrogates.counterfactuals import counterfactuals

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def logits_of(fn, classes=("no", "yes")):
    """An oracle whose 'yes' logit gap is ``fn`` of the raw table (numbers only, no preprocess)."""

    class Net(torch.nn.Module):
        def forward(self, x):
            gap = fn(x)
            return torch.stack([torch.zeros_like(gap), gap], dim=1)

    return Oracle(Net().double(), classes=list(classes), verbose=0)


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x0": rng.normal(size=500), "x1": rng.normal(size=500) * 3,
                         "n": rng.integers(0, 10, 500), "x3": rng.normal(size=500)})


def test_the_closest_single_change_beats_brute_force_over_the_observed_values(table):
    oracle = logits_of(lambda x: 2.0 * x[:, 0] + 0.5 * x[:, 1] - 1.0)
    rows = table[(2.0 * table.x0 + 0.5 * table.x1 - 1.0) < -1].head(20)
    out = counterfactuals(oracle, rows, reference=table, target_class="yes")
    assert out["found"].all() and out["valid"].all() and list(out.index) == list(rows.index)
    spread = {c: min(table[c].std(ddof=0), (table[c].quantile(.75) - table[c].quantile(.25)) / 1.349) for c in table}
    for r, row in rows.iterrows():
        cf = out.loc[r]
        # brute force: every observed value of every feature, one at a time
        best = np.inf
        for c in table.columns:
            for v in np.unique(table[c]):
                x = row.copy()
                x[c] = v
                if 2.0 * x.x0 + 0.5 * x.x1 - 1.0 > 0.05:
                    best = min(best, abs(v - row[c]) / spread[c])
        # the pull-back finds the boundary to 1/4096 of the change, observed values are a grid
        assert cf["distance"] <= best * (1 + 1e-3) + 1e-9, (r, cf["distance"], best)
        new = np.array([cf["cf_x0"], cf["cf_x1"], cf["cf_n"], cf["cf_x3"]], dtype=float)
        assert 2.0 * new[0] + 0.5 * new[1] - 1.0 > 0  # the network decides "yes"
        assert cf["cf_x3"] == row["x3"] and cf["n_changes"] <= 3


def test_changes_stay_inside_the_schema_and_respect_immutable_and_monotone(table):
    oracle = logits_of(lambda x: x[:, 0] - 0.4 * x[:, 2] + 0.2 * x[:, 3])
    rows = table[(table.x0 - 0.4 * table.n + 0.2 * table.x3) < -1].head(15)
    out = counterfactuals(oracle, rows, reference=table, target_class="yes", immutable=["x0"],
                          monotone={"x3": "increase"})
    assert out["found"].any()
    for r, cf in out[out["found"]].iterrows():
        assert cf["cf_x0"] == rows.loc[r, "x0"]  # immutable
        assert cf["cf_x3"] >= rows.loc[r, "x3"]  # monotone
        assert float(cf["cf_n"]).is_integer() and table.n.min() <= cf["cf_n"] <= table.n.max()
        assert table.x3.min() <= cf["cf_x3"] <= table.x3.max()
    # only a decrease of x0 would help, and x0 may only increase: none found, and said so
    no = counterfactuals(logits_of(lambda x: -3.0 * x[:, 0] - 10.0), rows.head(3), reference=table,
                         target_class="yes", immutable=["x1", "n", "x3"], monotone={"x0": "increase"})
    assert not no["found"].any() and no["note"].str.contains("no change of at most 3").all()


def test_categories_change_to_known_categories():
    rng = np.random.default_rng(1)
    table = pd.DataFrame({"home": rng.choice(["rent", "own", "mortgage"], 300), "x": rng.normal(size=300)})
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    pre = ColumnTransformer([("c", OneHotEncoder(sparse_output=False), ["home"])], remainder="passthrough").fit(table)
    names = list(pre.get_feature_names_out())
    w = torch.zeros(len(names), dtype=torch.float32)
    w[names.index("c__home_own")] = 4.0
    net = torch.nn.Linear(len(names), 2)
    with torch.no_grad():
        net.weight.zero_()
        net.bias.copy_(torch.tensor([0.0, -2.0]))
        net.weight[1] = w
    oracle = Oracle(net, preprocess=pre, classes=["declined", "approved"], verbose=0)
    rows = table[table.home != "own"].head(5)
    out = counterfactuals(oracle, rows, reference=table, target_class="approved")
    assert out["valid"].all() and (out["cf_home"] == "own").all() and (out["n_changes"] == 1).all()
    assert out["changes"].str.match(r"home: (rent|mortgage) -> own$").all()
    already = counterfactuals(oracle, table[table.home == "own"].head(2), reference=table, target_class="approved")
    assert not already["found"].any() and (already["note"] == "already decided approved").all()


def test_several_counterfactuals_use_other_features(table):
    oracle = logits_of(lambda x: x[:, 0] + x[:, 1] + x[:, 3] - 2.0)
    rows = table[(table.x0 + table.x1 + table.x3) < 0].head(5)
    out = counterfactuals(oracle, rows, reference=table, target_class="yes", n=2)
    assert list(out["counterfactual"]) == [1, 2] * 5
    for r in rows.index:
        both = out.loc[[r]]
        sets = [frozenset(p.split(":")[0] for p in c.split("; ")) for c in both["changes"].dropna()]
        assert len(set(sets)) == len(sets)
        d = both["distance"].to_numpy()
        assert np.all(np.diff(d[~np.isnan(d)]) >= -0.5)  # the first is the closest set found, up to the pull-back


def test_bad_input_gets_one_clear_error(table):
    oracle = logits_of(lambda x: x[:, 0])
    rows = table.head(3)
    with pytest.raises(ParameterError, match=r"immutable names \['age'\], which are not features"):
        counterfactuals(oracle, rows, immutable=["age"])
    with pytest.raises(ParameterError, match=r"monotone\['x0'\] must be 'increase' or 'decrease'"):
        counterfactuals(oracle, rows, monotone={"x0": "up"})
    with pytest.raises(ParameterError, match="max_changes must be"):
        counterfactuals(oracle, rows, max_changes=0)
    with pytest.raises(ParameterError, match="'maybe' is not one of the model's classes"):
        counterfactuals(oracle, rows, target_class="maybe")
    reg = Oracle(torch.nn.Linear(4, 1).double(), task="regression", verbose=0)
    with pytest.raises(ParameterError, match="this model is a regressor"):
        counterfactuals(reg, rows)
    cat = pd.DataFrame({"home": ["rent", "own"] * 5, "x": np.arange(10.0)})
    with pytest.raises(ParameterError, match=r"monotone\['home'\]: 'home' is categorical"):
        counterfactuals(oracle, cat, monotone={"home": "increase"})
