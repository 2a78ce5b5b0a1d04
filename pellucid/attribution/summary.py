"""Attributions for the report: every method on the same rows, its global importance, its
evaluation (completeness, deletion/insertion, the randomised-network check), its agreement with
each listed surrogate, and a few rows shown one by one. The result is plain JSON."""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .._plain import cell as _cell
from .._validation import number as _num
from .._validation import plain
from ..errors import ParameterError
from ..fidelity.intervals import N_BOOT, check_seed
from ..oracle import Oracle
from .evaluation import evaluate_attributions, randomisation_check
from .importance import global_importance, rank_agreement, surrogate_importance

#: Methods the report runs on a torch network, and their display names.
LABELS = {
    "saliency": "Saliency",
    "gradient_x_input": "Gradient × input",
    "integrated_gradients": "Integrated Gradients",
    "smoothgrad": "SmoothGrad",
    "expected_gradients": "Expected gradients (SHAP)",
    "occlusion": "Occlusion",
    "lrp": "LRP",
    "grad_cam": "Grad-CAM",
    "guided_backprop": "Guided backpropagation",
    "deconvolution": "DeconvNet",
    "guided_grad_cam": "Guided Grad-CAM",
}
DEFAULT_TORCH = ("saliency", "gradient_x_input", "integrated_gradients", "smoothgrad", "occlusion")
DEFAULT_OTHER = ("occlusion",)
#: Rows the randomised-network check recomputes attributions on, once per layer.
SANITY_ROWS = 64


def default_methods(oracle: Oracle) -> tuple[str, ...]:
    """The methods the report runs: gradient methods and occlusion for a torch network,
    occlusion alone (it only queries) for any other model."""
    return DEFAULT_TORCH if oracle.kind == "torch" else DEFAULT_OTHER


def check_known(methods: Sequence[str]) -> None:
    """Refuse names not in :data:`pellucid.attribution.METHODS` (before any model is read)."""
    from .. import _validation as fmt
    from . import METHODS

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ParameterError(f"unknown attribution method(s) {unknown} ({fmt.arg('attributions')}); "
                             f"known: {sorted(METHODS)}")


def check_methods(oracle: Oracle, methods: Sequence[str] | None) -> list[str]:
    """The methods to run on ``oracle``, once each is known to be able to run.

    Called at the start of a run (before any distillation), so that a request that cannot run
    stops it at once: gradient methods need a torch network, and the methods that hook the
    network's layers (LRP, Grad-CAM, guided backpropagation, DeconvNet, Guided Grad-CAM:
    ``NEEDS_HOOKS``) cannot run on a TorchScript module.

    Parameters
    ----------
    oracle : Oracle
    methods : sequence of str or None
        Names in :data:`pellucid.attribution.METHODS`; None for :func:`default_methods`.

    Returns
    -------
    list of str

    Raises
    ------
    ParameterError
        An unknown method, or one this model cannot give (named, with the argument that
        asked for it: ``attributions=`` or ``--attributions``).
    """
    from .. import _validation as fmt
    from . import METHODS
    from ._base import NEEDS_HOOKS, is_scripted

    names = list(default_methods(oracle) if methods is None else methods)
    check_known(names)
    if oracle.kind != "torch":
        gradient = [m for m in names if m != "occlusion"]
        if gradient:
            raise ParameterError(f"{fmt.arg('attributions')} {gradient} need a torch network's gradients; this model is "
                                 f"{oracle.kind}: use occlusion")
    elif is_scripted(oracle):
        hooked = [m for m in names if m in NEEDS_HOOKS]
        if hooked:
            able = [m for m in METHODS if m not in NEEDS_HOOKS]
            raise ParameterError(
                f"{fmt.arg('attributions')} {hooked} hook the network's layers, which a TorchScript module does not "
                f"allow; pass the eager module (file.py:ATTR) or choose among {able}")
    return names


