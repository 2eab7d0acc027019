"""Arguments and output helpers shared by the ``edgeopt`` commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from edgeopt_plugins._io import atomic_write, display_path
from edgeopt_plugins.data import MetricTable, load_table
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.spaces import BUILTIN_NAMES, SearchSpace, resolve_space

__all__ = [
    "add_data_dir",
    "add_quiet",
    "add_space",
    "add_tables",
    "check_table_source",
    "latency_table",
    "space_arg",
    "check_output_file",
    "device_list",
    "fraction",
    "positive_int",
    "print_json",
    "print_table",
    "write_csv",
]


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="benchmark data folder (default: $EDGEOPT_DATA_DIR, then the user cache)",
    )


def space_arg(text: str) -> SearchSpace:
    """``--space``: a built-in name, ``module:attr`` or a spec file, through the one resolver."""
    try:
        return resolve_space(text)
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_space(parser: argparse.ArgumentParser, *, default: str | None = "nb201", required: bool = False) -> None:
    parser.add_argument(
        "--space",
        type=space_arg,
        default=None if required else default,
        required=required,
        help=f"search space: {', '.join(BUILTIN_NAMES)}, a space of your own as module:attribute "
             "(e.g. edgeopt_plugins.examples.mobilenet:SPACE), or a spec file (.json)"
             + (f" (default {default})" if default and not required else ""),
    )


def add_tables(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--tables", type=Path, nargs="+", default=None, metavar="CSV",
        help=f"{what}: device profiles (arch,latency_ms + sidecar, e.g. from `edgeopt profile`) or flat "
             "tables (arch + one column per device), one device per profile; default: the space's benchmark table",
    )


def check_table_source(args: argparse.Namespace) -> None:
    """Refuse early (before reading other files) a space of your own without ``--tables``."""
    if not getattr(args, "tables", None) and args.space.name not in BUILTIN_NAMES:
        raise InputError(f"space {args.space.name!r} has no benchmark table: give its measurements with --tables "
                         "(profiles from `edgeopt profile`, or CSVs arch,latency_ms)")


def latency_table(args: argparse.Namespace) -> MetricTable:
    """``--tables`` merged into one table, or the benchmark table of ``--space`` under ``--data-dir``."""
    check_table_source(args)
    if getattr(args, "tables", None):
        return MetricTable.from_profiles(args.tables, space=args.space, source="--tables")
    return load_table(args.space.name, "latency_ms", data_dir=getattr(args, "data_dir", None))


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def _number(text: str, cast: Callable[[str], float], ok: Callable[[float], bool], expected: str) -> Any:
    """``cast(text)`` if it parses and ``ok`` holds, else argparse's one-line usage error."""
    try:
        value = cast(text)
    except ValueError:
        value = None
    if value is None or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def positive(text: str) -> float:
    """A finite number above 0 (a budget)."""
    return _number(text, float, lambda v: 0 < v < float("inf"), "a positive number")


def non_negative(text: str) -> float:
    """A finite number of at least 0 (a trade-off weight)."""
    return _number(text, float, lambda v: 0 <= v < float("inf"), "a non-negative number")


def fraction(text: str) -> float:
    """A number strictly between 0 and 1 (a confidence level)."""
    return _number(text, float, lambda v: 0.0 < v < 1.0, "a number between 0 and 1")


def device_list(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list of device names")
    return names


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` to ``path`` atomically, without the index."""
    p = Path(path)
    if p.suffix.lower() != ".csv":
        raise InputError(f"{p}: output file must end in .csv")
    with atomic_write(p, newline="") as handle:
        frame.to_csv(handle, index=False, lineterminator="\n")
    return p


def check_output_file(path: str | Path, suffix: str = ".csv") -> Path:
    """``path`` if a file can be written there; checked before long work so that it fails early.

    Raises:
        InputError: for a wrong suffix, a folder, a parent that is a file, or a folder without write permission.
    """
    p = Path(path)
    if p.suffix.lower() != suffix:
        raise InputError(f"{p}: output file must end in {suffix}")
    if p.is_dir():
        raise InputError(f"{display_path(p)}: is a folder, expected a file path")
    ancestor = p.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{display_path(p)}: cannot write there ({display_path(ancestor)} is not a folder)")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"{display_path(p)}: cannot write there ({display_path(ancestor)} is not writable)")
    return p


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=_jsonable)
    sys.stdout.write("\n")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, floatfmt: str = ".3f") -> None:
    """Print dict rows as an aligned text table."""
    if not rows:
        print("(no rows)")
        return
    cols = list(columns or rows[0].keys())

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return format(v, floatfmt)
        return str(v)

    cells = [[fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))
