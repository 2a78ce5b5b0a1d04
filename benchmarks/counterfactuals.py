"""Counterfactuals against DiCE (``dice-ml``, method "random") on the demo's credit network, as
``shared/anchors/shap_dice_baselines.py`` sets DiCE up: the network trained for 20 epochs on
4,000 rows (torch seed 0), the rows without missing values that the network calls bad, age
and region held fixed, one counterfactual per row, the opposite class wanted.

Both are scored the same way, by pellucid's measures: validity (the network, asked again,
decides good), features changed, distance in robust-spread units (a number moved by one
spread counts 1, a changed category 1) and plausibility (that distance to the nearest observed
row the network decides good). DiCE explains one row per call; pellucid explains all rows in
one call. Time per row for each, in the same run.
Target: validity 100% for both, sparsity and distance no worse than DiCE's, >= 10x its speed.

Run: .venv/bin/python -W ignore benchmarks/counterfactuals.py [--rows 10] [--more 200]
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
from pellucid.demo import CLASSES, make_credit, train_credit_network  # noqa: E402
from pellucid.surrogates.counterfactuals import _Space, counterfactuals  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10, help="rows both explain (DiCE: one call each)")
    ap.add_argument("--more", type=int, default=200, help="rows pellucid also explains in one call (0: none)")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    import dice_ml

    torch.manual_seed(0)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    d = make_credit(4000, random_state=0)
    X, y = d.drop(columns=["default"]), d["default"]
    net, pre = train_credit_network(X, y, epochs=20)
    net.eval()
    good = CLASSES.index("good")
    cats = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    oracle = Oracle(net, preprocess=pre, classes=list(CLASSES), verbose=0)

    def proba(df):
        with torch.no_grad():
            return torch.softmax(net(torch.tensor(pre.transform(df[X.columns]), dtype=torch.float32)), 1).numpy()[:, good]

    class Model:
        def predict_proba(self, df):
            p = proba(df)
            return np.c_[1 - p, p]

        def predict(self, df):
            return (proba(df) >= 0.5).astype(int)

    dd = d.dropna().copy()
    dd["default"] = (proba(dd) >= 0.5).astype(int)
    data = dice_ml.Data(dataframe=dd, continuous_features=[c for c in X.columns if c not in cats], outcome_name="default")
    exp = dice_ml.Dice(data, dice_ml.Model(model=Model(), backend="sklearn"), method="random")
    bad_all = dd[dd["default"] == 0].drop(columns=["default"])
    bad = bad_all.head(args.rows)
    vary = [c for c in X.columns if c not in ("age", "region")]

    space = _Space(X, list(X.columns), {"age", "region"}, {}, 32)
    ref_good = X[oracle.predict(X) == "good"]
    ref_cols = space.columns(ref_good.to_numpy(dtype=object))

    def score(original: pd.DataFrame, cf: pd.DataFrame) -> dict:
        A = original[X.columns].to_numpy(dtype=object)
        B = cf[X.columns].to_numpy(dtype=object)
        changed = [sum(space.step(j, A[i, j], B[i, j]) > 0 for j in range(A.shape[1])) for i in range(len(A))]
        dist = [float(space.distances(space.columns(A[i:i + 1]), space.columns(B[i:i + 1]))[0, 0]) for i in range(len(A))]
        plaus = space.distances(space.columns(B), ref_cols).min(axis=1)
        valid = proba(cf) >= 0.5
        return {"rows": len(A), "valid": float(np.mean(valid)), "features_changed_mean": float(np.mean(changed)),
                "features_changed": [int(c) for c in changed], "distance_mean": float(np.mean(dist)),
                "distance_median": float(np.median(dist)), "plausibility_mean": float(np.mean(plaus))}

    t = time.perf_counter()
    dice_cfs, dice_rows = [], []
    for i in range(len(bad)):
        cf = exp.generate_counterfactuals(bad.iloc[[i]], total_CFs=1, desired_class="opposite", random_seed=0,
                                          features_to_vary=vary).cf_examples_list[0].final_cfs_df
        if cf is None or not len(cf):
            continue
        cf = cf[X.columns].astype({c: float for c in X.columns if c not in cats})
        dice_cfs.append(cf.iloc[[0]])
        dice_rows.append(i)
    t_dice = time.perf_counter() - t
    dice = score(bad.iloc[dice_rows], pd.concat(dice_cfs)) if dice_cfs else {"rows": 0}
    dice.update(ms_per_row=t_dice / len(bad) * 1e3, found=len(dice_cfs) / len(bad))

    t = time.perf_counter()
    ours = counterfactuals(oracle, bad, reference=X, immutable=["age", "region"])
    t_ours = time.perf_counter() - t
    got = ours[ours["found"].to_numpy()]
    cf = got[[f"cf_{c}" for c in X.columns]].set_axis(list(X.columns), axis=1)
    mine = score(bad.loc[got.index], cf)
    mine.update(ms_per_row=t_ours / len(bad) * 1e3, found=float(ours["found"].mean()),
                valid_by_pellucid=float(ours["valid"].mean()))
    res = {"dice": dice, "pellucid": mine, "speedup": dice["ms_per_row"] / mine["ms_per_row"]}
    print(f"DiCE random: {dice}\npellucid:    {mine}\nspeed-up {res['speedup']:.1f}x", flush=True)
    if args.more:
        many = bad_all.head(args.more)
        t = time.perf_counter()
        more = counterfactuals(oracle, many, reference=X, immutable=["age", "region"])
        t_more = time.perf_counter() - t
        g = more[more["found"].to_numpy()]
        sc = score(many.loc[g.index], g[[f"cf_{c}" for c in X.columns]].set_axis(list(X.columns), axis=1))
        sc.update(ms_per_row=t_more / len(many) * 1e3, found=float(more["found"].mean()))
        res["pellucid_more"] = sc
        print(f"pellucid on {len(many)} rows: {sc}", flush=True)
    meta = {"dice_ml": dice_ml.__version__ if hasattr(dice_ml, "__version__") else "?", "torch": torch.__version__,
            "cores": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()}
    md = markdown(res, meta)
    print(md)
    write_results(args.out, "counterfactuals", {"meta": meta, "results": res}, md)


def markdown(r: dict, meta: dict) -> str:
    dice, ours = r["dice"], r["pellucid"]
    lines = [f"Counterfactuals on the demo's credit network, {ours['rows']} rows the network calls bad "
             f"(age and region fixed), {meta['cores']} cores, load {meta['load'][0]:.2f}", "",
             "| measure | pellucid | DiCE random | target |", "|---|---|---|---|",
             f"| ms per row | {ours['ms_per_row']:.1f} | {dice['ms_per_row']:.0f} | >= 10x DiCE "
             f"({r['speedup']:.1f}x) |",
             f"| found | {ours['found']:.0%} | {dice['found']:.0%} | |",
             f"| valid (the network asked again) | {ours['valid']:.0%} | {dice.get('valid', float('nan')):.0%} | 100% |",
             f"| features changed (mean) | {ours['features_changed_mean']:.2f} | "
             f"{dice.get('features_changed_mean', float('nan')):.2f} | no more than DiCE |",
             f"| distance, robust-spread units (mean / median) | {ours['distance_mean']:.2f} / "
             f"{ours['distance_median']:.2f} | {dice.get('distance_mean', float('nan')):.2f} / "
             f"{dice.get('distance_median', float('nan')):.2f} | no more than DiCE |",
             f"| plausibility: distance to the nearest row decided good (mean) | {ours['plausibility_mean']:.2f} | "
             f"{dice.get('plausibility_mean', float('nan')):.2f} | reported |"]
    if "pellucid_more" in r:
        m = r["pellucid_more"]
        lines.append(f"| pellucid on {m['rows']} rows in one call: ms per row; valid; changed; distance | "
                     f"{m['ms_per_row']:.1f}; {m['valid']:.0%}; {m['features_changed_mean']:.2f}; "
                     f"{m['distance_mean']:.2f} | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
