"""Image attributions side by side with captum: 1,000 digits through the trained digits CNN.

For saliency, Integrated Gradients (50 Gauss-Legendre steps, zero baseline), Grad-CAM (last
conv layer, bilinear upsampling) and LRP (epsilon rules), pellucid and captum run on the same
images, targets and network in one process; each timing is the best of ``--repeats`` runs,
taken alternately. The table gives the time ratio (pellucid / captum; the target is <= 1.0) and
the largest absolute difference between the two results, also relative to captum's largest
attribution. The network is ``tests/_nets.digits_cnn`` (a CNN trained briefly on scikit-learn's
bundled 8x8 digits), built here.

Run: .venv/bin/python benchmarks/attribution_images.py [--n 1000] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests._nets import digits, digits_cnn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tasks import best_of  # noqa: E402


def _numpy(a: Any) -> np.ndarray:
    if hasattr(a, "encoded") and hasattr(a, "values"):
        # pellucid Attribution: image attributions keep the input's shape in .values
        return np.asarray(a.values)
    return a.detach().cpu().numpy()


def _methods(net: nn.Module, x: torch.Tensor, t: torch.Tensor, steps: int) -> dict[str, tuple[Callable, Callable]]:
    from captum.attr import LRP, IntegratedGradients, LayerAttribution, LayerGradCam, Saliency
    from captum.attr._utils.lrp_rules import EpsilonRule

    layer = net[5]  # the last Conv2d

    def captum_cam() -> torch.Tensor:
        cam = LayerGradCam(net, layer).attribute(x, target=t, relu_attributions=True)
        return LayerAttribution.interpolate(cam, tuple(x.shape[2:]), "bilinear").squeeze(1)

    # captum's LRP has no default rule for Flatten: epsilon passes its relevance on. captum
    # deletes the rules after each call, so they are set again on every call (microseconds).
    lrp_net = copy.deepcopy(net)
    flattens = [m for m in lrp_net.modules() if isinstance(m, nn.Flatten)]

    def captum_lrp() -> torch.Tensor:
        for m in flattens:
            m.rule = EpsilonRule()
        return LRP(lrp_net).attribute(x, target=t)

    methods: dict[str, tuple[Callable, Callable]] = {
        "saliency": (lambda: Saliency(net).attribute(x, target=t, abs=True), None),  # type: ignore[dict-item]
        f"integrated_gradients ({steps} steps)": (
            lambda: IntegratedGradients(net).attribute(x, baselines=0.0, target=t, n_steps=steps,
                                                       method="gausslegendre"), None),  # type: ignore[dict-item]
        "grad_cam (bilinear)": (captum_cam, None),  # type: ignore[dict-item]
        "lrp (epsilon)": (captum_lrp, None),  # type: ignore[dict-item]
    }
    ours: dict[str, Callable | None] = {}
    try:
        from pellucid.attribution.gradients import integrated_gradients, saliency

        ours["saliency"] = lambda: saliency(net, x, target=t, abs=True)
        ours[f"integrated_gradients ({steps} steps)"] = lambda: integrated_gradients(
            net, x, baseline=None, target=t, n_steps=steps, method="gausslegendre")
    except ImportError as e:  # written concurrently; the table says which rows could not run
        print(f"pellucid gradient methods not importable ({e}); those rows are skipped", flush=True)
    from pellucid.attribution.grad_cam import grad_cam
    from pellucid.attribution.lrp import lrp

    ours["grad_cam (bilinear)"] = lambda: grad_cam(net, x, target=t, layer="5", upsample="bilinear")
    ours["lrp (epsilon)"] = lambda: lrp(net, x, target=t, composite="epsilon")
    return {name: (ours.get(name), ref) for name, (ref, _) in methods.items()}  # type: ignore[misc]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="images attributed")
    ap.add_argument("--steps", type=int, default=50, help="Integrated Gradients steps")
    ap.add_argument("--repeats", type=int, default=7, help="timings per method and library, alternated (best is kept)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", module="captum")

    net = digits_cnn().to(args.device)
    x_all, _ = digits()
    x = x_all[: args.n].to(args.device)
    with torch.no_grad():
        t = net(x).argmax(dim=1)
    print(f"{len(x)} digits images {tuple(x.shape[1:])}, trained digits CNN, device {args.device}, "
          f"{torch.get_num_threads()} torch threads, best of {args.repeats}", flush=True)

    rows = []
    header = f"{'method':34s} {'pellucid s':>11s} {'captum s':>10s} {'ratio':>7s} {'max |diff|':>11s} {'relative':>9s}"
    print(header)
    print("-" * len(header))
    for name, (ours, ref) in _methods(net, x, t, args.steps).items():
        if ours is None:
            rows.append({"method": name, "error": "pellucid method not importable"})
            print(f"{name:34s} {'n/a':>11s}")
            continue
        # Warm both (first-call allocations, lazy imports), then alternate the timed runs.
        ours()
        ref()
        t_ours, t_ref = float("inf"), float("inf")
        for _ in range(args.repeats):
            s, a = best_of(ours, 1)
            t_ours = min(t_ours, s)
            s, b = best_of(ref, 1)
            t_ref = min(t_ref, s)
        a_np, b_np = _numpy(a), _numpy(b).reshape(_numpy(a).shape)
        diff = float(np.abs(a_np - b_np).max())
        scale = float(np.abs(b_np).max())
        row = {"method": name, "pellucid_seconds": t_ours, "captum_seconds": t_ref, "ratio": t_ours / t_ref,
               "max_abs_diff": diff, "relative_diff": diff / scale if scale else None, "captum_max_abs": scale}
        rows.append(row)
        print(f"{name:34s} {t_ours:11.4f} {t_ref:10.4f} {t_ours / t_ref:7.2f} {diff:11.2e} "
              f"{row['relative_diff']:9.1e}", flush=True)

    import captum

    result = {
        "images": len(x), "steps": args.steps, "repeats": args.repeats, "device": args.device,
        "threads": torch.get_num_threads(), "torch": torch.__version__, "captum": captum.__version__,
        "python": platform.python_version(), "machine": platform.machine(), "rows": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "attribution_images.json").write_text(json.dumps(result, indent=2))
    lines = [f"# Image attributions vs captum ({len(x)} digits, digits CNN, {args.device}, "
             f"{torch.get_num_threads()} threads, best of {args.repeats})", "",
             "| method | pellucid s | captum s | ratio | max abs diff | relative |", "|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['method']} | n/a | | | | {r['error']} |")
        else:
            lines.append(f"| {r['method']} | {r['pellucid_seconds']:.4f} | {r['captum_seconds']:.4f} | "
                         f"{r['ratio']:.2f} | {r['max_abs_diff']:.2e} | {r['relative_diff']:.1e} |")
    (out / "attribution_images.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
