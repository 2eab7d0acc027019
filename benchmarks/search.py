"""Search efficiency on held-out NB201 devices: our samplers and strategy vs stock Optuna and NNI.

For every held-out device, latency budget (20th and 50th percentile of the device's
latency over the space) and seed, each method searches the NB201 table objective:
the accuracy (CIFAR-10) of a design, penalised when its true latency on the device
exceeds the budget (``trial.set_constraint`` is set too). We count the target-device
measurements (profile included) until the best feasible design found is within
0.1 point of the true optimum under the budget.

Our methods never see the held-out device in training: approach 2's model is fitted
on the other devices of a K-fold device split, approach 1's proxies exclude it.

Run: ``python -m benchmarks.search [--quick]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from benchmarks._common import RESULTS, load_result, save_result
from edgeopt_plugins.data import MetricTable, load_table
from edgeopt_plugins.optimizer import best_under_budget
from edgeopt_plugins.spaces import get_space

__all__ = ["Task", "run", "report", "hit_time", "STOCK_OPTUNA"]

NAME = "search"
TOLERANCE = 0.1
PERCENTILES = (20, 50)


@dataclass(frozen=True)
class Task:
    """One search problem: a held-out device, a budget and a seed."""

    device: str
    percentile: int
    seed: int
    budget_ms: float
    optimum: float
    latency: dict[str, float]
    accuracy: dict[str, float]

    def lookup(self, arch: str) -> tuple[float, float]:
        return self.accuracy[arch], self.latency[arch]

    def penalised(self, arch: str) -> float:
        acc, lat = self.lookup(arch)
        return acc if lat <= self.budget_ms else -lat / self.budget_ms


def make_tasks(latency: MetricTable, accuracy: MetricTable, devices: list[str], seeds: range) -> list[Task]:
    acc = accuracy.lookup(latency.archs, "cifar10")
    acc_map = dict(zip(latency.archs, acc.tolist()))
    tasks = []
    for device in devices:
        lat = latency.column(device)
        lat_map = dict(zip(latency.archs, lat.tolist()))
        for p in PERCENTILES:
            budget = float(np.percentile(lat, p))
            optimum = float(acc[best_under_budget(lat, acc, budget)])
            tasks.extend(Task(device, p, s, budget, optimum, lat_map, acc_map) for s in seeds)
    return tasks


def hit_time(task: Task, evaluated: list[str]) -> int | None:
    """1-based index of the first evaluation that makes the best feasible design good enough."""
    for i, arch in enumerate(evaluated, start=1):
        acc, lat = task.lookup(arch)
        if lat <= task.budget_ms and acc >= task.optimum - TOLERANCE:
            return i
    return None


# ----------------------------------------------------------------------------- methods
#: A method runs one task for at most ``max_trials`` and returns
#: (evaluated archs in order, extra measurements spent before the search, seconds in the sampler).
Method = Callable[[Task, int], tuple[list[str], int, float]]


def optuna_method(make_sampler: Callable[[Task], optuna.samplers.BaseSampler], *, profile_size: int = 0) -> Method:
    """A method running an Optuna sampler on the task's objective, stopping at the first hit."""

    def run_task(task: Task, max_trials: int) -> tuple[list[str], int, float]:
        space = get_space("nb201")
        evaluated: list[str] = []
        objective_s = [0.0]

        def objective(trial: optuna.Trial) -> float:
            arch = space.suggest(trial)  # the sampler works inside suggest: not objective time
            start = time.perf_counter()
            acc, lat = task.lookup(arch)
            trial.set_user_attr("latency_ms", lat)
            trial.set_constraint("latency", lat - task.budget_ms)
            evaluated.append(arch)
            objective_s[0] += time.perf_counter() - start
            return task.penalised(arch)

        def stop_at_hit(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            if hit_time(task, evaluated[-1:]) is not None:
                study.stop()

        study = optuna.create_study(direction="maximize", sampler=make_sampler(task))
        start = time.perf_counter()
        study.optimize(objective, n_trials=max_trials, callbacks=[stop_at_hit])
        sampler_s = time.perf_counter() - start - objective_s[0]
        return evaluated, profile_size, sampler_s

    return run_task


STOCK_OPTUNA: dict[str, Method] = {
    "optuna_random": optuna_method(lambda t: optuna.samplers.RandomSampler(seed=t.seed)),
    "optuna_tpe": optuna_method(lambda t: optuna.samplers.TPESampler(seed=t.seed)),
    "optuna_nsga2": optuna_method(lambda t: optuna.samplers.NSGAIISampler(seed=t.seed, population_size=20)),
    "optuna_gp": optuna_method(lambda t: optuna.samplers.GPSampler(seed=t.seed)),
}


def nni_method(name: str) -> Method:
    """NNI's stock strategies (regularized evolution, random) on the same objective."""

    def run_task(task: Task, max_trials: int) -> tuple[list[str], int, float]:
        from benchmarks._nni import run_stock_nni

        start = time.perf_counter()
        trials = run_stock_nni(name, task.lookup, budget_ms=task.budget_ms, n_trials=max_trials, seed=task.seed)
        return [arch for arch, _, _ in trials], 0, time.perf_counter() - start

    return run_task


STOCK_NNI: dict[str, Method] = {
    "nni_regularized_evolution": nni_method("regularized_evolution"),
    "nni_random": nni_method("random"),
}

PROFILE_SIZE = 10


def _profile(task: Task):
    from edgeopt_plugins.devices import DeviceProfile

    archs = sorted(task.latency)
    rows = np.random.default_rng([task.seed, 7]).choice(len(archs), size=PROFILE_SIZE, replace=False)
    return DeviceProfile.from_dict("nb201", {archs[i]: task.latency[archs[i]] for i in rows}, name=task.device)


def our_methods(models: dict[str, Any], proxies: MetricTable) -> dict[str, Method]:
    """Our sampler (approach 2 and 1) and strategy, each fed a 10-measurement profile of the target.

    Args:
        models: ``{device: ConditionedModel}`` fitted without that device.
        proxies: The latency table; the target's column is never used as a proxy.
    """
    from edgeopt_plugins.samplers import DeviceConditionedSampler, ProxySampler

    def conditioned(task: Task) -> optuna.samplers.BaseSampler:
        return DeviceConditionedSampler(model=models[task.device], profile=_profile(task),
                                        latency_budget_ms=task.budget_ms, seed=task.seed)

    def proxy(task: Task) -> optuna.samplers.BaseSampler:
        return ProxySampler(profile=_profile(task), latency_budget_ms=task.budget_ms, seed=task.seed,
                            proxies=proxies.select(devices=[d for d in proxies.devices if d != task.device]))

    def nni_conditioned(task: Task, max_trials: int) -> tuple[list[str], int, float]:
        from benchmarks._nni import run_nni_on_table
        from edgeopt_plugins.strategies import DeviceConditionedStrategy

        start = time.perf_counter()
        strategy = DeviceConditionedStrategy(model=models[task.device], profile=_profile(task),
                                             latency_budget_ms=task.budget_ms, seed=task.seed)
        trials = run_nni_on_table(strategy, task.lookup, budget_ms=task.budget_ms, n_trials=max_trials)
        return [arch for arch, _, _ in trials], PROFILE_SIZE, time.perf_counter() - start

    return {
        "edgeopt_conditioned": optuna_method(conditioned, profile_size=PROFILE_SIZE),
        "edgeopt_proxy": optuna_method(proxy, profile_size=PROFILE_SIZE),
        "nni_edgeopt_conditioned": nni_conditioned,
    }


def fit_fold_models(latency: MetricTable, held_out: list[str], *, quick: bool, progress: bool) -> dict[str, Any]:
    """One approach-2 model per fold of held-out devices (3 folds), never trained on its fold."""
    from edgeopt_plugins.optimizer import FitConfig, fit_from_data

    folds = [held_out[i::3] for i in range(3)]
    models: dict[str, Any] = {}
    for fold in folds:
        if not fold:
            continue
        model = fit_from_data("nb201", exclude_devices=fold, config=FitConfig.tiny() if quick else FitConfig.fast(),
                              seed=0, progress=progress)
        models.update({d: model for d in fold})
    return models


# ----------------------------------------------------------------------------- driver
def evaluate(methods: dict[str, Method], tasks: list[Task], caps: dict[str, int], default_cap: int,
             progress: bool = True, seed_limits: dict[str, int] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Run every method on every task (``seed_limits``: a method only runs the tasks of its first seeds)."""
    from tqdm import tqdm

    seed_limits = seed_limits or {}
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rows: dict[str, list[dict[str, Any]]] = {}
    for name, method in methods.items():
        cap = caps.get(name, default_cap)
        out = []
        mine = [t for t in tasks if t.seed < seed_limits.get(name, len(tasks))]
        for task in tqdm(mine, desc=name, disable=not progress, leave=False):
            evaluated, extra, sampler_s = method(task, cap)
            t = hit_time(task, evaluated)
            out.append({
                "device": task.device, "percentile": task.percentile, "seed": task.seed,
                "measurements": None if t is None else t + extra, "trials": len(evaluated), "cap": cap + extra,
                "sampler_ms_per_trial": 1000.0 * sampler_s / max(1, len(evaluated)),
            })
        rows[name] = out
    return rows


def summarize(rows: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Median measurements to the target per method (censored runs count as their cap, marked)."""
    out = {}
    for name, runs in rows.items():
        values = np.array([r["measurements"] if r["measurements"] is not None else np.inf for r in runs])
        capped = np.array([r["measurements"] if r["measurements"] is not None else r["cap"] for r in runs])
        per_p = {}
        for p in PERCENTILES:
            sel = np.array([r["percentile"] == p for r in runs])
            per_p[str(p)] = float(np.median(values[sel])) if sel.any() else None
        out[name] = {
            "median_measurements": float(np.median(values)),
            "median_by_percentile": per_p,
            "mean_measurements_capped": float(capped.mean()),
            "hit_rate": float(np.isfinite(values).mean()),
            "sampler_ms_per_trial": float(np.median([r["sampler_ms_per_trial"] for r in runs])),
        }
    return out


def run(*, quick: bool = False, methods: dict[str, Method] | None = None, progress: bool = True,
        rerun: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; ``rerun``: only these methods, merged into the saved result of the same size."""
    latency = load_table("nb201", "latency_ms")
    accuracy = load_table("nb201", "accuracy")
    devices = list(latency.devices)
    rng = np.random.default_rng(0)
    held_out = sorted(rng.choice(devices, size=4 if quick else 9, replace=False).tolist())
    seeds = range(3 if quick else 5)
    tasks = make_tasks(latency, accuracy, held_out, seeds)
    if methods is None:
        models = fit_fold_models(latency, held_out, quick=quick, progress=progress)
        methods = {**our_methods(models, latency), **STOCK_OPTUNA, **STOCK_NNI}
    previous = load_result(NAME) if rerun else None
    if rerun:
        unknown = sorted(set(rerun) - set(methods))
        if unknown or previous is None or previous["quick"] != quick:
            raise SystemExit(f"--rerun: unknown method(s) {unknown} or no saved {'quick ' if quick else ''}result")
    chosen = {name: methods[name] for name in rerun} if rerun else methods
    caps = {"optuna_gp": 60 if quick else 100, **{name: 100 for name in OURS}}
    # Optuna's GP sampler costs about a second per trial at 100 trials on 2 cores: one seed per task only.
    seed_limits = {"optuna_gp": 1}
    default_cap = 150 if quick else 300
    rows = evaluate(chosen, tasks, caps, default_cap=default_cap, progress=progress, seed_limits=seed_limits)
    caps = {name: caps.get(name, default_cap) for name in chosen}
    if previous is not None:
        rows = {**previous["runs"], **rows}
        caps = {**previous["caps"], **caps}
    summary = summarize(rows)
    result = {"quick": quick, "devices": held_out, "percentiles": list(PERCENTILES), "seeds": len(seeds),
              "tolerance": TOLERANCE, "caps": caps, "seed_limits": seed_limits, "summary": summary, "runs": rows}
    save_result(NAME, result)
    _plot(summary, RESULTS / f"{NAME}.png")
    return result


def _plot(summary: dict[str, dict[str, Any]], path) -> None:
    from edgeopt_plugins._plots import log_axis, mark_empty_bars, new_figure, save_figure

    names = list(summary)
    fig, ax = new_figure(figsize=(8, 3.6))
    x = np.arange(len(names))
    shown = []
    for i, p in enumerate(PERCENTILES):
        vals = [summary[n]["median_by_percentile"][str(p)] for n in names]
        vals = [v if v is not None and np.isfinite(v) else np.nan for v in vals]
        bars = ax.bar(x + (i - 0.5) * 0.4, vals, width=0.4, label=f"budget p{p}")
        mark_empty_bars(ax, bars, vals, missing="not reached")
        shown += [v for v in vals if np.isfinite(v)]
    ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    ax.set_xlim(-0.6, len(names) - 0.4)
    if shown and max(shown) / min(shown) > 20:
        log_axis(ax, "y")
    ax.set_ylabel("median measurements to within 0.1 pt")
    ax.legend(fontsize=8, loc="upper right")
    save_figure(fig, path)


def report(result: dict[str, Any]) -> str:
    lines = [
        "## Search efficiency: measurements until within 0.1 point of the optimum",
        "",
        f"Held-out NB201 devices {', '.join(result['devices'])}; budgets at the "
        f"{'/'.join(map(str, result['percentiles']))}th latency percentile; {result['seeds']} seeds. "
        "Measurements include the device profile for our methods. `inf` = not reached within the cap "
        f"(trials per task: ours {result.get('caps', {}).get(OURS[0], 100)}, stock {result.get('caps', {}).get('optuna_tpe', 300)}"
        f"{', GP ' + str(result['caps']['optuna_gp']) + ' on seed 0 only' if 'caps' in result else ''}).",
        "",
        "| method | median (all) | median p20 | median p50 | reached | sampler ms/trial |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in result["summary"].items():
        by = s["median_by_percentile"]
        lines.append(f"| {name} | {s['median_measurements']:.0f} | {by['20']:.0f} | {by['50']:.0f} | "
                     f"{100 * s['hit_rate']:.0f}% | {s['sampler_ms_per_trial']:.1f} |")
    lines += ["", f"![search efficiency](../benchmarks/results/{NAME}.png)", "",
              f"Reproduce: `python -m benchmarks.search{' --quick' if result['quick'] else ''}`", ""]
    return "\n".join(lines)


#: Our methods (the rows compared with stock TPE).
OURS = ("edgeopt_conditioned", "edgeopt_proxy", "nni_edgeopt_conditioned")


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Figures next to their targets, for the summary table of docs/benchmarks.md."""
    s = result["summary"]
    tpe = s.get("optuna_tpe", {}).get("median_measurements")
    rows = []
    for name in OURS:
        if name not in s:
            continue
        med = s[name]["median_measurements"]
        rows.append({"figure": f"{name}: median measurements to within 0.1 pt", "target": "<= 20",
                     "measured": f"{med:.0f}", "met": bool(med <= 20)})
        if tpe is not None and np.isfinite(med):
            if np.isfinite(tpe):
                ratio, shown = tpe / med, f"{tpe / med:.1f}x"
            else:  # TPE's median is beyond its cap: the cap gives a lower bound of the ratio
                cap = result.get("caps", {}).get("optuna_tpe", 300)
                ratio, shown = cap / med, f">= {cap / med:.1f}x (TPE median beyond its {cap}-trial cap)"
            rows.append({"figure": f"{name}: fewer measurements than stock TPE", "target": ">= 5x",
                         "measured": shown, "met": bool(ratio >= 5)})
        if not name.startswith("nni"):
            ms = s[name]["sampler_ms_per_trial"]
            rows.append({"figure": f"{name}: sampler time per trial", "target": "< 20 ms",
                         "measured": f"{ms:.1f} ms", "met": bool(ms < 20)})
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rerun", default=None, help="comma-separated methods to rerun into the saved result")
    args = parser.parse_args()
    print(report(run(quick=args.quick, rerun=args.rerun.split(",") if args.rerun else None)))
