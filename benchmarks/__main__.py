"""Run every benchmark and write docs/benchmarks.md.

Usage::

    python -m benchmarks                 # every benchmark at full size (tens of minutes on 2 cores)
    python -m benchmarks --quick         # reduced sizes (a few minutes each)
    python -m benchmarks --only search,fleet_scale
    python -m benchmarks --report-only   # rebuild docs/benchmarks.md from benchmarks/results/*.json

Each benchmark writes ``benchmarks/results/<name>.json`` and its plots; the report
puts every figure next to its target and the command that reproduces it.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import BENCHMARKS
from benchmarks._common import load_result

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"

HEADER = """# Benchmark results

Every figure below was produced by `python -m benchmarks` (or the per-benchmark command given
with it) on the machine described in each result file (`benchmarks/results/*.json`): 2 CPU
cores, no GPU. Speed figures are ratios against baselines measured in the same run; the
machine was shared with other work while these ran, so absolute times are pessimistic.
Cross-device quality figures hold out whole hardware *families* (`benchmarks/_families.py`): every
setting of a chip (all batch sizes and precisions) and its near-identical siblings of one
generation leave together, and as a harsher check whole *classes* (desktop GPU, server CPU,
phone, Raspberry Pi, ASIC/FPGA simulator) leave together. Held-out devices are removed before
anything is built: they never reach training, calibration, proxy pools or model selection.
Means are over families (each family: the mean of its settings), with the worst family beside
them. A third split, *novel hardware*, keeps for each target only the devices that rank the
architectures at most 0.85 like it; it is chosen with hindsight of the target's own column, a
stress test rather than a protocol. Every Spearman figure sits beside a simple baseline (ridge
regression on one-hot operations, fitted on the target's k points alone) and a ceiling (ridge
with pairwise terms fitted on 80 % of the target, 5-fold). Leave-one-setting-out, the protocol
of earlier reports, appears only where labelled as such; a section that uses another split
states it.

Generated {date}.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes")
    parser.add_argument("--only", default=None, help="comma-separated benchmark names")
    parser.add_argument("--report-only", action="store_true", help="only rebuild docs/benchmarks.md")
    args = parser.parse_args(argv)
    names = list(BENCHMARKS) if args.only is None else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})", file=sys.stderr)
        return 2
    for name in names if not args.report_only else []:
        module = importlib.import_module(f"benchmarks.{name}")
        start = time.perf_counter()
        print(f"== {name}", flush=True)
        module.run(quick=args.quick)
        print(f"   done in {time.perf_counter() - start:.0f} s", flush=True)
    write_report()
    print(f"wrote {DOC}")
    return 0


def write_report() -> None:
    """Rebuild docs/benchmarks.md from every result file present."""
    from edgeopt_plugins._io import write_text

    sections: list[str] = [HEADER.format(date=datetime.date.today().isoformat())]
    summary: list[dict[str, Any]] = []
    for name in BENCHMARKS:
        result = load_result(name)
        if result is None:
            sections.append(f"## {name}\n\nNot run yet: `python -m benchmarks --only {name}`.\n")
            continue
        module = importlib.import_module(f"benchmarks.{name}")
        sections.append(module.report(result))
        if hasattr(module, "targets"):
            summary.extend({"benchmark": name, **row} for row in module.targets(result))
    if summary:
        table = ["## Targets at a glance", "", "| benchmark | figure | target | measured | met |", "|---|---|---|---|---|"]
        for row in summary:
            met = {True: "yes", False: "**no**", None: "-"}[row.get("met")]
            table.append(f"| {row['benchmark']} | {row['figure']} | {row['target']} | {row['measured']} | {met} |")
        sections.insert(1, "\n".join(table) + "\n")
    write_text(DOC, "\n".join(sections))


if __name__ == "__main__":
    sys.exit(main())
