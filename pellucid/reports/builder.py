"""Rendering a payload to one self-contained HTML page, and writing the report files.

:func:`render_html` reads nothing but the payload (see :mod:`pellucid.reports.payload`):
the figures and the tree drawing are made from it, so every number on the page is the one in
``report.json``. The Jinja2 environment (:mod:`pellucid.reports._templates`) escapes every
value; the only markup inserted unescaped is the SVG pellucid draws itself, after
:func:`pellucid.reports._svg.clean_svg` has checked it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._files import write_together
from ..errors import DataFileError, ParameterError
from . import figures, limitations

# The page's filters stay importable from here, as before they moved to _templates.
from ._templates import breakable, environment, fmt_ci, fmt_ci_note  # noqa: F401
from .card import FIELDS as CARD_FIELDS
from .compare import load_report
from .payload import (
    HTML_NAME,
    JSON_NAME,
    MAX_RULES_RECOMMENDED,
    PDF_NAME,
    SCHEMA_VERSION,
    content_sha256,
)
from .tree import render_tree
from .validation import validate_report

#: Model-description keys shown first, with the names a reader knows them by.
MODEL_FIELDS = (
    ("kind", "Kind"),
    ("model_class", "Class"),
    ("task", "Task"),
    ("classes", "Classes"),
    ("n_outputs", "Outputs"),
    ("output", "Output"),
    ("n_parameters", "Parameters"),
    ("device", "Device"),
    ("batch_size", "Batch size"),
    ("preprocess", "Preprocessing"),
    ("n_queries", "Rows queried"),
    ("n_calls", "Calls to the model"),
    ("source", "Loaded from"),
    ("sha256", "File SHA-256"),
    ("weights_sha256", "Weights SHA-256"),
    ("versions", "Versions"),
    ("format", "Format"),
)


def render_html(payload: Mapping[str, Any], executor: Any = None) -> str:
    """Render a payload as one self-contained HTML document.

    Parameters
    ----------
    payload : dict
        As returned by :func:`pellucid.reports.build_payload` (or read back from
        ``report.json``).
    executor : pellucid.executor.Executor, optional
        With one that runs work in local worker processes (those the run started for its
        frontier or its refits, idle by then), half the figures are drawn there while this process draws the
        other half: each figure is a function of the payload alone, so the page is the same
        wherever they are drawn. Otherwise all here, one after another.

    Returns
    -------
    str
        The page: styles and figures inline, no request to anything outside it.
    """
    surrogates = list(payload.get("surrogates") or [])
    rec = payload.get("recommended")
    best = surrogates[rec] if rec is not None and 0 <= rec < len(surrogates) else None
    # The rows fidelity was measured on ("holdout", "given", "all"): the one kind every
    # surrogate shares, or None when they differ (or there is no surrogate).
    kinds = {(s.get("fidelity") or {}).get("rows") for s in surrogates}
    rows = next(iter(kinds)) if len(kinds) == 1 else None
    todo: list[tuple[str, tuple, dict]] = []

    def fig(name: str, *args: Any, **kw: Any) -> int:
        """A figure to draw (``figures.<name>(*args, **kw)``): its place among the drawings."""
        todo.append((name, args, kw))
        return len(todo) - 1

    figs: dict[str, Any] = {
        "agreement": fig("agreement_figure", surrogates, rec),
        "per_class": fig("per_class_figure", best) if best else None,
        "rules": fig("rule_figure", best) if best else None,
        "distillation": fig("distillation_figure", payload.get("distillation") or {}, kinds <= {"holdout"}),
        "frontier": None,
    }
    # Each feature's kind, so that a row's values read as the data has them (age 61, not 61.0).
    kinds = {f.get("name"): f.get("kind") for f in ((payload.get("data") or {}).get("schema") or {}).get("features") or []}
    att = payload.get("attributions")
    if att:
        figs["importance"] = fig("importance_figure", att)
        figs["faithfulness"] = fig("faithfulness_figure", att)
        figs["instances"] = [fig("instance_figure", inst, key=f"instance-{i}", kinds=kinds)
                             for i, inst in enumerate(att.get("instances") or [])]
        figs["beeswarm"] = fig("beeswarm_figure", att["shapley"]) if att.get("shapley") else None
    sens = (payload.get("analysis") or {}).get("sensitivity")
    if sens:
        figs["sobol"] = fig("sobol_figure", sens)
    loc = payload.get("local")
    if loc:
        figs["local"] = [
            fig("instance_figure", {"attributions": (r.get("lime") or {}).get("contributions"), "values": r.get("values"),
                                    "target_label": r.get("target_label")}, key=f"local-{i}", kinds=kinds)
            for i, r in enumerate(loc.get("rows") or [])
        ]
        figs["waterfall"] = [
            fig("waterfall_figure", r["shapley"], loc.get("shapley") or {}, key=f"waterfall-{i}", kinds=kinds)
            if r.get("shapley") else None
            for i, r in enumerate(loc.get("rows") or [])
        ]
    front = payload.get("frontier")
    if front:
        figs["frontier"] = fig("frontier_figure", front, front.get("selected"))
    drawn = _draw_all(todo, executor)
    figs = {k: ([None if i is None else drawn[i] for i in v] if isinstance(v, list) else None if v is None else drawn[v])
            for k, v in figs.items()}
    tree, tree_note = (None, None)
    if best is not None:
        tree, tree_note = render_tree(best.get("tree"), best.get("classes"), (best.get("fidelity") or {}).get("rows"))
    template = environment().get_template("report.html.j2")
    return template.render(
        p=payload,
        meta=payload.get("meta") or {},
        model=payload.get("model") or {},
        surrogates=surrogates,
        rec=rec,
        best=best,
        figs=figs,
        tree_svg=tree,
        tree_note=tree_note,
        rows=rows,
        model_fields=MODEL_FIELDS,
        max_rules=payload.get("recommended_max_rules", MAX_RULES_RECOMMENDED),
        card_fields=CARD_FIELDS,
        limitation_checks=limitations.CHECKS,
        limitation_columns=limitations.COLUMNS,
    )


def _draw(name: str, args: tuple, kw: dict) -> str | None:
    """One figure of the page (``pellucid.reports.figures.<name>``), wherever it is drawn."""
    return getattr(figures, name)(*args, **kw)


def _draw_all(todo: list[tuple[str, tuple, dict]], executor: Any) -> list[str | None]:
    """Every figure of ``todo``, in order: with an executor that runs work in local worker
    processes, the second half there (the workers import matplotlib first) while this
    process draws the first half; else all here."""
    if executor is None or not executor.local_processes() or len(todo) < 4:
        return [_draw(*job) for job in todo]
    from ..executor import OnThread

    half = len(todo) // 2
    there = OnThread(lambda: executor.map(_draw, todo[half:]), "pellucid-figures")
    try:
        here = [_draw(*job) for job in todo[:half]]
    finally:
        there.join()  # no thread outlives the report, however the drawing here ended
    return here + there.result()


def build(payload: Mapping[str, Any], out_dir: str | os.PathLike, executor: Any = None) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.json`` for a payload.

    Parameters
    ----------
    payload : dict
        As returned by :func:`pellucid.reports.build_payload`.
    out_dir : path
        Folder to write into; created when missing. Existing reports there are replaced.
    executor : pellucid.executor.Executor, optional
        Where the figures are drawn (see :func:`render_html`).

    Returns
    -------
    (Path, Path)
        The HTML and JSON files.

    Raises
    ------
    ParameterError
        When the payload does not validate against the schema of ``report.json``
        (:func:`pellucid.reports.validate_report`; the message names the JSON path), e.g. it
        holds NaN or infinite numbers (``build_payload`` writes them as ``null``). A payload
        from ``build_payload`` always validates: pellucid writes no report its own readers
        would refuse. Nothing is written, and ``out_dir`` is not created.
    """
    validate_report(payload, "the report payload", error=ParameterError)
    # Both texts first: if the payload does not render, nothing is written.
    text = json.dumps(payload, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    html = render_html(payload, executor)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / JSON_NAME, out / HTML_NAME
    write_together([(json_path, text), (html_path, html)])
    return html_path, json_path


def render_again(
    report: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    card: str | os.PathLike | Mapping[str, Any] | None = None,
    pdf: bool = False,
    chromium: str | os.PathLike | None = None,
) -> list[Path]:
    """Write a report's page again from its ``report.json``: with a model card, elsewhere, or as PDF.

    Parameters
    ----------
    report : path
        A ``report.json`` pellucid wrote, or the folder holding it.
    out_dir : path, optional
        Where ``report.html`` goes (and ``report.pdf``); by default the JSON's own folder.
    card : path or mapping, optional
        A model card (see :func:`pellucid.reports.card.load_card`) that replaces the report's
        own. The JSON is written again beside the page, so the two stay twins.
    pdf : bool
        Also print ``report.pdf`` with headless Chromium (:func:`pellucid.reports.pdf.html_to_pdf`).
    chromium : path, optional
        The Chromium executable to print with.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    DataFileError
        The JSON is missing, not a pellucid report, or does not validate against the schema of
        ``report.json`` (:func:`pellucid.reports.validate_report`: the message names the JSON
        path of the first problem), or the card file is bad. Nothing is written then, and
        ``out_dir`` is not created.
    ReportError
        ``pdf`` was asked for and Chromium is missing or fails.
    """
    from .card import load_card, validate_card

    payload, where = load_report(report, role="report")
    src = Path(where)
    _check_twins(src, payload)
    out = Path(out_dir) if out_dir is not None else src.parent
    payload = dict(payload)
    if card is not None:
        payload["card"] = validate_card(card) if isinstance(card, Mapping) else load_card(card)
    if "limitations" not in payload:  # written before reports listed them (schema 1.2)
        payload["limitations"] = limitations.find_limitations(payload)
    if card is not None:  # the content changed: its hash follows
        payload["content_sha256"] = content_sha256(payload)
        validate_report(payload, f"report file {where!r} with the card {_card_name(card)}")
    # Every text before the folder: a payload that does not render leaves nothing behind.
    html_path = out / HTML_NAME
    files = []
    written = []
    if card is not None or out.resolve() != src.parent.resolve():
        json_path = out / JSON_NAME
        files.append((json_path, json.dumps(payload, indent=2, allow_nan=False, ensure_ascii=False) + "\n"))
        written.append(json_path)
    files.append((html_path, render_html(payload)))
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_together(files)
    except OSError as e:
        raise DataFileError(f"cannot write the report to {str(out)!r}: {e.strerror or e}") from e
    written.insert(0, html_path)
    if pdf:
        from .pdf import html_to_pdf

        written.append(html_to_pdf(html_path, out / PDF_NAME, chromium=chromium))
    return written


def page_run_id(html: str) -> str | None:
    """The run id a report page carries (its ``pellucid-run-id`` meta tag), or None."""
    m = re.search(r'<meta name="pellucid-run-id" content="([0-9a-f]+)">', html)
    return m.group(1) if m else None


def _check_twins(json_path: Path, payload: Mapping[str, Any]) -> None:
    """Refuse a report.json whose report.html beside it is from another run: the pair was
    mixed (a failed write of an older pellucid, a file copied over) and no longer documents
    one run."""
    html_path = json_path.parent / HTML_NAME
    json_id = (payload.get("run") or {}).get("id") if isinstance(payload.get("run"), Mapping) else None
    if json_id is None or not html_path.is_file():
        return
    try:
        html_id = page_run_id(html_path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return
    if html_id is not None and html_id != json_id:
        raise DataFileError(
            f"{str(html_path)!r} and {str(json_path)!r} are from different runs (run ids {html_id} and {json_id}): "
            "the pair does not document one run; regenerate the report, or move the page away to render it again"
        )


def _card_name(card: Any) -> str:
    return "given" if isinstance(card, Mapping) else repr(str(card))


def build_image_report(attributions: Mapping[str, Any], out_dir: str | os.PathLike,
                       meta: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.json`` for image attributions.

    Parameters
    ----------
    attributions : dict
        :func:`pellucid.attribution.summary.summarise_images` of a network on images.
    out_dir : path
        Folder to write into; created when missing.
    meta : dict, optional
        ``title`` and other facts about the run, kept in the JSON.
    """
    from .payload import _generated_by, jsonable, run_block

    payload = jsonable({"schema_version": SCHEMA_VERSION, "kind": "images", "generated_by": _generated_by(),
                        "meta": dict(meta or {}), "attributions": dict(attributions)})
    payload["run"] = run_block(payload)
    payload["content_sha256"] = content_sha256(payload)
    validate_report(payload, "the image report payload", error=ParameterError)
    figs = {"heatmaps": figures.heatmap_figure(payload["attributions"].get("examples") or [],
                                               payload["attributions"].get("methods") or [])}
    html = environment().get_template("images.html.j2").render(p=payload, meta=payload["meta"],
                                                                att=payload["attributions"], figs=figs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / JSON_NAME, out / HTML_NAME
    write_together([(json_path, json.dumps(payload, indent=2, allow_nan=False, ensure_ascii=False) + "\n"), (html_path, html)])
    return html_path, json_path
