"""Reading a list of architectures from a CSV file (``arch`` column), with line-precise errors."""

from __future__ import annotations

import csv
import os

from edgeopt_plugins._io import display_path, existing_file
from edgeopt_plugins.exceptions import ArchitectureError, InputError
from edgeopt_plugins.spaces import SearchSpace

__all__ = ["read_arch_list"]


def read_arch_list(path: str | os.PathLike[str], space: SearchSpace, *, what: str = "architecture list") -> list[str]:
    """Canonical architectures of the ``arch`` column of a CSV (other columns are ignored).

    Raises:
        InputError: naming the file and line for a missing column, an empty file
            or an architecture outside ``space``.
    """
    p = existing_file(path, what)
    shown = display_path(p)
    try:
        with p.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except UnicodeDecodeError:
        raise InputError(f"{shown}: not a text CSV file (UTF-8)") from None
    except csv.Error as err:
        raise InputError(f"{shown}: malformed CSV ({err})") from None
    if not rows:
        raise InputError(f"{shown}: file is empty (expected a header with an 'arch' column)")
    header = [c.strip() for c in rows[0]]
    if "arch" not in header:
        raise InputError(f"{shown} line 1: no 'arch' column (header is {','.join(header)})")
    col = header.index("arch")
    out: list[str] = []
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if col >= len(row):
            raise InputError(f"{shown} line {line}: no value in the 'arch' column")
        try:
            out.append(space.format(row[col].strip()))
        except ArchitectureError as err:
            raise ArchitectureError(f"{shown} line {line}: {err}") from None
    if not out:
        raise InputError(f"{shown}: has a header but no architectures")
    return out
