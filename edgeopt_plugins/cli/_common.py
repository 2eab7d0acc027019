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

from edgeopt_plugins._io import atomic_write, check_writable, display_path
from edgeopt_plugins._values import MAX_SEED, MAX_TRADEOFF, PLAUSIBLE
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
    "check_distinct",
    "check_output_file",
    "check_output_folder",
    "device_list",
    "fraction",
    "latency_ms",
    "energy_mj",
    "non_negative_int",
    "positive_int",
    "seed",
    "tradeoff",
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
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress bars or status lines (results and errors are still printed)")


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


def non_negative_int(text: str) -> int:
    """A count that may be 0 (how many simulated devices, how many refinement trials)."""
    return _number(text, int, lambda v: v >= 0, "a non-negative integer")


def seed(text: str) -> int:
    """A seed: an integer every random generator accepts (0 to 2**32-1)."""
    return _number(text, int, lambda v: 0 <= v <= MAX_SEED, f"an integer from 0 to {MAX_SEED}")


def _plausible(metric: str) -> Callable[[str], float]:
    low, high = PLAUSIBLE[metric]
    unit = metric.rsplit("_", 1)[1]
    return lambda text: _number(text, float, lambda v: low <= v <= high, f"a number from {low:g} to {high:g} ({unit})")


#: A latency budget in ms, within the plausible range of latencies.
latency_ms = _plausible("latency_ms")
#: An energy budget in mJ, within the plausible range of energies.
energy_mj = _plausible("energy_mj")


def tradeoff(text: str) -> float:
    """Accuracy points per doubling of latency: 0 to 1e6 (beyond that only latency counts)."""
    return _number(text, float, lambda v: 0 <= v <= MAX_TRADEOFF, f"a number from 0 to {MAX_TRADEOFF:g}")


def positive(text: str) -> float:
    """A finite number above 0 (a budget)."""
    return _number(text, float, lambda v: 0 < v < float("inf"), "a positive number")


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
    check_writable(p)
    return p


def check_distinct(out: str | Path, **inputs: str | Path | None) -> None:
    """Refuse an output path that is one of the inputs (``--out`` equal to ``--profile`` would overwrite it).

    Args:
        out: The output file or folder.
        **inputs: Input paths by option name (``profile=...``, ``archs_file=...``); ``None`` is skipped.

    Raises:
        InputError: naming both options.
    """
    target = Path(out)
    for option, given in inputs.items():
        if given is None:
            continue
        source = Path(given)
        same = (target.exists() and source.exists() and os.path.samefile(target, source)) or (
            target.resolve() == source.resolve())
        if same:
            raise InputError(f"--out {display_path(target)} is the --{option.replace('_', '-')} input; "
                             "writing there would overwrite it: choose another --out")


def check_output_folder(path: str | Path) -> Path:
    """``path`` if an output folder can be created or written there; checked before any work.

    Raises:
        InputError: for a path that is a file, lies under a file, or cannot be written.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"--out {display_path(p)}: is a file, expected a folder")
    check_writable(p, "--out ")
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
