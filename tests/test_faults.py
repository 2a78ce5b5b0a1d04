"""Faults: nothing lost, nothing half-written, one clear line.

A full disk, an unwritable file, an interrupt and bad options, each against what was there
before: the previous report pair stays whole and consistent (one run id), inputs are never
overwritten, a partial file never sits under its final name, and a bad option is refused
before any work with one line naming the flag as typed.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import pellucid._files as files
from pellucid.cli import main
from pellucid.demo import TARGET, make_credit
from pellucid.errors import DataFileError
from pellucid.reports import build, render_again
from pellucid.reports.builder import page_run_id

SMALL = ["--rows", "600", "--sizes", "4", "--n", "1000", "--n-boot", "0", "--attributions", "none", "--no-local",
         "--surrogates", "decision_tree"]


def _pellucid(*argv, **kw):
    return subprocess.run([sys.executable, "-m", "pellucid", *map(str, argv)], capture_output=True, text=True,
                          timeout=600, **kw)


@pytest.fixture(scope="module")
def pair(tmp_path_factory, demo_report):
    """A report pair of this module's own: a copy of the session's demo run."""
    out = tmp_path_factory.mktemp("pair")
    for p in demo_report.iterdir():
        (out / p.name).write_bytes(p.read_bytes())
    return out


def _state(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _consistent(folder: Path) -> None:
    payload = json.loads((folder / "report.json").read_text())
    assert page_run_id((folder / "report.html").read_text()) == payload["run"]["id"]
    assert not [p for p in folder.iterdir() if p.name.startswith(".")], "a temporary file was left behind"


# ---------------------------------------------------------------------------- writes
def test_a_full_disk_leaves_the_previous_pair_whole(pair, tmp_path, monkeypatch):
    folder = tmp_path / "report"
    folder.mkdir()
    for p in pair.iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    before = _state(folder)
    payload = json.loads((folder / "report.json").read_text())
    payload["card"] = {"fields": {"model_name": "another run"}, "extra": {}}
    payload["run"] = {**payload["run"], "id": "f" * 32}
    flushed = []

    def full(path):  # the second file finds the disk full
        flushed.append(path)
        if len(flushed) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        os.fsync(os.open(path, os.O_RDONLY))

    monkeypatch.setattr(files, "_flush", full)
    with pytest.raises(OSError, match="No space left"):
        build(payload, folder)
    assert _state(folder) == before
    _consistent(folder)


def test_a_page_that_cannot_be_replaced_leaves_the_json_as_it_was(pair, tmp_path):
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "report.json").write_bytes((pair / "report.json").read_bytes())
    (folder / "report.html").mkdir()  # not a file: cannot be replaced
    old_json = (folder / "report.json").read_bytes()
    payload = json.loads(old_json)
    payload["run"] = {**payload["run"], "id": "e" * 32}
    with pytest.raises(OSError):
        build(payload, folder)
    assert (folder / "report.json").read_bytes() == old_json
    assert (folder / "report.html").is_dir()


def test_a_failure_between_the_two_renames_puts_the_old_pair_back(pair, tmp_path, monkeypatch):
    folder = tmp_path / "report"
    folder.mkdir()
    for p in pair.iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    before = _state(folder)
    payload = json.loads((folder / "report.json").read_text())
    payload["run"] = {**payload["run"], "id": "d" * 32}
    real = os.replace
    calls = []

    def flaky(src, dst):
        calls.append(dst)
        # old json aside, new json in, old html aside, then the new page fails to go in (once)
        if str(dst).endswith("report.html") and Path(src).name.startswith(".report.html") and len(calls) == 4:
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(files.os, "replace", flaky)
    with pytest.raises(OSError):
        build(payload, folder)
    monkeypatch.undo()
    assert _state(folder) == before
    _consistent(folder)


def test_report_refuses_a_pair_from_two_runs(pair, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "report.json").write_bytes((pair / "report.json").read_bytes())
    html = (pair / "report.html").read_text()
    (folder / "report.html").write_text(html.replace(page_run_id(html), "0" * 32))
    with pytest.raises(DataFileError, match="different runs"):
        render_again(folder / "report.json")
    r = _pellucid("report", folder / "report.json")
    assert r.returncode == 2 and "different runs" in r.stderr and len(r.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------- inputs
def test_stream_to_never_replaces_the_data_or_an_existing_file(tmp_path):
    df = make_credit(300, random_state=0)
    data = tmp_path / "data.csv"
    df.to_csv(data, index=False)
    before = data.read_bytes()
    for extra in ([], ["--overwrite"]):
        r = _pellucid("explain", "--model", "pellucid.demo:make_credit", "--data", data, "--stream-to", data,
                      "--out", tmp_path / "out", *extra)
        assert r.returncode == 2 and "input of this run" in r.stderr, r.stderr
        assert data.read_bytes() == before
    other = tmp_path / "old.parquet"
    other.write_bytes(b"previous distillation")
    r = _pellucid("explain", "--model", "pellucid.demo:make_credit", "--data", data, "--stream-to", other, "--out",
                  tmp_path / "out")
    assert r.returncode == 2 and "--overwrite" in r.stderr and other.read_bytes() == b"previous distillation"
    assert not (tmp_path / "out").exists(), "a refused run left its output folder behind"


def test_an_interrupted_stream_leaves_no_file(tmp_path):
    from pellucid import Oracle, distill

    df = make_credit(400, random_state=0).drop(columns=TARGET)
    calls = []

    def model(d):
        calls.append(len(d))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return np.tile([0.4, 0.6], (len(d), 1))

    out = tmp_path / "d.parquet"
    with pytest.raises(KeyboardInterrupt):
        distill(Oracle(model, task="classification", classes=["a", "b"]), df, n=40_000, out=out, keep=500,
                chunk_rows=5_000, random_state=0)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- options
@pytest.mark.parametrize("argv, named", [
    (["--n-jobs", "0"], "--n-jobs"),
    (["--seed", "-1"], "--seed"),
    (["--n", "10000000000000"], "--n 10,000,000,000,000"),
    (["--keep", "100"], "--keep"),
    (["--min-agreement", "-1"], "--min-agreement"),
    (["--max-rules", "0"], "--max-rules"),
])
def test_bad_options_are_refused_before_any_work(tmp_path, argv, named):
    out = tmp_path / "out"
    t0 = time.perf_counter()
    r = _pellucid("demo", "--out", out, *argv)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and lines[0].startswith("pellucid: error:"), r.stderr
    assert "max_rules" not in lines[0] and "n_jobs" not in lines[0]  # what was typed, not the API's names
    assert time.perf_counter() - t0 < 30  # the demo's network was not even trained
    assert not out.exists()


def test_an_unwritable_out_is_refused_before_any_work(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            # root writes anywhere: a file in the way of the folder instead
            target = tmp_path / "file"
            target.write_text("x")
            out = target / "report"
        else:
            out = locked / "report"
        t0 = time.perf_counter()
        r = _pellucid("demo", "--out", out)
        assert r.returncode == 2 and "--out" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert time.perf_counter() - t0 < 30
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("after", [6, 11])
def test_ctrl_c_exits_130_with_one_line_and_nothing_written(tmp_path, after):
    out = tmp_path / "out"
    # The child takes Ctrl-C as a user's terminal gives it, even where the tests were started
    # ignoring it (a background job of a shell without job control).
    p = subprocess.Popen([sys.executable, "-m", "pellucid", "demo", "--out", str(out), "--rows", "3000"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # 6 s: training the demo's network, distilling or the frontier; 11 s: later, with the
    # frontier's worker processes started (refits, single rows, the report). The workers
    # hold the pipes too: they end with the run, or communicate() would wait for them, and
    # their pool's resource tracker has nothing left to report.
    time.sleep(after)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("pellucid: ") or "interrupted" in ln]
    assert len(lines) == 1 and "interrupted" in lines[0], err
    assert "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


# ---------------------------------------------------------------------------- what a run says
def test_progress_is_one_line_per_stage_when_not_a_terminal(tmp_path):
    r = _pellucid("demo", *SMALL, "--out", tmp_path / "a")  # stderr is a pipe here
    assert r.returncode == 0, r.stderr
    stages = [ln.split(":")[1].strip() for ln in r.stderr.splitlines() if ln.startswith("pellucid: ")]
    assert stages == ["schema", "distill", "frontier", "stability", "attribution", "local", "report"], r.stderr
    assert "rows" in r.stderr and " s" in r.stderr
    q = _pellucid("demo", *SMALL, "--out", tmp_path / "b", "--quiet")
    assert q.returncode == 0 and q.stderr == "" and q.stdout == ""


def test_python_api_names_its_parameters(tmp_path):
    from pellucid.errors import ParameterError
    from pellucid.pipeline import explain

    df = make_credit(200, random_state=0)
    with pytest.raises(ParameterError, match=r"^n_jobs must"):
        explain(lambda d: np.tile([0.3, 0.7], (len(d), 1)), df, n_jobs=0, out_dir=None, verbose=0)
    with pytest.raises(ParameterError, match=r"^keep .*stream_to"):
        explain(lambda d: np.tile([0.3, 0.7], (len(d), 1)), df, keep=10, out_dir=None, verbose=0)


def test_main_returns_2_for_a_bad_option_in_process(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "o"), "--seed", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--seed" in err
    assert not (tmp_path / "o").exists()


def test_explain_rows_that_are_not_rows_are_named_as_typed(tmp_path):
    r = _pellucid("demo", *SMALL, "--quiet", "--out", tmp_path / "o", "--explain-rows", "5,999999")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "--explain-rows 999999" in r.stderr and "local_rows" not in r.stderr
    assert not (tmp_path / "o").exists()
