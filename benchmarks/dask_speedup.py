"""One process against two local Dask workers (pellucid.cluster), on a tabular torch MLP:

(a) LIME local explanations of ~200 rows, (b) querying 2M rows, (c) fidelity of a decision tree
over a 1M-row holdout. Reports the times, the speed-up and whether the outputs are identical.

Run: .venv/bin/python -W ignore benchmarks/dask_speedup.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _tasks import write_results  # noqa: E402

from pellucid import DecisionTree, Oracle, cluster, distill  # noqa: E402
from pellucid.fidelity import evaluate  # noqa: E402
from pellucid.surrogates.lime_local import lime  # noqa: E402

P = 20


def _table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, P)).astype(np.float64), columns=[f"x{i}" for i in range(P)])


def _oracles() -> tuple[Oracle, Oracle]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(P, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 2))
    one, two = (Oracle(net, task="classification", classes=["no", "yes"], verbose=0) for _ in range(2))
    head = _table(16, 99)
    one.query(head), two.query(head)  # both resolved the same way before timing
    return one, two


def _time(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a check that it runs)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    n_lime, n_query, n_fid = (40, 200_000, 100_000) if args.quick else (200, 2_000_000, 1_000_000)
    threads = torch.get_num_threads()
    client = cluster.connect("local:2")
    try:
        rows = []
        one, two = _oracles()
        ref = _table(5000, 1)
        explain = _table(n_lime, 2)
        want, t1 = _time(lambda: lime(one, explain, ref, num_samples=5000, random_state=0))
        # Pieces of LIME's own chunk of rows (not the default whole-chunk pieces): enough tasks for two workers.
        got, t2 = _time(lambda: cluster.explain_rows(two, explain, client, reference=ref, method="lime",
                                                     rows_per_task=max(1, n_lime // 4), num_samples=5000,
                                                     random_state=0))
        same = bool(np.array_equal(got.coef.to_numpy(), want.coef.to_numpy()))
        close = float(np.max(np.abs(got.coef.to_numpy() - want.coef.to_numpy())))
        rows.append({"task": f"LIME, {n_lime} rows x 5000 samples", "one_process_s": t1, "dask_s": t2,
                     "identical": same, "max_abs_diff": close})

        table = _table(n_query, 3)
        want, t1 = _time(lambda: one.query(table))
        got, t2 = _time(lambda: cluster.query(two, table, client))
        rows.append({"task": f"query {n_query:,} rows", "one_process_s": t1, "dask_s": t2,
                     "identical": bool(np.array_equal(got, want)), "max_abs_diff": float(np.max(np.abs(got - want)))})

        dset = distill(one, _table(5000, 4), strategy="observed", random_state=0)
        tree = DecisionTree(max_leaf_nodes=16, random_state=0).fit(dset)
        hold = _table(n_fid, 5)
        want, t1 = _time(lambda: evaluate(tree, one, hold).to_dict())
        got, t2 = _time(lambda: cluster.evaluate(tree, two, hold, client).to_dict())
        r2 = abs(got.pop("r2") - want.pop("r2"))
        rows.append({"task": f"fidelity over {n_fid:,} rows", "one_process_s": t1, "dask_s": t2,
                     "identical": got == want, "max_abs_diff": r2})
    finally:
        client.close()
    for r in rows:
        r["speedup"] = r["one_process_s"] / r["dask_s"]
    data = {"workers": 2, "threads_per_worker": 1, "one_process_torch_threads": threads, "quick": args.quick,
            "rows": rows}
    md = ["# One process vs two local Dask workers (pellucid.cluster)", "",
          f"Torch MLP ({P} inputs, 64-64 hidden, 2 classes); one process with {threads} torch threads, "
          "LocalCluster of 2 worker processes x 1 thread (cluster start not timed). "
          "`identical`: outputs equal bit for bit (fidelity: every figure but R², whose merged sums "
          "differ by `max_abs_diff`).", "",
          "| task | one process (s) | 2 workers (s) | speed-up | identical | max abs diff |",
          "|---|---:|---:|---:|---|---:|"]
    for r in rows:
        md.append(f"| {r['task']} | {r['one_process_s']:.2f} | {r['dask_s']:.2f} | {r['speedup']:.2f} | "
                  f"{r['identical']} | {r['max_abs_diff']:.1e} |")
    text = "\n".join(md)
    print(text)
    write_results(args.out, "dask_speedup" + ("_quick" if args.quick else ""), data, text)


if __name__ == "__main__":
    main()
