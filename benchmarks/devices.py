"""Benchmark of the device layer: simulated-fleet scale and realism, TorchDevice stability.

Three parts:

1. **Scale.** Draw 10,000 simulated NB201 devices and compute the latency of all
   15,625 architectures on each, in chunks (seconds, peak traced memory), against
   the bare matrix products of the same chunks measured in the same run.
2. **Realism.** Statistics of simulated devices next to the real devices of each
   table (pairwise Spearman, per-device spread of log latency, latency levels and
   ranges), for several monotonicity settings; and a leave-one-device-out check: for
   every real NB201 device, a fleet fitted *without* it is compared with it.
3. **TorchDevice stability.** Two profiles of the same 30 NB201 architectures on the
   same setting, for a few settings (Spearman between the two runs).

Run with ``python -m benchmarks.devices [--quick]``.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from benchmarks._common import RESULTS, command_line, save_result, timer
from edgeopt_plugins._plots import new_figure, save_figure
from edgeopt_plugins.data import load_table
from edgeopt_plugins.devices import FleetConfig, SimulatedFleet, TorchDevice, spread_archs
from edgeopt_plugins.predictors import spearman

NAME = "devices"
QUANTILES = (5, 25, 50, 75, 95)
#: Monotonicity settings compared with the real devices.
SETTINGS = ("real", 0.5, 0.7, 0.95, 0.99)
#: TorchDevice settings: (label, keyword arguments).
TORCH_SETTINGS = (
    ("t1-b1-fp32", {}),
    ("t1-b1-fp32 wall clock", {"clock": "wall"}),
    ("t2-b1-fp32", {"threads": 2}),
    ("t1-b8-fp32", {"batch_size": 8}),
    ("t1-b1-int8", {"dtype": "int8"}),
)


def _quantiles(values: np.ndarray) -> dict[str, float]:
    return {f"p{q}": round(float(v), 4) for q, v in zip(QUANTILES, np.percentile(values, QUANTILES))}


def _rank_z(values: np.ndarray) -> np.ndarray:
    """Column ranks standardised so that ``a.T @ b / n`` is the Spearman matrix."""
    ranks = stats.rankdata(values, axis=0)
    return (ranks - ranks.mean(axis=0)) / ranks.std(axis=0)


def _pairwise(values: np.ndarray) -> np.ndarray:
    z = _rank_z(values)
    corr = z.T @ z / len(z)
    return corr[np.triu_indices_from(corr, k=1)]


def _population(latency: np.ndarray) -> dict[str, Any]:
    """Statistics of a set of devices (columns) over the same architectures (rows)."""
    logs = np.log(latency)
    return {
        "devices": latency.shape[1],
        "pairwise_spearman": _quantiles(_pairwise(latency)),
        "log_latency_std": _quantiles(logs.std(axis=0)),
        "median_latency_ms": _quantiles(np.median(latency, axis=0)),
        "max_over_min": _quantiles(latency.max(axis=0) / latency.min(axis=0)),
    }


def _realism(space: str, *, quick: bool, n_devices: int, n_archs: int) -> dict[str, Any]:
    table = load_table(space)
    rows = np.flatnonzero(table.complete_rows)
    rows = np.random.default_rng(0).choice(rows, size=min(n_archs, len(rows)), replace=False)
    real = table.values[rows]
    with timer() as t_fit:
        fleet = SimulatedFleet.fit(table, seed=0)
    out: dict[str, Any] = {
        "space": space,
        "real_devices": len(table.devices),
        "archs": len(rows),
        "fit_s": round(t_fit["s"], 2),
        "fit_quality": fleet.fit_quality,
        "real": _population(real),
        "simulated": {},
    }
    for setting in SETTINGS[:2] if quick else SETTINGS:
        tuned = fleet if setting == "real" else fleet.with_monotonicity(setting)
        sim = tuned.sample_devices(n_devices, seed=1).latency(table.indices[rows]).astype(np.float64)
        cross = _rank_z(sim).T @ _rank_z(real) / len(rows)  # (sim, real) Spearman
        out["simulated"][str(setting)] = {
            "target": round(tuned.monotonicity, 4),
            "spread": round(tuned.spread, 4),
            **_population(sim),
            "nearest_real_per_simulated": _quantiles(cross.max(axis=1)),
            "nearest_simulated_per_real": _quantiles(cross.max(axis=0)),
            "_pairwise": _pairwise(sim) if space == "nb201" else None,
        }
    out["_real_pairwise"] = _pairwise(real) if space == "nb201" else None
    return out


def _leave_one_out(*, quick: bool, n_devices: int, n_archs: int) -> dict[str, Any]:
    """For each real NB201 device: a fleet fitted without it, compared with it."""
    table = load_table("nb201")
    rows = np.random.default_rng(1).choice(len(table), size=n_archs, replace=False)
    real = table.values[rows]
    z_real = _rank_z(real)
    held_out = list(range(len(table.devices)))
    if quick:
        order = np.argsort(np.median(z_real.T @ z_real / n_archs, axis=1))
        held_out = sorted(int(order[i]) for i in np.linspace(0, len(order) - 1, 5).round().astype(int))
    config = FleetConfig(calibration_devices=128) if quick else FleetConfig()
    per_device = []
    for h in held_out:
        others = [d for i, d in enumerate(table.devices) if i != h]
        fleet = SimulatedFleet.fit(table, devices=others, seed=0, config=config)
        sim = fleet.sample_devices(n_devices, seed=2).latency(table.indices[rows]).astype(np.float64)
        to_sim = _rank_z(sim).T @ z_real[:, h] / n_archs
        to_real = np.delete(z_real.T @ z_real[:, h] / n_archs, h)
        log_std = np.log(sim).std(axis=0)
        per_device.append({
            "device": table.devices[h],
            "nearest_simulated": round(float(to_sim.max()), 4),
            "nearest_seen_real": round(float(to_real.max()), 4),
            "median_to_simulated": round(float(np.median(to_sim)), 4),
            "median_to_seen_real": round(float(np.median(to_real)), 4),
            "log_std_percentile_in_fleet": round(float(stats.percentileofscore(log_std, np.log(real[:, h]).std())), 1),
            "level_percentile_in_fleet": round(float(stats.percentileofscore(
                np.log(sim).mean(axis=0), np.log(real[:, h]).mean())), 1),
        })
    near_sim = np.array([r["nearest_simulated"] for r in per_device])
    near_real = np.array([r["nearest_seen_real"] for r in per_device])
    gap = np.array([r["median_to_simulated"] - r["median_to_seen_real"] for r in per_device])
    return {
        "simulated_devices_per_fit": n_devices,
        "archs": n_archs,
        "devices": per_device,
        "median_nearest_simulated": round(float(np.median(near_sim)), 4),
        "median_nearest_seen_real": round(float(np.median(near_real)), 4),
        "share_nearest_simulated_at_least_nearest_real": round(float(np.mean(near_sim >= near_real)), 3),
        "median_abs_gap_median_spearman": round(float(np.median(np.abs(gap))), 4),
        "share_log_std_inside_fleet_p5_p95": round(float(np.mean(
            [5 <= r["log_std_percentile_in_fleet"] <= 95 for r in per_device])), 3),
    }


def _scale(*, n_devices: int) -> dict[str, Any]:
    table = load_table("nb201")
    fleet = SimulatedFleet.fit(table, seed=0)
    archs = table.indices
    tracemalloc.start()
    start = time.perf_counter()
    devices = fleet.sample_devices(n_devices, seed=0)
    sampled = time.perf_counter()
    best = np.empty(n_devices, dtype=np.int64)
    for chunk in devices.iter_chunks(archs, chunk_size=1024):
        best[chunk.device_ids] = chunk.latency_ms.argmin(axis=0)
    done = time.perf_counter()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # Baseline in the same run: the bare float32 matrix products of the same chunks.
    x = fleet.features.all(archs)
    w = np.random.default_rng(0).standard_normal((min(n_devices, 1024), x.shape[1])).astype(np.float32)
    t0 = time.perf_counter()
    for start_id in range(0, n_devices, 1024):
        (x @ w[: min(1024, n_devices - start_id)].T).argmin(axis=0)
    gemm = time.perf_counter() - t0
    return {
        "devices": n_devices,
        "archs": len(archs),
        "features": int(x.shape[1]),
        "sample_devices_s": round(sampled - start, 3),
        "latency_all_s": round(done - sampled, 3),
        "total_s": round(done - start, 3),
        "bare_matmul_s": round(gemm, 3),
        "ratio_to_bare_matmul": round((done - sampled) / gemm, 2),
        "peak_traced_mb": round(peak / 2**20, 1),
        "full_matrix_mb": round(n_devices * len(archs) * 4 / 2**20, 1),
        "distinct_best_archs": int(len(np.unique(best))),
    }


def _torch_stability(*, quick: bool) -> dict[str, Any]:
    archs = spread_archs("nb201", 30, seed=0)
    repeats = 5 if quick else 10
    settings = TORCH_SETTINGS[:2] if quick else TORCH_SETTINGS
    rows, firsts = [], {}
    for label, kwargs in settings:
        device = TorchDevice("nb201", warmup=2, repeats=repeats, **kwargs)
        load = os.getloadavg()[0]
        with timer() as t:
            first = device.measure(archs)
            second = device.measure(archs)
        firsts[label] = first["latency_ms"]
        rows.append({
            "setting": label,
            "name": device.name,
            "clock": device.clock,
            "spearman_two_runs": round(spearman(first["latency_ms"], second["latency_ms"]), 4),
            "median_relative_iqr": round(float(np.median(first["latency_iqr_ms"] / first["latency_ms"])), 4),
            "latency_ms_range": [round(float(first["latency_ms"].min()), 3), round(float(first["latency_ms"].max()), 3)],
            "seconds_for_two_runs": round(t["s"], 1),
            "load_average": round(load, 2),
            "_runs": (first["latency_ms"], second["latency_ms"]),
        })
    labels = list(firsts)
    between = {f"{a} vs {b}": round(spearman(firsts[a], firsts[b]), 4)
               for i, a in enumerate(labels) for b in labels[i + 1:]}
    return {"archs": len(archs), "repeats": repeats, "settings": rows, "spearman_between_settings": between}


def _plot(realism: dict[str, Any], loo: dict[str, Any], torch_rows: list[dict[str, Any]], folder: Path = RESULTS
          ) -> str:
    fig, axes = new_figure(1, 3, figsize=(15, 4.2))

    def cdf(ax: Any, values: np.ndarray, **kwargs: Any) -> None:
        ax.plot(np.sort(values), np.linspace(0, 1, len(values)), **kwargs)

    real = realism["_real_pairwise"]
    cdf(axes[0], real, color="black", lw=2.5, label=f"real ({realism['real_devices']} devices, {len(real)} pairs)")
    for setting, row in realism["simulated"].items():
        label = f"simulated, monotonicity {setting}" + (f" ({row['target']:.2f})" if setting == "real" else "")
        cdf(axes[0], row["_pairwise"], lw=1.3, label=label)
    axes[0].set_xlim(-0.2, 1.0)
    axes[0].set_xlabel("pairwise Spearman between devices (NB201 latency)")
    axes[0].set_ylabel("fraction of device pairs below")
    axes[0].legend(fontsize=7, loc="upper left")
    near_real = [r["nearest_seen_real"] for r in loo["devices"]]
    near_sim = [r["nearest_simulated"] for r in loo["devices"]]
    axes[1].scatter(near_real, near_sim, s=14)
    lo = min(near_real + near_sim) - 0.02
    axes[1].plot([lo, 1], [lo, 1], color="0.5", lw=0.8)
    axes[1].set_xlabel("held-out device: best Spearman with a seen real device")
    axes[1].set_ylabel("best Spearman with a simulated device")
    axes[1].set_title("leave-one-device-out (NB201)", fontsize=9)
    first, second = torch_rows[0]["_runs"]
    axes[2].scatter(first, second, s=14)
    top = max(first.max(), second.max()) * 1.05
    axes[2].plot([0, top], [0, top], color="0.5", lw=0.8)
    axes[2].set_xlabel("run 1 latency (ms)")
    axes[2].set_ylabel("run 2 latency (ms)")
    axes[2].set_title(f"TorchDevice {torch_rows[0]['setting']}: Spearman {torch_rows[0]['spearman_two_runs']:.3f}",
                      fontsize=9)
    path = save_figure(fig, folder / f"{NAME}.png")
    return path.name


def _strip_private(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_private(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [_strip_private(v) for v in obj]
    return obj


def run(*, quick: bool = False) -> dict[str, Any]:
    """Run the benchmark; writes ``benchmarks/results/devices.json`` and ``devices.png``."""
    n_sim, n_archs = (200, 2000) if quick else (500, 4000)
    realism = {space: _realism(space, quick=quick, n_devices=n_sim, n_archs=n_archs)
               for space in (("nb201",) if quick else ("nb201", "fbnet", "ofa", "mnasnet"))}
    loo = _leave_one_out(quick=quick, n_devices=300 if quick else 500, n_archs=n_archs)
    scale = _scale(n_devices=2_000 if quick else 10_000)
    torch_part = _torch_stability(quick=quick)
    plot = _plot(realism["nb201"], loo, torch_part["settings"])
    result = _strip_private({"quick": quick, "scale": scale, "realism": realism, "leave_one_out": loo,
                             "torch": torch_part, "plot": plot})
    save_result(NAME, result)
    return result


def _fmt_q(q: dict[str, float]) -> str:
    return f"{q['p5']:.2f} / {q['p50']:.2f} / {q['p95']:.2f}"


def report(result: dict[str, Any]) -> str:
    """Markdown section with the figures, their targets, the plot and the reproducing command."""
    s, loo, tor = result["scale"], result["leave_one_out"], result["torch"]
    lines = [
        "## Devices: simulated fleet and TorchDevice",
        "",
        f"Reproduce: `EDGEOPT_DATA_DIR=../shared/data python -m benchmarks.devices{' --quick' if result['quick'] else ''}`"
        " (results in `benchmarks/results/devices.json`).",
        "",
        "| figure | measured | target |",
        "|---|---|---|",
        f"| simulated fleet, {s['devices']:,} devices x {s['archs']:,} NB201 archs: draw + all latencies | "
        f"{s['total_s']:.1f} s ({s['sample_devices_s']:.1f} s draw, {s['latency_all_s']:.1f} s latencies; "
        f"{s['ratio_to_bare_matmul']:.1f}x the bare matrix products) | seconds |",
        f"| peak traced memory of that run | {s['peak_traced_mb']:.0f} MB (full matrix: {s['full_matrix_mb']:.0f} MB) "
        "| bounded (chunks) |",
        f"| TorchDevice: Spearman of two profiles, {tor['archs']} NB201 archs, {tor['settings'][0]['setting']} | "
        f"{tor['settings'][0]['spearman_two_runs']:.3f} | >= 0.9 |",
        f"| leave-one-device-out: held-out device's best Spearman with a simulated / a seen real device (median) | "
        f"{loo['median_nearest_simulated']:.3f} / {loo['median_nearest_seen_real']:.3f} | simulated close to real |",
        "",
        "Realism (p5 / median / p95 over devices or device pairs):",
        "",
        "| space | devices | pairwise Spearman | std of log latency | median latency (ms) | max/min latency |",
        "|---|---|---|---|---|---|",
    ]
    for space, r in result["realism"].items():
        for label, pop in [("real", r["real"])] + [(f"simulated {k}", v) for k, v in r["simulated"].items()]:
            extra = f" (target {pop['target']:.2f})" if "target" in pop else ""
            lines.append(
                f"| {space} | {label}{extra}: {pop['devices']} | {_fmt_q(pop['pairwise_spearman'])} | "
                f"{_fmt_q(pop['log_latency_std'])} | {_fmt_q(pop['median_latency_ms'])} | {_fmt_q(pop['max_over_min'])} |"
            )
    lines += [
        "",
        f"Leave-one-device-out on NB201 ({len(loo['devices'])} held-out devices, {loo['simulated_devices_per_fit']} "
        f"simulated devices per fit): the nearest simulated device is at least as close as the nearest seen real "
        f"device for {loo['share_nearest_simulated_at_least_nearest_real']:.0%} of them; the held-out device's median "
        f"Spearman to simulated vs to seen real devices differs by {loo['median_abs_gap_median_spearman']:.3f} "
        f"(median); its spread of log latency lies within the fleet's p5-p95 for "
        f"{loo['share_log_std_inside_fleet_p5_p95']:.0%} of them.",
        "",
        "| TorchDevice setting | name | clock | Spearman run 1 vs 2 | median relative IQR | latency (ms) | load |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in tor["settings"]:
        lo, hi = row["latency_ms_range"]
        lines.append(f"| {row['setting']} | `{row['name']}` | {row['clock']} | {row['spearman_two_runs']:.3f} | "
                     f"{row['median_relative_iqr']:.1%} | {lo:.2f}-{hi:.2f} | {row['load_average']:.1f} |")
    lines += ["", f"![devices]({'../benchmarks/results/' + result['plot']})", ""]
    return "\n".join(lines)


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Figures next to their targets, for the summary table of docs/benchmarks.md."""
    s, tor = result["scale"], result["torch"]
    thread = next(x for x in tor["settings"] if x["setting"] == "t1-b1-fp32")
    return [
        {"figure": f"simulated fleet: {s['devices']:,} devices x {s['archs']:,} NB201 latencies", "target": "seconds",
         "measured": f"{s['total_s']:.1f} s, peak {s['peak_traced_mb']:.0f} MB", "met": bool(s["total_s"] < 60)},
        {"figure": f"TorchDevice: two profiles of {tor['archs']} archs, same setting (thread clock)",
         "target": "Spearman >= 0.9", "measured": f"{thread['spearman_two_runs']:.3f}",
         "met": bool(thread["spearman_two_runs"] >= 0.9)},
    ]


if __name__ == "__main__":
    command_line(run, report, __doc__)
