"""Few-shot adaptation of proxies to a target: hierarchical (ours), published, single proxy, the loop."""

from __future__ import annotations

import numpy as np
import pytest

from edgeopt_plugins.devices import DeviceProfile
from edgeopt_plugins.exceptions import InputError, MeasurementError
from edgeopt_plugins.predictors import (
    HierarchicalConfig,
    Measurements,
    ProxyAdapter,
    ProxyPool,
    adapt,
    choose_proxy,
    propose_measurements,
    spearman,
)
from edgeopt_plugins.spaces import get_space
from tests._synthetic import fleet

SPACE = get_space("nb201")
FAST = HierarchicalConfig(transforms=("linear",), noise_levels=(1.0,))  # a smaller grid: faster


@pytest.fixture(scope="module")
def world():
    """Nine synthetic devices; dev8 is the target, the others the proxies."""
    table = fleet(9, 1500, seed=7)
    proxies = table.select(devices=[f"dev{i}" for i in range(8)])
    return table, ProxyPool(proxies, reference_size=800), table.column("dev8")


def _draw(table, device: str, k: int, seed: int) -> Measurements:
    prof = DeviceProfile.from_table(table, device, k=k, seed=seed)
    return Measurements(SPACE, prof.archs, prof.latency_ms, "target")


def test_hierarchical_adaptation_beats_the_unadapted_proxies(world):
    table, pool, truth = world
    central = spearman(pool.table.column(pool.central_device()), truth)
    prior = spearman(ProxyAdapter(pool).fit(None).predict(table.indices), truth)
    adapted = ProxyAdapter(pool, seed=0).fit(_draw(table, "dev8", 15, seed=1))
    rho = spearman(adapted.predict(table.indices), truth)
    assert rho > max(central, prior) + 0.01
    assert rho > 0.93
    assert adapted.k == 15 and abs(sum(adapted.proxy_weights.values()) - 1.0) < 1e-9
    assert 0.8 < adapted.estimated_spearman <= 1.0 and adapted.spearman_std > 0


def test_published_method_recovers_a_rescaled_proxy():
    # Additive devices; the target rescales each operation's cost of one of them differently.
    rng = np.random.default_rng(0)
    idx = SPACE.sample_indices(800, seed=3)
    X = SPACE.one_hot(idx)
    costs = rng.uniform(0.1, 1.0, size=(3, SPACE.one_hot_width))
    from edgeopt_plugins.data import MetricTable

    table = MetricTable(SPACE, "latency_ms", SPACE.from_indices(idx), ["a", "b", "c"], 1.0 + X @ costs.T)
    pool = ProxyPool(table)
    model0 = ProxyAdapter(pool, method="published", proxy="a").fit(None)  # k = 0: the proxy's additive predictor
    assert spearman(model0.predict(idx), table.column("a")) == pytest.approx(1.0)
    target = 0.5 + X @ (costs[0] * rng.uniform(0.5, 1.5, SPACE.one_hot_width))
    unadapted = spearman(table.column("a"), target)
    pick = rng.choice(len(table), 40, replace=False)
    meas = Measurements(SPACE, tuple(table.archs[i] for i in pick), target[pick])
    model = ProxyAdapter(pool, method="published", proxy="a").fit(meas)
    assert model.proxy == "a" and model.method == "published"
    rho = spearman(model.predict(idx), target)
    assert rho > unadapted + 0.03 and rho > 0.97
    assert model.estimated_spearman > 0.9  # leave-one-out on the 40 points


def test_single_proxy_forced_and_chosen(world):
    table, pool, truth = world
    twin = 1.7 * pool.table.column("dev3") * np.exp(np.random.default_rng(0).normal(0, 0.002, len(truth)))
    pick = np.random.default_rng(1).choice(len(truth), 8, replace=False)
    meas = Measurements(SPACE, tuple(table.archs[i] for i in pick), twin[pick])
    for criterion in ("spearman", "posterior"):
        choice = choose_proxy(pool, meas, criterion=criterion, n_boot=40)
        assert choice.device == "dev3" and choice.ranking[0]["device"] == "dev3"
        assert choice.estimated_spearman > 0.9
    model = ProxyAdapter(pool, method="proxy").fit(meas)
    assert model.proxy == "dev3"
    np.testing.assert_allclose(model.predict(table.archs[:3]) / twin[:3], 1.0, rtol=0.02)
    forced = ProxyAdapter(pool, proxy="dev0", config=FAST).fit(meas)
    assert list(forced.proxy_weights) == ["dev0"]


def test_real_nb201_target_with_weak_monotonicity(nb201_latency):
    # eyeriss (an estimated accelerator) agrees poorly with the other devices.
    table = nb201_latency
    proxies = table.select(devices=[d for d in table.devices if d != "eyeriss"])
    truth = table.column("eyeriss")
    pool = ProxyPool(proxies)
    central = spearman(proxies.column(pool.central_device()), truth)
    model = adapt(pool, _draw(table, "eyeriss", 10, seed=0), seed=0)
    rho = spearman(model.predict(table.indices), truth)
    assert central < 0.75 and rho > central + 0.15 and rho > 0.88


