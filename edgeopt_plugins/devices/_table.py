"""Devices read from a benchmark table: one column of a latency :class:`MetricTable` each."""

from __future__ import annotations

import os

import numpy as np

from edgeopt_plugins.data import MetricTable, load_table
from edgeopt_plugins.devices._base import BaseDevice
from edgeopt_plugins.exceptions import InputError

__all__ = ["TableDevice", "table_devices"]

_MISSING = ("raise", "skip")


class TableDevice(BaseDevice):
    """One device column of a latency table, answering with the recorded numbers.

    Args:
        table: A ``latency_ms`` table.
        device: The column.
        missing: What to do with an architecture the table has no value for (not
            in the table, or marked missing there): ``"raise"`` (default) raises
            :class:`InputError` naming it; ``"skip"`` returns ``NaN`` for it, and
            :meth:`profile` leaves it out.

    Example:
        >>> import numpy as np
        >>> from edgeopt_plugins.data import MetricTable
        >>> from edgeopt_plugins.devices import TableDevice
        >>> archs = ["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        ...          "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"]
        >>> table = MetricTable("nb201", "latency_ms", archs, ["phone"], np.array([[1.5], [np.nan]]),
        ...                     missing=np.array([[False], [True]]))
        >>> TableDevice(table, "phone", missing="skip").measure(archs)["latency_ms"].tolist()
        [1.5, nan]
    """

    def __init__(self, table: MetricTable, device: str, *, missing: str = "raise") -> None:
        if not isinstance(table, MetricTable):
            raise InputError(f"TableDevice: table must be a MetricTable, got {type(table).__name__}")
        if table.metric != "latency_ms":
            raise InputError(f"TableDevice: {table.source} holds {table.metric}, expected a latency_ms table")
        if missing not in _MISSING:
            raise InputError(f"TableDevice: missing must be 'raise' or 'skip', got {missing!r}")
        self.table = table
        self.space = table.space
        self.name = device
        self.missing = missing
        self._col = table.device_index(device)
        self.metadata = {
            "kind": "table",
            "space": table.space.name,
            "source": table.source,
            "column": device,
            "measured": int(table.available[:, self._col].sum()),
        }

    def _measure(self, indices: np.ndarray, *, progress: bool) -> dict[str, np.ndarray]:
        archs = self.space.from_indices(indices)
        known = np.array([self.table.has(a) for a in archs], dtype=bool)
        values = np.full(len(archs), np.nan)
        rows = self.table.rows_of([a for a, k in zip(archs, known) if k])
        values[known] = self.table.values[rows, self._col]
        if self.missing == "raise" and np.isnan(values).any():
            row = int(np.flatnonzero(np.isnan(values))[0])
            why = "is marked missing" if known[row] else "is not in the table"
            raise InputError(
                f"device {self.name} ({self.table.source}): {archs[row]} {why} "
                f"({int(np.isnan(values).sum())} of {len(archs)} unmeasured; use missing='skip' to leave them out)"
            )
        return {"latency_ms": values}


def table_devices(
    table: MetricTable | str,
    *,
    devices: list[str] | None = None,
    missing: str = "raise",
    data_dir: str | os.PathLike[str] | None = None,
) -> list[TableDevice]:
    """One :class:`TableDevice` per column of a latency table.

    Args:
        table: A latency :class:`MetricTable`, or a space name (``"nb201"``, ``"fbnet"``,
            ``"ofa"``, ``"mnasnet"``) whose benchmark latency table is loaded.
        devices: Only these columns (default: all, in table order).
        missing: Passed to every :class:`TableDevice`.
        data_dir: Data folder when ``table`` is a space name.

    Example:
        >>> from edgeopt_plugins.devices import table_devices
        >>> [d.name for d in table_devices("mnasnet")][:2]  # doctest: +SKIP
        ['zcu102', 'vck190']
    """
    tab = load_table(table, "latency_ms", data_dir=data_dir) if isinstance(table, str) else table
    if not isinstance(tab, MetricTable):
        raise InputError(f"table_devices: expected a MetricTable or a space name, got {type(table).__name__}")
    names = list(devices) if devices is not None else list(tab.devices)
    return [TableDevice(tab, name, missing=missing) for name in names]
