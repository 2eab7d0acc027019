"""Reliability: bad inputs rejected, faults injected and survived, concurrent workers without loss.

- **Bad input**: the whole catalog of :mod:`benchmarks._bad_inputs` (every command,
  malformed files, unknown names, bad model folders...): each must exit 2 with one
  line, no traceback and no output file.
- **Faults**: measurements that raise, hang past their timeout or return NaN inside an
  Optuna study driven by our sampler and inside a refining fleet; a fleet process
  killed with SIGKILL and rerun.
- **Concurrency**: 4 processes share one study per storage kind (journal file, SQLite,
  PostgreSQL when ``EDGEOPT_TEST_POSTGRES_URL`` is set), each adding trials with our
  sampler; afterwards every trial must be complete and numbered exactly once.
- **Journal damage**: a fleet journal torn by a kill, a full disk (a real half write, stopped by
  the kernel's file size limit), an older writer's glued record, or damaged in the middle; the
  run must resume from its last whole record (the middle damage: refused naming file and
  offset). Optuna's own journal backend meets the same damage in the same run, as a baseline.
- **Atomic model saves**: a save killed with SIGKILL at each of its steps, or failed by a full
  disk (ENOSPC, EFBIG, EDQUOT) at each write, must leave the old or the new model loadable.
- **Credential masking**: every credential form in a storage URL, in what reports and logs show
  and in the error of a failed connection.

Run: ``python -m benchmarks.reliability``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from benchmarks import _faults
from benchmarks._common import command_line, save_result
from edgeopt_plugins.data import resolve_data_dir

NAME = "reliability"
PROCESSES = 4
TRIALS_PER_PROCESS = 15


def _bad_inputs(work: Path, data_dir: Path, model_dir: Path) -> dict[str, Any]:
    from benchmarks._bad_inputs import build_cases, check_case, prepare_workdir
    from edgeopt_plugins.cli import main

    results = [check_case(c, main) for c in build_cases(prepare_workdir(work / "bad", data_dir, model_dir))]
    categories: dict[str, dict[str, int]] = {}
    for r in results:
        cat = categories.setdefault(str(r["category"]), {"tried": 0, "clean": 0})
        cat["tried"] += 1
        cat["clean"] += int(bool(r["clean"]))
    return {"tried": len(results), "clean": sum(bool(r["clean"]) for r in results), "by_category": categories,
            "failures": [r for r in results if not r["clean"]]}


def _study_faults(model_dir: Path, data_dir: Path) -> dict[str, Any]:
    """Our sampler in a study whose measurement raises, hangs or returns NaN one trial in four."""
    from edgeopt_plugins.data import load_table
    from edgeopt_plugins.devices import DeviceProfile
    from edgeopt_plugins.exceptions import MeasurementError
    from edgeopt_plugins.fleet import guarded
    from edgeopt_plugins.samplers import DeviceConditionedSampler
    from edgeopt_plugins.spaces import get_space

    table = load_table("nb201", data_dir=data_dir)
    truth = dict(zip(table.archs, table.column("pixel3")))
    budget = float(np.percentile(table.column("pixel3"), 40))
    faults = {1: "raise", 2: "hang", 3: "nan"}
    calls = [0]
    injected = [0]

    def measure(arch: str) -> float:
        calls[0] += 1
        kind = faults.get(calls[0] % 4)
        injected[0] += kind is not None
        if kind == "raise":
            raise OSError("device disconnected")
        if kind == "hang":
            time.sleep(5)
        if kind == "nan":
            return float("nan")
        return truth[arch]

    safe = guarded(measure, timeout_s=0.5)
    space = get_space("nb201")
    sampler = DeviceConditionedSampler(model=model_dir, profile=DeviceProfile.from_table(table, "pixel3", k=10, seed=0),
                                       latency_budget_ms=budget, seed=0)

    def objective(trial: optuna.Trial) -> float:
        arch = space.suggest(trial)
        latency = safe(arch)
        trial.set_user_attr("latency_ms", latency)
        return 1.0 / latency

    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=16, catch=(MeasurementError,))
    states = [t.state.name for t in study.trials]
    return {"trials": len(states), "failed": states.count("FAIL"), "complete": states.count("COMPLETE"),
            "injected": injected[0], "survived": len(states) == 16}


def _sigkill_fleet(model_dir: Path, data_dir: Path, work: Path) -> dict[str, Any]:
    """Kill a refining fleet with SIGKILL mid-run, rerun it, and check nothing is lost or done twice."""
    from optuna.trial import TrialState

    from edgeopt_plugins.fleet import DeviceLedger, FleetSettings, open_storage, run_fleet

    out = work / "killed"
    argv = [sys.executable, "-m", "edgeopt_plugins.cli", "fleet", "--model", str(model_dir), "--data-dir",
            str(data_dir), "--simulated", "8", "--budget-percentile", "40", "--refine", "4", "--workers", "2",
            "--out", str(out), "--quiet"]
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(argv, env={**os.environ, "PYTHONPATH": str(root)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not (out / "fleet.json").exists() and time.time() < deadline:
        time.sleep(0.2)
    import json

    settings = FleetSettings.from_json(json.loads((out / "fleet.json").read_text()))
    ledger = DeviceLedger(open_storage(out / "fleet.journal"), settings.run_name)
    while time.time() < deadline and len(ledger.results()) < 2:
        time.sleep(0.3)
    done_at_kill = len(ledger.results())
    os.killpg(proc.pid, signal.SIGKILL)  # the fleet and its worker processes
    proc.wait(timeout=30)
    report = run_fleet(settings, out, progress=False)
    storage = open_storage(out / "fleet.journal")
    complete = []
    for row in report.rows:
        study = optuna.load_study(study_name=ledger.device_study_name(row["device"]), storage=storage)
        complete.append(sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)))
    return {"devices": 8, "done_before_kill": done_at_kill, "done_after_rerun": len(report.rows),
            "studies_with_exactly_4_trials": sum(c == 4 for c in complete),
            "stale_trials_failed": report.summary.get("refine", {}).get("stale_trials", 0),
            "survived": len(report.rows) == 8 and all(c == 4 for c in complete)}


def _worker(storage_url: str, study_name: str, model_dir: str, data_dir: str, seed: int) -> None:
    from edgeopt_plugins.data import load_table
    from edgeopt_plugins.devices import DeviceProfile
    from edgeopt_plugins.fleet import open_storage
    from edgeopt_plugins.samplers import DeviceConditionedSampler
    from edgeopt_plugins.spaces import get_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = load_table("nb201", data_dir=data_dir)
    truth = dict(zip(table.archs, table.column("raspi4")))
    budget = float(np.percentile(table.column("raspi4"), 50))
    sampler = DeviceConditionedSampler(model=model_dir, profile=DeviceProfile.from_table(table, "raspi4", k=10, seed=0),
                                       latency_budget_ms=budget, seed=seed)
    study = optuna.load_study(study_name=study_name, storage=open_storage(storage_url), sampler=sampler)
    space = get_space("nb201")

    def objective(trial: optuna.Trial) -> float:
        arch = space.suggest(trial)
        trial.set_user_attr("latency_ms", truth[arch])
        return -truth[arch]

    study.optimize(objective, n_trials=TRIALS_PER_PROCESS)


def _concurrency(model_dir: Path, data_dir: Path, work: Path) -> dict[str, Any]:
    from edgeopt_plugins.fleet import open_storage

    kinds = {"journal": str(work / "c.journal"), "sqlite": f"sqlite:///{work / 'c.db'}"}
    if os.environ.get("EDGEOPT_TEST_POSTGRES_URL"):
        kinds["postgresql"] = os.environ["EDGEOPT_TEST_POSTGRES_URL"]
    out = {}
    ctx = mp.get_context("spawn")
    for kind, url in kinds.items():
        name = f"concurrency-{kind}-{os.getpid()}-{int(time.time())}"
        optuna.create_study(study_name=name, storage=open_storage(url), direction="maximize")
        procs = [ctx.Process(target=_worker, args=(url, name, str(model_dir), str(data_dir), i))
                 for i in range(PROCESSES)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=600)
        trials = optuna.load_study(study_name=name, storage=open_storage(url)).get_trials(deepcopy=False)
        numbers = sorted(t.number for t in trials)
        out[kind] = {"processes": PROCESSES, "expected_trials": PROCESSES * TRIALS_PER_PROCESS,
                     "trials": len(trials), "complete": sum(t.state.name == "COMPLETE" for t in trials),
                     "numbers_unique_and_contiguous": numbers == list(range(len(trials))),
                     "exit_codes": [p.exitcode for p in procs]}
        out[kind]["lost_or_duplicated"] = (out[kind]["expected_trials"] - out[kind]["complete"]
                                           + (0 if out[kind]["numbers_unique_and_contiguous"] else 1))
    return out


JOURNAL_DEVICES = ("phone", "board", "watch", "tv")


def _journal_with_two_devices(path: Path, open_journal: Any) -> None:
    from edgeopt_plugins.fleet import DeviceLedger

    ledger = DeviceLedger(open_journal(path), "run")
    for device in JOURNAL_DEVICES[:2]:
        ledger.complete(ledger.claim_next([device]), {"device": device})


def _resume(path: Path, open_journal: Any) -> str:
    """Finish the remaining devices on a damaged journal: ``resumed``, ``refused at byte N``, or what crashed."""
    from edgeopt_plugins.exceptions import StorageError
    from edgeopt_plugins.fleet import DeviceLedger

    try:
        ledger = DeviceLedger(open_journal(path), "run", lease_s=0.1)
        while (claim := ledger.claim_next(list(JOURNAL_DEVICES))) is not None:
            ledger.complete(claim, {"device": claim.device})
        done = sorted(ledger.results())
    except StorageError as err:
        return "refused, naming file and byte" if "at byte" in str(err) and path.name in str(err) else f"refused: {err}"
    except Exception as err:  # noqa: BLE001 - a crash is what the baseline is measured for
        return f"crashed: {type(err).__name__}: {str(err)[:80]}"
    return "resumed" if done == sorted(JOURNAL_DEVICES) else f"lost devices: {done}"


def _journal_damage(work: Path) -> dict[str, Any]:
    """Every kind of journal damage, on our journal files and on Optuna's own file backend."""
    import warnings

    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from edgeopt_plugins.fleet import open_storage

    backends = {"ours": lambda p: open_storage(p, on_repair=lambda note: None),
                "optuna": lambda p: JournalStorage(JournalFileBackend(str(p)))}
    out: dict[str, Any] = {}
    for name, open_journal in backends.items():
        outcomes = {}
        for kind in (*_faults.JOURNAL_DAMAGE, "full disk mid-write"):
            path = work / f"journal-{name}-{kind.replace(' ', '-')}.journal"
            _journal_with_two_devices(path, open_journal)
            if kind == "full disk mid-write":
                _faults.fill_disk_mid_write(path, JOURNAL_DEVICES[2], name)
            else:
                _faults.damage_journal(path, kind)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                outcomes[kind] = _resume(path, open_journal)
        expected = {k: "refused, naming file and byte" if k == _faults.REFUSED_DAMAGE else "resumed" for k in outcomes}
        out[name] = {"outcomes": outcomes, "handled": sum(outcomes[k] == expected[k] for k in outcomes),
                     "kinds": len(outcomes)}
    return out


