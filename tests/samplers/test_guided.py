"""GuidedSampler: the decision rule in a study, yielding to the base sampler, storages, parallelism, Optuna's suites."""

from __future__ import annotations

import dataclasses
import warnings
from collections import Counter

import numpy as np
import optuna
import pytest
from optuna.testing.pytest_samplers import BasicSamplerTestCase, MultiObjectiveSamplerTestCase

from edgeopt_plugins.exceptions import EdgeOptWarning, InputError
from edgeopt_plugins.samplers import GuidedSampler, latency_reader
from edgeopt_plugins.samplers._guided import ATTR_PFEAS, ATTR_SOURCE
from edgeopt_plugins.optimizer import GuideBase
from tests.samplers._guides import SPACE, FormulaGuide, true_accuracy, true_latency

optuna.logging.set_verbosity(optuna.logging.WARNING)
BUDGET = float(np.percentile(true_latency(SPACE.sample(2000, seed=1)), 40))
FEASIBLE = [a for a in SPACE.from_indices(SPACE.all_indices()) if true_latency([a])[0] <= BUDGET]
OPTIMUM = float(true_accuracy(FEASIBLE).max())


def measure(arch: str) -> tuple[float, float]:
    return float(true_accuracy([arch])[0]), float(true_latency([arch])[0])


def objective(trial: optuna.Trial) -> float:
    accuracy, latency = measure(SPACE.suggest(trial))
    trial.set_user_attr("latency_ms", latency)
    trial.set_constraint("latency", latency - BUDGET)
    return accuracy if latency <= BUDGET else -latency / BUDGET


def _study(sampler, **kwargs):
    return optuna.create_study(direction="maximize", sampler=sampler, **kwargs)


def _archs(study):
    return [SPACE.format(dict(t.params)) for t in study.trials]


def _sources(study):
    return [t.system_attrs[ATTR_SOURCE] for t in study.trials]


def test_named_accuracy_is_searched_from_the_first_trial_and_reaches_the_optimum():
    study = _study(GuidedSampler(FormulaGuide(BUDGET, bias=1.0), seed=0))
    study.optimize(objective, n_trials=12)
    assert "warm_start" not in _sources(study)  # a named accuracy needs no warm start
    assert study.trials[0].system_attrs[ATTR_PFEAS] > 0.5
    assert study.best_value == pytest.approx(OPTIMUM)
    archs = _archs(study)
    assert len(set(archs)) == len(archs)  # no design twice


def test_unknown_accuracy_warms_up_with_designs_that_fit_then_learns_the_objective():
    guide = FormulaGuide(BUDGET, bias=1.0, accuracy=False)
    study = _study(GuidedSampler(guide, seed=1, n_warm_start=3))
    study.optimize(objective, n_trials=40)
    sources = _sources(study)
    assert sources[:3] == ["warm_start"] * 3 and set(sources[3:]) <= {"guided", "base", "repaired", "audit"}
    latencies = [measure(a)[1] for a in _archs(study)[:3]]
    assert all(lat <= BUDGET for lat in latencies) and len({round(x, 6) for x in latencies}) >= 2  # spread
    assert sources.count("guided") > sources.count("base") + sources.count("repaired")
    # The surrogate learned the objective: better than the same budget of random feasible designs.
    random_best = np.mean([true_accuracy(np.random.default_rng(s).choice(FEASIBLE, 40)).max() for s in range(20)])
    assert study.best_value > random_best


def test_no_hidden_oracle_the_guide_decides_what_accuracy_is_known():
    sampler = GuidedSampler(FormulaGuide(BUDGET, accuracy=False), seed=0)
    assert not sampler.search.named_accuracy_trusted()
    assert GuidedSampler(FormulaGuide(BUDGET), seed=0).search.named_accuracy_trusted()


