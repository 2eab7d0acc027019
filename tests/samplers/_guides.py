"""A transparent SearchGuide for sampler tests: latency from a formula, with a known bias."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from edgeopt_plugins.optimizer import GuideBase, Screening
from edgeopt_plugins.spaces import get_space

SPACE = get_space("nb201")


def true_latency(archs: Sequence[str] | np.ndarray) -> np.ndarray:
    """A synthetic device: 1 ms plus the space's MFLOPs scaled (strings or an index matrix)."""
    return 1.0 + SPACE.flops(archs if isinstance(archs, np.ndarray) else list(archs)) / 20.0


def true_accuracy(archs: Sequence[str]) -> np.ndarray:
    """Synthetic accuracy: more convolution is better, with a per-arch wiggle."""
    costs = SPACE.costs(list(archs))
    idx = SPACE.to_indices(list(archs))
    return 80.0 + 2.0 * costs[:, 5] + 1.0 * costs[:, 4] + 0.01 * (idx * [1, 2, 3, 4, 5, 6]).sum(axis=1)


class FormulaGuide(GuideBase):
    """Predicts the true latency times ``bias`` until it has seen measurements, then learns the bias.

    ``accuracy=True`` names the true accuracy (the user said where accuracy comes from);
    ``False`` leaves it unknown; a callable names that accuracy instead.
    """

    def __init__(self, budget_ms: float | None, *, bias: float = 1.3, margin: float = 1.05,
                 accuracy: bool | Callable[[Sequence[str]], np.ndarray] = True, learn: bool = True) -> None:
        super().__init__(SPACE, budget_ms)
        self.bias = bias
        self.margin = margin
        self.refits = 0
        self.learn = learn
        self._accuracy = true_accuracy if accuracy is True else (accuracy or None)

    def _refit(self, measurements: dict[str, float]) -> None:
        self.refits += 1
        if self.learn:
            archs = list(measurements)
            ratio = np.array(list(measurements.values())) / true_latency(archs)
            self.bias = float(np.exp(np.mean(np.log(ratio))))
            self._forget_ranking()

    def screen(self, archs: Sequence[str]) -> Screening:
        mean = true_latency(archs) * self.bias
        return Screening(mean, mean * self.margin, None if self._accuracy is None else self._accuracy(archs))

    def latency_of(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = true_latency(indices) * self.bias
        return mean, mean * self.margin

    def warm_start(self, n: int, *, confidence: float | None = None) -> list[str]:
        if self._accuracy is None or self.latency_budget_ms is None:
            return []
        archs = SPACE.sample(400, seed=0)
        s = self.screen(archs)
        bound = s.latency_ms if confidence is not None and confidence <= 0.5 else s.latency_upper_ms
        ok = np.flatnonzero(bound <= self.latency_budget_ms)
        order = ok[np.argsort(-s.accuracy[ok])]
        return [archs[i] for i in order[:n]]
