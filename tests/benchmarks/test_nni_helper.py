"""benchmarks._nni: NNI's stock strategies on the NB201 table objective (the comparison's NNI rows)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("nni", reason="NNI is an optional extra: pip install -c constraints.txt -e '.[nni]'")

from benchmarks._nni import STOCK_STRATEGIES, penalised_accuracy, run_stock_nni  # noqa: E402


@pytest.fixture(scope="module")
def table(nb201_latency, nb201_accuracy):
    device = nb201_latency.devices[0]
    latency = dict(zip(nb201_latency.archs, nb201_latency.column(device)))
    accuracy = dict(zip(nb201_accuracy.archs, nb201_accuracy.column("cifar10")))
    budget = float(np.percentile(list(latency.values()), 20))
    return (lambda arch: (accuracy[arch], latency[arch])), budget


@pytest.mark.parametrize("name", STOCK_STRATEGIES)
def test_stock_strategies_return_what_they_measured_deterministically(name, table):
    lookup, budget = table
    trials = run_stock_nni(name, lookup, budget_ms=budget, n_trials=25, seed=3, population_size=8, sample_size=3)
    assert len(trials) == 25 and len({a for a, _, _ in trials}) == 25
    assert all((acc, lat) == lookup(arch) for arch, acc, lat in trials)
    again = run_stock_nni(name, lookup, budget_ms=budget, n_trials=25, seed=3, population_size=8, sample_size=3)
    assert again == trials


def test_penalty_ranks_every_feasible_design_first_and_bad_names():
    assert penalised_accuracy(1.0, 5.0, 5.0) > penalised_accuracy(99.0, 5.1, 5.0) > penalised_accuracy(99.0, 9.0, 5.0)
    with pytest.raises(ValueError, match="unknown stock"):
        run_stock_nni("tpe", lambda a: (1.0, 1.0), budget_ms=1.0, n_trials=1, seed=0)