def summarise(
    oracle: Oracle,
    rows: pd.DataFrame,
    *,
    methods: Sequence[str] | None = None,
    surrogates: Sequence[Any] = (),
    surrogate_labels: Sequence[str] | None = None,
    distillation: Any = None,
    baseline: str = "median",
    max_rows: int = 300,
    sanity: bool = True,
    k: int = 5,
    random_state: int | None = 0,
    return_attributions: bool = False,
) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any]]:
    """Run attribution methods on raw rows and gather what the report shows.

    Parameters
    ----------
    oracle : Oracle
        The network. Gradient methods need a torch model; occlusion works for any.
    rows : DataFrame
        Raw rows to explain (the report uses the held-out observed rows); at most
        ``max_rows`` of them, drawn with ``random_state``.
    methods : sequence of str, optional
        Names in :data:`pellucid.attribution.METHODS`; default :func:`default_methods`.
    surrogates, surrogate_labels, distillation
        Surrogates to pair with (their permutation importance on ``distillation``) and how
        the report names them.
    baseline : str
        The reference row of methods that need one and of the deletion curves: the rows'
        ``"median"`` (or ``"mean"``, ``"mode"``) raw row, a valid row of the data.
    max_rows, sanity, k, random_state
        Rows explained, whether to run the randomised-network check (torch only), the
        top-k of the pairing, and the seed (also of the pairing's bootstrap intervals).
    return_attributions : bool
        Also return the attributions themselves (method name -> Attribution).

    Returns
    -------
    dict
        ``n``, ``rows``, ``output``, ``baseline``, ``methods`` (per method: ``name``,
        ``label``, ``seconds``, ``importance``, ``signed``, ``per_class``, ``top``,
        ``evaluation``), ``pairing`` (see :func:`pair_with_surrogates`), ``intervals``
        (see :func:`pairing_intervals`), ``instances``; with ``return_attributions``, a
        pair (that dict, the attributions).
    """
    from . import METHODS

    names = check_methods(oracle, methods)
    if not isinstance(rows, pd.DataFrame) or rows.empty:
        raise ParameterError("summarise needs a non-empty DataFrame of raw rows")
    rng = np.random.default_rng(random_state)
    if len(rows) > max_rows:
        rows = rows.iloc[np.sort(rng.choice(len(rows), max_rows, replace=False))]
    # A row is named by its label in the user's data (the index of the rows given).
    row_ids = [str(label) for label in rows.index]
    rows = rows.reset_index(drop=True)
    classification = oracle.task == "classification"
    classes = list(oracle.classes_) if classification else None

    attrs, seconds = {}, {}
    for m in names:
        t0 = time.perf_counter()
        attrs[m] = METHODS[m](oracle, rows, **_options(m, rows, baseline, random_state))
        seconds[m] = time.perf_counter() - t0
    ev = evaluate_attributions(oracle, rows, attrs, baseline=baseline, sanity=False, random_state=random_state,
                               verbose=0).to_dict()
    details = ev.get("methods", {})
    checks = {}
    if sanity and oracle.kind == "torch":
        head = rows.iloc[:SANITY_ROWS]
        for m in names:
            method = _bound(METHODS[m], _options(m, head, baseline, random_state))
            checks[m] = randomisation_check(method, oracle, head, random_state=random_state, verbose=0).to_dict()

    importance: dict[str, pd.Series] = {}
    out_methods = []
    for m in names:
        a = attrs[m]
        imp = importance[m] = global_importance(a, by="abs")
        signed = global_importance(a, by="signed")
        per_class = None
        if classification:
            pc = global_importance(a, by="abs", per_class=True, classes=classes)
            per_class = {str(c): {str(f): _num(v) for f, v in row.items()} for c, row in pc.iterrows()}
        d = details.get(m, {})
        faith = d.get("faithfulness") or {}
        curves = faith.get("mean_curves") or {}
        san = checks.get(m)
        out_methods.append({
            "name": m,
            "label": LABELS.get(m, m),
            "seconds": seconds[m],
            "params": plain(a.params, other=_short_repr, depth=1),
            "importance": {str(f): _num(v) for f, v in imp.items()},
            "signed": {str(f): _num(v) for f, v in signed.items()},
            "per_class": per_class,
            "top": [str(f) for f in imp.sort_values(ascending=False, kind="stable").index[:k]],
            "evaluation": {
                "completeness": _completeness(d.get("completeness")),
                "deletion_auc": faith.get("deletion_auc"),
                "insertion_auc": faith.get("insertion_auc"),
                "random_deletion_auc": faith.get("random_deletion_auc"),
                "random_insertion_auc": faith.get("random_insertion_auc"),
                "curves": None if not curves else {"fraction": faith.get("fractions"), **curves},
                "sanity": None if not san else _sanity(m, a, san),
                "sanity_skipped": None if m in checks else ("not asked for" if oracle.kind == "torch" else
                                                            "needs a torch network's layers"),
            },
        })

    labels = list(surrogate_labels) if surrogate_labels is not None else [getattr(s, "name", str(i)) for i, s in
                                                                        enumerate(surrogates)]
    seed = check_seed(random_state)  # one seed for every pair and the interval's description
    pairing = []
    if surrogates and distillation is not None:
        pairing = pair_with_surrogates(attrs, surrogates, labels, distillation, k=k, random_state=seed)

    show = "integrated_gradients" if "integrated_gradients" in names else names[0]
    out = {
        "n": int(len(rows)),
        "rows": "holdout",
        "output": "probability of the predicted class" if classification else "output",
        "baseline": f"the rows' {baseline} (a valid row of the data)",
        "methods": out_methods,
        "pairing": pairing,
        "intervals": pairing_intervals(pairing, len(rows), seed),
        "instances_method": show,
        "instances_method_label": LABELS.get(show, show),
        "instances": _instances(attrs[show], rows, classes, row_ids),
    }
    return (out, attrs) if return_attributions else out


