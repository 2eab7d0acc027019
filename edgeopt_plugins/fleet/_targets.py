"""The devices of a fleet run: user profiles, benchmark-table devices and simulated devices.

Every kind answers the same questions, for a batch of devices at a time:

- the *profile* the model sees (measurements a user carries from the device);
- the *true* latency of given designs, where it is known (tables, simulations,
  or a user-supplied measuring command / callable during refinement);
- the device's latency over a pool of designs, where it is known, for
  percentile budgets and for the true optimum (regret).

All of it is reproducible from a :class:`TargetSpec` (what the CLI flags say), so
several worker processes build identical target lists.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeopt_plugins._io import display_path
from edgeopt_plugins._memory import require_memory
from edgeopt_plugins._values import check_seed
from edgeopt_plugins.data import MetricTable, load_table
from edgeopt_plugins.devices import DeviceProfile, SimulatedFleet
from edgeopt_plugins.exceptions import DataNotFoundError, InputError
from edgeopt_plugins.optimizer import candidate_pool
from edgeopt_plugins.spaces import BUILTIN_NAMES, SearchSpace, resolve_space

__all__ = ["TargetSpec", "Targets", "build_targets", "pool_for"]

#: Designs in the percentile/optimum pool of spaces too large to enumerate.
POOL_SIZE = 5000
#: Peak memory per simulated device while the fleet is drawn (measured: about 14 KB for NB201).
BYTES_PER_SIMULATED_DEVICE = 12_000


@dataclass(frozen=True)
class TargetSpec:
    """Which devices a fleet run covers (JSON-able; workers rebuild targets from it).

    Attributes:
        space: Search space: a built-in name, or how to find a space of your own
            (``module:attr`` or a spec file), so that every worker process finds it.
        profiles_dir: Folder of profile CSVs (each with its JSON sidecar).
        table_devices: Devices of the space's latency table (``["all"]`` for every column).
        simulated: Number of simulated devices.
        profile_size: Measurements per profile for table and simulated devices.
        seed: Seed of profile draws and simulated devices.
        monotonicity: Simulated fleet's target median pairwise Spearman, or ``"real"``.
        data_dir: Benchmark data folder.
    """

    space: str
    profiles_dir: str | None = None
    table_devices: tuple[str, ...] = ()
    simulated: int = 0
    profile_size: int = 10
    seed: int = 0
    monotonicity: str | float = "real"
    data_dir: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["table_devices"] = list(self.table_devices)
        return out


def pool_for(space: SearchSpace, table: MetricTable | None, *, seed: int = 0) -> list[str]:
    """Designs over which percentiles and optima are computed: the whole space when it is
    small (nb201), else the benchmark table's designs, else a seeded sample."""
    if table is None:
        size = POOL_SIZE // 5 if space.costly_features else POOL_SIZE  # features counted on built models
        return space.from_indices(candidate_pool(space, np.zeros((0, len(space.decisions)), np.int64), size, seed))
    return space.from_indices(candidate_pool(space, table.indices, 0, seed))


