"""``TrainingDevices``: the device x architecture measurements a conditioned predictor learns from.

This is the seam between data sources and the device-conditioned predictor:
benchmark tables (:class:`~edgeopt_plugins.data.MetricTable`), simulated fleets
and a user's own measurements all become one matrix of latencies (and,
optionally, energies) over a shared list of architectures, ``NaN`` where a
device did not measure an architecture.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeopt_plugins.data import MetricTable
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.predictors._archkeys import ArchKeyIndex
from edgeopt_plugins.spaces import ArchLike, SearchSpace, get_space

__all__ = ["TrainingDevices"]


@dataclass
class TrainingDevices:
    """Measurements of many devices on a shared list of architectures.

    Attributes:
        space: The search space.
        indices: ``(n_archs, n_decisions)`` choice indices, unique rows.
        latency_ms: ``(n_archs, n_devices)`` latencies, ``NaN`` where not measured.
        devices: Device names, unique.
        energy_mj: ``(n_archs, n_devices)`` energies or ``None``; ``NaN`` where not
            measured (a whole column for devices without energy).
        kinds: Where each device comes from (``"table"``, ``"simulated"``, ...).

    Example:
        >>> from edgeopt_plugins.data import load_table
        >>> devices = TrainingDevices.from_tables([load_table("nb201")])  # doctest: +SKIP
        >>> devices.drop(["pixel3"]).n_devices  # doctest: +SKIP
        26
    """

    space: SearchSpace
    indices: np.ndarray
    latency_ms: np.ndarray
    devices: tuple[str, ...]
    energy_mj: np.ndarray | None = None
    kinds: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        self.space = get_space(self.space)
        self.indices = self.space.to_indices(np.asarray(self.indices, dtype=np.int64))
        self.latency_ms = np.asarray(self.latency_ms, dtype=np.float64)
        self.devices = tuple(str(d) for d in self.devices)
        n, m = self.indices.shape[0], len(self.devices)
        if self.latency_ms.shape != (n, m):
            raise InputError(f"training devices: latency matrix has shape {self.latency_ms.shape}, expected ({n}, {m})")
        if len(set(self.devices)) != m:
            raise InputError("training devices: device names must be unique")
        if not self.kinds:
            self.kinds = ("table",) * m
        if len(self.kinds) != m:
            raise InputError("training devices: one kind per device expected")
        with np.errstate(invalid="ignore"):
            if (self.latency_ms <= 0).any():
                raise InputError("training devices: latencies must be positive")
        if self.energy_mj is not None:
            self.energy_mj = np.asarray(self.energy_mj, dtype=np.float64)
            if self.energy_mj.shape != (n, m):
                raise InputError(f"training devices: energy matrix has shape {self.energy_mj.shape}, expected ({n}, {m})")
            with np.errstate(invalid="ignore"):
                if (self.energy_mj <= 0).any():
                    raise InputError("training devices: energies must be positive")
            if np.isnan(self.energy_mj).all():
                self.energy_mj = None
        ArchKeyIndex(self.indices, self.space.cardinalities)  # checks uniqueness

    # ----------------------------------------------------------------- facts
    @property
    def n_archs(self) -> int:
        return int(self.indices.shape[0])

    @property
    def n_devices(self) -> int:
        return len(self.devices)

    @property
    def has_energy(self) -> bool:
        return self.energy_mj is not None

    def metric(self, name: str) -> np.ndarray:
        """``latency_ms`` or ``energy_mj`` matrix."""
        if name == "latency_ms":
            return self.latency_ms
        if name == "energy_mj" and self.energy_mj is not None:
            return self.energy_mj
        raise InputError(f"training devices have no {name!r}")

    def __repr__(self) -> str:
        kinds = {k: self.kinds.count(k) for k in dict.fromkeys(self.kinds)}
        return (f"TrainingDevices(space={self.space.name!r}, archs={self.n_archs}, devices={self.n_devices} {kinds}, "
                f"energy={self.has_energy})")

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_tables(cls, latency: Sequence[MetricTable] | MetricTable, *,
                    energy: Sequence[MetricTable] | MetricTable | None = None) -> TrainingDevices:
        """Merge latency tables (and optional energy tables) of one space.

        Device columns of energy tables are matched to latency columns by name.
        """
        lat_tables = [latency] if isinstance(latency, MetricTable) else list(latency)
        en_tables = [] if energy is None else ([energy] if isinstance(energy, MetricTable) else list(energy))
        if not lat_tables:
            raise InputError("training devices: no latency table")
        for t in lat_tables:
            if t.metric != "latency_ms":
                raise InputError(f"{t.source}: expected a latency table, got {t.metric}")
        for t in en_tables:
            if t.metric != "energy_mj":
                raise InputError(f"{t.source}: expected an energy table, got {t.metric}")
        space = lat_tables[0].space
        if any(t.space.name != space.name for t in lat_tables + en_tables):
            raise InputError("training devices: all tables must belong to the same search space")
        out: TrainingDevices | None = None
        for t in lat_tables:
            part = cls(space, t.indices, t.values, t.devices, kinds=("table",) * len(t.devices))
            out = part if out is None else out.concat(part)
        assert out is not None
        for t in en_tables:
            out = out.with_energy(t.indices, t.values, t.devices)
        return out

    @classmethod
    def from_arrays(cls, space: str | SearchSpace, archs: Iterable[ArchLike] | np.ndarray, latency_ms: Any,
                    devices: Sequence[str], *, energy_mj: Any = None, kind: str = "simulated") -> TrainingDevices:
        """From architectures (strings or index matrix) and ``(n_archs, n_devices)`` arrays."""
        sp = get_space(space)
        return cls(sp, sp.to_indices(archs), latency_ms, tuple(devices), energy_mj, (kind,) * len(devices))

    def with_energy(self, indices: np.ndarray, values: np.ndarray, devices: Sequence[str]) -> TrainingDevices:
        """A copy with energy values for some of the devices (matched by name and architecture)."""
        pos = ArchKeyIndex(self.indices, self.space.cardinalities).positions(np.asarray(indices))
        energy = np.full(self.latency_ms.shape, np.nan) if self.energy_mj is None else self.energy_mj.copy()
        for j, name in enumerate(devices):
            if name not in self.devices:
                raise InputError(f"energy for unknown device {name!r}")
            col = self.devices.index(name)
            keep = pos >= 0
            energy[pos[keep], col] = np.asarray(values)[keep, j]
        return TrainingDevices(self.space, self.indices, self.latency_ms, self.devices, energy, self.kinds)

    def concat(self, other: TrainingDevices) -> TrainingDevices:
        """Devices of both, over the union of their architectures (``NaN`` where unmeasured)."""
        if other.space.name != self.space.name:
            raise InputError("training devices: cannot merge two search spaces")
        clash = set(self.devices) & set(other.devices)
        if clash:
            raise InputError(f"training devices: device name(s) {sorted(clash)[:3]} appear in both sets")
        index = ArchKeyIndex(self.indices, self.space.cardinalities)
        pos = index.positions(other.indices)
        new_rows = other.indices[pos < 0]
        indices = np.concatenate([self.indices, new_rows])
        n = indices.shape[0]
        where = pos.copy()
        where[pos < 0] = self.n_archs + np.arange(new_rows.shape[0])

        def merged(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
            if a is None and b is None:
                return None
            out = np.full((n, self.n_devices + other.n_devices), np.nan)
            if a is not None:
                out[: self.n_archs, : self.n_devices] = a
            if b is not None:
                out[where, self.n_devices:] = b
            return out

        lat = merged(self.latency_ms, other.latency_ms)
        assert lat is not None
        return TrainingDevices(self.space, indices, lat, self.devices + other.devices,
                               merged(self.energy_mj, other.energy_mj), self.kinds + other.kinds)

    def select(self, devices: Iterable[str]) -> TrainingDevices:
        """Only the named devices (architectures no longer measured by any are dropped)."""
        names = list(devices)
        unknown = [d for d in names if d not in self.devices]
        if unknown:
            raise InputError(f"training devices: unknown device(s) {unknown[:3]}")
        cols = [self.devices.index(d) for d in names]
        lat = self.latency_ms[:, cols]
        rows = ~np.isnan(lat).all(axis=1)
        energy = None if self.energy_mj is None else self.energy_mj[np.ix_(rows, cols)]
        return TrainingDevices(self.space, self.indices[rows], lat[rows], tuple(names), energy,
                               tuple(self.kinds[c] for c in cols))

    def drop(self, devices: Iterable[str]) -> TrainingDevices:
        """All devices but the named ones (for leave-one-device-out evaluation)."""
        gone = set(devices)
        unknown = gone - set(self.devices)
        if unknown:
            raise InputError(f"training devices: unknown device(s) {sorted(unknown)[:3]}")
        return self.select([d for d in self.devices if d not in gone])
