"""Attributions for the report: every method on the same rows, its global importance, its
evaluation (completeness, deletion/insertion, the randomised-network check), its agreement with
each listed surrogate, and a few rows shown one by one. The result is plain JSON."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .._device import torch_threads
from .._plain import cell as _cell
from .._validation import number as _num
from .._validation import plain
from ..errors import ParameterError
from ..executor import one_blas_thread
from ..fidelity.intervals import (
    N_BOOT,
    bootstrap_method,
    check_seed,
    percentile_interval,
    poisson_weights,
)
from ..oracle import Oracle
from ._base import summary_row
from .evaluation import evaluate_attributions, randomisation_check
from .importance import global_importance, rank_agreement, surrogate_importances

#: Methods the report runs on a torch network, and their display names.
LABELS = {
    "saliency": "Saliency",
    "gradient_x_input": "Gradient × input",
    "integrated_gradients": "Integrated Gradients",
    "smoothgrad": "SmoothGrad",
    "expected_gradients": "Expected gradients",
    "occlusion": "Occlusion",
    "lrp": "LRP",
    "grad_cam": "Grad-CAM",
    "guided_backprop": "Guided backpropagation",
    "deconvolution": "DeconvNet",
    "guided_grad_cam": "Guided Grad-CAM",
    "shapley": "Shapley values",
}
DEFAULT_TORCH = ("saliency", "gradient_x_input", "integrated_gradients", "smoothgrad", "occlusion", "shapley")
DEFAULT_OTHER = ("occlusion", "shapley")
#: Methods that only query the model, and so run on every kind of model.
QUERY_ONLY = ("occlusion", "shapley")
#: Rows the randomised-network check recomputes attributions on, once per layer.
SANITY_ROWS = 64
#: At most this many of the explained rows get Shapley values, and this many of those the
#: randomised-network check (which recomputes them once per layer). Exact values cost about
#: 25 ms a row for the demo's network with 100 background rows on two cores (more for models
#: the Shapley engine cannot take apart by layers): all 300 explained rows would add 7 s to
#: the demo's minute, 100 rows add 3 s.
SHAPLEY_ROWS = 100
SHAPLEY_SANITY_ROWS = 16
#: Background rows of the report's Shapley values.
SHAPLEY_BACKGROUND = 100
#: Where the report points a reader for what Shapley values are and assume.
SHAPLEY_DOC = "docs/shapley.md"
SHAPLEY_NOTE = ("Interventional Shapley values: a feature left out takes its value from a background row, each "
                "feature set independently of the others, so where features move together the values also "
                "describe rows the data does not hold.")


def default_methods(oracle: Oracle) -> tuple[str, ...]:
    """The methods the report runs: gradient methods, occlusion and Shapley values for a torch
    network; occlusion and Shapley values (they only query) for any other model."""
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
        gradient = [m for m in names if m not in QUERY_ONLY]
        if gradient:
            raise ParameterError(f"{fmt.arg('attributions')} {gradient} need a torch network's gradients; this model is "
                                 f"{oracle.kind}: use {' or '.join(QUERY_ONLY)}")
    elif is_scripted(oracle):
        hooked = [m for m in names if m in NEEDS_HOOKS]
        if hooked:
            able = [m for m in METHODS if m not in NEEDS_HOOKS]
            raise ParameterError(
                f"{fmt.arg('attributions')} {hooked} hook the network's layers, which a TorchScript module does not "
                f"allow; pass the eager module (file.py:ATTR) or choose among {able}")
    return names


@dataclass
class Measured:
    """What :func:`summarise` computes before it pairs the methods with surrogates: the rows
    explained, each method's attributions on them, their evaluation and sanity checks."""

    names: list[str]
    rows: pd.DataFrame
    row_ids: list[str]
    shap_at: np.ndarray
    rows_of: dict[str, pd.DataFrame]
    attrs: dict[str, Any]
    seconds: dict[str, float]
    details: dict[str, Any]
    checks: dict[str, Any]
    background_from: str | None


