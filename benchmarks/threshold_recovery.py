"""Do the extracted rules land on the truth? Threshold recovery on data with known rules.

Two networks whose training label is a known set of threshold rules:

* ``known_rules`` (benchmarks/_tasks.py): ``(pressure > 180 and temperature <= 42.5) or
  (flow >= 7.5 and grade in {A, B})``;
* ``credit`` (pellucid's demo): ``(debt_ratio > 0.6 and income < 40) or delinquencies >= 3 or
  (employment = unemployed and home in {rent, other})`` with 5% of labels flipped.

pellucid distils each network, builds the frontier of every registered surrogate and selects
the best with at most ``--max-rules`` rules. For each true threshold, the closest threshold the
selected rules use on that feature is found, and the error is given as a share of the
feature's observed range (target: within 5%). A feature the rules never test counts as missed.

Run: .venv/bin/python benchmarks/threshold_recovery.py [--seeds 0 1 2] [--max-rules 8]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _tasks import TASKS, write_results  # noqa: E402

from pellucid import distill  # noqa: E402
from pellucid.extraction.rules import NUMERIC_OPS  # noqa: E402
from pellucid.fidelity import frontier  # noqa: E402

#: Feature -> true threshold. Integer features: the midpoint between the values on each side.
TRUTH = {
    "known_rules": {"pressure": 180.0, "temperature": 42.5, "flow": 7.5},
    "credit": {"debt_ratio": 0.6, "income": 40.0, "delinquencies": 2.5},
}


def thresholds_of(surrogate) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    rules = surrogate.rules_
    for r in rules.rules:
        for c in r.conditions:
            if c.op in NUMERIC_OPS and np.isfinite(c.value):
                out.setdefault(c.feature, []).append(float(c.value))
    return out


def run(task_name: str, seed: int, max_rules: int, n: int) -> dict:
    task = TASKS[task_name](seed)
    dset = distill(task.oracle, task.reference, strategy=["observed", "perturb", "marginal", "boundary"], n=n,
                   random_state=seed)
    front = frontier(dset, sizes=(4, 8, 16), random_state=seed)
    chosen = front.select(max_rules=max_rules)
    found = thresholds_of(chosen.surrogate)
    rows = {}
    for feat, truth in TRUTH[task_name].items():
        f = dset.schema[feat]
        span = float(f.high - f.low)
        cands = found.get(feat, [])
        if not cands:
            rows[feat] = {"truth": truth, "found": None, "error_share": None, "within_5pct": False}
            continue
        best = min(cands, key=lambda v: abs(v - truth))
        err = abs(best - truth) / span
        rows[feat] = {"truth": truth, "found": best, "error_share": err, "within_5pct": bool(err <= 0.05)}
    return {
        "task": task_name,
        "seed": seed,
        "surrogate": f"{chosen.candidate}@{chosen.size}",
        "n_rules": chosen.n_rules,
        "agreement": chosen.score,
        "rules": chosen.surrogate.rules_.text(),
        "thresholds": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=list(TRUTH))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--max-rules", type=int, default=8)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    results = []
    lines = ["| network | seed | surrogate | rules | agreement | " + "feature: truth → found (error % of range) |",
             "|---|---:|---|---:|---:|---|"]
    for name in args.tasks:
        for seed in args.seeds:
            r = run(name, seed, args.max_rules, args.n)
            results.append(r)
            cells = []
            for feat, t in r["thresholds"].items():
                if t["found"] is None:
                    cells.append(f"{feat}: {t['truth']:g} → not tested ✗")
                else:
                    mark = "✓" if t["within_5pct"] else "✗"
                    cells.append(f"{feat}: {t['truth']:g} → {t['found']:.4g} ({100 * t['error_share']:.2f}%) {mark}")
            lines.append(f"| {name} | {seed} | {r['surrogate']} | {r['n_rules']} | {r['agreement']:.4f} | " + "; ".join(cells) + " |")
            print(lines[-1], flush=True)
    hits = [t["within_5pct"] for r in results for t in r["thresholds"].values()]
    summary = f"\n{sum(hits)} of {len(hits)} true thresholds recovered within 5% of the feature's range"
    md = "\n".join(lines) + "\n" + summary
    print(md)
    write_results(args.out, "threshold_recovery", results, md)


if __name__ == "__main__":
    main()
