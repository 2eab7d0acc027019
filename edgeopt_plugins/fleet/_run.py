"""``run_fleet``: recommend (and optionally refine) designs for every device of a fleet.

Work is split into *units* (a chunk of devices for one-shot recommendation, one
device when refining) that workers claim through the :class:`DeviceLedger` in a
shared storage. Every unit's result is stored there before the unit counts as
done, so rerunning the same command after a crash or an interruption resumes:
finished units are skipped, abandoned ones are taken over.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna

from edgeopt_plugins._io import display_path, write_json
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.fleet._ledger import DeviceLedger
from edgeopt_plugins.fleet._measure import CommandMeasurer
from edgeopt_plugins.fleet._problem import FleetProblem
from edgeopt_plugins.fleet._refine import refine_device
from edgeopt_plugins.fleet._report import FleetReport, write_report
from edgeopt_plugins.fleet._storage import describe_storage, open_storage
from edgeopt_plugins.fleet._targets import TargetSpec, Targets, build_targets

__all__ = ["FleetSettings", "run_fleet"]

SETTINGS_FILE = "fleet.json"


@dataclass(frozen=True)
class FleetSettings:
    """What a fleet run does (JSON-able; the same settings resume the same run).

    Attributes:
        targets: Which devices.
        model_dir: Folder of the fitted :class:`~edgeopt_plugins.optimizer.ConditionedModel`.
        latency_budget_ms: One budget for all devices, or
        budget_percentile: a per-device percentile budget (see :class:`FleetProblem`).
        confidence: Confidence of the latency upper bounds.
        top_k: Designs recommended per device.
        refine: Optuna trials per device after the one-shot recommendation (0: none).
        measure_cmd: Command measuring one design on a device (for profile-only devices).
        measure_timeout_s: Timeout of one measurement.
        chunk_size: Devices per one-shot unit.
        seed: Seed of the samplers.
    """

    targets: TargetSpec
    model_dir: str
    latency_budget_ms: float | None = None
    budget_percentile: float | None = None
    confidence: float = 0.95
    top_k: int = 1
    refine: int = 0
    measure_cmd: str | None = None
    measure_timeout_s: float | None = 600.0
    chunk_size: int = 500
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["targets"] = self.targets.to_json()
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> FleetSettings:
        targets = dict(obj["targets"])
        targets["table_devices"] = tuple(targets.get("table_devices", ()))
        return cls(**{**obj, "targets": TargetSpec(**targets)})

    @property
    def run_name(self) -> str:
        """A name derived from the settings: the same settings continue the same run."""
        digest = hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:12]
        return f"fleet-{digest}"


def _units(settings: FleetSettings, targets: Targets) -> dict[str, list[int]]:
    if settings.refine:
        return {name: [i] for i, name in enumerate(targets.names)}
    size = max(1, settings.chunk_size)
    return {f"chunk-{start // size:06d}": list(range(start, min(start + size, len(targets))))
            for start in range(0, len(targets), size)}


def _problem(settings: FleetSettings) -> tuple[FleetProblem, Targets]:
    from edgeopt_plugins.optimizer import ConditionedModel

    targets = build_targets(settings.targets)
    model = ConditionedModel.load(settings.model_dir, space=targets.space)
    problem = FleetProblem(model, targets, latency_budget_ms=settings.latency_budget_ms,
                           budget_percentile=settings.budget_percentile, confidence=settings.confidence,
                           top_k=settings.top_k)
    return problem, targets


def work(settings: FleetSettings, storage_url: str, *, lease_s: float = 120.0,
         measure: Callable[[str], float] | None = None, on_unit: Callable[[int], None] | None = None) -> int:
    """Claim and process units until none is left; returns how many this worker finished."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    problem, targets = _problem(settings)
    units = _units(settings, targets)
    ledger = DeviceLedger(open_storage(storage_url), settings.run_name, lease_s=lease_s)
    if measure is None and settings.measure_cmd:
        measure = CommandMeasurer(settings.measure_cmd, timeout_s=settings.measure_timeout_s or 600.0,
                                  space=targets.space)
    finished = 0
    names = list(units)
    while (claim := ledger.claim_next(names)) is not None:
        ids = units[claim.device]
        if settings.refine:
            rows = [refine_device(problem, ledger, claim, ids[0], trials=settings.refine,
                                  measure=measure if targets.kinds[ids[0]] == "profile" else None,
                                  measure_timeout_s=settings.measure_timeout_s, seed=settings.seed)]
        else:
            with ledger.holding(claim):
                rows = problem.one_shot(ids)
        if ledger.complete(claim, {"rows": rows}):
            finished += 1
            if on_unit is not None:
                on_unit(len(ids))
    return finished


