"""Scoring shared by the cross-device benchmarks: Spearman against the truth, family-weighted summaries.

A benchmark scores each held-out *target setting*; ``per_target[device]`` holds its ``family``,
its ``ceiling`` (``benchmarks._ridge.ceiling``) and ``k[str(k)][method]``: the Spearman of each
random draw. A summary weighs every hardware *family* equally (a family's figure is the mean of
its settings, a setting's the mean of its draws): nine Pascal GPU settings count as one family.

Example:
    >>> per = {"a_1": {"family": "a", "ceiling": 0.9, "k": {"5": {"ours": [0.8, 0.9], "ridge_k": [0.5]}}},
    ...        "a_2": {"family": "a", "ceiling": 0.9, "k": {"5": {"ours": [0.7], "ridge_k": [0.5]}}},
    ...        "b": {"family": "b", "ceiling": 1.0, "k": {"5": {"ours": [0.9], "ridge_k": [0.6]}}}}
    >>> s = summarise_spearman(per, (5,), ("ours", "ridge_k"))
    >>> s["k"]["5"]["ours"]["mean"], s["k"]["5"]["ours"]["worst_family"], s["k"]["5"]["ours_minus_ridge"]
    (0.8375, 'a', 0.2875)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["SPEARMAN_STYLE", "HeldOutTable", "by_family", "family_causes", "family_stat", "plot_spearman", "rank_z",
           "rho", "spearman_figure", "spearman_table", "summarise_spearman", "targets_section"]

#: line style, colour, width of the methods every Spearman plot shows.
SPEARMAN_STYLE = {"ours": ("-", "C0", 2.4), "published": ("-", "C1", 1.2), "best_proxy": ("--", "C2", 1.2),
                  "ridge_k": ("-.", "C3", 1.4)}


class HeldOutTable:
    """A latency table's fully measured rows, each device's standardised true ranks and its ceiling.

    Args:
        space: Name of the space (its latency table is loaded).
        keep: Only the rows where this mask (over the table's rows) holds, among the complete ones.
        seed: Seed of the ceiling's folds.
    """

    def __init__(self, space: str, *, keep: np.ndarray | None = None, seed: int = 0) -> None:
        from edgeopt_plugins.data import load_table

        from benchmarks._ridge import ceiling

        self.table = load_table(space, "latency_ms")
        self.space = self.table.space
        mask = self.table.complete_rows if keep is None else self.table.complete_rows & keep
        self.rows = np.flatnonzero(mask)
        self.idx = self.table.indices[self.rows]
        self.archs = [self.table.archs[r] for r in self.rows]
        self.position = {a: i for i, a in enumerate(self.archs)}
        self.values = self.table.values[self.rows]
        self.truth_z = {d: rank_z(self.values[:, j]) for j, d in enumerate(self.table.devices)}
        start = time.perf_counter()
        scores = ceiling(self.space, self.idx, self.values, seed=seed)
        self.ceiling = {d: round(float(v), 5) for d, v in zip(self.table.devices, scores)}
        self.ceiling_s = time.perf_counter() - start

    def truth(self, device: str) -> np.ndarray:
        """The device's latencies on the rows."""
        return self.values[:, self.table.device_index(device)]

    def pick(self, positions: np.ndarray) -> tuple[str, ...]:
        """Architectures at some positions of the rows."""
        return tuple(self.archs[i] for i in positions)

    def proxy_spearman(self, target: str, proxies: Sequence[str]) -> dict[str, float]:
        """Spearman of each proxy's latencies with the target's, over the rows."""
        return {d: float(np.mean(self.truth_z[d] * self.truth_z[target])) for d in proxies}


def rank_z(x: np.ndarray) -> np.ndarray:
    """Tie-averaged ranks, standardised (``mean(rank_z(a) * rank_z(b))`` is the Spearman correlation)."""
    r = stats.rankdata(x)
    sd = r.std()
    return (r - r.mean()) / sd if sd > 0 else np.zeros_like(r)


def rho(pred: np.ndarray, truth_z: np.ndarray) -> float:
    """Spearman of a prediction against standardised true ranks."""
    return float(np.mean(rank_z(pred) * truth_z))


def by_family(values: dict[str, float], families: dict[str, str]) -> dict[str, float]:
    """Mean of the devices' values per family."""
    groups: dict[str, list[float]] = {}
    for device, v in values.items():
        groups.setdefault(families[device], []).append(v)
    return {f: float(np.mean(v)) for f, v in groups.items()}


def family_stat(values: dict[str, float], families: dict[str, str]) -> dict[str, Any]:
    """Mean over families (each the mean of its devices), worst family, mean over devices, per family."""
    fam = by_family(values, families)
    worst = min(fam, key=fam.get)
    return {"mean": round(float(np.mean(list(fam.values()))), 4), "worst": round(fam[worst], 4), "worst_family": worst,
            "mean_devices": round(float(np.mean(list(values.values()))), 4), "families": len(fam),
            "by_family": {f: round(v, 4) for f, v in fam.items()}}


def summarise_spearman(per_target: dict[str, Any], ks: Sequence[int], methods: Sequence[str]) -> dict[str, Any]:
    """Family-weighted Spearman per ``k`` and method, the ceiling, ``ours`` against ``ridge_k`` and the ceiling."""
    families = {d: r["family"] for d, r in per_target.items()}
    ceil = family_stat({d: r["ceiling"] for d, r in per_target.items()}, families)
    out: dict[str, Any] = {"k": {}, "ceiling": ceil}
    for k in ks:
        row: dict[str, Any] = {}
        for m in methods:
            per_dev = {d: float(np.mean(r["k"][str(k)][m])) for d, r in per_target.items() if r["k"][str(k)].get(m)}
            if per_dev:
                row[m] = family_stat(per_dev, families)
                row[m]["worst_draw"] = round(min(min(r["k"][str(k)][m]) for r in per_target.values()), 4)
        if "ridge_k" in row and "ours" in row:
            row["ours_minus_ridge"] = round(row["ours"]["mean"] - row["ridge_k"]["mean"], 4)
            row["families_below_ridge"] = sorted(f for f, v in row["ours"]["by_family"].items()
                                                 if v < row["ridge_k"]["by_family"][f])
        out["k"][str(k)] = row
    last = out["k"][str(ks[-1])]["ours"]
    gaps = {f: round(ceil["by_family"][f] - v, 4) for f, v in last["by_family"].items()}
    out["ceiling_gap"] = {"k": ks[-1], "mean": round(ceil["mean"] - last["mean"], 4),
                          "by_family": dict(sorted(gaps.items(), key=lambda kv: -kv[1]))}
    return out


def _cell(r: dict[str, Any] | None) -> str:
    return f"{r['mean']:.3f} / {r['worst']:.3f}" if r else "-"


def spearman_table(summary: dict[str, Any], ks: Sequence[int], labels: dict[str, str]) -> list[str]:
    """Markdown rows, one per method of ``labels`` (``"ceiling"`` included): mean / worst family per ``k``;
    then ours minus the ridge baseline."""
    lines = ["| method | " + " | ".join(f"k = {k}" for k in ks) + " |", "|---|" + "---|" * len(ks)]
    for m, label in labels.items():
        cells = [_cell(summary["ceiling"]) for _ in ks] if m == "ceiling" else \
            [_cell(summary["k"][str(k)].get(m)) for k in ks]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    diff = [summary["k"][str(k)].get("ours_minus_ridge") for k in ks]
    lines.append("| ours minus ridge (mean) | " + " | ".join("-" if d is None else f"{d:+.3f}" for d in diff) + " |")
    return lines


def family_causes(summary: dict[str, Any], k: int, families: Sequence[str], best_proxy: dict[str, float]) -> str:
    """``family: ours x, best proxy y, ridge on k z, ceiling c`` for some families (the measured cause of a miss)."""
    row = summary["k"][str(k)]
    parts = []
    for f in families:
        ridge = row["ridge_k"]["by_family"][f] if "ridge_k" in row else float("nan")
        parts.append(f"{f}: ours {row['ours']['by_family'][f]:.3f}, best proxy {best_proxy[f]:.3f}, ridge on k "
                     f"{ridge:.3f}, ceiling {summary['ceiling']['by_family'][f]:.3f}")
    return "; ".join(parts)


def targets_section(rows: list[dict[str, Any]], misses: list[str], cause_note: str) -> list[str]:
    """Markdown: the targets table of a benchmark, then each miss with its measured cause."""
    lines = ["| NB201, leave-one-family-out | measured | target | met |", "|---|---|---|---|"]
    for row in rows:
        met = {True: "yes", False: "**no**", None: "-"}[row["met"]]
        lines.append(f"| {row['figure']} | {row['measured']} | {row['target']} | {met} |")
    if misses:
        lines += ["", f"Misses, with their measured cause{cause_note}:", ""] + misses
    return lines + [""]


def spearman_figure(summaries: dict[str, dict[str, dict[str, Any]]], ks: Sequence[int], labels: dict[str, str],
                    path: Any) -> Any:
    """One panel per space (row) and protocol (column): :func:`plot_spearman` of ``summaries[space][protocol]``."""
    from benchmarks._families import PROTOCOLS
    from edgeopt_plugins._plots import new_figure, save_figure

    spaces = list(summaries)
    protocols = [p for p in PROTOCOLS if any(p in summaries[s] for s in spaces)]
    fig, axes = new_figure(len(spaces), len(protocols), figsize=(4.6 * len(protocols), 3.9 * len(spaces)),
                           squeeze=False, layout="constrained")
    for row, space in enumerate(spaces):
        for col, protocol in enumerate(protocols):
            ax = axes[row][col]
            summary = summaries[space].get(protocol)
            if summary is None:
                ax.set_visible(False)
                continue
            plot_spearman(ax, summary, ks, labels)
            ax.set_title(f"{space}: {PROTOCOLS[protocol].split(' (')[0]} ({summary['ceiling']['families']} families)",
                         fontsize=9)
    handles, legend = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, legend, loc="outside upper center", ncols=3, fontsize=8)
    return save_figure(fig, path)


