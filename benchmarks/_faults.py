"""Fault injection shared by the reliability benchmark and the tests: kills at chosen points, full disks,
damaged journal files, credentials in storage URLs.

Kills run in a child process that replaces one function (``os.fsync``, ``os.replace``, ``Path.unlink``,
``os.write``) by one that SIGKILLs the process on its n-th call, so the kill lands at a known point of
the real code. Full disks are ``OSError(ENOSPC | EFBIG | EDQUOT)`` raised by the n-th ``os.fsync``.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)

# --------------------------------------------------------------------------- model folders
MODEL_FORMAT = {"format_name": "fault-model", "format_version": 1}

#: Where a save can be killed: (function, n-th call, what is happening, the model that must load after).
SAVE_KILL_POINTS = (
    ("fsync", 1, "writing the tensor file", "old"),
    ("replace", 1, "tensor file written, not renamed", "old"),
    ("fsync", 3, "writing the manifest", "old"),  # fsync 2 is the folder's
    ("replace", 2, "between the two renames", "old"),
    ("unlink", 1, "switched, old tensor file not removed", "new"),
)
#: The writes of a save that a full disk can fail: the tensor file (fsync 1) and the manifest (fsync 3).
SAVE_WRITES = (1, 3)

_KILL_IN_SAVE = textwrap.dedent("""
    import os, pathlib, signal, sys
    import numpy as np
    from edgeopt_plugins.predictors._store import save_model_folder
    folder, point, nth, value = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    owner = {"replace": os, "fsync": os, "unlink": pathlib.Path}[point]
    real = getattr(owner, point)
    calls = [0]
    def killing(*args, **kwargs):
        calls[0] += 1
        if calls[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    setattr(owner, point, killing)
    save_model_folder(folder, meta={"value": value}, arrays={"w": np.full(1000, value)},
                      format_name="fault-model", format_version=1)
""")


def save_model(folder: str | os.PathLike[str], value: float) -> None:
    """A small model whose every weight is ``value``."""
    from edgeopt_plugins.predictors._store import save_model_folder

    save_model_folder(folder, meta={"value": value}, arrays={"w": np.full(1000, value)}, **MODEL_FORMAT)


def load_model(folder: str | os.PathLike[str]) -> float:
    """The ``value`` of the model in ``folder`` (loading checks everything)."""
    from edgeopt_plugins.predictors._store import load_model_folder

    meta, arrays = load_model_folder(folder, **MODEL_FORMAT)
    if not np.all(arrays["w"] == meta["value"]):
        raise AssertionError("tensors and manifest of different saves")
    return float(meta["value"])


def _child(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)


def kill_during_save(folder: str | os.PathLike[str], point: str, nth: int, value: float) -> int:
    """Save a model of ``value`` over ``folder`` in a child killed at the ``nth`` call of ``point``; its exit code."""
    return _child(_KILL_IN_SAVE, str(folder), point, str(nth), str(value)).returncode


@contextmanager
def disk_full_at_fsync(nth: int, code: int = errno.ENOSPC) -> Iterator[None]:
    """The ``nth`` ``os.fsync`` in the block raises ``OSError(code)`` (what a full disk or a quota gives)."""
    real = os.fsync
    calls = [0]

    def full(fd: int) -> None:
        calls[0] += 1
        if calls[0] == nth:
            raise OSError(code, os.strerror(code))
        real(fd)

    os.fsync = full
    try:
        yield
    finally:
        os.fsync = real


# --------------------------------------------------------------------------- journal files
#: Damage a journal can carry: what a kill leaves, what an older writer glued, and a file damaged later.
JOURNAL_DAMAGE = ("torn tail", "garbled last record", "record glued after a torn one", "corrupted middle record")
#: The damage that must be refused (with the file and byte offset), not repaired.
REFUSED_DAMAGE = "corrupted middle record"

_KILL_MID_RECORD = textwrap.dedent("""
    import os, signal, sys
    from edgeopt_plugins.fleet import DeviceLedger, open_storage
    ledger = DeviceLedger(open_storage(sys.argv[1]), "run")
    claim = ledger.claim_next([sys.argv[2]])
    real_write = os.write
    def torn(fd, data):
        real_write(fd, bytes(data)[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    os.write = torn
    ledger.complete(claim, {"device": sys.argv[2]})
""")


_FILL_DISK = textwrap.dedent("""
    import os, resource, signal, sys
    import optuna
    from edgeopt_plugins.fleet import DeviceLedger, open_storage
    path, device, backend = sys.argv[1], sys.argv[2], sys.argv[3]
    if backend == "optuna":
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    else:
        storage = open_storage(path)
    ledger = DeviceLedger(storage, "run")
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    limit = os.path.getsize(path) + 100  # room for part of one record
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    claim = ledger.claim_next([device])
    ledger.complete(claim, {"device": device})
""")


def fill_disk_mid_write(journal: str | os.PathLike[str], device: str, backend: str = "ours") -> int:
    """Claim and finish ``device`` in a child whose file size limit stops a write half-way (a real torn
    write); ``backend`` is ``"ours"`` (:func:`~edgeopt_plugins.fleet.open_storage`) or ``"optuna"``."""
    return _child(_FILL_DISK, str(journal), device, backend).returncode


def kill_mid_record(journal: str | os.PathLike[str], device: str) -> int:
    """Claim ``device`` in a child killed half-way through writing its result record; the child's exit code."""
    return _child(_KILL_MID_RECORD, str(journal), device).returncode


def damage_journal(path: Path, kind: str) -> None:
    """Damage a journal file of whole records the way :data:`JOURNAL_DAMAGE` names."""
    data = path.read_bytes()
    lines = data.split(b"\n")[:-1]
    if kind == "torn tail":
        path.write_bytes(data + b'{"op_code":2,"worker_id":"w","study_id":0,"user_attr":{"heart')
    elif kind == "garbled last record":
        path.write_bytes(data + b'{"op_code":2,"worker_id":"w","stu\x00\x00\x00\n')
    elif kind == "record glued after a torn one":
        glued = b'{"op_code":0,"worker_id":"w","study_na' + b'{"op_code":0,"worker_id":"w","study_name":"glued",' \
                b'"directions":[1]}'
        path.write_bytes(b"\n".join([*lines[:-1], glued, lines[-1]]) + b"\n")
    elif kind == "corrupted middle record":
        lines[len(lines) // 2] = lines[len(lines) // 2].replace(b'"op_code"', b'"op_kode"')
        path.write_bytes(b"\n".join(lines) + b"\n")
    else:
        raise ValueError(f"unknown damage {kind!r}")


# --------------------------------------------------------------------------- credentials
SECRET = "Tr0ub4dor"
#: Every way a credential can sit in a database URL (unreachable hosts: connecting fails fast).
CREDENTIAL_URLS = (
    f"postgresql://ann:{SECRET}@127.0.0.1:9/runs",
    f"postgresql://ann@127.0.0.1:9/runs?password={SECRET}",
    f"postgresql://ann@127.0.0.1:9/runs?sslmode=require&sslpassword={SECRET}",
    f"postgresql://ann@127.0.0.1:9/runs?application_name=x&access_token={SECRET}&api_key={SECRET}",
    f"postgresql://ann:{SECRET}%40x@127.0.0.1:9/runs",
    f"mysql://ann@127.0.0.1:9/runs?password={SECRET}",
    f"postgresql://ann:{SECRET}@127.0.0.1:port/runs",
    f"postgresql://ann:{SECRET}@[::1/runs?password={SECRET}",
)
