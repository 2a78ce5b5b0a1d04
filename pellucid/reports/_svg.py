"""Making SVG safe to inline in the report.

Every SVG the report inlines (matplotlib figures, the graphviz tree) passes through
:func:`clean_svg`: the XML prolog, DOCTYPE, comments and metadata go (comments can echo the
text that was drawn, and an inline document has no use for a prolog), ids get a prefix so
several figures can share one page, and the result is parsed and checked for anything that
could run or fetch (scripts, foreign objects, event handlers, external links) before the
template is allowed to insert it unescaped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

_PROLOG = re.compile(r"<\?xml[^>]*\?>\s*")
_DOCTYPE = re.compile(r"<!DOCTYPE[^>\[]*(\[[^\]]*\])?\s*>\s*", re.IGNORECASE)
_COMMENT = re.compile(r"<!--.*?-->\s*", re.DOTALL)
_METADATA = re.compile(r"<metadata\b.*?</metadata>\s*", re.DOTALL)
_ID = re.compile(r'\bid="([^"]+)"')
_LOCAL_REF = re.compile(r'(href="#|url\(#)([^")]+)')

# Elements that can run code, embed other documents or fetch something when inlined.
_FORBIDDEN_TAGS = {"script", "foreignobject", "iframe", "object", "embed", "handler", "listener", "animate", "set"}


class UnsafeSVGError(RuntimeError):
    """An SVG made by pellucid holds something that must not reach the page (a bug)."""


def clean_svg(svg: str, prefix: str) -> str:
    """Strip an SVG document down to its ``<svg>`` element and check it is inert.

    Parameters
    ----------
    svg : str
        A complete SVG document as written by matplotlib or graphviz.
    prefix : str
        Prepended to every ``id`` (and to the local references to it), so figures inlined in
        one page never collide.

    Returns
    -------
    str
        The ``<svg ...>...</svg>`` element, ready to inline in HTML.

    Raises
    ------
    UnsafeSVGError
        When the SVG holds a script, a foreign object, an event handler or a link to
        anything outside itself.
    """
    svg = _PROLOG.sub("", svg)
    svg = _DOCTYPE.sub("", svg)
    svg = _COMMENT.sub("", svg)
    svg = _METADATA.sub("", svg)
    svg = _ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = _LOCAL_REF.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", svg)
    svg = svg.strip()
    check_svg(svg)
    return svg


def check_svg(svg: str) -> None:
    """Raise :class:`UnsafeSVGError` unless ``svg`` is one inert ``<svg>`` element."""
    try:
        root = ET.fromstring(svg)
    except ET.ParseError as e:  # pragma: no cover - our producers write valid XML
        raise UnsafeSVGError(f"the SVG does not parse as XML: {e}") from None
    if _local(root.tag) != "svg":
        raise UnsafeSVGError(f"expected an <svg> element, got <{_local(root.tag)}>")
    for el in root.iter():
        tag = _local(el.tag).lower()
        if tag in _FORBIDDEN_TAGS:
            raise UnsafeSVGError(f"the SVG holds a <{tag}> element")
        for name, value in el.attrib.items():
            attr = _local(name).lower()
            if attr.startswith("on"):
                raise UnsafeSVGError(f"the SVG holds an event handler attribute {attr!r}")
            if attr in ("href", "src") and not value.startswith("#"):
                raise UnsafeSVGError(f"the SVG links outside itself ({attr}={value[:40]!r})")
            if "url(" in value and "url(#" not in value:
                raise UnsafeSVGError(f"the SVG refers to an external resource in {attr!r}")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""
