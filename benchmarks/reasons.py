"""Principal reasons for every row of a large table: the demo's credit network on 13 raw
features (the demo's 11 plus a numeric ``savings`` and a categorical ``channel``, both with
missing values, as benchmarks/shapley.py builds them), trained on 4,000 rows and asked about
``--rows`` (default 100,000) fresh rows of the same source.

Measured in one run:
(a) ``pellucid.reasons`` on every row (Shapley values of the adverse class's log-odds against
    100 rows drawn from the favourably decided rows, paired samples): rows per second and
    the whole time. Target: 100,000 rows in under 5 minutes on 2 cores.
(b) The Dask path (``pellucid.cluster.reasons_chunks`` on a LocalCluster of 2 single-thread
    workers) on the first ``--dask-rows`` rows (default 20,000): its table equals the
    single-process one, value for value. ``--dask-rows 0`` skips it.
(c) Reasons' size: no reason of an adverse decision below 1e-3 log-odds unless marked
    negligible; how many reasons and ties the rows get.
(d) Accuracy of the paired estimate on 200 adverse rows against the exact values with the same
    background (the top-4 set and the first reason), and stability under another seed and
    background sample and by LIME (``reason_stability``).

Run: .venv/bin/python -W ignore benchmarks/reasons.py [--rows 100000] [--dask-rows 20000] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _tasks import write_results  # noqa: E402

from pellucid import Oracle  # noqa: E402
from pellucid.attribution.decision_reasons import explain_chunks, reason_plan, reason_stability  # noqa: E402
from pellucid.attribution.shapley import shapley  # noqa: E402
from pellucid.demo import CLASSES, make_credit, train_credit_network  # noqa: E402


def table(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    d = make_credit(n, random_state=seed)
    X, y = d.drop(columns=["default"]), d["default"]
    rng = np.random.default_rng(13 + seed)
    savings = np.round(rng.lognormal(8, 1.2, len(X)), 0)
    savings[rng.random(len(X)) < 0.1] = np.nan
    channel = pd.Series(rng.choice(["branch", "online", "broker", "partner"], len(X)), dtype=object)
    channel[rng.random(len(X)) < 0.05] = np.nan
    channel = channel.astype(X["home"].dtype)
    return X.assign(savings=savings, channel=channel), y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dask-rows", type=int, default=20_000)
    ap.add_argument("--quick", action="store_true", help="20,000 rows, 5,000 through Dask")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    if args.quick:
        args.rows, args.dask_rows = min(args.rows, 20_000), min(args.dask_rows, 5_000)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    torch.manual_seed(0)
    Xt, yt = table(4000, 0)
    net, pre = train_credit_network(Xt, yt, random_state=0)
    oracle = Oracle(net, preprocess=pre, task="classification", classes=list(CLASSES), verbose=0)
    X, _ = table(args.rows, 1)
    meta = {"torch": torch.__version__, "cores": os.cpu_count(), "python": platform.python_version(),
            "load_before": os.getloadavg(), "rows": len(X), "features": X.shape[1]}

    t0 = time.perf_counter()
    plan = reason_plan(oracle, X, adverse_class="bad", random_state=0)
    t_plan = time.perf_counter() - t0
    tables = list(explain_chunks(plan, X, 20_000))
    whole = time.perf_counter() - t0
    out = pd.concat(tables)
    res: dict = {"rows": len(X), "adverse": int(out["adverse"].sum()), "plan_s": t_plan, "whole_s": whole,
                 "rows_per_s": len(X) / whole, "target_s": 300.0, "settings": plan.describe()}
    print(f"(a) {len(X):,} rows in {whole:.1f} s ({len(X) / whole:,.0f} rows/s; plan {t_plan:.1f} s); "
          f"{res['adverse']:,} adverse", flush=True)

    adv = out[out["adverse"]]
    k = plan.k
    c = adv[[f"contribution_{i + 1}" for i in range(k)]].to_numpy(float)
    notes = adv[[f"note_{i + 1}" for i in range(k)]].astype(object).to_numpy()
    small = (c < 1e-3) & ~np.isnan(c)
    marked = np.array([[isinstance(n, str) and "negligible" in n for n in row] for row in notes])
    tied = np.array([[isinstance(n, str) and "tied" in n for n in row] for row in notes])
    res["size"] = {"reasons_below_1e-3": int(small.sum()), "unmarked_below_1e-3": int((small & ~marked).sum()),
                   "smallest_reason": float(np.nanmin(c)), "mean_reasons": float(adv["n_reasons"].mean()),
                   "rows_with_a_tie": float(tied.any(axis=1).mean())}
    print(f"(c) {res['size']}", flush=True)

    if args.dask_rows:
        from distributed import Client, LocalCluster

        from pellucid.cluster import reasons_chunks

        part = X.iloc[:args.dask_rows]
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            t = time.perf_counter()
            remote = pd.concat(list(reasons_chunks(plan, part, client, chunk_rows=20_000)))
            t_dask = time.perf_counter() - t
        local = out.iloc[:len(part)]
        same = remote.equals(local)
        res["dask"] = {"rows": len(part), "seconds": t_dask, "identical": bool(same)}
        print(f"(b) Dask LocalCluster(2): {len(part):,} rows in {t_dask:.1f} s, identical: {same}", flush=True)

    pick = adv.index[:200]
    rows = X.loc[pick]
    exact = shapley(oracle, rows, plan.background, target=plan.adverse_index, output="margin", method="exact")
    est = out.loc[pick]
    top_exact = np.argsort(-np.where(exact.values > 0, exact.values, -np.inf), axis=1, kind="stable")[:, :k]
    names = np.asarray(plan.features)
    overlap, first = [], []
    for i, r in enumerate(pick):
        want = {names[j] for j in top_exact[i] if exact.values[i, j] > 0}
        got = {est.loc[r, f"reason_{q + 1}"] for q in range(k)} - {None, np.nan}
        got = {g for g in got if isinstance(g, str)}
        overlap.append(len(want & got) / max(len(want), len(got), 1))
        first.append(names[top_exact[i, 0]] == est.loc[r, "reason_1"])
    res["accuracy"] = {"rows": len(pick), "top_k_overlap_with_exact": float(np.mean(overlap)),
                       "first_reason_as_exact": float(np.mean(first))}
    print(f"(d) paired vs exact (same background): {res['accuracy']}", flush=True)
    res["stability"] = reason_stability(plan, X.loc[pick])
    print(f"(d) stability: {res['stability']}", flush=True)
    meta["load_after"] = os.getloadavg()
    md = markdown(res, meta)
    print(md)
    write_results(args.out, "reasons", {"meta": meta, "results": res}, md)


def markdown(r: dict, meta: dict) -> str:
    s = r["size"]
    lines = [f"Principal reasons, {meta['rows']:,} rows x {meta['features']} raw features, {meta['cores']} cores "
             f"(load {meta['load_before'][0]:.2f})", "",
             "| measure | pellucid | target |", "|---|---|---|",
             f"| reasons for every row | {r['whole_s']:.1f} s ({r['rows_per_s']:,.0f} rows/s) | "
             f"{'< 300 s' if r['rows'] == 100_000 else '< 300 s at 100,000 rows'} |",
             f"| adverse rows | {r['adverse']:,} | |",
             f"| reasons below 1e-3 log-odds, not marked negligible | {s['unmarked_below_1e-3']} "
             f"(smallest {s['smallest_reason']:.3g}) | 0 |",
             f"| reasons per adverse row (mean); rows with a tie marked | {s['mean_reasons']:.2f}; "
             f"{s['rows_with_a_tie']:.1%} | |"]
    if "dask" in r:
        d = r["dask"]
        lines.append(f"| Dask LocalCluster(2), first {d['rows']:,} rows | {d['seconds']:.1f} s, identical: "
                     f"{d['identical']} | identical |")
    a, st = r["accuracy"], r["stability"]
    lines.append(f"| paired vs exact on {a['rows']} adverse rows: top-4 overlap; same first reason | "
                 f"{a['top_k_overlap_with_exact']:.1%}; {a['first_reason_as_exact']:.1%} | |")
    for name, key in (("another seed and background sample", "another_seed"), ("LIME on the same log-odds", "lime")):
        if key in st:
            lines.append(f"| {name}: top-4 overlap; same first reason | {st[key]['top_k_overlap']:.1%}; "
                         f"{st[key]['first_reason_same']:.1%} | reported |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
