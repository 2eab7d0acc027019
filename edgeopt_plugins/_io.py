"""Small file helpers shared by the library: atomic writes and path checks.

Every file the library writes goes through :func:`atomic_write`, so an error or
a kill in the middle never leaves a partial file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from edgeopt_plugins.exceptions import DataNotFoundError, InputError

__all__ = ["atomic_write", "write_json", "write_text", "existing_file", "read_text_file", "display_path"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` and rename it over ``path`` on success.

    Args:
        path: Destination file. Its folder is created if needed.
        mode: ``"w"`` (text, UTF-8) or ``"wb"``.
        **kwargs: Passed to :func:`open` (e.g. ``newline=""`` for CSV).

    Yields:
        The open temporary file.

    Example:
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
        >>> with atomic_write(out) as fh:
        ...     _ = fh.write("hello")
        >>> out.read_text()
        'hello'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', got {mode!r}")
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{display_path(target.parent)}: cannot create folder ({err.strerror})") from None
    if target.is_dir():
        raise InputError(f"{display_path(target)}: is a folder, expected a file path")
    if mode == "w":
        kwargs.setdefault("encoding", "utf-8")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_write(path) as handle:
        handle.write(text)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def existing_file(path: str | os.PathLike[str], what: str = "file") -> Path:
    """Return ``path`` as a :class:`~pathlib.Path` if it is a readable file.

    Raises:
        DataNotFoundError: if it does not exist, is a folder or cannot be read.
    """
    p = Path(path)
    if not p.exists():
        raise DataNotFoundError(f"{display_path(p)}: {what} not found")
    if p.is_dir():
        raise InputError(f"{display_path(p)}: is a folder, expected a {what}")
    if not os.access(p, os.R_OK):
        raise InputError(f"{display_path(p)}: {what} is not readable (permission denied)")
    return p


def read_text_file(path: str | os.PathLike[str], what: str = "file") -> tuple[Path, str]:
    """``(path, its text)`` of an existing UTF-8 text file, or one clear error naming it.

    Raises:
        DataNotFoundError: if it does not exist.
        InputError: for a folder, an unreadable file, or text that is not UTF-8.
    """
    p = existing_file(path, what)
    try:
        return p, p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{display_path(p)}: not a text file (UTF-8)") from None


def display_path(path: str | os.PathLike[str]) -> str:
    """A short form of ``path`` for messages: relative to the working folder when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(p)
