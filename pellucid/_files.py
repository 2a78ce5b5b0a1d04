"""Writing files so that a reader never finds a part of one, checking paths before work, and
reading the text files a user names (one error naming the file).

Every file pellucid writes (report pages and their JSON, PDFs, diffs, streamed distillation
sets, exported reasons) is written to a temporary file beside its target, flushed to disk and
only then renamed over it: a full disk, an unwritable file or an interrupt leaves the old file
as it was, never a truncated one under the final name. Files written together (a page and
its JSON) are replaced together or not at all.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Sequence, Union

from .errors import DataFileError

Content = Union[str, bytes]


def _temporary(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _flush(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def write_together(files: Sequence[tuple[Path, Content]]) -> None:
    """Write each ``(path, content)`` so that either every file is replaced or none is.

    Each content goes to a temporary file in its target's folder and is flushed to disk.
    Then the old files are moved aside, the new ones renamed into place, and the old ones
    removed; if any step fails, the old files are put back and the temporary ones removed,
    and the error (an ``OSError``) is raised.
    """
    temps: list[tuple[Path, Path]] = []
    aside: list[tuple[Path, Path]] = []  # (backup, target) of files replaced so far
    placed: list[Path] = []
    try:
        for path, content in files:
            path = Path(path)
            if path.is_dir():
                raise IsADirectoryError(21, "Is a directory", str(path))
            tmp = _temporary(path)
            temps.append((tmp, path))
            if isinstance(content, bytes):
                tmp.write_bytes(content)
            else:
                with open(tmp, "w", encoding="utf-8", newline="") as f:
                    f.write(content)
            _flush(tmp)
        for tmp, path in temps:
            if path.exists():
                backup = _temporary(path)
                os.replace(path, backup)
                aside.append((backup, path))
            os.replace(tmp, path)
            placed.append(path)
    except BaseException:
        for path in placed:  # the new ones out, the old ones back
            with contextlib.suppress(OSError):
                path.unlink()
        for backup, path in aside:
            with contextlib.suppress(OSError):
                os.replace(backup, path)
        for tmp, _ in temps:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
    for backup, _ in aside:
        with contextlib.suppress(OSError):
            backup.unlink()


class PendingFile:
    """A file being written under a temporary name beside ``path``: :meth:`commit` flushes it
    to disk and renames it to ``path``; :meth:`discard` removes it. Until then ``path`` is
    the old file (or none)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.tmp = _temporary(self.path)

    def commit(self) -> Path:
        _flush(self.tmp)
        os.replace(self.tmp, self.path)
        return self.path

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.tmp.unlink()


@contextlib.contextmanager
def written_at(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed to ``path`` when the block ends
    without an exception (after flushing it to disk), removed when it raises or is
    interrupted, so that ``path`` is either the old file or the whole new one."""
    pending = PendingFile(path)
    try:
        yield pending.tmp
        pending.commit()
    finally:
        pending.discard()


def check_folder(folder: str | os.PathLike, what: str) -> Callable[[], None]:
    """Check before any work that files can be written in ``folder`` (made when missing),
    raising :class:`DataFileError` naming ``what`` (the flag or parameter) otherwise.

    Returns a function that removes the folder again if this check made it and it is still
    empty: for a run that stops before writing anything.
    """
    p = Path(folder)
    if p.exists() and not p.is_dir():
        raise DataFileError(f"{what} {str(p)!r} is a file, not a folder")
    made = []
    try:
        missing = []
        q = p
        while not q.exists():
            missing.append(q)
            q = q.parent
        p.mkdir(parents=True, exist_ok=True)
        made = list(reversed(missing))
        fd, probe = tempfile.mkstemp(prefix=".pellucid-check.", dir=p)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        for q in reversed(made):
            with contextlib.suppress(OSError):
                q.rmdir()
        raise DataFileError(f"{what} {str(p)!r} cannot be written: {e.strerror or e}") from None

    def undo() -> None:
        for q in reversed(made):
            with contextlib.suppress(OSError):
                q.rmdir()  # only an empty folder goes

    return undo


def check_new_file(path: str | os.PathLike, what: str, *, overwrite: bool = False,
                   inputs: Sequence[str | os.PathLike] = (), flag: str = "--overwrite") -> Path:
    """Check before any work that ``path`` may be written: never one of ``inputs``, not an
    existing file unless ``overwrite``, and in a folder that can be written."""
    p = Path(path)
    for source in inputs:
        if source is not None and Path(source).exists() and p.exists() and os.path.samefile(p, source):
            raise DataFileError(f"{what} {str(p)!r} is an input of this run; it would be overwritten")
    if p.is_dir():
        raise DataFileError(f"{what} {str(p)!r} is a folder, not a file")
    if p.exists() and not overwrite:
        raise DataFileError(f"{what} {str(p)!r} exists; pass {flag} to replace it")
    check_folder(p.parent if str(p.parent) else ".", f"the folder of {what}")
    return p


def read_text(path: str | os.PathLike, where: str) -> tuple[str, bytes]:
    """The UTF-8 text of a file the user named, and its bytes.

    Parameters
    ----------
    path : path
        The file.
    where : str
        How messages name it: ``"card file '/x/card.toml'"``.

    Raises
    ------
    DataFileError
        The file is missing, not a file, unreadable, or not UTF-8; the message names it.
    """
    p = Path(path)
    if not p.is_file():
        raise DataFileError(f"{where} does not exist" if not p.exists() else f"{where} is not a file")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise DataFileError(f"cannot read {where}: {e.strerror or e}") from e
    try:
        return raw.decode("utf-8"), raw
    except UnicodeDecodeError as e:
        raise DataFileError(f"{where} is not UTF-8 text (byte {e.start})") from e