def pair_with_surrogates(attrs: dict[str, Any], surrogates: Sequence[Any], labels: Sequence[str], distillation: Any,
                         *, k: int = 5, random_state: int | None = 0) -> list[dict[str, Any]]:
    """Each surrogate's permutation importance against each method's global importance.

    Parameters
    ----------
    attrs : dict
        Method name -> Attribution on the explained rows, in the order of the methods.
    surrogates, labels : sequence
        The surrogates and how the report names them.
    distillation : DistillationSet or DataFrame
        Where the surrogates' permutation importance is measured.
    k, random_state
        The top-k of the overlap; the seed of the permutations and of the intervals.

    Returns
    -------
    list of dict
        Per (surrogate, method): ``method``, ``method_label``, ``surrogate``,
        ``surrogate_index``, ``spearman`` and its bootstrap interval ``spearman_ci`` (the
        explained rows resampled, the surrogate's ranking held fixed: it has no per-row
        values; see :func:`~pellucid.attribution.importance.rank_agreement`), ``top_k``,
        ``k``, ``reason``.
    """
    pairing = []
    for i, s in enumerate(surrogates):
        sur = surrogate_importance(s, distillation, random_state=random_state)
        for m, a in attrs.items():
            r = rank_agreement(a, sur, k=k, random_state=random_state)
            pairing.append({"method": m, "method_label": LABELS.get(m, m), "surrogate": labels[i],
                            "surrogate_index": i, "spearman": _num(r.spearman),
                            "spearman_ci": None if r.spearman_ci is None else [_num(v) for v in r.spearman_ci],
                            "top_k": _num(r.top_k_overlap), "k": int(r.k), "reason": r.reason})
    return pairing


def pairing_intervals(pairing: list[dict[str, Any]], n_rows: int, seed: int,
                      confidence: float = 0.95) -> dict[str, Any]:
    """The ``intervals`` entry of an attribution summary: the ``level`` and, by estimate, the
    ``methods`` of the pairing's ``spearman_ci`` (made by :func:`pair_with_surrogates` with
    ``random_state=seed`` on ``n_rows`` rows)."""
    methods = {}
    if any(p.get("spearman_ci") is not None for p in pairing):
        methods["pairing.spearman"] = (
            f"percentile bootstrap, {N_BOOT} resamples of the {n_rows} explained rows (the surrogate's permutation "
            f"importance held fixed: it has no per-row values), seed {seed}")
    return {"level": confidence, "methods": methods}


