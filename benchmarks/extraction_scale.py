"""Extraction at scale: 200k distillation rows and 30 features, every registered surrogate.

A generated table of 30 raw features (24 numeric with some missing values, 6 categorical) and
a torch MLP behind a one-hot/scaling ColumnTransformer; the label depends on a few rules and a
smooth part. The distillation set holds 200k rows (observed + perturb + marginal); each
surrogate is fitted at 32 rules on all of it and timed, beside scikit-learn's tree fitted on
the same rows already encoded (the floor: a CART fit with no reading back).

Run: .venv/bin/python benchmarks/extraction_scale.py [--rows 200000] [--features 30]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _tasks import _onehot_scaler, _train_mlp  # noqa: E402

from pellucid import Oracle, distill  # noqa: E402
from pellucid.fidelity import evaluate  # noqa: E402
from pellucid.surrogates import SURROGATES  # noqa: E402


def make_table(n: int, n_features: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_cat = max(1, n_features // 5)
    n_num = n_features - n_cat
    cols = {}
    for j in range(n_num):
        v = rng.normal(10 * (j + 1), 3 + j, n)
        v[rng.random(n) < 0.02] = np.nan
        cols[f"num{j}"] = v
    for j in range(n_cat):
        cols[f"cat{j}"] = rng.choice([f"c{i}" for i in range(3 + j)], n).astype(object)
    df = pd.DataFrame(cols)
    z = (
        ((df["num0"] > 12) & (df["num1"] < 20)).astype(float)
        + df["cat0"].isin(["c0", "c1"]).astype(float)
        + 0.05 * df["num2"].fillna(30)
        - 1.6
    )
    y = (z + rng.normal(0, 0.3, n) > 0).astype(int).to_numpy()
    return df, y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000, help="distillation rows in all")
    ap.add_argument("--features", type=int, default=30)
    ap.add_argument("--rules", type=int, default=32)
    ap.add_argument("--only", nargs="*", help="surrogate names to time (default: all registered)")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()

    Xtr, ytr = make_table(20_000, args.features, 1)
    pre = _onehot_scaler(Xtr)
    net = _train_mlp(pre.transform(Xtr.fillna(Xtr.median(numeric_only=True))), ytr, "classification", 0, epochs=5)
    # Missing numerics reach the network as the training median.
    med = Xtr.median(numeric_only=True)
    oracle = Oracle(net, preprocess=lambda d: pre.transform(d.fillna(med)), task="classification", classes=[0, 1])
    ref, _ = make_table(args.rows // 4, args.features, 2)
    t = time.perf_counter()
    dset = distill(oracle, ref, n=args.rows - int(0.75 * len(ref)), random_state=0)
    t_distill = time.perf_counter() - t
    n_train = int((~dset.is_holdout).sum())
    print(f"distillation set: {len(dset):,} rows ({n_train:,} to fit on), {args.features} features, "
          f"distilled in {t_distill:.1f}s", flush=True)

    from sklearn.tree import DecisionTreeClassifier

    train = dset.train
    Z = pre.transform(train.rows.fillna(med))
    t = time.perf_counter()
    DecisionTreeClassifier(max_leaf_nodes=args.rules, random_state=0).fit(Z, train.outputs.argmax(1))
    floor = time.perf_counter() - t
    results = {"rows": len(dset), "train_rows": n_train, "features": args.features, "distill_seconds": t_distill,
               "sklearn_tree_encoded_seconds": floor, "surrogates": {}}
    print(f"sklearn DecisionTreeClassifier on the encoded rows: {floor:.2f}s", flush=True)
    names = args.only or [n for n, c in SURROGATES.items() if c.size_param]
    for name in names:
        cls = SURROGATES[name]
        s = cls(**{cls.size_param: args.rules})
        t = time.perf_counter()
        try:
            s.fit(dset)
        except Exception as e:  # reported, not fatal: the table says which failed and why
            results["surrogates"][name] = {"error": f"{type(e).__name__}: {e}"[:300], "seconds": time.perf_counter() - t}
            print(f"{name:24s} FAILED after {time.perf_counter() - t:.1f}s: {e}", flush=True)
            continue
        secs = time.perf_counter() - t
        fid = evaluate(s, rows=dset)
        results["surrogates"][name] = {"seconds": secs, "agreement": fid.agreement, "n_rules": s.complexity()["n_rules"]}
        print(f"{name:24s} {secs:7.2f}s  agreement {fid.agreement:.4f}  rules {s.complexity()['n_rules']}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "extraction_scale.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
