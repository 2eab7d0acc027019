"""``ConditionedGuide``: approach 2 (the device-conditioned model) as a :class:`SearchGuide`."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from edgeopt_plugins._values import implausible
from edgeopt_plugins.devices import DeviceProfile
from edgeopt_plugins.exceptions import EdgeOptWarning, InfeasibleBudgetError, InputError
from edgeopt_plugins.optimizer._guide import GuideBase, Screening
from edgeopt_plugins.optimizer._model import ConditionedModel
from edgeopt_plugins.predictors._calibration import check_confidence
from edgeopt_plugins.spaces import ArchLike

__all__ = ["ConditionedGuide", "check_budget"]


def check_budget(value: Any, name: str = "latency_budget_ms") -> float:
    """A budget must be a positive, finite number."""
    try:
        budget = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a positive number, got {value!r}") from None
    if not math.isfinite(budget) or budget <= 0:
        raise InputError(f"{name} must be a positive number, got {value!r}")
    if reason := implausible("latency_ms", budget, name):
        raise InputError(reason)
    return budget


class ConditionedGuide(GuideBase):
    """Warm start, screening and online adaptation from a fitted :class:`ConditionedModel`.

    The warm-start designs are the learned optimizer's recommendations for the
    device; screening uses the calibrated latency upper bound and the accuracy
    predictor; every measured latency extends the device profile, and the device
    is re-embedded (a small linear solve).

    Args:
        model: A fitted model or its folder.
        profile: The target's profile (a :class:`DeviceProfile`, a CSV path or ``{arch: latency_ms}``).
        latency_budget_ms: The budget checked against the upper bound.
        confidence: Confidence of the upper bound.
        candidates: Only warm-start with these architectures (the deployable ones).
    """

    def __init__(
        self,
        model: ConditionedModel | str | os.PathLike[str],
        profile: DeviceProfile | str | os.PathLike[str] | dict[str, float],
        latency_budget_ms: float,
        *,
        confidence: float = 0.95,
        candidates: Iterable[ArchLike] | None = None,
    ) -> None:
        if not isinstance(model, (ConditionedModel, str, os.PathLike)):
            raise InputError(f"model must be a ConditionedModel or the folder of one, got {type(model).__name__}")
        self.model = model if isinstance(model, ConditionedModel) else ConditionedModel.load(model)
        super().__init__(self.model.space, check_budget(latency_budget_ms))
        self.confidence = check_confidence(confidence)
        self.profile = DeviceProfile.coerce(profile, self.space)
        self.candidates = None if candidates is None else [self.space.format(a) for a in candidates]
        self._embedding = self.model.embed(self.profile)

    def _refit(self, measurements: dict[str, float]) -> None:
        extended = self.profile.extended(list(measurements), list(measurements.values()))
        self._embedding = self.model.embed(extended)
        self._forget_ranking()

    def _ranked(self, n: int, confidence: float) -> tuple[list[str], bool]:
        try:
            designs = self.model.recommend(self._embedding, latency_budget_ms=self.latency_budget_ms,
                                           confidence=confidence, candidates=self.candidates, top_k=max(n, 1))
        except InfeasibleBudgetError as err:
            if confidence == self.confidence:
                warnings.warn(f"edgeopt: {err}; no warm start", EdgeOptWarning, stacklevel=3)
            return [], True
        return [d.arch for d in designs], len(designs) < max(n, 1)

    def screen(self, archs: Sequence[str]) -> Screening:
        with self._lock:
            embedding = self._embedding
        mean, upper = self.model.predict(list(archs), embedding, confidence=self.confidence)
        accuracy = self.model.predict_accuracy(list(archs))
        return Screening(np.asarray(mean, dtype=float).reshape(-1), np.asarray(upper, dtype=float).reshape(-1),
                         np.asarray(accuracy, dtype=float).reshape(-1))
