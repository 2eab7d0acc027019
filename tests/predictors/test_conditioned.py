"""Device-conditioned predictor: embedding any profile, predictions, calibrated bounds, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from edgeopt_plugins.devices import DeviceProfile
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.predictors import (
    DeviceEmbedding,
    PredictorConfig,
    TrainingDevices,
    fit_conditioned_predictor,
    spearman,
)
from edgeopt_plugins.spaces import get_space
from tests._approach2 import HELD_OUT, real_subset, synthetic_fleet

TINY = PredictorConfig(ranks=(2, 4), n_folds=3, calib_ks=(1, 5, 20), calib_draws=2, calib_archs=300,
                       select_ks=(5,), tower_epochs=4, tower_hidden=(32,))


@pytest.fixture(scope="module")
def pred(nb201_latency):
    return fit_conditioned_predictor(real_subset(nb201_latency), config=TINY, seed=0)


@pytest.fixture(scope="module")
def profile(nb201_latency):
    return DeviceProfile.from_table(nb201_latency, HELD_OUT[0], k=10, seed=0)


def test_unseen_device_is_ranked_well_from_ten_measurements(pred, profile, nb201_latency):
    rows = np.random.default_rng(1).choice(len(nb201_latency), 2000, replace=False)
    mean, upper = pred.predict(nb201_latency.indices[rows], profile)
    truth = nb201_latency.column(HELD_OUT[0])[rows]
    assert mean.shape == upper.shape == (2000,)
    assert spearman(mean, truth) > 0.85
    assert (upper > mean).all()
    assert 0.5 < np.median(mean / truth) < 2.0  # the scale is predicted from the profile


def test_seen_and_unseen_devices_use_the_same_code(pred, nb201_latency):
    seen = DeviceProfile.from_table(nb201_latency, "pixel2", k=10, seed=0)
    unseen = DeviceProfile.from_table(nb201_latency, HELD_OUT[1], k=10, seed=0)
    emb = pred.embed([seen, unseen])
    assert isinstance(emb, DeviceEmbedding) and len(emb) == 2 and emb.names == ("pixel2", HELD_OUT[1])
    assert emb.mean.shape == (2, pred.dim) and emb.cov.shape == (2, pred.dim, pred.dim)
    one = pred.embed(unseen)
    np.testing.assert_allclose(one.mean[0], emb.mean[1])
    # The first latent is the device's log-latency scale.
    assert abs(emb.mean[1, 0] - np.log(nb201_latency.column(HELD_OUT[1])).mean()) < 1.0


def test_profile_on_architectures_outside_the_tables_uses_the_network(pred, nb201_latency):
    train = real_subset(nb201_latency)
    table = pred.metrics["latency_ms"].table
    all_idx = nb201_latency.indices
    outside = np.flatnonzero(table.positions(all_idx) < 0)[:10]
    profile = DeviceProfile.from_table(nb201_latency, HELD_OUT[0], archs=[nb201_latency.archs[i] for i in outside])
    mean, upper = pred.predict(all_idx[:50], profile)
    assert np.isfinite(mean).all() and (upper > mean).all()
    assert train.n_archs == len(table)


def test_upper_bound_grows_with_confidence_and_posterior_shrinks_with_measurements(pred, nb201_latency):
    archs = nb201_latency.indices[:200]
    small = DeviceProfile.from_table(nb201_latency, HELD_OUT[0], k=3, seed=0)
    big = DeviceProfile.from_table(nb201_latency, HELD_OUT[0], k=40, seed=0)
    _, up90 = pred.predict(archs, small, confidence=0.9)
    _, up99 = pred.predict(archs, small, confidence=0.99)
    assert (up99 > up90).all()
    # More measurements pin the device down: a tighter posterior over its latent.
    assert np.trace(pred.embed(big).cov[0]) < np.trace(pred.embed(small).cov[0])


def test_online_update_re_embeds_with_more_measurements(pred, profile, nb201_latency):
    emb = pred.embed(profile)
    new = nb201_latency.archs[100:105]
    updated = pred.update(emb, new, nb201_latency.lookup(new, HELD_OUT[0]))
    assert int(updated.k[0]) == int(emb.k[0]) + 5
    assert not np.allclose(updated.mean, emb.mean)


def test_batch_embedding_of_many_devices_matches_one_by_one(pred, nb201_latency):
    profiles = [DeviceProfile.from_table(nb201_latency, d, k=k, seed=1)
                for d, k in zip(nb201_latency.devices[:6], (1, 3, 5, 10, 20, 7))]
    batch = pred.embed(profiles)
    for i, p in enumerate(profiles):
        np.testing.assert_allclose(pred.embed(p).mean[0], batch.mean[i], rtol=1e-6, atol=1e-8)
    mean, upper = pred.predict(nb201_latency.indices[:30], batch)
    assert mean.shape == upper.shape == (6, 30)


@pytest.mark.parametrize("confidence", [1.0, 0.2, "high"])
def test_bad_confidence_is_rejected(pred, profile, confidence):
    with pytest.raises(InputError, match="confidence"):
        pred.predict(profile.archs, profile, confidence=confidence)


def test_bad_profiles_are_rejected(pred):
    fb = DeviceProfile.from_dict("fbnet", {get_space("fbnet").sample(1, seed=0)[0]: 3.0}, name="fb")
    with pytest.raises(InputError, match="space 'fbnet'"):
        pred.embed(fb)
    empty = DeviceProfile(get_space("nb201"), (), np.array([]), None, {"name": "empty"})
    with pytest.raises(InputError, match="no measurements"):
        pred.embed(empty)
    with pytest.raises(InputError, match="DeviceProfile"):
        pred.embed(["not a profile"])
    with pytest.raises(InputError, match="energy"):
        pred.predict(fb.archs[:0], pred.embed(DeviceProfile.from_dict("nb201", {
            get_space("nb201").sample(1, seed=0)[0]: 2.0})), metric="energy_mj")


def test_coverage_on_held_out_synthetic_devices():
    fleet = synthetic_fleet(24, seed=3)
    train, held = fleet.select(fleet.devices[:16]), fleet.select(fleet.devices[16:])
    cfg = PredictorConfig(ranks=(3,), n_folds=4, calib_ks=(5, 10, 20), calib_draws=3, calib_archs=400,
                          select_ks=(10,), tower_epochs=0)
    pred = fit_conditioned_predictor(train, config=cfg, seed=0)
    space = fleet.space
    covered = []
    for j in range(held.n_devices):
        rng = np.random.default_rng(j)
        rows = rng.choice(held.n_archs, 10, replace=False)
        profile = DeviceProfile(space, tuple(space.from_indices(held.indices[rows])), held.latency_ms[rows, j])
        _, upper = pred.predict(held.indices, profile, confidence=0.9)
        covered.append(np.mean(held.latency_ms[:, j] <= upper))
    assert 0.8 <= np.mean(covered) <= 0.99


def test_energy_is_predicted_when_training_devices_have_it():
    fleet = synthetic_fleet(14, energy=True, seed=5)
    cfg = PredictorConfig(ranks=(3,), n_folds=3, calib_ks=(5, 20), calib_draws=2, calib_archs=200,
                          select_ks=(5,), tower_epochs=0)
    pred = fit_conditioned_predictor(fleet.select(fleet.devices[:12]), config=cfg, seed=0)
    assert pred.has_energy
    space, j = fleet.space, 12
    rows = np.arange(10)
    archs = tuple(space.from_indices(fleet.indices[rows]))
    lat_only = DeviceProfile(space, archs, fleet.latency_ms[rows, j])
    both = DeviceProfile(space, archs, fleet.latency_ms[rows, j], fleet.energy_mj[rows, j])
    truth = fleet.energy_mj[:, j]
    e1, up1 = pred.predict(fleet.indices, lat_only, metric="energy_mj")
    e2, up2 = pred.predict(fleet.indices, both, metric="energy_mj")
    assert (up1 > e1).all() and (up2 > e2).all()
    assert spearman(e2, truth) > 0.8
    assert np.mean(np.abs(np.log(e2 / truth))) <= np.mean(np.abs(np.log(e1 / truth))) + 0.05


def test_training_devices_merge_drop_and_validate(nb201_latency):
    a = TrainingDevices.from_tables(nb201_latency.select(devices=["pixel3", "raspi4"], rows=np.arange(10)))
    b = TrainingDevices.from_tables(nb201_latency.select(devices=["eyeriss"], rows=np.arange(5, 20)))
    both = a.concat(b)
    assert both.n_archs == 20 and both.devices == ("pixel3", "raspi4", "eyeriss")
    assert np.isnan(both.latency_ms[15:, 0]).all() and np.isnan(both.latency_ms[:5, 2]).all()
    assert both.drop(["eyeriss"]).n_archs == 10
    with pytest.raises(InputError, match="both sets"):
        a.concat(a)
    with pytest.raises(InputError, match="unknown device"):
        a.drop(["nope"])
    with pytest.raises(InputError, match="positive"):
        TrainingDevices.from_arrays("nb201", a.indices, -a.latency_ms, a.devices)
    with pytest.raises(InputError, match="at least 3"):
        fit_conditioned_predictor(a, config=TINY)


def test_a_device_outside_the_training_span_converges_with_its_own_measurements():
    """Training devices are exactly low-rank; the target adds a pairwise interaction none of them has."""
    train = synthetic_fleet(12, n_archs=1500, seed=4)
    pred = fit_conditioned_predictor(train, config=TINY, seed=0)
    space = get_space("nb201")
    idx = train.indices
    base = np.log(train.latency_ms[:, 0])
    target = np.exp(base + 0.6 * (idx[:, 1] == idx[:, 4]) + 0.3 * (idx[:, 0] == 3))
    archs = space.from_indices(idx)
    scores, shares = {}, {}
    for k in (10, 200):
        rows = np.random.default_rng(k).choice(len(archs), size=k, replace=False)
        profile = DeviceProfile(space, tuple(archs[i] for i in rows), target[rows], metadata={"name": "new-family"})
        emb = pred.embed(profile)
        mean, upper = pred.predict(idx, emb)
        scores[k], shares[k] = spearman(mean, target), float(emb.residual.share[0])
        if k == 200:
            plain, _ = pred.moments(emb, *pred.metrics["latency_ms"].features(space, idx))
            assert scores[k] > spearman(plain[0], target) + 0.05  # the correction, not the latents, did it
            assert np.mean(target <= upper) > 0.9
    assert scores[200] > scores[10] and scores[200] > 0.95
    assert shares[200] > 0.9  # the evidence switched the correction on


def test_a_device_like_the_training_devices_keeps_the_plain_prediction(pred, profile, nb201_latency):
    emb = pred.embed(profile)
    idx = nb201_latency.indices[:500]
    corrected, _ = pred.predict(idx, emb)
    plain, _ = pred.moments(emb, *pred.metrics["latency_ms"].features(pred.space, idx))
    assert spearman(corrected, np.exp(plain[0])) > 0.97
