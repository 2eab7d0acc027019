"""``ArchEvaluator``: score designs from their architecture string, without building a model.

How an evaluator reports latency (the convention every strategy here reads):
it reports its final result as NNI's multi-metric dict,
``nni.report_final_result({"default": accuracy, "latency_ms": measured})``.
NNI maximises ``"default"`` (stored as the model's metric); the other keys reach
every engine callback untouched, so :class:`~edgeopt_plugins.strategies.GuidedStrategy`
and :func:`~edgeopt_plugins.strategies.run_nni_search` read ``"latency_ms"`` there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Union

import nni
from nni.nas.evaluator import Evaluator
from nni.nas.space import ExecutableModelSpace

from edgeopt_plugins._values import finite_or_none
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.spaces import SearchSpace, get_space
from edgeopt_plugins.strategies._space import LabelsLike, sample_to_arch

__all__ = ["ArchEvaluator", "LATENCY_KEY", "reported_value"]

#: Key of the measured latency in a reported metric dict.
LATENCY_KEY = "latency_ms"

Metric = Union[float, Mapping[str, Any]]


def reported_value(metric: Any, key: str) -> float | None:
    """A finite number under ``key`` of a reported metric, or ``None``.

    Args:
        metric: What an evaluator reported: a number (its ``"default"``) or a dict.
        key: ``"default"``, ``"latency_ms"`` or any other key.

    Example:
        >>> reported_value({"default": 71.5, "latency_ms": 3.2}, "latency_ms")
        3.2
        >>> reported_value(71.5, "latency_ms") is None
        True
    """
    return finite_or_none(metric.get(key) if isinstance(metric, Mapping) else (metric if key == "default" else None))



class ArchEvaluator(Evaluator):
    """An NNI evaluator that calls ``function(arch)`` on the canonical architecture string.

    No PyTorch model is built (as NNI's own benchmark evaluator does), so a
    table lookup, a predictor or a measurement on a device is all a trial costs.

    Args:
        function: ``arch -> accuracy`` or ``arch -> {"default": accuracy, "latency_ms": ms, ...}``.
            Exceptions and non-finite accuracies count as failed trials.
        space: Our search space (name or instance).
        labels: Sample layout of the NNI model space (default: recognised from the sample).

    Example:
        >>> from edgeopt_plugins.strategies import nni_space
        >>> from nni.nas.space import RawFormatModelSpace
        >>> evaluator = ArchEvaluator(lambda arch: {"default": arch.count("conv"), "latency_ms": 1.0}, space="nb201")
        >>> executable = RawFormatModelSpace(nni_space("nb201"), evaluator)
    """

    def __init__(
        self, function: Callable[[str], Metric], *, space: str | SearchSpace, labels: LabelsLike = None
    ) -> None:
        if not callable(function):
            raise InputError(f"ArchEvaluator: function must be callable, got {type(function).__name__}")
        self.function = function
        self.space = get_space(space)
        self.labels = labels

    def extra_repr(self) -> str:
        return f"function={getattr(self.function, '__name__', self.function)!r}, space={self.space.name!r}"

    def evaluate(self, model: str) -> Metric:
        """Score one architecture (the canonical string): what ``function`` returns, checked."""
        metric = self.function(model)
        if isinstance(metric, Mapping):
            if "default" not in metric:
                raise InputError(f"ArchEvaluator: metric dict for {model} has no 'default' key: {dict(metric)}")
            return dict(metric)
        return float(metric)

    def _execute(self, model: ExecutableModelSpace) -> Metric:
        metric = self.evaluate(sample_to_arch(self.space, model.sample, labels=self.labels))
        nni.report_final_result(metric)
        return metric
