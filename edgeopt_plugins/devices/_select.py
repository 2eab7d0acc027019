"""Which architectures to measure on a device: a seeded spread over the space, or a user's list."""

from __future__ import annotations

import csv
import io
import os

import numpy as np

from edgeopt_plugins._io import display_path, read_text_file
from edgeopt_plugins.exceptions import ArchitectureError, InputError
from edgeopt_plugins.spaces import SearchSpace, get_space

__all__ = ["spread_archs", "read_arch_list"]


def spread_archs(space: str | SearchSpace, n: int, *, seed: int = 0, pool: int = 20_000) -> list[str]:
    """``n`` architectures spread over the cost range of a space (cheap to expensive).

    A candidate pool (the whole space when it has at most ``pool`` architectures,
    else ``pool`` uniform draws; ``3 n`` for a user space whose FLOPs are counted on
    built models) is sorted by FLOPs (:meth:`SearchSpace.flops`, ties
    broken at random), cut into ``n`` strata of equal size, and one architecture is
    drawn uniformly from each stratum. Fast and slow architectures are therefore
    both covered, which a plain uniform sample of a few dozen can miss, while the
    architectures within a cost level are still random. A space without FLOPs (a
    user space without a build) gets a uniform sample.

    Args:
        space: The search space (name or instance).
        n: How many architectures (at least 1, at most the pool size).
        seed: Seed of the pool, the tie-breaking and the draws.
        pool: Size of the candidate pool for large spaces.

    Returns:
        Canonical strings, in increasing FLOPs.

    Example:
        >>> from edgeopt_plugins.devices import spread_archs
        >>> archs = spread_archs("nb201", 5, seed=0)
        >>> len(archs), archs[0] == spread_archs("nb201", 5, seed=0)[0]
        (5, True)
    """
    sp = get_space(space)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"spread_archs: n must be a positive integer, got {n!r}")
    if not sp.cost_names:  # no FLOPs to spread over: a uniform draw
        return sp.sample(n, seed=seed)
    if sp.costly_features:  # FLOPs counted on built models: a pool of 3 per stratum
        pool = min(pool, 3 * n)
    rng = np.random.default_rng(seed)
    if sp.size <= pool:
        grid = np.unravel_index(np.arange(sp.size), tuple(int(c) for c in sp.cardinalities))
        candidates = np.stack(grid, axis=1).astype(np.int64)
    else:
        candidates = np.unique(rng.integers(0, sp.cardinalities, size=(pool, len(sp.cardinalities))), axis=0)
    if n > len(candidates):
        raise InputError(f"spread_archs: cannot choose {n} architectures from a pool of {len(candidates)}")
    order = np.lexsort((rng.random(len(candidates)), sp.flops(candidates)))
    picks = [stratum[rng.integers(len(stratum))] for stratum in np.array_split(order, n)]
    return sp.from_indices(candidates[picks])


def read_arch_list(path: str | os.PathLike[str], space: str | SearchSpace, *, unique: bool = True) -> list[str]:
    """Architectures listed in a file: a CSV with an ``arch`` column, or one per line.

    A file whose first line is a CSV header naming an ``arch`` column (a profile CSV,
    a table export) is read as CSV; otherwise every non-empty line not starting with
    ``#`` is one architecture.

    Args:
        path: The file.
        space: The search space of the architectures.
        unique: Reject an architecture listed twice (measuring it twice is a mistake);
            ``False`` keeps every row in order (a list of predictions to make).

    Returns:
        Canonical strings, in file order.

    Raises:
        InputError: naming the file and line, for an unknown architecture, one listed
            twice (with ``unique``), or a file without architectures.

    Example:
        >>> import pathlib, tempfile
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "archs.txt"
        >>> _ = f.write_text("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|\\n")
        >>> len(read_arch_list(f, "nb201"))
        1
    """
    sp = get_space(space)
    p, text = read_text_file(path, "architecture list")
    shown = display_path(p)
    lines = text.splitlines()
    try:  # a field over csv's limit (128 KB) is a csv.Error, in the header too
        header = [h.strip() for h in next(csv.reader(lines[:1]), [])]
        rows = list(csv.reader(io.StringIO(text))) if "arch" in header else None
    except csv.Error as err:
        raise InputError(f"{shown}: malformed CSV ({err})") from None
    if rows is not None:
        column = header.index("arch")
        entries = [(line, row[column] if column < len(row) else "") for line, row in enumerate(rows[1:], start=2)
                   if any(cell.strip() for cell in row)]
    else:
        entries = [(line, raw) for line, raw in enumerate(lines, start=1)
                   if raw.strip() and not raw.lstrip().startswith("#")]
    out: list[str] = []
    seen: dict[str, int] = {}
    for line, raw in entries:
        try:
            arch = sp.format(raw.strip())
        except ArchitectureError as err:
            raise ArchitectureError(f"{shown} line {line}: {err}") from None
        if unique and arch in seen:
            raise InputError(f"{shown} line {line}: {arch} is already listed on line {seen[arch]}")
        seen.setdefault(arch, line)
        out.append(arch)
    if not out:
        raise InputError(f"{shown}: lists no architectures")
    return out
