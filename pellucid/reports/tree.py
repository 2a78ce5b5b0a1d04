"""Drawing a tree surrogate with graphviz, from the payload's ``tree`` entry.

Internal nodes show the condition that sends rows to the left ("yes") child, in the text the
rule data model wrote (the one source of rule text); leaves show the rule number, outcome,
probability and coverage (of the rows the fidelity was measured on). The system ``dot``
program draws it; where ``dot`` is not installed :func:`tree_svg` returns ``None`` and the
report shows the rules only.
"""

from __future__ import annotations

import logging
import textwrap
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import graphviz

from ..errors import PellucidWarning
from ._svg import clean_svg
from .payload import measured_on

logger = logging.getLogger(__name__)

#: Why a tree could not be drawn, for the page.
DOT_MISSING = "graphviz `dot` was not found; the tree is shown as rules only"
DOT_FAILED = "graphviz `dot` failed to draw the tree; the tree is shown as rules only"

_WRAP = 38  # characters per label line: keeps a 16-leaf tree readable at page width


def tree_svg(
    tree_payload: Mapping[str, Any] | None, classes: Sequence[Any] | None = None, rows: str | None = "holdout"
) -> str | None:
    """Draw a tree surrogate as an inline SVG.

    Parameters
    ----------
    tree_payload : dict
        A surrogate's ``tree`` entry in the payload: ``{"nodes": [...]}``.
    classes : sequence, optional
        Class labels, used for a node's outcome when the node does not name it.
    rows : str, optional
        The surrogate's ``fidelity["rows"]`` (``"holdout"``, ``"given"``, ``"all"``): which
        rows the leaves' coverage was measured on, named in each leaf.

    Returns
    -------
    str or None
        The ``<svg>`` element (no XML prolog, DOCTYPE or comments), or ``None`` when there is
        no tree or the ``dot`` program is not installed.
    """
    svg, _ = render_tree(tree_payload, classes, rows)
    return svg


def render_tree(
    tree_payload: Mapping[str, Any] | None, classes: Sequence[Any] | None = None, rows: str | None = "holdout"
) -> tuple[str | None, str | None]:
    """Like :func:`tree_svg`, and say why there is no drawing.

    Returns
    -------
    (str or None, str or None)
        The SVG and ``None``, or ``None`` and the reason (:data:`DOT_MISSING`,
        :data:`DOT_FAILED`, or ``None`` when there is simply no tree to draw).
    """
    if not tree_payload or not tree_payload.get("nodes"):
        return None, None
    source = tree_dot(tree_payload, classes, rows)
    try:
        raw = graphviz.Source(source).pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound:
        logger.info("graphviz dot not found; the tree is reported as rules only")
        return None, DOT_MISSING
    except graphviz.CalledProcessError as e:
        # A report without a drawing beats no report; the rules still say everything.
        warnings.warn(f"graphviz dot could not draw the tree: {e}", PellucidWarning, stacklevel=2)
        return None, DOT_FAILED
    return clean_svg(raw, "tree"), None


def tree_dot(
    tree_payload: Mapping[str, Any], classes: Sequence[Any] | None = None, rows: str | None = "holdout"
) -> str:
    """The DOT source of a tree payload.

    Every label is a quoted DOT string with ``\\``, ``"`` and ``&`` escaped, so text from the
    data is never read as DOT syntax, as an escape sequence (``\\N``, ``\\l``), as a
    character entity (``&amp;``, ``&#60;``) or as an HTML-like label (those are written
    ``<...>`` without quotes).

    Parameters
    ----------
    tree_payload : dict
        ``{"nodes": [...]}`` as in the payload.
    classes : sequence, optional
        Class labels for nodes that do not carry their ``outcome``.
    rows : str, optional
        Which rows the leaves' coverage was measured on (``fidelity["rows"]``).

    Returns
    -------
    str
    """
    nodes = list(tree_payload["nodes"])
    lines = [
        "digraph tree {",
        '  graph [rankdir=TB, nodesep=0.25, ranksep=0.35, fontname="Helvetica,Arial,sans-serif"];',
        '  node [shape=box, style="rounded,filled", fillcolor="#f4f6f8", color="#8a96a3", '
        'fontname="Helvetica,Arial,sans-serif", fontsize=10, margin="0.12,0.06"];',
        '  edge [color="#6b7785", fontname="Helvetica,Arial,sans-serif", fontsize=9, arrowsize=0.6];',
    ]
    for n in nodes:
        nid = f"n{int(n['id'])}"
        if n.get("condition") is not None:
            label = _wrap(str(n["condition"].get("text", "")))
            lines.append(f"  {nid} [label={quote(label)}];")
        else:
            label = _leaf_label(n, classes, rows)
            lines.append(f'  {nid} [label={quote(label)}, fillcolor="#e6eef5", color="#1f5f8b"];')
    for n in nodes:
        nid = f"n{int(n['id'])}"
        if n.get("left") is not None:
            lines.append(f'  {nid} -> n{int(n["left"])} [label="yes"];')
        if n.get("right") is not None:
            lines.append(f'  {nid} -> n{int(n["right"])} [label="no"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def quote(text: str) -> str:
    """A DOT double-quoted string that displays ``text`` literally.

    Backslashes are doubled (DOT reads ``\\n``, ``\\l``, ``\\N``... in labels as escapes),
    quotes escaped, ``&`` written ``&amp;`` (dot decodes character entities in labels, so
    ``R&amp;D`` would be drawn ``R&D``), and control characters turned into spaces. Each
    newline in ``text`` (the label's own line breaks) is written as DOT's ``\\n``.
    """
    lines = str(text).split("\n")
    return '"' + "\\n".join(_escape_line(line) for line in lines) + '"'


def _escape_line(line: str) -> str:
    line = "".join(" " if ord(ch) < 32 or ord(ch) == 127 else ch for ch in line)
    return line.replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")


def _wrap(text: str) -> str:
    # Line breaks only at spaces; "\n" here is pellucid's own break, written \n by quote().
    return "\n".join(textwrap.wrap(text, _WRAP, break_long_words=False, break_on_hyphens=False)) or text


def _leaf_label(node: Mapping[str, Any], classes: Sequence[Any] | None, rows: str | None = "holdout") -> str:
    value = node.get("value")
    outcome = node.get("outcome")
    parts = []
    if node.get("rule_index") is not None:
        parts.append(f"Rule {int(node['rule_index']) + 1}")
    if isinstance(value, list):
        if outcome is None and classes is not None and value:
            outcome = classes[max(range(len(value)), key=value.__getitem__)]
        parts.append(f"→ {' '.join(str(outcome).split())}")
        if value:
            parts.append(f"p = {max(value):.2f}")
    else:
        parts.append(f"→ {_number(outcome if outcome is not None else value)}")
    cov = node.get("coverage")
    if cov is not None:
        parts.append(f"covers {100 * cov:.1f}% of {measured_on(rows)}")
    elif node.get("support") is not None:
        parts.append(f"train {100 * node['support']:.1f}%")
    return "\n".join(_wrap(p) for p in parts)


def _number(v: Any) -> str:
    try:
        return f"{float(v):.4g}"
    except (TypeError, ValueError):
        return str(v)
