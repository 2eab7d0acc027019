"""ProxyPredictor and Measurements: fits, accuracy, files and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeopt_plugins.devices import DeviceProfile
from edgeopt_plugins.exceptions import ArchitectureError, InputError, ModelFormatError
from edgeopt_plugins.predictors import (
    Measurements,
    ProxyPool,
    ProxyPredictor,
    as_measurements,
    spearman,
)
from edgeopt_plugins.spaces import get_space
from tests._synthetic import device_latency, fleet

SPACE = get_space("nb201")


def _split(n_train: int, n_test: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    idx = SPACE.sample_indices(n_train + n_test, seed=seed)
    return idx[:n_train], idx[n_train:]


def _meas(idx: np.ndarray, lat: np.ndarray) -> Measurements:
    return Measurements(SPACE, tuple(SPACE.from_indices(idx)), lat, "dev")


def test_additive_model_recovers_an_additive_device_exactly():
    train, test = _split(300, 200)
    costs = np.random.default_rng(1).uniform(0.0, 2.0, size=SPACE.one_hot_width)
    truth = lambda idx: 0.7 + SPACE.one_hot(idx) @ costs
    model = ProxyPredictor(model="additive").fit(_meas(train, truth(train)))
    np.testing.assert_allclose(model.predict(test), truth(test), rtol=1e-6)
    assert model.evaluate(_meas(test, truth(test)))["spearman"] == pytest.approx(1.0)


def test_mlp_beats_additive_on_a_device_with_interactions():
    train, test = _split(2500, 800, seed=2)
    rng = np.random.default_rng(0)
    lat = lambda idx: device_latency(idx, np.random.default_rng(5), interaction=1.0, noise=0.0)
    y_tr, y_te = lat(train), lat(test)
    add = ProxyPredictor(model="additive").fit(_meas(train, y_tr)).evaluate(_meas(test, y_te))
    mlp = ProxyPredictor(model="mlp", max_epochs=60, seed=0).fit(_meas(train, y_tr)).evaluate(_meas(test, y_te))
    assert mlp["spearman"] > add["spearman"] + 0.01
    assert mlp["mape_pct"] < add["mape_pct"]
    del rng


def test_save_and_load_round_trip(tmp_path):
    train, test = _split(400, 50)
    y = device_latency(train, np.random.default_rng(3))
    for model in ("additive", "mlp"):
        p = ProxyPredictor(model=model, max_epochs=5).fit(_meas(train, y))
        folder = p.save(tmp_path / model)
        back = ProxyPredictor.load(folder)
        np.testing.assert_allclose(back.predict(test), p.predict(test), rtol=1e-6)
        assert back.device == "dev" and back.model == model
    cfg = tmp_path / "additive" / "predictor.json"
    data = json.loads(cfg.read_text())
    cfg.write_text(json.dumps({**data, "format": 99}))
    with pytest.raises(ModelFormatError, match="format 99"):
        ProxyPredictor.load(tmp_path / "additive")
    with pytest.raises(ModelFormatError, match="not a saved ProxyPredictor"):
        ProxyPredictor.load(tmp_path / "nothing")


def test_measurements_from_profile_dict_and_table_column():
    table = fleet(3, 40, seed=1)
    col = as_measurements(table, device="dev1")
    assert len(col) == 40 and col.name == "dev1"
    prof = DeviceProfile.from_table(table, "dev2", k=5, seed=0)
    m = as_measurements(prof)
    assert m.name == "dev2" and len(m) == 5
    d = as_measurements(dict(zip(prof.archs, prof.latency_ms)), space="nb201")
    np.testing.assert_array_equal(d.latency_ms, m.latency_ms)
    # unusable rows (NaN, zero, negative) are dropped; fewer than 2 left is an error
    archs = SPACE.sample(3, seed=0)
    assert len(Measurements(SPACE, tuple(archs), [1.0, np.nan, 2.0])) == 2
    with pytest.raises(InputError, match="at least 2 usable rows"):
        Measurements(SPACE, tuple(archs), [1.0, -1.0, 0.0])


@pytest.mark.parametrize(("call", "error", "fragment"), [
    (lambda: ProxyPredictor(model="xgboost"), InputError, "model must be one of"),
    (lambda: ProxyPredictor(alpha=-1.0), InputError, "alpha must be"),
    (lambda: ProxyPredictor().predict(SPACE.sample(1, seed=0)), InputError, "call fit"),
    (lambda: as_measurements([1, 2, 3]), InputError, "expected Measurements"),
    (lambda: as_measurements({"x": 1.0}), InputError, "needs the search space"),
    (lambda: as_measurements({"|bad|": 1.0, "|worse|": 2.0}, space="nb201"), ArchitectureError, "nb201"),
    (lambda: as_measurements(fleet(2, 5)), InputError, "needs the device column"),
    (lambda: as_measurements(DeviceProfile.from_dict("fbnet", {str([0] * 22): 1.0, str([1] * 22): 2.0}), space="nb201"),
     InputError, "space is 'fbnet'"),
])
def test_bad_input(call, error, fragment):
    with pytest.raises(error, match=fragment):
        call()


def test_pool_uses_measurements_where_it_has_them_and_predictors_elsewhere():
    table = fleet(3, 300, seed=4)
    pool = ProxyPool(table, reference_size=100)
    inside = list(table.archs[:5])
    np.testing.assert_array_equal(pool.latencies(inside), table.values[:5])
    outside = [a for a in SPACE.sample(50, seed=9) if not table.has(a)][:5]
    pred = pool.latencies(outside)
    assert pred.shape == (5, 3) and np.all(pred > 0)
    assert spearman(pred[:, 0], pool.predictor("dev0").predict(outside)) == pytest.approx(1.0)
    assert pool.subset(["dev2"]).latencies(inside).shape == (5, 1)
    with pytest.raises(InputError, match="unknown proxy 'nope'"):
        pool.subset(["nope"])


def test_pool_from_fitted_predictors_only():
    table = fleet(3, 200, seed=5)
    preds = {d: ProxyPredictor().fit(table, device=d) for d in table.devices}
    pool = ProxyPool.from_predictors(preds, reference_size=50)
    assert pool.devices == table.devices and pool.reference_latency.shape == (50, 3)
    archs = list(table.archs[:4])
    np.testing.assert_allclose(pool.latencies(archs)[:, 1], preds["dev1"].predict(archs))
    with pytest.raises(InputError, match="no predictors"):
        ProxyPool.from_predictors({})
