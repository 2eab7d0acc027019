"""The numerics behind the guided samplers and strategies: calibration, local correction, surrogate,
accuracy sources and GuidedSearch's decisions (no Optuna, no NNI)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.optimizer import (
    GuidedSearch,
    LatencyCalibration,
    LatencyCorrection,
    ObjectiveSurrogate,
    Observation,
    accuracy_source,
)
from edgeopt_plugins.optimizer._surrogate import normal_scores
from tests.samplers._guides import SPACE, FormulaGuide, true_accuracy, true_latency

BUDGET = float(np.percentile(true_latency(SPACE.sample(2000, seed=1)), 40))


def test_calibration_learns_bias_and_spread_of_the_device():
    cal = LatencyCalibration()
    assert cal.p_feasible(np.array([10.0]), np.array([0.1]), 10.0)[0] == pytest.approx(0.5)
    slow = [cal.score(12.0, 10.0, 0.1)] * 40  # always 20 % slower than predicted
    cal.fit(slow)
    assert cal.mu == pytest.approx(np.log(1.2) / 0.1, rel=0.1)
    assert cal.p_feasible(np.array([9.0]), np.array([0.1]), 10.0)[0] < 0.2  # 9 ms predicted is 10.8 ms
    assert cal.upper(np.array([9.0]), np.array([0.1]), 0.95)[0] > 10.8
    noisy = LatencyCalibration()
    noisy.fit(np.random.default_rng(0).normal(0.0, 3.0, 200))  # right on average, three times less sure
    assert noisy.sigma == pytest.approx(3.0, rel=0.2) and abs(noisy.mu) < 0.5
    assert cal.score(1e-3, 10.0, 0.1) == pytest.approx(-np.log(4.0) / 0.1)  # one degenerate design is clipped


def test_calibration_forgets_old_errors():
    cal = LatencyCalibration(half_life=5)
    cal.fit([10.0] * 30 + [0.0] * 30)  # the predictor converged: recent errors are zero
    assert abs(cal.mu) < 0.5


def test_correction_learns_what_the_guide_gets_wrong_about_a_choice():
    correction = LatencyCorrection(SPACE)
    measured = SPACE.sample_indices(40, seed=0)
    slow = measured[:, 0] == 3  # this device runs a 3x3 convolution on the first edge twice as slow
    correction.fit(measured, np.where(slow, np.log(2.0), 0.0), np.full(40, 0.1))
    test = SPACE.sample_indices(200, seed=1)
    shift = correction.shift(correction.encode(test), mu=0.0)
    mine = test[:, 0] == 3
    assert shift[mine].min() > shift[~mine].max() and shift[mine].mean() - shift[~mine].mean() > 0.3
    explained = correction.shift(correction.encode(test), mu=np.log(2.0) / 0.1)  # the calibration took the mean
    assert explained[test[:, 0] != 3].max() < 0


def test_surrogate_ranks_designs_and_copes_with_outliers():
    idx = SPACE.sample_indices(60, seed=0)
    archs = SPACE.from_indices(idx)
    values = true_accuracy(archs)
    values[0] = -500.0  # a penalty value: no outlier for the normal scores
    surrogate = ObjectiveSurrogate(SPACE.cardinalities).fit(idx, values)
    test = SPACE.sample_indices(300, seed=1)
    mean, sd = surrogate.predict(test)
    rho = np.corrcoef(np.argsort(np.argsort(mean)), np.argsort(np.argsort(true_accuracy(SPACE.from_indices(test)))))
    assert rho[0, 1] > 0.5 and (sd > 0).all() and (sd <= 1.0 + 1e-9).all()
    ei = surrogate.expected_improvement(test)
    assert (ei >= 0).all() and np.argmax(ei) == np.argmax(surrogate.expected_improvement(test))
    assert normal_scores(np.array([1.0, 1.0, 5.0]))[0] == normal_scores(np.array([1.0, 1.0, 5.0]))[1]
    assert not ObjectiveSurrogate(SPACE.cardinalities).fit(idx[:1], values[:1]).fitted


def test_accuracy_sources_are_only_what_the_user_names(nb201_accuracy, data_dir):
    assert accuracy_source(None, SPACE) is None
    table = accuracy_source("table", SPACE, data_dir=data_dir)
    archs = list(nb201_accuracy.archs[:3])
    np.testing.assert_allclose(table(archs), nb201_accuracy.lookup(archs, "cifar10"))
    assert table.name == "table:cifar10"
    np.testing.assert_allclose(accuracy_source("table:cifar100", SPACE, data_dir=data_dir)(archs),
                               nb201_accuracy.lookup(archs, "cifar100"))
    assert accuracy_source(nb201_accuracy, SPACE).name == "table:cifar10"
    assert accuracy_source(lambda a: [1.0] * len(a), SPACE)(archs).tolist() == [1.0] * 3
    for bad, message in [("oracle", "accuracy must be None"), ("model", "needs a fitted ConditionedModel"),
                         ("table:top5", "unknown metric"), (3, "accuracy must be None")]:
        with pytest.raises(InputError, match=message):
            src = accuracy_source(bad, SPACE, data_dir=data_dir)
    src = accuracy_source(lambda a: [1.0], SPACE)
    with pytest.raises(InputError, match="returned 1 values for 3"):
        src(archs)


def _history(search, archs, source="guided"):
    return [Observation(a, float(true_latency([a])[0]), float(true_accuracy([a])[0]), source) for a in archs]


def test_proposals_are_new_and_respect_fixed_decisions():
    search = GuidedSearch(FormulaGuide(BUDGET, bias=1.0, accuracy=False), seed=0)
    tried = SPACE.sample(30, seed=3)
    search.tell(_history(search, tried))
    proposal = search.propose(tried)
    assert proposal.arch not in tried and proposal.source == "guided"
    fixed = search.propose(tried, fixed={0: 3, 5: 1})
    idx = SPACE.indices_of(fixed.arch)
    assert idx[0] == 3 and idx[5] == 1
    assert search.plan() in ("guided", "base")


def test_base_proposals_pass_repair_or_audit():
    search = GuidedSearch(FormulaGuide(BUDGET, bias=1.0, accuracy=False), seed=0)
    all_archs = SPACE.from_indices(SPACE.all_indices())
    lat = true_latency(all_archs)
    fits, too_slow = (all_archs[int(np.argmin(np.abs(lat - k * BUDGET)))] for k in (0.5, 1.3))
    assert search.screen_base(fits, []).source == "base"
    repaired = search.screen_base(too_slow, [])
    assert repaired.source == "repaired" and repaired.p_feasible >= 0.5
    assert np.sum(np.array(SPACE.indices_of(repaired.arch)) != SPACE.indices_of(too_slow)) <= 2  # nearest
    assert search.screen_base(fits, [fits]).arch != fits  # a repeat is repaired too
    history = [Observation(a, float(true_latency([a])[0]), 1.0, "repaired") for a in SPACE.sample(3, seed=4)]
    search.tell(history)
    assert search.screen_base(too_slow, []).source == "audit"  # every fourth rejection is measured


def test_designs_like_those_that_failed_to_run_are_avoided():
    search = GuidedSearch(FormulaGuide(BUDGET, bias=1.0, accuracy=False), seed=0)
    tried = SPACE.sample(40, seed=6)
    broken = lambda a: "avg_pool_3x3" in a  # noqa: E731  (the board cannot run average pooling)
    search.tell([Observation(a, None, None, "guided", failed=True) if broken(a)
                 else Observation(a, float(true_latency([a])[0]), float(true_accuracy([a])[0]), "guided")
                 for a in tried])
    fresh = [a for a in SPACE.sample(400, seed=7) if a not in tried and true_latency([a])[0] < 0.5 * BUDGET]
    p = {a: q.p_feasible for a, q in zip(fresh, search.screen(fresh))}
    assert np.mean([p[a] for a in fresh if broken(a)]) < np.mean([p[a] for a in fresh if not broken(a)]) - 0.3
    assert not broken(search.propose(tried).arch)


def test_search_pickles_and_goes_on_identically():
    search = GuidedSearch(FormulaGuide(BUDGET, bias=1.0, accuracy=False), seed=0)
    tried = SPACE.sample(20, seed=5)
    search.tell(_history(search, tried))
    clone = pickle.loads(pickle.dumps(search))
    assert clone.propose(tried).arch == search.propose(tried).arch


def test_bad_options():
    guide = FormulaGuide(BUDGET)
    with pytest.raises(InputError, match="min_p_feasible"):
        GuidedSearch(guide, min_p_feasible=0.0)
    with pytest.raises(InputError, match="min_base_share"):
        GuidedSearch(guide, min_base_share=0.6)
    with pytest.raises(InputError, match="n_warm_start"):
        GuidedSearch(guide, n_warm_start=-1)
