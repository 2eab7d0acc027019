"""``edgeopt space``: check a search space and describe it; list its designs for other commands.

Example::

    edgeopt space --space my_models:SPACE
    edgeopt space --space space.json --archs 200 --out designs.csv

checks the definition (a bad one is one line, exit 2), builds and counts one design when
the space has a builder, prints the decisions, the size and the features, and with
``--out`` writes designs (a seeded sample, or ``--archs all``) as a CSV with an ``arch``
column that ``profile --archs-file`` and ``predict --archs`` read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from edgeopt_plugins._io import display_path
from edgeopt_plugins.cli._common import add_space, check_output_file, print_json, write_csv
from edgeopt_plugins.exceptions import InputError


def _archs(text: str) -> int | str:
    if text == "all":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {text!r}")
    return value


DESCRIPTION = """
Check a search space and describe it: a bad definition is one line, exit 2 (an empty space, a
decision with one choice, a float without a step, a builder that raises or returns no module, a
space too large for --archs all); a space with a builder builds and counts one design; the
decisions, the size and the features are printed. With --out, designs (a seeded sample, or all)
go to a CSV with an 'arch' column that profile --archs-file and predict --archs read.
"""

EXAMPLES = """
examples:
  edgeopt space --space my_models:SPACE
  edgeopt space --space space.json --archs 200 --out designs.csv
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("space", help="check and describe a search space (yours or built in); list designs",
                            description=DESCRIPTION, epilog=EXAMPLES)
    add_space(parser, required=True)
    parser.add_argument("--archs", type=_archs, default=None,
                        help="with --out: how many designs (a seeded sample), or 'all' (spaces up to 2 million)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    parser.add_argument("--out", type=Path, default=None, help="CSV of designs to write (column 'arch')")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    space = args.space
    if (args.out is None) != (args.archs is None):
        raise InputError("--archs and --out go together (how many designs, and where to write them)")
    if args.out is not None:
        check_output_file(args.out)
        designs = space.enumerate() if args.archs == "all" else space.sample(min(args.archs, space.size),
                                                                             seed=args.seed)
    example = space.sample(1, seed=args.seed)[0]
    features = dict(zip(space.feature_names, space.features([example])[0].round(4).tolist()))
    info = {
        "name": space.name,
        "size": space.size,
        "decisions": {d.name: list(d.choices) for d in space.decisions},
        "feature_names": list(space.feature_names),
        "example": example,
        "example_features": features,
        "ref": getattr(space, "ref", None),
    }
    if args.out is not None:
        write_csv(pd.DataFrame({"arch": designs}), args.out)
        info["wrote"] = display_path(args.out)
    if args.json:
        print_json(info)
        return 0
    print(f"{space.name}: {len(space.decisions)} decisions, {space.size:,} designs")
    for d in space.decisions:
        shown = ", ".join(map(str, d.choices[:8])) + (", ..." if len(d.choices) > 8 else "")
        print(f"  {d.name}: {shown} ({len(d.choices)})")
    print(f"example: {example}")
    if features:
        print("features: " + ", ".join(f"{k}={v:g}" for k, v in features.items()))
    else:
        print("features: none (no PyTorch builder)")
    if args.out is not None:
        print(f"wrote {len(designs)} designs to {display_path(args.out)}")
    return 0
