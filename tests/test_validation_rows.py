"""The validation rows: observed training rows that no sampler draws from, on which a frontier
chooses among its fits."""

import sys

import numpy as np
import pytest

from pellucid import distill
from pellucid.errors import ParameterError
from pellucid.extraction import samplers
from pellucid.fidelity import frontier

from .conftest import correlated_frame, threshold_oracle


def _copies(df):
    """Rows with a distinct key, so that a copy of one is found by its key."""
    out = df.copy()
    out["key"] = np.arange(len(df), dtype=float) * 1000.0
    return out


@pytest.mark.parametrize("stream", [False, True])
def test_no_sampler_draws_from_the_validation_rows(tmp_path, stream, monkeypatch):
    df = _copies(correlated_frame(n=600, seed=5))
    seen = []
    real = samplers.draw_active

    def spy(name, count, schema, observed, rng, oracle, rows, outputs, weights, params):
        seen.append((observed["key"].to_numpy(), rows["key"].to_numpy()))
        return real(name, count, schema, observed, rng, oracle, rows, outputs, weights, params)

    for module in ("pellucid.extraction.distill", "pellucid.extraction.stream"):
        monkeypatch.setattr(sys.modules[module], "draw_active", spy)
    # perturb with no noise copies rows exactly: a copy of a validation row would show.
    d = distill(threshold_oracle(), df, strategy={"observed": None, "perturb": 3000, "trepan": 400}, random_state=1,
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
    df = correlated_frame(n=300, seed=6)
    d = distill(threshold_oracle(), df, strategy={"observed": None, "perturb": 200}, validation=None, random_state=0)
    assert d.is_validation is None
    with pytest.raises(ParameterError, match="validation must be a share"):
        distill(threshold_oracle(), df, validation=1.5)
    # A set that marks no rows: the frontier holds back its own seeded share, as before.
    front = frontier(d, candidates=["decision_tree"], sizes=[4], random_state=0, verbose=0)
    assert len(front.validation_set) == round(0.2 * ((d.source == "observed") & ~d.is_holdout).sum())
