"""Opening the Optuna storage a fleet run shares between workers, with bounded retries."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import optuna
from optuna.storages import BaseStorage

from edgeopt_plugins.exceptions import InputError, StorageError

__all__ = ["open_storage", "with_retries", "describe_storage"]

T = TypeVar("T")
_JOURNAL_SUFFIXES = (".journal", ".log")


def describe_storage(url: str | os.PathLike[str]) -> str:
    """A storage URL with any password hidden, for messages and reports."""
    text = str(url)
    if "://" in text and "@" in text:
        scheme, rest = text.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
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
) -> T:
    """Run ``action``; on a connection error retry with exponential backoff, then raise StorageError.

    Other errors (a duplicated study name, a missing trial) propagate unchanged,
    except the extra types listed in ``also``.
    """
    delay = base_delay_s
    transient = _transient_errors() + also
    for attempt in range(1, retries + 1):
        try:
            return action()
        except transient as err:
            if attempt == retries:
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
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


def open_storage(url: str | os.PathLike[str], *, retries: int = 5) -> BaseStorage:
    """An Optuna storage shared by fleet workers.

    Args:
        url: ``sqlite:///file.db``, ``postgresql://user:pass@host:port/db`` (any SQLAlchemy URL),
            or a path to a journal file (``*.journal``/``*.log``, created if missing). Journal
            files are safe for several processes on one machine; use PostgreSQL across machines.
        retries: Connection attempts before giving up with :class:`StorageError`.

    Example:
        >>> import tempfile, os
        >>> storage = open_storage(os.path.join(tempfile.mkdtemp(), "fleet.journal"))
        >>> type(storage).__name__
        'JournalStorage'
    """
    text = _with_driver(str(url))
    if "://" in text:
        import sqlalchemy.exc

        # Several workers creating the schema at once collide on its version row: retry, it exists then.
        try:
            return with_retries(
                lambda: optuna.storages.RDBStorage(text, engine_kwargs={"pool_pre_ping": True}),
                what=f"storage {describe_storage(text)}",
                retries=retries,
                also=(sqlalchemy.exc.IntegrityError,),
            )
        except (sqlalchemy.exc.NoSuchModuleError, sqlalchemy.exc.ArgumentError, ImportError) as err:
            first = str(err).strip().splitlines()[0][:160]
            raise InputError(f"storage {describe_storage(text)}: not a usable database URL ({first}); for "
                             "PostgreSQL install the postgres extra in your clone of edgeopt-plugins: "
                             "pip install -c constraints.txt -e '.[postgres]'") from None
    path = Path(text)
    if path.suffix not in _JOURNAL_SUFFIXES:
        raise InputError(
            f"storage {text!r}: expected a database URL (sqlite:///..., postgresql://...) or a journal file "
            f"ending in {' or '.join(_JOURNAL_SUFFIXES)}"
        )
    if path.is_dir():
        raise InputError(f"storage {text!r} is a folder, expected a journal file path")
    path.parent.mkdir(parents=True, exist_ok=True)
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
