"""The report: one self-contained HTML page and its JSON twin.

:func:`build_payload` gathers every number into a plain dict, :func:`render_html` draws the
page from that dict alone, and :func:`build` writes ``report.html`` and ``report.json``.
:func:`build_image_report` writes the same pair for heat maps of a network on images.
:func:`tree_svg` draws a tree surrogate with graphviz (``None`` where ``dot`` is missing).
:func:`diff_reports` compares two reports (two model versions); :func:`render_diff_text` and
:func:`render_diff_html` write the comparison as Markdown and as a page.
:func:`validate_report` checks a payload against the JSON Schema of ``report.json``
(:func:`report_schema`, shipped as ``report.schema.json``) before pellucid reads or writes one.
"""

from .builder import build, build_image_report, render_again, render_html
from .card import load_card
from .compare import diff_reports
from .diff import render_diff_html, render_diff_text
from .payload import build_payload, recommend
from .tree import tree_svg
from .validation import report_schema, validate_report

__all__ = [
    "build",
    "build_image_report",
    "build_payload",
    "diff_reports",
    "load_card",
    "recommend",
    "render_again",
    "render_diff_html",
    "render_diff_text",
    "render_html",
    "report_schema",
    "tree_svg",
    "validate_report",
]
