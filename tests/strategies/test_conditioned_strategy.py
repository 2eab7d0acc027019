"""DeviceConditionedStrategy with a real (tiny) fitted model, in-process on NNI's sequential engine."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("nni")

from edgeopt_plugins.devices import DeviceProfile  # noqa: E402
from edgeopt_plugins.optimizer import ConditionedModel  # noqa: E402
from edgeopt_plugins.strategies import DeviceConditionedStrategy, run_nni_search  # noqa: E402
from tests._approach2 import HELD_OUT  # noqa: E402

DEVICE = HELD_OUT[1]


def test_strategy_seeds_from_the_model_and_stays_within_budget(tiny_model_dir, nb201_latency, nb201_accuracy):
    model = ConditionedModel.load(tiny_model_dir)
    profile = DeviceProfile.from_table(nb201_latency, DEVICE, k=10, seed=0)
    lat = dict(zip(nb201_latency.archs, nb201_latency.column(DEVICE)))
    acc = dict(zip(nb201_accuracy.archs, nb201_accuracy.column("cifar10")))
    budget = float(np.percentile(list(lat.values()), 40))
    strategy = DeviceConditionedStrategy(model=model, profile=profile, latency_budget_ms=budget, seed=0,
                                         n_warm_start=3, population_size=6, sample_size=2)
    result = run_nni_search("nb201", lambda arch: {"default": acc[arch], "latency_ms": lat[arch]}, strategy,
                            max_trials=10)
    expected = [d.arch for d in model.recommend(profile, latency_budget_ms=budget, top_k=3)]
    assert result.trials[0].arch == expected[0]  # later picks move with the device's measurements
    assert len({t.arch for t in result.trials}) == 10
    assert len(strategy.guide.observed) >= 9  # every reported latency refined the device (the last may be pending)
    violations = sum(lat[t.arch] > budget for t in result.trials)
    assert violations <= 3


def test_proxy_strategy_excludes_the_target_and_searches(nb201_latency, nb201_accuracy, data_dir):
    from edgeopt_plugins.strategies import ProxyStrategy

    device = "raspi4"
    profile = DeviceProfile.from_table(nb201_latency, device, k=10, seed=0)
    lat = dict(zip(nb201_latency.archs, nb201_latency.column(device)))
    acc = dict(zip(nb201_accuracy.archs, nb201_accuracy.column("cifar10")))
    budget = float(np.percentile(list(lat.values()), 30))
    strategy = ProxyStrategy(profile=profile, latency_budget_ms=budget, data_dir=data_dir, exclude_devices=[device],
                             seed=0, population_size=6, sample_size=2)
    assert device not in strategy.guide.adapter.pool.devices
    result = run_nni_search("nb201", lambda arch: {"default": acc[arch], "latency_ms": lat[arch]}, strategy,
                            max_trials=8)
    assert len(result.trials) == 8
    assert sum(lat[t.arch] <= budget for t in result.trials) >= 5