def plot_spearman(ax: Any, summary: dict[str, Any], ks: Sequence[int], labels: dict[str, str]) -> None:
    """Mean Spearman against ``k`` for the methods of ``labels``, ours' worst family, the ceiling."""
    shown = [summary["ceiling"]["mean"]]
    for m, label in labels.items():
        if m == "ceiling":
            ax.axhline(summary["ceiling"]["mean"], color="0.3", lw=1.0, ls=(0, (4, 2)), label=label)
            continue
        pos = [i for i, k in enumerate(ks) if m in summary["k"][str(k)]]
        style, color, lw = SPEARMAN_STYLE[m]
        means = [summary["k"][str(ks[i])][m]["mean"] for i in pos]
        ax.plot(pos, means, style, color=color, lw=lw, marker="o", ms=3, label=label)
        shown += means
        if m == "ours":
            worst = [summary["k"][str(ks[i])][m]["worst"] for i in pos]
            ax.plot(pos, worst, ":", color=color, lw=1.2, label="ours, worst family")
            shown += worst
    ax.set_ylim(max(0.0, np.floor(10 * min(shown) - 0.3) / 10), 1.0)
    ax.set_xticks(range(len(ks)), [str(k) for k in ks])
    ax.set_xlabel("k target measurements (random)")
    ax.set_ylabel("Spearman, mean over families")
