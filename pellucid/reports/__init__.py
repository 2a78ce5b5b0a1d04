"""The report: one self-contained HTML page and its JSON twin.

:func:`build_payload` gathers every number into a plain dict, :func:`render_html` draws the
page from that dict alone, and :func:`build` writes ``report.html`` and ``report.json``.
:func:`build_image_report` writes the same pair for heat maps of a network on images.
:func:`tree_svg` draws a tree surrogate with graphviz (``None`` where ``dot`` is missing).
"""

from .builder import build, build_image_report, render_html
from .payload import build_payload, recommend
from .tree import tree_svg

__all__ = ["build", "build_image_report", "build_payload", "recommend", "render_html", "tree_svg"]