def _worker_main(settings_json: dict[str, Any], storage_url: str, lease_s: float) -> None:
    work(FleetSettings.from_json(settings_json), storage_url, lease_s=lease_s)


def _check_out_dir(out_dir: Path, settings: FleetSettings) -> None:
    path = out_dir / SETTINGS_FILE
    if path.exists():
        try:
            previous = json.loads(path.read_text())
        except json.JSONDecodeError:
            raise InputError(f"{display_path(path)}: not valid JSON; remove it or use another --out") from None
        if previous != settings.to_json():
            raise InputError(
                f"{display_path(out_dir)} holds a fleet run with other settings ({SETTINGS_FILE}); "
                "use another --out, or rerun with the same settings to resume"
            )
    else:
        write_json(path, settings.to_json())


def run_fleet(
    settings: FleetSettings,
    out_dir: str | os.PathLike[str],
    *,
    storage: str | None = None,
    workers: int = 1,
    lease_s: float = 120.0,
    measure: Callable[[str], float] | None = None,
    progress: bool = True,
) -> FleetReport:
    """Run (or resume) a fleet and write ``designs.csv``, ``results.json``, ``summary.json`` and plots.

    Args:
        settings: What to do.
        out_dir: Output folder (its ``fleet.json`` pins the settings of the run).
        storage: Shared storage URL (default: a journal file in ``out_dir``).
        workers: Worker processes on this machine (1: in this process).
        lease_s: A worker silent for this long loses its devices to others.
        measure: A Python function measuring a design on a profile-only device
            (``workers`` must be 1 unless it can be pickled).
        progress: Show a progress bar over devices.

    Returns:
        The report (rows in device order, summary, written paths).
    """
    from tqdm.auto import tqdm

    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _, targets = _problem(settings)  # validates everything before any work
    _check_out_dir(out, settings)
    url = storage or str(out / "fleet.journal")
    ledger = DeviceLedger(open_storage(url), settings.run_name, lease_s=lease_s)
    units = _units(settings, targets)
    sizes = {name: len(ids) for name, ids in units.items()}
    start = time.perf_counter()
    bar = tqdm(total=len(targets), desc="devices", unit="dev", disable=not progress)
    bar.update(sum(sizes[d] for d in ledger.results() if d in sizes))
    if workers == 1:
        work(settings, url, lease_s=lease_s, measure=measure, on_unit=bar.update)
    else:
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=_worker_main, args=(settings.to_json(), url, lease_s), daemon=False)
                 for _ in range(workers)]
        for p in procs:
            p.start()
        while any(p.is_alive() for p in procs):
            time.sleep(0.5)
            done = sum(sizes[d] for d in ledger.results() if d in sizes)
            bar.update(done - bar.n)
        if any(p.exitcode != 0 for p in procs):
            # A worker died: finish (and take over) what it left, here.
            work(settings, url, lease_s=lease_s, measure=measure)
    results = ledger.results()
    bar.update(sum(sizes[d] for d in results if d in sizes) - bar.n)
    bar.close()
    rows = [row for name in units if name in results for row in results[name]["rows"]]
    order = {name: i for i, name in enumerate(targets.names)}
    rows.sort(key=lambda r: order[r["device"]])
    meta = {"run": settings.run_name, "storage": describe_storage(url), "workers": workers,
            "wall_seconds": time.perf_counter() - start, "devices": len(targets),
            "pending": [n for n in units if n not in results]}
    return write_report(out, rows, settings.to_json(), meta)
