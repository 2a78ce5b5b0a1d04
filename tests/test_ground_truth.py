"""The network against the user's target: accuracy with its Wilson interval, R² with its
bootstrap interval, each checked against a computation of its own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from sklearn.metrics import r2_score

from pellucid.errors import SchemaError
from pellucid.extraction import distill
from pellucid.fidelity import ground_truth
from pellucid.fidelity.intervals import percentile_interval, poisson_weights

from .conftest import mixed_frame
from .test_tree import mixed_oracle


def _target(frame: pd.DataFrame, task: str, rng) -> pd.Series:
    x = np.nan_to_num(frame["x"].astype(float).to_numpy(), nan=12.0)
    if task == "regression":
        y = pd.Series(x / 5 + rng.normal(0, 0.4, len(frame)))
    else:
        y = pd.Series(np.where(x + rng.normal(0, 2, len(frame)) > 10, "no", "yes"), dtype=object)
    y.iloc[::17] = None  # some rows without a known target
    return y


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_network_against_target_with_intervals(task):
    frame = mixed_frame(1500, seed=2)
    oracle = mixed_oracle(task=task, classes=("no", "yes"))
    dset = distill(oracle, frame, strategy="observed", random_state=0)
    y = _target(frame, task, np.random.default_rng(0))
    got = ground_truth(dset, y, "y", random_state=5)
    hold = np.flatnonzero(dset.is_holdout)
    truth = y.to_numpy()[dset.origin[hold]]
    known = ~pd.isna(truth)
    assert got["n"] == known.sum() > 100 and got["rows"] == "holdout" and got["target"] == "y"
    assert got["intervals"]["level"] == 0.95
    if task == "classification":
        right = int((dset.labels[hold][known].astype(str) == truth[known].astype(str)).sum())
        ci = binomtest(right, int(known.sum())).proportion_ci(method="wilson")
        assert got["accuracy"] == right / known.sum()
        assert got["accuracy_ci"] == pytest.approx([ci.low, ci.high], abs=1e-12)
        assert got["intervals"]["methods"] == {"accuracy": "Wilson score"}
        return
    t, pred = truth[known].astype(float), dset.outputs[hold][known]
    assert got["r2"] == pytest.approx(r2_score(t, pred))
    # The interval: R² under each replicate's Poisson weights of the compared rows (in order).
    w = poisson_weights(5, 0, len(t)).astype(float)
    reps = [r2_score(t, pred, sample_weight=w[:, b]) for b in range(w.shape[1])]
    assert got["r2_ci"] == pytest.approx(percentile_interval(reps, got["r2"]), rel=1e-5)
    assert got["r2_ci"][0] < got["r2"] < got["r2_ci"][1]
    assert got["intervals"]["methods"]["r2"] == "percentile bootstrap, 200 Poisson(1) resamples of the rows, seed 5"
    assert ground_truth(dset, y, "y", random_state=5) == got


def test_no_target_and_bad_targets():
    frame = mixed_frame(300, seed=2)
    dset = distill(mixed_oracle(classes=("no", "yes")), frame, strategy="observed", random_state=0)
    assert ground_truth(dset, None) is None
    assert ground_truth(dset, pd.Series([None] * len(frame)), "y") == {"target": "y", "n": 0, "rows": "holdout"}
    with pytest.raises(SchemaError, match="network's classes"):
        ground_truth(dset, pd.Series(["a"] * len(frame)), "y")
    reg = distill(mixed_oracle(task="regression"), frame, strategy="observed", random_state=0)
    with pytest.raises(SchemaError, match="non-numeric"):
        ground_truth(reg, pd.Series(["a"] * len(frame)), "y")


def test_every_target_value_must_be_a_class():
    """A target that matches the classes only in part ('Bad' for 'bad') would score every
    unmatched row as a mistake of the network: the run stops, naming the values and classes."""
    frame = mixed_frame(300, seed=2)
    dset = distill(mixed_oracle(classes=("no", "yes")), frame, strategy="observed", random_state=0)
    y = pd.Series(np.where(np.arange(len(frame)) % 3 == 0, "Yes", "no"), index=[f"r{i}" for i in range(len(frame))])
    y.iloc[0] = "no"  # the first unmatched row is the fourth
    with pytest.raises(SchemaError, match=r"'y' \(target=\) holds value \['Yes'\] that is not a class of the network "
                                          r"\(99 of 300 rows, first at row 'r3'\); the network's classes are "
                                          r"\['no', 'yes'\]"):
        ground_truth(dset, y, "y")
    # Labels written as numbers are the same labels: 1.0 (a CSV column with a gap) is class 1.
    numeric = distill(mixed_oracle(classes=(0, 1)), frame, strategy="observed", random_state=0)
    ones = pd.Series(np.where(np.arange(len(frame)) % 2 == 0, 1.0, 0.0))
    ones.iloc[5] = np.nan
    got = ground_truth(numeric, ones, "y")
    hold = np.flatnonzero(numeric.is_holdout)
    truth = ones.to_numpy()[numeric.origin[hold]]
    known = ~np.isnan(truth)
    assert got["accuracy"] == np.mean(numeric.labels[hold][known].astype(float) == truth[known])
