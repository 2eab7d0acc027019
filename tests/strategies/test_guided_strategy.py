"""GuidedStrategy: warm start, screening before the engine, online adaptation, resume, failures."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings

import numpy as np
import pytest

pytest.importorskip("nni", reason="NNI is an optional extra: pip install -c constraints.txt -e '.[nni]'")

import nni  # noqa: E402
from nni.nas.execution import SequentialExecutionEngine  # noqa: E402
from nni.nas.hub.pytorch import NasBench201  # noqa: E402
from nni.nas.space import RawFormatModelSpace  # noqa: E402
from nni.nas.strategy.middleware import Chain  # noqa: E402

from edgeopt_plugins.exceptions import EdgeOptWarning, InputError, ModelFormatError  # noqa: E402
from edgeopt_plugins.strategies import (  # noqa: E402
    ArchEvaluator,
    GuidedStrategy,
    NNILabels,
    nni_space,
    run_nni_search,
    sample_filter,
)
from edgeopt_plugins.optimizer import GuideBase, Screening  # noqa: E402
from edgeopt_plugins.spaces import Decision, SearchSpace  # noqa: E402
from tests.samplers._guides import SPACE, FormulaGuide, true_accuracy, true_latency  # noqa: E402

BUDGET = float(np.percentile(true_latency(SPACE.sample(2000, seed=1)), 40))


def evaluate(arch: str) -> dict[str, float]:
    """The synthetic device: accuracy and measured latency, reported the documented way."""
    return {"default": float(true_accuracy([arch])[0]), "latency_ms": float(true_latency([arch])[0])}


def _search(guide, max_trials, *, state=None, evaluator=evaluate, **options):
    # n_explore=0: these tests look at the warm start, screening and evolution (exploration is tested below).
    strategy = GuidedStrategy(guide, **{"seed": 0, "population_size": 8, "sample_size": 3, "n_explore": 0, **options})
    return run_nni_search("nb201", evaluator, strategy, max_trials=max_trials, state=state), strategy


def test_warm_start_designs_are_evaluated_first_in_order():
    guide = FormulaGuide(BUDGET, bias=1.0)
    result, strategy = _search(guide, 6, n_warm_start=3)
    assert [t.arch for t in result.trials[:3]] == FormulaGuide(BUDGET, bias=1.0).warm_start(3)
    assert [h["source"] for h in strategy.history] == ["warm_start"] * 3 + ["random"] * 3


def test_every_evaluated_design_is_new_and_predicted_to_fit():
    guide = FormulaGuide(BUDGET, bias=1.0, margin=1.0)
    result, strategy = _search(guide, 40, n_warm_start=2)
    archs = [t.arch for t in result.trials]
    assert len(archs) == 40 and len(set(archs)) == 40
    assert all(h["latency_upper_ms"] <= BUDGET for h in strategy.history)
    assert all(t.latency_ms <= BUDGET for t in result.trials)  # the guide is exact here
    assert strategy.counts["screened_out"] > 0  # rejected candidates cost no trial
    assert {h["source"] for h in strategy.history} == {"warm_start", "random", "mutation"}
    assert len(list(result.engine.list_models())) == 40


def test_unscreened_random_search_violates_the_budget():
    from nni.nas.strategy import Random

    result = run_nni_search("nb201", evaluate, Random(seed=0), max_trials=40)
    assert sum(t.latency_ms > BUDGET for t in result.trials) > 10


def test_online_adaptation_receives_every_reported_latency():
    guide = FormulaGuide(BUDGET, bias=2.0)  # pessimistic until it measures
    result, strategy = _search(guide, 12, n_warm_start=1)
    assert guide.observed == pytest.approx({t.arch: t.latency_ms for t in result.trials})
    assert guide.bias == pytest.approx(1.0, rel=1e-9)
    assert all(h["latency_ms"] == pytest.approx(t.latency_ms) for h, t in zip(strategy.history, result.trials))


def test_latency_from_a_callable_and_warning_when_none_is_reported():
    guide = FormulaGuide(BUDGET, bias=2.0)
    accuracy_only = lambda arch: evaluate(arch)["default"]  # noqa: E731
    _, strategy = _search(guide, 5, evaluator=accuracy_only, latency_from=lambda a: evaluate(a)["latency_ms"])
    assert guide.bias == pytest.approx(1.0) and len(guide.observed) == 5
    assert all(h["latency_ms"] is not None for h in strategy.history)
    with pytest.warns(EdgeOptWarning, match="reported no latency"):
        _search(FormulaGuide(BUDGET), 5, evaluator=accuracy_only)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _search(FormulaGuide(BUDGET), 3, evaluator=accuracy_only, latency_from=None)


def test_predicted_accuracy_picks_among_feasible_candidates():
    class LatencyOnly(FormulaGuide):
        def screen(self, archs):
            return dataclasses.replace(super().screen(archs), accuracy=None)

    informed = _search(FormulaGuide(BUDGET, bias=1.0), 20, n_warm_start=0, population_size=20)[0]
    blind = _search(LatencyOnly(BUDGET, bias=1.0), 20, n_warm_start=0, population_size=20)[0]
    assert np.mean([t.metric for t in informed.trials]) > np.mean([t.metric for t in blind.trials]) + 1.0


def test_when_nothing_is_predicted_to_fit_the_closest_designs_are_measured():
    guide = FormulaGuide(0.5, bias=1.0)  # every design takes at least 1 ms
    with pytest.warns(EdgeOptWarning, match="closest"):
        result, strategy = _search(guide, 8)
    assert len(result.trials) == 8 and {h["source"] for h in strategy.history} == {"fallback"}
    assert all(h["latency_upper_ms"] > 0.5 for h in strategy.history)
    assert np.mean([t.latency_ms for t in result.trials]) < np.median(true_latency(SPACE.sample(500, seed=0)))


class _TinySpace(SearchSpace):
    """Four designs: "a,b" with a, b in {0, 1}."""

    name = "tiny"
    decisions = (Decision("a", (0, 1)), Decision("b", (0, 1)))

    def _parse_values(self, text):
        return [int(v) for v in text.split(",")]

    def _format_values(self, values):
        return ",".join(map(str, values))

    def _costs(self, indices):
        return np.zeros((len(indices), 2))


class _FlatGuide(GuideBase):
    def __init__(self):
        super().__init__(_TinySpace(), 2.0)

    def _refit(self, measurements):
        pass

    def screen(self, archs):
        ones = np.ones(len(archs))
        return Screening(ones, ones, None)

    def warm_start(self, n, *, confidence=None):
        return []


def test_exploration_follows_designs_whose_median_prediction_fits():
    guide = FormulaGuide(BUDGET, bias=1.0, margin=1.5)  # a cautious bound hides the designs near the budget
    result, strategy = _search(guide, 9, n_warm_start=2, n_explore=4)
    sources = [h["source"] for h in strategy.history]
    assert sources[:6] == ["warm_start"] * 2 + ["explore"] * 4 and "explore" not in sources[6:]
    explored = [h for h in strategy.history if h["source"] == "explore"]
    assert all(h["predicted_latency_ms"] <= BUDGET for h in explored)
    assert any(h["latency_upper_ms"] > BUDGET for h in explored)  # beyond what the cautious bound allows


def test_search_stops_with_a_warning_when_the_space_is_exhausted():
    guide = _FlatGuide()
    strategy = GuidedStrategy(guide, population_size=2, sample_size=1, seed=0)
    with pytest.warns(EdgeOptWarning, match="stopping after 4 trials"):
        result = run_nni_search(guide.space, lambda arch: {"default": 1.0, "latency_ms": 1.0}, strategy, max_trials=10)
    assert sorted(t.arch for t in result.trials) == ["0,0", "0,1", "1,0", "1,1"]


def test_same_seed_same_search_and_resume_is_exact():
    full, full_strategy = _search(FormulaGuide(BUDGET), 50)
    again, _ = _search(FormulaGuide(BUDGET), 50)
    assert [t.arch for t in again.trials] == [t.arch for t in full.trials]

    first, _ = _search(FormulaGuide(BUDGET), 20)
    checkpoint = json.loads(json.dumps(first.state_dict()))  # plain JSON
    resumed, resumed_strategy = _search(FormulaGuide(BUDGET), 50, state=checkpoint)
    assert resumed.trials == full.trials
    assert resumed_strategy.history == full_strategy.history
    assert resumed_strategy.state_dict() == json.loads(json.dumps(full_strategy.state_dict()))


def test_failed_evaluations_are_counted_and_the_search_goes_on():
    def flaky(arch: str) -> dict[str, float]:
        ops = SPACE.parse(arch)
        if ops["edge_1_0"] == "none":
            raise RuntimeError("device unreachable")
        if ops["edge_1_0"] == "skip_connect":
            return {**evaluate(arch), "default": math.nan}
        return evaluate(arch)

    result, strategy = _search(FormulaGuide(BUDGET), 30, evaluator=flaky, n_warm_start=0)
    failed = [t for t in result.trials if t.status == "failed"]
    assert len(result.trials) == 30 and failed
    assert strategy.counts["failed"] == len(failed) == sum(h["status"] == "failed" for h in strategy.history)
    assert all(t.metric is None for t in failed)
    assert all(SPACE.parse(arch)["edge_1_0"] not in ("none", "skip_connect") for arch, _ in strategy._population)
    assert strategy.state_dict()["counts"]["failed"] == len(failed)
    nan_trials = [t for t in failed if SPACE.parse(t.arch)["edge_1_0"] == "skip_connect"]
    assert all(t.latency_ms is not None for t in nan_trials)  # a measured latency is still a measurement

    with pytest.raises(RuntimeError, match="device unreachable"):
        run_nni_search("nb201", flaky, GuidedStrategy(FormulaGuide(BUDGET), n_warm_start=0, seed=0),
                       max_trials=30, continue_on_failure=False)


def test_models_blocked_by_an_nni_filter_are_not_trials():
    blocked = set(SPACE.sample(3000, seed=5)[:1500])
    chain = Chain(GuidedStrategy(FormulaGuide(BUDGET), seed=0), sample_filter(lambda s: SPACE.format(s) not in blocked))
    result = run_nni_search("nb201", evaluate, chain, max_trials=15)
    strategy = chain[0]
    assert len(result.trials) == 15 and not blocked & {t.arch for t in result.trials}
    assert strategy.counts["filtered"] == chain[1]._filter_count_total > 0
    assert sum(h["status"] == "filtered" for h in strategy.history) == strategy.counts["filtered"]


def test_runs_on_nni_hub_nas_bench_201_driven_directly(monkeypatch):
    monkeypatch.setattr(nni.trial, "_params", None)  # direct driving leaves NNI's trial globals set; undo after
    guide = FormulaGuide(BUDGET, bias=1.0)
    hub = NasBench201(stem_out_channels=4, num_modules_per_stack=1)
    engine = SequentialExecutionEngine(max_model_count=10, continue_on_failure=True)
    strategy = GuidedStrategy(guide, n_warm_start=2, seed=0)
    strategy.initialize(RawFormatModelSpace(hub, ArchEvaluator(evaluate, space="nb201")), engine)
    strategy.run()
    assert [h["arch"] for h in strategy.history[:2]] == guide.warm_start(2)
    assert all(h["status"] == "trained" for h in strategy.history) and len(strategy.history) == 10
    best = next(strategy.list_models(limit=1))  # NNI's own API sees the same results
    assert best.metric == max(h["metric"] for h in strategy.history)
    assert set(best.sample) == {"cell/0_1", "cell/0_2", "cell/1_2", "cell/0_3", "cell/1_3", "cell/2_3"}


def test_bad_options_and_states():
    guide = FormulaGuide(BUDGET)
    with pytest.raises(InputError, match="SearchGuide"):
        GuidedStrategy(object())
    with pytest.raises(InputError, match="sample_size"):
        GuidedStrategy(guide, population_size=3, sample_size=4)
    with pytest.raises(InputError, match="mutation_prob"):
        GuidedStrategy(guide, mutation_prob=1.5)
    with pytest.raises(InputError, match="latency_from"):
        GuidedStrategy(guide, latency_from=3)
    wrong = GuidedStrategy(guide, labels=NNILabels({n: f"x{i}" for i, n in enumerate(SPACE.names)}))
    with pytest.raises(InputError, match="not a Categorical"):
        wrong.initialize(RawFormatModelSpace(nni_space("nb201"), None), SequentialExecutionEngine())
    state = _search(guide, 3)[0].state_dict()["strategy"]
    fresh = GuidedStrategy(FormulaGuide(BUDGET))
    fresh.initialize(RawFormatModelSpace(nni_space("nb201"), None), SequentialExecutionEngine())
    with pytest.raises(ModelFormatError, match="version"):
        fresh.load_state_dict({**state, "version": 99})
    with pytest.raises(ModelFormatError, match="malformed"):
        fresh.load_state_dict({**state, "population": [["|bad|", 1.0]]})
