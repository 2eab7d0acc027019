"""Our latency predictors as an NNI ``Profiler``, and the glue that lets NNI's filters and penalties use them.

NNI's cheap estimators plug in as a ``nni.nas.profiler.Profiler`` (``profile(sample) -> float``).
NNI's ``RangeProfilerFilter`` / ``ProfilerFilter`` take a *sample* while the multi-trial
``Filter`` middleware hands over a *model*: :func:`sample_filter` bridges the two.
NNI's ``SampleProfilerPenalty`` is a one-shot loss term: :class:`PenaltyMiddleware`
applies it (or any ``(metric, sample) -> metric``) to multi-trial metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nni.mutable import Sample
from nni.nas.execution import ExecutionEngine
from nni.nas.execution.event import FinalMetricEvent, ModelEvent, ModelEventType
from nni.nas.profiler import Profiler
from nni.nas.space import ExecutableModelSpace, ModelStatus
from nni.nas.strategy.middleware import Filter, StrategyMiddleware

from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.optimizer import SearchGuide
from edgeopt_plugins.spaces import SearchSpace, get_space
from edgeopt_plugins.strategies._space import LabelsLike, NNILabels, resolve_labels, sample_to_arch

__all__ = ["LatencyProfiler", "sample_filter", "PenaltyMiddleware"]

_Callback = Callable[[ModelEvent], None]


class LatencyProfiler(Profiler):
    """An NNI profiler that predicts a sample's latency (ms) with our predictors.

    Args:
        predictor: A :class:`~edgeopt_plugins.optimizer.SearchGuide` (its screening is
            used, so it keeps learning from :meth:`SearchGuide.observe`) or any
            callable ``arch -> latency_ms`` on canonical architecture strings.
        space: Our search space; taken from the guide when ``predictor`` is one.
        labels: Sample layout of the NNI model space (default: recognised from the sample).
        upper_bound: Profile the guide's calibrated upper bound (default) instead of
            its mean prediction. Ignored for plain callables.

    Example:
        >>> from nni.nas.oneshot.pytorch.profiler import RangeProfilerFilter
        >>> profiler = LatencyProfiler(lambda arch: 1.0 + arch.count("conv_3x3"), space="nb201")
        >>> sample = {"edge_1_0": "nor_conv_3x3", "edge_2_0": "none", "edge_2_1": "none",
        ...           "edge_3_0": "none", "edge_3_1": "none", "edge_3_2": "skip_connect"}
        >>> profiler.profile(sample)
        2.0
        >>> RangeProfilerFilter(profiler, max=1.5)(sample)
        False
    """

    def __init__(
        self,
        predictor: SearchGuide | Callable[[str], float],
        *,
        space: str | SearchSpace | None = None,
        labels: LabelsLike = None,
        upper_bound: bool = True,
    ) -> None:
        super().__init__(None)  # type: ignore[arg-type]  # NNI's base ignores the model space
        if isinstance(predictor, SearchGuide):
            self._guide: SearchGuide | None = predictor
            self._fn = None
            self.space = predictor.space if space is None else get_space(space)
        elif callable(predictor):
            if space is None:
                raise InputError("LatencyProfiler: pass space= with a callable predictor (the space of its archs)")
            self._guide, self._fn = None, predictor
            self.space = get_space(space)
        else:
            raise InputError(
                f"LatencyProfiler: predictor must be a SearchGuide or a callable, got {type(predictor).__name__}"
            )
        self._labels_arg = labels
        self._labels: NNILabels | None = None
        self.upper_bound = upper_bound

    def profile(self, sample: Sample) -> float:
        """Predicted latency in ms of the design ``sample`` describes."""
        if self._labels is None:
            self._labels = resolve_labels(self.space, self._labels_arg, sample.keys())
        arch = sample_to_arch(self.space, sample, labels=self._labels)
        if self._guide is None:
            return float(self._fn(arch))  # type: ignore[misc]
        screening = self._guide.screen([arch])
        return float((screening.latency_upper_ms if self.upper_bound else screening.latency_ms)[0])


def sample_filter(
    predicate: Callable[[Sample], bool], *, metric_for_invalid: float | None = None, patience: int = 1000
) -> Filter:
    """NNI's ``Filter`` middleware for a predicate on samples (such as NNI's ``RangeProfilerFilter``).

    Args:
        predicate: ``sample -> bool``; false blocks the model before it is evaluated
            (it costs no trial and comes back to the strategy as ``Invalid``).
        metric_for_invalid: Metric given to blocked models (default: none).
        patience: Consecutive blocked models after which the search stops.

    Example:
        >>> from nni.nas.oneshot.pytorch.profiler import RangeProfilerFilter
        >>> from nni.nas.strategy import RegularizedEvolution
        >>> from nni.nas.strategy.middleware import Chain
        >>> profiler = LatencyProfiler(lambda arch: 1.0 + arch.count("conv_3x3"), space="nb201")
        >>> strategy = Chain(RegularizedEvolution(population_size=8, sample_size=2, seed=0),
        ...                  sample_filter(RangeProfilerFilter(profiler, max=3.0)))
    """
    return Filter(lambda model: bool(predicate(model.sample)), metric_for_invalid=metric_for_invalid, patience=patience)


class PenaltyMiddleware(StrategyMiddleware):
    """Rewrites every final metric with ``penalty(metric, sample)`` before the strategy sees it.

    Works with NNI's ``SampleProfilerPenalty`` (whose ``(value, details)`` result is
    unpacked; metrics are maximised, so give it a negative ``scale``) or any
    callable returning the new metric. With a metric dict only ``"default"`` changes,
    so ``"latency_ms"`` still reaches :class:`~edgeopt_plugins.strategies.GuidedStrategy`.

    Args:
        penalty: ``(metric, sample) -> new metric`` or ``-> (new metric, details)``.

    Example:
        >>> from nni.nas.oneshot.pytorch.profiler import SampleProfilerPenalty
        >>> from nni.nas.strategy import Random
        >>> from nni.nas.strategy.middleware import Chain
        >>> profiler = LatencyProfiler(lambda arch: 1.0 + arch.count("conv_3x3"), space="nb201")
        >>> penalty = SampleProfilerPenalty(profiler, baseline=3.0, scale=-10.0, nonlinear="positive")
        >>> strategy = Chain(Random(seed=0), PenaltyMiddleware(penalty))
    """

    def __init__(self, penalty: Callable[[float, Sample], Any]) -> None:
        super().__init__()
        if not callable(penalty):
            raise InputError(f"PenaltyMiddleware: penalty must be callable, got {type(penalty).__name__}")
        self.penalty = penalty

    def _initialize_engine(self, engine: ExecutionEngine) -> None:
        engine.register_model_event_callback(ModelEventType.FinalMetric, self._on_final_metric)

    def _cleanup(self) -> None:
        self.engine.unregister_model_event_callback(ModelEventType.FinalMetric, self._on_final_metric)

    def _on_final_metric(self, event: FinalMetricEvent) -> None:
        metric = event.metric
        value = metric["default"] if isinstance(metric, Mapping) else metric
        if value is None:
            return
        out = self.penalty(float(value), event.model.sample)
        out = float(out[0] if isinstance(out, tuple) else out)
        event.metric = {**metric, "default": out} if isinstance(metric, Mapping) else out

    # A middleware forwards what it does not change.
    def submit_models(self, *models: ExecutableModelSpace) -> None:
        self.engine.submit_models(*models)

    def list_models(self, status: ModelStatus | None = None) -> Iterable[ExecutableModelSpace]:
        return self.engine.list_models(status)

    def register_model_event_callback(self, event_type: ModelEventType, callback: _Callback) -> None:
        self.engine.register_model_event_callback(event_type, callback)

    def unregister_model_event_callback(self, event_type: ModelEventType, callback: _Callback) -> None:
        self.engine.unregister_model_event_callback(event_type, callback)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        """Stateless: nothing to restore."""
