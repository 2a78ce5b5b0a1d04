"""Does active boundary sampling make a better tree surrogate at the same query budget?

On the embedded credit example, a network is trained on its own table (as in
``distillation_gain.py``) and pellucid is given a separate table of observed rows from the same
source. Distillation sets are made seven ways, every synthetic strategy with the same number of
synthetic rows (the budget), so that all but the first cost the same number of network queries:

* ``observed``: the observed training rows only;
* ``+perturb``, ``+marginal``, ``+perturb+marginal``: passive synthetic rows;
* ``+boundary``: active rows drawn in rounds where a small internal tree disagrees with the
  network or the network is unsure (``pellucid.extraction.boundary``, default options: rows
  carry importance weights that keep the data's distribution);
* ``+boundary unweighted``: the same with ``weighting="none"`` (every row weighs 1, as in
  TREPAN);
* ``+perturb+marginal+boundary``: the budget split three ways.

pellucid's DecisionTree is fitted on each with 4, 8, 16 and 32 leaves and scored by agreement
with the network on a fresh sample of 20,000 rows from the generator (another seed), on all of
it and on its *unsure* rows (where the network's top class probability is below 0.75, i.e.
near its decision boundary). The tables give the mean over seeds and the paired difference
against ``+perturb+marginal`` with its standard error.

Run: .venv/bin/python benchmarks/boundary_gain.py [--budgets 2000 20000] [--seeds 0 1 2 3 4]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pellucid import DecisionTree, Oracle, distill
from pellucid.demo import CLASSES, TARGET, make_credit, train_credit_network

#: name -> (strategy, sampler_params)
VARIANTS: dict[str, tuple[list[str], dict]] = {
    "observed": (["observed"], {}),
    "+perturb": (["observed", "perturb"], {}),
    "+marginal": (["observed", "marginal"], {}),
    "+perturb+marginal": (["observed", "perturb", "marginal"], {}),
    "+boundary": (["observed", "boundary"], {}),
    "+boundary unweighted": (["observed", "boundary"], {"boundary": {"weighting": "none"}}),
    "+perturb+marginal+boundary": (["observed", "perturb", "marginal", "boundary"], {}),
}
REFERENCE = "+perturb+marginal"


def run(
    n_obs: int, budgets: list[int], seeds: list[int], leaves: list[int], train_rows: int, n_fresh: int
) -> list[dict]:
    results = []
    for seed in seeds:
        train = make_credit(train_rows, random_state=5_000 + seed)
        net, pre = train_credit_network(train.drop(columns=TARGET), train[TARGET], random_state=seed)
        oracle = Oracle(net, preprocess=pre, task="classification", classes=list(CLASSES), verbose=0)
        X = make_credit(n_obs, random_state=seed).drop(columns=TARGET)
        fresh = make_credit(n_fresh, random_state=10_000 + seed).drop(columns=TARGET)
        proba = oracle.query(fresh)
        fresh_labels = oracle.classes_[proba.argmax(axis=1)]
        unsure = proba.max(axis=1) < 0.75
        for budget in budgets:
            for name, (strategy, sampler_params) in VARIANTS.items():
                t = time.perf_counter()
                dset = distill(oracle, X, strategy=strategy, n=None if strategy == ["observed"] else budget,
                               sampler_params=sampler_params, random_state=seed)
                distill_s = time.perf_counter() - t
                hold = dset.holdout
                rounds = dset.params.get("active", {}).get("boundary", {}).get("rounds")
                for k in leaves:
                    tree = DecisionTree(max_leaf_nodes=k, random_state=seed).fit(dset)
                    pred = tree.predict(fresh)
                    results.append({
                        "seed": seed, "budget": budget, "variant": name, "leaves": k,
                        "n_leaves": tree.complexity()["n_leaves"],
                        "n_queries": dset.n_queries,
                        "fresh": float(np.mean(pred == fresh_labels)),
                        "fresh_unsure": float(np.mean(pred[unsure] == fresh_labels[unsure])),
                        "unsure_share": float(unsure.mean()),
                        "holdout": float(np.mean(tree.predict(hold.rows) == hold.labels)),
                        "distill_seconds": distill_s,
                        "boundary_rounds": rounds,
                    })
                print(f"seed={seed} budget={budget:6d} {name:28s} queries={dset.n_queries:6d} "
                      f"fresh@{leaves[-1]}={results[-1]['fresh']:.4f} ({distill_s:.1f}s)", flush=True)
    return results


def tables(results: list[dict]) -> str:
    df = pd.DataFrame(results)
    names = list(VARIANTS)
    out = []
    for budget, b in df.groupby("budget"):
        queries = b.groupby("variant")["n_queries"].mean()
        for metric, title in (("fresh", "all fresh rows"), ("fresh_unsure", "fresh rows where the network is unsure")):
            share = b["unsure_share"].mean()
            note = f" ({share:.1%} of them)" if metric == "fresh_unsure" else ""
            out.append(f"\n**Budget {budget} synthetic rows: agreement with the network on {title}{note}, "
                       f"mean over {b['seed'].nunique()} seeds**\n")
            out.append("| leaves | " + " | ".join(f"obs{n}" if n != "observed" else n for n in names) + " |")
            out.append("|---:|" + "---:|" * len(names))
            means = b.groupby(["leaves", "variant"])[metric].mean().unstack()[names]
            for k, row in means.iterrows():
                best = row.max()
                cells = [f"**{v:.4f}**" if v == best else f"{v:.4f}" for v in row]
                out.append(f"| {k} | " + " | ".join(cells) + " |")
            out.append("| queries | " + " | ".join(f"{queries[n]:.0f}" for n in names) + " |")
        # Paired over seeds: the same network, observed rows and fresh sample.
        out.append(f"\n**Budget {budget}: paired difference against obs{REFERENCE} (mean ± standard error "
                   "over seeds)**\n")
        others = [n for n in names if n not in ("observed", REFERENCE)]
        out.append("| leaves | metric | " + " | ".join(f"obs{n}" for n in others) + " |")
        out.append("|---:|---|" + "---:|" * len(others))
        for metric in ("fresh", "fresh_unsure"):
            wide = b.pivot_table(index=["leaves", "seed"], columns="variant", values=metric)
            for k in sorted(b["leaves"].unique()):
                w = wide.loc[k]
                cells = []
                for n in others:
                    d = w[n] - w[REFERENCE]
                    se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
                    cells.append(f"{d.mean():+.4f} ± {se:.4f}")
                out.append(f"| {k} | {metric} | " + " | ".join(cells) + " |")
        rounds = b[(b["variant"] == "+boundary") & (b["leaves"] == b["leaves"].min())]["boundary_rounds"]
        dis = np.array([[r["disagreement"] if r["disagreement"] is not None else np.nan for r in rs] for rs in rounds])
        new = np.array([[r["new_disagreement"] if r["new_disagreement"] is not None else np.nan for r in rs]
                        for rs in rounds])
        out.append(f"\n**Budget {budget}, obs+boundary: internal tree's disagreement with the network per round "
                   "(mean over seeds)**\n")
        out.append("| round | " + " | ".join(str(i) for i in range(dis.shape[1])) + " |")
        out.append("|---|" + "---:|" * dis.shape[1])
        out.append("| on the rows it was fitted on | " + " | ".join(f"{v:.3f}" for v in np.nanmean(dis, 0)) + " |")
        out.append("| on the round's new rows | " + " | ".join(f"{v:.3f}" for v in np.nanmean(new, 0)) + " |")
    return "\n".join(out).strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1000, help="observed rows given to pellucid")
    ap.add_argument("--budgets", type=int, nargs="+", default=[2000, 20000], help="synthetic rows (queries)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--leaves", type=int, nargs="+", default=[4, 8, 16, 32])
    ap.add_argument("--train-rows", type=int, default=5000, help="rows the network is trained on")
    ap.add_argument("--fresh", type=int, default=20000, help="rows of the fresh sample agreement is measured on")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    t = time.perf_counter()
    results = run(args.rows, args.budgets, args.seeds, args.leaves, args.train_rows, args.fresh)
    md = tables(results)
    print(f"\n{args.rows} observed rows, seeds {args.seeds}, {time.perf_counter() - t:.0f} s\n")
    print(md)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "boundary_gain.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    (out / "boundary_gain.md").write_text(md + "\n")


if __name__ == "__main__":
    main()
