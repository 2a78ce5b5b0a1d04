"""TCAV on generated data whose label depends on a known concept and not on another.

Rows x1..x6 ~ N(0, 1), label = (x1 + x2 > 1). A 6-16-16-2 ReLU MLP (Adam, weight decay 1e-2,
300 full-batch steps on 3000 rows) is trained per seed. TCAV at the first hidden layer (``"1"``,
the ReLU output) for the positive class, over 1000 random rows and the positive rows of 2000
fresh ones: concept A = ``"x1 > 0.8"`` (the label depends on it), concept B = ``"x5 > 0.8"``
(irrelevant), tested together (Bonferroni over 2). Expected: A significant with a score near 1,
B not significant. The default test compares mean directional derivatives; the same CAVs tested
on sign shares (Kim et al.'s ``statistic="sign"``) are shown beside it.

Run: .venv/bin/python benchmarks/tcav_concepts.py [--seeds 0 1 ... 9] [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from pellucid.attribution.concepts import tcav_many

CONCEPTS = {"A": "x1 > 0.8", "B": "x5 > 0.8"}


def table(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 6)), columns=[f"x{i}" for i in range(1, 7)])
    return X, ((X.x1 + X.x2) > 1).astype(int).to_numpy()


def train(seed: int) -> tuple[nn.Module, float]:
    X, y = table(3000, seed)
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.Adam(net.parameters(), 1e-2, weight_decay=1e-2)
    x, t = torch.tensor(X.to_numpy(), dtype=torch.float32), torch.tensor(y)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), t).backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        acc = float((net(x).argmax(1) == t).float().mean())
    return net, acc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    torch.set_num_threads(1)

    runs = []
    lines = [f"TCAV, label = (x1 + x2 > 1), layer '1' of a 6-16-16-2 MLP, class 1, repeats={args.repeats}, "
             "Bonferroni over 2 concepts, alpha 0.05",
             "| seed | train acc | concept | rule | score | random score | mean derivative | random derivative (mean ± sd) "
             "| p (corrected) | significant | sign-test p | sign test significant | CAV acc | TCAV seconds |",
             "|---:|---:|---|---|---:|---:|---:|---:|---:|:---:|---:|:---:|---:|---:|"]
    for seed in args.seeds:
        net, acc = train(seed)
        R, _ = table(1000, 100 + seed)
        T, yt = table(2000, 200 + seed)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = tcav_many(net, "1", CONCEPTS, R, T[yt == 1], 1, repeats=args.repeats, random_state=seed)
            secs = time.perf_counter() - t0
            sign = tcav_many(net, "1", CONCEPTS, R, T[yt == 1], 1, repeats=args.repeats, random_state=seed,
                             statistic="sign")
        runs.append({"seed": seed, "train_accuracy": acc, "seconds": secs,
                     "results": {k: r.to_dict() for k, r in res.items()},
                     "sign_test": {k: {"p_value": r.p_value, "significant": r.significant} for k, r in sign.items()}})
        for k, r in res.items():
            rd = r.random_derivatives
            lines.append(f"| {seed} | {acc:.3f} | {k} | `{r.description}` | {r.score:.3f} | "
                         f"{r.random_scores.mean():.3f} | {r.derivatives.mean():.2e} | {rd.mean():.1e} ± {rd.std():.1e} | "
                         f"{r.p_value:.2e} | {'yes' if r.significant else 'no'} | {sign[k].p_value:.2e} | "
                         f"{'yes' if sign[k].significant else 'no'} | {r.cav_accuracy:.2f} | {secs:.2f} |")
    a_ok = sum(r["results"]["A"]["significant"] for r in runs)
    b_ok = sum(not r["results"]["B"]["significant"] for r in runs)
    a_sign = sum(r["sign_test"]["A"]["significant"] for r in runs)
    b_sign = sum(not r["sign_test"]["B"]["significant"] for r in runs)
    lines.append(f"Mean-derivative test (default): A significant in {a_ok}/{len(runs)} seeds; B not significant in "
                 f"{b_ok}/{len(runs)} seeds. Sign test on the same CAVs: A {a_sign}/{len(runs)}, B not "
                 f"{b_sign}/{len(runs)}.")
    print("\n".join(lines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
            "threads": 1, "repeats": args.repeats, "concepts": CONCEPTS}
    (out / "tcav_concepts.json").write_text(json.dumps({"runs": runs, "meta": meta}, indent=2))
    (out / "tcav_concepts.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
