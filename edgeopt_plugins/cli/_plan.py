"""``edgeopt plan-profile``: which architectures to measure on a new device."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from edgeopt_plugins.cli._common import (
    add_data_dir,
    add_quiet,
    add_space,
    add_tables,
    check_distinct,
    check_output_file,
    check_table_source,
    device_list,
    latency_table,
    positive_int,
    seed,
    write_csv,
)
from edgeopt_plugins.devices import DeviceProfile, read_arch_list
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.predictors import plan_profile

DESCRIPTION = """
The architectures whose latencies, measured on a new device, teach the predictors most: an
optimal design over the prior that the benchmark table's devices (or your --tables) give
(approach 1). With --profile, the design continues from the measurements already taken; with
--candidates, only architectures you can build and measure are proposed. Measure the listed architectures (e.g.
with `edgeopt profile --archs-file`) and pass the result to `edgeopt predict` or a sampler.
"""

EXAMPLES = """
examples:
  edgeopt plan-profile --space nb201 --n 10 --out archs.csv
  edgeopt plan-profile --space nb201 --n 5 --profile partial.csv --candidates buildable.csv --out next.csv
  edgeopt plan-profile --space my_models:SPACE --tables proxy.csv --n 10 --out archs.csv
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("plan-profile", help="choose the architectures to measure on a new device",
                            description=DESCRIPTION, epilog=EXAMPLES)
    add_space(parser)
    add_data_dir(parser)
    add_tables(parser, "the proxy devices")
    parser.add_argument("--n", type=positive_int, required=True, help="how many architectures to propose")
    parser.add_argument("--candidates", type=Path, default=None,
                        help="only propose these: a CSV with an 'arch' column, or one architecture per line "
                             "(default: a sample of the benchmark table's architectures)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="measurements already taken on the device (CSV arch,latency_ms): the design continues "
                             "from them and never proposes them again")
    parser.add_argument("--exclude-devices", type=device_list, default=[],
                        help="table devices not to use as proxies (comma-separated)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the candidate sample and tie-breaking")
    parser.add_argument("--out", type=Path, required=True, help="output CSV with an 'arch' column, best first")
    add_quiet(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_output_file(args.out)
    check_distinct(args.out, profile=args.profile, candidates=args.candidates)
    space = args.space
    check_table_source(args)
    candidates = None if args.candidates is None else read_arch_list(args.candidates, space)
    profile = None if args.profile is None else DeviceProfile.read(args.profile, space=space)
    table = latency_table(args)
    unknown = [d for d in args.exclude_devices if d not in table.devices]
    if unknown:
        raise InputError(f"--exclude-devices: {', '.join(unknown)} not in the {space.name} table "
                         f"(known: {', '.join(table.devices)})")
    proxies = table.select(devices=[d for d in table.devices if d not in set(args.exclude_devices)])
    if not proxies.devices:
        raise InputError("--exclude-devices leaves no proxy device")
    archs = plan_profile(proxies, args.n, candidates=candidates, profile=profile, seed=args.seed)
    write_csv(pd.DataFrame({"arch": archs}), args.out)
    if not args.quiet:
        print(f"wrote {len(archs)} architectures to measure to {args.out}")
    return 0
