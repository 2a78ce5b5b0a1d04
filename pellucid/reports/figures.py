"""Small inline-SVG figures for the report, drawn with matplotlib from the payload.

Each function takes a part of the payload (never the live objects, so the figures show the
numbers in ``report.json``) and returns an ``<svg>`` element ready to inline, or ``None``
when there is nothing to draw. Text is drawn as glyph outlines (matplotlib's default
``svg.fonttype = 'path'``), so no string from the data reaches the SVG as markup; the
comments in which matplotlib echoes that text are removed and the result is checked by
:func:`pellucid.reports._svg.clean_svg`, which also drops matplotlib's ``<style>`` element
(its ``*`` rule would style the whole page); the two properties it set are given as
attributes of the figure's ``<svg>`` instead. Axis labels name the rows the fidelity was
measured on (the surrogate's ``fidelity["rows"]``). Figures are made with :class:`matplotlib.figure.Figure`
directly, never through pyplot: no backend is switched and no global figure state is touched,
so building a report inside a notebook leaves its plots alone.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import matplotlib.colors
import matplotlib.lines
import matplotlib.ticker
import matplotlib.transforms
import numpy as np
from matplotlib.backends.backend_svg import RendererSVG
from matplotlib.figure import Figure

from .. import _validation as fmt
from ._svg import clean_svg
from .payload import listed, measured_on

FIGSIZE = (6.0, 3.0)
# A sober palette: one accent for what the reader should look at, greys for the rest.
ACCENT = "#1f5f8b"
MUTED = "#9aa5b1"
SECOND = "#c7792b"
_CLASS_COLOURS = ("#1f5f8b", "#c7792b", "#3c8d5a", "#8b3a62", "#6b6b6b", "#b8a53b", "#4c7fa8", "#a0522d")

_RC = {
    "svg.fonttype": "path",  # text as outlines: nothing from the data is written as markup
    "svg.hashsalt": "pellucid",  # stable clip-path ids: same input, same report
    "font.size": 8.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#555555",
    "axes.labelcolor": "#222222",
    "xtick.color": "#333333",
    "ytick.color": "#333333",
    "axes.titlesize": 9.5,
    "axes.titleweight": "bold",
    "legend.frameon": False,
    # No layout engine on a new figure, whatever the user's matplotlibrc says: _to_svg lays
    # each figure out once, itself.
    "figure.autolayout": False,
    "figure.constrained_layout.use": False,
}
# What matplotlib's own <style> (``*{stroke-linejoin: round; stroke-linecap: butt}``) said,
# as inherited presentation attributes on the figure's <svg>: same drawing, nothing page-wide.
_SVG_ROOT_ATTRS = {"stroke-linejoin": "round", "stroke-linecap": "butt"}


def agreement_figure(surrogates: Sequence[Mapping[str, Any]], recommended: int | None = None) -> str | None:
    """Agreement of each surrogate with its Wilson interval (R² for regression).

    Parameters
    ----------
    surrogates : list of dict
        The payload's ``surrogates``.
    recommended : int, optional
        Index drawn in the accent colour.

    Returns
    -------
    str or None
        An inline ``<svg>``; ``None`` when there is no surrogate.
    """
    if not surrogates:
        return None
    regression = (surrogates[0].get("fidelity") or {}).get("task") == "regression"
    kinds = {(s.get("fidelity") or {}).get("rows") for s in surrogates}
    on = measured_on(kinds.pop()) if len(kinds) == 1 else "the rows each was measured on"
    labels, values, lows, highs = [], [], [], []
    for s in surrogates:
        fid = s.get("fidelity") or {}
        v = fid.get("r2") if regression else fid.get("agreement")
        ci = None if regression else fid.get("agreement_ci")
        n = s["complexity"].get("n_rules")
        labels.append(_short(f"{s.get('label', s.get('name'))}: {'?' if n is None else n} rule{'' if n == 1 else 's'}", 52))
        values.append(float("nan") if v is None else v)
        # Reports written before 1.4 can hold an interval end a rounding error inside the estimate.
        lows.append(0.0 if ci is None or v is None else max(0.0, v - ci[0]))
        highs.append(0.0 if ci is None or v is None else max(0.0, ci[1] - v))
    colours = [ACCENT if i == recommended else MUTED for i in range(len(surrogates))]
    height = max(FIGSIZE[1] * 0.6, 0.9 + 0.32 * len(surrogates))
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(FIGSIZE[0], height))
        ax = fig.subplots()
        y = list(range(len(surrogates)))[::-1]
        for yi, v, lo, hi, c in zip(y, values, lows, highs, colours):
            ax.errorbar(v, yi, xerr=[[lo], [hi]], fmt="o", color=c, ecolor=c, elinewidth=1.6, capsize=3, markersize=5)
        ax.set_yticks(y, [_text(t) for t in labels])
        ax.set_ylim(-0.7, len(surrogates) - 0.3)
        # The names leave the axis narrow; matplotlib's own count (sized for three-character
        # labels) put eight "92.0%"-wide labels on it, one against the next.
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=5))
        if regression:
            ax.set_xlabel(f"R² on {on}")
        else:
            ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
            ax.set_xlabel(f"agreement on {on} (95% interval)")
        ax.grid(axis="x", color="#e3e6ea", linewidth=0.8)
        ax.set_axisbelow(True)
        return _to_svg(fig, "fig-agreement")


def per_class_figure(surrogate: Mapping[str, Any]) -> str | None:
    """Per-class agreement and precision of one surrogate (classification).

    Agreement: of the rows the network puts in a class, the share the surrogate
    puts there too; precision: of the rows the surrogate puts in a class, the share the
    network agrees with.

    Parameters
    ----------
    surrogate : dict
        One entry of the payload's ``surrogates``.

    Returns
    -------
    str or None
        ``None`` for regression or when no class is measured.
    """
    per_class = (surrogate.get("fidelity") or {}).get("per_class") or []
    if not per_class:
        return None
    names = [_short(str(c["class"]), 24) for c in per_class]
    agree = [_nan(c.get("agreement")) for c in per_class]
    prec = [_nan(c.get("precision")) for c in per_class]
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=FIGSIZE)
        ax = fig.subplots()
        x = range(len(per_class))
        w = 0.38
        ax.bar([i - w / 2 for i in x], agree, w, color=ACCENT, label="agreement (network's class)")
        ax.bar([i + w / 2 for i in x], prec, w, color=SECOND, label="precision (surrogate's class)")
        ax.set_xticks(list(x), [_text(n) for n in names], rotation=0 if len(names) <= 5 else 30, ha="center" if len(names) <= 5 else "right")
        ax.set_ylim(0, 1.05)
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        ax.set_ylabel(measured_on((surrogate.get("fidelity") or {}).get("rows")))
        _legend_above(ax)
        ax.grid(axis="y", color="#e3e6ea", linewidth=0.8)
        ax.set_axisbelow(True)
        return _to_svg(fig, "fig-per-class")


def _label_groups(points: Sequence[tuple[float, float]], regression: bool) -> list[tuple[tuple[float, float], list[str]]]:
    """The rules' labels (R1, R2, ...) with the point each is written at. A rule whose point lies
    within about a label's width and height of an earlier labelled point shares that label
    ("R2, R4"), so that no label prints over another. Points not measured (NaN) get none."""
    known = [(x, y) for x, y in points if x == x and y == y]
    if not known:
        return []
    x_span = max(max(x for x, _ in known), 1e-12)  # the x axis starts at 0
    ys = [y for _, y in known]
    y_span = ((max(ys) - min(ys)) or 1.0) if regression else 1.05 - min(0.0, min(ys))
    groups: list[tuple[tuple[float, float], list[str]]] = []
    for i, (x, y) in enumerate(points):
        if x != x or y != y:
            continue
        near = next((names for (gx, gy), names in groups
                     if abs(x - gx) <= 0.05 * x_span and abs(y - gy) <= 0.04 * y_span), None)
        if near is not None:
            near.append(f"R{i + 1}")
        else:
            groups.append(((x, y), [f"R{i + 1}"]))
    return groups


def rule_figure(surrogate: Mapping[str, Any]) -> str | None:
    """Coverage against precision of each rule (against mean absolute error for regression),
    rules numbered as in the rules table and coloured by outcome.

    The y axis depends on the task alone; the number of outcomes only decides whether a
    legend is drawn (not when there are more outcomes than colours).

    Parameters
    ----------
    surrogate : dict
        One entry of the payload's ``surrogates``.

    Returns
    -------
    str or None
        ``None`` when the surrogate has no rules, or none has the measure drawn.
    """
    rules = surrogate.get("rules") or []
    if not rules:
        return None
    fid = surrogate.get("fidelity") or {}
    regression = fid.get("task") == "regression"
    key = "mae" if regression else "precision"
    if all(r.get(key) is None for r in rules):
        return None  # nothing measured to draw (the terms of an additive regression have no MAE)
    on = measured_on(fid.get("rows"))
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=FIGSIZE)
        ax = fig.subplots()
        outcomes: list[str] = []
        for r in rules:
            o = str(r.get("outcome"))
            if o not in outcomes:
                outcomes.append(o)
        points = [(_nan(r.get("coverage")), _nan(r.get(key))) for r in rules]
        for (cov, val), r in zip(points, rules, strict=True):
            colour = ACCENT if regression else _CLASS_COLOURS[outcomes.index(str(r.get("outcome"))) % len(_CLASS_COLOURS)]
            ax.scatter([cov], [val], s=28, color=colour, zorder=3)
        for (cov, val), names in _label_groups(points, regression):
            ax.annotate(", ".join(names), (cov, val), xytext=(4, 3), textcoords="offset points", fontsize=7,
                        color="#333333")
        if regression:
            ax.set_ylabel(f"mean absolute error on {on}")
        else:
            ax.set_ylim(min(0.0, ax.get_ylim()[0]), 1.05)
            ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
            ax.set_ylabel(f"precision on {on}")
            # More outcomes than colours: colours repeat, so a legend would mislead.
            if len(outcomes) <= len(_CLASS_COLOURS):
                handles = [
                    matplotlib.lines.Line2D([], [], marker="o", linestyle="", color=_CLASS_COLOURS[k], label=_text(_short(o, 24)))
                    for k, o in enumerate(outcomes)
                ]
                ax.legend(handles=handles, title="outcome", fontsize=7.5, title_fontsize=7.5, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.set_xlim(left=0)
        ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        ax.set_xlabel(f"coverage: share of {on} the rule applies to")
        ax.grid(color="#e3e6ea", linewidth=0.8)
        ax.set_axisbelow(True)
        return _to_svg(fig, "fig-rules")


def distillation_figure(distillation: Mapping[str, Any], fidelity_on_holdout: bool = True) -> str | None:
    """Rows per distillation strategy, split into training and holdout.

    Parameters
    ----------
    distillation : dict
        The payload's ``distillation`` (``DistillationSet.summary()``).
    fidelity_on_holdout : bool
        Whether the surrogates' fidelity was measured on the holdout (every
        ``fidelity["rows"]`` is ``"holdout"``); the legend says so only then.

    Returns
    -------
    str or None
        ``None`` when the summary has no strategy counts.
    """
    by = distillation.get("by_strategy") or {}
    if not by:
        return None
    names = list(by)
    train = [int(by[n].get("train", 0)) for n in names]
    hold = [int(by[n].get("holdout", 0)) for n in names]
    height = max(FIGSIZE[1] * 0.6, 0.9 + 0.32 * len(names))
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(FIGSIZE[0], height))
        ax = fig.subplots()
        y = list(range(len(names)))[::-1]
        ax.barh(y, train, color=ACCENT, label="training")
        ax.barh(y, hold, left=train, color=SECOND, label="holdout (fidelity measured here)" if fidelity_on_holdout else "holdout")
        ax.set_yticks(y, [_text(_short(n, 24)) for n in names])
        ax.set_xlabel("rows")
        ax.xaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:,.0f}"))
        _legend_above(ax)
        ax.grid(axis="x", color="#e3e6ea", linewidth=0.8)
        ax.set_axisbelow(True)
        return _to_svg(fig, "fig-distillation")


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")


def frontier_figure(frontier: Mapping[str, Any], recommended: int | None = None) -> str | None:
    """Fidelity against size of every surrogate the frontier fitted.

    x is the number of rules on a log2 axis with ticks at the size budgets; y is agreement
    (R² for regression) on the rows fidelity was measured on. Each candidate is one colour
    and marker with a line through its budgets; the Pareto entries are ringed and joined by
    a step line; the selected entry is labelled. Entries that failed (or have no score) are
    left out of the drawing; the report's table lists them.

    Parameters
    ----------
    frontier : dict
        The payload's ``frontier`` (``Frontier.to_dict()`` plus ``surrogate_index``).
    recommended : int, optional
        Index into ``frontier["entries"]`` of the entry to label (the selected one).

    Returns
    -------
    str or None
        ``None`` when no entry has a score.
    """
    entries = list(frontier.get("entries") or [])
    ok = [(k, e) for k, e in enumerate(entries) if e.get("error") is None and e.get("score") is not None and e.get("n_rules") is not None]
    if not ok:
        return None
    regression = frontier.get("task") == "regression"
    kinds = {(e.get("fidelity") or {}).get("rows") for _, e in ok}
    on = measured_on(kinds.pop()) if len(kinds) == 1 else "the rows each was measured on"

    def x_of(e: Mapping[str, Any]) -> float:
        # A log axis has no 0: a model without rules (an intercept alone) sits at 1.
        return float(max(int(e["n_rules"]), 1))

    def line_of(e: Mapping[str, Any]) -> str:
        # One line per candidate and training view; the observed-rows view is named.
        training = e.get("training") or "distilled"
        return str(e["candidate"]) + ("" if training == "distilled" else f" ({training} rows)")

    candidates: list[str] = []
    for _, e in ok:
        if line_of(e) not in candidates:
            candidates.append(line_of(e))
    with matplotlib.rc_context(_RC):
        # The plot on the left, the legend beside it in one column with every name whole:
        # nothing is drawn over the curves.
        fig = Figure(figsize=(FIGSIZE[0] * 1.45, FIGSIZE[1] * 1.35))
        ax = fig.subplots()
        for c_i, name in enumerate(candidates):
            mine = [e for _, e in ok if line_of(e) == name]
            mine.sort(key=lambda e: (e.get("size") is None, e.get("size") or 0, x_of(e)))
            colour = _CLASS_COLOURS[c_i % len(_CLASS_COLOURS)]
            ax.plot(
                [x_of(e) for e in mine], [float(e["score"]) for e in mine],
                marker=_MARKERS[c_i % len(_MARKERS)], color=colour, linewidth=1.2, markersize=5,
                linestyle=":" if name.endswith(" rows)") else "-",
                label=_text(name), zorder=3,
            )
        pareto = sorted((e for _, e in ok if e.get("pareto")), key=lambda e: (x_of(e), float(e["score"])))
        if pareto:
            ax.step([x_of(e) for e in pareto], [float(e["score"]) for e in pareto], where="post",
                    color="#222222", linewidth=0.9, linestyle="--", zorder=2, label="Pareto front")
            ax.scatter([x_of(e) for e in pareto], [float(e["score"]) for e in pareto], s=110,
                       facecolors="none", edgecolors="#222222", linewidths=1.1, zorder=4)
        xs = [x_of(e) for _, e in ok]
        if recommended is not None and 0 <= recommended < len(entries):
            sel = entries[recommended]
            if sel.get("error") is None and sel.get("score") is not None and sel.get("n_rules") is not None:
                xy = (x_of(sel), float(sel["score"]))
                # Named in the legend, not written beside the point, where it would cover curves.
                training = "" if (sel.get("training") or "distilled") == "distilled" else f", {sel['training']} rows"
                ax.scatter([xy[0]], [xy[1]], s=170, facecolors="none", edgecolors=ACCENT, linewidths=2.2, zorder=5,
                           label=_text(f"selected: {sel['candidate']}, {sel['n_rules']} rules{training}"))
        ax.set_xscale("log", base=2)
        budgets = sorted({int(s) for s in (frontier.get("sizes") or []) if s is not None and int(s) >= 1})
        ticks = budgets or sorted({2 ** k for k in range(int(np.floor(np.log2(min(xs)))), int(np.ceil(np.log2(max(xs)))) + 1)})
        lo, hi = min(xs + ticks), max(xs + ticks)
        ax.set_xlim(lo / 1.3, hi * 1.3)
        ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FixedFormatter([str(t) for t in ticks]))
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("rules (log scale; ticks at the size budgets)" if budgets else "rules (log scale)")
        if regression:
            ax.set_ylabel(f"R² on {on}")
        else:
            ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=1))
            ax.set_ylabel(f"agreement on {on}")
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), ncol=1, fontsize=7.5, borderaxespad=0.0,
                  frameon=False)
        ax.grid(color="#e3e6ea", linewidth=0.8)
        ax.set_axisbelow(True)
        return _to_svg(fig, "fig-frontier")


def importance_figure(attributions: Mapping[str, Any], top: int = 12) -> str | None:
    """Global importance of each raw feature under each attribution method.

    Each method's mean absolute attributions are scaled to sum to one, so methods with
    different units (probability, logit, occlusion differences) share one axis; features are
    sorted by their mean share over the methods, the ``top`` largest shown.

    Parameters
    ----------
    attributions : dict
        The payload's ``attributions``.
    """
    methods = [m for m in attributions.get("methods") or [] if m.get("importance")]
    if not methods:
        return None
    features = list(methods[0]["importance"])
    shares = []
    for m in methods:
        v = np.array([_nan(m["importance"].get(f)) for f in features], dtype=float)
        total = np.nansum(v)
        shares.append(v / total if total > 0 else np.zeros_like(v))
    shares = np.array(shares)
    order = np.argsort(-np.nanmean(shares, axis=0), kind="stable")[:top]
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(FIGSIZE[0], max(2.2, 0.32 * len(order) * max(1, len(methods)) ** 0.5 + 0.8)))
        ax = fig.subplots()
        h = 0.8 / len(methods)
        y = np.arange(len(order))
        for i, m in enumerate(methods):
            ax.barh(y - 0.4 + h * (i + 0.5), shares[i, order], h, color=_CLASS_COLOURS[i % len(_CLASS_COLOURS)],
                    label=_text(_short(str(m.get("label") or m["name"]), 28)))
        _feature_shares_axis(ax, [features[j] for j in order], "share of the method's total |attribution|",
                             min(3, len(methods)))
        return _to_svg(fig, "fig-importance")


def sobol_figure(sensitivity: Mapping[str, Any], top: int = 12) -> str | None:
    """First-order and total Sobol' indices by feature, with their bootstrap intervals.

    Parameters
    ----------
    sensitivity : dict
        The payload's ``analysis.sensitivity``.
    """
    sob = (sensitivity or {}).get("sobol") or {}
    features = list(sob.get("features") or [])
    if not features:
        return None
    first = np.array([_nan((sob.get("first") or {}).get(f)) for f in features])
    total = np.array([_nan((sob.get("total") or {}).get(f)) for f in features])
    if not np.isfinite(total).any():
        return None
    order = np.argsort(-np.nan_to_num(total, nan=-1.0), kind="stable")[:top]

    def err(key: str, values: np.ndarray) -> np.ndarray:
        ci = sob.get(key) or {}
        low = np.array([_nan((ci.get(features[j]) or {}).get("low")) for j in order])
        high = np.array([_nan((ci.get(features[j]) or {}).get("high")) for j in order])
        v = values[order]
        return np.nan_to_num(np.vstack([np.clip(v - low, 0, None), np.clip(high - v, 0, None)]))

    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(FIGSIZE[0], max(2.2, 0.34 * len(order) + 0.9)))
        ax = fig.subplots()
        y = np.arange(len(order))
        ax.barh(y - 0.2, np.nan_to_num(total[order]), 0.4, xerr=err("total_ci", total), color=ACCENT,
                error_kw={"elinewidth": 0.8, "ecolor": "#333333"}, label="total (alone and in interactions)")
        ax.barh(y + 0.2, np.nan_to_num(first[order]), 0.4, xerr=err("first_ci", first), color=MUTED,
                error_kw={"elinewidth": 0.8, "ecolor": "#333333"}, label="first order (alone)")
        _feature_shares_axis(ax, [features[j] for j in order], "share of the output's variance over the schema's ranges", 2)
        return _to_svg(fig, "fig-sobol")


def faithfulness_figure(attributions: Mapping[str, Any]) -> str | None:
    """Deletion and insertion curves of each method beside a random order.

    Deletion replaces the features a method ranks highest first by the baseline: the faster
    the attributed output falls, the more faithful the ranking. Insertion starts from the
    baseline and puts them back: the faster it rises, the better.
    """
    methods = [m for m in attributions.get("methods") or [] if (m.get("evaluation") or {}).get("curves")]
    if not methods:
        return None
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(FIGSIZE[0], FIGSIZE[1] * 0.95))
        axes = fig.subplots(1, 2, sharey=True)
        for ax, kind, title in ((axes[0], "deletion", "Deletion (lower is better)"),
                                (axes[1], "insertion", "Insertion (higher is better)")):
            for i, m in enumerate(methods):
                c = m["evaluation"]["curves"]
                ax.plot(c["fraction"], [_nan(v) for v in c[kind]], color=_CLASS_COLOURS[i % len(_CLASS_COLOURS)],
                        linewidth=1.3, label=_text(str(m.get("label") or m["name"])))
            ref = methods[0]["evaluation"]["curves"]
            if ref.get(f"random_{kind}") is not None:
                ax.plot(ref["fraction"], [_nan(v) for v in ref[f"random_{kind}"]], color=MUTED, linewidth=1.1,
                        linestyle="--", label="random order")
            ax.set_title(title)
            ax.set_xlabel("share of features changed")
            ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
            ax.grid(color="#e3e6ea", linewidth=0.8)
            ax.set_axisbelow(True)
        axes[0].set_ylabel("attributed output (mean over rows)")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.tight_layout()
        # Beside the plots, in one column: above them it covered their titles.
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), ncol=1, fontsize=7.5, frameon=False)
        return _to_svg(fig, "fig-faithfulness")


def instance_figure(instance: Mapping[str, Any], top: int = 10, key: str = "0",
                    kinds: Mapping[str, str] | None = None) -> str | None:
    """One row's attributions, largest magnitude first, positive (towards the attributed
    output) in the accent colour and negative in the second; each bar is labelled with the
    feature's value in the row, as the data has it (``kinds``: feature -> kind, so that an
    integer reads ``61``, not ``61.0``)."""
    attr = instance.get("attributions") or {}
    if not attr:
        return None
    items = sorted(attr.items(), key=lambda kv: -abs(_nan(kv[1]) if kv[1] is not None else 0.0))[:top]
    values = instance.get("values") or {}
    kinds = kinds or {}
    labels = [_text(_short(f"{k} = {fmt.value(values.get(k), kinds.get(k)) if k in values else ''}", 40)) for k, _ in items]
    vals = [0.0 if v is None else float(v) for _, v in items]
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(FIGSIZE[0] * 0.9, max(1.6, 0.26 * len(items) + 0.7)))
        ax = fig.subplots()
        y = np.arange(len(items))
        ax.barh(y, vals, 0.7, color=[ACCENT if v >= 0 else SECOND for v in vals])
        ax.set_yticks(list(y), labels)
        ax.invert_yaxis()
        ax.axvline(0, color="#555555", linewidth=0.8)
        ax.set_xlabel(_text(_short(f"attribution to {instance.get('target_label', 'the output')}", 60)))
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))  # small values print long: fewer ticks
        ax.grid(axis="x", color="#e3e6ea", linewidth=0.8)
        ax.set_axisbelow(True)
        return _to_svg(fig, f"fig-{key}")


#: Beeswarm dots from low to high feature values; missing values stay grey (MUTED), apart from both ends.
_LOW_HIGH = matplotlib.colors.LinearSegmentedColormap.from_list("pellucid_low_high", ["#1f5f8b", "#8b3a62", "#e0702a"])


def beeswarm_figure(shapley: Mapping[str, Any], top: int = 12) -> str | None:
    """The global Shapley summary: one line per raw feature (the ``top`` largest mean |value|,
    the rest summed per row into one "N other features" line), each explained row a dot at its
    value, coloured by the feature's value from low to high (its rank among the explained rows;
    categories in their listed order, marked as unordered), grey where the value is missing;
    the x axis in the output's units, with a zero line.

    Parameters
    ----------
    shapley : dict
        The payload's ``attributions.shapley``.
    """
    lines = beeswarm_lines(shapley, top)
    if not lines:
        return None
    rest = lines[-1][3]  # the features beyond the top, summed into the last, grey line
    finite = np.concatenate([ln[1][np.isfinite(ln[1])] for ln in lines]) if lines else np.array([])
    span = float(np.ptp(finite)) if finite.size else 1.0
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(FIGSIZE[0], 0.36 * len(lines) + 1.3))
        ax = fig.subplots()
        for y, (_, v, c, grey) in enumerate(lines):
            ok = np.isfinite(v)
            off = _swarm(v[ok], span, 0.36)
            cols = [MUTED if grey or cc is None else matplotlib.colors.to_hex(_LOW_HIGH(float(cc)))
                    for cc, k in zip(c, ok) if k]
            ax.scatter(v[ok], y + off, s=7, c=cols, linewidths=0, zorder=3)
        ax.axvline(0, color="#555555", linewidth=0.8, zorder=2)
        ax.set_yticks(list(range(len(lines))), [ln[0] for ln in lines])
        ax.set_ylim(len(lines) - 0.5, -0.5)
        ax.set_xlabel(_text(_short(str(shapley.get("axis") or "Shapley value"), 60)))
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(7))
        ax.grid(axis="x", color="#e3e6ea", linewidth=0.8)
        ax.set_axisbelow(True)
        # The colour key above the dots: low to high, and grey for a missing value.
        handles = [matplotlib.lines.Line2D([], [], marker="o", linestyle="", markersize=4, markeredgewidth=0,
                                           color=matplotlib.colors.to_hex(_LOW_HIGH(x))) for x in (0.0, 0.5, 1.0)]
        handles.append(matplotlib.lines.Line2D([], [], marker="o", linestyle="", markersize=4, markeredgewidth=0,
                                               color=MUTED))
        labels = ["low value", "middle", "high value", "missing" + (" / other features" if rest else "")]
        ax.legend(handles, labels, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=4, fontsize=7.5,
                  borderaxespad=0.2, handletextpad=0.2, columnspacing=1.2)
        return _to_svg(fig, "fig-beeswarm")


def beeswarm_lines(shapley: Mapping[str, Any], top: int = 12) -> list[tuple[str, np.ndarray, list, bool]]:
    """The lines of :func:`beeswarm_figure`, top to bottom: ``(label, per-row values, per-row
    colour positions (None: missing), grey)``; the features beyond ``top`` summed per row into
    one grey "N other features" line. Categorical features' labels end in " *"."""
    feats = [f["feature"] for f in shapley.get("features") or []]
    rows = shapley.get("rows") or []
    if not feats or not rows:
        return []
    k = listed(len(feats), top)
    shown, rest = feats[:k], feats[k:]
    colour = shapley.get("colour") or {}
    categorical = set(shapley.get("categories") or {})
    lines = []
    for f in shown:
        v = np.array([_nan(r["values"].get(f)) for r in rows], dtype=float)
        label = _short(f, 26) + (" *" if f in categorical else "")
        c = colour.get(f)
        c = list(c) if isinstance(c, list) and len(c) == len(rows) else [None] * len(rows)
        lines.append((_text(label), v, c, False))
    if rest:
        v = np.array([sum(_nan(r["values"].get(f)) for f in rest) for r in rows], dtype=float)
        lines.append((f"{len(rest)} other features", v, [None] * len(rows), True))
    return lines


