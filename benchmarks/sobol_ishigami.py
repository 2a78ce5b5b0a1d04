"""Sobol' indices of the Ishigami function (a=7, b=0.1, x_i ~ U(-pi, pi)): pellucid against SALib.

Same problem, same base sample size n, same estimators (Saltelli 2010 first order, Jansen
total), 100 bootstrap resamples each, second-order indices off:

* pellucid: ``pellucid.attribution.sensitivity.sobol(f, bounds, n=n)``, a scrambled Sobol'
  sequence, one batched call of ``f`` on a DataFrame of n (d + 2) rows, vectorised bootstrap.
* SALib: ``SALib.sample.saltelli.sample`` (deprecated in SALib 1.6 but still shipped; an
  unscrambled Sobol' sequence) + ``SALib.analyze.sobol.analyze``, and, as a second row, SALib's
  recommended ``SALib.sample.sobol.sample`` (scrambled, seeded) + the same ``analyze``.

The model is the same numpy function for all three (pellucid hands it a DataFrame, SALib an
array); times are wall clock, best of ``--repeats``, sampling + model + analysis. Every index
is printed next to the closed form.

Run: .venv/bin/python benchmarks/sobol_ishigami.py [--n 8192] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _tasks import best_of, write_results  # noqa: E402

from pellucid.attribution.sensitivity import sobol  # noqa: E402

A, B = 7.0, 0.1
NAMES = ("x1", "x2", "x3")


def ishigami(x1: np.ndarray, x2: np.ndarray, x3: np.ndarray) -> np.ndarray:
    return np.sin(x1) + A * np.sin(x2) ** 2 + B * x3 ** 4 * np.sin(x1)


def analytical() -> tuple[np.ndarray, np.ndarray]:
    pi = math.pi
    v1 = 0.5 * (1 + B * pi ** 4 / 5) ** 2
    v2 = A ** 2 / 8
    v13 = B ** 2 * pi ** 8 * (1 / 18 - 1 / 50)
    v = v1 + v2 + v13
    return np.array([v1, v2, 0.0]) / v, np.array([v1 + v13, v2, v13]) / v


def run_pellucid(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    def f(X: pd.DataFrame) -> np.ndarray:
        return ishigami(*(X[c].to_numpy() for c in NAMES))

    res = sobol(f, {c: (-math.pi, math.pi) for c in NAMES}, n=n, n_boot=100, random_state=seed)
    return res.first.to_numpy(), res.total.to_numpy()


def run_salib(n: int, seed: int, sampler: str) -> tuple[np.ndarray, np.ndarray]:
    from SALib.analyze import sobol as analyze

    problem = {"num_vars": 3, "names": list(NAMES), "bounds": [[-math.pi, math.pi]] * 3}
    if sampler == "saltelli":
        from SALib.sample import saltelli

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "salib.sample.saltelli will be removed"
            X = saltelli.sample(problem, n, calc_second_order=False)
    else:
        from SALib.sample import sobol as sample

        X = sample.sample(problem, n, calc_second_order=False, seed=seed)
    S = analyze.analyze(problem, ishigami(X[:, 0], X[:, 1], X[:, 2]), calc_second_order=False,
                        num_resamples=100, seed=seed)
    return np.asarray(S["S1"]), np.asarray(S["ST"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8192)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    from importlib.metadata import version

    salib_version = version("SALib")
    s1, st = analytical()
    runs = {
        "pellucid": lambda: run_pellucid(args.n, args.seed),
        "SALib saltelli.sample + sobol.analyze": lambda: run_salib(args.n, args.seed, "saltelli"),
        "SALib sobol.sample (scrambled) + sobol.analyze": lambda: run_salib(args.n, args.seed, "sobol"),
    }
    results = {}
    for name, fn in runs.items():
        seconds, (first, total) = best_of(fn, args.repeats)
        results[name] = {
            "seconds": seconds,
            "first": dict(zip(NAMES, first.tolist())),
            "total": dict(zip(NAMES, total.tolist())),
            "max_abs_error": float(max(np.abs(first - s1).max(), np.abs(total - st).max())),
        }
    out = {
        "problem": "Ishigami a=7, b=0.1, x_i ~ U(-pi, pi)",
        "n": args.n, "evaluations": args.n * 5, "n_boot": 100, "seed": args.seed, "repeats": args.repeats,
        "analytical": {"first": dict(zip(NAMES, s1.tolist())), "total": dict(zip(NAMES, st.tolist()))},
        "results": results,
        "versions": {"SALib": salib_version, "numpy": np.__version__, "python": platform.python_version()},
        "machine": platform.machine(),
    }

    lines = [f"# Sobol' indices of the Ishigami function: pellucid vs SALib {salib_version}", "",
             f"n = {args.n} base rows, {args.n * 5} model evaluations, 100 bootstrap resamples, seed {args.seed}; "
             f"time is the best of {args.repeats} (sampling + model + analysis).", "",
             "| | " + " | ".join(f"S1 {c}" for c in NAMES) + " | " + " | ".join(f"ST {c}" for c in NAMES)
             + " | max error | seconds |",
             "|---" * 9 + "|",
             "| analytical | " + " | ".join(f"{v:.4f}" for v in (*s1, *st)) + " | | |"]
    for name, r in results.items():
        vals = [*r["first"].values(), *r["total"].values()]
        lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in vals)
                     + f" | {r['max_abs_error']:.4f} | {r['seconds']:.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    write_results(args.out, "sobol_ishigami", out, text)


if __name__ == "__main__":
    main()