def measure(
    oracle: Oracle,
    rows: pd.DataFrame,
    *,
    methods: Sequence[str] | None = None,
    baseline: str = "median",
    max_rows: int = 300,
    sanity: bool = True,
    random_state: int | None = 0,
    background: pd.DataFrame | None = None,
    background_from: str | None = None,
    shapley_rows: int = SHAPLEY_ROWS,
) -> Measured:
    """The part of :func:`summarise` that needs no surrogate (its parameters are summarise's):
    the explained rows drawn, every method's attributions, their completeness and deletion
    curves, and the randomised-network checks."""
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
    # Shapley values cost far more per row than the other methods: at most shapley_rows of the
    # rows, drawn with the same generator, and the same background for every row.
    shap_at = np.arange(len(rows))
    if "shapley" in names and len(rows) > shapley_rows:
        shap_at = np.sort(rng.choice(len(rows), shapley_rows, replace=False))
    if "shapley" in names and background is None:
        pick = np.sort(rng.choice(len(rows), min(SHAPLEY_BACKGROUND, len(rows)), replace=False))
        background, background_from = rows.iloc[pick].reset_index(drop=True), "the explained rows"
    rows_of = {m: (rows.iloc[shap_at].reset_index(drop=True) if m == "shapley" else rows) for m in names}

    attrs, seconds = {}, {}
    for m in names:
        t0 = time.perf_counter()
        with _same_sums(m):
            attrs[m] = METHODS[m](oracle, rows_of[m], **_options(m, rows, baseline, random_state, background))
        seconds[m] = time.perf_counter() - t0
    # Deletion and insertion replace features by one reference row, the same for every method
    # whatever rows it was measured on: the summary of all the explained rows.
    reference_row = summary_row(rows, baseline)
    details: dict[str, Any] = {}
    for group in ([m for m in names if m != "shapley"], [m for m in names if m == "shapley"]):
        if group:
            on = rows_of[group[0]]
            ev = evaluate_attributions(oracle, on, {m: attrs[m] for m in group}, baseline=reference_row, sanity=False,
                                       random_state=random_state, verbose=0).to_dict()
            details.update(ev.get("methods", {}))
    checks = {}
    if sanity and oracle.kind == "torch":
        for m in names:
            head = rows_of[m].iloc[:SHAPLEY_SANITY_ROWS if m == "shapley" else SANITY_ROWS]
            method = _bound(METHODS[m], _options(m, head, baseline, random_state, background))
            # A row's Shapley values do not depend on the rows explained with it (its draws are
            # seeded by its place, the background is given): the trained model's are at hand.
            known = attrs[m].head(len(head)) if m == "shapley" else None
            with _same_sums(m):
                checks[m] = randomisation_check(method, oracle, head, random_state=random_state, verbose=0,
                                                original=known).to_dict()
            checks[m]["n_rows"] = int(len(head))

    return Measured(names, rows, row_ids, shap_at, rows_of, attrs, seconds, details, checks, background_from)


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
    background: pd.DataFrame | None = None,
    background_from: str | None = None,
    shapley_rows: int = SHAPLEY_ROWS,
    measured: "Measured | None" = None,
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
    background, background_from : DataFrame and str, optional
        Shapley values' background rows and how the report names where they come from; None
        draws :data:`SHAPLEY_BACKGROUND` of the explained rows with ``random_state``.
    shapley_rows : int
        Shapley values are computed on at most this many of the explained rows (drawn with
        ``random_state``); each method's entry says on how many rows it was measured.
    measured : Measured, optional
        What :func:`measure` gave for the same oracle, rows and options (computed earlier,
        while other work ran); the surrogates are paired with it here. None measures now.

    Returns
    -------
    dict
        ``n``, ``rows``, ``output``, ``baseline``, ``methods`` (per method: ``name``,
        ``label``, ``seconds``, ``importance``, ``signed``, ``per_class``, ``top``,
        ``evaluation``, ``n_rows``), ``pairing`` (see :func:`pair_with_surrogates`), ``intervals``
        (see :func:`pairing_intervals`), ``instances``, ``shapley`` (see
        :func:`shapley_summary`; None without Shapley values); with ``return_attributions``, a
        pair (that dict, the attributions).
    """
    if measured is None:
        measured = measure(oracle, rows, methods=methods, baseline=baseline, max_rows=max_rows, sanity=sanity,
                           random_state=random_state, background=background, background_from=background_from,
                           shapley_rows=shapley_rows)
    names, rows, row_ids, shap_at = measured.names, measured.rows, measured.row_ids, measured.shap_at
    rows_of, attrs, seconds = measured.rows_of, measured.attrs, measured.seconds
    details, checks, background_from = measured.details, measured.checks, measured.background_from
    classification = oracle.task == "classification"
    classes = list(oracle.classes_) if classification else None

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
            "n_rows": int(len(a)),
            "evaluation": {
                "completeness": _completeness(d.get("completeness"), m),
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
        "intervals": pairing_intervals(pairing, len(rows), seed, _rows_by_method(out_methods)),
        "instances_method": show,
        "instances_method_label": LABELS.get(show, show),
        "instances": _instances(attrs[show], rows_of[show], classes, [row_ids[i] for i in shap_at] if show == "shapley"
                                else row_ids),
        "shapley": None if "shapley" not in attrs else shapley_summary(
            attrs["shapley"], rows_of["shapley"], [row_ids[i] for i in shap_at], classes, seed,
            background_from=background_from or "the rows given", of_rows=len(rows)),
    }
    return (out, attrs) if return_attributions else out


def shapley_on_class(attr: Any, classes: list | None) -> dict[str, Any]:
    """Shapley values on one scale for every row: for a two-class classifier explained on the
    probability of each row's own class, the values of the first class's probability
    (``P(b) = 1 - P(a)``: the values change sign, the base value and f(x) become one minus
    themselves, exactly), so that rows of both classes share one axis; otherwise as they are.

    Returns
    -------
    dict
        ``values`` (rows x features), ``base_value``, ``output``, ``delta`` (per row),
        ``target`` (the class, or None: each row's own class or a regression's output),
        ``scale`` and ``axis`` (how the report names the values and their axis).
    """
    values = np.asarray(attr.values, dtype=float)
    base = np.asarray(attr.base_value, dtype=float)
    fx = np.asarray(attr.outputs, dtype=float)
    delta = np.asarray(attr.delta, dtype=float)
    output = (attr.params or {}).get("output")
    scale_word = {"probability": "probability", "log_odds": "log-odds", "raw": "output"}.get(output, str(output))
    if classes is not None and len(classes) == 2 and output == "probability" and attr.targets is not None:
        flip = np.asarray(attr.targets) != 0
        sign = np.where(flip, -1.0, 1.0)
        values, delta = values * sign[:, None], delta * sign
        base, fx = np.where(flip, 1.0 - base, base), np.where(flip, 1.0 - fx, fx)
        target = str(classes[0])
        return {"values": values, "base_value": base, "output": fx, "delta": delta, "target": target,
                "scale": f"probability of {target}", "axis": f"change in P({target})"}
    if classes is not None:
        return {"values": values, "base_value": base, "output": fx, "delta": delta, "target": None,
                "scale": f"{scale_word} of the row's predicted class",
                "axis": f"change in the {scale_word} of the predicted class"}
    return {"values": values, "base_value": base, "output": fx, "delta": delta, "target": None,
            "scale": "network's output", "axis": "change in the output"}


def shapley_basis(attr: Any, on: dict[str, Any], background_from: str, seed: int) -> dict[str, Any]:
    """What every Shapley number in the report rests on: the method, the scale, the background
    and the definition, with the sentence a reader gets and where the documentation is."""
    p = attr.params or {}
    return {
        "method": p.get("shapley_method"),
        "output": p.get("output"),
        "scale": on["scale"],
        "axis": on["axis"],
        "target": on["target"],
        "definition": p.get("definition", "interventional"),
        "background": {"rows": int(p.get("background_rows", 0)), "from": background_from, "seed": int(seed)},
        "note": SHAPLEY_NOTE,
        "doc": SHAPLEY_DOC,
        **({"permutations": p["permutations"]} if "permutations" in p else {}),
        **({"pairs": p["pairs"]} if "pairs" in p else {}),
        # Sampled values carry their own error, beside the bootstrap over rows: its mean, stated.
        "standard_error": _num(float(np.mean(attr.standard_error)))
        if attr.standard_error is not None and np.size(attr.standard_error) and np.any(attr.standard_error) else None,
    }


def shapley_summary(attr: Any, rows: pd.DataFrame, row_ids: Sequence[str], classes: list | None, seed: int, *,
                    background_from: str, of_rows: int | None = None, confidence: float = 0.95) -> dict[str, Any]:
    """The report's global Shapley summary: per raw feature the mean |value| over the explained
    rows with its percentile bootstrap interval (Poisson(1) weights of the explained rows,
    :func:`~pellucid.fidelity.intervals.poisson_weights`, keyed on ``seed``), and every row's
    values (so the summary can be recomputed from report.json), with the colour of each dot
    in the beeswarm: the feature's value as a rank within the explained rows in [0, 1]
    (numeric), the category's position among the categories present (categorical), None
    where the value is missing.

    Returns
    -------
    dict
        ``n``, ``of`` (rows the other methods explained), the basis (:func:`shapley_basis`),
        ``features`` (``feature``, ``kind``, ``mean_abs``, ``mean_abs_ci``, ``mean``; largest
        mean |value| first), ``rows`` (``row``, ``values``, ``base_value``, ``output``,
        ``delta``), ``colour`` (feature -> one entry per row), ``categories`` (categorical
        feature -> its categories in colour order), ``intervals``.
    """
    on = shapley_on_class(attr, classes)
    values = on["values"]
    n = len(values)
    features = [str(f) for f in attr.features]
    mean_abs = np.abs(values).mean(axis=0)
    n_boot = N_BOOT
    reps = None  # (features, n_boot): each feature's mean |value| in each bootstrap replicate
    if n <= 8192:
        w = poisson_weights(seed, 0, n, n_boot).astype(np.float64)
        totals = w.sum(axis=0)
        with one_blas_thread():
            sums = np.abs(values).T @ w
        reps = np.where(totals > 0, sums / np.where(totals > 0, totals, 1.0), np.nan)
    out_features = []
    for j, f in enumerate(features):
        ci = None if reps is None else percentile_interval(reps[j], float(mean_abs[j]), confidence)
        col = rows[f] if f in rows.columns else None
        kind = "categorical" if col is not None and _categorical(col) else "numeric"
        out_features.append({"feature": f, "kind": kind, "mean_abs": _num(mean_abs[j]),
                             "mean_abs_ci": None if ci is None else [_num(v) for v in ci],
                             "mean": _num(values[:, j].mean())})
    order = sorted(range(len(features)), key=lambda j: (-mean_abs[j], j))
    colour, categories = {}, {}
    for f in features:
        if f not in rows.columns:
            continue
        col = rows[f]
        missing = col.isna().to_numpy()
        if _categorical(col):
            cats = sorted({str(v) for v in col[~missing]})
            categories[f] = cats
            pos = {c: (i / (len(cats) - 1) if len(cats) > 1 else 0.5) for i, c in enumerate(cats)}
            colour[f] = [None if m else _num(pos[str(v)]) for v, m in zip(col, missing)]
        else:
            num = pd.to_numeric(col, errors="coerce").astype(float)
            ranks = num.rank(method="average").to_numpy()
            k = int((~np.isnan(ranks)).sum())
            colour[f] = [None if np.isnan(r) else _num((r - 1) / (k - 1) if k > 1 else 0.5) for r in ranks]
    per_row = [{"row": str(row_ids[i]), **_shapley_row(on, features, i)} for i in range(n)]
    return {
        "n": int(n),
        "of": int(of_rows if of_rows is not None else n),
        **shapley_basis(attr, on, background_from, seed),
        "features": [out_features[j] for j in order],
        "rows": per_row,
        "colour": colour,
        "categories": categories,
        "intervals": {"level": confidence,
                      "methods": {"features.mean_abs": bootstrap_method(n_boot, seed, f"{n} explained rows")}},
    }


def shapley_decisions(oracle: Oracle, rows: pd.DataFrame, background: pd.DataFrame, *, background_from: str,
                      random_state: int | None = 0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Shapley values of a few rows shown one by one (the waterfalls of the single decisions),
    with the background and scale of :func:`shapley_summary`.

    Returns
    -------
    (dict, list of dict)
        The basis (:func:`shapley_basis`) and per row ``base_value``, ``output``, ``delta``,
        ``values`` (feature -> value) and ``raw`` (feature -> the row's value as the data has it).
    """
    from . import METHODS

    seed = check_seed(random_state)
    with _same_sums("shapley"):
        attr = METHODS["shapley"](oracle, rows.reset_index(drop=True), baseline=background, random_state=seed)
    classes = list(oracle.classes_) if oracle.task == "classification" else None
    on = shapley_on_class(attr, classes)
    features = [str(f) for f in attr.features]
    out = [{**_shapley_row(on, features, i), "raw": {f: _cell(rows.iloc[i][f]) for f in features if f in rows.columns}}
           for i in range(len(rows))]
    return shapley_basis(attr, on, background_from, seed), out


