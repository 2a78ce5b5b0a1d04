"""Printing a report to PDF with headless Chromium (pellucid.reports.pdf)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from pellucid.errors import PellucidError, ReportError
from pellucid.reports.pdf import CHROMIUM_ENV, find_chromium, html_to_pdf

PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>t</title>
<style>@page { margin: 18mm 15mm; } section { break-before: page; }</style></head>
<body><h1>pellucid &lt;img src=x&gt;</h1><section><h2>Second page</h2><p id="p">scripts did not run</p></section>
<script>window.addEventListener("beforeprint", function () { document.getElementById("p").textContent = "printed"; });</script>
</body></html>"""


@pytest.fixture
def page(tmp_path) -> Path:
    p = tmp_path / "report.html"
    p.write_text(PAGE, encoding="utf-8")
    return p


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(CHROMIUM_ENV, raising=False)


def _chromium() -> str:
    exe = find_chromium()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("no Chromium in CI: scripts/setup.sh test installs it")
        pytest.skip(f"no Chromium (apt-get install chromium, or set {CHROMIUM_ENV})")
    return exe


def test_a_real_pdf(page, tmp_path):
    out = html_to_pdf(page, tmp_path / "sub" / "report.pdf", chromium=_chromium())
    assert out == tmp_path / "sub" / "report.pdf"
    data = out.read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type\s*/Page\b", data)) == 2  # the section starts a page of its own
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True, check=True).stdout
        assert "pellucid <img src=x>" in text
        assert "printed" in text  # the page's scripts ran, beforeprint included
    # nothing left beside it (the profile and the temporary PDF stay in their own folder)
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.pdf"]


def test_a_real_pdf_of_a_built_report(tmp_path):
    """A report that pellucid built, pages and all; pdftotext (when present) reads its text."""
    from pellucid.reports import build

    exe = _chromium()
    payload = _small_payload()
    html, _ = build(payload, tmp_path / "r")
    out = html_to_pdf(html, tmp_path / "r" / "report.pdf", chromium=exe)
    assert out.read_bytes()[:5] == b"%PDF-"
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True, check=True).stdout
        assert "Surrogate comparison" in text
        assert "<b>tag</b>" in text  # the feature name, printed as text


def _small_payload():
    import numpy as np
    import pandas as pd

    from pellucid.extraction import distill
    from pellucid.fidelity import evaluate
    from pellucid.reports import build_payload
    from pellucid.schema import Schema
    from pellucid.surrogates import DecisionTree

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"<b>tag</b>": rng.normal(size=300), "kind": rng.choice(["a", "b"], 300)})

    def net(rows: pd.DataFrame) -> np.ndarray:
        p = 1 / (1 + np.exp(-3 * rows["<b>tag</b>"].to_numpy(float)))
        return np.column_stack([1 - p, p])

    class Net:
        task, classes_, n_queries = "classification", np.array(["no", "yes"], dtype=object), 0

        def query(self, rows):
            self.n_queries += len(rows)
            return net(rows)

    schema = Schema.from_frame(X)
    dset = distill(Net(), X, n=600, schema=schema, random_state=0)
    s = DecisionTree(max_leaf_nodes=4).fit(dset)
    return build_payload(model={"kind": "callable"}, schema=schema, dset=dset, surrogates=[s], fidelities=[evaluate(s, rows=dset)])


def test_a_chromium_that_does_not_exist(page, tmp_path):
    missing = tmp_path / "no" / "chromium"
    assert find_chromium(missing) is None
    with pytest.raises(ReportError, match="install Debian's chromium package") as err:
        html_to_pdf(page, tmp_path / "out.pdf", chromium=missing)
    assert str(missing) in str(err.value)
    assert isinstance(err.value, PellucidError) and isinstance(err.value, RuntimeError)
    assert not (tmp_path / "out.pdf").exists()


def test_no_chromium_on_an_empty_path(page, tmp_path, monkeypatch, no_env):
    monkeypatch.setenv("PATH", "")
    assert find_chromium() is None
    with pytest.raises(ReportError, match="not found on PATH.*install Debian's chromium package"):
        html_to_pdf(page, tmp_path / "out.pdf")
    assert not (tmp_path / "out.pdf").exists()


def test_the_environment_variable_is_used_and_named(page, tmp_path, monkeypatch):
    fake = tmp_path / "fake-chromium"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv(CHROMIUM_ENV, str(fake))
    assert find_chromium() == str(fake.resolve())
    monkeypatch.setenv(CHROMIUM_ENV, str(tmp_path / "nothing"))
    assert find_chromium() is None
    with pytest.raises(ReportError, match=CHROMIUM_ENV):
        html_to_pdf(page, tmp_path / "out.pdf")


def _fake(tmp_path, body: str) -> Path:
    fake = tmp_path / "fake-chromium"
    fake.write_text("#!/bin/sh\n" + body + "\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return fake


def test_a_failing_chromium_shows_its_last_lines(page, tmp_path):
    fake = _fake(tmp_path, 'echo "[1:2:ERROR:dbus/bus.cc] Failed to connect to the bus" >&2\n'
                           'echo "first line" >&2\necho "the real reason" >&2\nexit 3')
    with pytest.raises(ReportError, match="exit status 3") as err:
        html_to_pdf(page, tmp_path / "out.pdf", chromium=fake)
    assert "the real reason" in str(err.value) and "dbus" not in str(err.value)
    assert not (tmp_path / "out.pdf").exists()


def test_a_chromium_that_writes_no_pdf(page, tmp_path):
    with pytest.raises(ReportError, match="wrote no PDF"):
        html_to_pdf(page, tmp_path / "out.pdf", chromium=_fake(tmp_path, "exit 0"))


def test_a_chromium_that_writes_something_else(page, tmp_path):
    # the fake writes "<html>" to the path given in --print-to-pdf=
    body = 'for a in "$@"; do case "$a" in --print-to-pdf=*) echo "<html>" > "${a#--print-to-pdf=}";; esac; done'
    with pytest.raises(ReportError, match="not a PDF"):
        html_to_pdf(page, tmp_path / "out.pdf", chromium=_fake(tmp_path, body))


def test_a_chromium_that_hangs_is_stopped(page, tmp_path):
    with pytest.raises(ReportError, match="within 0.5 s"):
        html_to_pdf(page, tmp_path / "out.pdf", chromium=_fake(tmp_path, "sleep 30 & wait"), timeout=0.5)


def test_a_page_that_does_not_exist(tmp_path):
    with pytest.raises(ReportError, match="no such file"):
        html_to_pdf(tmp_path / "missing.html", tmp_path / "out.pdf", chromium="/bin/true")
