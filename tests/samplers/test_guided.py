"""GuidedSampler: warm start, screening, repair, online adaptation, storages, parallelism."""

from __future__ import annotations

import warnings

import numpy as np
import optuna
import pytest
from optuna.testing.pytest_samplers import BasicSamplerTestCase, MultiObjectiveSamplerTestCase

from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.samplers import GuidedSampler, latency_reader
from edgeopt_plugins.samplers._guided import ATTR_ARCH, ATTR_SOURCE
from tests.samplers._guides import SPACE, FormulaGuide, true_accuracy, true_latency

optuna.logging.set_verbosity(optuna.logging.WARNING)
BUDGET = float(np.percentile(true_latency(SPACE.sample(2000, seed=1)), 40))


def objective(trial: optuna.Trial) -> float:
    arch = SPACE.suggest(trial)
    latency = float(true_latency([arch])[0])
    trial.set_user_attr("latency_ms", latency)
    trial.set_constraint("latency", latency - BUDGET)
    return float(true_accuracy([arch])[0])


def _study(sampler, **kwargs):
    return optuna.create_study(direction="maximize", sampler=sampler, **kwargs)


def test_warm_start_designs_come_first_in_order():
    guide = FormulaGuide(BUDGET, bias=1.0)
    study = _study(GuidedSampler(guide, seed=0, n_warm_start=3))
    study.optimize(objective, n_trials=5)
    first = [t.system_attrs[ATTR_ARCH] for t in study.trials[:3]]
    assert first == guide.warm_start(3)
    assert [t.system_attrs[ATTR_SOURCE] for t in study.trials[:3]] == ["warm_start"] * 3
    assert study.trials[3].system_attrs[ATTR_SOURCE] != "warm_start"


def test_every_proposal_is_predicted_feasible_and_new():
    guide = FormulaGuide(BUDGET, bias=1.0, margin=1.0)
    study = _study(GuidedSampler(guide, seed=1, n_warm_start=2))
    study.optimize(objective, n_trials=25)
    archs = [t.system_attrs[ATTR_ARCH] for t in study.trials]
    assert len(set(archs)) == len(archs)
    assert all(t.constraints["latency"] <= 1e-9 for t in study.trials)
    sources = {t.system_attrs[ATTR_SOURCE] for t in study.trials}
    assert "repaired" in sources or "base" in sources


def test_unscreened_tpe_violates_the_budget_where_guided_does_not():
    plain = _study(optuna.samplers.TPESampler(seed=1))
    plain.optimize(objective, n_trials=25)
    assert sum(t.constraints["latency"] > 0 for t in plain.trials) > 5


def test_online_adaptation_learns_the_bias_from_reported_latency():
    guide = FormulaGuide(BUDGET, bias=2.0)  # pessimistic until it measures
    study = _study(GuidedSampler(guide, seed=2, n_warm_start=1))
    study.optimize(objective, n_trials=4)
    assert guide.refits >= 1
    assert guide.bias == pytest.approx(1.0, rel=1e-6)
    assert len(guide.observed) == 3  # the last trial's latency arrives at the next proposal


@pytest.mark.parametrize("spec", ["objective:1", "constraint:latency", "user_attr:latency_ms"])
def test_latency_sources(spec):
    budget = 5.0
    trial = optuna.trial.create_trial(
        values=[90.0, 4.0], user_attrs={"latency_ms": 4.0}, system_attrs={"constraints:latency": -1.0}
    ) if spec == "objective:1" else optuna.trial.create_trial(
        value=90.0, user_attrs={"latency_ms": 4.0}, system_attrs={"constraints:latency": -1.0})
    assert latency_reader(spec, budget)(trial) == pytest.approx(4.0)


def test_bad_options_are_input_errors():
    with pytest.raises(InputError, match="latency_from"):
        GuidedSampler(FormulaGuide(BUDGET), latency_from="stdout")
    with pytest.raises(InputError, match="needs a latency budget"):
        GuidedSampler(FormulaGuide(None), latency_from="constraint:latency")
    with pytest.raises(InputError, match="must implement SearchGuide"):
        GuidedSampler(object())  # type: ignore[arg-type]


def test_custom_parameter_names_and_extra_parameters_go_to_the_base_sampler():
    names = {d.name: f"net.{d.name}" for d in SPACE.decisions}
    guide = FormulaGuide(BUDGET, bias=1.0)
    study = _study(GuidedSampler(guide, seed=3, param_names=names, n_warm_start=1))

    def obj(trial):
        arch = SPACE.suggest(trial, names=names)
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        trial.set_user_attr("latency_ms", float(true_latency([arch])[0]))
        return float(true_accuracy([arch])[0]) - lr

    study.optimize(obj, n_trials=6)
    assert all(set(t.params) == {*names.values(), "lr"} for t in study.trials)
    assert study.trials[0].system_attrs[ATTR_ARCH] == guide.warm_start(1)[0]


@pytest.mark.parametrize("storage_kind", ["sqlite", "journal"])
def test_persistent_storages_with_threads(tmp_path, storage_kind):
    if storage_kind == "sqlite":
        storage = f"sqlite:///{tmp_path / 'study.db'}"
    else:
        from optuna.storages.journal import JournalFileBackend

        storage = optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "journal.log")))
    study = _study(GuidedSampler(FormulaGuide(BUDGET, bias=1.0), seed=4, n_warm_start=4), storage=storage)
    study.optimize(objective, n_trials=16, n_jobs=2)
    archs = [t.system_attrs[ATTR_ARCH] for t in study.trials]
    assert len(study.trials) == 16 and len(set(archs)) == 16


def test_multi_objective_with_nsga2_and_latency_as_second_objective():
    guide = FormulaGuide(BUDGET, bias=1.0)
    sampler = GuidedSampler(guide, seed=5, base_sampler=optuna.samplers.NSGAIISampler(seed=5, population_size=6),
                            latency_from="objective:1", n_warm_start=2)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)

    def obj(trial):
        arch = SPACE.suggest(trial)
        return float(true_accuracy([arch])[0]), float(true_latency([arch])[0])

    study.optimize(obj, n_trials=14)
    assert len(guide.observed) >= 12
    assert all(t.values[1] <= BUDGET * 1.0001 for t in study.trials)


def test_warns_when_nothing_fits():
    guide = FormulaGuide(0.01, bias=1.0)  # impossible budget
    study = _study(GuidedSampler(guide, seed=6, n_warm_start=2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study.optimize(objective, n_trials=2)
    assert any("no untried design is predicted to fit" in str(w.message) for w in caught)
    assert {t.system_attrs[ATTR_SOURCE] for t in study.trials} == {"unscreened"}


class TestOptunaBasicSuite(BasicSamplerTestCase):
    """Optuna's reusable suite: parameters outside our space are delegated to the base sampler."""

    @pytest.fixture
    def sampler(self):
        return lambda: GuidedSampler(FormulaGuide(BUDGET), seed=0)


class TestOptunaMultiObjectiveSuite(MultiObjectiveSamplerTestCase):
    @pytest.fixture
    def sampler(self):
        return lambda: GuidedSampler(FormulaGuide(BUDGET), seed=0, base_sampler=optuna.samplers.NSGAIISampler(seed=0))
