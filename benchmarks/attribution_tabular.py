"""Gradient attributions on tabular MLPs: speed against captum, and whether the methods find
the features that matter.

(a) Integrated Gradients, 50 Gauss–Legendre steps, over 10,000 rows of a 20-feature MLP
    (20-64-64-2 with a softmax output, as ``shared/anchors/peer_baselines.py``): pellucid and
    captum ``IntegratedGradients`` timed side by side in the same run (best of 3), with
    max |delta| of each and the largest difference between the two. Target: pellucid's time at
    most 1.0x captum's.
(b) Friedman-1 (scikit-learn ``make_friedman1``: 10 features, only x0..x4 enter the target):
    a small MLP regressor is trained, then each method in :data:`METHODS` attributes held-out
    rows; features are ranked by mean |attribution| over rows, and the mean rank of the 5 true
    features is compared with the 5 noise features (ranks 1..10, 1 = most important). A
    method passes when the 5 true features take the top 5 ranks. Add a method by adding one
    entry to ``METHODS``.

Run: .venv/bin/python benchmarks/attribution_tabular.py [--rows 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _tasks import peer_mlp  # noqa: E402

from pellucid import attribution as pa  # noqa: E402


# ---------------------------------------------------------------------------- (a) speed
def classification_mlp() -> tuple[torch.nn.Module, np.ndarray]:
    """The peers' 20-feature MLP (benchmarks/_tasks.py) with a softmax output, and its 20,000 rows."""
    net, Xtr, Xte, _ = peer_mlp()
    return torch.nn.Sequential(net, torch.nn.Softmax(dim=-1)).eval(), np.concatenate([Xtr, Xte])


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, out = np.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def ig_speed(rows: int, repeats: int, steps: int = 50) -> dict:
    from captum.attr import IntegratedGradients

    net, X = classification_mlp()
    x = torch.tensor(X[:rows])
    ours_t, ours = best_of(lambda: pa.integrated_gradients(net, x, target=1, n_steps=steps), repeats)

    def captum_run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return IntegratedGradients(net).attribute(x, target=1, n_steps=steps, return_convergence_delta=True)

    theirs_t, (attr, delta) = best_of(captum_run, repeats)
    return {
        "rows": rows,
        "n_steps": steps,
        "pellucid_s": ours_t,
        "captum_s": theirs_t,
        "ratio": ours_t / theirs_t,
        "pellucid_max_abs_delta": float(np.abs(ours.delta).max()),
        "captum_max_abs_delta": float(delta.abs().max()),
        "max_abs_difference": float(np.abs(ours.encoded - attr.detach().numpy()).max()),
        "attribution_scale": float(attr.abs().max()),
        "threads": torch.get_num_threads(),
    }


# ---------------------------------------------------------------------------- (b) Friedman-1
def friedman_mlp(seed: int = 0, n: int = 6000) -> tuple[torch.nn.Module, np.ndarray, np.ndarray]:
    from sklearn.datasets import make_friedman1
    from sklearn.preprocessing import StandardScaler

    X, y = make_friedman1(n_samples=n, n_features=10, noise=0.5, random_state=seed)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    y = ((y - y.mean()) / y.std()).astype(np.float32)
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(10, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 1), torch.nn.Flatten(0))
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    train = torch.tensor(X[: n - 1000]), torch.tensor(y[: n - 1000])
    for _ in range(60):
        perm = torch.randperm(len(train[0]))
        for i in range(0, len(perm), 128):
            idx = perm[i:i + 128]
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(train[0][idx]), train[1][idx]).backward()
            opt.step()
    return net.eval(), X, y


#: Method name -> call on (model, rows, background rows).
METHODS: dict[str, Callable[[Any, torch.Tensor, torch.Tensor], pa.Attribution]] = {
    "saliency": lambda m, x, bg: pa.saliency(m, x),
    "gradient_x_input": lambda m, x, bg: pa.gradient_x_input(m, x),
    "integrated_gradients": lambda m, x, bg: pa.integrated_gradients(m, x, baseline="mean", reference=bg),
    "smoothgrad": lambda m, x, bg: pa.smoothgrad(m, x, n_samples=50, stdev=0.15, random_state=0),
    "expected_gradients": lambda m, x, bg: pa.expected_gradients(m, x, baseline=bg, n_samples=50, random_state=0),
    "occlusion": lambda m, x, bg: pa.occlusion(m, x, baseline="mean", reference=bg),
    "lrp": lambda m, x, bg: pa.lrp(m, x, composite="epsilon"),
}

TRUE = 5  # x0..x4 enter the target, x5..x9 do not


def friedman(rows: int) -> dict:
    net, X, y = friedman_mlp()
    test = torch.tensor(X[-1000:][:rows])
    background = torch.tensor(X[:500])
    with torch.no_grad():
        r2 = 1 - float(((net(torch.tensor(X[-1000:])) - torch.tensor(y[-1000:])) ** 2).mean()) / float(np.var(y[-1000:]))
    out = {"r2_holdout": r2, "rows": int(len(test)), "methods": {}}
    for name, fn in METHODS.items():
        t = time.perf_counter()
        attr = fn(net, test, background)
        seconds = time.perf_counter() - t
        importance = np.abs(attr.values).mean(axis=0)
        ranks = (-importance).argsort().argsort() + 1  # 1 = most important
        out["methods"][name] = {
            "importance": importance.round(5).tolist(),
            "mean_rank_true": float(ranks[:TRUE].mean()),
            "mean_rank_noise": float(ranks[TRUE:].mean()),
            "true_on_top": bool(ranks[:TRUE].max() <= TRUE),
            "seconds": seconds,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--friedman-rows", type=int, default=1000)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()

    speed = ig_speed(args.rows, args.repeats)
    lines = [f"(a) Integrated Gradients, {speed['n_steps']} steps, {speed['rows']} rows, 20-64-64-2 softmax MLP, "
             f"{speed['threads']} torch threads, best of {args.repeats}",
             "| library | seconds | max abs delta |", "|---|---:|---:|",
             f"| pellucid | {speed['pellucid_s']:.3f} | {speed['pellucid_max_abs_delta']:.2e} |",
             f"| captum | {speed['captum_s']:.3f} | {speed['captum_max_abs_delta']:.2e} |",
             f"pellucid / captum time: {speed['ratio']:.2f}x (target <= 1.0x); max abs difference "
             f"{speed['max_abs_difference']:.2e} (attribution scale {speed['attribution_scale']:.2e})", ""]
    print("\n".join(lines), flush=True)

    fr = friedman(args.friedman_rows)
    lines2 = [f"(b) Friedman-1, MLP regressor (holdout R^2 {fr['r2_holdout']:.3f}), {fr['rows']} rows: features ranked "
              "by mean |attribution| (1 = most important)",
              "| method | mean rank x0..x4 | mean rank x5..x9 | all 5 true on top | seconds |",
              "|---|---:|---:|:---:|---:|"]
    for name, r in fr["methods"].items():
        lines2.append(f"| {name} | {r['mean_rank_true']:.1f} | {r['mean_rank_noise']:.1f} | "
                      f"{'yes' if r['true_on_top'] else 'no'} | {r['seconds']:.3f} |")
    print("\n".join(lines2))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine()}
    (out / "attribution_tabular.json").write_text(json.dumps({"ig_speed": speed, "friedman": fr, "meta": meta},
                                                             indent=2))
    (out / "attribution_tabular.md").write_text("\n".join(lines + lines2) + "\n")


if __name__ == "__main__":
    main()
