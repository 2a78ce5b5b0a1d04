"""Streaming distillation: chunks written to Parquet, a uniform weighted sample kept, memory
bounded by the chunk and the sample rather than by the rows made."""

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from pellucid import distill, read_distillation
from pellucid.errors import DataFileError, ParameterError

from .conftest import mixed_frame
from .test_tree import mixed_oracle


@pytest.fixture(scope="module")
def oracle():
    return mixed_oracle()


def _frames_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    # Categorical columns may be object or pandas string dtype; the values must be the same.
    pd.testing.assert_frame_equal(a.reset_index(drop=True).astype(object), b.reset_index(drop=True).astype(object))


def test_file_holds_every_row_and_reads_back(oracle, tmp_path):
    X = mixed_frame(800)
    path = tmp_path / "d.parquet"
    full = distill(oracle, X, n=5000, out=path, chunk_rows=700, random_state=0)
    back = read_distillation(path)
    assert len(full) == len(back) == 800 + 5000 == full.n_queries
    _frames_equal(back.rows, full.rows)
    np.testing.assert_array_equal(back.outputs, full.outputs)
    for attr in ("weights", "source", "is_holdout", "origin"):
        np.testing.assert_array_equal(getattr(back, attr), getattr(full, attr))
    assert list(back.classes) == list(full.classes)
    # The schema's own category values come back, not their text.
    assert set(back.rows["color"].dropna()) <= set(full.schema["color"].categories)
    # Held-out rows are observed rows, and the network's answers on them are what it says.
    hold = back.holdout
    np.testing.assert_allclose(hold.outputs, oracle.query(hold.rows))
    _frames_equal(hold.rows, full.schema.validate(X).iloc[np.sort(hold.origin)].reset_index(drop=True))


def test_rows_made_do_not_depend_on_what_is_kept(oracle, tmp_path):
    X = mixed_frame(600)
    a = distill(oracle, X, n=4000, out=tmp_path / "a.parquet", keep=300, chunk_rows=512, random_state=3)
    b = distill(oracle, X, n=4000, out=tmp_path / "b.parquet", chunk_rows=512, random_state=3)
    ra, rb = read_distillation(tmp_path / "a.parquet"), read_distillation(tmp_path / "b.parquet")
    _frames_equal(ra.rows, rb.rows)
    np.testing.assert_array_equal(ra.outputs, rb.outputs)
    # The kept sample: exactly 300 synthetic rows, each one of the rows made, weighted 4000/300.
    synth = a.source != "observed"
    assert synth.sum() == 300 and a.params["stream"]["synthetic_kept"] == 300
    np.testing.assert_allclose(a.weights[synth], 4000 / 300)
    np.testing.assert_allclose(a.weights[~synth], 1.0)
    made = rb.rows[rb.source != "observed"].round(9).astype(str).agg(lambda r: "|".join(map(str, r)), axis=1)
    kept = a.rows[synth].round(9).astype(str).agg(lambda r: "|".join(map(str, r)), axis=1)
    assert kept.isin(set(made)).all()
    # Observed rows and the holdout are those of the whole set.
    _frames_equal(a.rows[~synth], b.rows[b.source == "observed"])


def test_kept_sample_is_uniform_over_strategies_and_chunks(oracle):
    X = mixed_frame(400)
    d = distill(oracle, X, strategy={"observed": 300, "perturb": 6000, "marginal": 2000}, keep=2000,
                chunk_rows=1000, random_state=0)
    src = d.source[~d.is_holdout]
    share = np.mean(src[src != "observed"] == "perturb")
    assert abs(share - 0.75) < 0.04  # binomial sd about 0.01
    assert d.params["stream"]["rows"] == d.n_queries == 400 + 8000


