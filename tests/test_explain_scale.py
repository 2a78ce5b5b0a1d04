"""explain at scale: streaming distillation to Parquet, fitting on a sample (given or chosen by
choose_sample, and said so in both twins of the report), and a cluster started from a spec
closed however the run ends."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pellucid import Oracle
from pellucid import cluster as cluster_mod
from pellucid.cli import main
from pellucid.demo import CLASSES
from pellucid.errors import ModelError, ParameterError
from pellucid.extraction.stream import distillation_file_rows
from pellucid.pipeline import explain

FAST = dict(sizes=(4,), surrogates=["decision_tree"], n_boot=0, attributions=False, local=False,
            linear_view=False, verbose=0)


@pytest.fixture(scope="module")
def oracle(credit_oracle_parts):
    net, pre, classes = credit_oracle_parts
    return Oracle(net, preprocess=pre, task="classification", classes=classes, verbose=0)


def test_streamed_run_writes_every_row_and_fits_on_the_chosen_sample(oracle, credit, tmp_path):
    X, _ = credit
    path = tmp_path / "d.parquet"
    res = explain(oracle, X, n=60_000, stream_to=path, keep=5_000, sample="auto", out_dir=tmp_path / "r", **FAST)
    rows, held = distillation_file_rows(path)
    n_hold = int(round(0.25 * len(X)))
    assert (rows, held) == (len(X) + 60_000, n_hold)
    fs = res.distillation.params["fitting_sample"]
    # The file holds every training row: the sample is chosen among all of them, not the kept ones.
    assert fs["how"] == "auto" and fs["available"] == rows - held and fs["read_from"] == str(path)
    assert int((~res.distillation.is_holdout).sum()) == fs["rows"] <= fs["available"]
    assert int(res.distillation.is_holdout.sum()) == n_hold  # every held-out row is kept
    assert [s["rows"] for s in fs["steps"]][:2] == [25_000, 50_000]
    p = json.loads((tmp_path / "r" / "report.json").read_text())
    assert p["distillation"]["fitting_sample"]["message"] == fs["message"]
    assert p["distillation"]["stream"]["rows"] == rows
    html = (tmp_path / "r" / "report.html").read_text()
    assert 'class="fitting-sample"' in html and 'class="streamed"' in html
    assert f"{fs['available']:,} distilled training rows" in html


def test_a_given_sample_is_a_uniform_subset_of_the_training_rows(oracle, credit):
    X, _ = credit
    full = explain(oracle, X, n=6_000, out_dir=None, **FAST)
    part = explain(oracle, X, n=6_000, sample=1_000, out_dir=None, **FAST)
    assert int((~part.distillation.is_holdout).sum()) == 1_000
    assert part.distillation.params["fitting_sample"]["available"] == int((~full.distillation.is_holdout).sum())
    # The same rows, network answers and provenance as the full set's, holdout whole.
    keyed = full.distillation.rows.assign(out=full.distillation.outputs[:, 0], src=full.distillation.source)
    got = part.distillation.rows.assign(out=part.distillation.outputs[:, 0], src=part.distillation.source)
    merged = got.merge(keyed.drop_duplicates(), how="left", indicator=True)
    assert (merged["_merge"] == "both").all()
    pd.testing.assert_frame_equal(part.distillation.holdout.rows, full.distillation.holdout.rows)
    assert part.distillation.n_queries == full.distillation.n_queries
    for bad in (0, -3, "most", True):
        with pytest.raises(ParameterError, match="sample must be"):
            explain(oracle, X, sample=bad, out_dir=None, **FAST)


class _FakeClient:
    """What explain needs of a client it started itself: that it is closed."""

    def __init__(self):
        self.closed = 0

    def close(self):
        self.closed += 1


def test_a_cluster_started_from_a_spec_is_closed_when_the_run_fails(credit, monkeypatch):
    X, _ = credit
    fake = _FakeClient()
    monkeypatch.setattr(cluster_mod, "connect", lambda spec: fake)

    def broken(Z):
        raise RuntimeError("weights missing")

    with pytest.raises(ModelError, match="weights missing"):
        explain(Oracle(broken, task="classification", classes=list(CLASSES)), X, client="local:2", out_dir=None, **FAST)
    assert fake.closed == 1


def test_cli_takes_the_scale_options(tmp_path, capsys):
    path = tmp_path / "rows.parquet"
    code = main(["demo", "--rows", "1500", "--out", str(tmp_path / "r"), "--sizes", "4", "--n-boot", "0",
                 "--attributions", "none", "--no-local", "--no-scorecard", "--quiet", "--surrogates", "decision_tree",
                 "--stream-to", str(path), "--keep", "2000", "--sample", "1500", "--n", "8000"])
    assert code == 0, capsys.readouterr().err
    p = json.loads((tmp_path / "r" / "report.json").read_text())
    assert p["distillation"]["fitting_sample"]["rows"] == 1500 and p["distillation"]["stream"]["path"] == str(path)
    assert path.exists()
    with pytest.raises(SystemExit):
        main(["demo", "--sample", "lots"])
    assert "expected a number of rows or 'auto'" in capsys.readouterr().err
