"""``edgeopt recommend``: the best designs for a device and a latency budget, from a fitted model."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeopt_plugins.cli._common import (
    energy_mj,
    fraction,
    latency_ms,
    positive_int,
    print_json,
    print_table,
    space_arg,
    tradeoff,
)
from edgeopt_plugins.devices import DeviceProfile, read_arch_list

DESCRIPTION = """
The best designs for a device under a latency budget, from a model fitted by `edgeopt fit`,
with no search: the learned optimizer proposes designs for the device's profile and each is
screened by its calibrated upper bound. Best first; every design's upper bound fits the
budget. Prints a table, or JSON with --json:
{"designs": [{"arch": ..., "predicted_latency_ms": ..., "latency_upper_ms": ...,
"predicted_accuracy": ...}, ...]}. A budget no design fits is an error (exit 2) that names the
smallest budget that works at that confidence.
"""

EXAMPLES = """
examples:
  edgeopt recommend --model model/ --profile device.csv --latency-budget-ms 12 --top-k 3 --json
  edgeopt recommend --model model/ --profile device.csv --latency-budget-ms 12 --candidates deployable.csv
  edgeopt recommend --space my_models:SPACE --model model/ --profile board.csv --latency-budget-ms 8
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("recommend", help="best designs for a device under a latency budget (learned optimizer)",
                            description=DESCRIPTION, epilog=EXAMPLES)
    parser.add_argument("--model", type=Path, required=True, help="model folder from `edgeopt fit`")
    parser.add_argument("--space", type=space_arg, default=None,
                        help="the model's space when it is a space of your own (module:attribute or a spec file; "
                             "the model folder names it)")
    parser.add_argument("--profile", type=Path, required=True, help="device profile CSV (arch,latency_ms)")
    parser.add_argument("--latency-budget-ms", type=latency_ms, required=True, help="latency budget (ms)")
    parser.add_argument("--confidence", type=fraction, default=0.95, help="confidence of the upper bounds")
    parser.add_argument("--candidates", type=Path, default=None,
                        help="CSV with an 'arch' column: only recommend among these architectures")
    parser.add_argument("--top-k", type=positive_int, default=5, help="how many designs")
    parser.add_argument("--tradeoff", type=tradeoff, default=None,
                        help="accuracy points given up per doubling of latency (default: most accurate)")
    parser.add_argument("--energy-budget-mj", type=energy_mj, default=None, help="energy budget (models with energy)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgeopt_plugins.optimizer import ConditionedModel

    model = ConditionedModel.load(args.model, space=args.space)
    profile = DeviceProfile.read(args.profile, space=model.space)
    candidates = read_arch_list(args.candidates, model.space, unique=False) if args.candidates else None
    designs = model.recommend(profile, latency_budget_ms=args.latency_budget_ms, confidence=args.confidence,
                              candidates=candidates, top_k=args.top_k, tradeoff=args.tradeoff,
                              energy_budget_mj=args.energy_budget_mj)
    rows = [d.to_dict() for d in designs]
    if args.json:
        print_json({"designs": rows})
        return 0
    print(f"{model.space.name}: best designs for {profile.name!r} under {args.latency_budget_ms:g} ms "
          f"({args.confidence:.0%} upper bound), best first")
    print_table(rows, list(rows[0]), floatfmt=".3f")
    return 0