def _completeness(comp: dict[str, Any] | None) -> dict[str, Any] | None:
    """Adds ``relative``: mean |delta| over mean |f(x) - f(baseline)|, which rows whose output
    barely moves from the baseline cannot blow up the way a per-row ratio can."""
    if not comp:
        return comp
    gap = comp.get("mean_abs_gap")
    rel = None if not gap else _num(comp.get("mean_abs_delta", 0.0) / gap)
    return {**comp, "relative": rel}


def _sanity(method: str, attr: Any, check: dict[str, Any]) -> dict[str, Any]:
    """The randomised-network check on the scale the method speaks: magnitudes for maps that
    are magnitudes (saliency and its smoothing), signed values otherwise. A signed method
    keeps exact zeros where a row equals the baseline whatever the weights, so the rank of
    magnitudes stays high for it even when its values no longer follow the network."""
    magnitude = bool(np.all(np.asarray(attr.values) >= 0))
    key = "spearman_abs" if magnitude else "spearman"
    steps = check.get("steps") or []
    final = _num(steps[-1].get(key)) if steps else None
    threshold = float(check.get("threshold", 0.5))
    return {
        "measure": "rank correlation of |attribution|" if magnitude else "rank correlation of attribution",
        "final_similarity": final,
        "threshold": threshold,
        "passed": None if final is None else bool(final < threshold),
        "n_layers": max(0, len(steps) - 1),
        "steps": steps,
    }


def _options(method: str, rows: pd.DataFrame, baseline: str, random_state: int | None) -> dict[str, Any]:
    if method in ("integrated_gradients", "occlusion"):
        return {"baseline": baseline}
    if method == "expected_gradients":
        return {"baseline": rows, "random_state": random_state}
    if method == "smoothgrad":
        return {"random_state": random_state}
    return {}


def _bound(fn: Any, options: dict[str, Any]) -> Any:
    def method(model: Any, inputs: Any, target: Any = None) -> Any:
        return fn(model, inputs, target=target, **options)
    return method