def test_one_proxy_is_corrected_by_the_targets_own_measurements(nb201_latency):
    # One proxy has no spread between devices; the kernels' corrections must still reach the target.
    table = nb201_latency
    proxy, truth = table.select(devices=["titanx_256"]), table.column("silver_4210r")
    alone = spearman(proxy.column("titanx_256"), truth)
    model = ProxyAdapter(proxy, seed=0).fit(_draw(table, "silver_4210r", 10, seed=0))
    rho = spearman(model.predict(table.indices), truth)
    assert alone < 0.8 and rho > alone + 0.1


def test_same_seed_same_answer(world):
    table, pool, _ = world
    meas = _draw(table, "dev8", 10, seed=2)
    a = ProxyAdapter(pool, seed=5).fit(meas)
    b = ProxyAdapter(pool, seed=5).fit(meas)
    np.testing.assert_array_equal(a.predict(table.indices), b.predict(table.indices))
    assert a.estimated_spearman == b.estimated_spearman
    assert a.next_archs(4, seed=1) == b.next_archs(4, seed=1)


def test_next_archs_are_new_distinct_and_from_the_candidates(world):
    table, pool, _ = world
    meas = _draw(table, "dev8", 6, seed=3)
    cands = list(table.archs[:300]) + list(meas.archs)
    for method in ("hierarchical", "published", "proxy"):
        model = ProxyAdapter(pool, method=method, config=FAST if method == "hierarchical" else None).fit(meas)
        picks = model.next_archs(7, cands, seed=0)
        assert len(picks) == len(set(picks)) == 7
        assert set(picks) <= set(cands) and not set(picks) & set(meas.archs)
        assert model.next_archs(0, cands) == []
    with pytest.raises(InputError, match="non-negative integer"):
        model.next_archs(-1)


def _lookup(table, column: np.ndarray, calls: list[list[str]]):
    pos = {a: i for i, a in enumerate(table.archs)}

    def measure(archs: list[str]) -> list[float]:
        calls.append(list(archs))
        return [float(column[pos[a]]) for a in archs]

    return measure


def test_loop_stops_as_soon_as_the_estimate_reaches_the_threshold(world):
    table, pool, _ = world
    easy = 2.0 * pool.table.column("dev1")  # an exact copy of a proxy, rescaled
    calls: list[list[str]] = []
    loop = propose_measurements(ProxyAdapter(pool, seed=0), _lookup(table, easy, calls), threshold=0.9, n_initial=5,
                                batch=5)
    assert loop.reached and len(loop.measurements) <= 10 and len(calls) == len(loop.history)
    assert loop.history[-1]["estimated_spearman"] >= 0.9 and loop.history[-1]["asked"] == 0
    assert all(h["estimated_spearman"] < 0.9 for h in loop.history[:-1])  # not one round more than needed


def test_loop_asks_for_more_while_the_estimate_is_low(world):
    table, pool, _ = world
    hard = np.random.default_rng(0).uniform(1.0, 2.0, len(table))  # unrelated to every proxy
    calls: list[list[str]] = []
    loop = propose_measurements(ProxyAdapter(pool, config=FAST), _lookup(table, hard, calls), threshold=0.9,
                                n_initial=5, batch=4, max_measurements=13)
    assert not loop.reached
    assert [h["k"] for h in loop.history] == [5, 9, 13]
    assert [len(c) for c in calls] == [5, 4, 4]
    flat = [a for c in calls for a in c]
    assert len(flat) == len(set(flat)) == len(loop.measurements) == 13
    assert all(h["estimated_spearman"] < 0.9 for h in loop.history)


@pytest.mark.parametrize(("call", "error", "fragment"), [
    (lambda pool, m: ProxyAdapter(pool, method="magic"), InputError, "method must be one of"),
    (lambda pool, m: ProxyAdapter(pool, proxy="nope"), InputError, "unknown proxy 'nope'"),
    (lambda pool, m: ProxyAdapter(pool, method="published", proxy=["dev0", "dev1"]), InputError, "uses one proxy"),
    (lambda pool, m: ProxyAdapter("table"), InputError, "expected a ProxyPool"),
    (lambda pool, m: ProxyAdapter(pool).fit({"x": 1.0}), InputError, "usable rows|nb201"),
    (lambda pool, m: ProxyAdapter(pool).fit(DeviceProfile.from_dict("fbnet", {str([0] * 22): 1.0, str([1] * 22): 2.0})),
     InputError, "space is 'fbnet'"),
    (lambda pool, m: choose_proxy(pool, m, criterion="vote"), InputError, "criterion must be one of"),
    (lambda pool, m: propose_measurements(ProxyAdapter(pool), lambda a: [1.0], threshold=1.5), InputError, "threshold"),
    (lambda pool, m: propose_measurements(ProxyAdapter(pool, config=FAST), lambda a: [1.0]), MeasurementError,
     "returned 1 latencies for 5"),
    (lambda pool, m: propose_measurements(ProxyAdapter(pool, config=FAST), lambda a: [-1.0] * len(a)),
     MeasurementError, "invalid latency"),
])
def test_bad_input(world, call, error, fragment):
    table, pool, _ = world
    with pytest.raises(error, match=fragment):
        call(pool, _draw(table, "dev8", 5, seed=0))
