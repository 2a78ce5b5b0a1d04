"""Shapley values on raw features against shap 0.51's ExactExplainer and PermutationExplainer.

The network: the demo's credit MLP behind its ColumnTransformer (numeric columns with missing
values, median-imputed with indicators and scaled; categoricals one-hot with missing as a
level), trained 20 epochs on 4,000 rows, explaining P(good). Two tables: the demo's 11 raw
features, and the same with two more (a numeric ``savings`` with missing values and a
categorical ``channel``) for 13, the size the Shapley issue measured shap at. shap is given the
raw features as players the usual way (categoricals as integer codes, decoded inside the
model function, which runs the preprocess and the network on every call), with the same 100
background rows and an ``Independent`` masker.

Measured per table:
(a) exact: pellucid's values against shap's ExactExplainer on the same rows (max |difference|),
    additivity, ms per row and model rows per row for both; target: equal to 1e-6, >= 5x faster.
(b) permutation at shap's default budget (max_evals=500): ms per row and model rows per row
    for both, pellucid's speed per row and per model row against shap's; the share of values
    within 3 standard errors of the exact value, for pellucid (its own standard errors) and
    for shap (measured against pellucid's standard errors at the same budget). Target: >= 10x
    shap's speed per row for the same number of model rows.
(c) exact values of 1,000 rows on 2 cores. Target: under a minute.

Run: .venv/bin/python benchmarks/shapley.py [--quick] [--out benchmarks/results]
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
from pellucid.attribution.shapley import shapley  # noqa: E402
from pellucid.demo import CLASSES, make_credit, train_credit_network  # noqa: E402


def table(features: int) -> tuple[pd.DataFrame, pd.Series]:
    d = make_credit(4000, random_state=0)
    X, y = d.drop(columns=["default"]), d["default"]
    if features == 13:
        rng = np.random.default_rng(13)
        savings = np.round(rng.lognormal(8, 1.2, len(X)), 0)
        savings[rng.random(len(X)) < 0.1] = np.nan
        channel = pd.Series(rng.choice(["branch", "online", "broker", "partner"], len(X)), dtype=object)
        channel[rng.random(len(X)) < 0.05] = np.nan
        channel = channel.astype(X["home"].dtype)  # the demo's string columns, missing as NaN
        X = X.assign(savings=savings, channel=channel)
    return X, y


def coded(X: pd.DataFrame):
    cats = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    levels = {c: list(pd.Series(X[c].dropna().unique()).astype(str)) for c in cats}

    def enc(df):
        A = df.copy()
        for c in cats:
            A[c] = A[c].map({v: i for i, v in enumerate(levels[c])}).astype(float)
        return A.to_numpy(float)

    def dec(A):
        df = pd.DataFrame(A, columns=X.columns)
        for c in cats:
            df[c] = [levels[c][int(v)] if v == v else np.nan for v in df[c]]
        return df
    return enc, dec


def run(features: int, quick: bool) -> dict:
    X, y = table(features)
    torch.manual_seed(0)
    net, pre = train_credit_network(X, y, epochs=20)
    net.eval()
    good = list(CLASSES).index("good")
    enc, dec = coded(X)
    calls = [0]

    def p_good(A):
        calls[0] += len(A)
        with torch.no_grad():
            z = torch.tensor(pre.transform(dec(A)), dtype=torch.float32)
            return torch.softmax(net(z), 1)[:, good].numpy().astype(float)

    import shap

    pick = np.random.default_rng(0).choice(len(X), 100, replace=False)
    bg = X.iloc[pick]
    oracle = Oracle(net, preprocess=pre, classes=list(CLASSES))
    out: dict = {"features": features, "background_rows": len(bg)}

    # (a) exact
    n_exact = 1 if quick or features > 11 else 3
    rows = X.iloc[:n_exact]
    calls[0] = 0
    t = time.perf_counter()
    theirs = shap.ExactExplainer(p_good, shap.maskers.Independent(enc(bg), max_samples=100))(enc(rows), silent=True)
    shap_s = (time.perf_counter() - t) / n_exact
    shap_calls = calls[0] / n_exact
    oracle.reset_counter()
    t = time.perf_counter()
    ours = shapley(oracle, rows, bg, target="good", method="exact")
    ours_s = (time.perf_counter() - t) / n_exact
    ours_rows = oracle.n_queries / n_exact
    out["exact"] = {
        "rows": n_exact, "max_abs_diff_vs_shap": float(np.abs(ours.values - theirs.values).max()),
        "base_value_diff": float(np.abs(ours.base_value - theirs.base_values).max()),
        "additivity_pellucid": float(np.abs(ours.delta).max()),
        "additivity_shap": float(np.abs(theirs.values.sum(1) + theirs.base_values - p_good(enc(rows))).max()),
        "pellucid_ms_per_row": ours_s * 1e3, "shap_ms_per_row": shap_s * 1e3,
        "pellucid_model_rows_per_row": ours_rows, "shap_model_rows_per_row": shap_calls,
        "speedup": shap_s / ours_s,
    }

    # (b) permutation at shap's default budget, on the same rows
    n_perm_rows = 5 if quick else 10
    rows = X.iloc[:n_perm_rows]
    calls[0] = 0
    t = time.perf_counter()
    sp = shap.PermutationExplainer(p_good, shap.maskers.Independent(enc(bg), max_samples=100), seed=0)(
        enc(rows), max_evals=500, silent=True)
    shap_s = (time.perf_counter() - t) / n_perm_rows
    shap_calls = calls[0] / n_perm_rows
    oracle.reset_counter()
    t = time.perf_counter()
    est = shapley(oracle, rows, bg, target="good", method="permutation", n_samples=500, random_state=0)
    ours_s = (time.perf_counter() - t) / n_perm_rows
    est_rows = oracle.n_queries / n_perm_rows
    exact = shapley(oracle, rows, bg, target="good", method="exact")
    se = est.standard_error
    out["permutation"] = {
        "rows": n_perm_rows, "n_samples": 500, "permutations": est.params["permutations"],
        "pellucid_ms_per_row": ours_s * 1e3, "shap_ms_per_row": shap_s * 1e3,
        "pellucid_model_rows_per_row": est_rows, "shap_model_rows_per_row": shap_calls,
        "speedup_per_row": shap_s / ours_s,
        "speedup_per_model_row": (shap_s / shap_calls) / (ours_s / est_rows),
        "pellucid_within_3se_of_exact": float(np.mean(np.abs(est.values - exact.values) <= 3 * se)),
        "shap_within_3se_of_exact": float(np.mean(np.abs(sp.values - exact.values) <= 3 * se)),
        "pellucid_rmse_vs_exact": float(np.sqrt(np.mean((est.values - exact.values) ** 2))),
        "shap_rmse_vs_exact": float(np.sqrt(np.mean((sp.values - exact.values) ** 2))),
        "pellucid_mean_se": float(se.mean()),
        "additivity_pellucid": float(np.abs(est.delta).max()),
    }

    # (c) many rows, exact
    n_many = 200 if quick else 1000
    oracle.reset_counter()
    t = time.perf_counter()
    many = shapley(oracle, X.iloc[:n_many], bg, target="good", method="exact")
    secs = time.perf_counter() - t
    out["exact_many"] = {"rows": n_many, "seconds": secs, "ms_per_row": secs / n_many * 1e3,
                         "model_rows_per_row": oracle.n_queries / n_many,
                         "additivity": float(np.abs(many.delta).max())}
    return out


def markdown(res: list[dict], meta: dict) -> str:
    lines = [f"Shapley values, pellucid against shap {meta['shap']} ({meta['cores']} cores, torch {meta['torch']}, "
             f"load {meta['load'][0]:.2f} at the start); 100 background rows, P(good) of the demo's credit network.",
             "",
             "| raw features | what | pellucid | shap | ratio (shap / pellucid) | note |",
             "|---:|---|---:|---:|---:|---|"]
    for r in res:
        e, p, m = r["exact"], r["permutation"], r["exact_many"]
        f = r["features"]
        lines.append(f"| {f} | exact, ms per row | {e['pellucid_ms_per_row']:,.0f} | {e['shap_ms_per_row']:,.0f} | "
                     f"{e['speedup']:.1f}× | max difference {e['max_abs_diff_vs_shap']:.1e}; additivity "
                     f"{e['additivity_pellucid']:.1e} (shap {e['additivity_shap']:.1e}) |")
        lines.append(f"| {f} | exact, model rows per row | {e['pellucid_model_rows_per_row']:,.0f} | "
                     f"{e['shap_model_rows_per_row']:,.0f} | | pellucid leaves out features equal in the row and "
                     "a background row |")
        lines.append(f"| {f} | permutation (500 coalitions), ms per row | {p['pellucid_ms_per_row']:,.1f} | "
                     f"{p['shap_ms_per_row']:,.0f} | {p['speedup_per_row']:.0f}× | {p['permutations']} antithetic "
                     f"permutations |")
        lines.append(f"| {f} | permutation, model rows per row | {p['pellucid_model_rows_per_row']:,.0f} | "
                     f"{p['shap_model_rows_per_row']:,.0f} | {p['speedup_per_model_row']:.0f}× per model row | |")
        lines.append(f"| {f} | permutation, values within 3 s.e. of exact | {p['pellucid_within_3se_of_exact']:.0%} | "
                     f"{p['shap_within_3se_of_exact']:.0%} | | RMSE vs exact {p['pellucid_rmse_vs_exact']:.4f} "
                     f"(shap {p['shap_rmse_vs_exact']:.4f}); s.e. pellucid's |")
        lines.append(f"| {f} | exact, {m['rows']:,} rows | {m['seconds']:.1f} s | | | {m['ms_per_row']:.0f} ms per "
                     f"row, additivity {m['additivity']:.1e} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rows (about a minute)")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    import shap

    meta = {"shap": shap.__version__, "torch": torch.__version__, "cores": os.cpu_count(),
            "python": platform.python_version(), "load": os.getloadavg(), "quick": args.quick}
    res = [run(11, args.quick), run(13, args.quick)]
    md = markdown(res, meta)
    print(md)
    write_results(args.out, "shapley", {"meta": meta, "results": res}, md)


if __name__ == "__main__":
    main()
