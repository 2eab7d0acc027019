"""``edgeopt overview`` (the default job): both approaches on held-out NB201 devices, then a fleet."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from edgeopt_plugins._io import write_json
from edgeopt_plugins._overview import run_overview
from edgeopt_plugins._plots import log_axis, mark_empty_bars, new_figure, save_figure
from edgeopt_plugins.cli._common import add_data_dir, add_quiet, device_list, print_json, print_table, seed, write_csv
from edgeopt_plugins.data import load_table

METHODS = ("proxy_only", "approach1", "approach2")


DESCRIPTION = """
The main job, and what `edgeopt` without a command runs. On the NB201 tables it picks the
most central device as the proxy and four target devices spanning how well the proxy ranks
them; fits an approach-2 model without the targets (--fit-config fast, kept in OUT/model and
reused by a rerun with the same targets); then, for each target, under a budget at the 30th
percentile of its latency, compares what you would deploy from the proxy's ranking alone, from
approach 1 and from approach 2 (both from 10 measurements of the target) with the true
optimum; finally recommends designs for 1,000 simulated devices in one batch. Writes
overview.csv, overview.json and overview.png; one line per stage goes to stderr.

The regrets printed are for these few devices at one budget; docs/benchmarks.md has the
figures over every held-out device, budget and profile.
"""

EXAMPLES = """
examples:
  edgeopt
  edgeopt overview --targets pixel3,raspi4 --budget-percentile 50 --out edgeopt-out/
  edgeopt overview --model model/ --fleet 0 --json
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("overview", help="the main job: proxy monotonicity, both approaches on held-out NB201 "
                                             "devices, a simulated fleet",
                            description=DESCRIPTION, epilog=EXAMPLES)
    add_data_dir(parser)
    parser.add_argument("--proxy", default=None, help="proxy device (default: the most central device)")
    parser.add_argument("--targets", type=device_list, default=None,
                        help="comma-separated target devices (default: 4 spanning the agreement with the proxy)")
    parser.add_argument("--budget-percentile", type=float, default=30.0,
                        help="latency budget per target, as a percentile of its latencies")
    parser.add_argument("--dataset", default="cifar10", help="accuracy column: cifar10, cifar100, imagenet16_120")
    parser.add_argument("--model", type=Path, default=None,
                        help="a model fitted without the targets (default: fit one into OUT/model, or reuse it)")
    parser.add_argument("--fit-config", choices=("tiny", "fast", "default"), default="fast",
                        help="size of the model fitted here")
    parser.add_argument("--fleet", type=int, default=1000, help="simulated devices in the fleet part; 0 skips it")
    parser.add_argument("--seed", type=seed, default=0, help="seed of profiles and model")
    parser.add_argument("--out", type=Path, default=Path("edgeopt-out"), help="output folder")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    add_quiet(parser)
    parser.set_defaults(handler=run)


def _note(text: str, *, blank: bool = True) -> None:
    print(("\n" if blank else "") + textwrap.fill(text, width=100, break_on_hyphens=False))


def _stage(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    summary = run_overview(data_dir=args.data_dir, proxy=args.proxy, targets=args.targets,
                           budget_percentile=args.budget_percentile, dataset=args.dataset, model_dir=args.model,
                           cache_dir=args.out / "model", fit_config=args.fit_config, fleet_size=max(0, args.fleet),
                           seed=args.seed, progress=not args.quiet, report=None if args.quiet else _stage)
    rows = summary["targets"]
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(pd.DataFrame(rows), args.out / "overview.csv")
    write_json(args.out / "overview.json", summary)
    _plot(summary, args.data_dir, args.out / "overview.png")
    if args.json:
        print_json(summary)
        return 0
    print(f"NB201, proxy device {summary['proxy']}; budget = {args.budget_percentile:g}th percentile of each "
          f"target's latency; accuracy on {args.dataset}; {summary['profile_size']} measurements per target\n")
    print_table(rows, ["target", "spearman_vs_proxy", "adapted_spearman_k10", "budget_ms", "optimum_acc"])
    print()
    table = [{"target": r["target"], **{f"{m} regret": r[f"{m}_regret"] for m in METHODS},
              **{f"{m} over": "yes" if r[f"{m}_over_budget"] else "no" for m in METHODS}} for r in rows]
    print("accuracy regret vs the true optimum under the budget (points), and whether the real latency is over it:")
    print_table(table)
    devices = f"{len(rows)} real device" + ("s" if len(rows) != 1 else "")
    model = f"a --fit-config {args.fit_config} model" if args.model is None else f"the model in {args.model}"
    _note(f"These regrets are for {devices}, one budget and one {summary['profile_size']}-measurement profile "
          f"each, with {model}: a few devices vary a lot. The README's approach-2 regret is "
          "the mean over every held-out NB201 device, four budgets and five profiles (docs/benchmarks.md, "
          "\"Approach 2\").")
    if "fleet" in summary:
        f = summary["fleet"]
        rate = "-" if f["violation_rate"] is None else f"{100 * f['violation_rate']:.1f}%"
        regret = "-" if f["mean_regret"] is None else f"{f['mean_regret']:.3f}"
        print(f"\nfleet: {f['devices']} simulated devices recommended in {f['seconds']:.1f} s "
              f"({f['ms_per_device']:.1f} ms/device); budget violations {rate}; mean regret {regret} points")
        _note("Simulated devices are drawn around the real ones, so they are not the devices above: compare with "
              "docs/benchmarks.md, \"Fleet scale\", not with the README's approach-2 row.", blank=False)
    print(f"\nwrote {args.out / 'overview.csv'}, {args.out / 'overview.json'}, {args.out / 'overview.png'}")
    return 0


def _plot(summary: dict[str, Any], data_dir: Any, path: Path) -> None:
    latency = load_table("nb201", "latency_ms", data_dir=data_dir)
    rows = summary["targets"]
    proxy = summary["proxy"]
    fig, axes = new_figure(1, len(rows) + 1, figsize=(3.6 * (len(rows) + 1), 3.6), squeeze=False,
                           layout="constrained")
    x = latency.column(proxy)
    for ax, row in zip(axes[0], rows):
        ax.scatter(x, latency.column(row["target"]), s=2, alpha=0.3, rasterized=True)
        ax.axhline(row["budget_ms"], color="red", lw=0.8, label="budget")
        log_axis(ax, "x")
        log_axis(ax, "y")
        ax.tick_params(labelsize=7)
        ax.set_xlabel(f"{proxy} latency (ms)", fontsize=8)
        ax.set_ylabel(f"{row['target']} latency (ms)", fontsize=8)
        ax.set_title(f"{row['target']}: Spearman {row['spearman_vs_proxy']:.2f}", fontsize=9)
        ax.legend(loc="upper left", fontsize=7)
    ax = axes[0][-1]
    width = 0.8 / len(METHODS)
    pos = np.arange(len(rows))
    for i, method in enumerate(METHODS):
        values = [r[f"{method}_regret"] for r in rows]
        bars = ax.bar(pos + i * width, values, width, label=method.replace("_", " "))
        mark_empty_bars(ax, bars, values)
    ax.set_xticks(pos + width, [r["target"] for r in rows], rotation=30, ha="right", fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_ylabel("accuracy regret (points)", fontsize=8)
    ax.set_title("what to deploy under the budget", fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, path)
