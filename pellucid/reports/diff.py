"""What changed between two reports, written for a person: Markdown and one page.

:func:`render_diff_text` writes the comparison of :func:`pellucid.reports.compare.diff_reports`
as Markdown (``templates/diff.md.j2``), :func:`render_diff_html` as one self-contained page
(``templates/diff.html.j2``), and :func:`write_diff` writes either, or the dict as JSON, to a
file. Both read the dict alone. The comparison itself (and :func:`load_report`) lives in
:mod:`pellucid.reports.compare` and is importable from here as before.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._files import write_together
from ..errors import DataFileError
from ._templates import environment, md_code

# The comparison's names stay importable from here, as before the split.
from .compare import (  # noqa: F401
    DIFF_VERSION,
    KNOWN_MAJORS,
    SIGNIFICANCE_RULE,
    TOP_K,
    compare_rankings,
    diff_reports,
    load_report,
    rule_text,
    score_text,
    summarise,
)


def render_diff_text(d: Mapping[str, Any]) -> str:
    """The diff as Markdown: readable in a terminal and in a pull request.

    Every string that comes from the reports (names, rules, categories) is written as a code
    span, or with Markdown's special characters escaped, so it reads as text and never as markup.

    Parameters
    ----------
    d : dict
        As returned by :func:`diff_reports`.

    Returns
    -------
    str
    """
    # The summary lines again, with the names as code spans this time.
    return environment().get_template("diff.md.j2").render(
        d=d, summary=summarise(d, md_code)["lines"], score_text=score_text, significance_rule=SIGNIFICANCE_RULE,
    )


def render_diff_html(d: Mapping[str, Any]) -> str:
    """The diff as one self-contained HTML page (styles inline, nothing fetched).

    Parameters
    ----------
    d : dict
        As returned by :func:`diff_reports`.

    Returns
    -------
    str
    """
    return environment().get_template("diff.html.j2").render(d=d, score_text=score_text, significance_rule=SIGNIFICANCE_RULE)


def write_diff(d: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write a diff to ``path``: ``.md`` Markdown, ``.html`` the page, ``.json`` the dict.

    Raises
    ------
    DataFileError
        For another extension, or a file that cannot be written.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".md", ".markdown", ".txt"):
        text = render_diff_text(d)
    elif suffix in (".html", ".htm"):
        text = render_diff_html(d)
    elif suffix == ".json":
        text = json.dumps(d, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    else:
        raise DataFileError(f"output file {str(p)!r}: unknown format {suffix or '(no extension)'!r}; use .md, .html or .json")
    try:
        if p.parent and not p.parent.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
        write_together([(p, text)])
    except OSError as e:
        raise DataFileError(f"cannot write {str(p)!r}: {type(e).__name__}: {e}") from e
    return p



__all__ = ["compare_rankings", "diff_reports", "load_report", "render_diff_html", "render_diff_text", "rule_text", "write_diff"]
