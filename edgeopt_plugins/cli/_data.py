"""``edgeopt data info|download``: what benchmark data is available, and fetching it."""

from __future__ import annotations

import argparse

from edgeopt_plugins.cli._common import add_data_dir, print_json, print_table
from edgeopt_plugins.data import cache_dir, data_info, download, resolve_data_dir


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("data", help="list or download benchmark data")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = actions.add_parser("info", help="list the tables found (spaces, metrics, devices, rows)")
    add_data_dir(info)
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(handler=_info)
    fetch = actions.add_parser("download", help="download the public benchmark files (checked by SHA-256)")
    fetch.add_argument("--to", default=None, help=f"target folder (default: {cache_dir()})")
    fetch.set_defaults(handler=_download)


def _info(args: argparse.Namespace) -> int:
    root = resolve_data_dir(args.data_dir)
    rows = data_info(args.data_dir)
    if args.json:
        print_json({"data_dir": str(root), "tables": rows})
        return 0
    print(f"data folder: {root}")
    print_table(
        [{**r, "devices": f"{len(r['devices'])}: {', '.join(r['devices'][:4])}{', ...' if len(r['devices']) > 4 else ''}"}
         for r in rows],
        ["space", "metric", "archs", "devices", "missing", "path"],
    )
    return 0


def _download(args: argparse.Namespace) -> int:
    report = download(args.to, progress=lambda entry: print(f"  {entry.path}", flush=True))
    print(f"downloaded {len(report['downloaded'])}, already present {len(report['present'])}")
    for path in report["unavailable"]:
        print(f"not downloadable (provide it by hand, see docs/data.md): {path}")
    return 0