def test_online_recalibration_opens_a_pessimistic_screen():
    # The guide believes every design is twice as slow as it is and never learns it itself.
    guide = FormulaGuide(BUDGET, bias=2.0, learn=False)
    sampler = GuidedSampler(guide, seed=2)
    near_budget = [a for a in FEASIBLE if measure(a)[1] > 0.9 * BUDGET][:50]
    before = [p.p_feasible for p in sampler.search.screen(near_budget)]
    study = _study(sampler)
    study.optimize(objective, n_trials=12)
    after = [p.p_feasible for p in sampler.search.screen(near_budget)]
    assert sampler.search.calibration.mu < 0  # measurements come out faster than predicted
    assert max(before) < 0.01 and np.median(after) > 0.1  # from hopeless to plausible


def test_a_contradicted_named_accuracy_is_dropped():
    # The user named an accuracy that ranks designs backwards relative to the study's values.
    guide = FormulaGuide(BUDGET, bias=1.0, accuracy=lambda archs: -true_accuracy(archs))
    sampler = GuidedSampler(guide, seed=3)
    study = _study(sampler)
    study.optimize(objective, n_trials=20)
    assert not sampler.search.named_accuracy_trusted()
    late = [measure(a)[0] for a in _archs(study)[-8:]]
    early = [measure(a)[0] for a in _archs(study)[:6]]
    assert np.mean(late) > np.mean(early)  # the surrogate took over from the wrong ranking


class _BlindSpot(FormulaGuide):
    """Right about most designs, ten times too slow for the ones whose first edge is ``op``."""

    def __init__(self, *args, op="nor_conv_3x3", **kwargs):
        super().__init__(*args, **kwargs)
        self.op = op

    def latency_of(self, indices):
        return GuideBase.latency_of(self, indices)

    def screen(self, archs):
        screening = super().screen(archs)
        slow = np.array([SPACE.parse(a)["edge_1_0"] == self.op for a in archs])
        factor = np.where(slow, 10.0, 1.0)
        return dataclasses.replace(screening, latency_ms=screening.latency_ms * factor,
                                   latency_upper_ms=screening.latency_upper_ms * factor)


def test_screen_yields_once_measurements_contradict_it():
    # The screen rejects every design with a 3x3 convolution first although most fit a generous budget:
    # audits measure some rejected proposals, and once two of them fit, base proposals pass unscreened.
    budget = float(np.percentile(true_latency(SPACE.sample(2000, seed=1)), 90))
    guide = _BlindSpot(budget, bias=1.0, accuracy=False, learn=False)
    sampler = GuidedSampler(guide, seed=4, min_base_share=0.5, base_sampler=optuna.samplers.RandomSampler(seed=4))
    study = _study(sampler)
    study.optimize(objective, n_trials=100)
    sources = _sources(study)
    assert sampler.search.screen_contradicted()
    audits = [a for a, src in zip(_archs(study), sources) if src == "audit"]
    assert sum(measure(a)[1] <= budget for a in audits) >= 2
    assert "unscreened" in sources[sources.index("audit"):]


@pytest.mark.slow
def test_a_guide_blind_to_the_optimum_still_reaches_it():
    # The named accuracy is right, but the guide predicts every design that starts like the optimum ten times
    # too slow and never learns: only audits of the base sampler's rejected proposals can reveal the region,
    # after which the correction moves the whole region and the guided trials follow.
    optimum = FEASIBLE[int(np.argmax(true_accuracy(FEASIBLE)))]
    guide = _BlindSpot(BUDGET, bias=1.0, learn=False, op=SPACE.parse(optimum)["edge_1_0"])
    sampler = GuidedSampler(guide, seed=0)
    study = _study(sampler)
    study.optimize(objective, n_trials=200)
    assert study.best_value == pytest.approx(OPTIMUM)
    assert any(a == optimum for a in _archs(study))


