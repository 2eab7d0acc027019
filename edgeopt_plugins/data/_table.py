"""``MetricTable``: architectures x devices for one metric, validated on construction."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from edgeopt_plugins._values import PLAUSIBLE, implausible
from edgeopt_plugins.exceptions import ArchitectureError, InputError
from edgeopt_plugins.spaces import ArchLike, SearchSpace, get_space

__all__ = ["MetricTable", "METRICS"]

#: Known metrics and the range their values must lie in (low exclusive for latency/energy).
METRICS = {
    "latency_ms": "positive milliseconds",
    "energy_mj": "positive millijoules",
    "accuracy": "percent in [0, 100]",
}


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r} (expected one of {', '.join(METRICS)})")


def invalid_value_reason(metric: str, value: float) -> str | None:
    """Why ``value`` is not a valid ``metric`` value, or ``None`` when it is."""
    if not np.isfinite(value):
        return f"{metric} is {value} (must be finite)"
    if metric == "accuracy":
        if not 0.0 <= value <= 100.0:
            return f"accuracy {value} is outside [0, 100]"
    elif value <= 0:
        return f"{metric} is {'zero' if value == 0 else 'negative'} ({value})"
    elif metric in PLAUSIBLE:
        return implausible(metric, value)
    return None


class MetricTable:
    """Measurements of one metric: one row per architecture, one column per device.

    For ``accuracy`` the columns are data sets (``cifar10`` ...) instead of devices.
    Missing measurements (for example ``-1`` in the upstream files) are kept as
    ``NaN`` and flagged in :attr:`available`; they are never used as values.

    Args:
        space: The search space (name or instance).
        metric: ``"latency_ms"``, ``"energy_mj"`` or ``"accuracy"``.
        archs: Architectures, one per row (any form the space parses).
        devices: Column names, unique.
        values: Array ``(len(archs), len(devices))``.
        missing: Optional boolean mask of the same shape: entries that are not measured.
        source: Where the numbers came from, used in error messages.

    Raises:
        InputError: for unknown architectures, duplicates, or values that are
            NaN, infinite or out of range without being marked missing.

    Example:
        >>> import numpy as np
        >>> from edgeopt_plugins.data import MetricTable
        >>> t = MetricTable("nb201", "latency_ms",
        ...     ["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        ...      "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"],
        ...     ["phone"], np.array([[1.0], [9.5]]))
        >>> float(t.lookup(["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"], "phone")[0])
        1.0
    """

    def __init__(
        self,
        space: str | SearchSpace,
        metric: str,
        archs: Iterable[ArchLike],
        devices: Sequence[str],
        values: Any,
        *,
        missing: Any = None,
        source: str = "table",
    ) -> None:
        self.space = get_space(space)
        _check_metric(metric)
        self.metric = metric
        self.source = source
        idx_rows = []
        for row, arch in enumerate(archs):
            try:
                idx_rows.append(self.space.indices_of(arch))
            except ArchitectureError as err:
                raise ArchitectureError(f"{source}: architecture {row + 1}: {err}") from None
        if not idx_rows:
            raise InputError(f"{source}: no architectures")
        self._indices = np.asarray(idx_rows, dtype=np.int64)
        self.archs: tuple[str, ...] = tuple(self.space.from_indices(self._indices))
        self._row = {a: i for i, a in enumerate(self.archs)}
        if len(self._row) != len(self.archs):
            seen: dict[str, int] = {}
            for i, a in enumerate(self.archs):
                if a in seen:
                    raise InputError(f"{source}: architecture {a!r} appears twice (rows {seen[a] + 1} and {i + 1})")
                seen[a] = i
        names = [str(d) for d in devices]
        if not names:
            raise InputError(f"{source}: no device columns")
        dup = {d for d in names if names.count(d) > 1}
        if dup or any(not d.strip() for d in names):
            raise InputError(f"{source}: device names must be unique and non-empty (problem: {sorted(dup) or ['']})")
        self.devices: tuple[str, ...] = tuple(names)
        vals = np.array(values, dtype=np.float64, copy=True)
        if vals.shape != (len(self.archs), len(self.devices)):
            raise InputError(f"{source}: values have shape {vals.shape}, expected ({len(self.archs)}, {len(self.devices)})")
        miss = np.zeros(vals.shape, dtype=bool) if missing is None else np.array(missing, dtype=bool)
        if miss.shape != vals.shape:
            raise InputError(f"{source}: missing mask has shape {miss.shape}, expected {vals.shape}")
        bad = ~miss & ~self._valid(vals)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            reason = invalid_value_reason(metric, vals[r, c])
            raise InputError(f"{source}: {self.archs[r]} on {self.devices[c]}: {reason} ({int(bad.sum())} bad value(s))")
        vals[miss] = np.nan
        vals.setflags(write=False)
        self.values = vals
        self.available = ~miss
        self.available.setflags(write=False)

    def _valid(self, vals: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(vals)
            if self.metric == "accuracy":
                return ok & (vals >= 0) & (vals <= 100)
            return ok & (vals > 0)

    @classmethod
    def from_profiles(
        cls,
        profiles: Iterable[Any],
        *,
        space: str | SearchSpace | None = None,
        source: str = "profiles",
    ) -> MetricTable:
        """A latency table from several device profiles: one column per device.

        This is how measurements of your own space become proxy devices (approach 1)
        or training devices (approach 2): ``edgeopt profile`` runs on this machine
        under several settings, profiles of other devices, or imported CSVs.
        Architectures measured by some devices only are ``NaN`` (missing) on the others.

        Args:
            profiles: :class:`~edgeopt_plugins.devices.DeviceProfile` objects or CSV
                paths: a profile (``arch,latency_ms`` with an optional sidecar; the
                device is its name, else the file name) or a flat table (``arch`` and
                one column per device).
            space: The search space (default: the first profile's).
            source: Name used in error messages.

        Profiles with the same device name (one setting measured in two sessions) are
        one device; an architecture measured in both takes the mean.

        Raises:
            InputError: for no profiles or profiles of different spaces.

        Example:
            >>> from edgeopt_plugins.devices import DeviceProfile
            >>> a = DeviceProfile.from_dict("nb201", {"|none~0|+|none~0|none~1|+|none~0|none~1|none~2|": 1.0}, name="a")
            >>> b = DeviceProfile.from_dict("nb201", {"|none~0|+|none~0|none~1|+|none~0|none~1|none~2|": 2.0}, name="b")
            >>> MetricTable.from_profiles([a, b]).devices
            ('a', 'b')
        """
        from edgeopt_plugins.data._loaders import read_table_csv
        from edgeopt_plugins.devices import DeviceProfile

        columns: list[tuple[str, dict[str, float]]] = []
        sp = None if space is None else get_space(space)
        for item in profiles:
            if isinstance(item, (MetricTable, DeviceProfile)):
                tables = [item]
            elif _is_profile_csv(item):
                tables = [DeviceProfile.read(item, space=sp)]
            else:
                if sp is None:
                    raise InputError(f"{item}: a flat table needs the search space (give space=...)")
                tables = [read_table_csv(item, sp)]
            for t in tables:
                if sp is None:
                    sp = t.space
                if t.space.name != sp.name:
                    raise InputError(f"{source}: {t.name if isinstance(t, DeviceProfile) else t.source} is for space "
                                     f"{t.space.name!r}, the others for {sp.name!r}")
                if isinstance(t, DeviceProfile):
                    columns.append((t.name, t.as_dict()))
                elif t.metric != "latency_ms":
                    raise InputError(f"{source}: {t.source} holds {t.metric}, not latency_ms")
                else:
                    for d in t.devices:
                        col = t.column(d)
                        columns.append((d, {a: float(v) for a, v in zip(t.archs, col) if np.isfinite(v)}))
        if sp is None or not columns:
            raise InputError(f"{source}: no profiles given")
        merged: dict[str, dict[str, list[float]]] = {}
        for name, col in columns:
            device = merged.setdefault(name, {})
            for arch, value in col.items():
                device.setdefault(arch, []).append(value)
        archs = list(dict.fromkeys(a for _, col in columns for a in col))
        values = np.array([[float(np.mean(merged[d][a])) if a in merged[d] else np.nan for d in merged]
                           for a in archs])
        return cls(sp, "latency_ms", archs, list(merged), values, missing=np.isnan(values), source=source)

    # ----------------------------------------------------------------- access
    def __len__(self) -> int:
        return len(self.archs)

    def __repr__(self) -> str:
        return (
            f"MetricTable(space={self.space.name!r}, metric={self.metric!r}, archs={len(self.archs)}, "
            f"devices={len(self.devices)}, source={self.source!r})"
        )

    @property
    def indices(self) -> np.ndarray:
        """Choice-index matrix of the rows (read-only)."""
        out = self._indices.view()
        out.setflags(write=False)
        return out

    def device_index(self, device: str) -> int:
        """Column position of ``device``.

        Raises:
            InputError: naming the known devices when ``device`` is not a column.
        """
        try:
            return self.devices.index(device)
        except ValueError:
            raise InputError(
                f"{self.source}: unknown device {device!r} (known: {', '.join(self.devices)})"
            ) from None

    def column(self, device: str) -> np.ndarray:
        """Values of one device, ``NaN`` where missing."""
        return self.values[:, self.device_index(device)]

    def rows_of(self, archs: Iterable[ArchLike]) -> np.ndarray:
        """Row positions of ``archs``; unknown architectures raise :class:`InputError`."""
        out = []
        for arch in archs:
            key = arch if isinstance(arch, str) and arch in self._row else self.space.format(arch)
            try:
                out.append(self._row[key])
            except KeyError:
                raise InputError(f"{self.source}: architecture {key!r} is not in the table") from None
        return np.asarray(out, dtype=np.int64)

    def has(self, arch: ArchLike) -> bool:
        """Whether the table has a row for ``arch``."""
        try:
            return self.space.format(arch) in self._row
        except ArchitectureError:
            return False

    def lookup(self, archs: Iterable[ArchLike], device: str, *, skip_missing: bool = False) -> np.ndarray:
        """Values of ``archs`` on ``device``.

        Args:
            archs: Architectures in the table.
            device: Column name.
            skip_missing: When false (default) a missing entry raises; when true it
                comes back as ``NaN``.
        """
        rows = self.rows_of(archs)
        col = self.device_index(device)
        out = self.values[rows, col]
        if not skip_missing and np.isnan(out).any():
            first = int(rows[np.isnan(out)][0])
            raise InputError(f"{self.source}: no {self.metric} for {self.archs[first]!r} on {device!r} (missing)")
        return out

    def select(self, *, devices: Sequence[str] | None = None, rows: Any = None) -> MetricTable:
        """A new table with a subset of devices and/or rows (positions or a boolean mask)."""
        cols = [self.device_index(d) for d in devices] if devices is not None else list(range(len(self.devices)))
        r = np.arange(len(self.archs)) if rows is None else np.arange(len(self.archs))[rows]
        return MetricTable(
            self.space,
            self.metric,
            [self.archs[i] for i in r],
            [self.devices[c] for c in cols],
            self.values[np.ix_(r, cols)],
            missing=~self.available[np.ix_(r, cols)],
            source=self.source,
        )

    def to_frame(self) -> pd.DataFrame:
        """A DataFrame with an ``arch`` column then one column per device."""
        frame = pd.DataFrame(self.values, columns=list(self.devices))
        frame.insert(0, "arch", list(self.archs))
        return frame

    @functools.cached_property
    def complete_rows(self) -> np.ndarray:
        """Boolean mask of rows measured on every device."""
        return self.available.all(axis=1)


def _is_profile_csv(path: Any) -> bool:
    """Whether a CSV's header is a profile's (``arch`` and ``latency_ms``) rather than a flat table's."""
    import csv
    from pathlib import Path

    from edgeopt_plugins._io import existing_file

    p = existing_file(path, "profile or table CSV")
    try:
        with Path(p).open(newline="", encoding="utf-8") as handle:
            header = [c.strip() for c in next(csv.reader(handle), [])]
    except (UnicodeDecodeError, csv.Error):
        return True  # the profile reader reports it
    return "arch" in header and "latency_ms" in header
