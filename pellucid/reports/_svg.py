"""Making SVG safe to inline in the report.

Every SVG the report inlines (matplotlib figures, the graphviz tree) passes through
:func:`clean_svg`. The document is parsed, not edited as text: the parser drops the XML
prolog, DOCTYPE, comments (they can echo the text that was drawn) and processing
instructions; ``<metadata>`` and ``<style>`` elements are removed (a stylesheet inlined in a
page applies to the whole page, and can fetch); ids get a prefix, and so do the local
references to them (``href="#..."``, ``url(#...)``) in attributes, so several figures can
share one page and drawn text is never touched. The result is written back and checked by
:func:`check_svg` for anything that could run, style the page or fetch (scripts, foreign
objects, event handlers, stylesheets, external links) before the template is allowed to
insert it unescaped.
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
# Attribute namespaces written back, with the prefixes an HTML parser recognises in inline SVG.
_ATTR_PREFIX = {XLINK_NS: "xlink", "http://www.w3.org/XML/1998/namespace": "xml"}

_LOCAL_URL = re.compile(r"url\(\s*#([^)\s]+)\s*\)")
_URL = re.compile(r"url\(\s*['\"]?\s*([^)'\"\s]*)", re.IGNORECASE)

# Elements that can run code, embed other documents, style the page or fetch something.
_FORBIDDEN_TAGS = {
    "script", "style", "foreignobject", "iframe", "object", "embed", "handler", "listener", "animate", "set",
}
# Elements removed before inlining: no use in a page, and no place for text from the data.
_DROPPED_TAGS = {"metadata", "style"}
# Elements whose character data is drawn as text (never read as CSS or markup).
_TEXT_TAGS = {"text", "tspan", "textpath", "title", "desc"}


class UnsafeSVGError(RuntimeError):
    """An SVG made by pellucid holds something that must not reach the page (a bug)."""


def clean_svg(svg: str, prefix: str, *, root_attrs: Mapping[str, str] | None = None) -> str:
    """Strip an SVG document down to its ``<svg>`` element and check it is inert.

    Parameters
    ----------
    svg : str
        A complete SVG document as written by matplotlib or graphviz.
    prefix : str
        Prepended to every ``id`` (and to the local references to it), so figures inlined in
        one page never collide.
    root_attrs : dict, optional
        Presentation attributes set on the ``<svg>`` element, for styling the dropped
        ``<style>`` element gave (they inherit to every element, and stay inside the figure).

    Returns
    -------
    str
        The ``<svg ...>...</svg>`` element, ready to inline in HTML.

    Raises
    ------
    UnsafeSVGError
        When the SVG does not parse, or holds a script, a foreign object, an event handler or
        a link to anything outside itself.
    """
    root = _parse(svg)
    for parent in list(root.iter()):
        for child in list(parent):
            if _local(child.tag).lower() in _DROPPED_TAGS:
                parent.remove(child)
    ids = {el.get("id") for el in root.iter() if el.get("id")}

    def ref(m: re.Match) -> str:
        return f"url(#{prefix}-{m.group(1)})" if m.group(1) in ids else m.group(0)

    for el in root.iter():
        for name, value in list(el.attrib.items()):
            attr = _local(name)
            if attr == "id":
                el.set(name, f"{prefix}-{value}")
            elif attr == "href" and value.startswith("#") and value[1:] in ids:
                el.set(name, f"#{prefix}-{value[1:]}")
            elif "url(#" in value:
                el.set(name, _LOCAL_URL.sub(ref, value))
    for name, value in (root_attrs or {}).items():
        root.set(name, value)
    out = _serialize(root)
    check_svg(out)
    return out


def check_svg(svg: str) -> None:
    """Raise :class:`UnsafeSVGError` unless ``svg`` is one inert ``<svg>`` element.

    Refused: scripts, stylesheets (``<style>``), foreign objects and other embedding or
    animating elements, event handler attributes, links (``href``, ``src``) and ``url(...)``
    references to anything but a ``#`` fragment, ``@import``, and CSS escapes in ``style``
    attributes (they could spell any of these).
    """
    root = _parse(svg)
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
            if attr == "style" and "\\" in value:
                raise UnsafeSVGError("the SVG holds a CSS escape in a style attribute")
            _check_css(value, f"attribute {attr!r}")
        if tag not in _TEXT_TAGS:
            _check_css(el.text or "", f"the text of <{tag}>")


def _check_css(value: str, where: str) -> None:
    if "(" not in value and "@" not in value:
        return  # neither a url(...) nor an @import: most values, path data and numbers
    if "@import" in value.lower():
        raise UnsafeSVGError(f"the SVG holds an @import in {where}")
    for target in _URL.findall(value):
        if not target.startswith("#"):
            raise UnsafeSVGError(f"the SVG refers to an external resource in {where}")


def _serialize(root: ET.Element) -> str:
    """The element as SVG text: SVG elements unprefixed, ``xlink:`` attributes, escaped text.

    Written here rather than by ``ET.tostring``, which would invent ``ns0:`` prefixes (an
    HTML parser reads ``ns0:href`` as nothing) unless a prefix is registered process-wide.
    """
    parts: list[str] = []

    def write(el: ET.Element, top: bool) -> None:
        ns, tag = _split(el.tag)
        if ns not in ("", SVG_NS):
            raise UnsafeSVGError(f"the SVG holds an element from another namespace: {el.tag!r}")
        attrs = [f' xmlns="{SVG_NS}" xmlns:xlink="{XLINK_NS}"'] if top else []
        for name, value in el.attrib.items():
            ans, local = _split(name)
            if ans and ans not in _ATTR_PREFIX:
                raise UnsafeSVGError(f"the SVG holds an attribute from another namespace: {name!r}")
            qname = f"{_ATTR_PREFIX[ans]}:{local}" if ans else local
            attrs.append(f' {qname}="{_escape_attr(value)}"')
        parts.append(f"<{tag}{''.join(attrs)}")
        if el.text or len(el):
            parts.append(">" + _escape_text(el.text or ""))
            for child in el:
                write(child, False)
                parts.append(_escape_text(child.tail or ""))
            parts.append(f"</{tag}>")
        else:
            parts.append("/>")

    write(root, True)
    return "".join(parts).strip()


def _escape_text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_attr(s: str) -> str:
    s = _escape_text(s).replace('"', "&quot;")
    return s.replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;")


@functools.lru_cache(maxsize=512)
def _split(name: str) -> tuple[str, str]:
    if name.startswith("{"):
        ns, local = name[1:].split("}", 1)
        return ns, local
    return "", name


def _parse(svg: str) -> ET.Element:
    # The parser drops the prolog, DOCTYPE, comments and processing instructions; the
    # DOCTYPE's external DTD is never fetched.
    try:
        return ET.fromstring(svg)
    except ET.ParseError as e:
        raise UnsafeSVGError(f"the SVG does not parse as XML: {e}") from None


@functools.lru_cache(maxsize=512)
def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""