def _atomic_saves(work: Path) -> dict[str, Any]:
    """A model save killed at each step, or failed by a full disk at each write: which model loads after."""
    import errno

    def outcome(folder: Path) -> float | str:
        try:
            return _faults.load_model(folder)
        except Exception as err:  # noqa: BLE001 - an unloadable folder is the failure measured here
            return f"unloadable: {str(err)[:80]}"

    kills = []
    for i, (point, nth, when, survivor) in enumerate(_faults.SAVE_KILL_POINTS):
        folder = work / f"save-kill-{i}"
        _faults.save_model(folder, 1.0)
        code = _faults.kill_during_save(folder, point, nth, 2.0)
        loaded = outcome(folder)
        kills.append({"when": when, "killed": code == -9, "loaded": loaded,
                      "ok": loaded == {"old": 1.0, "new": 2.0}[survivor]})
    full = []
    for nth in _faults.SAVE_WRITES:
        for code in _faults.DISK_FULL:
            folder = work / f"save-full-{nth}-{code}"
            _faults.save_model(folder, 1.0)
            try:
                with _faults.disk_full_at_fsync(nth, code):
                    _faults.save_model(folder, 2.0)
                named = False
            except OSError as err:
                named = bool(err.filename)
            leftovers = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
            loaded = outcome(folder)
            full.append({"write": "tensors" if nth == 1 else "manifest", "error": errno.errorcode[code],
                         "loaded": loaded, "file_named": named, "temporary_files_left": leftovers,
                         "ok": loaded == 1.0 and named and not leftovers})
    return {"kills": kills, "disk_full": full, "kills_ok": sum(k["ok"] for k in kills),
            "disk_full_ok": sum(f["ok"] for f in full)}


