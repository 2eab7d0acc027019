"""GuidedStrategy: the shared decision rule on NNI, evolution as the base, online adaptation, resume, failures."""

from __future__ import annotations

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
    strategy = GuidedStrategy(guide, **{"seed": 0, "population_size": 8, "sample_size": 3, **options})
    return run_nni_search("nb201", evaluator, strategy, max_trials=max_trials, state=state), strategy


def _optimum(budget):
    feasible = [a for a in SPACE.from_indices(SPACE.all_indices()) if true_latency([a])[0] <= budget]
    return float(true_accuracy(feasible).max())


def test_named_accuracy_is_searched_from_the_first_proposal():
    result, strategy = _search(FormulaGuide(BUDGET, bias=1.0), 12)
    sources = [h["source"] for h in strategy.history]
    assert "warm_start" not in sources and sources[0] == "guided"
    assert result.best().metric == pytest.approx(_optimum(BUDGET))
    assert len({t.arch for t in result.trials}) == 12


def test_unknown_accuracy_warms_up_then_learns_the_reported_metric():
    result, strategy = _search(FormulaGuide(BUDGET, bias=1.0, accuracy=False), 30, n_warm_start=3)
    sources = [h["source"] for h in strategy.history]
    assert sources[:3] == ["warm_start"] * 3 and "guided" in sources[3:] and set(sources) & {"base", "repaired"}
    assert all(t.latency_ms <= BUDGET for t in result.trials[:3])
    assert sum(t.latency_ms <= BUDGET for t in result.trials) >= 24  # screened: mostly feasible
    assert result.best().metric > np.percentile(true_accuracy(SPACE.sample(500, seed=0)), 75)


def test_every_evaluated_design_is_new_and_evolution_is_screened():
    guide = FormulaGuide(BUDGET, bias=1.0, margin=1.0, accuracy=False)
    result, strategy = _search(guide, 40, min_base_share=0.5)
    archs = [t.arch for t in result.trials]
    assert len(archs) == 40 and len(set(archs)) == 40
    base = [h for h in strategy.history if h["source"] in ("base", "repaired")]
    assert base and all(h["latency_ms"] <= BUDGET for h in base)  # the guide is exact here
    assert strategy.counts["repaired"] > 0  # infeasible or repeated mutants are repaired, at no trial's cost
    assert len(list(result.engine.list_models())) == 40


def test_unscreened_random_search_violates_the_budget():
    from nni.nas.strategy import Random

    result = run_nni_search("nb201", evaluate, Random(seed=0), max_trials=40)
    assert sum(t.latency_ms > BUDGET for t in result.trials) > 10


def test_best_is_the_best_feasible_trial():
    from nni.nas.strategy import Random

    result = run_nni_search("nb201", evaluate, Random(seed=0), max_trials=40)
    best_any = max(result.trials, key=lambda t: t.metric)
    assert best_any.latency_ms > BUDGET  # the most accurate design found does not fit
    best = result.best(BUDGET)
    assert best.latency_ms <= BUDGET and best.metric == max(t.metric for t in result.trials if t.latency_ms <= BUDGET)
    guided, _ = _search(FormulaGuide(BUDGET, bias=1.0), 10)
    assert guided.best().latency_ms <= BUDGET  # a guided strategy's own budget by default


def test_online_adaptation_receives_every_reported_latency():
    guide = FormulaGuide(BUDGET, bias=2.0)  # pessimistic until it measures
    result, strategy = _search(guide, 12)
    assert guide.observed == pytest.approx({t.arch: t.latency_ms for t in result.trials})
    assert guide.bias == pytest.approx(1.0, rel=1e-9)
    assert all(h["latency_ms"] == pytest.approx(t.latency_ms) for h, t in zip(strategy.history, result.trials))


def test_latency_from_a_callable_and_warning_when_none_is_reported():
    guide = FormulaGuide(BUDGET, bias=2.0)
    accuracy_only = lambda arch: evaluate(arch)["default"]  # noqa: E731
    _, strategy = _search(guide, 5, evaluator=accuracy_only, latency_from=lambda a: evaluate(a)["latency_ms"])
    assert guide.bias == pytest.approx(1.0) and len(guide.observed) == 5
    assert all(h["latency_ms"] is not None for h in strategy.history)
    with pytest.warns(EdgeOptWarning, match="3 trials reported no latency"):
        _search(FormulaGuide(BUDGET), 5, evaluator=accuracy_only)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _search(FormulaGuide(BUDGET), 3, evaluator=accuracy_only, latency_from=None)


def test_when_nothing_is_likely_to_fit_the_likeliest_designs_are_measured():
    guide = FormulaGuide(0.5, bias=1.0)  # every design takes at least 1 ms
    with pytest.warns(EdgeOptWarning, match="no untried design is likely to fit"):
        result, strategy = _search(guide, 8)
    assert len(result.trials) == 8
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

    result, strategy = _search(FormulaGuide(BUDGET), 30, evaluator=flaky)
    failed = [t for t in result.trials if t.status == "failed"]
    assert len(result.trials) == 30 and failed
    assert strategy.counts["failed"] == len(failed) == sum(h["status"] == "failed" for h in strategy.history)
    assert all(t.metric is None for t in failed)
    assert all(SPACE.parse(arch)["edge_1_0"] not in ("none", "skip_connect") for arch, _ in strategy._population)
    assert set(strategy.guide.observed) >= {t.arch for t in failed if t.latency_ms is not None}  # failed ones teach too
    assert strategy.state_dict()["counts"]["failed"] == len(failed)
    nan_trials = [t for t in failed if SPACE.parse(t.arch)["edge_1_0"] == "skip_connect"]
    assert all(t.latency_ms is not None for t in nan_trials)  # a measured latency is still a measurement

    with pytest.raises(RuntimeError, match="device unreachable"):
        run_nni_search("nb201", flaky, GuidedStrategy(FormulaGuide(BUDGET), seed=0),
                       max_trials=30, continue_on_failure=False)


def test_models_blocked_by_an_nni_filter_are_not_trials():
    blocked = {a for a in SPACE.from_indices(SPACE.all_indices()) if SPACE.parse(a)["edge_3_2"] == "nor_conv_3x3"}
    chain = Chain(GuidedStrategy(FormulaGuide(BUDGET), seed=0), sample_filter(lambda s: SPACE.format(s) not in blocked))
    result = run_nni_search("nb201", evaluate, chain, max_trials=15)
    strategy = chain[0]
    assert len(result.trials) == 15 and not blocked & {t.arch for t in result.trials}
    assert strategy.counts["filtered"] == chain[1]._filter_count_total > 0
    assert sum(h["status"] == "filtered" for h in strategy.history) == strategy.counts["filtered"]


def test_runs_on_nni_hub_nas_bench_201_driven_directly(monkeypatch):
    monkeypatch.setattr(nni.trial, "_params", None)  # direct driving leaves NNI's trial globals set; undo after
    guide = FormulaGuide(BUDGET, bias=1.0, accuracy=False)
    hub = NasBench201(stem_out_channels=4, num_modules_per_stack=1)
    engine = SequentialExecutionEngine(max_model_count=10, continue_on_failure=True)
    strategy = GuidedStrategy(guide, n_warm_start=2, seed=0)
    strategy.initialize(RawFormatModelSpace(hub, ArchEvaluator(evaluate, space="nb201")), engine)
    strategy.run()
    assert [h["source"] for h in strategy.history[:2]] == ["warm_start"] * 2
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
    with pytest.raises(InputError, match="min_base_share"):
        GuidedStrategy(guide, min_base_share=0.9)
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