def waterfall_bars(row: Mapping[str, Any], top: int = 8) -> list[tuple[str, float, bool]]:
    """The bars of :func:`waterfall_figure`, top to bottom: ``(feature, contribution, named)``,
    largest |value| first (ties in the features' order); beyond ``top`` features the rest are
    summed into one bar ``("other N features", sum, False)``. The bars add up to
    ``output - base_value`` (within the row's additivity error ``delta``)."""
    values = row.get("values") or {}
    order = list(values)
    items = sorted(values.items(), key=lambda kv: (-abs(_nan(kv[1])), order.index(kv[0])))
    k = listed(len(items), top)
    bars = [(f, _nan(v), True) for f, v in items[:k]]
    rest = items[k:]
    if rest:
        bars.append((f"other {len(rest)} features", float(sum(_nan(v) for _, v in rest)), False))
    return bars


def _swarm(v: np.ndarray, span: float, half: float) -> np.ndarray:
    """Vertical offsets that spread dots of near-equal value apart: values in bins of 1/80 of
    the axis are stacked alternately above and below the line, at most ``half`` away."""
    if v.size == 0:
        return v
    width = (span or 1.0) / 80
    bins = np.floor((v - v.min()) / width).astype(int)
    off = np.zeros(v.size)
    counts = np.bincount(bins)
    step = min(0.05, half / max(1, (counts.max() + 1) // 2))
    seen: dict[int, int] = {}
    for i in np.argsort(v, kind="stable"):
        k = seen.get(int(bins[i]), 0)
        seen[int(bins[i])] = k + 1
        off[i] = ((k + 1) // 2) * step * (1 if k % 2 else -1)
    return off


def waterfall_figure(row: Mapping[str, Any], basis: Mapping[str, Any], key: str = "0",
                     kinds: Mapping[str, str] | None = None, top: int = 8) -> str | None:
    """One row's Shapley values as a waterfall: from the base value (the background's mean
    output) through each raw feature's contribution, largest |value| first (``top`` bars, the
    rest summed into "other N features"), to f(x). Each bar is labelled ``feature = value``
    with the row's value as the data has it (``kinds``: feature -> kind) and its contribution.

    Parameters
    ----------
    row : dict
        A single decision's ``shapley`` entry: ``base_value``, ``output``, ``values``, ``raw``.
    basis : dict
        The payload's ``local.shapley`` (for the axis label).
    """
    items = waterfall_bars(row, top)
    if not items or row.get("base_value") is None or row.get("output") is None:
        return None
    if not np.all(np.isfinite([row["base_value"], row["output"], *(v for _, v, _ in items)])):
        return None  # a value missing from report.json: nothing to draw the steps from
    kinds = kinds or {}
    raw = row.get("raw") or {}
    base, fx = float(row["base_value"]), float(row["output"])
    labels = [_text(_short(f"{f} = {fmt.value(raw.get(f), kinds.get(f))}", 38) if named else f)
              for f, _, named in items]
    vals = [v for _, v, _ in items]
    starts = base + np.concatenate([[0.0], np.cumsum(vals)[:-1]])
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(FIGSIZE[0], 0.27 * (len(items) + 2) + 0.8))
        ax = fig.subplots()
        n = len(items)
        y = np.arange(1, n + 1)
        ax.barh(y, vals, 0.65, left=starts, color=[ACCENT if v >= 0 else SECOND for v in vals], zorder=3)
        # Thin connectors from each bar's end to the next bar's start.
        ends = starts + np.asarray(vals)
        for i in range(n - 1):
            ax.plot([ends[i], ends[i]], [y[i] + 0.33, y[i + 1] - 0.33], color="#888888", linewidth=0.6, zorder=2)
        ax.axvline(base, color="#555555", linewidth=0.8, linestyle=(0, (3, 2)), zorder=2)
        ax.axvline(fx, color="#222222", linewidth=0.9, zorder=2)
        lo, hi = min(base, fx, *ends, *starts), max(base, fx, *ends, *starts)
        pad = (hi - lo or 1.0) * 0.18
        probability = basis.get("output") == "probability"
        # A probability's axis stops at 0 and 1 (the bars' labels may stand beyond it).
        ax.set_xlim(max(lo - pad, 0.0) if probability else lo - pad, min(hi + pad, 1.0) if probability else hi + pad)
        for yi, s0, v in zip(y, starts, vals):
            end = s0 + v
            # Probabilities to three decimals, as the page writes them; other scales to two digits.
            text = (("+" if v >= 0 else "−") + fmt.fixed(abs(v), 3)) if probability else fmt.signed(v, 2)
            ax.text(max(s0, end) + pad * 0.05, yi, text, va="center", ha="left", fontsize=7.5,
                    color="#333333", zorder=5, bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6})
        ticks = [f"base value = {fmt.fixed(base)}", *labels, f"f(x) = {fmt.fixed(fx)}"]
        ax.set_yticks([0, *y, n + 1], ticks)
        ax.scatter([base, fx], [0, n + 1], s=14, color=["#555555", "#222222"], zorder=4, clip_on=False)
        ax.set_ylim(n + 1.6, -0.6)
        # The axis is the output itself (each bar a change of it): "P(good)", not "change in P(good)".
        axis = str(basis.get("axis") or "output").removeprefix("change in ")
        ax.set_xlabel(_text(_short(axis, 60)))
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(6))
        ax.grid(axis="x", color="#e3e6ea", linewidth=0.8)
        ax.set_axisbelow(True)
        return _to_svg(fig, f"fig-{key}")


