"""Which benchmark table lives where in a data folder, and a cached ``load_table``."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeopt_plugins._io import display_path
from edgeopt_plugins.data._loaders import (
    read_accel_nasbench,
    read_help_archs,
    read_help_latency,
    read_nats_bench,
    read_table_csv,
)
from edgeopt_plugins.data._sources import resolve_data_dir
from edgeopt_plugins.data._table import METRICS, MetricTable
from edgeopt_plugins.exceptions import DataNotFoundError, InputError
from edgeopt_plugins.spaces import get_space

__all__ = ["load_table", "available_tables", "data_info", "nb201_official_order", "TableSource"]


@dataclass(frozen=True)
class TableSource:
    """One place a (space, metric) table can be read from, relative to the data folder."""

    space: str
    metric: str
    relpath: str
    reader: Callable[[Path], MetricTable]


def _anb(metric: str) -> Callable[[Path], MetricTable]:
    return lambda p: read_accel_nasbench(p)[metric]


#: In preference order: the upstream format first, the flat CSV copy second.
SOURCES: tuple[TableSource, ...] = (
    TableSource("nb201", "latency_ms", "upstream/help/nasbench201", lambda p: read_help_latency("nb201", p)),
    TableSource("nb201", "latency_ms", "tables/nb201/latency_ms.csv", lambda p: read_table_csv(p, "nb201")),
    TableSource("nb201", "accuracy", "upstream/nats_bench/nats_bench.csv", read_nats_bench),
    TableSource("nb201", "accuracy", "tables/nb201/accuracy.csv", read_nats_bench),
    TableSource("fbnet", "latency_ms", "upstream/help/fbnet", lambda p: read_help_latency("fbnet", p)),
    TableSource("fbnet", "latency_ms", "tables/fbnet/latency_ms.csv", lambda p: read_table_csv(p, "fbnet")),
    TableSource("ofa", "latency_ms", "upstream/help/ofa", lambda p: read_help_latency("ofa", p)),
    TableSource("ofa", "latency_ms", "tables/ofa/latency_ms.csv", lambda p: read_table_csv(p, "ofa")),
    TableSource("mnasnet", "latency_ms", "upstream/accel_nasbench/anb_dataset_jsons.tar.gz", _anb("latency_ms")),
    TableSource("mnasnet", "latency_ms", "tables/mnasnet/accel_nasbench.csv", _anb("latency_ms")),
    TableSource("mnasnet", "accuracy", "upstream/accel_nasbench/anb_dataset_jsons.tar.gz", _anb("accuracy")),
    TableSource("mnasnet", "accuracy", "tables/mnasnet/accel_nasbench.csv", _anb("accuracy")),
)


def _find_source(root: Path, space: str, metric: str) -> TableSource | None:
    for src in SOURCES:
        if src.space == space and src.metric == metric and (root / src.relpath).exists():
            return src
    return None


def available_tables(data_dir: str | os.PathLike[str] | None = None) -> list[tuple[str, str, Path]]:
    """``(space, metric, path)`` of every table found in the data folder."""
    root = resolve_data_dir(data_dir)
    found = []
    for space, metric in dict.fromkeys((s.space, s.metric) for s in SOURCES):
        src = _find_source(root, space, metric)
        if src is not None:
            found.append((space, metric, root / src.relpath))
    return found


def load_table(space: str, metric: str = "latency_ms", *, data_dir: str | os.PathLike[str] | None = None) -> MetricTable:
    """The benchmark table of ``space`` and ``metric`` from the data folder.

    Tables are cached per (folder, space, metric) for the life of the process.

    Args:
        space: ``"nb201"``, ``"fbnet"``, ``"ofa"`` or ``"mnasnet"``.
        metric: ``"latency_ms"`` or ``"accuracy"``.
        data_dir: Data folder (default: ``EDGEOPT_DATA_DIR`` or the user cache).

    Raises:
        DataNotFoundError: when the folder has no such table.

    Example:
        >>> from edgeopt_plugins.data import load_table
        >>> table = load_table("nb201")  # doctest: +SKIP
        >>> len(table), "pixel3" in table.devices  # doctest: +SKIP
        (15625, True)
    """
    sp = get_space(space).name
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r} (expected one of {', '.join(METRICS)})")
    root = resolve_data_dir(data_dir)
    return _load_cached(str(root.resolve()), sp, metric)


@functools.lru_cache(maxsize=32)
def _load_cached(root: str, space: str, metric: str) -> MetricTable:
    src = _find_source(Path(root), space, metric)
    if src is None:
        wanted = [s.relpath for s in SOURCES if s.space == space and s.metric == metric]
        if not wanted:
            raise DataNotFoundError(f"no benchmark provides {metric} for space {space!r}")
        raise DataNotFoundError(f"{display_path(root)}: no {metric} data for {space!r} (looked for {', '.join(wanted)})")
    return src.reader(Path(root) / src.relpath)


def nb201_official_order(data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """The 15,625 NB201 cells in official index order, from whichever NB201 file is present."""
    root = resolve_data_dir(data_dir)
    help_dir = root / "upstream/help/nasbench201"
    if (help_dir / "str_arch2idx.pt").is_file():
        return read_help_archs("nb201", help_dir)
    for metric in ("accuracy", "latency_ms"):
        src = _find_source(root, "nb201", metric)
        if src is not None:
            return list(_load_cached(str(root.resolve()), "nb201", metric).archs)
    raise DataNotFoundError(f"{display_path(root)}: no NB201 file to read the official index order from")


def data_info(data_dir: str | os.PathLike[str] | None = None) -> list[dict[str, object]]:
    """One record per table found: space, metric, path, number of architectures and devices.

    ``missing`` counts the (architecture, device) cells without a measurement,
    ``missing_by_device`` splits it by device (devices with none left out) and
    ``incomplete_archs`` counts the architectures concerned; such cells are ``NaN`` in the
    table and never used as values.
    """
    rows = []
    for space, metric, path in available_tables(data_dir):
        table = load_table(space, metric, data_dir=data_dir)
        missing = ~table.available
        per_device = missing.sum(axis=0)
        rows.append({
            "space": space,
            "metric": metric,
            "path": display_path(path),
            "archs": len(table),
            "devices": list(table.devices),
            "missing": int(per_device.sum()),
            "missing_by_device": {d: int(n) for d, n in zip(table.devices, per_device) if n},
            "incomplete_archs": int(missing.any(axis=1).sum()),
        })
    return rows
