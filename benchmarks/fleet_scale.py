"""Fleet scale: one-shot learned optimizer vs a per-device Optuna TPE search, 10 to 10,000 devices.

Both answer the same question for every simulated NB201 device (a 10-measurement
profile, a budget at the 30th percentile of the device's latency): which design to
deploy. The one-shot path embeds all profiles and decodes recommendations in
batches. The baseline runs a TPE study per device on the same predictors
(predicted accuracy, upper bound within the budget) until it reaches the accuracy
of the one-shot recommendation for that device (or 300 trials).

TPE cost does not depend on the fleet size, so it is measured on a sample of
devices and multiplied by the fleet size (marked as extrapolated). The one-shot
path is measured on the whole fleet at every size.

Run: ``python -m benchmarks.fleet_scale [--quick]``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from benchmarks._common import RESULTS, command_line, save_result
from edgeopt_plugins.fleet import FleetProblem, TargetSpec, build_targets, summarize
from edgeopt_plugins.optimizer import ConditionedModel, FitConfig, fit_from_data

NAME = "fleet_scale"
SIZES = (10, 100, 1000, 10_000)
PERCENTILE = 30.0
TPE_CAP = 300


def _tpe_device(model: ConditionedModel, profile: Any, budget: float, target_accuracy: float, seed: int,
                pool: list[str]) -> tuple[float, int, bool]:
    """Seconds and trials a TPE study on the predictors needs to reach ``target_accuracy``."""
    space = model.space
    embedding = model.embed(profile)
    _, upper = model.predict(pool, embedding)
    upper = dict(zip(pool, np.asarray(upper).reshape(-1)))
    accuracy = dict(zip(pool, model.predict_accuracy(pool)))
    reached = [False]

    def objective(trial: optuna.Trial) -> float:
        arch = space.suggest(trial)
        ok = upper[arch] <= budget
        if ok and accuracy[arch] >= target_accuracy - 1e-9:
            reached[0] = True
            trial.study.stop()
        return accuracy[arch] if ok else accuracy[arch] - 100.0

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    start = time.perf_counter()
    study.optimize(objective, n_trials=TPE_CAP)
    # Include the per-device predictor set-up (embedding and screening the pool) in its cost.
    return time.perf_counter() - start, len(study.trials), reached[0]


def run(*, quick: bool = False, model: ConditionedModel | None = None, progress: bool = True) -> dict[str, Any]:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if model is None:
        fit_start = time.perf_counter()
        model = fit_from_data("nb201", config=FitConfig.tiny() if quick else FitConfig.fast(), seed=0,
                              progress=progress)
        fit_seconds = time.perf_counter() - fit_start
    else:
        fit_seconds = None
    sizes = SIZES
    one_shot: dict[str, Any] = {}
    largest = None
    for n in sizes:
        targets = build_targets(TargetSpec("nb201", simulated=n, seed=1))
        problem = FleetProblem(model, targets, budget_percentile=PERCENTILE)
        start = time.perf_counter()
        rows = problem.one_shot_all(chunk_size=1000)
        seconds = time.perf_counter() - start
        summary = summarize(rows, {})
        one_shot[str(n)] = {
            "seconds": seconds, "ms_per_device": 1000 * seconds / n,
            "violation_rate": summary["violation_rate"],
            "mean_regret": (summary["regret"] or {}).get("mean"),
            "infeasible": summary["infeasible"],
        }
        largest = (targets, problem, rows)
    targets, problem, rows = largest
    sample = np.random.default_rng(0).choice(len(rows), size=5 if quick else 20, replace=False)
    tpe = []
    for i in sample:
        row = rows[int(i)]
        if row.get("infeasible"):
            continue
        seconds, trials, reached = _tpe_device(model, targets.profile(int(i)), row["budget_ms"],
                                               row["predicted_accuracy"], seed=int(i), pool=targets.pool)
        tpe.append({"seconds": seconds, "trials": trials, "reached": reached})
    tpe_s = float(np.mean([t["seconds"] for t in tpe]))
    per_device = {
        "one_shot_ms": {k: v["ms_per_device"] for k, v in one_shot.items()},
        "tpe_ms": 1000 * tpe_s,
        "tpe_trials_median": float(np.median([t["trials"] for t in tpe])),
        "tpe_reached_rate": float(np.mean([t["reached"] for t in tpe])),
        "tpe_sampled_devices": len(tpe),
    }
    totals = {str(n): {"one_shot_s": one_shot[str(n)]["seconds"], "tpe_s_extrapolated": tpe_s * n}
              for n in sizes}
    result = {"quick": quick, "sizes": list(sizes), "budget_percentile": PERCENTILE, "fit_seconds": fit_seconds,
              "one_shot": one_shot, "per_device": per_device, "totals": totals, "tpe_runs": tpe,
              "target_10000_one_shot_s": 120.0}
    save_result(NAME, result)
    _plot(result)
    return result


def _plot(result: dict[str, Any], folder: Path = RESULTS) -> None:
    from edgeopt_plugins._plots import log_axis, new_figure, save_figure

    sizes = result["sizes"]
    fig, axes = new_figure(1, 2, figsize=(10, 3.8))
    one = [result["totals"][str(n)]["one_shot_s"] for n in sizes]
    tpe = [result["totals"][str(n)]["tpe_s_extrapolated"] for n in sizes]
    axes[0].loglog(sizes, one, "o-", label="learned optimizer, one-shot (measured)")
    axes[0].loglog(sizes, tpe, "s--", label="per-device TPE on predictors (extrapolated)")
    axes[0].axhline(120, color="red", lw=0.8, label="2 min target at 10,000")
    axes[0].set_xlabel("devices")
    axes[0].set_ylabel("total time (s)")
    axes[0].legend(fontsize=7)
    axes[1].semilogx(sizes, [result["one_shot"][str(n)]["ms_per_device"] for n in sizes], "o-", label="one-shot")
    axes[1].axhline(result["per_device"]["tpe_ms"], color="tab:orange", ls="--", label="TPE")
    log_axis(axes[1], "y")
    axes[1].set_xlabel("devices")
    axes[1].set_ylabel("time per device (ms)")
    axes[1].legend(fontsize=7)
    save_figure(fig, folder / f"{NAME}.png")


def report(result: dict[str, Any]) -> str:
    sizes = result["sizes"]
    lines = [
        "## Fleet scale: one-shot learned optimizer vs per-device TPE",
        "",
        f"Simulated NB201 devices, 10-measurement profiles, budget at the {result['budget_percentile']:g}th "
        "percentile of each device's latency. TPE runs on the same predictors until it matches the one-shot "
        f"design's predicted accuracy (cap {TPE_CAP} trials); its per-device cost is measured on "
        f"{result['per_device']['tpe_sampled_devices']} devices and multiplied by the fleet size.",
        "",
        "| devices | one-shot total (s) | one-shot ms/device | TPE total (s, extrapolated) | ratio | violations | mean regret |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in sizes:
        o = result["one_shot"][str(n)]
        t = result["totals"][str(n)]
        vr = "-" if o["violation_rate"] is None else f"{100 * o['violation_rate']:.1f}%"
        rg = "-" if o["mean_regret"] is None else f"{o['mean_regret']:.3f}"
        lines.append(f"| {n:,} | {o['seconds']:.2f} | {o['ms_per_device']:.2f} | {t['tpe_s_extrapolated']:.0f} | "
                     f"{t['tpe_s_extrapolated'] / max(o['seconds'], 1e-9):.0f}x | {vr} | {rg} |")
    p = result["per_device"]
    big = result["one_shot"][str(sizes[-1])]["seconds"]
    lines += [
        "",
        f"TPE per device: {p['tpe_ms']:.0f} ms, median {p['tpe_trials_median']:.0f} trials, reached the one-shot "
        f"accuracy in {100 * p['tpe_reached_rate']:.0f}% of devices. Target: {sizes[-1]:,} devices one-shot in "
        f"under 120 s: measured {big:.1f} s ({'met' if big < 120 else 'missed'}).",
        "",
        f"![fleet scale](../benchmarks/results/{NAME}.png)",
        "",
        f"Reproduce: `python -m benchmarks.fleet_scale{' --quick' if result['quick'] else ''}`",
        "",
    ]
    return "\n".join(lines)




def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Figures next to their targets, for the summary table of docs/benchmarks.md."""
    sizes = result["sizes"]
    big = result["one_shot"][str(sizes[-1])]
    small = result["one_shot"][str(sizes[1])]
    flat = big["ms_per_device"] / small["ms_per_device"]
    return [
        {"figure": f"{sizes[-1]:,} devices one-shot", "target": "< 120 s", "measured": f"{big['seconds']:.1f} s",
         "met": big["seconds"] < 120},
        {"figure": f"one-shot cost per device, {sizes[-1]:,} vs {sizes[1]:,} devices", "target": "flat (ratio <= 1.5)",
         "measured": f"{flat:.2f}", "met": flat <= 1.5},
    ]


if __name__ == "__main__":
    command_line(run, report, __doc__)
