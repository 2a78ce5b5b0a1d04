"""The whole ``pellucid.explain`` run, with default options, on four tables of the shapes an
analyst brings, and what its frontier and stability stages cost against their floor.

Tables (generated or bundled; nothing is downloaded):

* ``credit``: 4,454 rows x 13 raw features: the demo's credit table (numeric and categorical,
  missing values) with two more columns (a numeric ``savings`` with missing values and a
  categorical ``purpose``), behind a ColumnTransformer and a torch MLP trained on its label;
* ``lending``: 9,857 x 23: the same eleven credit features and twelve more (eight numeric, four
  categorical), two of which enter the label;
* ``known_rules``: 20,000 x 10: benchmarks/_tasks.py's table with known threshold rules and two
  more noise columns;
* ``breast_cancer``: scikit-learn's 569 x 30 with a torch MLP (a new user's model).

Per table: the explain call's wall time (in this process, modules already imported) and its
stages (``run.timings`` of report.json; ``stability_wait`` is what the run waited at the end for
refits that ran in the background), the recommended entry and its held-out agreement, and
the *floor* of the frontier: every candidate on the frontier fitted once at the largest rule
budget on each training view (the rows the frontier fitted on), one after another. The frontier
stage against that floor, and the stability stage against the frontier, are the issue's ratios.

Run: .venv/bin/python -W ignore benchmarks/explain_speed.py [--quick | --tables credit lending ...] [--n-jobs J]
     [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _tasks import breast_cancer, known_rules, make_known_rules, write_results  # noqa: E402

import pellucid  # noqa: E402
from pellucid import Oracle  # noqa: E402
from pellucid.demo import CLASSES, TARGET, make_credit, train_credit_network  # noqa: E402
from pellucid.surrogates import SURROGATES  # noqa: E402


def _credit_like(n: int, extra: int, seed: int) -> pd.DataFrame:
    """The demo's credit table with ``extra`` more columns; the label moves with the first
    numeric ones. Two extra columns are a ``savings`` amount (missing for some rows) and a
    loan ``purpose``; more are numeric scores (a few missing) and, every third, a segment."""
    df = make_credit(n, random_state=seed)
    rng = np.random.default_rng(seed + 1)
    bad = (df[TARGET].to_numpy() == CLASSES[1]).astype(float)
    cols: dict[str, np.ndarray] = {}
    if extra == 2:
        savings = np.round(np.exp(rng.normal(2.0, 0.8, n) - 0.6 * bad), 1)
        savings[rng.random(n) < 0.06] = np.nan
        cols["savings"] = savings
        cols["purpose"] = rng.choice(["car", "home", "education", "business"], n).astype(object)
    else:
        for i in range(extra):
            if i % 3 == 2:
                cols[f"segment_{i}"] = rng.choice(["a", "b", "c", "d", "e"], n).astype(object)
            else:
                v = np.round(rng.normal(0, 1, n) + (0.8 * bad if i < 2 else 0.0), 3)
                v[rng.random(n) < 0.04] = np.nan
                cols[f"score_{i}"] = v
    out = pd.concat([df.drop(columns=TARGET), pd.DataFrame(cols)], axis=1)
    out[TARGET] = df[TARGET]
    return out


def credit_table(rows: int, extra: int, seed: int = 0):
    train = _credit_like(5000, extra, 10_000 + seed)
    net, pre = train_credit_network(train.drop(columns=TARGET), train[TARGET], random_state=seed)
    oracle = Oracle(net, preprocess=pre, task="classification", classes=list(CLASSES))
    return oracle, _credit_like(rows, extra, seed).drop(columns=TARGET)


def known_rules_ten(n: int, seed: int) -> pd.DataFrame:
    """benchmarks/_tasks.py's known-rules table with two more columns the label ignores."""
    df = make_known_rules(n, seed)
    rng = np.random.default_rng(seed + 3)
    df.insert(len(df.columns) - 1, "vibration", np.round(rng.gamma(2.0, 1.5, n), 2))
    df.insert(len(df.columns) - 1, "shift", rng.choice(["day", "night"], n).astype(object))
    return df


