"""``edgeopt data info|download``: what benchmark data is available, and fetching it."""

from __future__ import annotations

import argparse

from edgeopt_plugins.cli._common import add_data_dir, add_quiet, print_json, print_table
from edgeopt_plugins.data import data_info, download, resolve_data_dir

DESCRIPTION = """
The benchmark tables (latency, energy and accuracy of the architectures of a space, measured
on many devices) that the commands read, where they are found and how to fetch the public ones.
See docs/data.md.
"""

INFO = """
One row per table: its space and metric, how many architectures and devices it has, and how
many of its (architecture, device) cells have no measurement. Missing cells are never used as
values; for example some MnasNet architectures were not measured on the TPUs.
"""

DOWNLOAD = """
Download the public benchmark files into --to (default: the user cache, $EDGEOPT_CACHE_DIR or
~/.cache/edgeopt), each checked by SHA-256; files already present are kept. Files that cannot
be downloaded are listed, with where to get them.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("data", help="list or download benchmark data", description=DESCRIPTION)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = actions.add_parser("info", help="list the tables found (spaces, metrics, devices, missing cells)",
                              description=INFO)
    add_data_dir(info)
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(handler=_info)
    fetch = actions.add_parser("download", help="download the public benchmark files (checked by SHA-256)",
                               description=DOWNLOAD)
    fetch.add_argument("--to", default=None, help="target folder (default: the user cache)")
    add_quiet(fetch)
    fetch.set_defaults(handler=_download)


def _info(args: argparse.Namespace) -> int:
    root = resolve_data_dir(args.data_dir)
    rows = data_info(args.data_dir)
    if args.json:
        print_json({"data_dir": str(root), "tables": rows})
        return 0
    print(f"data folder: {root}")
    print_table(
        [{**r, "devices": f"{len(r['devices'])}: {', '.join(r['devices'][:4])}{', ...' if len(r['devices']) > 4 else ''}",
          "missing cells": r["missing"]} for r in rows],
        ["space", "metric", "archs", "devices", "missing cells", "path"],
    )
    print("\nmissing cells: (architecture, device) pairs without a measurement; they are skipped, never used as "
          "values")
    for r in rows:
        if r["missing"]:
            where = ", ".join(f"{device} {n}" for device, n in
                              sorted(r["missing_by_device"].items(), key=lambda item: -item[1]))
            print(f"  {r['space']} {r['metric']}: {r['missing']} of {r['archs'] * len(r['devices']):,} cells, "
                  f"{r['incomplete_archs']} architectures; by device: {where}")
    return 0


def _download(args: argparse.Namespace) -> int:
    progress = None if args.quiet else (lambda entry: print(f"  {entry.path}", flush=True))
    report = download(args.to, progress=progress)
    print(f"downloaded {len(report['downloaded'])}, already present {len(report['present'])}")
    for path in report["unavailable"]:
        print(f"not downloadable (provide it by hand, see docs/data.md): {path}")
    return 0