def heatmap_figure(examples: Sequence[Mapping[str, Any]], methods: Sequence[Mapping[str, Any]]) -> str | None:
    """A grid of images (rows) and each method's heat map of them (columns), drawn as vector
    cells (no embedded bitmap). Signed maps use a diverging scale centred on zero; maps that
    are magnitudes a sequential one. Each map is scaled to its own largest magnitude."""
    if not examples or not methods:
        return None
    n_rows, n_cols = len(examples), len(methods) + 1
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(1.25 * n_cols + 0.3, 1.3 * n_rows + 0.4))
        axes = np.atleast_2d(fig.subplots(n_rows, n_cols, squeeze=False))
        for r, ex in enumerate(examples):
            panels = [("image", np.asarray(ex["image"], dtype=float), "gray_r", None)]
            for m in methods:
                v = np.asarray(ex["maps"][m["name"]], dtype=float)
                peak = float(np.nanmax(np.abs(v))) or 1.0
                signed = bool(np.nanmin(v) < 0)
                panels.append((m["name"], v, "RdBu_r" if signed else "magma_r", (-peak, peak) if signed else (0, peak)))
            for c, (_, v, cmap, lim) in enumerate(panels):
                ax = axes[r, c]
                kw = {} if lim is None else {"vmin": lim[0], "vmax": lim[1]}
                ax.pcolormesh(v[::-1], cmap=cmap, edgecolors="none", **kw)
                ax.set_aspect("equal")
                ax.set_xticks([])
                ax.set_yticks([])
                for side in ("top", "right", "bottom", "left"):
                    ax.spines[side].set_visible(False)
                if r == 0:
                    ax.set_title("input" if c == 0 else _text(_short(str(methods[c - 1].get("label")), 18)),
                                 fontsize=8)
            axes[r, 0].set_ylabel(_text(_short(f"#{ex['index']}: {ex['target']}", 18)), fontsize=7.5)
        return _to_svg(fig, "fig-heatmaps")