class Targets:
    """The fleet's devices, in a fixed order (index ``i`` is the same in every worker)."""

    def __init__(self, spec: TargetSpec) -> None:
        self.spec = spec
        self.space = resolve_space(spec.space)
        self._table: MetricTable | None = None
        self.names: list[str] = []
        self.kinds: list[str] = []
        self._profiles: dict[int, DeviceProfile] = {}
        self._table_cols: dict[int, int] = {}
        self._sim_ids: dict[int, int] = {}
        self._sim = None
        if spec.profiles_dir:
            self._add_profiles(Path(spec.profiles_dir))
        if spec.table_devices:
            self._add_table_devices(spec.table_devices)
        if spec.simulated:
            self._add_simulated(spec.simulated)
        if not self.names:
            raise InputError("no target devices: give --profiles DIR, --table-devices or --simulated N")
        dup = {n for n in self.names if self.names.count(n) > 1}
        if dup:
            raise InputError(f"target device names must be unique; repeated: {', '.join(sorted(dup)[:5])}")
        self.pool = pool_for(self.space, self.table_or_none(), seed=spec.seed)
        self.pool_indices = self.space.to_indices(self.pool)

    def __len__(self) -> int:
        return len(self.names)

    # ----------------------------------------------------------------- sources
    def table_or_none(self) -> MetricTable | None:
        if self._table is None and self.space.name in BUILTIN_NAMES:
            try:
                self._table = load_table(self.space.name, "latency_ms", data_dir=self.spec.data_dir)
            except DataNotFoundError:
                return None
        return self._table

    def _add_profiles(self, folder: Path) -> None:
        if not folder.is_dir():
            raise InputError(f"--profiles {display_path(folder)}: not a folder of profile CSVs")
        files = sorted(folder.glob("*.csv"))
        if not files:
            raise InputError(f"--profiles {display_path(folder)}: no *.csv profiles in the folder")
        for path in files:
            profile = DeviceProfile.read(path, self.space)
            if len(profile) < 2:
                raise InputError(f"{display_path(path)}: a profile needs at least 2 measurements, found {len(profile)}")
            i = len(self.names)
            self.names.append(profile.name)
            self.kinds.append("profile")
            self._profiles[i] = profile

    def _add_table_devices(self, devices: Sequence[str]) -> None:
        table = self.table_or_none()
        if table is None:
            raise DataNotFoundError(f"--table-devices needs the {self.space.name} latency table (set --data-dir)")
        names = list(table.devices) if list(devices) == ["all"] else list(devices)
        for name in names:
            col = table.device_index(name)
            i = len(self.names)
            self.names.append(name)
            self.kinds.append("table")
            self._table_cols[i] = col

    def _add_simulated(self, n: int) -> None:
        if n < 0:
            raise InputError(f"--simulated must be a non-negative number of devices, got {n}")
        require_memory(n * BYTES_PER_SIMULATED_DEVICE, f"--simulated {n}",
                       "simulate fewer devices per run (several runs with other seeds cover more)")
        table = self.table_or_none()
        if table is None:
            raise DataNotFoundError(f"simulated devices are fitted to the {self.space.name} latency table (set --data-dir)")
        fleet = SimulatedFleet.fit(table, seed=self.spec.seed, monotonicity=self.spec.monotonicity)
        self._sim = fleet.sample_devices(n, seed=self.spec.seed)
        for j, name in enumerate(self._sim.names):
            i = len(self.names)
            self.names.append(name)
            self.kinds.append("simulated")
            self._sim_ids[i] = j

    # ----------------------------------------------------------------- truth
    def pool_latency(self, ids: Sequence[int]) -> np.ndarray:
        """True latency of every pool design on each device: ``(len(pool), len(ids))``, NaN where unknown."""
        out = np.full((len(self.pool), len(ids)), np.nan)
        table = self._table
        sim_pos = [k for k, i in enumerate(ids) if i in self._sim_ids]
        if sim_pos:
            sim = self._sim.latency(self.pool_indices, [self._sim_ids[ids[k]] for k in sim_pos])
            out[:, sim_pos] = sim
        tab_pos = [k for k, i in enumerate(ids) if i in self._table_cols]
        if tab_pos:
            rows = self._pool_rows_in_table()
            for k in tab_pos:
                col = table.values[:, self._table_cols[ids[k]]]
                out[rows >= 0, k] = col[rows[rows >= 0]]
        return out

    def _pool_rows_in_table(self) -> np.ndarray:
        if not hasattr(self, "_rows_cache"):
            table = self._table
            self._rows_cache = np.array([table._row.get(a, -1) for a in self.pool], dtype=np.int64)
        return self._rows_cache

    def true_latency(self, i: int, archs: Sequence[str]) -> np.ndarray | None:
        """True latency of ``archs`` on device ``i`` (``None`` for a profile-only device)."""
        if i in self._sim_ids:
            return self._sim.latency(self.space.to_indices(list(archs)), [self._sim_ids[i]])[:, 0].astype(float)
        if i in self._table_cols:
            return self._table.lookup(archs, self._table.devices[self._table_cols[i]], skip_missing=True)
        return None

    def measurer(self, i: int) -> Callable[[str], float] | None:
        """A function measuring one design on device ``i`` (``None`` if the device cannot be measured here)."""
        if i in self._sim_ids or i in self._table_cols:
            def measure(arch: str) -> float:
                value = self.true_latency(i, [arch])
                return float(value[0]) if value is not None else float("nan")
            return measure
        return None

    # ----------------------------------------------------------------- profiles
    def profile(self, i: int) -> DeviceProfile:
        """The profile the model sees for device ``i``."""
        if i in self._profiles:
            return self._profiles[i]
        k = self.spec.profile_size
        rng = np.random.default_rng([self.spec.seed, i])
        if i in self._table_cols:
            table = self._table
            col = self._table_cols[i]
            measured = np.flatnonzero(table.available[:, col])
            if len(measured) < k:
                raise InputError(f"table device {self.names[i]!r} has only {len(measured)} measurements, fewer than {k}")
            rows = rng.choice(measured, size=k, replace=False)
            return DeviceProfile(self.space, tuple(table.archs[r] for r in rows), table.values[rows, col], None,
                                 {"name": self.names[i], "kind": "table"})
        picks = self.space.sample_indices(k, seed=int(rng.integers(2**31)))
        lat = self._sim.latency(picks, [self._sim_ids[i]])[:, 0].astype(float)
        return DeviceProfile(self.space, tuple(self.space.from_indices(picks)), lat, None,
                             {"name": self.names[i], "kind": "simulated"})

    def profiles(self, ids: Sequence[int]) -> list[DeviceProfile]:
        return [self.profile(i) for i in ids]


def build_targets(spec: TargetSpec) -> Targets:
    """Build (and validate) the fleet's devices."""
    check_seed(spec.seed)
    if spec.profile_size < 2:
        raise InputError(f"--profile-size must be at least 2, got {spec.profile_size}")
    if spec.data_dir is not None and not os.path.isdir(spec.data_dir):
        raise DataNotFoundError(f"--data-dir {spec.data_dir}: not a folder")
    return Targets(spec)
