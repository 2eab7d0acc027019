"""ProxySampler / ProxyGuide on a held-out NB201 device, and the OptunaHub package."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from edgeopt_plugins.devices import DeviceProfile
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.optimizer import ProxyGuide
from edgeopt_plugins.optimizer._proxy_guide import upper_margin
from edgeopt_plugins.samplers import ProxySampler
from edgeopt_plugins.samplers._guided import ATTR_ARCH, ATTR_SOURCE
from edgeopt_plugins.spaces import get_space

DEVICE = "raspi4"
SPACE = get_space("nb201")
optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def problem(nb201_latency, nb201_accuracy):
    proxies = nb201_latency.select(devices=[d for d in nb201_latency.devices if d != DEVICE])
    profile = DeviceProfile.from_table(nb201_latency, DEVICE, k=10, seed=0)
    lat = dict(zip(nb201_latency.archs, nb201_latency.column(DEVICE)))
    acc = dict(zip(nb201_accuracy.archs, nb201_accuracy.column("cifar10")))
    return proxies, profile, lat, acc, float(np.percentile(list(lat.values()), 30))


def test_upper_margin_is_the_conformal_quantile():
    assert upper_margin(np.array([1.0, 2.0]), np.array([1.0, 2.0]), 0.95) == 1.0
    measured = np.exp(np.linspace(0, 0.9, 10))
    assert upper_margin(measured, np.ones(10), 0.95) == pytest.approx(np.exp(0.9))
    assert upper_margin(measured, np.ones(10), 0.5) == pytest.approx(np.exp(0.5))


def test_accuracy_is_unknown_unless_named(problem, nb201_accuracy):
    proxies, profile, lat, acc, budget = problem
    unknown = ProxyGuide(profile, budget, proxies=proxies)
    assert unknown.warm_start(5) == [] and unknown.screen(list(lat)[:4]).accuracy is None  # no hidden oracle
    named = ProxyGuide(profile, budget, proxies=proxies, accuracy="table")
    warm = named.warm_start(5)
    s = named.screen(warm)
    assert len(warm) == 5 and (s.latency_upper_ms <= budget).all()
    assert np.all(np.diff(s.accuracy) <= 1e-9)  # best first
    assert np.mean([lat[a] <= budget for a in warm]) >= 0.6
    cifar100 = ProxyGuide(profile, budget, proxies=proxies, accuracy="table:cifar100").screen(warm).accuracy
    np.testing.assert_allclose(cifar100, nb201_accuracy.lookup(warm, "cifar100"))


def test_refits_depend_only_on_what_was_measured(problem):
    proxies, profile, lat, acc, budget = problem
    measured = {a: lat[a] for a in list(lat)[:30]}
    stepwise, at_once = ProxyGuide(profile, budget, proxies=proxies), ProxyGuide(profile, budget, proxies=proxies)
    for n in range(1, 31):  # one trial at a time: warm refits at each point of the schedule
        stepwise.observe(dict(list(measured.items())[:n]))
    at_once.observe(measured)  # a resumed search: every point caught up in one call
    probe = list(lat)[100:300]
    np.testing.assert_array_equal(stepwise.screen(probe).latency_ms, at_once.screen(probe).latency_ms)
    # 10, 12, ..., 19 warm, 22 full (the data doubled), 26, 31, 37 warm from it
    assert len(stepwise.observed) == 30 and stepwise.predictor.k == 37


@pytest.mark.parametrize("accuracy", ["table", None])
def test_proxy_sampler_study_finds_good_designs(problem, accuracy):
    proxies, profile, lat, acc, budget = problem
    sampler = ProxySampler(profile=profile, latency_budget_ms=budget, proxies=proxies, seed=0, accuracy=accuracy)

    def objective(trial):
        arch = SPACE.suggest(trial)
        trial.set_user_attr("latency_ms", lat[arch])
        return acc[arch] if lat[arch] <= budget else acc[arch] - 100.0

    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=15)
    optimum = max(a for arch, a in acc.items() if lat[arch] <= budget)
    assert study.best_value >= optimum - (0.5 if accuracy else 3.0)
    assert study.trials[0].system_attrs[ATTR_SOURCE] == ("guided" if accuracy else "warm_start")
    assert len({t.system_attrs[ATTR_ARCH] for t in study.trials}) == 15
    assert len(sampler.guide.observed) == 14


def test_sampler_pickles_with_its_adapted_proxies(problem):
    import copy
    import pickle

    proxies, profile, lat, acc, budget = problem
    sampler = ProxySampler(profile=profile, latency_budget_ms=budget, proxies=proxies, seed=0, latency_from=None)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lambda t: acc[SPACE.suggest(t)], n_trials=2)
    restored = pickle.loads(pickle.dumps(sampler))
    assert restored.guide.screen([SPACE.sample(1, seed=0)[0]]).latency_ms == pytest.approx(
        sampler.guide.screen([SPACE.sample(1, seed=0)[0]]).latency_ms)
    copy.deepcopy(study).optimize(lambda t: acc[SPACE.suggest(t)], n_trials=1)


def test_bad_arguments(problem):
    proxies, profile, _, _, budget = problem
    with pytest.raises(InputError, match="needs its search space"):
        ProxySampler(profile={SPACE.sample(1)[0]: 1.0}, latency_budget_ms=budget, proxies=proxies)
    with pytest.raises(InputError, match="unknown proxy"):
        ProxySampler(profile=profile, latency_budget_ms=budget, proxies=proxies, proxy="nope")
    with pytest.raises(InputError, match="positive number"):
        ProxySampler(profile=profile, latency_budget_ms=0, proxies=proxies)
    with pytest.raises(InputError, match="needs a fitted ConditionedModel"):
        ProxySampler(profile=profile, latency_budget_ms=budget, proxies=proxies, accuracy="model")
    with pytest.raises(InputError, match="unknown metric 'imagenet'"):
        ProxySampler(profile=profile, latency_budget_ms=budget, proxies=proxies, accuracy="table:imagenet")


def test_optunahub_package_loads_locally():
    optunahub = pytest.importorskip("optunahub")
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "docs" / "hub"
    module = optunahub.load_local_module("samplers/edgeopt", registry_root=str(root))
    assert module.DeviceConditionedSampler.__name__ == "DeviceConditionedSampler"
    assert module.ProxySampler.__name__ == "ProxySampler"
    readme = (root / "samplers/edgeopt/README.md").read_text()
    assert readme.startswith("---\n") and "optuna_versions:" in readme and "license: MIT License" in readme
    assert (root / "samplers/edgeopt/LICENSE").exists() and (root / "samplers/edgeopt/example.py").exists()
