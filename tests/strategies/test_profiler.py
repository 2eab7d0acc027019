"""LatencyProfiler with NNI's own RangeProfilerFilter / SampleProfilerPenalty and stock strategies."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("nni", reason="NNI is an optional extra: pip install -c constraints.txt -e '.[nni]'")

from nni.nas.oneshot.pytorch.profiler import RangeProfilerFilter, SampleProfilerPenalty  # noqa: E402
from nni.nas.strategy import RegularizedEvolution  # noqa: E402
from nni.nas.strategy.middleware import Chain  # noqa: E402

from edgeopt_plugins.exceptions import InputError  # noqa: E402
from edgeopt_plugins.strategies import (  # noqa: E402
    NB201_HUB_LABELS,
    GuidedStrategy,
    LatencyProfiler,
    PenaltyMiddleware,
    arch_to_sample,
    run_nni_search,
    sample_filter,
)
from tests.samplers._guides import SPACE, FormulaGuide, true_accuracy, true_latency  # noqa: E402
from tests.strategies.test_guided_strategy import BUDGET, evaluate  # noqa: E402

ARCHS = SPACE.sample(10, seed=3)


def test_profiles_a_guides_upper_bound_or_mean_and_any_callable():
    guide = FormulaGuide(BUDGET, bias=1.2, margin=1.1)
    upper, mean = LatencyProfiler(guide), LatencyProfiler(guide, upper_bound=False)
    plain = LatencyProfiler(lambda arch: float(true_latency([arch])[0]), space="nb201")
    for arch in ARCHS:
        ours, hub = arch_to_sample(SPACE, arch), arch_to_sample(SPACE, arch, labels=NB201_HUB_LABELS)
        truth = float(true_latency([arch])[0])
        assert upper.profile(ours) == pytest.approx(truth * 1.2 * 1.1)
        assert mean.profile(ours) == pytest.approx(truth * 1.2)
        assert LatencyProfiler(guide).profile(hub) == upper.profile(ours)  # NNI hub samples work too
        assert plain.profile(ours) == pytest.approx(truth)
    guide.observe({ARCHS[0]: float(true_latency([ARCHS[0]])[0])})  # the guide learns; the profiler follows
    assert mean.profile(arch_to_sample(SPACE, ARCHS[1])) == pytest.approx(float(true_latency([ARCHS[1]])[0]))


def test_nni_range_filter_with_regularized_evolution_keeps_every_trial_under_the_budget():
    profiler = LatencyProfiler(FormulaGuide(BUDGET, bias=1.0, margin=1.0))
    chain = Chain(
        RegularizedEvolution(population_size=8, sample_size=3, seed=0),
        sample_filter(RangeProfilerFilter(profiler, max=BUDGET)),
    )
    result = run_nni_search("nb201", evaluate, chain, max_trials=30)
    assert len(result.trials) == 30
    assert all(t.latency_ms <= BUDGET for t in result.trials)
    assert chain[1]._filter_count_total > 0  # NNI proposed over-budget designs; none cost a trial


def test_penalty_middleware_applies_nni_sample_profiler_penalty():
    profiler = LatencyProfiler(lambda arch: float(true_latency([arch])[0]), space="nb201")
    penalty = SampleProfilerPenalty(profiler, baseline=BUDGET, scale=-100.0, nonlinear="positive")
    chain = Chain(RegularizedEvolution(population_size=8, sample_size=3, seed=0), PenaltyMiddleware(penalty))
    result = run_nni_search("nb201", evaluate, chain, max_trials=20)
    for t in result.trials:
        accuracy = float(true_accuracy([t.arch])[0])
        expected = accuracy - 100.0 * max(t.latency_ms / BUDGET - 1.0, 0.0)
        assert t.metric == pytest.approx(expected) and t.latency_ms == pytest.approx(true_latency([t.arch])[0])
    assert any(t.latency_ms > BUDGET for t in result.trials)


def test_penalised_dicts_keep_the_latency_for_the_guided_strategy():
    guide = FormulaGuide(BUDGET, bias=2.0)
    chain = Chain(GuidedStrategy(guide, seed=0), PenaltyMiddleware(lambda metric, sample: metric - 1.0))
    result = run_nni_search("nb201", evaluate, chain, max_trials=6)
    assert [t.metric for t in result.trials] == pytest.approx([true_accuracy([t.arch])[0] - 1.0 for t in result.trials])
    assert guide.bias == pytest.approx(1.0) and len(guide.observed) == 6
    assert np.allclose([h["metric"] for h in chain[0].history], [t.metric for t in result.trials])


def test_bad_predictors():
    with pytest.raises(InputError, match="space="):
        LatencyProfiler(lambda arch: 1.0)
    with pytest.raises(InputError, match="SearchGuide or a callable"):
        LatencyProfiler(3.0, space="nb201")
    with pytest.raises(InputError, match="callable"):
        PenaltyMiddleware(None)
