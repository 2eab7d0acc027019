"""ConditionedModel: recommendations within calibrated bounds, candidate lists, save/load, tampering."""

from __future__ import annotations

import json
import pickle
import re

import numpy as np
import pytest

from edgeopt_plugins.devices import DeviceProfile
from edgeopt_plugins.exceptions import (
    ArchitectureError,
    DataNotFoundError,
    InfeasibleBudgetError,
    InputError,
    ModelFormatError,
)
from edgeopt_plugins.optimizer import ConditionedModel, Design, FitConfig
from edgeopt_plugins.predictors import TrainingDevices
from edgeopt_plugins.predictors._store import MANIFEST, _manifest_digest, tensor_path
from edgeopt_plugins.spaces import get_space
from tests._approach2 import HELD_OUT, real_subset


@pytest.fixture(scope="module")
def model(nb201_latency, nb201_accuracy):
    return ConditionedModel.fit(real_subset(nb201_latency), accuracy=nb201_accuracy, config=FitConfig.tiny(), seed=0)


@pytest.fixture(scope="module")
def profile(nb201_latency):
    return DeviceProfile.from_table(nb201_latency, HELD_OUT[0], k=10, seed=0)


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "m"
    model.save(folder)
    return folder


def _budget(model, profile, quantile):
    _, upper = model.predict(model.space.enumerate(), profile)
    return float(np.quantile(upper, quantile))


def test_recommendations_fit_the_budget_best_first(model, profile):
    budget = _budget(model, profile, 0.4)
    designs = model.recommend(profile, latency_budget_ms=budget, top_k=5)
    assert 1 <= len(designs) <= 5 and all(isinstance(d, Design) for d in designs)
    assert all(d.latency_upper_ms <= budget and d.predicted_latency_ms < d.latency_upper_ms for d in designs)
    acc = [d.predicted_accuracy for d in designs]
    assert acc == sorted(acc, reverse=True)
    assert len({d.arch for d in designs}) == len(designs)
    assert set(designs[0].to_dict()) == {"arch", "predicted_latency_ms", "latency_upper_ms", "predicted_accuracy"}


def test_candidate_list_is_respected_and_screened_exactly(model, profile, nb201_latency):
    candidates = list(nb201_latency.archs[:300])
    budget = _budget(model, profile, 0.5)
    designs = model.recommend(profile, latency_budget_ms=budget, candidates=candidates, top_k=3)
    assert {d.arch for d in designs} <= set(candidates)
    mean, upper = model.predict(candidates, profile)
    acc = model.predict_accuracy(candidates)
    best = int(np.argmax(np.where(upper <= budget, acc, -np.inf)))
    assert designs[0].arch == candidates[best]


def test_unknown_candidate_is_a_clear_error(model, profile):
    with pytest.raises(ArchitectureError, match="not_an_op"):
        model.recommend(profile, latency_budget_ms=10.0, candidates=["|not_an_op~0|+|none~0|none~1|+|none~0|none~1|none~2|"])
    with pytest.raises(InputError, match="empty"):
        model.recommend(profile, latency_budget_ms=10.0, candidates=[])


def test_budget_below_every_design_is_infeasible(model, profile):
    with pytest.raises(InfeasibleBudgetError, match="no design of the space"):
        model.recommend(profile, latency_budget_ms=1e-4)
    with pytest.raises(InfeasibleBudgetError, match="candidate list"):
        model.recommend(profile, latency_budget_ms=1e-4, candidates=model.space.sample(5, seed=0))
    out = model.recommend_many([profile, profile], [1e-4, _budget(model, profile, 0.5)], on_infeasible="empty")
    assert out[0] == [] and len(out[1]) == 1