def test_base_share_follows_which_trials_improve():
    from edgeopt_plugins.optimizer import GuidedSearch, Observation

    search = GuidedSearch(FormulaGuide(BUDGET, bias=1.0, accuracy=False), seed=0)
    archs = SPACE.sample(60, seed=9)
    improving = [Observation(a, 1.0, float(i), "guided") for i, a in enumerate(archs[:30])]
    search.tell(improving)
    assert search.base_share() == pytest.approx(search.min_base_share)  # guidance pays off: the floor...
    assert search.plan() == "base"  # ...which no base trial in 30 is under
    stalled = [Observation(a, 1.0, 50.0 if i == 0 else 1.0, "guided") for i, a in enumerate(archs[:30])]
    stalled += [Observation(a, 1.0, 60.0 + i, "base") for i, a in enumerate(archs[30:36])]
    search.tell(stalled)
    assert search.base_share() == pytest.approx(1 - search.min_base_share)  # the base sampler takes over
    assert search.plan() == "base"


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
    with pytest.raises(InputError, match="min_p_feasible"):
        GuidedSampler(FormulaGuide(BUDGET), min_p_feasible=1.5)


def test_pruned_and_failed_trials_latencies_teach_the_guide():
    guide = FormulaGuide(BUDGET, bias=1.0)
    study = _study(GuidedSampler(guide, seed=5))

    def obj(trial):
        arch = SPACE.suggest(trial)
        trial.set_user_attr("latency_ms", measure(arch)[1])
        if trial.number % 3 == 1:
            raise optuna.TrialPruned()
        if trial.number % 3 == 2:
            raise RuntimeError("out of memory")
        return measure(arch)[0]

    study.optimize(obj, n_trials=7, catch=(RuntimeError,))
    states = Counter(t.state for t in study.trials)
    assert states[optuna.trial.TrialState.PRUNED] and states[optuna.trial.TrialState.FAIL]
    assert set(guide.observed) == set(_archs(study)[:-1])  # the last one arrives with the next proposal


def test_multi_objective_with_nsga2_and_latency_as_second_objective():
    guide = FormulaGuide(BUDGET, bias=1.0)
    sampler = GuidedSampler(guide, seed=5, base_sampler=optuna.samplers.NSGAIISampler(seed=5, population_size=6),
                            latency_from="objective:1")
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(lambda t: measure(SPACE.suggest(t)), n_trials=14)
    assert len(guide.observed) >= 12
    plain = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.NSGAIISampler(seed=5, population_size=6))
    plain.optimize(lambda t: measure(SPACE.suggest(t)), n_trials=14)
    fits = [np.mean([t.values[1] <= BUDGET for t in s.trials]) for s in (study, plain)]
    assert fits[0] > fits[1]  # the budget shapes the search


def test_warns_when_nothing_is_likely_to_fit():
    guide = FormulaGuide(0.01, bias=1.0)  # impossible budget
    study = _study(GuidedSampler(guide, seed=6))
    with pytest.warns(EdgeOptWarning, match="no untried design is likely to fit"):
        study.optimize(objective, n_trials=3)
    assert len(set(_archs(study))) == 3


def test_same_seed_same_study():
    runs = []
    for _ in range(2):
        study = _study(GuidedSampler(FormulaGuide(BUDGET, accuracy=False), seed=7))
        study.optimize(objective, n_trials=15)
        runs.append(_archs(study))
    assert runs[0] == runs[1]


class TestOptunaBasicSuite(BasicSamplerTestCase):
    """Optuna's reusable suite: parameters outside our space are delegated to the base sampler."""

    @pytest.fixture
    def sampler(self):
        return lambda: GuidedSampler(FormulaGuide(BUDGET), seed=0)


class TestOptunaMultiObjectiveSuite(MultiObjectiveSamplerTestCase):
    @pytest.fixture
    def sampler(self):
        return lambda: GuidedSampler(FormulaGuide(BUDGET), seed=0, base_sampler=optuna.samplers.NSGAIISampler(seed=0))


def test_quiet_when_all_is_well():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _study(GuidedSampler(FormulaGuide(BUDGET), seed=8)).optimize(objective, n_trials=5)