def _credential_masking() -> dict[str, Any]:
    """Every credential form, in the storage's description (summary.json, logs) and in its connection error."""
    from edgeopt_plugins.fleet import describe_storage, open_storage

    checks = []
    for url in _faults.CREDENTIAL_URLS:
        try:
            open_storage(url, retries=1)
            error = ""
        except Exception as err:  # noqa: BLE001 - the message is what is checked
            error = str(err)
        checks.append({"form": url.split("//", 1)[1].replace(_faults.SECRET, "SECRET"),
                       "description_masked": _faults.SECRET not in describe_storage(url),
                       "error_masked": bool(error) and _faults.SECRET not in error})
    masked = sum(c["description_masked"] + c["error_masked"] for c in checks)
    return {"checks": checks, "masked": masked, "places": 2 * len(checks)}


def run(*, quick: bool = False, model_dir: Path | None = None, progress: bool = True) -> dict[str, Any]:
    from edgeopt_plugins.optimizer import FitConfig, fit_from_data

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failed trials are expected here
    data_dir = resolve_data_dir()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if model_dir is None:
            model_dir = work / "model"
            fit_from_data("nb201", data_dir=data_dir, exclude_devices=["pixel3", "raspi4"], config=FitConfig.tiny(),
                          seed=0).save(model_dir)
        result = {
            "quick": quick,
            "bad_inputs": _bad_inputs(work, data_dir, model_dir),
            "study_faults": _study_faults(model_dir, data_dir),
            "fleet_sigkill": _sigkill_fleet(model_dir, data_dir, work),
            "concurrency": _concurrency(model_dir, data_dir, work),
            "journal_damage": _journal_damage(work),
            "atomic_saves": _atomic_saves(work),
            "credential_masking": _credential_masking(),
        }
    save_result(NAME, result)
    return result


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    b = result["bad_inputs"]
    rows = [{"figure": "bad inputs rejected cleanly", "target": "all", "measured": f"{b['clean']}/{b['tried']}",
             "met": b["clean"] == b["tried"]},
            {"figure": "measurement faults in a study (raise/hang/NaN)", "target": "study goes on",
             "measured": f"{result['study_faults']['failed']} failed trials, study completed",
             "met": result["study_faults"]["survived"]},
            {"figure": "fleet killed with SIGKILL, rerun", "target": "nothing lost or done twice",
             "measured": f"{result['fleet_sigkill']['done_after_rerun']}/8 devices, "
                         f"{result['fleet_sigkill']['studies_with_exactly_4_trials']}/8 studies exact",
             "met": result["fleet_sigkill"]["survived"]}]
    for kind, c in result["concurrency"].items():
        rows.append({"figure": f"{c['processes']} processes x 1 study ({kind})", "target": "0 lost or duplicated",
                     "measured": f"{c['complete']}/{c['expected_trials']} complete", "met": c["lost_or_duplicated"] == 0})
    j, s, m = result["journal_damage"], result["atomic_saves"], result["credential_masking"]
    rows += [{"figure": "fleet journal damage survived", "target": "all kinds",
              "measured": f"{j['ours']['handled']}/{j['ours']['kinds']} (Optuna's backend: "
                          f"{j['optuna']['handled']}/{j['optuna']['kinds']})",
              "met": j["ours"]["handled"] == j["ours"]["kinds"]},
             {"figure": "model saves killed / disk full", "target": "a model always loads",
              "measured": f"{s['kills_ok']}/{len(s['kills'])} kills, "
                          f"{s['disk_full_ok']}/{len(s['disk_full'])} full disks",
              "met": s["kills_ok"] == len(s["kills"]) and s["disk_full_ok"] == len(s["disk_full"])},
             {"figure": "credentials masked", "target": "all", "measured": f"{m['masked']}/{m['places']}",
              "met": m["masked"] == m["places"]}]
    return rows


