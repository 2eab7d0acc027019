"""A transparent SearchGuide for sampler tests: latency from a formula, with a known bias."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgeopt_plugins.optimizer import GuideBase, Screening
from edgeopt_plugins.spaces import get_space

SPACE = get_space("nb201")


def true_latency(archs: Sequence[str]) -> np.ndarray:
    """A synthetic device: 1 ms plus the space's MFLOPs scaled."""
    return 1.0 + SPACE.flops(list(archs)) / 20.0


def true_accuracy(archs: Sequence[str]) -> np.ndarray:
    """Synthetic accuracy: more convolution is better, with a per-arch wiggle."""
    costs = SPACE.costs(list(archs))
    idx = SPACE.to_indices(list(archs))
    return 80.0 + 2.0 * costs[:, 5] + 1.0 * costs[:, 4] + 0.01 * (idx * [1, 2, 3, 4, 5, 6]).sum(axis=1)


class FormulaGuide(GuideBase):
    """Predicts the true latency times ``bias`` until it has seen measurements, then learns the bias."""

    def __init__(self, budget_ms: float | None, *, bias: float = 1.3, margin: float = 1.05) -> None:
        super().__init__(SPACE, budget_ms)
        self.bias = bias
        self.margin = margin
        self.refits = 0

    def _refit(self, measurements: dict[str, float]) -> None:
        archs = list(measurements)
        ratio = np.array(list(measurements.values())) / true_latency(archs)
        self.bias = float(np.exp(np.mean(np.log(ratio))))
        self.refits += 1

    def screen(self, archs: Sequence[str]) -> Screening:
        mean = true_latency(archs) * self.bias
        return Screening(mean, mean * self.margin, true_accuracy(archs))

    def warm_start(self, n: int, *, confidence: float | None = None) -> list[str]:
        archs = SPACE.sample(400, seed=0)
        s = self.screen(archs)
        bound = s.latency_ms if confidence is not None and confidence <= 0.5 else s.latency_upper_ms
        ok = np.flatnonzero(bound <= self.latency_budget_ms)
        order = ok[np.argsort(-s.accuracy[ok])]
        return [archs[i] for i in order[:n]]
