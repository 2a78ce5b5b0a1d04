"""Anchors: pellucid against alibi's AnchorTabular on two networks.

* ``mlp20``: the peers' 20-feature MLP (make_classification n_features=20, n_informative=8,
  20-64-64-2, 15 epochs, as shared/anchors/peer_baselines.py); reference = its 15,000 training
  rows, instances = the first test rows.
* ``credit``: pellucid's demo network (11 mixed features, missing values) trained on 5,000 rows;
  reference = 2,000 other rows, instances = the first of them.

For each instance both explainers look for an anchor with precision 0.95 (alibi's defaults
otherwise: quartiles, delta 0.1, tau 0.15, batch 100, beam 1; pellucid: beam 2, shortest). Every
anchor is then checked on FRESH samples drawn by this script, not by either explainer:
``--fresh`` reference rows whose anchored features are replaced by reference values that satisfy
the anchor's conditions on that feature -- each feature on its own ("independent", pellucid's
sampling) and all anchored features from one reference row ("joint", alibi's sampling) -- and the
share on which the network keeps the instance's class is the anchor's fresh precision. Coverage
is the share of the reference that satisfies the anchor (both recomputed here from the
conditions). alibi's anchors are read back into exact conditions (its printed thresholds are
rounded; they are snapped back to its own quantile edges).

alibi has no missing values: for ``credit`` it gets the categories as codes (missing as its
own code) and numeric missing values as -1 (both features with missing values are >= 0), and its
predictor turns them back before asking the same network.

Timing: pellucid ``anchors()`` on all instances at once (per instance = total / n), also with
alibi's acceptance rule (``epsilon_stop=0.05``: a lower bound 0.05 below the target passes), and
``anchor()`` one row at a time; alibi ``explain()`` one row at a time. One torch thread.

Run: .venv/bin/python benchmarks/anchors_bench.py [--n 100] [--alibi-n 100] [--tasks mlp20 credit]
alibi is imported from the environment or from ``--alibi-path`` (a ``pip install --target``
folder, so that pellucid's own environment is not touched); without it the table has pellucid only.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tasks import peer_mlp  # noqa: E402

from pellucid import Oracle
from pellucid.demo import CLASSES, TARGET, make_credit, train_credit_network
from pellucid.extraction.rules import Condition
from pellucid.schema import Schema
from pellucid.surrogates.anchors import anchor, anchors

MISSING_CODE_NUM = -1.0


# ---------------------------------------------------------------------- tasks
def mlp20_task():
    net, Xtr, Xte, yte = peer_mlp()
    cols = [f"x{i}" for i in range(20)]
    oracle = Oracle(net, task="classification", verbose=0)
    ref = pd.DataFrame(Xtr.astype(np.float64), columns=cols)
    inst = pd.DataFrame(Xte.astype(np.float64), columns=cols)
    acc = float((oracle.predict(inst) == yte).mean())
    return oracle, ref, inst, f"test accuracy {acc:.3f}"


def credit_task():
    train = make_credit(5000, random_state=5000)
    net, pre = train_credit_network(train.drop(columns=TARGET), train[TARGET], random_state=0)
    oracle = Oracle(net, preprocess=pre, task="classification", classes=list(CLASSES), verbose=0)
    ref = make_credit(2000, random_state=0).drop(columns=TARGET)
    return oracle, ref, ref, "demo network"


TASKS = {"mlp20": mlp20_task, "credit": credit_task}


# ---------------------------------------------------------------------- fresh evaluation
def fresh_precision(oracle, ref: pd.DataFrame, items, n: int, seed: int, joint: bool) -> np.ndarray:
    """Fresh precision of each ``(conditions, target_label, instance)`` in one model query."""
    rng = np.random.default_rng(seed)
    parts, targets = [], []
    for conds, label, inst in items:
        base = ref.iloc[rng.integers(len(ref), size=n)].reset_index(drop=True)
        feats = list(dict.fromkeys(c.feature for c in conds))
        masks = {}
        for f in feats:
            m = np.ones(len(ref), dtype=bool)
            for c in conds:
                if c.feature == f:
                    m &= c.apply(ref)
            masks[f] = m
        if joint and feats:
            allm = np.logical_and.reduce([masks[f] for f in feats])
            if allm.any():
                rows = rng.choice(np.flatnonzero(allm), n)
                for f in feats:
                    base[f] = ref[f].to_numpy()[rows]
                feats = []
        for f in feats:
            ok = np.flatnonzero(masks[f])
            base[f] = ref[f].to_numpy()[rng.choice(ok, n)] if ok.size else inst[f]
        parts.append(base)
        targets.append(label)
    pred = oracle.predict(pd.concat(parts, ignore_index=True)).reshape(len(items), n)
    return (pred == np.asarray(targets, dtype=object)[:, None]).mean(axis=1)


def summarise(name, items, times, ref, oracle, fresh_n, seed, extra=None):
    fi = fresh_precision(oracle, ref, items, fresh_n, seed, joint=False)
    fj = fresh_precision(oracle, ref, items, fresh_n, seed + 1, joint=True)
    cov = [float(np.logical_and.reduce([c.apply(ref) for c in conds] or [np.ones(len(ref), bool)]).mean())
           for conds, _, _ in items]
    length = [len(conds) for conds, _, _ in items]
    nfeat = [len({c.feature for c in conds}) for conds, _, _ in items]
    out = {
        "explainer": name,
        "n": len(items),
        "fresh_precision_independent": float(np.mean(fi)),
        "fresh_precision_joint": float(np.mean(fj)),
        "share_fresh_ge_target": float(np.mean(fi >= 0.95)),
        "coverage": float(np.mean(cov)),
        "conditions": float(np.mean(length)),
        "features": float(np.mean(nfeat)),
        "ms_per_instance": 1000 * float(np.mean(times)),
    }
    out.update(extra or {})
    return out


# ---------------------------------------------------------------------- alibi
def alibi_anchors(oracle, ref: pd.DataFrame, inst: pd.DataFrame, n: int, seed: int):
    from alibi.explainers import AnchorTabular

    schema = Schema.from_frame(ref)
    canon = schema.validate(ref, what="reference")
    cat_cols = [f.name for f in schema if f.is_categorical]
    num_missing = [f.name for f in schema if not f.is_categorical and f.n_missing]
    cats = {c: list(schema[c].categories) + ["(missing)"] for c in cat_cols}

    def encode(frame: pd.DataFrame) -> np.ndarray:
        arr = np.zeros((len(frame), len(schema)), dtype=float)
        for j, f in enumerate(schema):
            col = frame[f.name]
            if f.name in cats:
                codes = pd.Index(cats[f.name][:-1], dtype=object).get_indexer(col.to_numpy(dtype=object))
                arr[:, j] = np.where(codes < 0, len(cats[f.name]) - 1, codes)
            else:
                arr[:, j] = np.nan_to_num(col.to_numpy(dtype=float), nan=MISSING_CODE_NUM)
        return arr

    def decode(arr: np.ndarray) -> pd.DataFrame:
        out = {}
        for j, f in enumerate(schema):
            if f.name in cats:
                vals = np.asarray(cats[f.name], dtype=object)[arr[:, j].astype(int)]
                vals[vals == "(missing)"] = np.nan
                out[f.name] = vals
            else:
                v = arr[:, j].astype(float)
                if f.name in num_missing:
                    v = np.where(v == MISSING_CODE_NUM, np.nan, v)
                out[f.name] = v
        return pd.DataFrame(out)

    def predictor(arr: np.ndarray) -> np.ndarray:
        return oracle.query(decode(np.atleast_2d(arr))).argmax(axis=1)

    names = schema.names
    category_map = {names.index(c): [str(v) for v in cats[c]] for c in cat_cols}
    explainer = AnchorTabular(predictor, names, categorical_names=category_map, seed=seed)
    A = encode(canon)
    explainer.fit(A, disc_perc=(25, 50, 75))
    edges = {f: explainer.samplers[0].disc.lambdas[f].keywords["qts"] for f in explainer.samplers[0].disc.lambdas}
    inst_canon = schema.validate(inst, what="instances")
    B = encode(inst_canon)
    items, times = [], []
    for i in range(n):
        t = time.perf_counter()
        exp = explainer.explain(B[i], threshold=0.95)
        times.append(time.perf_counter() - t)
        label = oracle.classes_[int(predictor(B[i:i + 1])[0])]
        conds = []
        for text, fid in zip(exp.anchor, exp.data["raw"]["feature"]):
            fname = names[fid]
            if fname in cats:
                v = cats[fname][int(B[i, fid])]
                conds.append(Condition(fname, "in", () if v == "(missing)" else (v,), v == "(missing)", "categorical"))
                continue
            qts = edges[fid]
            snap = lambda s: float(qts[np.argmin(np.abs(qts - float(s)))])  # noqa: E731
            num = r"(-?\d+(?:\.\d+)?)"
            lo = re.match(rf"^{num} < ", text)
            hi = re.search(rf"<= {num}$", text)
            gt = re.search(rf" > {num}$", text)
            lo_v = snap(lo.group(1)) if lo else (snap(gt.group(1)) if gt else -np.inf)
            hi_v = snap(hi.group(1)) if hi else np.inf
            # A numeric missing value is -1 to alibi: it passes when the interval admits -1.
            miss = fname in num_missing and lo_v < MISSING_CODE_NUM <= hi_v
            kind = schema[fname].kind.value
            if np.isfinite(lo_v):
                conds.append(Condition(fname, ">", lo_v, miss, kind))
            if np.isfinite(hi_v):
                conds.append(Condition(fname, "<=", hi_v, miss, kind))
        items.append((conds, label, inst_canon.iloc[i]))
    return items, times


# ---------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    ap.add_argument("--n", type=int, default=100, help="instances per task")
    ap.add_argument("--alibi-n", type=int, default=100, help="instances alibi explains (it is slow)")
    ap.add_argument("--single-n", type=int, default=20, help="instances for pellucid's one-row-at-a-time timing")
    ap.add_argument("--fresh", type=int, default=2000, help="fresh samples per anchor")
    ap.add_argument("--alibi-path", default="/tmp/alibi-site")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    if args.alibi_path and Path(args.alibi_path).is_dir():
        sys.path.append(args.alibi_path)
    try:
        import alibi  # noqa: F401
        from alibi.explainers import AnchorTabular  # noqa: F401  (checked here: it is what the run needs)

        alibi_version = alibi.__version__
    except Exception as e:  # noqa: BLE001 -- any import failure means: no alibi here
        alibi_version = None
        print(f"alibi is not available ({type(e).__name__}: {e}); reporting pellucid alone", flush=True)

    results = []
    lines = ["| network | explainer | n | fresh precision (indep.) | fresh precision (joint) | share ≥ 0.95 | "
             "coverage | conditions | features | ms / instance |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in args.tasks:
        oracle, ref, inst, note = TASKS[name]()
        print(f"{name}: {note}", flush=True)
        canon = Schema.from_frame(ref).validate(ref, what="reference")
        rows = inst.iloc[: args.n]
        inst_canon = Schema.from_frame(ref).validate(rows, what="instances")
        rows_res = []

        oracle.reset_counter()
        t = time.perf_counter()
        found = anchors(oracle, rows, ref, 0.95, random_state=0)
        total = time.perf_counter() - t
        items = [(a.rule.conditions, a.prediction, inst_canon.iloc[i]) for i, a in enumerate(found)]
        rows_res.append(summarise("pellucid anchors() batched", items, [total / len(found)] * len(found), canon, oracle,
                                  args.fresh, 1, {"model_calls": oracle.n_calls, "model_rows": oracle.n_queries,
                                                  "success": float(np.mean([a.success for a in found])),
                                                  "examples": [a.text() for a in found[:5]]}))
        # alibi's acceptance rule (lower bound 0.05 below the target): faster, less precise.
        oracle.reset_counter()
        t = time.perf_counter()
        loose = anchors(oracle, rows, ref, 0.95, epsilon_stop=0.05, random_state=0)
        total = time.perf_counter() - t
        items = [(a.rule.conditions, a.prediction, inst_canon.iloc[i]) for i, a in enumerate(loose)]
        rows_res.append(summarise("pellucid anchors() batched, epsilon_stop=0.05", items,
                                  [total / len(loose)] * len(loose), canon, oracle, args.fresh, 4,
                                  {"model_calls": oracle.n_calls, "model_rows": oracle.n_queries}))
        times, single = [], []
        for i in range(min(args.single_n, len(rows))):
            t = time.perf_counter()
            single.append(anchor(oracle, rows.iloc[[i]], ref, 0.95, random_state=i))
            times.append(time.perf_counter() - t)
        items = [(a.rule.conditions, a.prediction, inst_canon.iloc[i]) for i, a in enumerate(single)]
        rows_res.append(summarise("pellucid anchor() one row", items, times, canon, oracle, args.fresh, 2))
        if alibi_version is not None:
            k = min(args.alibi_n, len(rows))
            items, times = alibi_anchors(oracle, ref, rows, k, 0)
            rows_res.append(summarise(f"alibi {alibi_version} AnchorTabular", items, times, canon, oracle, args.fresh, 3,
                                      {"examples": [" AND ".join(c.text() for c in it[0]) for it in items[:5]]}))
        for r in rows_res:
            r["network"] = name
            lines.append(f"| {name} | {r['explainer']} | {r['n']} | {r['fresh_precision_independent']:.3f} | "
                         f"{r['fresh_precision_joint']:.3f} | {r['share_fresh_ge_target']:.2f} | {r['coverage']:.3f} | "
                         f"{r['conditions']:.2f} | {r['features']:.2f} | {r['ms_per_instance']:.1f} |")
            print(lines[-1], flush=True)
        results.extend(rows_res)
    md = "\n".join(lines)
    print(md)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "alibi": alibi_version, "args": vars(args)}
    (out / "anchors_bench.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2, default=str))
    (out / "anchors_bench.md").write_text(md + "\n")


if __name__ == "__main__":
    main()
