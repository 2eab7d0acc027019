"""``run_fleet``: recommend (and optionally refine) designs for every device of a fleet.

Work is split into *units* (a chunk of devices for one-shot recommendation, one
device when refining) that workers claim through the :class:`DeviceLedger` in a
shared storage. Every unit's result is stored there before the unit counts as
done, so rerunning the same command after a crash or an interruption resumes:
finished units are skipped, abandoned ones are taken over.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna

from edgeopt_plugins._io import display_path, parse_json, write_json
from edgeopt_plugins._values import check_seed
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

    def __post_init__(self) -> None:
        check_seed(self.seed)
        for name in ("refine", "chunk_size", "top_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "refine" else 1):
                raise InputError(f"{name} must be a {'non-negative' if name == 'refine' else 'positive'} integer, "
                                 f"got {value!r}")
        timeout = self.measure_timeout_s
        if timeout is not None and (not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf):
            raise InputError(f"measure_timeout_s must be a positive number of seconds, got {timeout!r}")

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["targets"] = self.targets.to_json()
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> FleetSettings:
        """Settings from :meth:`to_json` (what ``fleet.json`` holds).

        Raises:
            InputError: for anything that is not such settings.
        """
        try:
            targets = dict(obj["targets"])
            targets["table_devices"] = tuple(targets.get("table_devices", ()))
            return cls(**{**obj, "targets": TargetSpec(**targets)})
        except (KeyError, TypeError, ValueError) as err:
            if isinstance(err, InputError):
                raise
            raise InputError(f"not fleet settings ({type(err).__name__}: {str(err)[:120]})") from None

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


@contextlib.contextmanager
def _quiet_logs(quiet: bool) -> Iterator[None]:
    """Silence the fleet's per-trial warnings (a failed measurement) while the block runs, when ``quiet``."""
    logger = logging.getLogger("edgeopt_plugins.fleet")
    level = logger.level
    if quiet:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def work(settings: FleetSettings, storage_url: str, *, lease_s: float = 120.0,
         measure: Callable[[str], float] | None = None, on_unit: Callable[[int], None] | None = None,
         quiet: bool = False) -> int:
    """Claim and process units until none is left; returns how many this worker finished."""
    with _quiet_logs(quiet):
        return _work(settings, storage_url, lease_s=lease_s, measure=measure, on_unit=on_unit)


def _work(settings: FleetSettings, storage_url: str, *, lease_s: float, measure: Callable[[str], float] | None,
          on_unit: Callable[[int], None] | None) -> int:
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


def _worker_main(settings_json: dict[str, Any], storage_url: str, lease_s: float, quiet: bool) -> None:
    work(FleetSettings.from_json(settings_json), storage_url, lease_s=lease_s, quiet=quiet)


def _pinned(out_dir: Path, settings: FleetSettings) -> bool:
    """Whether ``out_dir`` already pins these settings; refuses other settings (or a damaged ``fleet.json``)."""
    path = out_dir / SETTINGS_FILE
    if not path.exists():
        return False
    try:
        previous = parse_json(path.read_bytes())
    except ValueError as err:
        raise InputError(f"{display_path(path)}: not valid JSON ({err}); remove it or use another --out") from None
    if previous != settings.to_json():
        raise InputError(
            f"{display_path(out_dir)} holds a fleet run with other settings ({SETTINGS_FILE}); "
            "use another --out, or rerun with the same settings to resume"
        )
    return True


@contextlib.contextmanager
def _pinning(out_dir: Path, settings: FleetSettings, journal: Path | None, ledger: DeviceLedger) -> Iterator[None]:
    """Write ``fleet.json`` for the block; if the block fails before any device is done, take it back (and the
    journal this run created), so that a refused run never pins its settings."""
    path = out_dir / SETTINGS_FILE
    write_json(path, settings.to_json())
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            if not ledger.results():
                path.unlink()
                if journal is not None:
                    journal.unlink()
        raise