@pytest.mark.parametrize("confidence", [0.5, 0.95])
def test_infeasible_budget_names_the_smallest_budget_that_works(model, profile, confidence):
    with pytest.raises(InfeasibleBudgetError, match=rf"smallest budget that works at {confidence:.0%} confidence is "
                                                     r"(?P<ms>[\d.]+) ms") as caught:
        model.recommend(profile, latency_budget_ms=1e-4, confidence=confidence)
    quoted = float(re.search(r"is ([\d.]+) ms", str(caught.value)).group(1))
    floor = model.smallest_budget_ms(profile, confidence=confidence)
    assert floor <= quoted <= floor * 1.01  # the exact floor, rounded up to 3 digits
    for budget in (floor, quoted):
        assert model.recommend(profile, latency_budget_ms=budget, confidence=confidence, top_k=1)
    with pytest.raises(InfeasibleBudgetError):
        model.recommend(profile, latency_budget_ms=floor * 0.999, confidence=confidence)
    assert floor < model.smallest_budget_ms(profile, confidence=0.99)


def test_smallest_budget_among_candidates(model, profile, nb201_latency):
    candidates = list(nb201_latency.archs[200:260])
    floor = model.smallest_budget_ms(profile, candidates=iter(candidates))
    _, upper = model.predict(candidates, profile)
    assert floor == pytest.approx(upper.min(), rel=1e-6)
    with pytest.raises(InfeasibleBudgetError, match="candidate list.*smallest budget"):
        model.recommend(profile, latency_budget_ms=floor * 0.9, candidates=iter(candidates))
    assert model.recommend(profile, latency_budget_ms=floor, candidates=iter(candidates), top_k=1)[0].arch in candidates


def test_many_devices_in_one_batch_match_single_calls(model, nb201_latency):
    profiles = [DeviceProfile.from_table(nb201_latency, d, k=10, seed=2) for d in nb201_latency.devices[:5]]
    budgets = [float(np.quantile(nb201_latency.column(d), 0.5)) * 1.5 for d in nb201_latency.devices[:5]]
    batch = model.recommend_many(profiles, budgets, top_k=2)
    for p, b, designs in zip(profiles, budgets, batch):
        single = model.recommend(p, latency_budget_ms=b, top_k=2)
        assert [d.arch for d in designs] == [d.arch for d in single]
        # the same numbers, up to the rounding of batched factorisations
        numbers = [[v for v in d.to_dict().values() if not isinstance(v, str)] for d in single]
        assert [[v for v in d.to_dict().values() if not isinstance(v, str)] for d in designs] == [
            pytest.approx(n, rel=1e-9) for n in numbers]


def test_tradeoff_prefers_faster_designs(model, profile):
    budget = _budget(model, profile, 0.8)
    plain = model.recommend(profile, latency_budget_ms=budget, top_k=1)[0]
    fast = model.recommend(profile, latency_budget_ms=budget, top_k=1, tradeoff=50.0)[0]
    assert fast.predicted_latency_ms <= plain.predicted_latency_ms
    assert fast.predicted_accuracy <= plain.predicted_accuracy


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"latency_budget_ms": -1.0}, "positive"),
    ({"latency_budget_ms": float("nan")}, "positive"),
    ({"latency_budget_ms": 5.0, "top_k": 0}, "top_k"),
    ({"latency_budget_ms": 5.0, "confidence": 1.5}, "confidence"),
    ({"latency_budget_ms": 5.0, "tradeoff": -1.0}, "tradeoff"),
    ({"latency_budget_ms": 5.0, "energy_budget_mj": 3.0}, "energy"),
])
def test_bad_recommendation_arguments(model, profile, kwargs, fragment):
    with pytest.raises(InputError, match=fragment):
        model.recommend(profile, **kwargs)


def test_save_load_round_trip_gives_identical_answers(model, saved, profile):
    back = ConditionedModel.load(saved)
    archs = model.space.sample(100, seed=3)
    for a, b in zip(model.predict(archs, profile), back.predict(archs, profile)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.predict_accuracy(archs), back.predict_accuracy(archs))
    budget = _budget(model, profile, 0.5)
    assert back.recommend(profile, latency_budget_ms=budget) == model.recommend(profile, latency_budget_ms=budget)
    assert sorted(p.name for p in saved.iterdir()) == [MANIFEST, tensor_path(saved).name]


