"""The one Jinja2 environment every page and text of a report is rendered by.

:func:`environment` loads the templates beside this module (``templates/``) and carries every
filter they use: the report page's (one formatter for every number, :mod:`pellucid._validation`)
and the diff's (:mod:`pellucid.reports.compare`'s own figures, and the Markdown escapes). HTML
templates escape every value (data, model names); a Markdown template (``*.md.j2``) writes
text, and its filters make each string from a report a code span or escape its markup instead.
The builder and the diff's renderers both use it, so neither imports the other.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from .. import _validation as fmt
from .compare import pct_text, points_text
from .payload import listed, measured_on

#: Folder of the templates (and of the CSS and JavaScript the pages include).
TEMPLATES = Path(__file__).parent / "templates"


def _autoescape(name: str | None) -> bool:
    # Every template is HTML but the Markdown ones; a template from a string is escaped too.
    return name is None or not name.endswith(".md.j2")


class _CompiledTemplates(jinja2.FileSystemBytecodeCache):
    """Jinja2's cache of compiled templates on disk, where reading or writing it may fail
    without failing the page: a template it cannot give is compiled in memory, one it cannot
    keep is compiled again next time."""

    def load_bytecode(self, bucket: Any) -> None:
        try:
            super().load_bytecode(bucket)
        except OSError:
            pass

    def dump_bytecode(self, bucket: Any) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """The compiled templates kept on disk (Jinja2's folder of the user's own in the
    temporary directory, which Jinja2 checks is theirs alone), so that a run does not compile
    the report's large template again: about 0.3 s of every run. A compiled template is found
    by its source's checksum, never stale. None where that folder cannot be made safely."""
    try:
        return _CompiledTemplates()
    except (OSError, RuntimeError):
        return None


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The environment on pellucid's templates: escapes every value in a page, refuses
    undefined names, and knows every filter the templates use."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        bytecode_cache=_bytecode_cache(),
        autoescape=_autoescape,  # every value from data or models is escaped in a page
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # A page is rendered once per template compiled: folding constants at compile time
        # costs a third of the page's compile time (the report's template is large) and saves
        # nothing in the one rendering; the page is the same either way.
        optimized=False,
    )
    # One formatter for every number (pellucid._validation): the page, the console and the
    # rule texts write the same value the same way.
    env.filters.update(
        pct=fmt.pct,
        interval=fmt.interval,
        fixed=fmt.fixed,
        sig=fmt.sig,
        exact=fmt.exact,
        count=fmt.count,
        value=fmt.value,
        seconds=fmt.seconds,
        duration=fmt.duration,
        signed=fmt.signed,
        points=fmt.points,
        measured_on=measured_on,
        listed=listed,
        breakable=breakable,
        ci=fmt_ci,
        ci_note=fmt_ci_note,
    )
    # The diff's figures, as its summary lines write them (pellucid.reports.compare).
    env.filters.update(
        diff_pct=pct_text,
        diff_pts=points_text,
        diff_val=diff_value,
        short_hash=short_hash,
        md_code=md_code,
        md_cell=md_cell,
        md_text=md_text,
    )
    return env


# ---------------------------------------------------------------------------- the report page
def breakable(text: Any) -> Markup:
    """``text`` escaped, with a line-break opportunity after each underscore: a long name such
    as ``exhaustive_rule_list_4_observed`` wraps at its parts in a narrow column and on paper,
    never inside a word."""
    return Markup(str(escape(str(text))).replace("_", "_<wbr>"))


def fmt_ci(ci: Any, as_pct: bool = True, decimals: int | None = None, digits: int | None = None) -> str:
    """An estimate's interval, short, for a table cell: ``[0.905, 0.955]`` -> ``90.5%–95.5%``
    (shares), or ``0.905 to 0.955`` with ``as_pct=False``; an em dash when there is none.
    ``digits``: significant digits, for an estimate written with as many (``sig``), so that
    its bounds claim no more precision than it does. Written by the shared formatter
    (:func:`pellucid._validation.interval`)."""
    if decimals is None:
        decimals = 1 if as_pct else 3
    return fmt.interval(ci, as_pct=as_pct, decimals=decimals, digits=digits)


def fmt_ci_note(ci: Any, level: Any = 0.95, method: str = "", as_pct: bool = True, decimals: int | None = None,
                digits: int | None = None) -> str:
    """An estimate's interval as the words that follow it: ``(95% interval 0.897 to 0.925,
    bootstrap)``; nothing when the estimate has no interval (it is undefined)."""
    text = fmt_ci(ci, as_pct, decimals, digits)
    if text == fmt.DASH:
        return ""
    level = fmt.pct(0.95 if level is None else level, 0)
    return f"({level} interval {text}{', ' + method if method else ''})"


# ---------------------------------------------------------------------------- the diff
def diff_value(v: Any) -> str:
    """A value read from a report: a float written exactly, None as an em dash."""
    if v is None:
        return "—"
    if isinstance(v, float):
        return fmt.exact(v)
    return str(v)


def short_hash(h: Any) -> str | None:
    """The first 12 characters of a SHA-256, or None."""
    return None if not h else str(h)[:12]


def md_code(v: Any) -> str:
    """A data string as a Markdown code span: shown literally, never as markup or a link."""
    s = " ".join(("—" if v is None else str(v)).split())  # one line
    ticks = "`"
    while ticks in s:  # a fence longer than any run of backticks inside (CommonMark)
        ticks += "`"
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{ticks}{pad}{s}{pad}{ticks}"


def md_cell(v: Any) -> str:
    """A code span fit for a table cell (a ``|`` would end the cell)."""
    return md_code(v).replace("|", "\\|")


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|&#!"})


def md_text(v: Any) -> str:
    """Free text from a report (a title) with Markdown's and HTML's special characters escaped."""
    return " ".join(("—" if v is None else str(v)).split()).translate(_MD_SPECIAL)