def _shapley_row(on: dict[str, Any], features: list[str], i: int) -> dict[str, Any]:
    """Row ``i`` of :func:`shapley_on_class`'s values as report.json holds it."""
    return {"values": {f: _num(on["values"][i, j]) for j, f in enumerate(features)},
            "base_value": _num(on["base_value"][i]), "output": _num(on["output"][i]), "delta": _num(on["delta"][i])}


def _same_sums(method: str) -> contextlib.AbstractContextManager:
    """One torch thread while Shapley values are computed. They sum the network's float32
    answers over large batches of hybrid rows, whose matrix products split their sums by
    thread: two thread counts gave values differing in the ninth digit, and the report
    promises the same report.json on any machine. (It costs about half again in time.)"""
    return torch_threads(1) if method == "shapley" else contextlib.nullcontext()


def _categorical(col: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype))


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
    # One set of shuffles for the surrogates of one schema (the same seed draws the same ones).
    importances = surrogate_importances(surrogates, distillation, random_state=random_state)
    for i, sur in enumerate(importances):
        for m, a in attrs.items():
            r = rank_agreement(a, sur, k=k, random_state=random_state)
            pairing.append({"method": m, "method_label": LABELS.get(m, m), "surrogate": labels[i],
                            "surrogate_index": i, "spearman": _num(r.spearman),
                            "spearman_ci": None if r.spearman_ci is None else [_num(v) for v in r.spearman_ci],
                            "top_k": _num(r.top_k_overlap), "k": int(r.k), "reason": r.reason})
    return pairing


