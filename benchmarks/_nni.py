"""NNI searches on a table objective: the NNI rows of the sampler/strategy comparison.

A helper, not a benchmark (it is not in :data:`benchmarks.BENCHMARKS`). The
comparison benchmark calls :func:`run_stock_nni` for NNI's stock
``RegularizedEvolution`` and ``Random`` strategies and :func:`run_nni_on_table`
for any other strategy (our ``GuidedStrategy`` included), with the accuracy and
the latency of a held-out device read from the benchmark tables.

Every trial is one measurement on the target device: the evaluator looks up the
design's accuracy and latency. Stock strategies know nothing about the latency
budget, so the objective they maximise is :func:`penalised_accuracy`; the
returned sequence always carries the raw accuracy and latency.

Example:
    >>> from benchmarks._nni import run_stock_nni
    >>> archs = ["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    ...          "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"]
    >>> acc, lat = dict(zip(archs, [10.0, 60.0])), dict(zip(archs, [1.0, 3.0]))
    >>> table = lambda arch: (acc.get(arch, 50.0), lat.get(arch, 2.0))
    >>> trials = run_stock_nni("random", table, budget_ms=2.5, n_trials=3, seed=0)
    >>> len(trials), len(trials[0])
    (3, 3)
"""

from __future__ import annotations

from collections.abc import Callable

from nni.nas.strategy import Random, RegularizedEvolution, Strategy

from edgeopt_plugins.strategies import run_nni_search  # imports NNI (benchmarks may)

__all__ = ["STOCK_STRATEGIES", "penalised_accuracy", "run_nni_on_table", "run_stock_nni"]

#: Names accepted by :func:`run_stock_nni`.
STOCK_STRATEGIES = ("regularized_evolution", "random")

#: ``arch -> (accuracy, latency_ms)`` of the target device.
Table = Callable[[str], tuple[float, float]]


def penalised_accuracy(accuracy: float, latency_ms: float, budget_ms: float) -> float:
    """What a budget-unaware strategy maximises: the accuracy when the design fits the budget,
    else ``-latency_ms / budget_ms`` (below every feasible design, and better the closer it gets).

    Example:
        >>> penalised_accuracy(71.0, 2.0, 4.0), penalised_accuracy(71.0, 6.0, 4.0)
        (71.0, -1.5)
    """
    return float(accuracy) if latency_ms <= budget_ms else -float(latency_ms) / float(budget_ms)


def run_nni_on_table(
    strategy: Strategy, table: Table, *, budget_ms: float, n_trials: int
) -> list[tuple[str, float, float]]:
    """Run any NNI strategy on the NB201 table objective for ``n_trials`` measurements.

    Args:
        strategy: A fresh NNI strategy (seeded by its own ``seed``).
        table: ``arch -> (accuracy, latency_ms)`` on the target device.
        budget_ms: The latency budget (for the penalised objective).
        n_trials: Measurements to spend.

    Returns:
        ``(arch, accuracy, latency_ms)`` of every evaluated design, in evaluation order.
    """
    def evaluate(arch: str) -> dict[str, float]:
        accuracy, latency = table(arch)
        return {"default": penalised_accuracy(accuracy, latency, budget_ms), "latency_ms": float(latency)}

    result = run_nni_search("nb201", evaluate, strategy, max_trials=n_trials)
    return [(t.arch, *map(float, table(t.arch))) for t in result.trials]


def run_stock_nni(
    name: str,
    table: Table,
    *,
    budget_ms: float,
    n_trials: int,
    seed: int,
    population_size: int = 20,
    sample_size: int = 5,
) -> list[tuple[str, float, float]]:
    """Run one of NNI's stock strategies on the NB201 table objective.

    Args:
        name: ``"regularized_evolution"`` or ``"random"`` (see :data:`STOCK_STRATEGIES`).
        table: ``arch -> (accuracy, latency_ms)`` on the target device.
        budget_ms: The latency budget.
        n_trials: Measurements to spend.
        seed: Seed of the strategy.
        population_size: Regularized evolution's population. NNI's default (100,
            tournament 25) would make it random search for budgets under 100 trials.
        sample_size: Regularized evolution's tournament size.

    Returns:
        ``(arch, accuracy, latency_ms)`` of every evaluated design, in evaluation order.
    """
    if name == "regularized_evolution":
        strategy = RegularizedEvolution(population_size=population_size, sample_size=sample_size, seed=seed)
    elif name == "random":
        strategy = Random(seed=seed)
    else:
        raise ValueError(f"unknown stock NNI strategy {name!r} (expected one of {', '.join(STOCK_STRATEGIES)})")
    return run_nni_on_table(strategy, table, budget_ms=budget_ms, n_trials=n_trials)
