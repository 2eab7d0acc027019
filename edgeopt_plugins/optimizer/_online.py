"""Online recalibration of a guide's latency predictions on the target's own measurements.

A guide predicts a latency ``m`` and an upper bound ``u`` at its confidence ``c`` for
every design; together they give a log-scale uncertainty ``s = log(u / m) / z_c``
(``z_c`` the standard normal quantile). Whether that picture is right for *this*
device is only known from the device's measurements. Every measured design gives an
out-of-sample score ``z = log(measured / m) / s`` (``m`` and ``s`` as predicted
before the guide saw the measurement). If the guide is calibrated the scores are
standard normal; if it is biased or too pessimistic (or optimistic) they are not.

:class:`LatencyCalibration` keeps a normal-inverse-chi-square posterior over the
scores' mean and spread (prior: the guide is right, worth ``prior_weight``
measurements), with exponential forgetting (``half_life`` measurements), so that it
follows the predictor as the predictor converges on the device's data. The
predictive distribution of a new score is a Student t, which gives:

- :meth:`p_feasible`: the probability that a design fits the budget,
- :meth:`upper`: the recalibrated upper bound at any confidence.

This is the Bayesian counterpart of adaptive conformal inference: the bound widens
when measurements exceed it and tightens when they fall well under it.

:class:`LatencyCorrection` adds what the measurements say about the other designs: a
ridge regression of the guide's current log-errors on the measured designs' decisions,
so that a choice the guide gets wrong on this device (an operation relatively slower
here than on the devices it learned from) moves the predictions of every design that
makes it, and a search never keeps measuring near-copies of a design it found over the
budget.

Example:
    >>> import numpy as np
    >>> cal = LatencyCalibration()
    >>> float(np.round(cal.p_feasible(np.array([10.0]), np.array([0.1]), 10.0)[0], 2))
    0.5
    >>> cal.fit([cal.score(8.0, 10.0, 0.1)] * 30)   # the device is consistently faster than predicted
    >>> bool(cal.p_feasible(np.array([10.0]), np.array([0.1]), 10.0)[0] > 0.95)
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import special, stats

from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.spaces import SearchSpace

__all__ = ["LatencyCalibration", "LatencyCorrection", "log_scale"]

#: Smallest log-scale uncertainty of a prediction (a guide that claims certainty is not believed).
MIN_SCALE = 0.02
#: Log-errors are clipped to this (a factor of 4) in the calibration: one degenerate design that is
#: 30 times faster than predicted says little about how calibrated the designs near the budget are.
MAX_LOG_ERROR = float(np.log(4.0))
#: ... and to this (a factor of 20) in the correction of the designs that resemble it.
MAX_DESIGN_ERROR = float(np.log(20.0))
#: The estimated chance that a design fails to run is at most this (no design is ruled out for good).
MAX_FAILURE = 0.95


def log_scale(mean_ms: np.ndarray, upper_ms: np.ndarray, confidence: float) -> np.ndarray:
    """Log-scale uncertainty ``log(upper / mean) / z_confidence`` of each prediction (at least :data:`MIN_SCALE`)."""
    z = stats.norm.ppf(confidence)
    ratio = np.log(np.maximum(np.asarray(upper_ms, float), 1e-12) / np.maximum(np.asarray(mean_ms, float), 1e-12))
    return np.maximum(ratio / z, MIN_SCALE)


class LatencyCalibration:
    """Posterior of the standardised log-residuals of a guide on one device (see the module docstring).

    Args:
        prior_weight: How many measurements the prior "the guide is calibrated" is worth.
        half_life: Measurements after which an old residual counts half.
    """

    def __init__(self, *, prior_weight: float = 4.0, half_life: float = 25.0) -> None:
        if prior_weight <= 0 or half_life <= 0:
            raise InputError(f"prior_weight and half_life must be positive, got {prior_weight} and {half_life}")
        self.prior_weight = float(prior_weight)
        self.half_life = float(half_life)
        self.fit(())

    def fit(self, scores: Sequence[float] | np.ndarray) -> None:
        """Set the posterior from every score so far, oldest first."""
        z = np.asarray(scores, dtype=float).reshape(-1)
        z = z[np.isfinite(z)]
        w = 0.5 ** ((z.size - 1 - np.arange(z.size)) / self.half_life)
        n0 = self.prior_weight
        n = float(w.sum())
        mean = float(w @ z / n) if n else 0.0
        spread = float(w @ (z - mean) ** 2) if n else 0.0
        # The prior on the mean is worth one measurement (a biased guide is common), the one on the
        # spread prior_weight measurements.
        k = 1.0 + n
        self.n = n
        self.mu = n * mean / k
        self.dof = n0 + n
        self.sigma = math.sqrt((n0 * 1.0 + spread + n / k * mean**2) / self.dof * (1.0 + 1.0 / k))

    @staticmethod
    def score(measured_ms: float, mean_ms: float, scale: float) -> float:
        """Standardised error of one prediction: ``log(measured / mean) / scale`` (log-error clipped)."""
        error = float(np.clip(np.log(measured_ms / mean_ms), -MAX_LOG_ERROR, MAX_LOG_ERROR))
        return error / max(float(scale), MIN_SCALE)

    def p_feasible(self, mean_ms: np.ndarray, scale: np.ndarray, budget_ms: float | None,
                   shift: np.ndarray | float = 0.0) -> np.ndarray:
        """Probability that each design's latency fits ``budget_ms`` (1 without a budget).

        ``shift`` (log units) comes from a :class:`LatencyCorrection`.
        """
        mean_ms = np.asarray(mean_ms, dtype=float)
        if budget_ms is None:
            return np.ones(mean_ms.shape)
        scale = np.asarray(scale, float)
        t = (np.log(budget_ms) - np.log(np.maximum(mean_ms, 1e-12)) - shift) / scale
        return special.stdtr(self.dof, (t - self.mu) / self.sigma)

    def upper(self, mean_ms: np.ndarray, scale: np.ndarray, confidence: float,
              shift: np.ndarray | float = 0.0) -> np.ndarray:
        """Recalibrated upper bound of each design's latency at ``confidence``."""
        q = self.mu + self.sigma * special.stdtrit(self.dof, confidence)
        return np.asarray(mean_ms, float) * np.exp(np.asarray(scale, float) * q + shift)

    def __repr__(self) -> str:
        return f"LatencyCalibration(n={self.n:.1f}, mu={self.mu:.3f}, sigma={self.sigma:.3f}, dof={self.dof:.1f})"