def report(result: dict[str, Any]) -> str:
    b = result["bad_inputs"]
    lines = ["## Reliability: bad input, faults, concurrency", "",
             f"**Bad input**: {b['tried']} bad inputs tried across every command, {b['clean']} rejected cleanly "
             "(exit code 2, one line naming what/where/why, no traceback, no output file).", "",
             "| category | tried | clean |", "|---|---|---|"]
    lines += [f"| {cat} | {v['tried']} | {v['clean']} |" for cat, v in sorted(b["by_category"].items())]
    f = result["study_faults"]
    k = result["fleet_sigkill"]
    lines += ["", f"**Faults**: in an Optuna study driven by `DeviceConditionedSampler`, {f['injected']} of "
              f"{f['trials']} measurements raised, hung past a 0.5 s timeout or returned NaN: {f['failed']} trials "
              f"were marked failed with the reason and the study completed all {f['trials']} trials. A refining "
              f"fleet (8 devices, 4 trials each, 2 workers) was killed with SIGKILL after {k['done_before_kill']} "
              f"devices; the rerun finished {k['done_after_rerun']}/8 devices with exactly 4 completed trials in "
              f"{k['studies_with_exactly_4_trials']}/8 studies ({k['stale_trials_failed']} trials left running by "
              "the killed workers were marked failed).", "",
              f"**Concurrency**: {PROCESSES} processes sharing one study, {TRIALS_PER_PROCESS} trials each, "
              "with our sampler:", "", "| storage | trials complete | numbers unique and contiguous | lost or duplicated |",
              "|---|---|---|---|"]
    for kind, c in result["concurrency"].items():
        lines.append(f"| {kind} | {c['complete']}/{c['expected_trials']} | {c['numbers_unique_and_contiguous']} | "
                     f"{c['lost_or_duplicated']} |")
    lines += _damage_report(result)
    lines += ["", "Reproduce: `python -m benchmarks.reliability` (PostgreSQL row: with `EDGEOPT_TEST_POSTGRES_URL` "
              "set, as `.ci/run` does).", ""]
    return "\n".join(lines)


