"""Fleet runs: many target devices, shared storage, claims that survive crashes.

Example:
    >>> from edgeopt_plugins.fleet import FleetSettings, TargetSpec, run_fleet
    >>> settings = FleetSettings(TargetSpec("nb201", simulated=100), model_dir="model/",
    ...                          budget_percentile=30)  # doctest: +SKIP
    >>> report = run_fleet(settings, "fleet-out/", workers=2)  # doctest: +SKIP
    >>> report.summary["violation_rate"]  # doctest: +SKIP
"""

from edgeopt_plugins.fleet._ledger import Claim, DeviceLedger, worker_id
from edgeopt_plugins.fleet._measure import CommandMeasurer, guarded
from edgeopt_plugins.fleet._storage import JournalFile, describe_storage, open_storage, with_retries
from edgeopt_plugins.fleet._targets import TargetSpec, Targets, build_targets
from edgeopt_plugins.fleet._problem import FleetProblem  # noqa: I001 (needs the optimizer)
from edgeopt_plugins.fleet._report import FleetReport, summarize
from edgeopt_plugins.fleet._run import FleetSettings, run_fleet

__all__ = [
    "run_fleet",
    "FleetSettings",
    "FleetReport",
    "summarize",
    "FleetProblem",
    "TargetSpec",
    "Targets",
    "build_targets",
    "DeviceLedger",
    "Claim",
    "worker_id",
    "open_storage",
    "JournalFile",
    "with_retries",
    "describe_storage",
    "guarded",
    "CommandMeasurer",
]
