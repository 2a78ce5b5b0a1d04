"""Printing a report page to PDF with headless Chromium.

The page is self-contained, so printing it needs nothing but a browser: Chromium is run once,
headless, on a ``file://`` URL, with a fresh profile and everything that would talk to the
network switched off. Chromium is found by :func:`find_chromium`; :func:`html_to_pdf` prints.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from .._files import write_together
from ..errors import ReportError

#: Environment variable naming the Chromium (or Chrome) executable to use.
CHROMIUM_ENV = "PELLUCID_CHROMIUM"

#: Names looked up on PATH, in order, when neither a path nor the variable is given.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

#: Flags for one headless, offline print. ``--headless`` is the new headless mode (the only
#: one Chromium has had since 132); virtual time lets the page's own scripts and layout
#: settle before printing, without waiting for that time on the clock.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--run-all-compositor-stages-before-draw",
    "--virtual-time-budget=5000",
    "--no-pdf-header-footer",
)

_INSTALL_HINT = (
    f"install Debian's chromium package (apt-get install chromium), or pass the browser's path "
    f"(chromium=...) or set {CHROMIUM_ENV}"
)

# Chromium's chatter on a machine without a desktop session: not the reason anything failed.
_NOISE = ("dbus/", "Failed to connect to the bus", "Fontconfig", "unexpected operator", "bytes written to file")


def find_chromium(explicit: str | os.PathLike | None = None) -> str | None:
    """The Chromium executable to print with, or ``None`` when there is none.

    Parameters
    ----------
    explicit : path or str, optional
        A path to the executable, or a name looked up on PATH. When given, it is the only
        candidate: a wrong path is not replaced by another browser.

    Returns
    -------
    str or None
        The absolute path of the executable. Without ``explicit``, the one named by the
        ``PELLUCID_CHROMIUM`` environment variable (again the only candidate when set), else the
        first of ``chromium``, ``chromium-browser``, ``google-chrome``, ``google-chrome-stable``
        found on PATH.
    """
    return _locate(explicit)[0]


def html_to_pdf(html_path: str | os.PathLike, pdf_path: str | os.PathLike, *,
                chromium: str | os.PathLike | None = None, timeout: float = 120) -> Path:
    """Print an HTML report to PDF with headless Chromium.

    Parameters
    ----------
    html_path : path
        The page, e.g. the ``report.html`` that :func:`pellucid.reports.build` wrote.
    pdf_path : path
        Where to write the PDF; its folder is created when missing, an existing file replaced.
    chromium : path or str, optional
        The browser to use (see :func:`find_chromium`).
    timeout : float
        Seconds to wait for Chromium before stopping it.

    Returns
    -------
    Path
        ``pdf_path``.

    Raises
    ------
    ReportError
        When the page does not exist, Chromium is not found, exits with an error (its last
        lines of output are in the message), runs past ``timeout``, or writes no PDF.
    """
    html = Path(html_path)
    if not html.is_file():
        raise ReportError(f"cannot print {str(html)!r} to PDF: no such file")
    exe, where = _locate(chromium)
    if exe is None:
        raise ReportError(f"cannot print {str(html)!r} to PDF: {where}; {_INSTALL_HINT}")
    out = Path(pdf_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pellucid-pdf-") as tmp:
        # Chromium writes into the fresh folder; the PDF is moved into place only when whole,
        # so a failed print never leaves a file that looks like a report.
        tmp_pdf = Path(tmp) / "report.pdf"
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={Path(tmp) / 'profile'}",
               f"--print-to-pdf={tmp_pdf}", html.resolve().as_uri()]
        code, err = _run(cmd, timeout, html)
        if code != 0:
            raise ReportError(f"Chromium ({exe}) failed to print {str(html)!r} to PDF (exit status {code}):\n{_tail(err)}")
        if not tmp_pdf.is_file() or tmp_pdf.stat().st_size == 0:
            raise ReportError(f"Chromium ({exe}) wrote no PDF for {str(html)!r}:\n{_tail(err)}")
        with open(tmp_pdf, "rb") as f:
            if f.read(5) != b"%PDF-":
                raise ReportError(f"Chromium ({exe}) wrote something that is not a PDF for {str(html)!r}:\n{_tail(err)}")
        write_together([(out, tmp_pdf.read_bytes())])  # beside its target, then renamed: never half a PDF
    return out


def _locate(explicit: str | os.PathLike | None) -> tuple[str | None, str]:
    """(executable or None, what was looked for: for the error message)."""
    if explicit is not None and str(explicit) != "":
        return _resolve(explicit), f"the Chromium given ({str(explicit)!r}) is not an executable file"
    env = os.environ.get(CHROMIUM_ENV)
    if env:
        return _resolve(env), f"{CHROMIUM_ENV}={env!r} is not an executable file"
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return os.path.abspath(found), ""
    return None, f"Chromium was not found on PATH (looked for {', '.join(CHROMIUM_NAMES)})"


def _resolve(candidate: str | os.PathLike) -> str | None:
    path = Path(candidate).expanduser()
    if path.is_file() and os.access(path, os.X_OK):
        return str(path.resolve())
    if os.sep not in str(candidate):  # a bare name: look it up on PATH
        found = shutil.which(str(candidate))
        return os.path.abspath(found) if found else None
    return None


def _run(cmd: list[str], timeout: float, html: Path) -> tuple[int, str]:
    # Chromium starts helper processes; its own session, so that a timeout stops all of them.
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, _ = proc.communicate()
        raise ReportError(f"Chromium ({cmd[0]}) did not finish printing {str(html)!r} to PDF within {timeout:g} s; "
                          f"it was stopped:\n{_tail(out.decode('utf-8', 'replace'))}") from None
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    return proc.returncode, out.decode("utf-8", "replace")


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _tail(text: str, n: int = 8) -> str:
    """The last lines of Chromium's output that say something (its D-Bus chatter left out)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    useful = [ln for ln in lines if not any(s in ln for s in _NOISE)]
    return "\n".join((useful or lines)[-n:]) or "(no output)"
