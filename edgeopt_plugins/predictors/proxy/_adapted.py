"""``AdaptedPredictor``: what adapting proxies to a target returns, whatever the method."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

import numpy as np

from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.spaces import SearchSpace

__all__ = ["AdaptedPredictor", "farthest_point_selection"]


class AdaptedPredictor(ABC):
    """A latency predictor for a target device, built from proxies and ``k`` target measurements.

    Attributes:
        method: How it was built (``"hierarchical"``, ``"published"``...).
        space: The search space.
        k: Number of target measurements used.
        measured: The measured architectures (canonical strings).
        estimated_spearman: Estimated rank correlation between :meth:`predict` and the
            target's true latencies over the space, from the ``k`` points only.
        spearman_std: Uncertainty (standard deviation) of that estimate.
        proxy_weights: How much each proxy contributes to the ranking (sums to 1).
    """

    method: str
    space: SearchSpace
    k: int
    measured: tuple[str, ...]
    estimated_spearman: float
    spearman_std: float
    proxy_weights: dict[str, float]

    @abstractmethod
    def predict(self, archs: Any) -> np.ndarray:
        """Predicted target latency in milliseconds, one per architecture."""

    @abstractmethod
    def _select(self, n: int, candidates: np.ndarray, *, seed: int) -> np.ndarray:
        """Positions in ``candidates`` (index matrix, measured ones removed) of the ``n`` to measure next."""

    @abstractmethod
    def _default_candidates(self) -> np.ndarray:
        """Index matrix of the architectures to choose from when none are given."""

    def spearman_interval(self, level: float = 0.9) -> tuple[float, float]:
        """A central interval for the achieved rank correlation (normal approximation)."""
        if not 0.0 < level < 1.0:
            raise InputError(f"spearman_interval: level must be in (0, 1), got {level!r}")
        from scipy import stats

        z = float(stats.norm.ppf(0.5 + level / 2))
        lo = self.estimated_spearman - z * self.spearman_std
        hi = self.estimated_spearman + z * self.spearman_std
        return max(-1.0, lo), min(1.0, hi)

    def needs_more(self, threshold: float = 0.9) -> bool:
        """Whether the estimated rank correlation is below ``threshold`` (the published decision rule)."""
        return not self.estimated_spearman >= threshold

    def next_archs(self, n: int, candidates: Iterable[Any] | np.ndarray | None = None, *, seed: int = 0) -> list[str]:
        """The ``n`` architectures whose measurement should help this predictor most.

        Args:
            n: How many to propose.
            candidates: Where to choose from (default: the proxies' reference set).
                Already measured architectures are never proposed.
            seed: Seed for tie-breaking and subsampling.

        Returns:
            Canonical strings, most useful first.
        """
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
            raise InputError(f"next_archs: n must be a non-negative integer, got {n!r}")
        idx = self._default_candidates() if candidates is None else self.space.to_indices(candidates)
        if idx.shape[0]:
            idx = np.unique(idx, axis=0)
        measured = {tuple(int(v) for v in r) for r in self.space.to_indices(list(self.measured))}
        keep = np.array([tuple(int(v) for v in r) not in measured for r in idx], dtype=bool)
        idx = idx[keep] if idx.shape[0] else idx
        if n == 0 or idx.shape[0] == 0:
            return []
        n = int(min(n, idx.shape[0]))
        picks = self._select(n, idx, seed=seed)
        return self.space.from_indices(idx[picks])

    def summary(self) -> dict[str, Any]:
        """Plain-data description (for JSON reports)."""
        lo, hi = self.spearman_interval()
        top = sorted(self.proxy_weights.items(), key=lambda kv: -abs(kv[1]))[:5]
        return {
            "method": self.method,
            "k": self.k,
            "estimated_spearman": _finite(self.estimated_spearman),
            "spearman_std": _finite(self.spearman_std),
            "spearman_interval_90": [_finite(lo), _finite(hi)],
            "top_proxy_weights": {name: round(w, 4) for name, w in top},
        }


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def farthest_point_selection(space: SearchSpace, candidates: np.ndarray, measured: np.ndarray, n: int, *, seed: int) -> np.ndarray:
    """Greedy max-min Hamming distance in one-hot space: diverse architectures, far from measured ones."""
    rng = np.random.default_rng(seed)
    if measured.shape[0]:
        dist = np.min([(candidates != m[None, :]).sum(axis=1) for m in measured], axis=0).astype(np.float64)
    else:
        dist = np.full(candidates.shape[0], np.inf)
    picks: list[int] = []
    for _ in range(n):
        noise = rng.random(candidates.shape[0]) * 1e-3  # seeded tie-break
        score = np.where(np.isinf(dist), 1e9, dist) + noise
        score[picks] = -np.inf
        best = int(np.argmax(score))
        picks.append(best)
        dist = np.minimum(dist, (candidates != candidates[best][None, :]).sum(axis=1))
    return np.array(picks, dtype=np.int64)
