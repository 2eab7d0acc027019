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


@pytest.mark.parametrize("accuracy", ["model", None])
def test_strategy_searches_with_the_model_and_stays_mostly_within_budget(tiny_model_dir, nb201_latency,
                                                                        nb201_accuracy, accuracy):
    model = ConditionedModel.load(tiny_model_dir)
    profile = DeviceProfile.from_table(nb201_latency, DEVICE, k=10, seed=0)
    lat = dict(zip(nb201_latency.archs, nb201_latency.column(DEVICE)))
    acc = dict(zip(nb201_accuracy.archs, nb201_accuracy.column("cifar10")))
    budget = float(np.percentile(list(lat.values()), 40))
    strategy = DeviceConditionedStrategy(model=model, profile=profile, latency_budget_ms=budget, seed=0,
                                         accuracy=accuracy, population_size=6, sample_size=2)
    result = run_nni_search("nb201", lambda arch: {"default": acc[arch], "latency_ms": lat[arch]}, strategy,
                            max_trials=10)
    sources = [h["source"] for h in strategy.history]
    assert (sources[0] == "guided") if accuracy == "model" else (sources[:3] == ["warm_start"] * 3)
    assert len({t.arch for t in result.trials}) == 10
    assert len(strategy.guide.observed) >= 9  # every reported latency refined the device (the last may be pending)
    # The first trials fit more often than random designs do; later ones may be long shots (with a
    # named accuracy, once nothing likely to fit beats the best found, the expected improvement is there).
    random_fits = np.mean(np.array(list(lat.values())) <= budget)
    assert np.mean([lat[t.arch] <= budget for t in result.trials[:5]]) > random_fits + 0.2
    assert result.best().latency_ms <= budget


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
