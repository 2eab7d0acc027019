"""The default ``edgeopt`` job: both approaches on held-out NB201 devices, then a simulated fleet.

For a few target devices that span the range of agreement with a proxy device:

1. how well the proxy ranks the target's latencies (Spearman, Kendall);
2. what to deploy under a budget (the 30th percentile of the target's latency) when
   choosing from the proxy's ranking alone, from approach 1 (the proxies adapted to
   10 measurements of the target), and from approach 2 (the learned optimizer of a
   model fitted without the targets, from the same 10 measurements), each scored
   against the true optimum under the budget (accuracy regret, real latency);
3. the same model recommending designs for a fleet of simulated devices at once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeopt_plugins._io import display_path
from edgeopt_plugins.data import load_table
from edgeopt_plugins.devices import DeviceProfile
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.optimizer import ConditionedModel, FitConfig, best_under_budget, fit_from_data
from edgeopt_plugins.predictors import ProxyAdapter, central_device, kendall, monotonicity_matrix, spearman

__all__ = ["run_overview", "spread_targets"]

PROFILE_SIZE = 10


def spread_targets(names: list[str], corr_to_proxy: np.ndarray, n: int = 4) -> list[str]:
    """``n`` devices spanning the range of agreement with the proxy (least to most)."""
    order = np.argsort(corr_to_proxy)
    picks = np.unique(np.round(np.linspace(0, len(order) - 1, n)).astype(int))
    return [names[order[i]] for i in picks]


def _pick(latency: np.ndarray, accuracy: np.ndarray, budget: float) -> int:
    best = best_under_budget(latency, accuracy, budget)
    return best if best >= 0 else int(np.argmin(latency))


def run_overview(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    proxy: str | None = None,
    targets: list[str] | None = None,
    budget_percentile: float = 30.0,
    dataset: str = "cifar10",
    model_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    fit_config: str = "fast",
    fleet_size: int = 1000,
    seed: int = 0,
    progress: bool = True,
    report: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the overview and return its rows and summary (see the module docstring).

    Args:
        data_dir: Benchmark data folder.
        proxy: Proxy device (default: the most central device of the table).
        targets: Target devices (default: 4 spanning the agreement with the proxy).
        budget_percentile: Budget per target, as a percentile of its latencies.
        dataset: Accuracy column.
        model_dir: A fitted model folder to use (it must not have seen the targets).
        cache_dir: Otherwise, where the model fitted here is kept (and reused by a rerun
            with the same targets and ``fit_config``).
        fit_config: ``"tiny"``, ``"fast"`` or ``"default"`` for the model fitted here.
        fleet_size: Simulated devices in the fleet part (0 to skip it).
        seed: Seed of the profiles and the model.
        progress: Progress bars while fitting and evaluating the targets.
        report: Called with one line as each stage starts (what it does, and whether the
            cached model is reused); ``None``: silent.
    """
    say = report or (lambda line: None)
    if not 0.0 < budget_percentile <= 100.0:
        raise InputError(f"--budget-percentile must be in (0, 100], got {budget_percentile}")
    latency = load_table("nb201", "latency_ms", data_dir=data_dir)
    accuracy_table = load_table("nb201", "accuracy", data_dir=data_dir)
    acc = accuracy_table.lookup(latency.archs, accuracy_table.devices[accuracy_table.device_index(dataset)])
    names, matrix = monotonicity_matrix(latency)
    proxy = proxy or central_device(names, matrix)
    latency.device_index(proxy)
    for t in targets or []:
        latency.device_index(t)
    others = [d for d in names if d != proxy]
    corr = np.array([matrix[names.index(proxy), names.index(d)] for d in others])
    targets = targets or spread_targets(others, corr)
    if proxy in targets:
        raise InputError(f"the proxy {proxy!r} cannot also be a target")
    say(f"[1/4] NB201: {len(latency):,} architectures on {len(names)} devices; proxy {proxy}, "
        f"targets {', '.join(targets)}")
    model = _model(data_dir, targets, model_dir, cache_dir, fit_config, seed, progress, say)
    say(f"[3/4] each target: approach 1 adapts the proxies to {PROFILE_SIZE} of its measurements, approach 2 "
        "recommends from the same ones")
    proxy_lat = latency.column(proxy)
    rows = []
    for target in _bar(targets, "targets", progress):
        truth = latency.column(target)
        budget = float(np.nanpercentile(truth, budget_percentile))
        best = _pick(truth, acc, budget)
        profile = DeviceProfile.from_table(latency, target, k=PROFILE_SIZE, seed=seed)
        proxies = latency.select(devices=[d for d in latency.devices if d != target])
        adapted = ProxyAdapter(proxies, seed=seed).fit(profile).predict(latency.archs)
        picks = {
            "proxy_only": _pick(proxy_lat, acc, float(np.nanpercentile(proxy_lat, budget_percentile))),
            "approach1": _pick(adapted, acc, budget),
        }
        design = model.recommend(profile, latency_budget_ms=budget, top_k=1)[0]
        picks["approach2"] = int(latency.rows_of([design.arch])[0])
        row: dict[str, Any] = {
            "target": target, "spearman_vs_proxy": spearman(proxy_lat, truth), "kendall_vs_proxy": kendall(proxy_lat, truth),
            "adapted_spearman_k10": spearman(adapted, truth), "budget_ms": budget,
            "optimum_acc": float(acc[best]), "optimum_arch": latency.archs[best],
        }
        for method, i in picks.items():
            row[f"{method}_acc"] = float(acc[i])
            row[f"{method}_ms"] = float(truth[i])
            row[f"{method}_over_budget"] = bool(truth[i] > budget)
            row[f"{method}_regret"] = float(acc[best] - acc[i])
        row["approach2_arch"] = design.arch
        rows.append(row)
    summary: dict[str, Any] = {"proxy": proxy, "budget_percentile": budget_percentile, "dataset": dataset,
                               "profile_size": PROFILE_SIZE, "model": model.info.get("fit_seconds"), "targets": rows}
    if fleet_size:
        say(f"[4/4] fleet: building {fleet_size:,} simulated devices and recommending for all of them in one batch")
        summary["fleet"] = _fleet(model, fleet_size, budget_percentile, seed, data_dir)
    else:
        say("[4/4] fleet: skipped (--fleet 0)")
    return summary


