"""Small training sets for the approach-2 tests: real data subsets and a synthetic low-rank fleet."""

from __future__ import annotations

import numpy as np

from edgeopt_plugins.data import MetricTable
from edgeopt_plugins.predictors import TrainingDevices
from edgeopt_plugins.spaces import get_space

#: Devices held out of every small real training set (never seen by the fitted models).
HELD_OUT = ("pixel3", "titan_rtx_1", "gold_6240")


def real_subset(table: MetricTable, *, n_archs: int = 3000, seed: int = 0) -> TrainingDevices:
    """Real latencies of ``n_archs`` random architectures on every device but :data:`HELD_OUT`."""
    rows = np.random.default_rng(seed).choice(len(table), size=n_archs, replace=False)
    devices = TrainingDevices.from_tables(table.select(rows=np.sort(rows)))
    return devices.drop([d for d in HELD_OUT if d in devices.devices])


def synthetic_fleet(n_devices: int, *, n_archs: int = 1500, rank: int = 3, noise: float = 0.05,
                    energy: bool = False, seed: int = 0) -> TrainingDevices:
    """Devices whose log-latency is exactly low-rank in the op one-hot encoding, plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    space = get_space("nb201")
    idx = space.sample_indices(n_archs, seed=seed)
    x = space.one_hot(idx)
    arch_factors = x @ rng.normal(size=(x.shape[1], rank)) / np.sqrt(x.shape[1])
    scale = rng.normal(1.0, 1.0, size=n_devices)
    loads = rng.normal(size=(n_devices, rank))
    lat = np.exp(scale + arch_factors @ loads.T + noise * rng.normal(size=(n_archs, n_devices)))
    en = None
    if energy:
        power = np.exp(rng.normal(0.5, 0.3, size=n_devices) + 0.3 * loads[:, :1].T)
        en = lat * power * np.exp(0.3 * arch_factors[:, 1:2] + noise * rng.normal(size=lat.shape))
    names = [f"sim{i}" for i in range(n_devices)]
    return TrainingDevices.from_arrays(space, idx, lat, names, energy_mj=en)


def synthetic_cost_fleet(space_name: str, n_devices: int, *, n_archs: int = 1200, seed: int = 0) -> TrainingDevices:
    """Devices whose latency is a random positive mix of the space's analytic costs (FLOPs, params, bytes)."""
    rng = np.random.default_rng(seed)
    space = get_space(space_name)
    idx = space.sample_indices(n_archs, seed=seed)
    costs = space.costs(idx)
    costs = costs / costs.mean(axis=0)
    weights = np.exp(rng.normal(size=(costs.shape[1], n_devices)))
    lat = (0.2 + costs @ weights) * np.exp(0.03 * rng.normal(size=(n_archs, n_devices)))
    return TrainingDevices.from_arrays(space, idx, lat, [f"{space_name}-sim{i}" for i in range(n_devices)])
