"""Search efficiency on held-out hardware families: our samplers and strategy vs stock Optuna and NNI.

Protocol (what a sceptic would ask for):

- **Devices.** NB201 latency settings grouped in hardware families (:mod:`benchmarks._families`).
  To bound the run time, each family is evaluated on one setting, its smallest batch; the
  desktop-GPU families also on their largest batch (batch size changes a GPU's latency
  ranking the most): :func:`chosen_devices`. For an evaluated device its *whole family* is
  removed from the proxies (approach 1) and from the training devices of the
  device-conditioned model (approach 2: one model per held-out family, fitted with
  :meth:`~edgeopt_plugins.optimizer.FitConfig.fast` and cached under
  ``benchmarks/results/_scratch/search_models/``).
- **Budgets** at the 10th, 20th and 50th percentile of the device's latency over the space;
  5 seeds (2 in ``--quick``); at most 300 trials (150 in ``--quick``).
- **Objective.** CIFAR-10 accuracy when the design's true latency fits, else
  ``-latency / budget``; the latency is reported as a user attribute and a constraint.
- **Two settings** for our methods: accuracy *named* (``accuracy="table"``, the benchmark
  table) and accuracy *unknown* (the default: learned from the study's values). The stock
  baselines never know the accuracy.
- **Count.** Measurements on the target until the best feasible design found is within 0.1
  point of the true optimum under the budget; our methods' count includes the 10-design
  profile. Runs that never get there are censored (``inf``) at their cap.
- **Baselines** in the same run: Optuna TPE (default, multivariate and independent), GP (one seed, 150
  trials: a second per trial on this machine), NSGA-II, Random; NNI regularized evolution.

Reported per method, and per device and budget: the median measurements, the fraction of our
runs that needed more than TPE's median, and the device where ours fares worst against TPE.
A separate timing runs our samplers for the full 300 trials (``overhead``).

Run: ``python -m benchmarks.search [--quick] [--rerun METHODS]`` (``--rerun`` measures only those
methods and merges them into the saved result of the same size; every save keeps the saved rows
of the methods not measured). ``--merge FILE`` adds the methods the saved result lacks from
another result file of the same size, measuring nothing. ``--trace DEVICE:PERCENTILE:METHODS``
shows how each seed's run on one cell nears the optimum (within 1, 0.5, 0.2, 0.1 point).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from benchmarks._common import RESULTS, load_result, save_result
from benchmarks._families import batch_of, class_of, group_devices
from edgeopt_plugins.data import MetricTable, load_table
from edgeopt_plugins.optimizer import best_under_budget
from edgeopt_plugins.spaces import get_space

__all__ = ["Task", "run", "report", "targets", "hit_time", "chosen_devices", "compare"]

NAME = "search"
TOLERANCE = 0.1
PERCENTILES = (10, 20, 50)
PROFILE_SIZE = 10
MODELS = RESULTS / "_scratch" / "search_models"


@dataclass(frozen=True)
class Task:
    """One search problem: a held-out device, a budget and a seed."""

    device: str
    family: str
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


def chosen_devices(devices: list[str], *, quick: bool = False) -> list[str]:
    """One setting per hardware family (its smallest batch), plus the largest batch of desktop GPUs.

    ``quick``: the first setting of four families (a desktop GPU, a server CPU, two others).

    Example:
        >>> chosen_devices(["titanx_32", "titanx_1", "titanx_256", "pixel3"])
        ['titanx_1', 'titanx_256', 'pixel3']
    """
    out = []
    for members in group_devices(devices, "family").values():
        ordered = sorted(members, key=lambda d: (batch_of(d), d))
        out.append(ordered[0])
        if class_of(ordered[0]) == "desktop_gpu" and batch_of(ordered[-1]) > batch_of(ordered[0]):
            out.append(ordered[-1])
    if quick:
        by_class: dict[str, str] = {}
        for device in out:
            by_class.setdefault(class_of(device), device)
        out = list(by_class.values())[:4]
    return out


def make_tasks(latency: MetricTable, accuracy: MetricTable, devices: list[str], seeds: range) -> list[Task]:
    from benchmarks._families import family_of

    acc = accuracy.lookup(latency.archs, "cifar10")
    acc_map = dict(zip(latency.archs, acc.tolist()))
    tasks = []
    for device in devices:
        lat = latency.column(device)
        lat_map = dict(zip(latency.archs, lat.tolist()))
        for p in PERCENTILES:
            budget = float(np.percentile(lat, p))
            optimum = float(acc[best_under_budget(lat, acc, budget)])
            tasks.extend(Task(device, family_of(device), p, s, budget, optimum, lat_map, acc_map) for s in seeds)
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
#: (evaluated archs in order, measurements spent before the search, seconds in the sampler).
Method = Callable[[Task, int], tuple[list[str], int, float]]


def optuna_method(make_sampler: Callable[[Task], optuna.samplers.BaseSampler], *, profile_size: int = 0,
                  stop_at_hit: bool = True) -> Method:
    """A method running an Optuna sampler on the task's objective (stopping at the first hit)."""

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

        def stop(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            if stop_at_hit and hit_time(task, evaluated[-1:]) is not None:
                study.stop()

        sampler = make_sampler(task)  # building the sampler (the proxies' adaptation) is not per-trial cost
        study = optuna.create_study(direction="maximize", sampler=sampler)
        start = time.perf_counter()
        study.optimize(objective, n_trials=max_trials, callbacks=[stop])
        sampler_s = time.perf_counter() - start - objective_s[0]
        return evaluated, profile_size, sampler_s

    return run_task


STOCK_OPTUNA: dict[str, Method] = {
    "optuna_tpe": optuna_method(lambda t: optuna.samplers.TPESampler(seed=t.seed)),
    "optuna_tpe_multivariate": optuna_method(lambda t: optuna.samplers.TPESampler(seed=t.seed, multivariate=True)),
    # Optuna 5's default TPE is multivariate for one objective: the independent one is the other variant.
    "optuna_tpe_independent": optuna_method(lambda t: optuna.samplers.TPESampler(seed=t.seed, multivariate=False)),
    "optuna_gp": optuna_method(lambda t: optuna.samplers.GPSampler(seed=t.seed)),
    "optuna_nsga2": optuna_method(lambda t: optuna.samplers.NSGAIISampler(seed=t.seed, population_size=20)),
    "optuna_random": optuna_method(lambda t: optuna.samplers.RandomSampler(seed=t.seed)),
}


def nni_method(name: str) -> Method:
    """NNI's stock regularized evolution on the same objective."""

    def run_task(task: Task, max_trials: int) -> tuple[list[str], int, float]:
        from benchmarks._nni import run_stock_nni

        start = time.perf_counter()
        trials = run_stock_nni(name, task.lookup, budget_ms=task.budget_ms, n_trials=max_trials, seed=task.seed)
        return [arch for arch, _, _ in trials], 0, time.perf_counter() - start

    return run_task


STOCK_NNI: dict[str, Method] = {"nni_regularized_evolution": nni_method("regularized_evolution")}

#: Our methods: (approach, accuracy setting) for the Optuna samplers and the NNI strategy.
SETTINGS = {"named": "table", "unknown": None}
OURS = tuple(f"{kind}_{setting}" for kind in ("edgeopt_proxy", "edgeopt_conditioned", "nni_edgeopt_conditioned")
             for setting in SETTINGS)


def _profile(task: Task):
    from edgeopt_plugins.devices import DeviceProfile

    archs = sorted(task.latency)
    rows = np.random.default_rng([task.seed, 7]).choice(len(archs), size=PROFILE_SIZE, replace=False)
    return DeviceProfile.from_dict("nb201", {archs[i]: task.latency[archs[i]] for i in rows}, name=task.device)


def our_methods(model_of: Callable[[str], Any], proxies_of: Callable[[str], MetricTable], *,
                stop_at_hit: bool = True) -> dict[str, Method]:
    """Our samplers (approach 1 and 2) and strategy, each fed a 10-measurement profile of the target.

    Args:
        model_of: ``family -> ConditionedModel`` fitted without that family.
        proxies_of: ``family -> latency table`` without that family.
    """
    from edgeopt_plugins.samplers import DeviceConditionedSampler, ProxySampler

    methods: dict[str, Method] = {}
    for setting, accuracy in SETTINGS.items():
        def conditioned(task: Task, accuracy: Any = accuracy) -> optuna.samplers.BaseSampler:
            return DeviceConditionedSampler(model=model_of(task.family), profile=_profile(task), accuracy=accuracy,
                                            latency_budget_ms=task.budget_ms, seed=task.seed)

        def proxy(task: Task, accuracy: Any = accuracy) -> optuna.samplers.BaseSampler:
            return ProxySampler(profile=_profile(task), proxies=proxies_of(task.family), accuracy=accuracy,
                                latency_budget_ms=task.budget_ms, seed=task.seed)

        def nni_conditioned(task: Task, max_trials: int, accuracy: Any = accuracy) -> tuple[list[str], int, float]:
            from benchmarks._nni import run_nni_on_table
            from edgeopt_plugins.strategies import DeviceConditionedStrategy

            strategy = DeviceConditionedStrategy(model=model_of(task.family), profile=_profile(task),
                                                 accuracy=accuracy, latency_budget_ms=task.budget_ms, seed=task.seed)
            start = time.perf_counter()
            trials = run_nni_on_table(strategy, task.lookup, budget_ms=task.budget_ms, n_trials=max_trials)
            return [arch for arch, _, _ in trials], PROFILE_SIZE, time.perf_counter() - start

        methods[f"edgeopt_proxy_{setting}"] = optuna_method(proxy, profile_size=PROFILE_SIZE, stop_at_hit=stop_at_hit)
        methods[f"edgeopt_conditioned_{setting}"] = optuna_method(conditioned, profile_size=PROFILE_SIZE,
                                                                  stop_at_hit=stop_at_hit)
        methods[f"nni_edgeopt_conditioned_{setting}"] = nni_conditioned
    return methods


class FamilyModels:
    """One approach-2 model per held-out family, fitted on the other families' devices and cached."""

    def __init__(self, latency: MetricTable, *, quick: bool, progress: bool) -> None:
        self.latency, self.quick, self.progress = latency, quick, progress
        self._models: dict[str, Any] = {}

    def folder(self, family: str) -> Path:
        return MODELS / ("quick" if self.quick else "full") / family

    def __call__(self, family: str) -> Any:
        from benchmarks._families import family_of
        from edgeopt_plugins.optimizer import ConditionedModel, FitConfig, fit_from_data

        if family not in self._models:
            folder = self.folder(family)
            if (folder / "model.json").exists():
                self._models[family] = ConditionedModel.load(folder)
            else:
                excluded = [d for d in self.latency.devices if family_of(d) == family]
                model = fit_from_data("nb201", exclude_devices=excluded, seed=0, progress=self.progress,
                                      config=FitConfig.tiny() if self.quick else FitConfig.fast())
                model.save(folder)
                self._models[family] = model
        return self._models[family]


def proxies_without(latency: MetricTable) -> Callable[[str], MetricTable]:
    from benchmarks._families import family_of

    return lambda family: latency.select(devices=[d for d in latency.devices if family_of(d) != family])


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
                "device": task.device, "family": task.family, "percentile": task.percentile, "seed": task.seed,
                "measurements": None if t is None else t + extra, "trials": len(evaluated), "cap": cap + extra,
                "sampler_ms_per_trial": 1000.0 * sampler_s / max(1, len(evaluated)),
            })
        rows[name] = out
    return rows


