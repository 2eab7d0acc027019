"""Opening the Optuna storage a fleet run shares between workers, with bounded retries.

Journal files get two guarantees Optuna's own file backend does not give (see
:class:`JournalFile`): a write that fails half-way (a full disk, a quota) is
rolled back, and a journal that a kill or an older version left with a torn
record is repaired when it is opened, so a run always resumes from its last
whole record. Database URLs are never printed with their credentials.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import optuna
from optuna.storages import BaseStorage
from optuna.storages.journal import JournalFileBackend

from edgeopt_plugins._io import display_path, parse_json
from edgeopt_plugins.exceptions import InputError, StorageError

__all__ = ["open_storage", "with_retries", "describe_storage", "JournalFile"]

T = TypeVar("T")
_JOURNAL_SUFFIXES = (".journal", ".log")
_LOG = logging.getLogger("edgeopt_plugins.fleet")
#: Errors of writing a file that waiting does not cure: no retry.
_NOT_TRANSIENT = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT}
#: Query parameters whose values are hidden in messages (``password=``, ``sslpassword=``, ``api_key=``, ...).
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key|auth|cred|sig", re.IGNORECASE)
_MASK = "***"


def _split(url: str) -> tuple[str, str, str, str]:
    """``(scheme://, user part, rest of the address, query)`` by plain string splitting (a bad port or
    host, which ``urllib`` refuses, still splits)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "", "", url, ""
    rest, _, query = rest.partition("?")
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    return scheme + sep, userinfo + at, host + slash + path, query


def _is_secret(key: str) -> bool:
    return bool(_SECRET_KEY.search(urllib.parse.unquote_plus(key)))


def describe_storage(url: str | os.PathLike[str]) -> str:
    """A storage URL with its credentials hidden, for messages, logs and reports.

    Hides the password of the user part and the value of every query parameter
    that looks secret (``password``, ``sslpassword``, ``token``, ``api_key``...).

    Example:
        >>> describe_storage("postgresql://ann:s3cret@db:5432/runs?sslmode=require&password=s3cret")
        'postgresql://ann:***@db:5432/runs?sslmode=require&password=***'
    """
    scheme, userinfo, address, query = _split(str(url))
    if ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":" + _MASK + "@"
    pieces = []
    for piece in query.split("&") if query else []:
        key, eq, value = piece.partition("=")
        pieces.append(f"{key}={_MASK}" if eq and value and _is_secret(key) else piece)
    return scheme + userinfo + address + ("?" + "&".join(pieces) if query else "")


def mask_credentials(text: str, url: str | os.PathLike[str]) -> str:
    """``text`` (a message about ``url``, perhaps from a database driver) with ``url``'s credentials hidden."""
    url = str(url)
    text = text.replace(url, describe_storage(url))
    _, userinfo, _, query = _split(url)
    secrets = [userinfo[:-1].split(":", 1)[1]] if ":" in userinfo else []
    secrets += [value for key, _, value in (p.partition("=") for p in query.split("&")) if value and _is_secret(key)]
    for raw in sorted(set(secrets), key=len, reverse=True):
        for form in {raw, urllib.parse.unquote_plus(raw)}:
            if len(form) >= 3:  # a shorter one would mask ordinary words; such a password is no secret anyway
                text = text.replace(form, _MASK)
    return text


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "the storage could not be reached" (worth retrying), not "the request was wrong"."""
    import sqlalchemy.exc

    return (OSError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.TimeoutError)


def with_retries(
    action: Callable[[], T],
    *,
    what: str,
    retries: int = 5,
    base_delay_s: float = 0.5,
    also: tuple[type[BaseException], ...] = (),
    url: str | None = None,
) -> T:
    """Run ``action``; on a connection error retry with exponential backoff, then raise StorageError.

    Other errors (a duplicated study name, a missing trial) propagate unchanged,
    except the extra types listed in ``also``. The credentials of ``url`` never
    appear in the error.
    """
    delay = base_delay_s
    transient = _transient_errors() + also
    for attempt in range(1, retries + 1):
        try:
            return action()
        except transient as err:
            if isinstance(err, OSError) and err.errno in _NOT_TRANSIENT:
                raise
            if attempt == retries:
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                first = mask_credentials(first, url) if url else first
                raise StorageError(f"{what}: still failing after {retries} attempts ({first[:200]})") from None
            time.sleep(delay)
            delay = min(delay * 2, 8.0)
    raise AssertionError("unreachable")  # pragma: no cover


def _with_driver(url: str) -> str:
    """``postgresql://`` uses psycopg2 (the ``postgres`` extra); SQLAlchemy 2.1 would pick psycopg 3."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url[len(scheme):]
    return url


