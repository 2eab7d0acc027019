"""SimulatedFleet: seeded, fast, chunkable simulated devices with a working monotonicity knob."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeopt_plugins.data import MetricTable
from edgeopt_plugins.devices import Device, DeviceProfile, FleetConfig, SimulatedFleet
from edgeopt_plugins.devices._fleet import median_pairwise_spearman
from edgeopt_plugins.exceptions import InputError, ModelFormatError
from edgeopt_plugins.spaces import get_space

NB201 = get_space("nb201")
SMALL = FleetConfig(reference_archs=512, calibration_devices=96)


def _toy_table(n_archs: int = 400, n_devices: int = 5, seed: int = 0) -> MetricTable:
    """Devices whose log latency is additive in per-op costs, plus noise and per-device twists."""
    rng = np.random.default_rng(seed)
    idx = NB201.sample_indices(n_archs, seed=seed)
    onehot = NB201.one_hot(idx)
    base = rng.uniform(0.0, 0.3, onehot.shape[1])
    weights = base[:, None] * rng.uniform(0.3, 1.7, (onehot.shape[1], n_devices))
    log_lat = onehot @ weights + rng.normal(0.0, 0.05, (n_archs, n_devices)) + rng.uniform(0, 3, n_devices)
    return MetricTable("nb201", "latency_ms", NB201.from_indices(idx), [f"d{i}" for i in range(n_devices)],
                       np.exp(log_lat), source="toy")


@pytest.fixture(scope="module")
def toy_fleet() -> SimulatedFleet:
    return SimulatedFleet.fit(_toy_table(), seed=0, config=SMALL)


@pytest.fixture(scope="module")
def nb201_fleet(nb201_latency) -> SimulatedFleet:
    return SimulatedFleet.fit(nb201_latency, seed=0, config=SMALL)


def test_same_seeds_same_devices_and_prefix_stability(toy_fleet):
    archs = NB201.sample(50, seed=1)
    a = toy_fleet.sample_devices(300, seed=4)
    b = toy_fleet.sample_devices(300, seed=4)
    np.testing.assert_array_equal(a.latency(archs), b.latency(archs))
    assert a.names == b.names and a.names[0].startswith(f"sim-{toy_fleet.fingerprint}-s4-")
    assert not np.allclose(a.latency(archs), toy_fleet.sample_devices(300, seed=5).latency(archs))
    small = toy_fleet.sample_devices(10, seed=4)
    np.testing.assert_allclose(small.latency(archs), a.latency(archs, device_ids=range(10)), rtol=1e-6)
    refit = SimulatedFleet.fit(_toy_table(), seed=0, config=SMALL)
    assert refit.fingerprint == toy_fleet.fingerprint


def test_shapes_positivity_and_any_architecture(toy_fleet):
    devices = toy_fleet.sample_devices(40, seed=0)
    archs = NB201.sample_indices(200, seed=9)  # mostly not in the fitted table
    lat = devices.latency(archs)
    energy = devices.energy(archs)
    assert lat.shape == energy.shape == (200, 40) and lat.dtype == np.float32
    assert np.all(np.isfinite(lat)) and np.all(lat > 0)
    assert np.all(energy >= lat * devices.power_w.astype(np.float32) * (1 - 1e-6))
    assert devices.latency(archs, device_ids=[3, 1]).shape == (200, 2)
    assert len(devices) == 40 and len(set(devices.names)) == 40


def test_chunks_equal_the_full_matrix(toy_fleet):
    devices = toy_fleet.sample_devices(70, seed=2)
    archs = NB201.sample(30, seed=3)
    chunks = list(devices.iter_chunks(archs, chunk_size=16, energy=True))
    assert [len(c.device_ids) for c in chunks] == [16, 16, 16, 16, 6]
    np.testing.assert_array_equal(np.concatenate([c.device_ids for c in chunks]), np.arange(70))
    np.testing.assert_allclose(np.concatenate([c.latency_ms for c in chunks], 1), devices.latency(archs), rtol=1e-6)
    np.testing.assert_allclose(np.concatenate([c.energy_mj for c in chunks], 1), devices.energy(archs), rtol=1e-6)
    assert next(devices.iter_chunks(archs)).energy_mj is None


def test_save_load_round_trip(toy_fleet, tmp_path):
    folder = toy_fleet.save(tmp_path / "fleet")
    assert sorted(p.name for p in folder.iterdir()) == ["fleet.json", "fleet.safetensors"]
    back = SimulatedFleet.load(folder)
    assert back.fingerprint == toy_fleet.fingerprint and back.config == toy_fleet.config
    archs = NB201.sample(20, seed=0)
    np.testing.assert_array_equal(back.sample_devices(25, seed=1).latency(archs),
                                  toy_fleet.sample_devices(25, seed=1).latency(archs))


@pytest.mark.parametrize("damage", ["format", "kind", "json", "tensors", "shape", "missing"])
def test_load_rejects_damaged_folders(toy_fleet, tmp_path, damage):
    folder = toy_fleet.save(tmp_path / "fleet")
    meta = json.loads((folder / "fleet.json").read_text())
    if damage == "format":
        meta["format"] = 99
    elif damage == "kind":
        meta["kind"] = "something else"
    elif damage == "shape":
        meta["real_devices"] = meta["real_devices"][:-1]
    (folder / "fleet.json").write_text(json.dumps(meta))
    if damage == "json":
        (folder / "fleet.json").write_text("{not json")
    elif damage == "tensors":
        (folder / "fleet.safetensors").write_bytes(b"garbage")
    elif damage == "missing":
        (folder / "fleet.safetensors").unlink()
    with pytest.raises(ModelFormatError):
        SimulatedFleet.load(folder)


def test_simulated_device_follows_the_protocol(toy_fleet):
    devices = toy_fleet.sample_devices(5, seed=0)
    archs = NB201.sample(6, seed=2)
    dev = devices.device(3)
    assert isinstance(dev, Device) and dev.name == devices.names[3]
    out = dev.measure(archs)
    np.testing.assert_allclose(out["latency_ms"], devices.latency(archs, device_ids=[3])[:, 0], rtol=1e-6)
    np.testing.assert_allclose(out["energy_mj"], devices.energy(archs, device_ids=[3])[:, 0], rtol=1e-5)
    profile = dev.profile(archs)
    assert isinstance(profile, DeviceProfile) and profile.energy_mj is not None
    assert profile.metadata["kind"] == "simulated" and profile.metadata["power_w"] > 0
    noisy_a, noisy_b = devices.device(3, noise=0.05), devices.device(3, noise=0.05)
    first = noisy_a.measure(archs)["latency_ms"]
    np.testing.assert_array_equal(first, noisy_b.measure(archs)["latency_ms"])  # seeded
    assert not np.array_equal(first, noisy_a.measure(archs)["latency_ms"])  # fresh noise per call
    assert not np.allclose(first, out["latency_ms"])


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda f: f.with_monotonicity(1.5), "monotonicity must be 'real' or a number in (0, 1)"),
        (lambda f: f.with_monotonicity("high"), "monotonicity must be"),
        (lambda f: f.sample_devices(0), "n must be a positive integer"),
        (lambda f: f.sample_devices(3, seed=-1), "seed must be a non-negative integer"),
        (lambda f: f.sample_devices(3).latency(NB201.sample(2), device_ids=[5]), "device_ids must be integers in"),
        (lambda f: next(f.sample_devices(3).iter_chunks(NB201.sample(2), chunk_size=0)), "chunk_size must be"),
        (lambda f: f.sample_devices(3).device(0, noise=-1), "noise must be a number >= 0"),
        (lambda f: SimulatedFleet.fit(_toy_table(), devices=["d0"]), "need at least 2 distinct real devices"),
        (lambda f: SimulatedFleet.fit(MetricTable("nb201", "accuracy", NB201.sample(30), ["c"], np.ones((30, 1)))),
         "expected a latency_ms MetricTable"),
        (lambda f: FleetConfig(mixing=0), "mixing must be positive"),
        (lambda f: FleetConfig(power_range_w=(5.0, 1.0)), "power_range_w must be"),
    ],
)
def test_bad_input(toy_fleet, call, fragment):
    with pytest.raises(InputError) as info:
        call(toy_fleet)
    assert fragment in str(info.value)


def test_fit_on_real_nb201_matches_the_real_monotonicity(nb201_fleet, nb201_latency):
    assert nb201_fleet.fit_quality["median_r2"] > 0.95 and nb201_fleet.fit_quality["interaction_pairs"] > 0
    archs = NB201.sample_indices(1500, seed=3)
    sim = nb201_fleet.sample_devices(150, seed=7).latency(archs)
    assert abs(median_pairwise_spearman(np.log(sim)) - nb201_fleet.real_monotonicity) < 0.05
    real = nb201_latency.values
    assert real.min() / 3 < np.median(sim) < real.max()


def test_monotonicity_knob_moves_the_median_pairwise_spearman(nb201_fleet):
    archs = NB201.sample_indices(1500, seed=3)
    medians = {}
    for target in (0.6, 0.95):
        fleet = nb201_fleet.with_monotonicity(target)
        medians[target] = median_pairwise_spearman(np.log(fleet.sample_devices(150, seed=7).latency(archs)))
        assert abs(medians[target] - target) < 0.06
    assert medians[0.6] < nb201_fleet.real_monotonicity < medians[0.95]


@pytest.mark.parametrize("space", ["ofa", "mnasnet"])
def test_fit_other_spaces(data_dir, space):
    fleet = SimulatedFleet.fit(space, data_dir=data_dir, seed=0, config=SMALL)
    archs = fleet.space.sample(20, seed=0)
    lat = fleet.sample_devices(10, seed=0).latency(archs)
    assert lat.shape == (20, 10) and np.all(lat > 0)
