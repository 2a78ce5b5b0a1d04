"""Batched LIME against the ``lime`` package (0.2.0.1) on the 20-feature MLP of
``shared/anchors/peer_baselines.py`` (make_classification, 20 features, 20-64-64-2, 15 epochs).

(a) Speed: pellucid explains ``--rows`` test rows (default 1,000) at 5,000 samples each; lime
    explains ``--lime-rows`` of them (default 20) in the same run, its per-row time is
    extrapolated. Target: pellucid >= 20x faster per row.
(b) Local fidelity on the SAME held-out samples for both: per lime row, held-out samples are
    drawn once (i) from pellucid's neighbourhood (Gaussian around the row, ``scale`` spreads,
    pellucid's kernel) and (ii) from lime's own neighbourhood (its sampler, quartile bins, its
    kernel); lime's explanation (intercept + weights on its bin indicators, reproduced with
    its discretizer) and pellucid's (intercept + per-unit slopes) are both scored by weighted
    R² there. Target: pellucid >= lime. Like for like on lime's own neighbourhoods, pellucid is
    also run at lime's width on the same rows: discretize="quartile" (lime's default
    representation; the kernels then coincide: one unit of squared distance per bin that
    differs) scored on (ii), and by value at one standard deviation (scale = std / spread)
    against lime with discretize_continuous=False, sample_around_instance=True (Gaussian of one
    std around the row, its kernel on the standardised distance), scored on (iii) held-out
    draws of that sampler. A diagnostic fits lime's own Ridge on lime-style draws that keep the
    row's bin in half of the samples (pellucid's balanced draws) to isolate the sampling design.
(c) Stability: share of rows whose top-3 features are identical across 5 seeds, as a set and
    in order; pellucid's reasons (positive contributions) and its top-3 by |contribution|;
    lime's top-3 by |weight| (its own order) and its positive ones. Target: >= 90%.

Run: .venv/bin/python benchmarks/lime_speed.py [--rows 1000] [--lime-rows 20] [--stability-rows 300]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _tasks import peer_mlp  # noqa: E402

from pellucid import Oracle  # noqa: E402
from pellucid.surrogates.lime_local import lime, lime_stability, top_k_agreement

SEEDS = (0, 1, 2, 3, 4)


def weighted_r2(y, pred, w):
    ybar = np.average(y, weights=w)
    return float(1 - np.sum(w * (y - pred) ** 2) / np.sum(w * (y - ybar) ** 2))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--lime-rows", type=int, default=20)
    ap.add_argument("--stability-rows", type=int, default=300)
    ap.add_argument("--lime-stability-rows", type=int, default=20)
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--holdout-samples", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    from lime.lime_tabular import LimeTabularExplainer

    net, Xtr, Xte, _ = peer_mlp()
    cols = [f"x{i}" for i in range(20)]
    ref = pd.DataFrame(Xtr.astype(np.float64), columns=cols)
    rows = pd.DataFrame(Xte[:args.rows].astype(np.float64), columns=cols)
    oracle = Oracle(net, classes=[0, 1], output="logits", verbose=0)

    def proba(a):
        with torch.no_grad():
            return torch.softmax(net(torch.as_tensor(a, dtype=torch.float32)), -1).numpy()

    # ---- (a) speed
    lime(oracle, rows.iloc[:50], ref, num_samples=args.samples)  # warm-up
    t = time.perf_counter()
    ours = lime(oracle, rows, ref, num_samples=args.samples, random_state=0)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    proba(np.random.default_rng(0).normal(size=(args.rows * args.samples, 20)).astype(np.float32))
    t_floor = time.perf_counter() - t

    ex = LimeTabularExplainer(Xtr, mode="classification", random_state=0)
    nl = args.lime_rows
    targets = ours.target_index[:nl]
    theirs = []
    t = time.perf_counter()
    for i in range(nl):
        theirs.append(ex.explain_instance(Xte[i], proba, labels=(int(targets[i]),), num_features=20,
                                          num_samples=args.samples))
    t_lime = (time.perf_counter() - t) / nl
    per_ours = t_ours / args.rows

    # ---- (b) fidelity on shared held-out samples
    # pellucid at lime's width, fitted on the lime rows: (1) quartile bins, lime's default
    # representation (and the same kernel: one unit of squared distance per bin that differs);
    # (2) by value with noise of one standard deviation (lime's continuous sampler around the row).
    lime_rows = rows.iloc[:nl]
    ours_q = lime(oracle, lime_rows, ref, num_samples=args.samples, random_state=0, discretize="quartile",
                  target=list(targets))
    std = Xtr.astype(np.float64).std(0)
    spreads = np.array([_spread(Xtr[:, j]) for j in range(20)])
    scale_std = float(np.median(std / spreads))  # one scalar: the data are standardised, std/spread ~ 1
    ours_c = lime(oracle, lime_rows, ref, num_samples=args.samples, random_state=0, scale=scale_std,
                  target=list(targets))
    ex_c = LimeTabularExplainer(Xtr, mode="classification", random_state=0, discretize_continuous=False,
                                sample_around_instance=True)
    theirs_c = [ex_c.explain_instance(Xte[i], proba, labels=(int(targets[i]),), num_features=20,
                                      num_samples=args.samples) for i in range(nl)]
    freqs = [np.asarray(ex.feature_frequencies[j]) for j in range(20)]
    rng = np.random.default_rng(12345)
    rng_diag = np.random.default_rng(777)
    sd = ours.params["scale"] * np.array([_spread(Xtr[:, j]) for j in range(20)])
    width = 0.75 * np.sqrt(20)
    fid = {"pellucid_neighbourhood": {"pellucid": [], "lime": []},
           "lime_neighbourhood": {"pellucid": [], "pellucid_quartile": [], "lime": [],
                                  "diag_lime_sampler_keep_half": [], "diag_lime_sampler_fresh": []},
           "lime_continuous_neighbourhood": {"pellucid_scale_std": [], "lime_continuous": []}}
    for i in range(nl):
        x = Xte[i].astype(np.float64)
        k = int(targets[i])
        coef = ours.coef_raw.iloc[i].to_numpy()
        icpt = float(ours.intercept.iloc[i])
        e = theirs[i]
        lw = np.zeros(20)
        for j, v in e.local_exp[k]:
            lw[j] = v
        bins_x = ex.discretizer.discretize(x.reshape(1, -1))[0]

        def ours_at(v):
            return icpt + (v - x) @ coef

        def lime_at(v):
            return e.intercept[k] + (ex.discretizer.discretize(v) == bins_x) @ lw

        # (i) pellucid's neighbourhood and kernel (fresh draws, not the fit's)
        v = np.clip(x + rng.normal(size=(args.holdout_samples, 20)) * sd, Xtr.min(0), Xtr.max(0))
        w = np.sqrt(np.exp(-(((v - x) / sd) ** 2).sum(1) / width ** 2))
        y = proba(v)[:, k]
        fid["pellucid_neighbourhood"]["pellucid"].append(weighted_r2(y, ours_at(v), w))
        fid["pellucid_neighbourhood"]["lime"].append(weighted_r2(y, lime_at(v), w))
        # (ii) lime's own sampler and kernel
        data, inv = ex._LimeTabularExplainer__data_inverse(x, args.holdout_samples + 1)
        data, inv = data[1:], inv[1:]  # row 0 is the instance itself
        # lime's distance: its scaled indicators against the instance's (all ones)
        d = np.sqrt((((data - 1.0) / ex.scaler.scale_) ** 2).sum(1))
        w = np.sqrt(np.exp(-(d ** 2) / width ** 2))
        y = proba(inv)[:, k]
        fid["lime_neighbourhood"]["pellucid"].append(weighted_r2(y, ours_at(inv), w))
        fid["lime_neighbourhood"]["lime"].append(weighted_r2(y, lime_at(inv), w))
        ind = (ex.discretizer.discretize(inv) == bins_x).astype(np.float64)
        fid["lime_neighbourhood"]["pellucid_quartile"].append(
            weighted_r2(y, float(ours_q.intercept.iloc[i]) + ind @ ours_q.coef.iloc[i].to_numpy(), w))
        # Diagnostics (why pellucid-quartile differs from lime here): lime's own Ridge on lime-style
        # draws (bins by frequency, values by truncated normal) but with the row's bin kept in half of
        # the samples as pellucid's balanced draws do; and on fresh draws of lime's own sampler.
        for key, keep_half in (("diag_lime_sampler_keep_half", True), ("diag_lime_sampler_fresh", False)):
            fid["lime_neighbourhood"][key].append(
                weighted_r2(y, _ridge_on_bins(ex, x, bins_x, freqs, proba, k, args.samples, width, keep_half,
                                              rng_diag)(ind), w))
        # (iii) lime without discretisation, Gaussian around the row with the data's std (its kernel on
        # the standardised distance), against pellucid by value at the same noise (scale_std spreads)
        data_c, _ = ex_c._LimeTabularExplainer__data_inverse(x, args.holdout_samples + 1)
        v = data_c[1:]
        z = (v - ex_c.scaler.mean_) / ex_c.scaler.scale_
        z0 = (x - ex_c.scaler.mean_) / ex_c.scaler.scale_
        w = np.sqrt(np.exp(-((z - z0) ** 2).sum(1) / width ** 2))
        y = proba(v)[:, k]
        ec = theirs_c[i]
        lwc = np.zeros(20)
        for j, c_ in ec.local_exp[k]:
            lwc[j] = c_
        fid["lime_continuous_neighbourhood"]["lime_continuous"].append(weighted_r2(y, ec.intercept[k] + z @ lwc, w))
        pc = float(ours_c.intercept.iloc[i]) + (v - x) @ ours_c.coef_raw.iloc[i].to_numpy()
        fid["lime_continuous_neighbourhood"]["pellucid_scale_std"].append(weighted_r2(y, pc, w))
    fidelity = {hood: {who: {"median": float(np.median(v)), "mean": float(np.mean(v))} for who, v in d.items()}
                for hood, d in fid.items()}
    fidelity["pellucid_own_holdout"] = {"median": float(ours.local_r2.median()), "mean": float(ours.local_r2.mean())}
    fidelity["lime_own_score_on_fit_samples"] = {"median": float(np.median([e.score for e in theirs]))}
    fidelity["pellucid_quartile_own_holdout"] = {"median": float(ours_q.local_r2.median())}
    fidelity["pellucid_scale_std_own_holdout"] = {"median": float(ours_c.local_r2.median()), "scale": scale_std}
    fidelity["fidelity_rows"] = nl

    # ---- (c) stability over seeds
    srows = rows.iloc[:args.stability_rows]
    t = time.perf_counter()
    st_pos = lime_stability(oracle, srows, ref, seeds=SEEDS, k=3, num_samples=args.samples)
    t_stab = time.perf_counter() - t
    st_abs = lime_stability(oracle, srows, ref, seeds=SEEDS, k=3, by="abs", num_samples=args.samples)
    nls = args.lime_stability_rows
    tops_abs, tops_pos = [], []
    for s in SEEDS:
        exs = LimeTabularExplainer(Xtr, mode="classification", random_state=s)
        a = np.full((nls, 3), None, dtype=object)
        p = np.full((nls, 3), None, dtype=object)
        for i in range(nls):
            k = int(ours.target_index[i])
            got = exs.explain_instance(Xte[i], proba, labels=(k,), num_features=20, num_samples=args.samples)
            ranked = got.local_exp[k]  # lime's own order: |weight| descending
            a[i] = [cols[j] for j, _ in ranked[:3]]
            pos = [cols[j] for j, v in ranked if v > 0][:3]
            p[i, :len(pos)] = pos
        tops_abs.append(a)
        tops_pos.append(p)
    la_set, la_ord = top_k_agreement(tops_abs)
    lp_set, lp_ord = top_k_agreement(tops_pos)
    stability = {
        "pellucid_reasons": {"set": st_pos.set_identical, "ordered": st_pos.ordered_identical, "rows": len(srows)},
        "pellucid_abs": {"set": st_abs.set_identical, "ordered": st_abs.ordered_identical, "rows": len(srows)},
        "lime_abs": {"set": float(la_set.mean()), "ordered": float(la_ord.mean()), "rows": nls},
        "lime_positive": {"set": float(lp_set.mean()), "ordered": float(lp_ord.mean()), "rows": nls},
    }
    speed = {"rows": args.rows, "samples": args.samples, "pellucid_total_s": t_ours,
             "pellucid_ms_per_row": 1000 * per_ours, "lime_ms_per_row": 1000 * t_lime, "lime_rows": nl,
             "ratio": t_lime / per_ours, "forward_only_s": t_floor, "stability_5_seeds_s": t_stab}
    meta = {"torch_threads": args.threads, "python": platform.python_version(), "torch": torch.__version__,
            "machine": platform.machine(), "params": ours.params}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "lime_speed.json").write_text(json.dumps({"speed": speed, "fidelity": fidelity, "stability": stability,
                                                     "meta": meta}, indent=2, default=str))
    lines = [
        "# Batched LIME vs lime 0.2.0.1 (20-feature MLP, 5000 samples per row)", "",
        "| | pellucid | lime |", "|---|---|---|",
        f"| ms per row | {speed['pellucid_ms_per_row']:.2f} ({args.rows} rows, total {t_ours:.1f} s) | "
        f"{speed['lime_ms_per_row']:.1f} ({nl} rows) |",
        f"| speed-up | {speed['ratio']:.1f}x | 1x |",
        f"| forward pass alone ({args.rows * args.samples:,} rows) | {t_floor:.1f} s | |",
        "",
        f"Local fidelity: weighted R² on the same {args.holdout_samples} held-out samples per row, median over "
        f"the first {nl} rows (mean in brackets); each neighbourhood's own sampler and kernel.", "",
        "| neighbourhood (held-out samples and kernel) | pellucid config | pellucid | lime |", "|---|---|---|---|",
        f"| pellucid's (Gaussian, {ours.params['scale']} spreads) | default (scale={ours.params['scale']}) | "
        f"{_fmt(fidelity['pellucid_neighbourhood']['pellucid'])} | {_fmt(fidelity['pellucid_neighbourhood']['lime'])} |",
        f"| lime's default (quartile bins by frequency) | default (scale={ours.params['scale']}) | "
        f"{_fmt(fidelity['lime_neighbourhood']['pellucid'])} | {_fmt(fidelity['lime_neighbourhood']['lime'])} |",
        f"| lime's default (quartile bins by frequency) | lime width: discretize='quartile' | "
        f"{_fmt(fidelity['lime_neighbourhood']['pellucid_quartile'])} | {_fmt(fidelity['lime_neighbourhood']['lime'])} |",
        f"| lime continuous (discretize_continuous=False, Gaussian 1 std around the row) | lime width: "
        f"scale={scale_std:.3f} (1 std) | {_fmt(fidelity['lime_continuous_neighbourhood']['pellucid_scale_std'])} | "
        f"{_fmt(fidelity['lime_continuous_neighbourhood']['lime_continuous'])} |",
        f"| diagnostic, lime's quartile neighbourhood: lime's Ridge on lime-style draws with the row's bin kept "
        f"in half the samples (pellucid's balanced draws) / on fresh lime draws | | "
        f"{_fmt(fidelity['lime_neighbourhood']['diag_lime_sampler_keep_half'])} | "
        f"{_fmt(fidelity['lime_neighbourhood']['diag_lime_sampler_fresh'])} |",
        f"| own held-out R², pellucid quartile / pellucid scale={scale_std:.3f} ({nl} rows) | | "
        f"{fidelity['pellucid_quartile_own_holdout']['median']:.3f} / "
        f"{fidelity['pellucid_scale_std_own_holdout']['median']:.3f} | |",
        "", "| | pellucid | lime |", "|---|---|---|",
        f"| pellucid local_r2 (own held-out, median over {args.rows}) / lime score (fit samples) | "
        f"{fidelity['pellucid_own_holdout']['median']:.3f} | {fidelity['lime_own_score_on_fit_samples']['median']:.3f} |",
        f"| top-3 identical over 5 seeds, reasons/positive (set, ordered) | {st_pos.set_identical:.3f}, "
        f"{st_pos.ordered_identical:.3f} ({len(srows)} rows) | {lp_set.mean():.3f}, {lp_ord.mean():.3f} ({nls} rows) |",
        f"| top-3 identical over 5 seeds, by abs (set, ordered) | {st_abs.set_identical:.3f}, "
        f"{st_abs.ordered_identical:.3f} | {la_set.mean():.3f}, {la_ord.mean():.3f} |",
    ]
    (out / "lime_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _fmt(d):
    return f"{d['median']:.3f} ({d['mean']:.3f})"


def _ridge_on_bins(ex, x, bins_x, freqs, proba, k, n, width, keep_half, rng):
    """lime's Ridge(alpha=1) with its kernel on bin indicators, fitted on n lime-style draws: bins by
    the training frequency (keep_half: the row's bin in half of the samples, the other bins by
    frequency otherwise), values by lime's truncated normal within the bin."""
    from sklearn.linear_model import Ridge

    p = len(bins_x)
    b = np.empty((n, p), dtype=np.int64)
    for j in range(p):
        own = int(bins_x[j])
        f = freqs[j].copy()
        if keep_half:
            f[own] = 0.0
            f /= f.sum()
            b[:, j] = np.where(rng.random(n) < 0.5, own, rng.choice(len(f), size=n, p=f))
        else:
            b[:, j] = rng.choice(len(f), size=n, p=f)
    vals = ex.discretizer.undiscretize(b.astype(np.float64))
    ind = (b == bins_x).astype(np.float64)
    w = np.sqrt(np.exp(-((ind - 1.0) ** 2).sum(1) / width ** 2))
    return Ridge(alpha=1).fit(ind, proba(vals)[:, k], sample_weight=w).predict


def _spread(v):
    from pellucid.extraction.samplers import _spread as spread

    return spread(None, v.astype(np.float64))


if __name__ == "__main__":
    main()
