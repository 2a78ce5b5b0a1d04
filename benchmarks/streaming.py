"""Streaming distillation and chunked fidelity in bounded memory.

Each case runs in a fresh process and reports its peak resident memory (``ru_maxrss``):

* ``baseline``: the process with pellucid, torch and the network loaded, before any work;
* ``distill N``: ``distill(oracle, reference, n=N, out=FILE, keep=200_000)`` on a 30-feature
  table (50,000 observed rows; perturbed and marginal rows), written to Parquet;
* ``fidelity 1M``: ``evaluate(tree, oracle, FILE)`` over a 1,000,000-row Parquet holdout, read
  and queried in chunks of 100,000 rows;
* ``choose``: :func:`pellucid.fidelity.choose_sample` on the 10M-row file (samples read batch by
  batch).

The memory budget pellucid states is the peak of every case: it must not grow with N.

Run: .venv/bin/python -W ignore benchmarks/streaming.py [--quick] [--out benchmarks/results]
(``--quick``: 1M and 2M rows instead of 1M and 10M).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = 30
REFERENCE_ROWS = 50_000
KEEP = 200_000


def _setup():
    import torch

    from pellucid import Oracle

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(REFERENCE_ROWS, FEATURES)), columns=[f"x{i}" for i in range(FEATURES)])
    X["x0"] = rng.integers(0, 5, REFERENCE_ROWS).astype(float)  # an integer feature
    y = (X["x1"] + X["x2"] * X["x3"] > 0).to_numpy()
    net = torch.nn.Sequential(torch.nn.Linear(FEATURES, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 2))
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    Xt, yt = torch.tensor(X.to_numpy(), dtype=torch.float32), torch.tensor(y.astype(np.int64))
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(Xt), yt).backward()
        opt.step()
    return Oracle(net.eval(), task="classification", verbose=0), X


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _case(name: str, arg: str, workdir: str) -> dict:
    from pellucid import distill
    from pellucid.fidelity import choose_sample, evaluate
    from pellucid.surrogates import DecisionTree

    oracle, X = _setup()
    out: dict = {"case": name, "arg": arg}
    t = time.perf_counter()
    if name == "distill":
        n = int(arg)
        path = Path(workdir) / f"distill_{n}.parquet"
        d = distill(oracle, X, n=n, out=path, keep=KEEP, random_state=0)
        out.update(rows=int(d.n_queries), kept=len(d), file_mb=round(path.stat().st_size / 2**20, 1))
    elif name == "fidelity":
        n = int(arg)
        rng = np.random.default_rng(1)
        path = Path(workdir) / f"holdout_{n}.parquet"
        if not path.exists():
            import pyarrow as pa
            import pyarrow.parquet as pq

            with pq.ParquetWriter(path, pa.schema([(c, pa.float64()) for c in X.columns])) as w:
                for _ in range(0, n, 100_000):
                    part = pd.DataFrame(rng.normal(size=(100_000, FEATURES)), columns=X.columns)
                    part["x0"] = rng.integers(0, 5, 100_000).astype(float)
                    w.write_table(pa.Table.from_pandas(part, preserve_index=False))
        t = time.perf_counter()
        d = distill(oracle, X, n=20_000, random_state=0)
        tree = DecisionTree(max_leaf_nodes=16).fit(d)
        t = time.perf_counter()
        f = evaluate(tree, oracle, path, chunk_rows=100_000)
        out.update(rows=f.n, agreement=round(f.agreement, 4))
    elif name == "choose":
        choice = choose_sample(arg, "decision_tree", 16, start=25_000, random_state=0)
        out.update(rows=choice.available, chosen=choice.rows, steps=choice.steps, message=choice.message)
    out["seconds"] = round(time.perf_counter() - t, 2)
    out["peak_rss_mb"] = round(_peak_mb(), 1)
    return out


def _run(name: str, arg: str, workdir: str) -> dict:
    cmd = [sys.executable, "-W", "ignore", __file__, "--case", name, arg, "--workdir", workdir]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"case {name} {arg} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--case", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        if args.case[0] == "baseline":
            _setup()
            print(json.dumps({"case": "baseline", "arg": "", "seconds": 0.0, "peak_rss_mb": round(_peak_mb(), 1)}))
        else:
            print(json.dumps(_case(*args.case, args.workdir)))
        return

    sizes = [1_000_000, 2_000_000] if args.quick else [1_000_000, 10_000_000]
    with tempfile.TemporaryDirectory(prefix="pellucid-stream-") as work:
        results = [_run("baseline", "", work)]
        for n in sizes:
            results.append(_run("distill", str(n), work))
            print(results[-1], flush=True)
        results.append(_run("fidelity", "1000000", work))
        print(results[-1], flush=True)
        results.append(_run("choose", str(Path(work) / f"distill_{sizes[-1]}.parquet"), work))
        print({k: v for k, v in results[-1].items() if k != "steps"}, flush=True)

    base = results[0]["peak_rss_mb"]
    lines = ["| case | rows | seconds | rows/s | peak RSS (MB) | above baseline (MB) | note |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in results:
        rows = r.get("rows", "")
        rate = f"{rows / r['seconds']:,.0f}" if rows and r["seconds"] else ""
        note = {"distill": f"kept {r.get('kept', '')} in memory; file {r.get('file_mb', '')} MB",
                "fidelity": f"agreement {r.get('agreement', '')}", "choose": r.get("message", ""),
                "baseline": "torch, pellucid and the network loaded"}[r["case"]]
        lines.append(f"| {r['case']} | {rows if rows == '' else f'{rows:,}'} | {r['seconds']} | {rate} | "
                     f"{r['peak_rss_mb']:,.0f} | {r['peak_rss_mb'] - base:,.0f} | {note} |")
    peak = max(r["peak_rss_mb"] for r in results)
    lines.append("")
    lines.append(f"Peak RSS of every case: {peak:,.0f} MB (CPU: {os.cpu_count()} cores).")
    md = "\n".join(lines)
    print(md)
    sys.path.insert(0, str(Path(__file__).parent))
    from _tasks import write_results

    write_results(args.out, "streaming", {"results": results, "peak_rss_mb": peak, "quick": args.quick}, md)


if __name__ == "__main__":
    main()