def pairing_intervals(pairing: list[dict[str, Any]], n_rows: int, seed: int,
                      rows_by_method: dict[str, int] | None = None, confidence: float = 0.95) -> dict[str, Any]:
    """The ``intervals`` entry of an attribution summary: the ``level`` and, by estimate, the
    ``methods`` of the pairing's ``spearman_ci`` (made by :func:`pair_with_surrogates` with
    ``random_state=seed`` on ``n_rows`` rows, or on ``rows_by_method[method]`` rows for a
    method measured on fewer)."""
    methods = {}
    if any(p.get("spearman_ci") is not None for p in pairing):
        fewer = {LABELS.get(m, m): n for m, n in (rows_by_method or {}).items() if n != n_rows}
        rows = f"the {n_rows} explained rows" + "".join(f"; {label}: {n} of them" for label, n in fewer.items())
        methods["pairing.spearman"] = (
            f"percentile bootstrap, {N_BOOT} resamples of {rows} (the surrogate's permutation "
            f"importance held fixed: it has no per-row values), seed {seed}")
    return {"level": confidence, "methods": methods}


def _rows_by_method(methods: list[dict[str, Any]]) -> dict[str, int]:
    return {m["name"]: int(m["n_rows"]) for m in methods if m.get("n_rows") is not None}