def run_fleet(
    settings: FleetSettings,
    out_dir: str | os.PathLike[str],
    *,
    storage: str | None = None,
    workers: int = 1,
    lease_s: float = 120.0,
    measure: Callable[[str], float] | None = None,
    progress: bool = True,
    quiet: bool = False,
) -> FleetReport:
    """Run (or resume) a fleet and write ``designs.csv``, ``results.json``, ``summary.json`` and plots.

    A run refused before it finished a device (a bad setting, an unreachable storage)
    leaves no ``fleet.json`` and no journal behind, so the corrected command starts afresh.

    Args:
        settings: What to do.
        out_dir: Output folder (its ``fleet.json`` pins the settings of the run).
        storage: Shared storage URL (default: a journal file in ``out_dir``).
        workers: Worker processes on this machine (1: in this process).
        lease_s: A worker silent for this long loses its devices to others.
        measure: A Python function measuring a design on a profile-only device
            (``workers`` must be 1 unless it can be pickled).
        progress: Show a progress bar over devices.
        quiet: Do not log a line per failed measurement (the summary still counts them).

    Returns:
        The report (rows in device order, summary, written paths).
    """
    from tqdm.auto import tqdm

    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{display_path(out)}: is a file, expected an output folder")
    pinned = _pinned(out, settings)
    _, targets = _problem(settings)  # validates everything before any work
    out.mkdir(parents=True, exist_ok=True)
    url = storage or str(out / "fleet.journal")
    new_journal = Path(url) if storage is None and not Path(url).exists() else None
    repairs: list[str] = []
    ledger = DeviceLedger(open_storage(url, on_repair=_note(repairs)), settings.run_name, lease_s=lease_s)
    with contextlib.nullcontext() if pinned else _pinning(out, settings, new_journal, ledger):
        units = _units(settings, targets)
        sizes = {name: len(ids) for name, ids in units.items()}
        start = time.perf_counter()
        bar = tqdm(total=len(targets), desc="devices", unit="dev", disable=not progress)
        reused = sum(sizes[d] for d in ledger.results() if d in sizes)  # finished by an earlier run
        bar.update(reused)
        if workers == 1:
            work(settings, url, lease_s=lease_s, measure=measure, on_unit=bar.update, quiet=quiet)
        else:
            if not _run_workers(settings, url, lease_s, workers, quiet, bar, ledger, sizes):
                # A worker died: finish (and take over) what it left, here.
                work(settings, url, lease_s=lease_s, measure=measure, quiet=quiet)
        results = ledger.results()
        bar.update(sum(sizes[d] for d in results if d in sizes) - bar.n)
        bar.close()
    rows = [row for name in units if name in results for row in results[name]["rows"]]
    order = {name: i for i, name in enumerate(targets.names)}
    rows.sort(key=lambda r: order[r["device"]])
    meta = {"run": settings.run_name, "storage": describe_storage(url), "workers": workers,
            "wall_seconds": time.perf_counter() - start, "devices": len(targets), "reused_devices": reused,
            "pending": [n for n in units if n not in results], "storage_repairs": repairs}
    return write_report(out, rows, settings.to_json(), meta)


def _note(repairs: list[str]) -> Callable[[str], None]:
    """Report a journal repair as a warning and keep it for the summary."""
    def note(line: str) -> None:
        logging.getLogger("edgeopt_plugins.fleet").warning(line)
        repairs.append(line)
    return note


def _run_workers(settings: FleetSettings, url: str, lease_s: float, workers: int, quiet: bool, bar: Any,
                 ledger: DeviceLedger, sizes: dict[str, int]) -> bool:
    """Worker processes until all exit (on an interruption they are stopped too); whether all succeeded."""
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=(settings.to_json(), url, lease_s, quiet), daemon=False)
             for _ in range(workers)]
    try:
        for p in procs:
            p.start()
        while any(p.is_alive() for p in procs):
            time.sleep(0.5)
            done = sum(sizes[d] for d in ledger.results() if d in sizes)
            bar.update(done - bar.n)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=30)
    return all(p.exitcode == 0 for p in procs)
