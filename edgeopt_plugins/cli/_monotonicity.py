"""``edgeopt monotonicity``: how well each device's latency ranking predicts the others'.

Numbers come from :func:`edgeopt_plugins.predictors.monotonicity_report`; this module only
reads arguments, prints, writes JSON and draws the heatmap.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from edgeopt_plugins._plots import new_figure, save_figure
from edgeopt_plugins.cli._common import (
    add_data_dir,
    add_space,
    add_tables,
    device_list,
    latency_table,
    print_json,
    print_table,
)
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.predictors import monotonicity_report

_METHODS = {"spearman": ("spearman",), "kendall": ("kendall",), "both": ("spearman", "kendall")}


DESCRIPTION = """
How well each device's latency ranking predicts the others': the tie-aware Spearman (and/or
Kendall tau-b) matrix between the devices of a benchmark table, a per-device summary (its
median agreement, its nearest device), and optionally a heatmap. See docs/approach1.md.
"""

EXAMPLES = """
examples:
  edgeopt monotonicity --space nb201 --plot heatmap.png
  edgeopt monotonicity --space nb201 --devices pixel3,raspi4,titan_rtx_1 --method both --json
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("monotonicity", help="rank correlation of latencies between devices (tie-aware)",
                            description=DESCRIPTION, epilog=EXAMPLES)
    add_space(parser)
    add_data_dir(parser)
    add_tables(parser, "the devices to compare")
    parser.add_argument("--devices", type=device_list, default=None, help="comma-separated devices (default: all)")
    parser.add_argument("--method", choices=tuple(_METHODS), default="spearman",
                        help="spearman, kendall (tau-b) or both")
    parser.add_argument("--plot", type=Path, default=None, help="write a heatmap PNG here")
    parser.add_argument("--json", action="store_true", help="print JSON (full matrices) instead of a table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise InputError(f"{args.plot}: --plot must end in .png")
    table = latency_table(args)
    report = monotonicity_report(table, devices=args.devices, methods=_METHODS[args.method])
    if args.plot is not None:
        _heatmap(report, args.plot)
    if args.json:
        print_json(report)
        return 0
    methods = _METHODS[args.method]
    print(f"{report['space']}: {len(report['devices'])} devices, {report['archs']:,} architectures measured on all")
    for method in methods:
        s = report["summary"][method]
        print(f"{method}: off-diagonal min {s['min']:.3f}, median {s['median']:.3f}, max {s['max']:.3f}; "
              f"most central device {s['central_device']}")
    print()
    columns = ["device", "distinct_values", "tied_share"]
    for method in methods:
        columns += [f"{method}_median", f"nearest_{method}", f"{method}_to_nearest"]
    print_table(report["per_device"], columns)
    if args.plot is not None:
        print(f"\nwrote {args.plot}")
    return 0


def _heatmap(report: dict[str, Any], path: Path) -> None:
    methods = list(report["matrices"])
    names = report["devices"]
    size = max(4.0, 0.28 * len(names) + 2.0)
    fig, axes = new_figure(1, len(methods), figsize=(size * len(methods) + 1.5, size), squeeze=False, layout="constrained")
    for ax, method in zip(axes[0], methods):
        mat = np.array(report["matrices"][method])
        low = min(0.0, float(mat.min()))
        im = ax.imshow(mat, vmin=low, vmax=1.0, cmap="viridis")
        ax.set_xticks(range(len(names)))
        ax.set_yticks(range(len(names)))
        ax.set_xticklabels(names, rotation=90, fontsize=7)
        ax.set_yticklabels(names, fontsize=7)
        if len(names) <= 12:
            for i in range(len(names)):
                for j in range(len(names)):
                    dark = mat[i, j] < low + 0.6 * (1.0 - low)
                    ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if dark else "black")
        ax.set_title(f"{report['space']}: latency {method} between devices", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    save_figure(fig, path)
