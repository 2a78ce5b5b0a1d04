"""Same inputs and seed, same report: across processes, hash seeds and thread counts.

The report is filed and audited; an auditor regenerates it on another machine. Everything
that legitimately differs between two runs (the run id, timings, time of generation, host,
the command line) sits in the ``run`` block of report.json and the "This run" section of the
page; the rest must be the same to the byte.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from pellucid.reports.payload import content_sha256

ARGS = ["demo", "--rows", "1200", "--sizes", "4,8", "--n-boot", "4", "--quiet"]


def _without_run(html: str) -> str:
    html = re.sub(r"<meta name=\"pellucid-run-id\" content=\"[0-9a-f]+\">\n?", "", html)
    html, n = re.subn(r'<section id="run">.*?</section>', "", html, flags=re.S)
    assert n == 1, "the page has one 'This run' section"
    return html


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    a, b = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    # Two fresh processes: another hash seed (the order of sets of strings) and another
    # number of threads (the order of float reductions).
    procs = [subprocess.Popen([sys.executable, "-m", "pellucid", *ARGS, "--out", str(out)],
                              env={**os.environ, "PYTHONHASHSEED": seed, "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n,
                                   "OPENBLAS_NUM_THREADS": n},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for out, seed, n in ((a, "1", "2"), (b, "2", "1"))]
    for p in procs:
        _, err = p.communicate(timeout=900)
        assert p.returncode == 0, err
    return a, b


def test_report_json_is_the_same_apart_from_its_run_block(two_runs):
    a, b = (json.loads((d / "report.json").read_text()) for d in two_runs)
    assert a["run"]["id"] != b["run"]["id"]
    ra, rb = a.pop("run"), b.pop("run")
    # The comparison covers Shapley values: the global summary (per-row values and intervals)
    # and every single decision's waterfall.
    shap = a["attributions"]["shapley"]
    assert shap["rows"] and all(f["mean_abs_ci"] for f in shap["features"])
    assert a["local"]["shapley"] and all(r["shapley"]["values"] for r in a["local"]["rows"])
    assert a == b
    # Every duration went into the run block, and the content hash is of the rest.
    assert all(r["timings"]["paths"] and r["timings"]["stages"] for r in (ra, rb))
    assert a["content_sha256"] == b["content_sha256"] == content_sha256(a)


def test_report_html_is_the_same_apart_from_its_run_section(two_runs):
    a, b = ((d / "report.html").read_text() for d in two_runs)
    assert a != b  # the run ids differ...
    assert _without_run(a) == _without_run(b)  # ...and nothing else


def test_no_duration_outside_the_run_block(two_runs):
    payload = json.loads((two_runs[0] / "report.json").read_text())
    payload.pop("run")
    found = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("seconds", "timings", "created") or k.endswith("_seconds"):
                    found.append(f"{path}/{k}")
                walk(v, f"{path}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}/{i}")

    walk(payload, "")
    assert not found
