"""``edgeopt overview`` (the default job): proxy monotonicity and best designs on NB201.

For a few target devices it shows how well a proxy device ranks their latencies
and which design is best under a latency budget: the true optimum, and the
design a proxy-only choice would deploy (its real latency and accuracy regret).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from edgeopt_plugins._io import write_json
from edgeopt_plugins._plots import new_figure, save_figure
from edgeopt_plugins.cli._common import (
    add_data_dir,
    device_list,
    print_json,
    print_table,
    write_csv,
)
from edgeopt_plugins.data import load_table
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.optimizer import best_under_budget
from edgeopt_plugins.predictors import (
    central_device,
    kendall,
    monotonicity_matrix,
    spearman,
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("overview", help="monotonicity vs a proxy and best designs under a budget (NB201)")
    add_data_dir(parser)
    parser.add_argument("--proxy", default=None, help="proxy device (default: the most central device)")
    parser.add_argument("--targets", type=device_list, default=None, help="comma-separated target devices")
    parser.add_argument("--budget-percentile", type=float, default=30.0,
                        help="latency budget per target, as a percentile of its latencies (default 30)")
    parser.add_argument("--dataset", default="cifar10", help="accuracy column: cifar10, cifar100, imagenet16_120")
    parser.add_argument("--out", type=Path, default=Path("edgeopt-out"), help="output folder (default edgeopt-out)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=run)


def _spread_targets(names: list[str], corr_to_proxy: np.ndarray, n: int = 4) -> list[str]:
    """``n`` devices spanning the range of agreement with the proxy (least to most)."""
    order = np.argsort(corr_to_proxy)
    picks = np.unique(np.round(np.linspace(0, len(order) - 1, n)).astype(int))
    return [names[order[i]] for i in picks]


def run(args: argparse.Namespace) -> int:
    if not 0.0 < args.budget_percentile <= 100.0:
        raise InputError(f"--budget-percentile must be in (0, 100], got {args.budget_percentile}")
    latency = load_table("nb201", "latency_ms", data_dir=args.data_dir)
    accuracy = load_table("nb201", "accuracy", data_dir=args.data_dir)
    acc = accuracy.lookup(latency.archs, accuracy.devices[accuracy.device_index(args.dataset)])
    names, matrix = monotonicity_matrix(latency)
    proxy = args.proxy or central_device(names, matrix)
    latency.device_index(proxy)  # unknown proxy: clear error before any work
    others = [d for d in names if d != proxy]
    corr = np.array([matrix[names.index(proxy), names.index(d)] for d in others])
    targets = args.targets or _spread_targets(others, corr)
    proxy_lat = latency.column(proxy)
    rows = []
    for target in targets:
        lat = latency.column(target)
        budget = float(np.nanpercentile(lat, args.budget_percentile))
        best = best_under_budget(lat, acc, budget)
        # Proxy-only choice: the same latency percentile, read off the proxy's ranking.
        proxy_budget = float(np.nanpercentile(proxy_lat, args.budget_percentile))
        pick = best_under_budget(proxy_lat, acc, proxy_budget)
        rows.append({
            "target": target,
            "spearman": spearman(proxy_lat, lat),
            "kendall": kendall(proxy_lat, lat),
            "budget_ms": budget,
            "best_arch": latency.archs[best],
            "best_acc": float(acc[best]),
            "best_ms": float(lat[best]),
            "proxy_pick_acc": float(acc[pick]),
            "proxy_pick_ms": float(lat[pick]),
            "proxy_pick_over_budget": bool(lat[pick] > budget),
            "regret": float(acc[best] - acc[pick]),
        })
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(pd.DataFrame(rows), args.out / "overview.csv")
    summary = {"proxy": proxy, "budget_percentile": args.budget_percentile, "dataset": args.dataset, "targets": rows}
    write_json(args.out / "overview.json", summary)
    _plot(latency, proxy, targets, acc, rows, args.out / "overview.png")
    if args.json:
        print_json(summary)
        return 0
    print(f"NB201: proxy device {proxy}; budget = {args.budget_percentile:g}th percentile of each target's latency;"
          f" accuracy on {args.dataset}")
    print_table(rows, ["target", "spearman", "kendall", "budget_ms", "best_acc", "best_ms",
                       "proxy_pick_acc", "proxy_pick_ms", "proxy_pick_over_budget", "regret"])
    print(f"\nwrote {args.out / 'overview.csv'}, {args.out / 'overview.json'}, {args.out / 'overview.png'}")
    return 0


def _plot(latency, proxy: str, targets: list[str], acc: np.ndarray, rows: list[dict], path: Path) -> None:
    fig, axes = new_figure(1, len(targets), figsize=(4 * len(targets), 3.6), squeeze=False)
    x = latency.column(proxy)
    for ax, target, row in zip(axes[0], targets, rows):
        y = latency.column(target)
        sc = ax.scatter(x, y, c=acc, s=2, cmap="viridis", rasterized=True)
        ax.axhline(row["budget_ms"], color="red", lw=0.8, label="budget")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"{proxy} latency (ms)")
        ax.set_ylabel(f"{target} latency (ms)")
        ax.set_title(f"{target}: Spearman {row['spearman']:.2f}", fontsize=9)
        ax.legend(loc="upper left", fontsize=7)
    fig.colorbar(sc, ax=axes[0].tolist(), label="accuracy (%)")
    save_figure(fig, path)
