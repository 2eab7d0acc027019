"""``DeviceLedger``: which worker optimizes which device, kept in a shared Optuna storage.

The only atomic operation every Optuna storage offers (SQLite, PostgreSQL, journal
files) is creating a study under a name that must be unique. The ledger builds
claims on it:

- a *claim* of device ``d`` is the study ``<run>::claim::<d>::<attempt>``; creating
  it succeeds for exactly one worker;
- the claim carries a heartbeat; a claim whose heartbeat is older than the lease
  (or whose process is gone, on the same host) is *stale*, and the next attempt
  number may be claimed by anyone;
- a device is *done* when its result is stored on ``<run>::device::<d>``; a worker
  stores a result only while its claim is the newest one, so no device is done twice.

Rerunning a crashed or interrupted fleet resumes: done devices are skipped, stale
claims are taken over, and the per-device Optuna study keeps every finished trial.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.exceptions import DuplicatedStudyError
from optuna.storages import BaseStorage

from edgeopt_plugins.fleet._storage import with_retries

__all__ = ["Claim", "DeviceLedger", "worker_id"]

_SEP = "::"


def worker_id() -> str:
    """A unique name for this worker process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Claim:
    """A device held by this worker (``attempt`` counts takeovers after crashes)."""

    device: str
    attempt: int
    study_id: int


