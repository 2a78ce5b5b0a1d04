"""Activation maximisation on the digits CNN, and the credit network's most probable rows.

Digits: ``maximise_image`` with its default settings makes one 8x8 image per digit (all ten in
one batch) for the CNN of ``tests/_nets.digits_cnn``; for each seed in ``--seeds`` it records
the softmax probability of each target class and the wall time, and the images of the first
seed go into a PNG grid (benchmarks/results/activation_max_digits.png) to look at. The check:
every probability >= 0.99.

Credit: on the demo network (a small table, few epochs), ``maximise_row`` for each class from
the best reference rows, checked against the schema and against the best real row.

Run: .venv/bin/python benchmarks/activation_max.py [--seeds 0 1 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pellucid import Oracle, Schema  # noqa: E402
from pellucid.attribution.visualisation import maximise_image, maximise_row, top_rows  # noqa: E402
from pellucid.demo import CLASSES, TARGET, make_credit, train_credit_network  # noqa: E402
from tests._nets import digits_cnn  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def digits_experiment(seeds: list[int]) -> tuple[dict, np.ndarray]:
    net = digits_cnn()
    runs, first = [], None
    for seed in seeds:
        t0 = time.perf_counter()
        res = maximise_image(net, list(range(10)), random_state=seed)
        wall = time.perf_counter() - t0
        runs.append({"seed": seed, "wall_s": round(wall, 3),
                     "probability": [round(float(p), 6) for p in res.probability],
                     "predicted": res.predicted.tolist(), "min_probability": float(res.probability.min())})
        if first is None:
            first = res
    return {"params": first.params, "runs": runs,
            "all_at_least_0.99": all(r["min_probability"] >= 0.99 for r in runs)}, first


def save_grid(res, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 10, figsize=(12, 1.8))
    for c, ax in enumerate(axes):
        ax.imshow(res.images[c, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{c}: p={res.probability[c]:.3f}", fontsize=8)
    fig.suptitle("maximise_image on the digits CNN (defaults, seed 0)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def credit_experiment() -> dict:
    df = make_credit(2000, random_state=1)
    X = df.drop(columns=TARGET)
    net, pre = train_credit_network(X, df[TARGET], epochs=8, random_state=0)
    oracle = Oracle(net, preprocess=pre, task="classification", classes=list(CLASSES), verbose=0)
    schema = Schema.from_frame(X)
    ref = make_credit(1000, random_state=7).drop(columns=TARGET)
    ref = ref[ref.notna().all(axis=1)].reset_index(drop=True)
    out = {}
    for t, cls in enumerate(CLASSES):
        t0 = time.perf_counter()
        res = maximise_row(oracle, cls, schema, reference=ref)
        wall = time.perf_counter() - t0
        schema.validate(res.row)
        top = top_rows(oracle, ref, cls, k=3)
        out[cls] = {"row": res.to_dict()["row"], "probability": res.probability,
                    "best_real_probability": float(top.scores[0]), "n_queries": res.n_queries,
                    "rounds": len(res.history) - 1, "wall_s": round(wall, 3),
                    "top_real_rows": top.to_dict()["rows"]}
    return out


def markdown(result: dict) -> str:
    d = result["digits"]
    lines = ["# Activation maximisation", "",
             f"Digits CNN (`tests/_nets.digits_cnn`), `maximise_image` defaults: "
             f"steps={d['params']['steps']}, lr={d['params']['lr']}, jitter={d['params']['jitter']}, "
             f"tv_weight={d['params']['tv_weight']}, l2_weight={d['params']['l2_weight']}, "
             f"objective={d['params']['objective']}, parametrisation={d['params']['parametrisation']}; "
             f"torch threads: {result['threads']}.", "",
             "| seed | wall (s) | " + " | ".join(f"p({c})" for c in range(10)) + " | min |",
             "|---|---|" + "---|" * 11]
    for r in d["runs"]:
        lines.append(f"| {r['seed']} | {r['wall_s']:.2f} | " + " | ".join(f"{p:.4f}" for p in r["probability"])
                     + f" | {r['min_probability']:.4f} |")
    lines += ["", f"Every probability >= 0.99: **{d['all_at_least_0.99']}**. "
              "Images: `activation_max_digits.png`.", "", "## Credit network: most probable rows", "",
              "| class | p(max row) | p(best real row) | queries | wall (s) | row |", "|---|---|---|---|---|---|"]
    for cls, c in result["credit"].items():
        row = ", ".join(f"{k}={v}" for k, v in c["row"].items())
        lines.append(f"| {cls} | {c['probability']:.4f} | {c['best_real_probability']:.4f} | {c['n_queries']} | "
                     f"{c['wall_s']:.2f} | {row} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    RESULTS.mkdir(parents=True, exist_ok=True)
    digits_result, first = digits_experiment(args.seeds)
    save_grid(first, RESULTS / "activation_max_digits.png")
    result = {"threads": args.threads, "torch": torch.__version__, "python": platform.python_version(),
              "digits": digits_result, "credit": credit_experiment()}
    (RESULTS / "activation_max.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (RESULTS / "activation_max.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
