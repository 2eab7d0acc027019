"""A surrogate of the study's objective over a space's decisions, learned online.

When the user names no accuracy source, the search does not know the objective; it
learns it from the values the study reports. :class:`ObjectiveSurrogate` is a
Gaussian process over choice-index rows with an exponential Hamming kernel
``k(x, x') = exp(-hamming(x, x') / length)`` (any space of categorical decisions,
user-defined ones included), fitted to the *normal scores* of the observed values
(ranks mapped through the normal quantile: a copula that makes one disconnected,
10%-accurate network or a penalty value no outlier). Length scale and noise come
from a small grid by marginal likelihood. :meth:`expected_improvement` is the
classic acquisition in those units.

Example:
    >>> import numpy as np
    >>> from edgeopt_plugins.spaces import get_space
    >>> space = get_space("nb201")
    >>> idx = space.sample_indices(40, seed=0)
    >>> values = (idx == 3).sum(axis=1) + 0.1 * idx[:, 0]      # more 3x3 convolutions are better
    >>> surrogate = ObjectiveSurrogate(space.cardinalities).fit(idx, values)
    >>> mean, sd = surrogate.predict(np.array([[3] * 6, [0] * 6]))
    >>> bool(mean[0] > mean[1])
    True
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.linalg import cho_solve, solve_triangular

from edgeopt_plugins.exceptions import InputError

__all__ = ["ObjectiveSurrogate", "normal_scores", "expected_improvement"]

#: Noise levels (relative to the unit prior variance) tried by marginal likelihood.
NOISE_GRID = (0.02, 0.1, 0.3)
#: Length scales, as fractions of the number of decisions.
LENGTH_GRID = (1 / 6, 1 / 3, 2 / 3)


def normal_scores(values: np.ndarray) -> np.ndarray:
    """Ranks of ``values`` mapped to standard normal quantiles (ties share a rank)."""
    values = np.asarray(values, dtype=float)
    ranks = stats.rankdata(values)
    return stats.norm.ppf((ranks - 0.5) / values.size)


def expected_improvement(mean: np.ndarray, sd: np.ndarray, best: float) -> np.ndarray:
    """Expected improvement over ``best`` of normal predictions ``(mean, sd)``."""
    sd = np.maximum(np.asarray(sd, float), 1e-9)
    z = (np.asarray(mean, float) - best) / sd
    return sd * (z * stats.norm.cdf(z) + stats.norm.pdf(z))


class ObjectiveSurrogate:
    """Gaussian process of the objective's normal scores over choice-index rows (see the module docstring).

    Args:
        cardinalities: Number of choices of each decision of the space.
        max_points: Observations kept in the model (the best half and the most recent
            half when there are more), which bounds the cost per trial.
    """

    def __init__(self, cardinalities: np.ndarray, *, max_points: int = 160) -> None:
        self.cardinalities = np.asarray(cardinalities, dtype=np.int64)
        if self.cardinalities.ndim != 1 or self.cardinalities.size == 0:
            raise InputError("ObjectiveSurrogate: cardinalities must be a non-empty 1-D array")
        if max_points < 4:
            raise InputError(f"ObjectiveSurrogate: max_points must be >= 4, got {max_points}")
        self.max_points = int(max_points)
        self._offsets = np.concatenate([[0], np.cumsum(self.cardinalities)[:-1]])
        self.length: float | None = None
        self.noise: float | None = None
        self._selected_at = 0
        self._x: np.ndarray | None = None

    @property
    def fitted(self) -> bool:
        return self._x is not None

    def fit(self, indices: np.ndarray, values: np.ndarray) -> ObjectiveSurrogate:
        """Fit to observed ``values`` (larger is better) of the designs ``indices`` (rows, oldest first)."""
        x = np.asarray(indices, dtype=np.int64)
        y = np.asarray(values, dtype=float).reshape(-1)
        if x.ndim != 2 or x.shape != (y.size, self.cardinalities.size):
            raise InputError(f"ObjectiveSurrogate.fit: expected ({y.size}, {self.cardinalities.size}) indices, got {x.shape}")
        keep = np.isfinite(y)
        x, y = x[keep], y[keep]
        if y.size < 2:
            self._x = None
            return self
        # Length scale and noise are chosen on the first s observations, s the largest point <= n of a fixed
        # schedule (each a fifth larger): the choice depends only on the data, not on when fit() was called.
        s = 2
        while (step := max(s + 1, s * 6 // 5)) <= y.size:
            s = step
        if s != self._selected_at:
            first = self._encode(x[:s])
            self.length, self.noise = self._select(self.cardinalities.size - first @ first.T, normal_scores(y[:s]))
            self._selected_at = s
        z = normal_scores(y)
        if y.size > self.max_points:
            half = self.max_points // 2
            best = np.argsort(-z, kind="stable")[:half]
            recent = np.setdiff1d(np.arange(y.size - self.max_points, y.size), best)[-(self.max_points - half):]
            rows = np.union1d(best, recent)
            x, z = x[rows], z[rows]
        self._onehot = self._encode(x)
        distance = self.cardinalities.size - self._onehot @ self._onehot.T
        cov = np.exp(-distance / self.length) + self.noise * np.eye(z.size)
        self._chol = np.linalg.cholesky(cov)
        self._alpha = cho_solve((self._chol, True), z)
        self._x = x
        self.best = float(z.max())
        return self

    def _select(self, distance: np.ndarray, z: np.ndarray) -> tuple[float, float]:
        best, choice = -np.inf, (LENGTH_GRID[1] * self.cardinalities.size, NOISE_GRID[1])
        for fraction in LENGTH_GRID:
            length = max(fraction * self.cardinalities.size, 0.5)
            base = np.exp(-distance / length)
            for noise in NOISE_GRID:
                chol = np.linalg.cholesky(base + noise * np.eye(z.size))
                loglik = -0.5 * z @ cho_solve((chol, True), z) - np.log(np.diag(chol)).sum()
                if loglik > best:
                    best, choice = loglik, (length, noise)
        return choice

    def _encode(self, indices: np.ndarray) -> np.ndarray:
        """One-hot rows: the Hamming distance of two rows is the number of decisions minus their dot product."""
        out = np.zeros((indices.shape[0], int(self.cardinalities.sum())))
        out[np.arange(indices.shape[0])[:, None], indices + self._offsets] = 1.0
        return out

    def _cross(self, indices: np.ndarray) -> np.ndarray:
        if self._x is None:
            raise InputError("ObjectiveSurrogate: fit it on at least two finite values first")
        distance = self.cardinalities.size - self._encode(np.asarray(indices, dtype=np.int64)) @ self._onehot.T
        return np.exp(-distance / self.length)

    def predict_mean(self, indices: np.ndarray) -> np.ndarray:
        """Posterior mean (normal-score units) of each row."""
        return self._cross(indices) @ self._alpha

    def predict(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation (normal-score units) of each row."""
        cross = self._cross(indices)
        v = solve_triangular(self._chol, cross.T, lower=True)
        return cross @ self._alpha, np.sqrt(np.maximum(1.0 - (v * v).sum(axis=0), 1e-12))

    def expected_improvement(self, indices: np.ndarray) -> np.ndarray:
        """Expected improvement of each row over the best observation."""
        mean, sd = self.predict(indices)
        return expected_improvement(mean, sd, self.best)