class DeviceLedger:
    """Claims, heartbeats and results of the devices of one fleet run.

    Args:
        storage: A storage from :func:`~edgeopt_plugins.fleet.open_storage`.
        run: Name of the fleet run (all workers of a run use the same name).
        lease_s: A claim without a heartbeat for this long may be taken over.
        worker: This worker's name (default :func:`worker_id`).

    Example:
        >>> import tempfile, os
        >>> from edgeopt_plugins.fleet import open_storage
        >>> ledger = DeviceLedger(open_storage(os.path.join(tempfile.mkdtemp(), "f.journal")), "demo")
        >>> claim = ledger.claim_next(["phone", "board"])
        >>> claim.device, ledger.claim_next(["phone"]) is None
        ('phone', True)
        >>> ledger.complete(claim, {"arch": "x"})
        True
        >>> ledger.results()
        {'phone': {'arch': 'x'}}
    """

    def __init__(self, storage: BaseStorage, run: str, *, lease_s: float = 120.0, worker: str | None = None) -> None:
        self.storage = storage
        self.run = run
        self.lease_s = float(lease_s)
        self.worker = worker or worker_id()
        self._host = socket.gethostname()
        # Claims seen before their creator wrote a heartbeat: when we first saw them.
        self._no_heartbeat_since: dict[tuple[str, int], float] = {}

    # ----------------------------------------------------------------- names
    def device_study_name(self, device: str) -> str:
        """Name of the Optuna study holding the device's trials and result."""
        return f"{self.run}{_SEP}device{_SEP}{device}"

    def _claim_name(self, device: str, attempt: int) -> str:
        return f"{self.run}{_SEP}claim{_SEP}{device}{_SEP}{attempt}"

    # ----------------------------------------------------------------- snapshot of the storage
    def _snapshot(self) -> tuple[dict[str, tuple[int, dict[str, Any]]], dict[str, dict[str, Any]]]:
        """Latest claim per device ``(attempt, attrs)`` and results per device."""
        studies = with_retries(self.storage.get_all_studies, what="reading the fleet ledger")
        claims: dict[str, tuple[int, dict[str, Any]]] = {}
        results: dict[str, dict[str, Any]] = {}
        claim_prefix = f"{self.run}{_SEP}claim{_SEP}"
        device_prefix = f"{self.run}{_SEP}device{_SEP}"
        for study in studies:
            name = study.study_name
            if name.startswith(claim_prefix):
                device, _, attempt = name[len(claim_prefix):].rpartition(_SEP)
                if device not in claims or int(attempt) > claims[device][0]:
                    claims[device] = (int(attempt), {**study.user_attrs, "_study_id": study._study_id})
            elif name.startswith(device_prefix) and "edgeopt:result" in study.user_attrs:
                results[name[len(device_prefix):]] = json.loads(study.user_attrs["edgeopt:result"])
        return claims, results

    def _stale(self, device: str, attempt: int, attrs: dict[str, Any], now: float) -> bool:
        if attrs.get("host") == self._host and attrs.get("pid") and not _pid_alive(int(attrs["pid"])):
            return True
        if "heartbeat" not in attrs:  # just created: its owner has not written its first heartbeat yet
            since = self._no_heartbeat_since.setdefault((device, attempt), now)
            return now - since > self.lease_s
        return now - float(attrs["heartbeat"]) > self.lease_s

    # ----------------------------------------------------------------- claiming
    def claim_next(self, devices: Sequence[str]) -> Claim | None:
        """Claim the first device of ``devices`` that is neither done nor held; ``None`` if none is left."""
        claims, results = self._snapshot()
        now = time.time()
        for device in devices:
            if device in results:
                continue
            latest = claims.get(device)
            if latest is not None and not self._stale(device, *latest, now):
                continue
            claim = self._try_claim(device, 0 if latest is None else latest[0] + 1)
            if claim is not None:
                return claim
        return None

    def _try_claim(self, device: str, attempt: int) -> Claim | None:
        name = self._claim_name(device, attempt)
        try:
            study_id = with_retries(
                lambda: self.storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], name),
                what=f"claiming {device}",
            )
        except DuplicatedStudyError:
            return None
        for key, value in (("worker", self.worker), ("host", self._host), ("pid", os.getpid()),
                           ("heartbeat", time.time())):
            with_retries(lambda k=key, v=value: self.storage.set_study_user_attr(study_id, k, v),
                         what=f"claiming {device}")
        return Claim(device, attempt, study_id)

    def heartbeat(self, claim: Claim) -> None:
        """Tell other workers this claim is alive."""
        with_retries(lambda: self.storage.set_study_user_attr(claim.study_id, "heartbeat", time.time()),
                     what=f"heartbeat for {claim.device}")

    @contextlib.contextmanager
    def holding(self, claim: Claim) -> Iterator[None]:
        """Keep ``claim`` alive with a background heartbeat while the block runs."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.lease_s / 4):
                with contextlib.suppress(Exception):
                    self.heartbeat(claim)

        thread = threading.Thread(target=beat, name=f"edgeopt-heartbeat-{claim.device}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def is_current(self, claim: Claim) -> bool:
        """Whether no newer claim of the same device exists (the claim was not taken over)."""
        claims, _ = self._snapshot()
        latest = claims.get(claim.device)
        return latest is not None and latest[0] == claim.attempt

    # ----------------------------------------------------------------- results
    def device_study(self, claim: Claim, *, directions: Sequence[str] = ("maximize",), sampler: Any = None,
                     ) -> optuna.Study:
        """The device's Optuna study (created on first use, shared across takeovers)."""
        return with_retries(
            lambda: optuna.create_study(storage=self.storage, study_name=self.device_study_name(claim.device),
                                        directions=list(directions), sampler=sampler, load_if_exists=True),
            what=f"opening the study of {claim.device}",
        )

    def complete(self, claim: Claim, result: dict[str, Any]) -> bool:
        """Store the device's result if ``claim`` is still current; returns whether it was stored."""
        if not self.is_current(claim):
            return False
        study = self.device_study(claim)
        payload = json.dumps(result, sort_keys=True, default=float)
        with_retries(lambda: self.storage.set_study_user_attr(study._study_id, "edgeopt:result", payload),
                     what=f"storing the result of {claim.device}")
        return True

    def results(self) -> dict[str, dict[str, Any]]:
        """``{device: result}`` of every finished device."""
        return self._snapshot()[1]

    def status(self, devices: Sequence[str]) -> dict[str, int]:
        """Counts of ``done``, ``running`` (live claim) and ``pending`` devices."""
        claims, results = self._snapshot()
        now = time.time()
        done = sum(d in results for d in devices)
        running = sum(d not in results and d in claims and not self._stale(d, *claims[d], now) for d in devices)
        return {"done": done, "running": running, "pending": len(devices) - done - running}
