"""The "trepan" strategy: rows drawn inside a tree's leaves from the observed rows' local density."""

import numpy as np
import pytest

from pellucid import distill

from .conftest import correlated_frame, threshold_oracle

# That the rows keep the data's correlation and stay inside it, and that a seed gives the same
# rows: tests/test_neighbours.py, for this strategy and neighbours.


def test_rows_go_where_the_answers_are_mixed_and_weights_restore_the_data():
    df = correlated_frame(seed=1)
    d = distill(threshold_oracle(), df, strategy={"observed": None, "trepan": 4000}, random_state=1)
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
    flat = distill(threshold_oracle(), df, strategy={"observed": None, "trepan": 400}, random_state=1,
                   sampler_params={"trepan": {"weighting": "none"}})
    assert (flat.weights[flat.source == "trepan"] == 1).all()
