"""``DeviceConditionedStrategy``: approach 2 as an NNI strategy."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from edgeopt_plugins.optimizer import AccuracySpec, ConditionedGuide, ConditionedModel
from edgeopt_plugins.spaces import ArchLike
from edgeopt_plugins.strategies._strategy import GuidedStrategy

__all__ = ["DeviceConditionedStrategy"]


class DeviceConditionedStrategy(GuidedStrategy):
    """An NNI 3.0 strategy for one target device, seeded and screened by a fitted model.

    Guided proposals use the model's calibrated latency bound (recalibrated on the
    device's measurements) and, only when you name it (``accuracy="model"``, a table
    or a function), an accuracy; otherwise the objective is learned from the reported
    metrics. Aging evolution supplies the base proposals (see :class:`GuidedStrategy`).
    Every latency the evaluator reports (``{"default": accuracy, "latency_ms": ms}``)
    refines the device's representation.

    Args:
        model: A fitted :class:`~edgeopt_plugins.optimizer.ConditionedModel` or its folder.
        profile: The device: a :class:`~edgeopt_plugins.devices.DeviceProfile`, a CSV path
            or ``{arch: latency_ms}``.
        latency_budget_ms: The budget the upper bound must fit.
        confidence: Confidence of the upper bound.
        candidates: Only guide towards these (deployable) architectures.
        accuracy: Where accuracy comes from (default ``None``: unknown, learned online).
        data_dir: Benchmark data folder (for ``accuracy="table"``).
        **kwargs: Options of :class:`GuidedStrategy` (``n_warm_start``, ``population_size``,
            ``sample_size``, ``mutation_prob``, ``labels``, ``latency_from``, ``seed``, ...).

    Example:
        >>> from edgeopt_plugins.strategies import DeviceConditionedStrategy, run_nni_search
        >>> strategy = DeviceConditionedStrategy(model="model/", profile="phone.csv",
        ...                                      latency_budget_ms=20.0, seed=0)  # doctest: +SKIP
        >>> result = run_nni_search("nb201", evaluate, strategy, max_trials=30)  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        model: ConditionedModel | str | os.PathLike[str],
        profile: Any,
        latency_budget_ms: float,
        confidence: float = 0.95,
        candidates: Iterable[ArchLike] | None = None,
        accuracy: AccuracySpec = None,
        data_dir: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        guide = ConditionedGuide(model, profile, latency_budget_ms, confidence=confidence, candidates=candidates,
                                 accuracy=accuracy, data_dir=data_dir)
        super().__init__(guide, **kwargs)