def _copy(saved, tmp_path):
    folder = tmp_path / "copy"
    folder.mkdir()
    for p in saved.iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    return folder


def test_pickle_dropped_into_the_folder_is_refused(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    (folder / "payload.pkl").write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(ModelFormatError, match="payload.pkl"):
        ConditionedModel.load(folder)


def test_modified_tensor_file_is_refused(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    blob = bytearray(tensor_path(folder).read_bytes())
    blob[-3] ^= 0xFF
    tensor_path(folder).write_bytes(bytes(blob))
    with pytest.raises(ModelFormatError, match="checksum"):
        ConditionedModel.load(folder)


def test_modified_manifest_is_refused(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["meta"]["predictor"]["metrics"]["latency_ms"]["noise_s2"] *= 0.1
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelFormatError, match="manifest was modified"):
        ConditionedModel.load(folder)


def test_other_format_version_is_refused(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["format_version"] = 99
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelFormatError, match="version 99"):
        ConditionedModel.load(folder)


def test_consistent_but_inconsistent_shapes_are_refused(saved, tmp_path):
    """A rewritten manifest with a valid checksum still cannot smuggle in mismatched tensors."""
    folder = _copy(saved, tmp_path)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["meta"]["predictor"]["metrics"]["latency_ms"]["rank"] += 1
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelFormatError, match="shapes"):
        ConditionedModel.load(folder)


def test_missing_or_non_model_folders(tmp_path):
    with pytest.raises(DataNotFoundError):
        ConditionedModel.load(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelFormatError, match="folder"):
        ConditionedModel.load(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFormatError, match="not a model folder"):
        ConditionedModel.load(tmp_path / "empty")


def test_save_refuses_to_clobber_a_foreign_folder(model, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        model.save(tmp_path)


def test_same_seed_same_model(nb201_latency, nb201_accuracy, profile):
    devices = TrainingDevices.from_tables(nb201_latency.select(
        devices=list(nb201_latency.devices[:8]), rows=np.arange(0, 15625, 20)))
    cfg = FitConfig.tiny()
    a = ConditionedModel.fit(devices, accuracy=nb201_accuracy, config=cfg, seed=7)
    b = ConditionedModel.fit(devices, accuracy=nb201_accuracy, config=cfg, seed=7)
    archs = get_space("nb201").sample(50, seed=0)
    np.testing.assert_array_equal(a.predict(archs, profile)[1], b.predict(archs, profile)[1])
    budget = _budget(a, profile, 0.6)
    assert a.recommend(profile, latency_budget_ms=budget) == b.recommend(profile, latency_budget_ms=budget)


def test_user_accuracy_function_serves_a_space_without_accuracy_data(data_dir):
    from edgeopt_plugins.data import load_table

    table = load_table("ofa", "latency_ms", data_dir=data_dir)
    devices = TrainingDevices.from_tables(table.select(rows=np.arange(1500)))
    space = get_space("ofa")
    calls = []

    def accuracy_fn(archs):  # a toy: bigger resolution and deeper nets are more accurate
        calls.append(len(archs))
        parsed = [space.parse(a) for a in archs]
        return [60 + 0.05 * (p["r"] - 128) + sum(p[f"d_{i}"] for i in range(5)) for p in parsed]

    m = ConditionedModel.fit(devices.drop([devices.devices[0]]), accuracy=accuracy_fn, config=FitConfig.tiny(), seed=0)
    assert calls and m.accuracy.source == "function"
    prof = DeviceProfile.from_table(table, table.devices[0], k=10, seed=0)  # a held-out device
    budget = float(np.quantile(table.column(table.devices[0]), 0.6))
    designs = m.recommend(prof, latency_budget_ms=budget, top_k=3)
    assert designs and all(d.latency_upper_ms <= budget and space.contains(d.arch) for d in designs)


def test_energy_budget_is_respected_with_an_energy_model():
    from tests._approach2 import synthetic_fleet

    fleet = synthetic_fleet(12, energy=True, seed=11)
    train = fleet.select(fleet.devices[:10])
    space = fleet.space
    m = ConditionedModel.fit(train, accuracy=lambda archs: [50.0 + 5 * a.count("conv") for a in archs],
                             config=FitConfig.tiny(), seed=0)
    assert m.has_energy
    j = 11
    rows = np.arange(12)
    profile = DeviceProfile(space, tuple(space.from_indices(fleet.indices[rows])), fleet.latency_ms[rows, j],
                            fleet.energy_mj[rows, j], {"name": "sim11"})
    _, lat_up = m.predict(fleet.indices, profile)
    _, en_up = m.predict(fleet.indices, profile, metric="energy_mj")
    budget, e_budget = float(np.quantile(lat_up, 0.7)), float(np.quantile(en_up, 0.4))
    designs = m.recommend(profile, latency_budget_ms=budget, energy_budget_mj=e_budget, top_k=3)
    assert designs and all(d.latency_upper_ms <= budget and d.energy_upper_mj <= e_budget for d in designs)
    assert "energy_upper_mj" in designs[0].to_dict()
    with pytest.raises(InfeasibleBudgetError, match="no design fits the energy budget") as caught:
        m.recommend(profile, latency_budget_ms=budget, energy_budget_mj=1e-6)
    quoted = float(re.search(r"energy upper bound is ([\d.e+-]+) mJ", str(caught.value)).group(1))
    assert en_up.min() <= quoted <= en_up.min() * 1.01
    assert m.smallest_budget_ms(profile, energy_budget_mj=1e-6) == float("inf")
    floor = m.smallest_budget_ms(profile, energy_budget_mj=e_budget)
    assert floor == pytest.approx(lat_up[en_up <= e_budget].min(), rel=1e-6) and floor >= lat_up.min()


def test_quantization_policy_space_with_simulated_devices_and_user_accuracy():
    from tests._approach2 import synthetic_cost_fleet

    fleet = synthetic_cost_fleet("ofa_quant", 9, seed=4)
    space = fleet.space

    def accuracy_fn(archs):  # a toy: more weight bits and resolution help, with diminishing returns
        parsed = [space.parse(a) for a in archs]
        return [55 + 2 * sum(np.log2(p[f"wbits_{i}"]) for i in range(5)) / 5 + 0.02 * p["r"] for p in parsed]

    m = ConditionedModel.fit(fleet.select(fleet.devices[:8]), accuracy=accuracy_fn, config=FitConfig.tiny(), seed=0)
    j = 8
    profile = DeviceProfile(space, tuple(space.from_indices(fleet.indices[:10])), fleet.latency_ms[:10, j])
    budget = float(np.quantile(fleet.latency_ms[:, j], 0.5))
    designs = m.recommend(profile, latency_budget_ms=budget, top_k=2)
    assert designs and all(space.contains(d.arch) and d.latency_upper_ms <= budget for d in designs)
    assert all("wbits" in d.arch for d in designs)


def test_simulated_devices_add_an_energy_model_without_the_held_out_device(data_dir, nb201_latency):
    from edgeopt_plugins.optimizer import fit_from_data

    m = fit_from_data("nb201", data_dir=data_dir, exclude_devices=[HELD_OUT[0]], simulated_devices=12,
                      config=FitConfig.tiny(), seed=0)
    assert m.has_energy and m.info["simulated_devices"] == 12
    assert HELD_OUT[0] not in m.info["training_devices"]
    assert HELD_OUT[0] not in m.predictor.info["latency_devices"]
    assert m.info["device_kinds"] == {"table": 26, "simulated": 12}
    profile = DeviceProfile.from_table(nb201_latency, HELD_OUT[0], k=10, seed=0)
    mean, upper = m.predict(nb201_latency.archs[:20], profile, metric="energy_mj")
    assert (upper > mean).all() and (mean > 0).all()
