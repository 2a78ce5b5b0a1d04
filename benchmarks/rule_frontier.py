"""Rule extraction against its peers: fidelity at each size budget, in one run.

For each network (benchmarks/_tasks.py: the demo's credit network, breast cancer, generated
known rules, a regression) and each budget of 4, 8, 16 and 32 rules:

* peers: scikit-learn's tree and imodels' rule models (FIGS, RuleFit, BoostedRules,
  GreedyRuleList, HSTree, C4.5, SLIPPER), fitted as a user of one library would — on the
  observed training rows, one-hot encoded and median-imputed by hand, to the network's labels,
  with the library's own size knob set to the budget;
* pellucid: every registered surrogate on the fidelity–complexity frontier of a distillation
  set (observed + perturb + marginal + boundary rows), each fitted on the set's training rows
  and again on its observed training rows alone (the frontier's two training views), the best
  whose rule count is within the budget.

Everything is scored on the same held-out observed rows: agreement with the network's labels
(classification) or R² of its outputs (regression). Peers' rule counts are read from the fitted
models where the library exposes them.

Run: .venv/bin/python benchmarks/rule_frontier.py [--tasks credit breast_cancer ...] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _tasks import TASKS, fit_peer, peer_encoder, peers, write_results  # noqa: E402

from pellucid import distill  # noqa: E402
from pellucid.fidelity import frontier  # noqa: E402

BUDGETS = (4, 8, 16, 32)


def peer_rules(model) -> int | None:
    """Rules in a fitted peer, where the library says."""
    for obj in (model, getattr(model, "estimator_", None)):
        try:
            if obj is not None and hasattr(obj, "get_n_leaves"):
                return int(obj.get_n_leaves())
        except Exception:  # an unfitted inner estimator: the library keeps its own copy
            pass
    if hasattr(model, "complexity_"):
        return int(model.complexity_)
    return None


def run_task(name: str, seed: int, strategy, n_synth: int, n_jobs: int | None, candidates=None,
             budgets=BUDGETS) -> list[dict]:
    t0 = time.perf_counter()
    task = TASKS[name](seed)
    t_net = time.perf_counter() - t0
    t = time.perf_counter()
    dset = distill(task.oracle, task.reference, strategy=strategy, n=n_synth, random_state=seed)
    t_distill = time.perf_counter() - t
    hold, train_obs = dset.holdout, dset.train.subset(dset.train.source == "observed")
    X_train = task.reference.iloc[train_obs.origin].reset_index(drop=True)
    X_hold = task.reference.iloc[hold.origin].reset_index(drop=True)
    enc = peer_encoder(X_train)
    Ztr, Zho = enc.transform(X_train), enc.transform(X_hold)
    classification = task.task == "classification"
    y_tr = train_obs.outputs.argmax(axis=1) if classification else train_obs.outputs
    y_ho = hold.outputs.argmax(axis=1) if classification else hold.outputs

    def score(pred) -> float:
        if classification:
            return float(np.mean(np.round(np.asarray(pred, dtype=float)).astype(int) == y_ho))
        return float(r2_score(y_ho, np.asarray(pred, dtype=float)))

    t = time.perf_counter()
    if candidates is not None:
        from pellucid.surrogates import SURROGATES

        n_classes = 0 if dset.classes is None else len(dset.classes)
        candidates = [c for c in candidates if SURROGATES[c].supports(task.task, n_classes)]
    front = frontier(dset, candidates=candidates, sizes=budgets, random_state=seed, n_jobs=n_jobs, verbose=0)
    t_front = time.perf_counter() - t
    entries = front.to_dict()["entries"]
    rows = []
    for k in budgets:
        row = {"task": name, "seed": seed, "budget": k, "measure": "agreement" if classification else "r2"}
        for pname, factory in peers(task.task, k, seed).items():
            model, secs, err = fit_peer(factory, Ztr, y_tr)
            row[pname] = None if model is None else score(model.predict(Zho))
            row[f"{pname}_rules"] = None if model is None else peer_rules(model)
            row[f"{pname}_seconds"] = secs
            if err:
                row[f"{pname}_error"] = err
        within = [e for e in entries if e.get("error") is None and e["n_rules"] <= k]
        # "score" is the task's measure: agreement, or R² for a regression.
        best = max(within, key=lambda e: (e["score"], -e["n_rules"])) if within else None
        row["pellucid"] = None if best is None else best["score"]
        row["pellucid_surrogate"] = None if best is None else (
            f"{best['candidate']}@{best['size']}" + ("" if best.get("training") == "distilled" else "/observed"))
        row["pellucid_rules"] = None if best is None else best["n_rules"]
        peer_vals = [row[p] for p in peers(task.task, k, seed) if row.get(p) is not None]
        row["best_peer"] = max(peer_vals) if peer_vals else None
        row["margin"] = None if best is None or not peer_vals else row["pellucid"] - row["best_peer"]
        rows.append(row)
        print(
            f"{name:14s} seed={seed} budget={k:2d}  pellucid {row['pellucid']:.4f} ({row['pellucid_surrogate']}, "
            f"{row['pellucid_rules']} rules)  best peer {row['best_peer']:.4f}  margin {100 * row['margin']:+.2f} pts",
            flush=True,
        )
    for r in rows:
        r.update(network_seconds=t_net, distill_seconds=t_distill, frontier_seconds=t_front, n_distill=len(dset))
    return rows


def table(rows: list[dict]) -> str:
    df = pd.DataFrame(rows)
    peer_cols = [c for c in df.columns if (c.startswith("imodels_") or c == "sklearn_tree") and "_" in c
                 and not c.endswith(("_rules", "_seconds", "_error"))]
    g = df.groupby(["task", "budget"], sort=False)
    lines = [
        "| network | budget | pellucid (best surrogate) | best peer | margin (pts) | "
        + " | ".join(c.replace("imodels_", "") for c in peer_cols)
        + " |",
        "|---|---:|---|---:|---:|" + "---:|" * len(peer_cols),
    ]
    for (task, k), d in g:
        surro = d["pellucid_surrogate"].mode().iloc[0]
        cells = []
        for c in peer_cols:
            v = d[c].dropna()
            cells.append("—" if v.empty else f"{v.mean():.4f}")
        lines.append(
            f"| {task} ({d['measure'].iloc[0]}) | {k} | {d['pellucid'].mean():.4f} ({surro}) | {d['best_peer'].mean():.4f} | "
            f"{100 * d['margin'].mean():+.2f} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--strategy", nargs="+", default=["observed", "perturb", "marginal", "boundary"])
    ap.add_argument("--n", type=int, default=20000, help="synthetic rows")
    ap.add_argument("--n-jobs", type=int, default=None)
    ap.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS),
                    help="rule budgets (default: 4 8 16 32; add 2 to see the smallest surrogates)")
    ap.add_argument(
        "--candidates",
        nargs="+",
        default=[
            "decision_tree", "optimal_tree", "hs_tree", "c45_tree", "greedy_rule_list", "bayesian_rule_list",
            "exhaustive_rule_list", "skope_rules", "figs", "boosted_rules", "sparse_linear", "scorecard",
        ],
        help="pellucid surrogates on the frontier ('all' for every registered one; rulefit and slipper take minutes)",
    )
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    rows = []
    for name in args.tasks:
        for seed in args.seeds:
            cands = None if args.candidates == ["all"] else args.candidates
            rows.extend(run_task(name, seed, args.strategy, args.n, args.n_jobs, cands, tuple(args.budgets)))
    md = table(rows)
    print("\nMean over seeds", args.seeds, "— held-out agreement (R² for regression) with the network")
    print(md)
    write_results(args.out, "rule_frontier", rows, md)


if __name__ == "__main__":
    main()