def _values(runs: list[dict[str, Any]]) -> np.ndarray:
    return np.array([np.inf if r["measurements"] is None else r["measurements"] for r in runs], dtype=float)


def _median(values: np.ndarray) -> float | None:
    return float(np.median(values)) if values.size else None


def summarize(rows: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Median measurements to the target per method (censored runs are ``inf``)."""
    out = {}
    for name, runs in rows.items():
        values = _values(runs)
        per_p = {str(p): _median(values[[r["percentile"] == p for r in runs]]) for p in PERCENTILES}
        out[name] = {
            "median_measurements": _median(values),
            "median_by_percentile": per_p,
            "hit_rate": float(np.isfinite(values).mean()) if values.size else None,
            "sampler_ms_per_trial": float(np.median([r["sampler_ms_per_trial"] for r in runs])) if runs else None,
        }
    return out


def compare(rows: dict[str, list[dict[str, Any]]], ours: str, baseline: str = "optuna_tpe") -> dict[str, Any]:
    """Ours against the baseline per device and budget: medians, runs worse than its median, worst device.

    Censored medians are ``inf``; a device where both are censored counts as "not worse".
    """
    cells = []
    keys = sorted({(r["device"], r["percentile"]) for r in rows[ours]})
    for device, p in keys:
        mine = _values([r for r in rows[ours] if (r["device"], r["percentile"]) == (device, p)])
        base = _values([r for r in rows[baseline] if (r["device"], r["percentile"]) == (device, p)])
        if not base.size:
            continue
        m_ours, m_base = float(np.median(mine)), float(np.median(base))
        cells.append({"device": device, "percentile": p, "ours": m_ours, "baseline": m_base,
                      "worse_runs": int((mine > m_base).sum()), "runs": int(mine.size),
                      "not_worse": bool(m_ours <= m_base),
                      "ratio": (m_ours / m_base) if np.isfinite(m_base) and m_base > 0 else
                      (0.0 if np.isfinite(m_ours) else 1.0)})
    worst = max(cells, key=lambda c: (c["ratio"], c["ours"]), default=None)
    runs = sum(c["runs"] for c in cells)
    return {"cells": cells, "all_not_worse": all(c["not_worse"] for c in cells),
            "worse_fraction": sum(c["worse_runs"] for c in cells) / runs if runs else None, "worst": worst}


def trace(device: str, percentile: int, names: list[str], *, quick: bool = False) -> list[dict[str, Any]]:
    """How each seed's run on one device and budget approaches the optimum (to explain a miss).

    Per method and seed: the measurements until the best feasible design is within 1, 0.5, 0.2
    and 0.1 point of the optimum (profile included; ``None``: not within the cap), and the share
    of the designs measured until then that fit the budget.
    """
    latency = load_table("nb201", "latency_ms")
    accuracy = load_table("nb201", "accuracy")
    tasks = [t for t in make_tasks(latency, accuracy, [device], range(2 if quick else 5)) if t.percentile == percentile]
    methods = {**our_methods(FamilyModels(latency, quick=quick, progress=False), proxies_without(latency)),
               **STOCK_OPTUNA, **STOCK_NNI}
    unknown = sorted(set(names) - set(methods))
    if unknown or not tasks:
        raise SystemExit(f"--trace: unknown method(s) {unknown} or device/budget {device} p{percentile}")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    out = []
    for name in names:
        for task in tasks:
            evaluated, extra, _ = methods[name](task, 150 if quick else 300)
            fits = [task.lookup(a)[1] <= task.budget_ms for a in evaluated]
            best = np.maximum.accumulate([task.lookup(a)[0] if ok else -np.inf for a, ok in zip(evaluated, fits)])
            within = {str(tol): next((i + 1 + extra for i, b in enumerate(best) if b >= task.optimum - tol), None)
                      for tol in (1.0, 0.5, 0.2, TOLERANCE)}
            out.append({"method": name, "seed": task.seed, "within": within, "fits": float(np.mean(fits))})
    saved = load_result(NAME)
    if saved is not None and saved.get("quick") == quick:  # kept with the result, for its report
        traces = saved.setdefault("traces", {})
        key = f"{device} p{percentile}"
        traces[key] = [r for r in traces.get(key, []) if r["method"] not in names] + out
        save_result(NAME, saved)
    return out


def overhead(methods: dict[str, Method], tasks: list[Task], max_trials: int) -> dict[str, float]:
    """Median sampler milliseconds per trial over full ``max_trials`` runs (no early stop)."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    out = {}
    for name, method in methods.items():
        times = []
        for task in tasks:
            evaluated, _, sampler_s = method(task, max_trials)
            times.append(1000.0 * sampler_s / max(1, len(evaluated)))
        out[name] = float(np.median(times))
    return out


#: What makes two results comparable: rows are only ever merged between results of the same size.
SIZE_KEYS = ("quick", "devices", "percentiles", "seeds", "tolerance", "profile", "default_cap")
SETTING_KEYS = (*SIZE_KEYS, "families", "seed_limits")


def _caps(quick: bool) -> dict[str, int]:
    # Optuna's GP sampler costs about a second per trial on 2 cores: one seed per task, fewer trials.
    return {"optuna_gp": 60 if quick else 150}


def _size(result: dict[str, Any]) -> str:
    return ", ".join(f"{k}={result.get(k)}" for k in SIZE_KEYS)


def _same_size(result: dict[str, Any], settings: dict[str, Any]) -> bool:
    return all(result.get(k) == settings[k] for k in SIZE_KEYS)


def run(*, quick: bool = False, methods: dict[str, Method] | None = None, progress: bool = True,
        rerun: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; ``rerun``: only these methods, merged into the saved result of the same size.

    Every save re-reads the saved result and replaces only the methods measured by this run, so
    an interrupted run, or reruns of other methods in parallel, never discard rows measured
    before. ``rerun`` refuses a saved result of another size (``--quick`` or not, devices, seeds)
    instead of starting from nothing; a whole run replaces such a result, and says so.
    """
    latency = load_table("nb201", "latency_ms")
    accuracy = load_table("nb201", "accuracy")
    devices = chosen_devices(list(latency.devices), quick=quick)
    seeds = range(2 if quick else 5)
    tasks = make_tasks(latency, accuracy, devices, seeds)
    models = FamilyModels(latency, quick=quick, progress=progress)
    proxies = proxies_without(latency)
    if methods is None:
        methods = {**our_methods(models, proxies), **STOCK_OPTUNA, **STOCK_NNI}
    if rerun:
        unknown = sorted(set(rerun) - set(methods) - {"overhead"})
        if unknown:
            raise SystemExit(f"--rerun: unknown method(s) {unknown} (known: {', '.join(methods)}, overhead)")
    chosen = {name: methods[name] for name in (rerun or methods) if name in methods}
    default_cap = 150 if quick else 300
    settings = {"quick": quick, "devices": devices, "families": sorted({t.family for t in tasks}),
                "percentiles": list(PERCENTILES), "seeds": len(seeds), "tolerance": TOLERANCE,
                "profile": PROFILE_SIZE, "default_cap": default_cap, "seed_limits": {"optuna_gp": 1}}
    saved = load_result(NAME)
    if saved is not None and not _same_size(saved, settings):
        if rerun:
            raise SystemExit(f"--rerun: {RESULTS / (NAME + '.json')} holds a result of another size ({_size(saved)}; "
                             f"this run: {_size(settings)}); rerun with the same size or run the whole benchmark")
        print(f"search: replacing the saved result of another size ({_size(saved)})", file=sys.stderr)
    caps = _caps(quick)
    result = None
    for name, method in chosen.items():  # saved after every method: a long run can be resumed with --rerun
        measured = evaluate({name: method}, tasks, caps, default_cap=default_cap, progress=progress,
                            seed_limits=settings["seed_limits"])
        result = _save(settings, measured, {})
    if rerun is None or "overhead" in rerun:
        timed = {k: v for k, v in {**our_methods(models, proxies, stop_at_hit=False), **STOCK_OPTUNA}.items()
                 if k.startswith("edgeopt") or k == "optuna_tpe"}
        probe = [t for t in tasks if t.percentile == 20 and t.seed == 0][: 1 if quick else 2]
        result = _save(settings, {}, overhead(timed, probe, default_cap))
    return result if result is not None else _save(settings, {}, {})


def merge(path: str | Path) -> dict[str, Any]:
    """Add to the saved result the methods it lacks from another result file of the same size.

    Nothing is measured and no saved row is replaced: e.g. baselines kept in git after a run
    that lost them (``git show HEAD:benchmarks/results/search.json > old.json``).
    """
    other = json.loads(Path(path).read_text())
    saved = load_result(NAME)
    settings = {k: (saved or other).get(k) for k in SETTING_KEYS}
    if other.get("benchmark") != NAME or not _same_size(other, settings):
        raise SystemExit(f"--merge: {path} is not a {NAME} result of the saved size ({_size(settings)})")
    have = saved["runs"] if saved is not None else {}
    timing = saved.get("overhead", {}) if saved is not None else {}
    return _save(settings, {k: v for k, v in other["runs"].items() if k not in have},
                 {k: v for k, v in other.get("overhead", {}).items() if k not in timing})


def _save(settings: dict[str, Any], measured: dict[str, list[dict[str, Any]]],
          timing: dict[str, float]) -> dict[str, Any]:
    """Merge what was just measured into the saved result of the same size; summarise, save the JSON and plot."""
    saved = load_result(NAME)
    if saved is None or not _same_size(saved, settings):
        saved = {"runs": {}, "overhead": {}}
    rows = {**saved["runs"], **measured}
    rows = {name: rows[name] for name in sorted(rows, key=lambda n: OURS.index(n) if n in OURS else len(OURS))}
    caps = _caps(settings["quick"])
    result = {**settings, "caps": {name: caps.get(name, settings["default_cap"]) for name in rows},
              "summary": summarize(rows),
              "versus_tpe": {name: compare(rows, name) for name in OURS if name in rows and "optuna_tpe" in rows},
              "overhead": {**saved.get("overhead", {}), **timing}, "traces": saved.get("traces", {}), "runs": rows}
    save_result(NAME, result)
    _plot(result, RESULTS / f"{NAME}.png")
    return result


def _plot(result: dict[str, Any], path: Path) -> None:
    from edgeopt_plugins._plots import log_axis, mark_empty_bars, new_figure, save_figure

    summary = result["summary"]
    names = list(summary)
    fig, (ax, bx) = new_figure(1, 2, figsize=(12, 4.2))
    x = np.arange(len(names))
    for i, p in enumerate(PERCENTILES):
        vals = [summary[n]["median_by_percentile"][str(p)] for n in names]
        vals = [v if v is not None and np.isfinite(v) else np.nan for v in vals]
        bars = ax.bar(x + (i - 1) * 0.27, vals, width=0.27, label=f"budget p{p}")
        mark_empty_bars(ax, bars, vals, missing="not reached")
    ax.set_xticks(x, names, rotation=35, ha="right", fontsize=7)
    ax.set_xlim(-0.6, len(names) - 0.4)
    log_axis(ax, "y")
    ax.set_ylabel("median measurements to within 0.1 pt")
    ax.legend(fontsize=7, loc="upper left")
    cap = result["default_cap"] + PROFILE_SIZE
    for name, marker in (("edgeopt_proxy_unknown", "o"), ("edgeopt_proxy_named", "s"),
                         ("edgeopt_conditioned_unknown", "^"), ("edgeopt_conditioned_named", "v")):
        cells = result["versus_tpe"].get(name, {}).get("cells", [])
        if cells:
            bx.scatter([min(c["baseline"], cap * 1.2) for c in cells], [min(c["ours"], cap * 1.2) for c in cells],
                       marker=marker, s=18, label=name, alpha=0.8)
    bx.plot([5, cap * 1.2], [5, cap * 1.2], color="grey", lw=0.8)
    log_axis(bx, "x")
    log_axis(bx, "y")
    bx.set_xlabel(f"stock TPE: median per device and budget (not reached: {cap * 1.2:.0f})")
    bx.set_ylabel("ours: median per device and budget")
    if bx.get_legend_handles_labels()[0]:
        bx.legend(fontsize=7)
    save_figure(fig, path)


def _per_device(result: dict[str, Any]) -> list[str]:
    """Medians per device and budget for each of our methods next to TPE's, and the cells where ours is worse."""
    versus = result.get("versus_tpe", {})
    if not versus:
        return []
    medians = {name: {(c["device"], c["percentile"]): c["ours"] for c in v["cells"]} for name, v in versus.items()}
    keys = sorted({(c["device"], c["percentile"]) for v in versus.values() for c in v["cells"]})
    tpe = {(c["device"], c["percentile"]): c["baseline"] for v in versus.values() for c in v["cells"]}
    names = list(versus)
    lines = ["", "Per device and budget (median measurements; `inf` = the median run did not get there):", "",
             "| device | budget | " + " | ".join(n.removeprefix("edgeopt_") for n in names) + " | optuna_tpe |",
             "|---|---|" + "---|" * (len(names) + 1)]
    for device, p in keys:
        lines.append(f"| {device} | p{p} | " + " | ".join(_fmt(medians[n].get((device, p))) for n in names)
                     + f" | {_fmt(tpe[(device, p)])} |")
    worse = [(n, c) for n, v in versus.items() for c in v["cells"] if not c["not_worse"]]
    if worse:
        lines += ["", "Where ours is worse than TPE (measurements of each seed; `-` = not reached):", ""]
        for name, c in worse:
            of = lambda method: ", ".join("-" if r["measurements"] is None else str(r["measurements"])  # noqa: E731
                                          for r in result["runs"][method]
                                          if (r["device"], r["percentile"]) == (c["device"], c["percentile"]))
            lines.append(f"- {name}, {c['device']} p{c['percentile']}: ours {of(name)} (median {_fmt(c['ours'])}); "
                         f"TPE {of('optuna_tpe')} (median {_fmt(c['baseline'])})")
    return lines


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return "inf" if not np.isfinite(value) else f"{value:.0f}"


def report(result: dict[str, Any]) -> str:
    caps = result["caps"]
    lines = [
        "## Search efficiency: measurements until within 0.1 point of the optimum",
        "",
        f"NB201, leave-one-family-out: {len(result['devices'])} device settings from {len(result['families'])} "
        f"hardware families ({', '.join(result['devices'])}); each device's whole family is left out of the "
        "proxies and of the conditioned model's training devices. Budgets at the "
        f"{'/'.join(map(str, result['percentiles']))}th latency percentile, {result['seeds']} seeds, at most "
        f"{result['default_cap']} trials (GP: {caps.get('optuna_gp', '-')} trials, seed 0 only). Our counts include "
        f"the {result['profile']}-design profile; `inf` = not reached within the cap. *named*: `accuracy=\"table\"`; "
        "*unknown*: the default (accuracy learned from the study's values). Stock samplers never know the accuracy.",
        "",
        "| method | median (all) | p10 | p20 | p50 | reached | sampler ms/trial (runs to the hit) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in result["summary"].items():
        by = s["median_by_percentile"]
        lines.append(f"| {name} | {_fmt(s['median_measurements'])} | {_fmt(by['10'])} | {_fmt(by['20'])} | "
                     f"{_fmt(by['50'])} | {100 * (s['hit_rate'] or 0):.0f}% | {s['sampler_ms_per_trial']:.1f} |")
    if result.get("overhead"):
        lines += ["", f"Sampler overhead over full {result['default_cap']}-trial runs (ms per trial, median): "
                  + ", ".join(f"{k} {v:.1f}" for k, v in result["overhead"].items()) + "."]
    runs = result["runs"]
    counts = {n: [(r["measurements"], r["trials"]) for r in rows] for n, rows in runs.items()}
    if "optuna_tpe_multivariate" in counts and counts["optuna_tpe_multivariate"] == counts.get("optuna_tpe"):
        lines += ["", f"optuna_tpe and optuna_tpe_multivariate made identical runs: Optuna {optuna.__version__}'s "
                  "default TPE is already multivariate for one objective."]
    missing = [name for name in OURS if name not in runs]
    if missing:
        lines += ["", f"Not measured in this result: {', '.join(missing)}."]
    versus = dict(result.get("versus_tpe", {}))
    nni_base = "nni_regularized_evolution"  # the NNI strategy's base proposals come from regularized evolution
    if nni_base in runs:
        versus.update({f"{n} vs {nni_base}": compare(runs, n, nni_base)
                       for n in OURS if n.startswith("nni_") and n in runs})
    lines += ["", "Against stock TPE (and the NNI strategy also against its own base), per device and budget (medians; "
              "runs = our runs that needed more than the baseline's median):", "",
              "| ours | not worse on every device and budget | runs worse than the baseline's median | "
              "worst device (ours / baseline) |", "|---|---|---|---|"]
    for name, c in versus.items():
        w = c["worst"]
        worst = f"{w['device']} p{w['percentile']} ({_fmt(w['ours'])} / {_fmt(w['baseline'])})" if w else "-"
        lines.append(f"| {name} | {'yes' if c['all_not_worse'] else 'no'} | "
                     f"{100 * (c['worse_fraction'] or 0):.0f}% | {worst} |")
    lines += _per_device(result)
    for key, rows in result.get("traces", {}).items():
        lines += ["", f"How the runs near the optimum on {key} (`--trace`; medians over seeds, `inf` = not reached; "
                  "share of the designs measured until the hit that fit the budget):", "",
                  "| method | within 1 pt | 0.5 pt | 0.2 pt | 0.1 pt | designs that fit |", "|---|---|---|---|---|---|"]
        for name in dict.fromkeys(r["method"] for r in rows):
            mine = [r for r in rows if r["method"] == name]
            within = [_fmt(_median(_values([{"measurements": r["within"][t]} for r in mine])))
                      for t in mine[0]["within"]]
            lines.append(f"| {name} | " + " | ".join(within) + f" | {100 * np.mean([r['fits'] for r in mine]):.0f}% |")
    if result.get("traces"):
        lines += ["", "What the misses come from (these traces, and a profile of the sampler overhead): "
                  "[tutorial-optuna.md, section 6]"
                  "(tutorial-optuna.md#6-how-a-trial-is-chosen-and-how-the-guidance-yields)."]
    quick = " --quick" if result["quick"] else ""
    traced = [f"`python -m benchmarks.search{quick} --trace {key.replace(' p', ':')}:"
              + ",".join(dict.fromkeys(r["method"] for r in rows)) + "`"
              for key, rows in result.get("traces", {}).items()]
    lines += ["", f"![search efficiency](../benchmarks/results/{NAME}.png)", "",
              f"Reproduce: `python -m benchmarks.search{quick}`" + (f"; traces: {', '.join(traced)}" if traced else ""),
              ""]
    return "\n".join(lines)


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Figures next to their targets, for the summary table of docs/benchmarks.md."""
    s = result["summary"]
    tpe = (s.get("optuna_tpe") or {}).get("median_measurements")
    cap = result.get("caps", {}).get("optuna_tpe", result.get("default_cap", 300))
    rows = []
    for name in OURS:
        if name not in s or tpe is None:
            continue
        med = s[name]["median_measurements"]
        named = name.endswith("_named")
        if named:
            rows.append({"figure": f"{name}: median measurements to within 0.1 pt", "target": "<= 20",
                         "measured": _fmt(med), "met": bool(med <= 20)})
        factor = 5.0 if named else 2.0
        if np.isfinite(med):
            ratio = (tpe if np.isfinite(tpe) else cap) / med
            shown = f"{ratio:.2f}x" + ("" if np.isfinite(tpe) else f" or more (TPE median beyond its {cap}-trial cap)")
        else:
            ratio, shown = 0.0, "not reached"
        rows.append({"figure": f"{name}: fewer measurements than stock TPE", "target": f">= {factor:.0f}x",
                     "measured": shown, "met": bool(ratio >= factor)})
        versus = result.get("versus_tpe", {}).get(name)
        if versus:
            w = versus["worst"]
            rows.append({"figure": f"{name}: not worse than TPE on every device and budget", "target": "all",
                         "measured": f"{sum(c['not_worse'] for c in versus['cells'])}/{len(versus['cells'])}"
                         + (f" (worst {w['device']} p{w['percentile']})" if w else ""),
                         "met": bool(versus["all_not_worse"])})
    for name, ms in result.get("overhead", {}).items():
        if name.startswith("edgeopt"):
            rows.append({"figure": f"{name}: sampler time per trial over {result['default_cap']} trials",
                         "target": "< 20 ms", "measured": f"{ms:.1f} ms", "met": bool(ms < 20)})
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 families, 2 seeds, 150 trials")
    parser.add_argument("--rerun", default=None,
                        help="comma-separated methods (or 'overhead') to measure into the saved result")
    parser.add_argument("--trace", default=None, metavar="DEVICE:PERCENTILE:METHODS",
                        help="e.g. fpga:20:edgeopt_proxy_unknown,optuna_tpe: how each seed nears the optimum")
    parser.add_argument("--merge", default=None, metavar="FILE",
                        help="add the methods the saved result lacks from FILE (a result of the same size); "
                             "measures nothing")
    args = parser.parse_args()
    if args.trace:
        device, percentile, names = args.trace.split(":")
        print("method | seed | measurements to within 1 / 0.5 / 0.2 / 0.1 pt | share that fit the budget")
        for row in trace(device, int(percentile), names.split(","), quick=args.quick):
            print(f"{row['method']} | {row['seed']} | " + " / ".join(map(str, row["within"].values()))
                  + f" | {row['fits']:.0%}")
    elif args.merge:
        print(report(merge(args.merge)))
    else:
        print(report(run(quick=args.quick, rerun=args.rerun.split(",") if args.rerun else None)))
