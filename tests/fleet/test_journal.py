"""Journal files survive torn writes: a full disk, a kill mid-record, an older writer's glued record."""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks._faults import JOURNAL_DAMAGE, REFUSED_DAMAGE, damage_journal, kill_mid_record
from edgeopt_plugins.exceptions import StorageError
from edgeopt_plugins.fleet import DeviceLedger, open_storage

ROOT = Path(__file__).resolve().parents[2]
DEVICES = ["phone", "board", "watch", "tv"]


def _finish(url: str, devices, notes=None) -> DeviceLedger:
    ledger = DeviceLedger(open_storage(url, on_repair=(notes if notes is not None else []).append), "run")
    for device in devices:
        claim = ledger.claim_next([device])
        assert claim is not None and ledger.complete(claim, {"device": device})
    return ledger


@pytest.mark.parametrize("kind", [k for k in JOURNAL_DAMAGE if k != REFUSED_DAMAGE])
def test_a_torn_record_is_skipped_reported_and_the_run_goes_on(tmp_path, kind):
    path = tmp_path / "fleet.journal"
    _finish(str(path), DEVICES[:2])
    whole = path.stat().st_size
    damage_journal(path, kind)
    notes: list[str] = []
    ledger = _finish(str(path), DEVICES[2:], notes)
    assert sorted(ledger.results()) == sorted(DEVICES)
    assert "glued" not in [s.study_name for s in ledger.storage.get_all_studies()]  # never applied: dropped
    assert len(notes) == 1 and notes[0].startswith(f"{path}: skipped a torn record at byte ")
    assert kind != "torn tail" or notes[0] == (f"{path}: skipped a torn record at byte {whole} (61 bytes): the "
                                               "journal resumes from its last whole record")
    assert sorted(DeviceLedger(open_storage(str(path)), "run").results()) == sorted(DEVICES)


def test_a_corrupted_record_in_the_middle_is_refused_with_file_and_offset(tmp_path):
    path = tmp_path / "fleet.journal"
    _finish(str(path), DEVICES)
    lines = path.read_bytes().split(b"\n")
    middle = (len(lines) - 1) // 2
    offset = sum(len(line) + 1 for line in lines[:middle])
    damage_journal(path, REFUSED_DAMAGE)
    before = path.read_bytes()
    with pytest.raises(StorageError, match=rf"fleet.journal: record {middle + 1} at byte {offset} is corrupted"):
        open_storage(str(path))
    assert path.read_bytes() == before  # nothing is thrown away


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG, errno.EDQUOT])
def test_a_write_failing_half_way_is_rolled_back_and_names_the_file(tmp_path, monkeypatch, code):
    path = tmp_path / "fleet.journal"
    ledger = _finish(str(path), DEVICES[:2])
    size = path.stat().st_size
    real_write = os.write

    def full(fd, data):
        real_write(fd, bytes(data)[: len(data) // 2])
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "write", full)
    with pytest.raises((OSError, StorageError)) as caught:
        ledger.claim_next(DEVICES[2:])
    assert "fleet.journal" in str(caught.value)
    monkeypatch.undo()
    assert path.stat().st_size == size and path.read_bytes().endswith(b"\n")
    assert sorted(_finish(str(path), DEVICES[2:]).results()) == sorted(DEVICES)


def test_a_worker_killed_mid_record_leaves_a_journal_the_rerun_resumes(tmp_path):
    path = tmp_path / "fleet.journal"
    _finish(str(path), DEVICES[:3])
    assert kill_mid_record(path, "tv") == -signal.SIGKILL
    assert not path.read_bytes().endswith(b"\n")
    notes: list[str] = []
    ledger = DeviceLedger(open_storage(str(path), on_repair=notes.append), "run", lease_s=0.1)
    assert len(notes) == 1
    claim = ledger.claim_next(["tv"])  # the dead worker's claim is taken over
    assert claim is not None and ledger.complete(claim, {"device": "tv"})
    assert sorted(ledger.results()) == sorted(DEVICES)


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.slow
def test_a_refining_fleet_that_runs_out_of_space_resumes_after_space_is_freed(tiny_model_dir, data_dir, tmp_path,
                                                                              run_cli):
    """A real torn write (the kernel's file size limit stops it mid-record), then a rerun without the limit."""
    out = tmp_path / "fleet"
    args = ["fleet", "--model", str(tiny_model_dir), "--data-dir", str(data_dir), "--simulated", "2",
            "--budget-percentile", "40", "--refine", "2", "--out", str(out), "-q"]
    full = subprocess.run([sys.executable, "-m", "edgeopt_plugins.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300,
                          preexec_fn=_limit_file_size(12_000))
    assert full.returncode == 2, full.stderr[-3000:]
    assert len(full.stderr.strip().splitlines()) == 1 and "Traceback" not in full.stderr
    assert "fleet.journal: File too large" in full.stderr
    code, stdout, err = run_cli(*args)
    assert code == 0, err
    assert "2/2 devices" in stdout and "refine: 4 trials" in stdout
