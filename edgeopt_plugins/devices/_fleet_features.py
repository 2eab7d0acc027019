"""Architecture features of the simulated fleet's latency model.

Log latency on a device is modelled as a linear function of

- the one-hot choices of every decision (per-operation costs),
- the one-hot choice *pairs* of a few decision pairs (interactions), screened from
  the real data by :func:`screen_pairs`,
- the standardised ``log1p`` of the space's analytic costs (FLOPs, params, ...),

plus a device-specific residual on :meth:`ArchFeatures.residual`: pseudo-random
standard-normal features of each architecture, derived by hashing its choice
indices, so that any architecture of the space gets the same values every time,
in any batch, without storing anything per architecture.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from edgeopt_plugins.spaces import SearchSpace

__all__ = ["ArchFeatures", "screen_pairs", "ridge_fit"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a ``uint64`` array (wrapping arithmetic)."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _pair_codes(indices: np.ndarray, cards: np.ndarray, pair: tuple[int, int]) -> np.ndarray:
    i, j = pair
    return indices[:, i] * cards[j] + indices[:, j]


@dataclass(frozen=True, eq=False)
class ArchFeatures:
    """The feature map of one space (fixed at fit time, saved with the fleet).

    Attributes:
        space: The search space.
        pairs: Decision pairs ``(i, j)`` with interaction features.
        cost_mean: Mean of ``log1p(costs)`` over the fit's architectures.
        cost_std: Their standard deviation (1 where constant).
        residual_dim: Number of hashed residual features.
        salt: Seed of the residual hash.
    """

    space: SearchSpace
    pairs: tuple[tuple[int, int], ...]
    cost_mean: np.ndarray
    cost_std: np.ndarray
    residual_dim: int
    salt: int

    @classmethod
    def for_archs(
        cls,
        space: SearchSpace,
        indices: np.ndarray,
        pairs: tuple[tuple[int, int], ...],
        *,
        residual_dim: int,
        salt: int,
    ) -> ArchFeatures:
        """Features whose cost standardisation is taken from ``indices``."""
        logc = np.log1p(space.costs(indices))
        std = logc.std(axis=0)
        return cls(space, tuple(pairs), logc.mean(axis=0), np.where(std > 0, std, 1.0), int(residual_dim), int(salt))

    @property
    def shape_width(self) -> int:
        """Number of shape features (one-hot + pairs + costs)."""
        cards = self.space.cardinalities
        pair_width = sum(int(cards[i] * cards[j]) for i, j in self.pairs)
        return int(self.space.one_hot_width + pair_width + len(self.cost_mean))

    def shape(self, indices: np.ndarray) -> np.ndarray:
        """Shape features ``(n, shape_width)``, float32."""
        cards = self.space.cardinalities
        n = len(indices)
        blocks = [self.space.one_hot(indices)]
        for pair in self.pairs:
            width = int(cards[pair[0]] * cards[pair[1]])
            block = np.zeros((n, width), dtype=np.float32)
            block[np.arange(n), _pair_codes(indices, cards, pair)] = 1.0
            blocks.append(block)
        costs = (np.log1p(self.space.costs(indices)) - self.cost_mean) / self.cost_std
        blocks.append(costs.astype(np.float32))
        return np.concatenate(blocks, axis=1)

    def residual(self, indices: np.ndarray) -> np.ndarray:
        """Hashed standard-normal features ``(n, residual_dim)``, float32, fixed per architecture."""
        h = _splitmix(np.full(len(indices), self.salt, dtype=np.uint64))
        for j in range(indices.shape[1]):
            h = _splitmix(h ^ (indices[:, j].astype(np.uint64) + np.uint64(j + 1) * np.uint64(0x100000001B3)))
        k = np.arange(self.residual_dim, dtype=np.uint64)
        bits = _splitmix(h[:, None] + k[None, :] * np.uint64(0xD1B54A32D192ED03))
        uniform = ((bits >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
        return ndtri(uniform).astype(np.float32)

    def all(self, indices: np.ndarray) -> np.ndarray:
        """Shape and residual features side by side ``(n, shape_width + residual_dim)``, float32."""
        return np.concatenate([self.shape(indices), self.residual(indices)], axis=1)

    def weight_mbytes(self, indices: np.ndarray) -> np.ndarray:
        """Weight bytes read per inference (MB): the space's ``weight_mbytes``, else 4 bytes per parameter."""
        costs = self.space.costs(indices)
        names = self.space.cost_names
        if "weight_mbytes" in names:
            return costs[:, names.index("weight_mbytes")]
        return 4.0 * costs[:, names.index("mparams")]


def ridge_fit(x: np.ndarray, y: np.ndarray, *, alpha: float) -> np.ndarray:
    """Ridge regression with an unpenalised intercept; returns ``(1 + width, n_targets)``.

    The penalty is ``alpha * n`` on every feature coefficient (``alpha`` is per row).
    """
    design = np.concatenate([np.ones((len(x), 1)), x.astype(np.float64)], axis=1)
    gram = design.T @ design
    penalty = np.full(design.shape[1], alpha * len(x))
    penalty[0] = 0.0
    gram[np.diag_indices_from(gram)] += penalty
    return np.linalg.solve(gram, design.T @ y)


def screen_pairs(
    space: SearchSpace,
    indices: np.ndarray,
    residuals: np.ndarray,
    *,
    threshold: float,
    max_pairs: int,
    max_width: int,
) -> tuple[tuple[int, int], ...]:
    """Decision pairs whose interaction explains the residuals of a main-effects fit.

    For every pair, the residuals' between-cell variance (cells = choice pairs) is
    compared with what pure noise would give for the same degrees of freedom, pooled
    over the devices (an F-like ratio; about 1 under no interaction). Pairs above
    ``threshold`` are kept, strongest first, up to ``max_pairs`` pairs and
    ``max_width`` interaction features in total.

    Args:
        space: The search space.
        indices: Choice-index matrix ``(n, n_decisions)`` of the fit rows.
        residuals: ``(n, n_devices)`` residuals of a main-effects fit (no NaN).
        threshold: Minimum ratio.
        max_pairs: Most pairs kept.
        max_width: Most interaction features kept.
    """
    cards = space.cardinalities
    n = len(indices)
    var = residuals.var(axis=0)
    var = np.where(var > 0, var, 1.0)
    scored = []
    for pair in itertools.combinations(range(len(cards)), 2):
        cells = int(cards[pair[0]] * cards[pair[1]])
        codes = _pair_codes(indices, cards, pair)
        count = np.bincount(codes, minlength=cells).astype(np.float64)
        sums = np.stack(
            [np.bincount(codes, weights=residuals[:, d], minlength=cells) for d in range(residuals.shape[1])], axis=1
        )
        between = (sums**2 / np.maximum(count, 1.0)[:, None]).sum(axis=0) / (var * n)
        dof = max(1, int((count > 0).sum()) - int(cards[pair[0]]) - int(cards[pair[1]]) + 1)
        scored.append((float(between.mean()) / (dof / n), pair, cells))
    kept, width = [], 0
    for ratio, pair, cells in sorted(scored, key=lambda s: -s[0]):
        if ratio < threshold or len(kept) >= max_pairs:
            break
        if width + cells <= max_width:
            kept.append(pair)
            width += cells
    return tuple(sorted(kept))
