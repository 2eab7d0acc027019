"""DeviceConditionedSampler with a real (tiny) fitted model on a held-out NB201 device."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from edgeopt_plugins.devices import DeviceProfile
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.optimizer import ConditionedModel
from edgeopt_plugins.samplers import DeviceConditionedSampler
from edgeopt_plugins.samplers._guided import ATTR_ARCH, ATTR_PRED, ATTR_SOURCE, ATTR_UPPER
from edgeopt_plugins.spaces import get_space
from tests._approach2 import HELD_OUT

DEVICE = HELD_OUT[0]
SPACE = get_space("nb201")
optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def setup(tiny_model_dir, nb201_latency, nb201_accuracy):
    profile = DeviceProfile.from_table(nb201_latency, DEVICE, k=10, seed=0)
    lat = dict(zip(nb201_latency.archs, nb201_latency.column(DEVICE)))
    acc = dict(zip(nb201_accuracy.archs, nb201_accuracy.column("cifar10")))
    budget = float(np.percentile(list(lat.values()), 50))
    return ConditionedModel.load(tiny_model_dir), profile, lat, acc, budget


def _objective(lat, acc, budget, report=True):
    def objective(trial):
        arch = SPACE.suggest(trial)
        if report:
            trial.set_user_attr("latency_ms", lat[arch])
            trial.set_constraint("latency", lat[arch] - budget)
        return acc[arch] if lat[arch] <= budget else acc[arch] - 100.0

    return objective


def test_first_trials_are_the_learned_optimizers_designs(setup):
    model, profile, lat, acc, budget = setup
    expected = [d.arch for d in model.recommend(profile, latency_budget_ms=budget, top_k=3)]
    sampler = DeviceConditionedSampler(model=model, profile=profile, latency_budget_ms=budget, seed=0, n_warm_start=3)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(_objective(lat, acc, budget), n_trials=6)
    # the first design is the learned optimizer's best; later warm-start picks may move as the
    # device's measurements update its posterior
    assert study.trials[0].system_attrs[ATTR_ARCH] == expected[0]
    assert all(t.system_attrs[ATTR_SOURCE] == "warm_start" for t in study.trials[:3])
    assert all(t.system_attrs[ATTR_UPPER] <= budget for t in study.trials[:3])
    explore = [t for t in study.trials if t.system_attrs[ATTR_SOURCE] == "explore"]
    assert explore and all(t.system_attrs[ATTR_PRED] <= budget for t in explore)  # plausibly feasible
    assert len(sampler.guide.observed) == 5  # the device profile grows with every reported latency


def test_plain_objective_works_unchanged(setup, tmp_path):
    model, profile, lat, acc, budget = setup
    csv = profile.write(tmp_path / "dev.csv")
    sampler = DeviceConditionedSampler(model=model, profile=str(csv), latency_budget_ms=budget, seed=1)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(_objective(lat, acc, budget, report=False), n_trials=8)
    assert len({t.system_attrs[ATTR_ARCH] for t in study.trials}) == 8
    assert sampler.guide.observed == {}


def test_dict_profile_parallel_sqlite(setup, tmp_path):
    model, profile, lat, acc, budget = setup
    sampler = DeviceConditionedSampler(model=model, profile=profile.as_dict(), latency_budget_ms=budget, seed=2)
    study = optuna.create_study(direction="maximize", sampler=sampler, storage=f"sqlite:///{tmp_path / 's.db'}")
    study.optimize(_objective(lat, acc, budget), n_trials=12, n_jobs=2)
    archs = [t.system_attrs[ATTR_ARCH] for t in study.trials]
    assert len(set(archs)) == 12
    assert {t.system_attrs[ATTR_SOURCE] for t in study.trials} & {"warm_start"}


def test_model_folder_and_bad_arguments(setup, tiny_model_dir):
    _, profile, _, _, budget = setup
    sampler = DeviceConditionedSampler(model=tiny_model_dir, profile=profile, latency_budget_ms=budget)
    assert sampler.guide.model.space.name == "nb201"
    with pytest.raises(InputError, match="latency_budget_ms must be a positive number"):
        DeviceConditionedSampler(model=tiny_model_dir, profile=profile, latency_budget_ms=-1)
    with pytest.raises(InputError, match="confidence"):
        DeviceConditionedSampler(model=tiny_model_dir, profile=profile, latency_budget_ms=budget, confidence=1.5)
    with pytest.raises(InputError, match="expected 'nb201'"):
        DeviceConditionedSampler(model=tiny_model_dir, latency_budget_ms=budget,
                                 profile=DeviceProfile.from_dict("fbnet", {get_space("fbnet").sample(1)[0]: 1.0}))