def open_storage(url: str | os.PathLike[str], *, retries: int = 5,
                 on_repair: Callable[[str], None] | None = None) -> BaseStorage:
    """An Optuna storage shared by fleet workers.

    Args:
        url: ``sqlite:///file.db``, ``postgresql://user:pass@host:port/db`` (any SQLAlchemy URL),
            or a path to a journal file (``*.journal``/``*.log``, created if missing). Journal
            files are safe for several processes on one machine; use PostgreSQL across machines.
        retries: Connection attempts before giving up with :class:`StorageError`.
        on_repair: Called with one line per torn record removed from a journal file
            (default: logged as a warning of the ``edgeopt_plugins.fleet`` logger).

    Raises:
        InputError: for a URL that cannot be used (credentials hidden in the message).
        StorageError: for a database that cannot be reached, or a journal file corrupted
            in the middle (the message names the file and the byte offset).

    Example:
        >>> import tempfile, os
        >>> storage = open_storage(os.path.join(tempfile.mkdtemp(), "fleet.journal"))
        >>> type(storage).__name__
        'JournalStorage'
    """
    shown = describe_storage(url)
    text = _with_driver(str(url))
    if "://" in text:
        import sqlalchemy.exc

        try:
            urllib.parse.urlsplit(text).port  # a bad port or IPv6 host, before SQLAlchemy trips on it
        except ValueError as err:
            raise InputError(f"storage {shown}: not a valid URL ({mask_credentials(str(err), url)})") from None
        # Several workers creating the schema at once collide on its version row: retry, it exists then.
        try:
            return with_retries(
                lambda: optuna.storages.RDBStorage(text, engine_kwargs={"pool_pre_ping": True}),
                what=f"storage {shown}",
                retries=retries,
                also=(sqlalchemy.exc.IntegrityError,),
                url=text,
            )
        except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as err:  # not transient: a wrong URL
            first = mask_credentials(mask_credentials(str(err).strip().splitlines()[0][:160], text), url)
            raise InputError(f"storage {shown}: not a usable database URL ({first}); for "
                             "PostgreSQL install the postgres extra in your clone of edgeopt-plugins: "
                             "pip install -c constraints.txt -e '.[postgres]'") from None
    path = Path(text)
    if path.suffix not in _JOURNAL_SUFFIXES:
        raise InputError(
            f"storage {shown!r}: expected a database URL (sqlite:///..., postgresql://...) or a journal file "
            f"ending in {' or '.join(_JOURNAL_SUFFIXES)}"
        )
    if path.is_dir():
        raise InputError(f"storage {shown!r} is a folder, expected a journal file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"storage {shown!r}: cannot create its folder ({err.strerror})") from None
    return optuna.storages.JournalStorage(JournalFile(path, on_repair=on_repair))


# ===================================================================== journal files
#: Every record Optuna writes starts with its operation code.
_RECORD_START = b'{"op_code":'


def _record_problem(line: bytes) -> str | None:
    """Why ``line`` (without its newline) is not a whole journal record, or ``None`` when it is one."""
    try:
        record = parse_json(line)
    except ValueError as err:
        return f"not JSON: {err}"
    if not isinstance(record, dict) or not isinstance(record.get("worker_id"), str):
        return "not a journal record"
    op = record.get("op_code")
    if not isinstance(op, int) or isinstance(op, bool) or not 0 <= op <= _MAX_OP_CODE:
        return f"unknown operation {str(op)[:20]}"
    return None


def _torn(offset: int, size: int) -> str:
    return f"skipped a torn record at byte {offset} ({size} bytes): the journal resumes from its last whole record"


def _max_op_code() -> int:
    try:
        from optuna.storages.journal._storage import JournalOperation
    except ImportError:  # pragma: no cover - a future Optuna: trust its codes
        return 2**31
    return max(JournalOperation)


_MAX_OP_CODE = _max_op_code()


class JournalFile(JournalFileBackend):
    """Optuna's journal file backend that can neither be torn by a failed write nor wedged by a torn record.

    - **Appending** happens under the journal's lock, and a write that fails half-way
      (``ENOSPC``, ``EFBIG``, ``EDQUOT``...) is truncated back before the error is
      raised (naming the file), so no half record is ever left for the next writer to
      glue its own onto.
    - **Opening** repairs what a kill (or an older version of this library) can leave:
      bytes after the last newline (a torn tail), a last record that is not whole, and a
      record that follows a torn one on the same line. None of these was ever applied by
      a reader (Optuna skips an unfinished last line and stops at a garbled one), so
      dropping them keeps the journal exactly as every worker saw it; each is reported.
      Any other unreadable record in the middle (a file damaged after the fact) is
      refused with a :class:`StorageError` naming the file and the byte offset.

    Args:
        path: The journal file (created if missing).
        on_repair: Called with one line per repair (default: a logged warning).

    Example:
        >>> import tempfile, os, optuna
        >>> path = os.path.join(tempfile.mkdtemp(), "f.journal")
        >>> storage = optuna.storages.JournalStorage(JournalFile(path))
        >>> with open(path, "ab") as f:  # a worker killed in the middle of a write
        ...     _ = f.write(b'{"op_code":0,"worker_id":"w","study_na')
        >>> notes = []
        >>> storage = optuna.storages.JournalStorage(JournalFile(path, on_repair=notes.append))
        >>> notes[0].endswith("skipped a torn record at byte 0 (38 bytes): the journal resumes from its last whole record")
        True
    """

    def __init__(self, path: str | os.PathLike[str], *, on_repair: Callable[[str], None] | None = None) -> None:
        self._path = str(path)
        self._shown = display_path(path)
        super().__init__(self._path)
        self._report = on_repair or _LOG.warning
        for note in self._repair():
            self._report(f"{self._shown}: {note}")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        """The journal open for reading and appending, under an exclusive lock.

        A kernel lock (``flock``), not Optuna's lock file: it dies with its holder, so a
        worker killed while writing never blocks the others (a lock file waits out a
        30-second grace period). Journal files are for the processes of one machine.
        """
        fd = os.open(self._path, os.O_RDWR | os.O_APPEND)
        try:
            with contextlib.suppress(ImportError):
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # releases the lock

    def _repair(self) -> list[str]:
        with self._locked() as fd:
            data = Path(self._path).read_bytes()
            keep, notes = self._whole_records(data)
            if len(keep) != len(data):
                os.ftruncate(fd, 0)
                os.write(fd, keep)
                os.fsync(fd)
        return notes

    def _whole_records(self, data: bytes) -> tuple[bytes, list[str]]:
        """The journal without its torn records, and a note per record dropped."""
        notes: list[str] = []
        out: list[bytes] = []
        end = data.rfind(b"\n") + 1
        lines = data[:end].split(b"\n")[:-1]
        offset = 0
        for number, line in enumerate(lines, start=1):
            problem = _record_problem(line)
            if problem is None:
                out.append(line + b"\n")
            elif number == len(lines) or self._glued(line):
                notes.append(_torn(offset, len(line) + 1))
            else:
                raise StorageError(
                    f"{self._shown}: record {number} at byte {offset} is corrupted ({problem}); the journal cannot "
                    "be repaired without losing work: restore it, or move it aside to start the run over")
            offset += len(line) + 1
        if end < len(data):
            notes.append(_torn(end, len(data) - end))
        return b"".join(out), notes

    @staticmethod
    def _glued(line: bytes) -> bool:
        """A torn record with a whole one written after it on the same line (by a writer that did not repair)."""
        start = line.rfind(_RECORD_START)
        return start > 0 and _record_problem(line[start:]) is None

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        data = b"".join(json.dumps(log, separators=(",", ":")).encode("utf-8") + b"\n" for log in logs)
        with self._locked() as fd:
            start = self._drop_torn_tail(fd)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except BaseException as err:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                if isinstance(err, OSError):
                    raise OSError(err.errno, err.strerror, self._shown) from None
                raise

    def _drop_torn_tail(self, fd: int) -> int:
        """Truncate bytes after the last newline (a writer killed mid-write); returns the size after."""
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return size
        pos = size
        while pos > 0:
            chunk_start = max(0, pos - 65536)
            newline = os.pread(fd, pos - chunk_start, chunk_start).rfind(b"\n")
            if newline >= 0:
                pos = chunk_start + newline + 1
                break
            pos = chunk_start
        os.ftruncate(fd, pos)
        self._report(f"{self._shown}: {_torn(pos, size - pos)}")
        return pos
