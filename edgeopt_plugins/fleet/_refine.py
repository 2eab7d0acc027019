"""Refining one device's design with a short Optuna study driven by our sampler.

The study lives in the shared storage under the device's name, so a run that
was killed continues it: finished trials are kept, trials left RUNNING by a dead
worker are marked FAIL (and counted), and trials are added until the requested
number have completed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from edgeopt_plugins.exceptions import MeasurementError
from edgeopt_plugins.fleet._ledger import Claim, DeviceLedger
from edgeopt_plugins.fleet._measure import guarded
from edgeopt_plugins.fleet._problem import FleetProblem

__all__ = ["refine_device", "STALE_REASON"]

STALE_REASON = "worker stopped while the trial was running"
_LOG = logging.getLogger("edgeopt_plugins.fleet")
#: At most this many attempts per requested trial (failed measurements included).
MAX_ATTEMPTS_PER_TRIAL = 3


def _fail_stale_trials(study: optuna.Study) -> int:
    stale = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    for t in stale:
        study._storage.set_trial_system_attr(t._trial_id, "edgeopt:failure", STALE_REASON)
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    return len(stale)


def refine_device(
    problem: FleetProblem,
    ledger: DeviceLedger,
    claim: Claim,
    index: int,
    *,
    trials: int,
    measure: Callable[[str], float] | None = None,
    measure_timeout_s: float | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Run (or continue) the device's refinement study and return its result row.

    Args:
        problem: The fleet problem (model, devices, budgets).
        ledger: The run's ledger (owns the storage).
        claim: This worker's claim of the device.
        index: The device's position in ``problem.targets``.
        trials: Completed trials wanted in the study.
        measure: ``arch -> latency_ms`` on the device (default: the device's own truth).
        measure_timeout_s: Timeout of one measurement.
        seed: Seed of the sampler.
    """
    from edgeopt_plugins.samplers import DeviceConditionedSampler

    start = time.perf_counter()
    targets = problem.targets
    row = problem.one_shot([index])[0]
    measure = measure or targets.measurer(index)
    if measure is None:
        row["refine_error"] = "no way to measure this device (give --measure-cmd)"
        return row
    budget = float(row["budget_ms"])
    safe = guarded(measure, timeout_s=measure_timeout_s)
    sampler = DeviceConditionedSampler(model=problem.model, profile=targets.profile(index), latency_budget_ms=budget,
                                       confidence=problem.confidence, seed=seed + index)
    study = ledger.device_study(claim, sampler=sampler)
    stale = _fail_stale_trials(study)
    space = problem.model.space

    def objective(trial: optuna.Trial) -> float:
        arch = space.suggest(trial)
        latency = safe(arch)
        trial.set_user_attr("latency_ms", latency)
        trial.set_constraint("latency", latency - budget)
        accuracy = float(problem.accuracy_of([arch])[0])
        trial.set_user_attr("accuracy", accuracy)
        return accuracy if latency <= budget else accuracy - 100.0

    attempts = 0
    with ledger.holding(claim):
        while attempts < MAX_ATTEMPTS_PER_TRIAL * trials:
            done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
            if done >= trials:
                break
            # ask/tell rather than optimize(): a failed measurement is one logged line (no traceback), and a
            # storage error (a full disk) reaches the caller as itself, not as Optuna's "Should not reach".
            trial = study.ask()
            try:
                value = objective(trial)
            except MeasurementError as err:
                trial.set_user_attr("edgeopt:failure", str(err))
                study.tell(trial, state=TrialState.FAIL)
                _LOG.warning(f"{claim.device}: trial {trial.number} failed: {err}")
            else:
                study.tell(trial, value)
            attempts += 1
    all_trials = study.get_trials(deepcopy=False)
    complete = [t for t in all_trials if t.state == TrialState.COMPLETE]
    feasible = [t for t in complete if t.user_attrs.get("latency_ms", np.inf) <= budget]
    row.update({
        "refine_trials": len(complete),
        "refine_failed": sum(t.state == TrialState.FAIL for t in all_trials),
        "refine_stale": stale,
        "refine_seconds": time.perf_counter() - start,
    })
    if feasible:
        best = max(feasible, key=lambda t: t.user_attrs["accuracy"])
        arch = best.system_attrs.get("edgeopt:arch") or space.params_to_arch(best.params)
        row.update({"refined_arch": arch, "refined_latency_ms": best.user_attrs["latency_ms"],
                    "refined_accuracy": best.user_attrs["accuracy"]})
        optimum = row.get("optimum_accuracy")
        if optimum is not None and np.isfinite(problem.true_accuracy(arch)):
            row["refined_regret"] = float(optimum - problem.true_accuracy(arch))
    return row
