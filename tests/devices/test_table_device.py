"""TableDevice and table_devices: table columns as devices, missing entries raised or skipped."""

from __future__ import annotations

import numpy as np
import pytest

from edgeopt_plugins.data import MetricTable
from edgeopt_plugins.devices import BaseDevice, Device, DeviceProfile, TableDevice, table_devices
from edgeopt_plugins.exceptions import ArchitectureError, InputError
from edgeopt_plugins.spaces import get_space

SPACE = get_space("nb201")
ARCHS = SPACE.sample(4, seed=7)
OUTSIDE = SPACE.sample(5, seed=8)[-1]


@pytest.fixture
def table() -> MetricTable:
    values = np.array([[1.0, 10.0], [2.0, np.nan], [3.0, 30.0], [4.0, 40.0]])
    return MetricTable("nb201", "latency_ms", ARCHS, ["phone", "gpu"], values, missing=np.isnan(values),
                       source="toy.csv")


def test_measure_returns_the_column_in_input_order(table):
    dev = TableDevice(table, "phone")
    assert isinstance(dev, Device) and isinstance(dev, BaseDevice)
    out = dev.measure([ARCHS[2], ARCHS[0]])
    assert out["latency_ms"].tolist() == [3.0, 1.0]
    assert dev.name == "phone" and dev.metadata["source"] == "toy.csv" and dev.metadata["measured"] == 4
    # any architecture form works: params dicts and index matrices
    assert dev.measure([SPACE.parse(ARCHS[1])])["latency_ms"].tolist() == [2.0]
    assert dev.measure(SPACE.to_indices(ARCHS[:2]))["latency_ms"].tolist() == [1.0, 2.0]


@pytest.mark.parametrize(("arch", "why"), [(ARCHS[1], "is marked missing"), (OUTSIDE, "is not in the table")])
def test_missing_raise_names_the_architecture(table, arch, why):
    with pytest.raises(InputError, match="use missing='skip'") as info:
        TableDevice(table, "gpu").measure([ARCHS[0], arch])
    assert why in str(info.value) and arch in str(info.value)


def test_missing_skip_gives_nan_and_profiles_leave_it_out(table):
    dev = TableDevice(table, "gpu", missing="skip")
    lat = dev.measure([ARCHS[0], ARCHS[1], OUTSIDE])["latency_ms"]
    assert lat[0] == 10.0 and np.isnan(lat[1:]).all()
    profile = dev.profile([ARCHS[0], ARCHS[1], ARCHS[3]])
    assert isinstance(profile, DeviceProfile)
    assert profile.archs == (ARCHS[0], ARCHS[3]) and profile.name == "gpu"
    assert profile.metadata["kind"] == "table"


def test_profile_round_trips_through_files(table, tmp_path):
    profile = TableDevice(table, "phone").profile(ARCHS, metadata={"note": "x"})
    back = DeviceProfile.read(profile.write(tmp_path / "phone.csv"))
    assert back.archs == profile.archs and back.metadata["note"] == "x" and back.name == "phone"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"device": "tpu"}, "unknown device 'tpu'"),
        ({"missing": "ignore"}, "missing must be 'raise' or 'skip'"),
    ],
)
def test_bad_arguments(table, kwargs, fragment):
    args = {"device": "phone"} | kwargs
    with pytest.raises(InputError, match=fragment):
        TableDevice(table, args.pop("device"), **args)


def test_rejects_non_latency_tables_and_foreign_architectures(table):
    acc = MetricTable("nb201", "accuracy", ARCHS, ["cifar10"], np.full((4, 1), 90.0))
    with pytest.raises(InputError, match="expected a latency_ms table"):
        TableDevice(acc, "cifar10")
    with pytest.raises(ArchitectureError):
        TableDevice(table, "phone").measure(["|bad~0|"])
    with pytest.raises(InputError, match="expected a MetricTable"):
        table_devices(42)
    with pytest.raises(InputError, match="no architectures to measure"):
        TableDevice(table, "phone").measure([])


def test_table_devices_makes_one_device_per_column(table):
    assert [d.name for d in table_devices(table)] == ["phone", "gpu"]
    assert [d.name for d in table_devices(table, devices=["gpu"], missing="skip")] == ["gpu"]


@pytest.mark.parametrize("space", ["nb201", "fbnet", "ofa", "mnasnet"])
def test_every_data_set_gives_table_devices(data_dir, space):
    devices = table_devices(space, data_dir=data_dir, missing="skip")
    assert len(devices) >= 8
    table = devices[0].table
    archs = table.archs[:20]
    for dev in devices:
        lat = dev.measure(archs)["latency_ms"]
        expected = table.column(dev.name)[:20]
        np.testing.assert_array_equal(lat, expected)
