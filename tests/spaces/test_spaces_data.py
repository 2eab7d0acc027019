"""Every architecture of the four data sets parses, round-trips and maps to its row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from edgeopt_plugins.data import load_table
from edgeopt_plugins.spaces import get_space


def test_nb201_enumerates_15625_unique_cells_in_official_order(data_dir, nb201_accuracy):
    space = get_space("nb201")
    order = space.enumerate()
    assert len(order) == len(set(order)) == 15625
    nats = pd.read_csv(data_dir / "upstream/nats_bench/nats_bench.csv")
    assert order == list(nats["ArchitectureString"])
    assert list(nb201_accuracy.archs) == order
    assert space.index(order[4321]) == 4321
    assert space.indices([order[0], order[15624]]).tolist() == [0, 15624]


@pytest.mark.parametrize("name", ["fbnet", "ofa"])
def test_help_tables_match_the_flat_csv_rows(data_dir, name):
    table = load_table(name, data_dir=data_dir)
    flat = pd.read_csv(data_dir / f"tables/{name}/latency_ms.csv")
    assert list(table.archs) == list(flat["arch"])
    space = get_space(name)
    for arch in table.archs[:200]:
        assert space.format(space.parse(arch)) == arch
    col = table.devices[0]
    np.testing.assert_allclose(table.column(col), flat[col].to_numpy())


def test_mnasnet_rows_carry_accuracy_and_latency(data_dir):
    lat = load_table("mnasnet", data_dir=data_dir)
    acc = load_table("mnasnet", "accuracy", data_dir=data_dir)
    assert lat.archs == acc.archs
    assert len(lat) == 5125  # 5,138 records, 13 architectures measured twice (averaged)
    space = get_space("mnasnet")
    assert all(space.format(space.parse(a)) == a for a in lat.archs[:200])
    flat = pd.read_csv(data_dir / "tables/mnasnet/accel_nasbench.csv")
    archs = [
        {f: [int(r[f"block{i}_{f}"]) if f != "se" else bool(r[f"block{i}_se"]) for i in range(7)]
         for f in ("e", "k", "l", "se")}
        for _, r in flat.head(300).iterrows()
    ]
    # The analytic FLOPs model agrees with the benchmark's measured MACs.
    assert np.corrcoef(space.flops(archs), flat["macs"].head(300))[0, 1] > 0.99
