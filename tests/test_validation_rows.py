"""The validation rows: observed training rows that no sampler draws from, on which a frontier
chooses among its fits."""

import sys

import numpy as np
import pandas as pd
import pytest

from pellucid import Oracle, distill
from pellucid.errors import ParameterError
from pellucid.extraction import samplers
from pellucid.fidelity import frontier


def correlated(n=600, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    df = pd.DataFrame({
        "a": a.round(4),
        "b": (a + 0.15 * rng.normal(size=n)).round(4),
        "c": rng.choice(["x", "y", "z"], n, p=[0.6, 0.3, 0.1]).astype(object),
    })
    df.loc[rng.random(n) < 0.05, "b"] = np.nan
    return df


def oracle():
    def net(d):
        p = 1 / (1 + np.exp(-4 * (d["a"].to_numpy() - 0.5)))
        return np.c_[1 - p, p]

    return Oracle(net, task="classification", classes=["no", "yes"])


def _copies(df):
    """Rows with a distinct key, so that a copy of one is found by its key."""
    out = df.copy()
    out["key"] = np.arange(len(df), dtype=float) * 1000.0
    return out


@pytest.mark.parametrize("stream", [False, True])
def test_no_sampler_draws_from_the_validation_rows(tmp_path, stream, monkeypatch):
    df = _copies(correlated(n=600, seed=5))
    seen = []
    real = samplers.draw_active

    def spy(name, count, schema, observed, rng, oracle, rows, outputs, weights, params):
        seen.append((observed["key"].to_numpy(), rows["key"].to_numpy()))
        return real(name, count, schema, observed, rng, oracle, rows, outputs, weights, params)

    for module in ("pellucid.extraction.distill", "pellucid.extraction.stream"):
        monkeypatch.setattr(sys.modules[module], "draw_active", spy)
    # perturb with no noise copies rows exactly: a copy of a validation row would show.
    d = distill(oracle(), df, strategy={"observed": None, "perturb": 3000, "trepan": 400}, random_state=1,
                sampler_params={"perturb": {"scale": 0.0, "p_categorical": 0.0}},
                out=tmp_path / "d.parquet" if stream else None)
    val = d.is_validation
    observed_train = (d.source == "observed") & ~d.is_holdout
    assert not (val & ~observed_train).any()
    assert val.sum() == round(0.2 * observed_train.sum())
    held = set(d.rows["key"][val])
    copies = d.rows["key"][d.source == "perturb"]
    assert len(set(copies)) > 300 and held.isdisjoint(copies)
    assert seen and all(held.isdisjoint(o) and held.isdisjoint(r) for o, r in seen)
    # The frontier chooses on exactly these rows, and fits on none of them.
    front = frontier(d, candidates=["decision_tree"], sizes=[4], random_state=0, verbose=0)
    assert set(front.validation_set.rows["key"]) == held
    assert held.isdisjoint(front.fit_set.rows["key"])


def test_validation_share_is_checked_and_none_holds_nothing_back():
    df = correlated(n=300, seed=6)
    d = distill(oracle(), df, strategy={"observed": None, "perturb": 200}, validation=None, random_state=0)
    assert d.is_validation is None
    with pytest.raises(ParameterError, match="validation must be a share"):
        distill(oracle(), df, validation=1.5)
    # A set that marks no rows: the frontier holds back its own seeded share, as before.
    front = frontier(d, candidates=["decision_tree"], sizes=[4], random_state=0, verbose=0)
    assert len(front.validation_set) == round(0.2 * ((d.source == "observed") & ~d.is_holdout).sum())
