"""Small file helpers shared by the library: atomic writes, bounded JSON, path checks.

Every file the library writes goes through :func:`atomic_write`, so an error or
a kill in the middle never leaves a partial file behind; every JSON file it reads
from a user goes through :func:`parse_json`, so a hostile file is one clear error.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from edgeopt_plugins.exceptions import DataNotFoundError, InputError

__all__ = [
    "atomic_write",
    "write_json",
    "write_text",
    "parse_json",
    "stale_temp_files",
    "remove_stale_temp_files",
    "existing_file",
    "read_text_file",
    "check_writable",
    "display_path",
    "printable",
]

#: Temporary files of :func:`atomic_write`: ``.NAME.PID.RANDOM.tmp`` (older versions: ``.NAME.RANDOM.tmp``).
_TEMP = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.)?[a-z0-9_]{8}\.tmp$")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _umask() -> int:
    """The process umask, read without changing it where the system allows."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode_for(target: Path) -> int:
    """An existing file keeps its mode; a new one gets what ``open`` would give it (0666 minus the umask)."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: some systems cannot open folders)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` and rename it over ``path`` on success.

    The new file gets the mode of the file it replaces, or, for a new file, the
    mode ``open`` would give it (the umask applies). An ``OSError`` raised while
    writing (a full disk, a quota) names ``path``; the temporary file is removed,
    and so are those of earlier writers of ``path`` that were killed.

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
    except FileExistsError:
        raise InputError(f"{display_path(target.parent)}: is a file, expected a folder") from None
    except OSError as err:
        raise InputError(f"{display_path(target.parent)}: cannot create folder ({err.strerror})") from None
    if target.is_dir():
        raise InputError(f"{display_path(target)}: is a folder, expected a file path")
    if mode == "w":
        kwargs.setdefault("encoding", "utf-8")
    remove_stale_temp_files(target.parent, [target.name])
    file_mode = _mode_for(target)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    except OSError as err:
        raise _naming(err, target) from None
    try:
        os.fchmod(fd, file_mode)
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        if isinstance(err, OSError) and not err.filename:
            raise _naming(err, target) from None
        raise
    _fsync_folder(target.parent)


def _naming(err: OSError, target: Path) -> OSError:
    """``err`` with ``target`` as its file name (a write error otherwise names no file)."""
    if err.filename or err.errno is None:
        return err
    return OSError(err.errno, err.strerror or os.strerror(err.errno), display_path(target))


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_write(path) as handle:
        handle.write(text)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def stale_temp_files(folder: str | os.PathLike[str], names: Iterable[str] | None = None) -> list[Path]:
    """Temporary files that :func:`atomic_write` left in ``folder`` when its process died.

    Args:
        folder: Where to look.
        names: Only temporary files of these targets (default: of any target).

    Returns:
        Temporary files whose writer is gone (a live writer's file is never listed).
    """
    wanted = None if names is None else set(names)
    out = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            found = _TEMP.match(entry.name)
            if not found or (wanted is not None and found["name"] not in wanted):
                continue
            pid = found["pid"]
            if pid is None or (int(pid) != os.getpid() and not _pid_alive(int(pid))):
                out.append(Path(entry.path))
    return sorted(out)


def remove_stale_temp_files(folder: str | os.PathLike[str], names: Iterable[str] | None = None) -> list[Path]:
    """Delete :func:`stale_temp_files` of ``folder``; returns what was deleted."""
    removed = []
    for path in stale_temp_files(folder, names):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]}{'...' if len(text) > 20 else ''} is out of range")
    return value


def parse_json(text: str | bytes) -> Any:
    """``json.loads`` that fails with one short :class:`ValueError` on anything a hostile file can hold.

    Nesting too deep for Python, integers with thousands of digits and floats that
    overflow (``1e999``) are refused like a syntax error, so callers need one
    ``except ValueError``. ``NaN`` and ``Infinity`` (which ``json.dumps`` writes) are kept.

    Example:
        >>> parse_json('{"a": [1, 2.5]}')
        {'a': [1, 2.5]}
        >>> parse_json("[" * 100000)
        Traceback (most recent call last):
        ValueError: nested too deeply
    """
    try:
        return json.loads(text, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{err.msg} at line {err.lineno} column {err.colno}") from None
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except ValueError as err:  # int() beyond sys.get_int_max_str_digits, or an overflowing float
        reason = str(err)
        raise ValueError("a number with too many digits" if "digits" in reason else reason) from None


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
    """``(path, its text)`` of an existing UTF-8 text file (a leading byte order mark is dropped).

    Raises:
        DataNotFoundError: if it does not exist.
        InputError: for a folder, an unreadable file, or text that is not UTF-8.
    """
    p = existing_file(path, what)
    try:
        return p, p.read_text(encoding="utf-8-sig")  # -sig: Excel's byte order mark
    except UnicodeDecodeError:
        raise InputError(f"{display_path(p)}: not a text file (UTF-8)") from None


def check_writable(path: str | os.PathLike[str], what: str = "") -> None:
    """Refuse ``path`` if it cannot be created or (atomically) replaced: the folder it is in, or the folder
    itself, must be writable, and the nearest existing ancestor must be a folder.

    Args:
        path: A file or folder to be written (it need not exist).
        what: How messages name it (e.g. ``"--out "``), before the path.

    Raises:
        InputError: naming the ancestor that is a file or not writable.
    """
    p = Path(path)
    ancestor = p if p.is_dir() else p.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{what}{display_path(p)}: cannot write there ({display_path(ancestor)} is not a folder)")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"{what}{display_path(p)}: cannot write there ({display_path(ancestor)} is not writable)")


def display_path(path: str | os.PathLike[str]) -> str:
    """A short form of ``path`` for messages: relative to the working folder when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(p)


def printable(text: object) -> str:
    """``str(text)`` with control characters (ANSI escapes, line breaks, bidi overrides) shown as escapes.

    Text from users' files (a device name in a sidecar) passes through this before
    it reaches a terminal, so it can neither recolour nor rewrite the screen.

    Example:
        >>> printable("phone\\x1b[2J")
        'phone\\\\x1b[2J'
    """
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))
