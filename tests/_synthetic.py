"""Synthetic latency fleets for fast, deterministic predictor tests (no benchmark data needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeopt_plugins.data import MetricTable
from edgeopt_plugins.spaces import get_space

#: NB201 op costs per edge (none, skip, conv1x1, conv3x3, avg_pool), in ms, before device factors.
_BASE = np.array([0.0, 0.05, 0.35, 1.0, 0.25])


def device_latency(idx: np.ndarray, rng: np.random.Generator, *, interaction: float = 0.0, noise: float = 0.01) -> np.ndarray:
    """Latency of NB201 cells (index matrix) on one random device: additive op costs with
    device-specific factors, an optional interaction, multiplicative noise."""
    factors = np.exp(rng.normal(0.0, 0.35, size=(6, 5)))  # per edge and op
    overhead = rng.uniform(0.5, 2.0)
    lat = overhead + (_BASE[None, :] * factors)[np.arange(6)[None, :], idx].sum(axis=1)
    if interaction:
        # Node 1 feeds three edges: when its only input is "none", ops reading it are cheaper.
        dead = idx[:, 0] == 0
        lat = lat - interaction * dead * (_BASE[idx[:, 2]] + _BASE[idx[:, 4]])
    return lat * np.exp(rng.normal(0.0, noise, size=lat.shape))


def fleet(n_devices: int = 8, n_archs: int = 1500, *, seed: int = 0, interaction: float = 0.6) -> MetricTable:
    """A table of ``n_devices`` random devices (``dev0`` ...) on ``n_archs`` random NB201 cells."""
    space = get_space("nb201")
    rng = np.random.default_rng(seed)
    idx = space.sample_indices(n_archs, seed=seed)
    cols = [device_latency(idx, rng, interaction=interaction * rng.uniform(0, 1)) for _ in range(n_devices)]
    return MetricTable(space, "latency_ms", space.from_indices(idx), [f"dev{i}" for i in range(n_devices)],
                       np.column_stack(cols), source="synthetic")


def write_data_dir(table: MetricTable, root: Path) -> Path:
    """Write ``table`` where ``load_table(space, data_dir=root)`` finds it (the flat CSV layout)."""
    path = root / "tables" / table.space.name / "latency_ms.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_frame().to_csv(path, index=False)
    return root
