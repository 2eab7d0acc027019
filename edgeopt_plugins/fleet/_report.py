"""The output of a fleet run: designs.csv, results.json, summary.json and fleet.png."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from edgeopt_plugins._io import atomic_write, write_json
from edgeopt_plugins._plots import log_axis, new_figure, save_figure

__all__ = ["FleetReport", "write_report", "summarize"]

REFINE_FIELDS = ("refined_arch", "refined_latency_ms", "refined_accuracy", "refined_regret", "refine_trials",
                 "refine_failed", "refine_stale", "refine_seconds", "refine_error")


@dataclass(frozen=True)
class FleetReport:
    """What a fleet run produced."""

    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    paths: dict[str, Path]


def _stats(values: list[float]) -> dict[str, float] | None:
    arr = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if arr.size == 0:
        return None
    return {"mean": float(arr.mean()), "median": float(np.median(arr)), "p90": float(np.percentile(arr, 90)),
            "max": float(arr.max()), "n": int(arr.size)}


def summarize(rows: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """Counts and distributions over the devices of a run."""
    measured = [r for r in rows if r.get("measured_latency_ms") is not None]
    violated = [r for r in measured if r.get("violated")]
    out: dict[str, Any] = {
        **meta,
        "devices_done": len(rows),
        "recommended": sum(not r.get("infeasible") for r in rows),
        "infeasible": sum(bool(r.get("infeasible")) for r in rows),
        "with_true_latency": len(measured),
        "budget_violations": len(violated),
        "violation_rate": len(violated) / len(measured) if measured else None,
        "regret": _stats([r.get("regret") for r in rows]),
        "seconds_per_device": _stats([r.get("seconds") for r in rows]),
        "by_kind": {},
    }
    for kind in dict.fromkeys(r["kind"] for r in rows):
        sub = [r for r in rows if r["kind"] == kind]
        sub_measured = [r for r in sub if r.get("measured_latency_ms") is not None]
        out["by_kind"][kind] = {
            "devices": len(sub),
            "violation_rate": (sum(bool(r.get("violated")) for r in sub_measured) / len(sub_measured)
                               if sub_measured else None),
            "regret": _stats([r.get("regret") for r in sub]),
        }
    if any("refine_trials" in r or "refine_error" in r for r in rows):
        out["refine"] = {
            "trials": int(sum(r.get("refine_trials", 0) for r in rows)),
            "failed_trials": int(sum(r.get("refine_failed", 0) for r in rows)),
            "stale_trials": int(sum(r.get("refine_stale", 0) for r in rows)),
            "errors": sum(1 for r in rows if r.get("refine_error")),
            "regret": _stats([r.get("refined_regret") for r in rows]),
            "seconds_per_device": _stats([r.get("refine_seconds") for r in rows]),
        }
    return out


def write_report(out: Path, rows: list[dict[str, Any]], settings: dict[str, Any], meta: dict[str, Any]) -> FleetReport:
    """Write the run's files into ``out`` (each atomically) and return the report."""
    from edgeopt_plugins.fleet._problem import ROW_FIELDS

    summary = summarize(rows, meta)
    columns = list(ROW_FIELDS) + ([f for f in REFINE_FIELDS if any(f in r for r in rows)])
    frame = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns)
    paths = {"designs": out / "designs.csv", "results": out / "results.json", "summary": out / "summary.json",
             "plot": out / "fleet.png"}
    with atomic_write(paths["designs"], newline="") as handle:
        frame.to_csv(handle, index=False, lineterminator="\n")
    write_json(paths["results"], {"settings": settings, "summary": summary, "devices": rows})
    write_json(paths["summary"], summary)
    _plot(rows, paths["plot"])
    return FleetReport(rows, summary, paths)


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    fig, axes = new_figure(1, 3, figsize=(13, 3.6), layout="constrained")
    _violations_panel(axes[0], rows)
    one_shot = [r["regret"] for r in rows if r.get("regret") is not None]
    refined = [r["refined_regret"] for r in rows if r.get("refined_regret") is not None]
    if one_shot:
        axes[1].hist(one_shot, bins=30, alpha=0.7, label="one-shot")
    if refined:
        axes[1].hist(refined, bins=30, alpha=0.7, label="refined")
    if not (one_shot or refined):
        axes[1].text(0.5, 0.5, "no device with a known optimum", transform=axes[1].transAxes, ha="center",
                     fontsize=8)
    axes[1].set_xlabel("accuracy regret (points)")
    axes[1].set_ylabel("devices")
    axes[1].set_title("regret vs true optimum under budget", fontsize=9)
    if one_shot or refined:
        axes[1].legend(fontsize=8)
    _time_panel(axes[2], rows)
    save_figure(fig, path)


def _violations_panel(ax: Any, rows: list[dict[str, Any]]) -> None:
    """Share of devices over budget, per kind of device, each bar labelled ``violated/measured``."""
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    counts = []
    for kind in kinds:
        sub = [r for r in rows if r["kind"] == kind and r.get("measured_latency_ms") is not None]
        counts.append((sum(bool(r.get("violated")) for r in sub), len(sub)))
    rates = [100.0 * v / n if n else float("nan") for v, n in counts]
    bars = ax.bar(kinds, np.nan_to_num(rates), color="tab:red")
    for bar, (violated, measured) in zip(bars, counts):
        label = f"{violated}/{measured}" if measured else "no true latency"
        ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()), xytext=(0, 2),
                    textcoords="offset points", ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, max(10.0, 1.25 * max(np.nan_to_num(rates), default=0.0)))
    ax.set_ylabel("budget violations (%)")
    ax.set_title("true latency over budget (violated/measured)", fontsize=9)


def _time_panel(ax: Any, rows: list[dict[str, Any]]) -> None:
    """Median time per device of each phase, with a whisker to the 90th percentile."""
    phases = {"one-shot": [r.get("seconds") for r in rows], "refine": [r.get("refine_seconds") for r in rows]}
    stats = {name: _stats([v for v in values if v is not None]) for name, values in phases.items()}
    stats = {name: st for name, st in stats.items() if st is not None}
    if not stats:
        ax.text(0.5, 0.5, "no timings", transform=ax.transAxes, ha="center", fontsize=8)
        ax.set_axis_off()
        return
    names = list(stats)
    median = np.array([1000.0 * stats[n]["median"] for n in names])
    p90 = np.array([1000.0 * stats[n]["p90"] for n in names])
    ax.bar(names, median, color=["tab:blue", "tab:orange"][: len(names)], width=0.5,
           yerr=[np.zeros_like(median), p90 - median], capsize=4)
    for x, (m, top) in enumerate(zip(median, p90)):
        ax.annotate(f"{m:,.0f} ms" if m >= 100 else f"{m:.3g} ms", (x, top), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=8)
    ax.set_xlim(-0.8, len(names) - 0.2)
    if median.min() > 0 and p90.max() / median.min() > 20:
        log_axis(ax, "y")
    else:
        ax.set_ylim(0, 1.2 * p90.max())
    ax.set_ylabel("time per device (ms)")
    ax.set_title("time per device (median, whisker to p90)", fontsize=9)