def _damage_report(result: dict[str, Any]) -> list[str]:
    j, s, m = result["journal_damage"], result["atomic_saves"], result["credential_masking"]
    lines = ["", f"**Journal damage**: a fleet journal holding 2 finished devices, damaged, then the run continued "
             f"for all 4: our journal files handled {j['ours']['handled']}/{j['ours']['kinds']} kinds, Optuna's own "
             f"file backend {j['optuna']['handled']}/{j['optuna']['kinds']} (a corrupted middle record must be "
             "refused with the file and byte offset, everything else resumed from the last whole record).", "",
             "| damage | our journal | Optuna's JournalFileBackend |", "|---|---|---|"]
    lines += [f"| {kind} | {j['ours']['outcomes'][kind]} | {j['optuna']['outcomes'][kind]} |"
              for kind in j["ours"]["outcomes"]]
    lines += ["", f"**Atomic model saves**: a save over an existing model killed with SIGKILL at each of its "
              f"{len(s['kills'])} steps left a loadable model {s['kills_ok']}/{len(s['kills'])} times (the old one "
              "before the manifest's rename, the new one after); a full disk (ENOSPC, EFBIG, EDQUOT) at each write "
              f"kept the old model, named the file and left no temporary file {s['disk_full_ok']}/"
              f"{len(s['disk_full'])} times.", "",
              f"**Credential masking**: {len(m['checks'])} credential forms (user password, `?password=`, "
              "`sslpassword`, tokens and API keys, percent-encoded, with a bad port or IPv6 host) in the storage "
              f"description that summary.json and logs show and in the connection error: {m['masked']}/"
              f"{m['places']} masked."]
    return lines


if __name__ == "__main__":
    command_line(run, report, __doc__)
