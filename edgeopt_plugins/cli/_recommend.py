"""``edgeopt recommend``: the best designs for a device and a latency budget, from a fitted model."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeopt_plugins.cli._common import (
    fraction,
    non_negative,
    positive,
    positive_int,
    print_json,
    print_table,
    space_arg,
)
from edgeopt_plugins.devices import DeviceProfile, read_arch_list


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("recommend", help="best designs for a device under a latency budget (learned optimizer)")
    parser.add_argument("--model", type=Path, required=True, help="model folder from `edgeopt fit`")
    parser.add_argument("--space", type=space_arg, default=None,
                        help="the model's space when it is a space of your own (module:attribute or a spec file; "
                             "the model folder names it)")
    parser.add_argument("--profile", type=Path, required=True, help="device profile CSV (arch,latency_ms)")
    parser.add_argument("--latency-budget-ms", type=positive, required=True, help="latency budget (ms)")
    parser.add_argument("--confidence", type=fraction, default=0.95, help="confidence of the upper bounds (default 0.95)")
    parser.add_argument("--candidates", type=Path, default=None,
                        help="CSV with an 'arch' column: only recommend among these architectures")
    parser.add_argument("--top-k", type=positive_int, default=5, help="how many designs (default 5)")
    parser.add_argument("--tradeoff", type=non_negative, default=None,
                        help="accuracy points given up per doubling of latency (default: most accurate)")
    parser.add_argument("--energy-budget-mj", type=positive, default=None, help="energy budget (models with energy)")
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
