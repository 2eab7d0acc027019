"""The benchmarks' hold-out protocol, yardsticks and family-weighted scoring."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks._families import class_of, family_of, novel_splits, protocol_splits, spearman_matrix
from benchmarks._holdout import summarise_spearman
from benchmarks._ridge import KernelRidge, ceiling, ridge_on_points
from edgeopt_plugins.spaces import get_space


@pytest.mark.parametrize("protocol", ["family", "class"])
def test_a_held_out_group_never_stays_among_the_proxies(nb201_latency, protocol):
    key = {"family": family_of, "class": class_of}[protocol]
    splits = protocol_splits(nb201_latency, protocol)
    assert sorted(t for _, targets, _ in splits for t in targets) == sorted(nb201_latency.devices)
    for group, targets, proxies in splits:
        assert {key(t) for t in targets} == {group}
        assert all(key(p) != group for p in proxies) and len(targets) + len(proxies) == len(nb201_latency.devices)


def test_setting_protocol_keeps_near_copies(nb201_latency):
    splits = protocol_splits(nb201_latency, "setting")
    assert len(splits) == 27 and all(len(p) == 26 for _, _, p in splits)
    _, targets, proxies = next(s for s in splits if s[1] == ["titanx_1"])
    assert "titanx_32" in proxies


def test_novel_split_keeps_only_dissimilar_proxies_outside_the_family(nb201_latency):
    splits = novel_splits(nb201_latency)
    rho = spearman_matrix(nb201_latency.values)
    families = [f for f, _, _ in splits]
    assert len(families) == len(set(families)) == 10  # one target per family, every NB201 family qualifies
    for family, (target, ), proxies in splits:
        j = nb201_latency.device_index(target)
        assert family_of(target) == family and len(proxies) >= 3
        assert all(family_of(p) != family and rho[nb201_latency.device_index(p), j] <= 0.85 for p in proxies)
        left_out = set(nb201_latency.devices) - set(proxies) - {target}
        assert all(family_of(d) == family or rho[nb201_latency.device_index(d), j] > 0.85 for d in left_out)
    assert protocol_splits(nb201_latency, "novel") == splits
    with pytest.raises(ValueError, match="protocol must be one of"):
        protocol_splits(nb201_latency, "device")


def _synthetic(n: int, seed: int, pair: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    space = get_space("nb201")
    idx = space.sample_indices(n, seed=seed)
    cost = np.random.default_rng(1).uniform(0, 1, (6, 5))
    log_y = cost[np.arange(6), idx].sum(axis=1) + pair * ((idx[:, 0] == 3) & (idx[:, 5] == 3))
    return idx, np.exp(log_y)


def test_ridge_on_points_learns_an_additive_device_from_its_points_alone():
    space = get_space("nb201")
    idx, y = _synthetic(600, seed=0)
    few = ridge_on_points(space, idx[:8], y[:8], idx)
    many = ridge_on_points(space, idx[:200], y[:200], idx)
    rho = [np.corrcoef(np.argsort(np.argsort(p)), np.argsort(np.argsort(y)))[0, 1] for p in (few, many)]
    assert rho[1] > 0.999 and rho[0] < rho[1]


def test_primal_and_dual_ridge_agree():
    idx, y = _synthetic(80, seed=2, pair=1.0)
    cards = get_space("nb201").cardinalities
    for pairwise in (False, True):
        primal = KernelRidge(cards, pairwise=pairwise, solver="primal").fit(idx[:60], np.log(y[:60]))
        dual = KernelRidge(cards, pairwise=pairwise, solver="dual").fit(idx[:60], np.log(y[:60]))
        assert primal.penalty == pytest.approx(dual.penalty)
        assert np.allclose(primal.predict(idx[60:]), dual.predict(idx[60:]), atol=1e-6)
    with pytest.raises(ValueError, match="solver"):
        KernelRidge(cards, pairwise=False, solver="qr")


def test_ceiling_sees_pairwise_interactions_the_one_hot_ridge_misses():
    space = get_space("nb201")
    idx, y = _synthetic(800, seed=3, pair=3.0)
    both = np.column_stack([y, np.exp(np.log(y) * 0.5)])
    scores = ceiling(space, idx, both, seed=0)
    one_hot = ridge_on_points(space, idx[:640], y[:640], idx[640:])
    rho_one_hot = np.corrcoef(np.argsort(np.argsort(one_hot)), np.argsort(np.argsort(y[640:])))[0, 1]
    assert scores.shape == (2,) and scores.min() > 0.999 and rho_one_hot < 0.99


def test_summaries_weigh_families_not_settings():
    per = {f"gpu_{i}": {"family": "gpu", "ceiling": 0.99, "k": {"5": {"ours": [0.9], "ridge_k": [0.5]},
                                                              "10": {"ours": [0.95], "ridge_k": [0.97]}}}
           for i in range(9)}
    per["phone"] = {"family": "phone", "ceiling": 0.9, "k": {"5": {"ours": [0.5, 0.7], "ridge_k": [0.3]},
                                                             "10": {"ours": [0.8], "ridge_k": [0.6]}}}
    s = summarise_spearman(per, (5, 10), ("ours", "ridge_k"))
    assert s["k"]["5"]["ours"]["mean"] == pytest.approx(0.75)  # (0.9 + 0.6) / 2, not (9 * 0.9 + 0.6) / 10
    assert s["k"]["5"]["ours"]["mean_devices"] == pytest.approx(0.87)
    assert (s["k"]["5"]["ours"]["worst_family"], s["k"]["5"]["ours"]["worst_draw"]) == ("phone", 0.5)
    assert s["k"]["10"]["families_below_ridge"] == ["gpu"]
    assert s["ceiling_gap"]["mean"] == pytest.approx(0.945 - 0.875)
    assert list(s["ceiling_gap"]["by_family"]) == ["phone", "gpu"]
