"""The output of a fleet run: designs.csv, results.json, summary.json and fleet.png."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from edgeopt_plugins._io import atomic_write, write_json
from edgeopt_plugins._plots import new_figure, save_figure

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
    fig, axes = new_figure(1, 3, figsize=(13, 3.6))
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    rates = []
    for kind in kinds:
        sub = [r for r in rows if r["kind"] == kind and r.get("measured_latency_ms") is not None]
        rates.append(100.0 * sum(bool(r.get("violated")) for r in sub) / len(sub) if sub else 0.0)
    axes[0].bar(kinds, rates, color="tab:red")
    axes[0].set_ylabel("budget violations (%)")
    axes[0].set_title("true latency over budget", fontsize=9)
    one_shot = [r["regret"] for r in rows if r.get("regret") is not None]
    refined = [r["refined_regret"] for r in rows if r.get("refined_regret") is not None]
    if one_shot:
        axes[1].hist(one_shot, bins=30, alpha=0.7, label="one-shot")
    if refined:
        axes[1].hist(refined, bins=30, alpha=0.7, label="refined")
    axes[1].set_xlabel("accuracy regret (points)")
    axes[1].set_title("regret vs true optimum under budget", fontsize=9)
    if one_shot or refined:
        axes[1].legend(fontsize=8)
    seconds = [1000.0 * r["seconds"] for r in rows if r.get("seconds") is not None]
    refine_s = [1000.0 * r["refine_seconds"] for r in rows if r.get("refine_seconds") is not None]
    if seconds:
        axes[2].hist(seconds, bins=30, alpha=0.7, label="one-shot")
    if refine_s:
        axes[2].hist(refine_s, bins=30, alpha=0.7, label="refine")
    axes[2].set_xlabel("time per device (ms)")
    axes[2].set_xscale("symlog")
    axes[2].set_title("time per device", fontsize=9)
    if seconds or refine_s:
        axes[2].legend(fontsize=8)
    save_figure(fig, path)