#: What each method's attributions should add up to, in words (the completeness column).
COMPLETENESS_REFERENCE = {
    "shapley": "f(x) − base value",
    "lrp": "f(x)",
}


def _completeness(comp: dict[str, Any] | None, method: str = "") -> dict[str, Any] | None:
    """Adds ``relative``: mean |delta| over mean |f(x) - reference|, which rows whose output
    barely moves from the reference cannot blow up the way a per-row ratio can; and
    ``reference``: what the attributions should add up to (Shapley values: f(x) minus the
    background's mean output, so the error is the additivity error)."""
    if not comp:
        return comp
    gap = comp.get("mean_abs_gap")
    rel = None if not gap else _num(comp.get("mean_abs_delta", 0.0) / gap)
    return {**comp, "relative": rel,
            "reference": COMPLETENESS_REFERENCE.get(method, "f(x) − f(baseline)")}


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
        "n_rows": check.get("n_rows"),
        "steps": steps,
    }


def _options(method: str, rows: pd.DataFrame, baseline: str, random_state: int | None,
             background: pd.DataFrame | None = None) -> dict[str, Any]:
    if method == "shapley":
        return {"baseline": background, "reference": rows, "random_state": random_state}
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


def _short_repr(v: Any) -> Any:
    """A method's setting that is not a plain number or text: a short list of such values (as
    Shapley's players) whole, anything else as its repr, cut at 80 characters with an ellipsis
    that says so."""
    if isinstance(v, (list, tuple)) and len(v) <= _LISTED_PARAM \
            and all(x is None or isinstance(x, (str, bool, int, float)) for x in v):
        return plain(list(v))
    text = repr(v)
    return text if len(text) <= 80 else text[:79] + "…"


#: Longest list of plain values a method's settings keep whole in report.json.
_LISTED_PARAM = 256


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