def test_regression_and_active_sampler_stream(tmp_path):
    oracle = mixed_oracle(task="regression")
    X = mixed_frame(500)
    path = tmp_path / "r.parquet"
    d = distill(oracle, X, strategy={"observed": 375, "marginal": 3000, "boundary": 400}, out=path, keep=500,
                chunk_rows=1000, random_state=0, sampler_params={"boundary": {"rounds": 2}})
    back = read_distillation(path)
    assert len(back) == 500 + 3000 + 400 == back.params["rows_in_file"]
    assert (back.source == "boundary").sum() == 400 and (d.source == "boundary").sum() == 400
    assert back.outputs.ndim == 1
    np.testing.assert_allclose(back.outputs[back.source == "boundary"], oracle.query(back.rows[back.source == "boundary"]))
    sample = read_distillation(path, sample=200, random_state=1)
    assert (~sample.is_holdout).sum() == 200 and sample.is_holdout.sum() == back.is_holdout.sum()


def test_memory_is_bounded_by_chunk_and_sample(oracle):
    """Peak Python-side memory (numpy and pandas allocations) of a stream that makes 8 times
    more rows stays within 1.5 times, because only one chunk and the kept sample are held."""
    X = mixed_frame(300)

    def peak(n):
        tracemalloc.start()
        distill(oracle, X, n=n, keep=2000, chunk_rows=20_000, random_state=0)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(40_000), peak(320_000)
    assert large < 1.5 * small, (small, large)
    # Without streaming the set grows with n (the check above can fail).
    tracemalloc.start()
    distill(oracle, X, n=320_000, random_state=0)
    _, whole = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert whole > 3 * large


def test_errors_name_the_problem(oracle, tmp_path):
    X = mixed_frame(200)
    with pytest.raises(ParameterError, match="keep"):
        distill(oracle, X, keep=-1)
    with pytest.raises(ParameterError, match="chunk_rows"):
        distill(oracle, X, keep=10, chunk_rows=0)
    with pytest.raises(DataFileError, match="does not exist"):
        read_distillation(tmp_path / "none.parquet")
    X.to_parquet(tmp_path / "plain.parquet")
    with pytest.raises(DataFileError, match="not a distillation file"):
        read_distillation(tmp_path / "plain.parquet")
    distill(oracle, X, n=100, out=tmp_path / "ok.parquet")
    with pytest.raises(ParameterError, match="sample"):
        read_distillation(tmp_path / "ok.parquet", sample=0)


def test_choose_sample_stops_where_doubling_no_longer_pays(oracle, tmp_path):
    from pellucid.fidelity import choose_sample, frontier

    X = mixed_frame(1500)
    path = tmp_path / "c.parquet"
    d = distill(oracle, X, n=40_000, out=path, random_state=0)
    # A tree of 4 leaves learns all it can from a few thousand rows: the choice stops early.
    small = choose_sample(path, "decision_tree", 4, start=2000, gain=0.002)
    assert small.available == (~d.is_holdout).sum() and small.rows < small.available
    scores = [s["score"] for s in small.steps]
    assert [s["rows"] for s in small.steps] == [2000 * 2**i for i in range(len(scores))]
    # Stopped after two doublings without gain over the best before them ...
    assert len(scores) >= 3 and max(scores[-2:]) <= max(scores[:-2]) + 0.002
    # ... and chose the smallest sample within the gain of the best.
    first_ok = next(s["rows"] for s in small.steps if s["score"] >= max(scores) - 0.002)
    assert small.rows == first_ok and f"{small.rows:,} of {small.available:,}" in small.message
    # The same from the set in memory: the same samples (same seed), the same fits.
    again = choose_sample(d, "decision_tree", 4, start=2000, gain=0.002)
    assert [s["rows"] for s in again.steps] == [s["rows"] for s in small.steps]
    # Demanding more gain than any doubling can give stops at the third fit and keeps the first
    # sample; a negative demand never stops before every row is used.
    strict = choose_sample(d, "decision_tree", 4, start=2000, gain=1.0)
    assert strict.rows == 2000 and len(strict.steps) == 3
    everything = choose_sample(d, "decision_tree", 4, start=20_000, gain=-1.0)
    assert everything.rows == everything.available and "every available row" in everything.message
    want = frontier(d, candidates=["decision_tree"], sizes=[4]).entries[0].score
    assert everything.steps[-1]["score"] == pytest.approx(want)