TABLES = {
    "credit": lambda: credit_table(4454, 2),
    "lending": lambda: credit_table(9857, 12),
    "known_rules": lambda: (lambda t: (t.oracle, t.reference))(known_rules(0, 20_000, make=known_rules_ten)),
    "breast_cancer": lambda: (lambda t: (t.oracle, t.reference))(breast_cancer(0)),
}


def floor_seconds(result) -> tuple[float, dict[str, float]]:
    """Every frontier candidate fitted once at the largest budget on each training view, with
    the parameters of its entry there and on the rows the frontier fitted it on."""
    front = result.frontier
    largest = [e for e in front.entries if e.size == max(front.sizes) and e.error is None]
    per: dict[str, float] = {}
    for e in largest:
        s = SURROGATES[e.candidate](**e.params)
        t = time.perf_counter()
        s.fit(e.data)  # the training view it was fitted on, less the validation rows
        per[e.name] = time.perf_counter() - t
    return sum(per.values()), per


def run(name: str, n_jobs: int | None) -> dict:
    oracle, X = TABLES[name]()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        result = pellucid.explain(oracle, X, out_dir=tmp, verbose=0, n_jobs=n_jobs)
        wall = time.perf_counter() - t
    stages = dict(result.payload["run"]["timings"]["stages"])
    # Gathering and writing the report comes after report.json's timings are written: the
    # run's result has it.
    stages["report"] = result.timings["report"]
    floor, per = floor_seconds(result)
    chosen = result.payload["surrogates"][result.payload["recommended"]]
    front = stages.get("frontier", 0.0)
    return {
        "table": name, "rows": int(len(X)), "features": int(X.shape[1]), "wall_s": wall,
        "stages": stages, "floor_s": floor, "floor_fits": per,
        "frontier_over_floor": front / floor if floor else None,
        "stability_over_frontier": stages.get("stability", 0.0) / front if front else None,
        "recommended": chosen["name"], "agreement": chosen["fidelity"]["agreement"],
        "agreement_ci": chosen["fidelity"].get("agreement_ci"),
    }


def table(rows: list[dict]) -> str:
    # report: gathering the payload, drawing the figures, writing the files (not in report.json).
    # stability_wait: where the refits ran in the background (worker processes), what the run
    # waited for them after its other stages; their own time (stability) overlaps those stages.
    # attribution_early: the methods measured on a thread beside the frontier, from their start
    # until collected after the stability step (it overlaps frontier, linear_view and stability).
    stages = ["distill", "frontier", "linear_view", "stability", "stability_wait", "attribution_early", "attribution",
              "local", "extrapolation", "report"]
    head = ("| table | rows × features | whole run s | " + " | ".join(stages)
            + " | frontier floor s | frontier / floor | stability / frontier | recommended (held-out agreement) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        st = r["stages"]
        cells = " | ".join(f"{st[s]:.1f}" if s in st else "–" for s in stages)
        ci = r["agreement_ci"]
        rec = f"{r['recommended']} ({100 * r['agreement']:.1f}%"
        rec += f", {100 * ci[0]:.1f}–{100 * ci[1]:.1f})" if ci else ")"
        lines.append(f"| {r['table']} | {r['rows']:,} × {r['features']} | {r['wall_s']:.1f} | {cells} | "
                     f"{r['floor_s']:.1f} | {r['frontier_over_floor']:.2f} | {r['stability_over_frontier']:.2f} | {rec} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    ap.add_argument("--quick", action="store_true", help="credit and breast cancer only")
    ap.add_argument("--n-jobs", type=int, default=None, help="explain's n_jobs (default: explain's own default)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = ap.parse_args()
    rows = []
    for name in (["credit", "breast_cancer"] if args.quick else args.tables):
        r = run(name, args.n_jobs)
        print(f"{name}: {r['wall_s']:.1f} s, frontier {r['stages'].get('frontier', 0):.1f} s "
              f"(floor {r['floor_s']:.1f} s), stability {r['stages'].get('stability', 0):.1f} s", flush=True)
        rows.append(r)
    md = table(rows)
    print(md)
    write_results(args.out, "explain_speed", {"machine": platform.platform(), "n_jobs": args.n_jobs, "rows": rows}, md)


if __name__ == "__main__":
    main()
