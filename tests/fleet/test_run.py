"""Fleet runs end to end: one-shot and refined, resume, workers, SIGKILL, faults, PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from edgeopt_plugins.devices import DeviceProfile
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.fleet import DeviceLedger, FleetSettings, TargetSpec, open_storage, run_fleet
from edgeopt_plugins.spaces import get_space

SPACE = get_space("nb201")
MEASURE = Path(__file__).with_name("_measure_cmd.py")


def settings(model_dir, data_dir, **kwargs) -> FleetSettings:
    target_keys = {"profiles_dir", "table_devices", "simulated", "profile_size", "seed", "monotonicity"}
    spec = TargetSpec("nb201", data_dir=str(data_dir), **{k: v for k, v in kwargs.items() if k in target_keys})
    rest = {k: v for k, v in kwargs.items() if k not in target_keys}
    rest.setdefault("budget_percentile", 40.0)
    return FleetSettings(spec, str(model_dir), **rest)


def study_trials(storage_url: str, run: str, device: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=DeviceLedger(open_storage(storage_url), run).device_study_name(device),
                              storage=open_storage(storage_url))
    return study.get_trials(deepcopy=False)


def test_one_shot_fleet_writes_designs_and_resumes(tiny_model_dir, data_dir, tmp_path):
    s = settings(tiny_model_dir, data_dir, simulated=30, table_devices=("pixel3",), chunk_size=8, top_k=2)
    report = run_fleet(s, tmp_path, progress=False)
    designs = pd.read_csv(tmp_path / "designs.csv")
    assert list(designs.columns[:3]) == ["device", "kind", "budget_ms"]
    assert {"arch", "predicted_latency_ms"} <= set(designs.columns)
    assert len(designs) == 31 and designs["device"].is_unique
    assert set(designs["kind"]) == {"simulated", "table"}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["devices_done"] == 31 and summary["with_true_latency"] >= 25
    assert (tmp_path / "fleet.png").stat().st_size > 5000
    first = report.rows
    again = run_fleet(s, tmp_path, progress=False)  # everything already done: nothing recomputed
    assert again.rows == first
    assert report.summary["reused_devices"] == 0 and again.summary["reused_devices"] == 31
    other = settings(tiny_model_dir, data_dir, simulated=31, chunk_size=8)
    with pytest.raises(InputError, match="holds a fleet run with other settings"):
        run_fleet(other, tmp_path, progress=False)


def test_refine_with_two_workers_completes_every_study_exactly(tiny_model_dir, data_dir, tmp_path):
    s = settings(tiny_model_dir, data_dir, simulated=5, refine=3)
    report = run_fleet(s, tmp_path, workers=2, progress=False)
    assert len(report.rows) == 5
    url = str(tmp_path / "fleet.journal")
    for row in report.rows:
        trials = study_trials(url, s.run_name, row["device"])
        assert [t.state for t in trials].count(TrialState.COMPLETE) == 3 == row["refine_trials"]
        assert row["refined_latency_ms"] <= row["budget_ms"] * 1.5


def _profiles(folder: Path, n: int) -> None:
    folder.mkdir()
    for i in range(n):
        archs = SPACE.sample(6, seed=i)
        lat = 1.0 + SPACE.flops(archs) / (20.0 + i)
        DeviceProfile.from_dict("nb201", dict(zip(archs, lat)), name=f"board{i}").write(folder / f"board{i}.csv")


def test_sigkill_mid_run_then_rerun_loses_nothing(tiny_model_dir, data_dir, tmp_path):
    _profiles(tmp_path / "profiles", 6)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "edgeopt_plugins.cli", "fleet", "--model", str(tiny_model_dir), "--data-dir",
            str(data_dir), "--profiles", str(tmp_path / "profiles"), "--budget-percentile", "50", "--refine", "3",
            "--measure-cmd", f"{sys.executable} {MEASURE} --sleep 0.4 {{arch}}", "--out", str(out), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    s = FleetSettings.from_json(json.loads(_wait_for(out / "fleet.json").read_text()))
    ledger = DeviceLedger(open_storage(out / "fleet.journal"), s.run_name)
    names = [f"board{i}" for i in range(6)]
    deadline = time.time() + 240
    while ledger.status(names)["done"] < 2 and time.time() < deadline:
        time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    done_before = ledger.status(names)["done"]
    assert 2 <= done_before < 6, "the kill must land mid-run"
    report = run_fleet(s, out, progress=False)
    assert sorted(r["device"] for r in report.rows) == names
    url = str(out / "fleet.journal")
    for name in names:
        trials = study_trials(url, s.run_name, name)
        assert [t.state for t in trials].count(TrialState.COMPLETE) == 3
        assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in trials)
    assert report.summary["refine"]["trials"] == 18


def _wait_for(path: Path, timeout: float = 240.0) -> Path:
    deadline = time.time() + timeout
    while not path.exists():
        if time.time() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.2)
    return path


def test_failing_measurements_are_counted_and_the_fleet_goes_on(tiny_model_dir, data_dir, tmp_path):
    _profiles(tmp_path / "profiles", 2)
    s = settings(tiny_model_dir, data_dir, profiles_dir=str(tmp_path / "profiles"), refine=4,
                 measure_cmd=f"{sys.executable} {MEASURE} --fail-on avg_pool --nan-on skip_connect~2 {{arch}}",
                 measure_timeout_s=30.0)
    report = run_fleet(s, tmp_path / "out", progress=False)
    assert len(report.rows) == 2
    # every device got measured designs despite the failures, and stopped at the trial budget
    assert all(1 <= r["refine_trials"] <= 4 and r["refine_trials"] + r["refine_failed"] >= 4 for r in report.rows)
    url = str(tmp_path / "out" / "fleet.journal")
    failures = [t.user_attrs.get("edgeopt:failure") for r in report.rows
                for t in study_trials(url, s.run_name, r["device"]) if t.state == TrialState.FAIL]
    assert report.summary["refine"]["failed_trials"] == len(failures)
    assert all("measuring" in f for f in failures)


@pytest.mark.postgres
def test_postgres_fleet_of_50_devices_with_3_workers(tiny_model_dir, data_dir, tmp_path, postgres_url_or_skip,
                                                     run_name):
    storage_url = postgres_url_or_skip
    # extra: a run name of its own, so reruns against the same database never resume an old run.
    s = settings(tiny_model_dir, data_dir, simulated=50, refine=2, extra={"test_run": run_name})
    report = run_fleet(s, tmp_path, storage=storage_url, workers=3, progress=False)
    assert len(report.rows) == 50 and len({r["device"] for r in report.rows}) == 50
    claims = [st for st in open_storage(storage_url).get_all_studies()
              if st.study_name.startswith(f"{s.run_name}::claim::")]
    assert len(claims) == 50  # every device claimed exactly once
    for row in report.rows:
        trials = study_trials(storage_url, s.run_name, row["device"])
        assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
        assert [t.number for t in trials] == [0, 1]


def test_cli_fleet_bad_input(run_cli, tiny_model_dir, data_dir, tmp_path):
    base = ["fleet", "--model", str(tiny_model_dir), "--data-dir", str(data_dir), "--out", str(tmp_path / "o")]
    cases = [
        (base + ["--budget-percentile", "40"], "no target devices"),
        (base + ["--simulated", "3", "--budget-percentile", "0"], "--budget-percentile must be in"),
        (base + ["--table-devices", "nope", "--budget-percentile", "40"], "unknown device 'nope'"),
        (base + ["--simulated", "3", "--budget-percentile", "40", "--monotonicity", "2"], "--monotonicity must be"),
        (base + ["--simulated", "3", "--budget-percentile", "40", "--storage", str(tmp_path / "x.txt")],
         "expected a database URL"),
        (["fleet", "--model", str(tmp_path / "none"), "--simulated", "2", "--budget-percentile", "40", "--out",
          str(tmp_path / "o2")], "not"),
    ]
    for argv, fragment in cases:
        code, _, err = run_cli(*argv)
        assert code == 2, (argv, err)
        assert fragment in err and "Traceback" not in err
    code, _, err = run_cli(*base, "--simulated", "2", "--latency-budget-ms", "3", "--budget-percentile", "40")
    assert code == 2 and "not allowed with argument" in err


def test_cli_fleet_rerun_says_what_it_reuses(run_cli, tiny_model_dir, data_dir, tmp_path):
    import shutil

    shutil.copytree(tiny_model_dir, tmp_path / "out" / "model")  # as if an earlier run had fitted it
    argv = ["fleet", "--data-dir", str(data_dir), "--table-devices", "pixel3,raspi4", "--budget-percentile", "40",
            "--out", str(tmp_path / "out"), "--quiet"]
    code, out, err = run_cli(*argv)
    assert code == 0, err
    assert "reused" not in out
    code, out, err = run_cli(*argv[:-1])
    assert code == 0, err
    assert f"no --model: reusing {tmp_path / 'out' / 'model'}, fitted by an earlier run" in out
    assert ("reused the stored results of 2 device(s) from an earlier run of these settings (storage "
            f"{tmp_path / 'out' / 'fleet.journal'}); nothing left to compute") in out
