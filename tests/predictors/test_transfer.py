"""The transfer GP behind both approaches: kernels, convergence on a device unlike the proxies,
cheap warm refits, and the optimal design of profiles (``plan_profile``)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.predictors import HierarchicalConfig, Measurements, ProxyAdapter, ProxyPool, plan_profile, spearman
from edgeopt_plugins.predictors._kernels import ArchKernels
from edgeopt_plugins.spaces import get_space
from tests._synthetic import fleet

SPACE = get_space("nb201")


@pytest.fixture(scope="module")
def world():
    """Eight synthetic proxies and a target whose costs no mix of them explains."""
    table = fleet(9, 2000, seed=3)
    pool = ProxyPool(table.select(devices=[f"dev{i}" for i in range(8)]), reference_size=800)
    idx = table.indices
    rng = np.random.default_rng(11)
    # per-edge op costs drawn afresh, plus an interaction of two edges: outside the proxies' span
    costs = rng.uniform(0.0, 1.0, size=(6, 5))
    target = 0.5 + costs[np.arange(6)[None, :], idx].sum(axis=1) + 0.8 * (idx[:, 1] == idx[:, 4])
    return table, pool, target


def _measure(table, target, k, seed):
    rows = np.random.default_rng(seed).choice(len(table), size=k, replace=False)
    return Measurements(SPACE, tuple(table.archs[i] for i in rows), target[rows], "target")


def _ridge_on_target(table, target, k, seed):
    """The simple baseline: ridge on one-hot decisions fitted on the k points alone (alpha 1)."""
    rows = np.random.default_rng(seed).choice(len(table), size=k, replace=False)
    X = SPACE.one_hot(table.indices).astype(float)
    Xk, yk = X[rows], target[rows]
    mean_x, mean_y = Xk.mean(axis=0), yk.mean()
    w = np.linalg.solve((Xk - mean_x).T @ (Xk - mean_x) + np.eye(X.shape[1]), (Xk - mean_x).T @ (yk - mean_y))
    return (X - mean_x) @ w + mean_y


def test_kernel_blocks_have_unit_scale_and_count_matching_decisions():
    ref = SPACE.sample_indices(300, seed=0)
    kernels = ArchKernels(SPACE, ref)
    assert kernels.blocks == ("summary", "additive", "pairwise")
    a = kernels.features(ref[:1])
    b = ref[1:2].copy()
    b[0, :2] = ref[0, :2]  # shares at least the first two decisions
    b[0, 2:] = (ref[0, 2:] + 1) % 5  # and differs in the other four
    grams = kernels.cross(a, kernels.features(b))
    assert grams["additive"][0, 0] == pytest.approx(2 / 6)
    assert grams["pairwise"][0, 0] == pytest.approx(1 / 15)
    assert np.mean(kernels.diagonal(kernels.features(ref))["summary"]) == pytest.approx(1.0)


def test_more_target_data_always_helps_and_beats_a_model_of_the_target_alone(world):
    table, pool, target = world
    adapter = ProxyAdapter(pool, seed=0)
    rho = {k: np.mean([spearman(adapter.fit(_measure(table, target, k, s)).predict(table.archs), target)
                       for s in range(2)]) for k in (10, 50, 300)}
    assert rho[10] < rho[50] < rho[300]
    assert rho[300] > 0.97  # the kernels learn what the proxies cannot express (an exact pairwise model: 1.0)
    ridge = {k: np.mean([spearman(_ridge_on_target(table, target, k, s), target) for s in range(2)]) for k in (50, 300)}
    assert rho[50] > ridge[50] - 0.02  # a target unrelated to every proxy: the prior costs almost nothing
    assert rho[300] > ridge[300] + 0.05  # and the pairwise kernel wins as data grow
    model = adapter.fit(_measure(table, target, 300, 0))
    assert model.kernel_share["pairwise"] > 0.5  # the interaction is switched on by the evidence


def test_a_near_copy_of_a_proxy_is_found_from_a_few_points(world):
    table, pool, _ = world
    copy = 1.7 * table.column("dev2")
    model = ProxyAdapter(pool, seed=0).fit(_measure(table, copy, 10, 0))
    assert spearman(model.predict(table.archs), copy) > 0.99
    assert max(model.proxy_weights, key=model.proxy_weights.get) == "dev2"


def test_warm_refit_matches_a_full_fit_and_intervals_cover(world):
    table, pool, target = world
    adapter = ProxyAdapter(pool, seed=0)
    first = adapter.fit(_measure(table, target, 40, 1))
    more = _measure(table, target, 48, 1)
    warm, full = adapter.fit(more, warm=first), adapter.fit(more)
    assert spearman(warm.predict(table.archs), full.predict(table.archs)) > 0.99
    lo, hi = full.predict_interval(table.archs, 0.9)
    inside = float(np.mean((target >= lo) & (target <= hi)))
    assert 0.75 < inside <= 1.0


def test_an_outlying_measurement_does_not_flip_the_ranking(world):
    table, pool, _ = world
    target = table.column("dev8")
    clean = _measure(table, target, 30, 2)
    values = clean.latency_ms.copy()
    values[0] *= 25.0  # one slow run
    spiked = Measurements(SPACE, clean.archs, values, "target")
    adapter = ProxyAdapter(pool, seed=0)
    a = spearman(adapter.fit(clean).predict(table.archs), target)
    b = spearman(adapter.fit(spiked).predict(table.archs), target)
    assert b > a - 0.05  # without the Student-t reweighting: 0.80 against 0.99


def test_all_measurements_of_one_cell_shape_still_give_finite_predictions(world):
    table, pool, target = world
    base = SPACE.sample_indices(1, seed=5)[0]
    idx = np.tile(base, (5, 1))
    idx[:, 3] = np.arange(5)  # only one edge varies
    archs = SPACE.from_indices(idx)
    lookup = dict(zip(table.archs, target))
    values = [lookup.get(a, 1.0 + i) for i, a in enumerate(archs)]
    model = ProxyAdapter(pool, seed=0).fit(Measurements(SPACE, tuple(archs), np.array(values), "target"))
    pred = model.predict(table.archs)
    assert np.isfinite(pred).all() and (pred > 0).all()
    assert np.isfinite(model.estimated_spearman)
    picks = model.next_archs(4)
    assert len(set(picks)) == 4 and not set(picks) & set(archs)


def test_config_is_checked():
    with pytest.raises(InputError, match="transforms"):
        HierarchicalConfig(transforms=("sqrt",))
    with pytest.raises(InputError, match="scales"):
        HierarchicalConfig(pairwise_scales=())


# --------------------------------------------------------------------------- plan_profile
def test_designed_profile_spans_the_space_and_ranks_better_than_random(world):
    table, pool, _ = world
    target = table.column("dev8")  # a device like the proxies: the prior is worth designing for
    designed = plan_profile(pool, 8, seed=0)
    assert len(set(designed)) == 8
    ops = SPACE.to_indices(designed)
    assert len(np.unique(ops)) == 5  # every operation appears
    lookup = dict(zip(table.archs, target))
    cands = [a for a in designed if a in lookup]
    assert cands, "the design proposes table architectures by default"
    adapter = ProxyAdapter(pool, seed=0)
    random_rho = np.mean([spearman(adapter.fit(_measure(table, target, 8, s)).predict(table.archs), target)
                          for s in range(6)])
    table_design = plan_profile(pool, 8, candidates=table.archs, seed=0)
    m = Measurements(SPACE, tuple(table_design), np.array([lookup[a] for a in table_design]), "target")
    assert spearman(adapter.fit(m).predict(table.archs), target) > random_rho - 0.02


def test_plan_continues_a_partial_profile_within_the_candidates(world):
    table, pool, target = world
    lookup = dict(zip(table.archs, target))
    cands = table.archs[:40]
    partial_archs = list(table.archs[100:103])  # measured, but not among the candidates
    partial = {a: lookup[a] for a in partial_archs}
    picks = plan_profile(pool, 5, candidates=cands, profile=partial, space=SPACE, seed=0)
    assert len(picks) == 5 and set(picks) <= set(cands) and not set(picks) & set(partial_archs)
    one = {cands[0]: lookup[cands[0]]}
    with_one = plan_profile(pool, 5, candidates=cands, profile=one, space=SPACE, seed=0)
    assert cands[0] not in with_one


def test_plan_refuses_more_than_the_candidates_hold(world):
    table, pool, target = world
    cands = table.archs[:6]
    measured = {a: float(v) for a, v in zip(cands[:3], target[:3])}
    with pytest.raises(InputError, match="only 3 of the 6 candidates"):
        plan_profile(pool, 4, candidates=cands, profile=measured, space=SPACE)
    with pytest.raises(InputError, match="positive integer"):
        plan_profile(pool, 0)
