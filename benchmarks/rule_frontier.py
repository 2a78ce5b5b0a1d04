"""Rule extraction against its peers: fidelity at each size budget, in one run.

For each network (benchmarks/_tasks.py: the demo's credit network, breast cancer, a wide
table of 60 features, the 10-class digits, generated known rules; a regression on request) and
each budget of 4, 8, 16 and 32 rules:

* peers: scikit-learn's tree and imodels' FIGS, HSTree, RuleFit (``max_rules``) and
  GreedyRuleList (``--all-peers`` adds BoostedRules, C4.5 and SLIPPER), fitted as a user of one
  library would: on the observed training rows, one-hot encoded and median-imputed by hand, to
  the network's labels, with the library's own size knob set to the budget;
* pellucid: the frontier ``pellucid explain`` fits (its default candidates, on the distilled
  rows and on the observed rows alone) on a distillation set made as ``pellucid explain`` makes
  it (observed + perturb + marginal rows; ``--strategy`` to change, e.g. adding ``trepan``),
  and the entry ``Frontier.select(max_rules=budget)`` recommends: chosen by
  its agreement on validation rows (observed training rows no fit saw), never by the held-out
  rows it is scored on here.

Everything is scored on the same held-out observed rows: agreement with the network's labels
(classification) or R² of its outputs (regression), with a 95% Wilson interval for agreement.
Peers' rule counts are read from the fitted models where the library exposes them. Fit time:
the whole pellucid frontier (every candidate, size and view) against the sum of the peers'
fits at every budget; the distillation (the network's queries) is timed apart.

Run: .venv/bin/python benchmarks/rule_frontier.py [--tasks credit breast_cancer ...] [--seeds 0 1 2]
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
from pellucid.fidelity.intervals import wilson  # noqa: E402
from pellucid.pipeline.stages import default_surrogates  # noqa: E402

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
             budgets=BUDGETS, all_peers: bool = False) -> list[dict]:
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

    def score(pred) -> tuple[float, list[float] | None]:
        if classification:
            hits = np.round(np.asarray(pred, dtype=float)).astype(int) == y_ho
            return float(hits.mean()), wilson(float(hits.sum()), len(hits))
        return float(r2_score(y_ho, np.asarray(pred, dtype=float))), None

    n_classes = 0 if dset.classes is None else len(dset.classes)
    if candidates is None:
        candidates = default_surrogates(task.task, n_classes)  # what `pellucid explain` fits
    else:
        from pellucid.surrogates import SURROGATES

        candidates = [c for c in candidates if SURROGATES[c].supports(task.task, n_classes)]
    t = time.perf_counter()
    front = frontier(dset, candidates=candidates, sizes=budgets, random_state=seed, n_jobs=n_jobs, verbose=0)
    t_front = time.perf_counter() - t
    rows = []
    peer_seconds = 0.0
    for k in budgets:
        row = {"task": name, "seed": seed, "budget": k, "measure": "agreement" if classification else "r2",
               "holdout_rows": len(hold), "validation_rows": len(front.validation_set or ())}
        named = peers(task.task, k, seed, every=all_peers)
        for pname, factory in named.items():
            model, secs, err = fit_peer(factory, Ztr, y_tr)
            peer_seconds += secs
            row[pname], row[f"{pname}_ci"] = (None, None) if model is None else score(model.predict(Zho))
            row[f"{pname}_rules"] = None if model is None else peer_rules(model)
            row[f"{pname}_seconds"] = secs
            if err:
                row[f"{pname}_error"] = err
        try:
            best = front.select(max_rules=k)  # chosen on validation rows, as explain chooses
        except Exception:  # nothing within the budget
            best = None
        row["pellucid"] = None if best is None else best.score
        row["pellucid_ci"] = None if best is None or best.fidelity is None else best.fidelity.agreement_ci
        row["pellucid_surrogate"] = None if best is None else (
            f"{best.candidate}@{best.size}" + ("" if best.training == "distilled" else "/observed"))
        row["pellucid_rules"] = None if best is None else best.n_rules
        # The best the frontier holds within the budget, had it been chosen by the held-out rows
        # (for the record only: that choice would fool itself).
        within = [e for e in front.entries if e.ok and e.n_rules <= k]
        row["pellucid_oracle_choice"] = max((e.score for e in within), default=None)
        peer_vals = [(row[p], p) for p in named if row.get(p) is not None]
        row["best_peer"], row["best_peer_name"] = max(peer_vals) if peer_vals else (None, None)
        row["margin"] = None if best is None or not peer_vals else row["pellucid"] - row["best_peer"]
        rows.append(row)
        print(
            f"{name:14s} seed={seed} budget={k:2d}  pellucid {row['pellucid']:.4f} ({row['pellucid_surrogate']}, "
            f"{row['pellucid_rules']} rules)  best peer {row['best_peer']:.4f} ({row['best_peer_name']})  "
            f"margin {100 * row['margin']:+.2f} pts",
            flush=True,
        )
    failed = [f"{e.candidate}@{e.size}/{e.training}: {e.error}" for e in front.failed]
    for r in rows:
        r.update(network_seconds=t_net, distill_seconds=t_distill, frontier_seconds=t_front, n_distill=len(dset),
                 peer_seconds_all_budgets=peer_seconds, frontier_fits=len(front.entries), failed=failed)
    print(f"{name:14s} seed={seed} frontier {t_front:.1f} s ({len(front.entries)} fits) vs peers {peer_seconds:.1f} s "
          f"(ratio {t_front / peer_seconds:.2f}); distill {t_distill:.1f} s", flush=True)
    return rows


def _ci(cis) -> str:
    cis = [c for c in cis if c is not None]
    if not cis:
        return ""
    lo, hi = np.mean([c[0] for c in cis]), np.mean([c[1] for c in cis])
    return f" [{lo:.3f}, {hi:.3f}]"


def table(rows: list[dict]) -> str:
    df = pd.DataFrame(rows)
    peer_cols = [c for c in df.columns if (c.startswith("imodels_") or c == "sklearn_tree")
                 and not c.endswith(("_rules", "_seconds", "_error", "_ci"))]
    g = df.groupby(["task", "budget"], sort=False)
    lines = [
        "| network | budget | pellucid (recommended entry) [95% CI] | best peer | margin (pts) | "
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
            f"| {task} ({d['measure'].iloc[0]}) | {k} | {d['pellucid'].mean():.4f}{_ci(d['pellucid_ci'])} ({surro}) | "
            f"{d['best_peer'].mean():.4f} | {100 * d['margin'].mean():+.2f} | " + " | ".join(cells) + " |"
        )
    cls = df[df["measure"] == "agreement"]
    lines += [
        "",
        f"Mean margin over classification networks and budgets: {100 * cls['margin'].mean():+.2f} points; "
        f"smallest (network, budget) mean margin: {100 * cls.groupby(['task', 'budget'])['margin'].mean().min():+.2f}; "
        f"the frontier's best entry chosen by the held-out rows (a ceiling that fools itself): "
        f"{100 * (cls['pellucid_oracle_choice'] - cls['best_peer']).mean():+.2f} points.",
        "",
        "| network | rows held out | validation rows | distilled rows | frontier fits | frontier s | peers s (all budgets) | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for task, d in df.groupby("task", sort=False):
        one = d.drop_duplicates("seed")
        lines.append(
            f"| {task} | {int(one['holdout_rows'].mean())} | {int(one['validation_rows'].mean())} | "
            f"{int(one['n_distill'].mean()):,} | {int(one['frontier_fits'].mean())} | {one['frontier_seconds'].mean():.1f} | "
            f"{one['peer_seconds_all_budgets'].mean():.1f} | "
            f"{(one['frontier_seconds'] / one['peer_seconds_all_budgets']).mean():.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=["credit", "breast_cancer", "wide", "multiclass", "known_rules"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--strategy", nargs="+", default=["observed", "perturb", "marginal"],
                    help="distillation strategies (default: what `pellucid explain` uses)")
    ap.add_argument("--n", type=int, default=20000, help="synthetic rows")
    ap.add_argument("--n-jobs", type=int, default=None)
    ap.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS),
                    help="rule budgets (default: 4 8 16 32; add 2 to see the smallest surrogates)")
    ap.add_argument("--candidates", nargs="+", default=None,
                    help="pellucid surrogates on the frontier (default: those `pellucid explain` fits; 'all' for "
                         "every registered one)")
    ap.add_argument("--all-peers", action="store_true", help="also BoostedRules, C4.5 and SLIPPER")
    ap.add_argument("--quick", action="store_true",
                    help="credit and breast cancer, one seed, 5,000 synthetic rows (for benchmarks/suite.py --quick)")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    if args.quick:
        args.tasks, args.seeds, args.n = ["credit", "breast_cancer"], [0], 5000
    rows = []
    for name in args.tasks:
        for seed in args.seeds:
            from pellucid.surrogates import SURROGATES

            cands = list(SURROGATES) if args.candidates == ["all"] else args.candidates
            rows.extend(run_task(name, seed, args.strategy, args.n, args.n_jobs, cands, tuple(args.budgets),
                                 args.all_peers))
    md = table(rows)
    print("\nMean over seeds", args.seeds, "— held-out agreement (R² for regression) with the network")
    print(md)
    write_results(args.out, "rule_frontier", rows, md)


if __name__ == "__main__":
    main()