def _instances(attr: Any, rows: pd.DataFrame, classes: list | None, row_ids: list[str]) -> list[dict[str, Any]]:
    """The most confident row of each class and the least confident row (classification), or
    the highest, lowest and median output (regression), each named by ``row_ids`` (the rows'
    labels in the user's data)."""
    out = np.asarray(attr.outputs, dtype=float)
    picks: list[tuple[int, str]] = []
    if classes is not None and attr.targets is not None:
        t = np.asarray(attr.targets)
        for c in np.unique(t):
            idx = np.flatnonzero(t == c)
            picks.append((int(idx[np.argmax(out[idx])]), f"most confident {classes[int(c)]}"))
        picks.append((int(np.argmin(out)), "least confident"))
    else:
        order = np.argsort(out, kind="stable")
        picks = [(int(order[-1]), "highest output"), (int(order[len(order) // 2]), "median output"),
                 (int(order[0]), "lowest output")]
    seen, result = set(), []
    for i, why in picks:
        if i in seen:
            continue
        seen.add(i)
        tgt = None if attr.targets is None or classes is None else classes[int(attr.targets[i])]
        result.append({
            "row": row_ids[i],
            "why": why,
            "target_label": "the output" if tgt is None else f"P({tgt})",
            "output": _num(out[i]),
            "values": {str(c): _cell(v) for c, v in rows.iloc[i].items()},
            "attributions": {str(f): _num(v) for f, v in zip(attr.features, attr.values[i])},
        })
    return result


def _short_repr(v: Any) -> str:
    return repr(v)[:80]


#: Methods the image report runs by default.
DEFAULT_IMAGES = ("saliency", "integrated_gradients", "grad_cam")


def summarise_images(
    model: Any,
    images: Any,
    *,
    methods: Sequence[str] = DEFAULT_IMAGES,
    target: Any = None,
    classes: Sequence[Any] | None = None,
    n_show: int = 6,
    steps: int = 16,
    sanity: bool = True,
    random_state: int | None = 0,
) -> dict[str, Any]:
    """Heat maps and their evaluation for a convolutional network on images.

    Parameters
    ----------
    model : torch.nn.Module
        The network; its output (logits) is attributed.
    images : Tensor or ndarray of shape (n, channels, H, W)
    methods : sequence of str
        Names in :data:`pellucid.attribution.METHODS` that accept images.
    target : optional
        The class attributed per row; default the predicted one.
    classes : sequence, optional
        Class names, in the order of the outputs.
    n_show : int
        Images drawn in the report: the most confident of each predicted class in turn.
    steps, sanity, random_state
        Deletion/insertion steps (pixels in order of attribution), whether to run the
        randomised-network check, and the seed.

    Returns
    -------
    dict
        ``n``, ``shape``, ``methods`` (``name``, ``label``, ``seconds``, ``evaluation``) and
        ``examples`` (``index``, ``target``, ``output``, ``image`` and one map per method, as
        nested lists of floats in the image's height x width).
    """
    import torch

    from . import METHODS

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ParameterError(f"unknown attribution method(s) {unknown}; known: {sorted(METHODS)}")
    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.dim() != 4:
        raise ParameterError(f"images must have shape (n, channels, height, width); got {tuple(x.shape)}")
    attrs, seconds = {}, {}
    for m in methods:
        t0 = time.perf_counter()
        attrs[m] = METHODS[m](model, x, target=target)
        seconds[m] = time.perf_counter() - t0
    first = attrs[methods[0]]
    targets = np.asarray(first.targets) if first.targets is not None else np.zeros(len(x), dtype=int)
    names = [str(c) for c in classes] if classes is not None else None
    evaluation = evaluate_attributions(model, x, attrs, steps=steps, sanity=False, random_state=random_state,
                                       verbose=0).to_dict().get("methods", {})
    checks = {}
    if sanity:
        for m in methods:
            checks[m] = randomisation_check(_bound(METHODS[m], {}), model, x[:SANITY_ROWS], target=target,
                                            random_state=random_state, verbose=0).to_dict()
    out_methods = []
    for m in methods:
        faith = evaluation.get(m, {}).get("faithfulness") or {}
        out_methods.append({
            "name": m, "label": LABELS.get(m, m), "seconds": seconds[m],
            "evaluation": {
                "deletion_auc": faith.get("deletion_auc"), "insertion_auc": faith.get("insertion_auc"),
                "random_deletion_auc": faith.get("random_deletion_auc"),
                "random_insertion_auc": faith.get("random_insertion_auc"),
                "sanity": _sanity(m, attrs[m], checks[m]) if m in checks else None,
            },
        })
    out = np.asarray(first.outputs, dtype=float)
    picks: list[int] = []
    by_class = {int(c): list(np.flatnonzero(targets == c)[np.argsort(-out[targets == c], kind="stable")])
                for c in np.unique(targets)}
    while len(picks) < min(n_show, len(x)) and any(by_class.values()):
        for c in list(by_class):
            if by_class[c] and len(picks) < n_show:
                picks.append(int(by_class[c].pop(0)))
    examples = []
    for i in picks:
        image = x[i].detach().cpu().double().numpy().mean(axis=0)
        maps = {}
        for m in methods:
            v = np.asarray(attrs[m].values[i], dtype=float)
            maps[m] = (v.mean(axis=0) if v.ndim == 3 else v).round(6).tolist()
        c = int(targets[i])
        examples.append({"index": i, "target": names[c] if names else c, "output": _num(out[i]),
                         "image": image.round(6).tolist(), "maps": maps})
    return {"n": int(len(x)), "shape": list(x.shape[1:]), "methods": out_methods, "examples": examples}
