"""DeviceLedger: exclusive claims across processes, takeover of dead workers, single completion."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import pytest

from edgeopt_plugins.exceptions import InputError, StorageError
from edgeopt_plugins.fleet import DeviceLedger, open_storage, with_retries

DEVICES = [f"dev{i:02d}" for i in range(12)]


def _claim_all(url: str, run: str, queue) -> None:
    ledger = DeviceLedger(open_storage(url), run)
    mine = []
    while (claim := ledger.claim_next(DEVICES)) is not None:
        mine.append(claim.device)
        assert ledger.complete(claim, {"by": ledger.worker})
    queue.put(mine)


def test_three_processes_claim_each_device_exactly_once(storage_url, run_name):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(storage_url, run_name, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    claimed = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    flat = [d for part in claimed for d in part]
    assert sorted(flat) == DEVICES
    results = DeviceLedger(open_storage(storage_url), run_name).results()
    assert sorted(results) == DEVICES


def _claim_and_hang(url: str, run: str, ready) -> None:
    ledger = DeviceLedger(open_storage(url), run)
    ledger.claim_next(["phone"])
    ready.set()
    time.sleep(600)


def test_a_killed_workers_device_is_taken_over(storage_url, run_name):
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_claim_and_hang, args=(storage_url, run_name, ready))
    proc.start()
    assert ready.wait(120)
    ledger = DeviceLedger(open_storage(storage_url), run_name)
    assert ledger.claim_next(["phone"]) is None  # held by a live worker
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout=30)
    claim = ledger.claim_next(["phone"])
    assert claim is not None and claim.attempt == 1
    assert ledger.complete(claim, {"ok": True})
    assert ledger.status(["phone"]) == {"done": 1, "running": 0, "pending": 0}


def test_stale_claim_cannot_complete_after_takeover(tmp_path):
    storage = open_storage(tmp_path / "f.journal")
    slow = DeviceLedger(storage, "run", lease_s=0.2)
    claim = slow.claim_next(["board"])
    time.sleep(0.3)
    other = DeviceLedger(storage, "run", lease_s=0.2, worker="other")
    # Same host and this pid is alive, but the heartbeat is older than the lease.
    takeover = other.claim_next(["board"])
    assert takeover is not None and takeover.attempt == 1
    assert not slow.complete(claim, {"by": "slow"})
    assert other.complete(takeover, {"by": "other"})
    assert slow.results() == {"board": {"by": "other"}}


def test_heartbeat_keeps_a_claim_alive(tmp_path):
    storage = open_storage(tmp_path / "f.journal")
    ledger = DeviceLedger(storage, "run", lease_s=0.4)
    claim = ledger.claim_next(["cam"])
    with ledger.holding(claim):
        time.sleep(0.8)
        assert DeviceLedger(storage, "run", lease_s=0.4).claim_next(["cam"]) is None


def test_bad_storage_urls(tmp_path):
    with pytest.raises(InputError, match="expected a database URL"):
        open_storage(tmp_path / "fleet.txt")
    with pytest.raises(StorageError, match="still failing after 2 attempts"):
        open_storage("postgresql://nobody:secret@127.0.0.1:9/none", retries=2)


def test_with_retries_backs_off_then_succeeds(monkeypatch):
    calls = []
    monkeypatch.setattr(time, "sleep", lambda s: calls.append(s))
    attempts = iter([OSError("down"), OSError("down"), "ok"])

    def flaky():
        value = next(attempts)
        if isinstance(value, Exception):
            raise value
        return value

    assert with_retries(flaky, what="x", retries=3, base_delay_s=0.1) == "ok"
    assert calls == [0.1, 0.2]