def _bar(items: list[str], desc: str, progress: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="device", disable=not progress, leave=False)


def _model(data_dir: Any, targets: list[str], model_dir: Any, cache_dir: Any, fit_config: str, seed: int,
           progress: bool, say: Callable[[str], None]) -> ConditionedModel:
    """The user's model (which must not have seen the targets), else a cached or freshly fitted one."""
    configs = {"tiny": FitConfig.tiny, "fast": FitConfig.fast, "default": FitConfig}
    if fit_config not in configs:
        raise InputError(f"fit config must be one of {', '.join(configs)}, got {fit_config!r}")
    if model_dir is not None:
        model = ConditionedModel.load(model_dir)
        seen = sorted(set(model.info.get("training_devices", ())) & set(targets))
        if seen:
            raise InputError(f"{model_dir}: the model was trained on target device(s) {', '.join(seen)}; "
                             "fit one without them (edgeopt fit --exclude-devices ...)")
        say(f"[2/4] model: using {display_path(model_dir)}")
        return model
    cache = Path(cache_dir) if cache_dir is not None else None
    stale = ""
    if cache is not None and (cache / "model.json").exists():
        model = ConditionedModel.load(cache)
        info = model.info
        if not set(info.get("training_devices", ())) & set(targets) and info.get("config_name") == fit_config:
            say(f"[2/4] model: reusing {display_path(cache)} (fitted earlier without the targets, "
                f"--fit-config {fit_config}); delete it to fit afresh")
            return model
        stale = f", replacing the one in {display_path(cache)} (other targets or --fit-config)"
    where = f" into {display_path(cache)}" if cache is not None else ""
    say(f"[2/4] model: fitting the approach-2 model without the targets (--fit-config {fit_config}){where}{stale}")
    model = fit_from_data("nb201", data_dir=data_dir, exclude_devices=targets, config=configs[fit_config](),
                          seed=seed, progress=progress)
    model.info["config_name"] = fit_config
    if cache is not None:
        model.save(cache)
    return model


def _fleet(model: ConditionedModel, n: int, budget_percentile: float, seed: int, data_dir: Any) -> dict[str, Any]:
    from edgeopt_plugins.fleet import FleetProblem, TargetSpec, build_targets, summarize

    targets = build_targets(TargetSpec("nb201", simulated=n, seed=seed, data_dir=None if data_dir is None
                                       else str(data_dir)))
    problem = FleetProblem(model, targets, budget_percentile=budget_percentile)
    start = time.perf_counter()
    rows = problem.one_shot_all(chunk_size=500)
    seconds = time.perf_counter() - start
    summary = summarize(rows, {})
    regret = summary["regret"] or {}
    return {"devices": n, "seconds": seconds, "ms_per_device": 1000 * seconds / n,
            "violation_rate": summary["violation_rate"], "mean_regret": regret.get("mean"),
            "median_regret": regret.get("median"), "infeasible": summary["infeasible"]}
