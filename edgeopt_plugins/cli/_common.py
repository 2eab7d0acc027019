"""Arguments and output helpers shared by the ``edgeopt`` commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from edgeopt_plugins._io import atomic_write, display_path
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.spaces import available_spaces

__all__ = [
    "add_data_dir",
    "add_space",
    "add_quiet",
    "write_csv",
    "check_output_file",
    "print_json",
    "print_table",
    "positive_int",
    "fraction",
    "device_list",
]


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="benchmark data folder (default: $EDGEOPT_DATA_DIR, then the user cache)",
    )


def add_space(parser: argparse.ArgumentParser, *, default: str | None = "nb201") -> None:
    parser.add_argument(
        "--space",
        default=default,
        required=default is None,
        help=f"search space: {', '.join(available_spaces())}" + (f" (default {default})" if default else ""),
    )


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def fraction(text: str) -> float:
    """A number strictly between 0 and 1 (a confidence level)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


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
