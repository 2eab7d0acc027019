"""``run_nni_search``: run any NNI multi-trial strategy in this process, safely.

NNI's ``NasExperiment`` is avoided on purpose: without a config it starts the
NNI manager with its web server, and even in sequential mode it writes under
``~/nni-experiments``. The recipe here is NNI's own lower layer: the strategy is
initialised on an executable model space and a ``SequentialExecutionEngine``, then
run; every trial is evaluated synchronously in the calling thread. Nothing
listens on a socket and nothing is written to disk.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Union

import nni
from nni.nas.evaluator import Evaluator
from nni.nas.execution import SequentialExecutionEngine
from nni.nas.execution.event import FinalMetricEvent, ModelEventType, TrainingEndEvent
from nni.nas.space import BaseModelSpace, ExecutableModelSpace, ModelStatus, RawFormatModelSpace
from nni.nas.strategy.base import Strategy

from edgeopt_plugins.exceptions import InputError, ModelFormatError
from edgeopt_plugins.spaces import SearchSpace, get_space
from edgeopt_plugins.strategies._evaluator import LATENCY_KEY, ArchEvaluator, Metric, reported_value
from edgeopt_plugins.strategies._space import LabelsLike, nni_space, resolve_labels, sample_to_arch

__all__ = ["NNITrial", "NNISearchResult", "run_nni_search"]

EvaluatorLike = Union[Evaluator, Callable[[str], Metric]]


@dataclass(frozen=True)
class NNITrial:
    """One evaluated design.

    Attributes:
        arch: Canonical architecture string.
        metric: The value the strategy maximised (NNI's ``"default"``, after any
            penalty middleware), or ``None`` when the trial failed.
        latency_ms: The ``"latency_ms"`` the evaluator reported, if any.
        status: ``"trained"`` or ``"failed"``.
    """

    arch: str
    metric: float | None
    latency_ms: float | None
    status: str


@dataclass
class NNISearchResult:
    """What :func:`run_nni_search` returns.

    Attributes:
        trials: Evaluated designs in evaluation order (resumed runs include the earlier ones).
        strategy: The strategy after its run (``strategy.list_models()`` works).
        engine: The sequential engine it ran on.
    """

    trials: list[NNITrial]
    strategy: Strategy
    engine: SequentialExecutionEngine = field(repr=False)

    def best(self, latency_budget_ms: float | None = None) -> NNITrial | None:
        """The best *feasible* trial: the highest metric among trials whose reported latency fits the budget.

        Args:
            latency_budget_ms: The budget (default: the strategy's guide's, if it has one). Trials that
                reported a latency over it are left out; trials that reported none are kept (their
                latency is unknown). Without any budget: the trial with the highest metric.

        Returns:
            The earliest among equals, or ``None`` when no trial qualifies.
        """
        budget = latency_budget_ms
        if budget is None:
            guide = getattr(self.strategy, "guide", None)
            budget = getattr(guide, "latency_budget_ms", None)
        done = [t for t in self.trials if t.metric is not None
                and (budget is None or t.latency_ms is None or t.latency_ms <= budget)]
        return max(done, key=lambda t: t.metric) if done else None  # type: ignore[arg-type, return-value]

    def state_dict(self) -> dict[str, Any]:
        """Checkpoint to pass back as ``run_nni_search(..., state=...)``.

        Plain JSON types when the strategy's own state is (as :class:`GuidedStrategy`'s is;
        NNI's stock strategies keep numpy arrays in theirs).
        """
        return {
            "engine": self.engine.state_dict(),
            "strategy": self.strategy.state_dict(),
            "trials": [asdict(t) for t in self.trials],
        }


def run_nni_search(
    model_space: str | SearchSpace | BaseModelSpace,
    evaluator: EvaluatorLike,
    strategy: Strategy,
    *,
    max_trials: int,
    space: str | SearchSpace | None = None,
    labels: LabelsLike = None,
    state: Mapping[str, Any] | None = None,
    continue_on_failure: bool = True,
    quiet: bool = True,
) -> NNISearchResult:
    """Run an NNI strategy in-process for ``max_trials`` evaluations and return what it evaluated.

    Args:
        model_space: Our search space (name or instance; the torch-free
            :func:`nni_space` is built from it) or an NNI model space such as
            NNI's hub ``NasBench201()``.
        evaluator: A callable ``arch -> accuracy | {"default": accuracy, "latency_ms": ms}``
            on canonical architecture strings (wrapped in :class:`ArchEvaluator`), or
            any NNI ``Evaluator`` (e.g. a ``FunctionalEvaluator`` that trains the model).
        strategy: A fresh NNI strategy (``GuidedStrategy``, ``RegularizedEvolution``,
            a ``Chain`` with middlewares, ...). Strategies run once: create a new one to resume.
        max_trials: Evaluations in total (including those of a resumed ``state``).
        space: Our search space for an NNI ``model_space`` (needed to name its designs).
        labels: Sample layout of the NNI model space (default: recognised).
        state: A checkpoint from :meth:`NNISearchResult.state_dict` to resume from.
        continue_on_failure: Record an evaluator exception as a failed trial and go on
            (NNI's default would stop the search).
        quiet: Hide NNI's INFO and WARNING logs during the run (errors still show).

    Returns:
        The evaluated designs with their metrics, the strategy and the engine.

    Raises:
        InputError: for a bad ``max_trials``, a missing ``space`` or an evaluator of the wrong kind.
        ModelFormatError: for a ``state`` that is not a checkpoint of this function.

    Example:
        >>> from nni.nas.strategy import Random
        >>> result = run_nni_search("nb201", lambda arch: arch.count("conv"), Random(seed=0), max_trials=5)
        >>> len(result.trials), result.trials[0].status
        (5, 'trained')
    """
    if not isinstance(max_trials, int) or isinstance(max_trials, bool) or max_trials < 1:
        raise InputError(f"run_nni_search: max_trials must be a positive integer, got {max_trials!r}")
    base, search_space = _model_space(model_space, space)
    layout = resolve_labels(search_space, labels, base.simplify().keys())
    if isinstance(evaluator, Evaluator):
        executable = RawFormatModelSpace(base, evaluator)
    elif callable(evaluator):
        executable = RawFormatModelSpace(base, ArchEvaluator(evaluator, space=search_space, labels=layout))
    else:
        raise InputError(
            f"run_nni_search: evaluator must be an NNI Evaluator or a callable, got {type(evaluator).__name__}"
        )
    if state is not None and not {"engine", "strategy", "trials"} <= set(state):
        raise ModelFormatError(f"run_nni_search: state needs 'engine', 'strategy' and 'trials', got {sorted(state)}")
    engine = SequentialExecutionEngine(max_model_count=max_trials, continue_on_failure=continue_on_failure)
    trials = [NNITrial(**t) for t in state["trials"]] if state is not None else []
    latency: dict[int, float | None] = {}

    def on_final_metric(event: FinalMetricEvent) -> None:
        latency[id(event.model)] = reported_value(event.metric, LATENCY_KEY)

    def on_training_end(event: TrainingEndEvent) -> None:
        model = event.model
        metric = reported_value(model.metric, "default") if event.status == ModelStatus.Trained else None
        trials.append(
            NNITrial(
                arch=sample_to_arch(search_space, model.sample, labels=layout),
                metric=metric,
                latency_ms=latency.pop(id(model), None),
                status="trained" if metric is not None else "failed",
            )
        )

    # Registered first, so they see each raw report before any middleware rewrites it.
    engine.register_model_event_callback(ModelEventType.FinalMetric, on_final_metric)
    engine.register_model_event_callback(ModelEventType.TrainingEnd, on_training_end)
    with _nni_logging(logging.ERROR if quiet else None), _trial_api_restored():
        if state is not None:
            with _nni_logging(logging.ERROR):  # "history is not recovered": we keep our own
                engine.load_state_dict(state["engine"])
        strategy.initialize(executable, engine)
        if state is not None:
            strategy.load_state_dict(state["strategy"])
        strategy.run()
    return NNISearchResult(trials, strategy, engine)


def _model_space(
    model_space: str | SearchSpace | BaseModelSpace, space: str | SearchSpace | None
) -> tuple[BaseModelSpace, SearchSpace]:
    """The NNI model space to search and our space that names its designs."""
    if isinstance(model_space, (str, SearchSpace)):
        ours = get_space(model_space)
        if space is not None and get_space(space) is not ours:
            raise InputError(f"run_nni_search: space={space!r} differs from the model space {ours.name!r}")
        return nni_space(ours), ours
    if isinstance(model_space, ExecutableModelSpace) or not isinstance(model_space, BaseModelSpace):
        raise InputError(
            "run_nni_search: model_space must be a search space name, a SearchSpace or an NNI model space "
            f"(not yet bound to an evaluator), got {type(model_space).__name__}"
        )
    if space is None:
        raise InputError("run_nni_search: pass space= (e.g. 'nb201') to name the designs of an NNI model space")
    return model_space, get_space(space)


@contextlib.contextmanager
def _nni_logging(level: int | None) -> Iterator[None]:
    """Raise the level of NNI's loggers for a while (``None``: leave it alone)."""
    logger = logging.getLogger("nni")
    previous = logger.level
    if level is not None and logger.getEffectiveLevel() < level:
        logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


@contextlib.contextmanager
def _trial_api_restored() -> Iterator[None]:
    """Put NNI's trial globals back: the engine leaves the last model as the "current parameter",
    after which ``nni.get_current_parameter()`` lies and ``Evaluator.mock_runtime`` refuses to run."""
    params, seq = nni.trial._params, nni.trial._intermediate_seq
    try:
        yield
    finally:
        nni.trial._params, nni.trial._intermediate_seq = params, seq