# ---------------------------------------------------------------------------- helpers
def _feature_shares_axis(ax: Any, features: Sequence[str], xlabel: str, ncol: int) -> None:
    """Horizontal bars of shares by feature, largest on top: ticks, percent axis, grid, legend."""
    ax.set_yticks(list(range(len(features))), [_text(_short(f, 28)) for f in features])
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", color="#e3e6ea", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=ncol, fontsize=7.5, borderaxespad=0.2)


def _to_svg(fig: Figure, prefix: str) -> str:
    fig.tight_layout()
    # The layout is done: with no layout engine left on the figure and the box to save given,
    # savefig draws the figure once. (``bbox_inches="tight"`` first draws it a second time,
    # with nothing written, to measure the box that _tight_box measures without drawing.)
    fig.set_layout_engine(None)
    buf = io.StringIO()
    # No date in the file: the same payload draws the same figure.
    fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches=_tight_box(fig).padded(0.05))
    return clean_svg(buf.getvalue(), prefix, root_attrs=_SVG_ROOT_ATTRS)


def _tight_box(fig: Figure) -> matplotlib.transforms.Bbox:
    """The box, in inches, around everything drawn on ``fig``, as the SVG writer measures it:
    at the 72 dots per inch it draws at, text measured as the outlines it writes."""
    dpi = fig.dpi
    fig.dpi = 72
    try:
        width, height = fig.get_size_inches()
        return fig.get_tightbbox(RendererSVG(width * 72, height * 72, io.StringIO()))
    finally:
        fig.dpi = dpi


def _legend_above(ax: Any) -> None:
    # Above the axes, so the legend never hides a bar.
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, fontsize=7.5, borderaxespad=0.2)


def _text(s: str) -> str:
    """Text matplotlib draws literally: an unescaped ``$`` would start mathtext."""
    return s.replace("$", r"\$")


def _short(s: str, n: int) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 1] + "…"


def _nan(v: Any) -> float:
    return float("nan") if v is None else float(v)