class LatencyCorrection:
    """What the measured designs say about the others (see the module docstring).

    A ridge regression of the guide's current log-errors on the measured designs, over the
    space's features (its one-hot decisions and its standardised log cost summary, e.g. how
    many operations of each kind): ``error(x) ~ features(x) . w``. The part of each error the
    calibration already explains (``mu * s_i``, ``s_i`` the design's log-scale) is taken out,
    so the correction is ``features(x) . (w_e - mu * w_s)`` with ``w_e`` fitted to the errors
    and ``w_s`` to the scales. The same regression on 0/1 targets estimates how likely a
    design's measurement is to fail (a board that cannot run some operation): what resembles
    the designs that failed is avoided.

    Args:
        space: The search space.
        ridge: Prior precision of each feature's weight (log units): an effect needs a few
            measurements before it moves predictions much.

    Example:
        >>> import numpy as np
        >>> from edgeopt_plugins.spaces import get_space
        >>> space = get_space("nb201")
        >>> correction = LatencyCorrection(space)
        >>> measured = space.sample_indices(30, seed=0)
        >>> slow = measured[:, 0] == 3                              # a 3x3 convolution first: twice as slow
        >>> correction.fit(measured, np.where(slow, np.log(2.0), 0.0), np.full(30, 0.1))
        >>> shift = correction.shift(correction.encode(np.array([[3, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]])), mu=0.0)
        >>> bool(shift[0] > shift[1] + 0.3)
        True
    """

    def __init__(self, space: SearchSpace, *, ridge: float = 2.0) -> None:
        self.space = space
        self.ridge = float(ridge)
        reference = np.log1p(space.costs(space.sample_indices(2000, seed=0, unique=False)))
        self._cost_mean, self._cost_sd = reference.mean(axis=0), reference.std(axis=0) + 1e-9
        width = space.one_hot_width + reference.shape[1]
        self._w_error = np.zeros(width)
        self._w_scale = np.zeros(width)
        self._w_fail = np.zeros(width)

    def encode(self, indices: np.ndarray) -> np.ndarray:
        """Features (float32) of a choice-index matrix: one-hot decisions and standardised log costs."""
        indices = np.asarray(indices, dtype=np.int64)
        costs = (np.log1p(self.space.costs(indices)) - self._cost_mean) / self._cost_sd
        return np.concatenate([self.space.one_hot(indices), costs.astype(np.float32)], axis=1)

    def fit(self, indices: np.ndarray, errors: np.ndarray, scales: np.ndarray) -> None:
        """The measured designs, the guide's current log-errors on them and their log-scales."""
        x = self.encode(indices).astype(float)
        gram = x.T @ x + self.ridge * np.eye(x.shape[1])
        errors = np.clip(np.asarray(errors, dtype=float), -MAX_DESIGN_ERROR, MAX_DESIGN_ERROR)
        self._w_error = np.linalg.solve(gram, x.T @ errors)
        self._w_scale = np.linalg.solve(gram, x.T @ np.asarray(scales, dtype=float))

    def fit_failures(self, indices: np.ndarray, failed: np.ndarray) -> None:
        """Every design tried and whether its measurement failed (the same ridge, on 0/1 targets)."""
        x = self.encode(indices).astype(float)
        gram = x.T @ x + self.ridge * np.eye(x.shape[1])
        self._w_fail = np.linalg.solve(gram, x.T @ np.asarray(failed, dtype=float))

    def shift(self, encoded: np.ndarray, mu: float) -> np.ndarray:
        """Correction of the log-latency of ``encoded`` designs, given the calibration's ``mu``."""
        return encoded @ (self._w_error - mu * self._w_scale)

    def failure(self, encoded: np.ndarray) -> np.ndarray:
        """Estimated chance that measuring each of the ``encoded`` designs fails (0 until one has)."""
        return np.clip(encoded @ self._w_fail, 0.0, MAX_FAILURE)
