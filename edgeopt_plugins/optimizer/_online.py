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

:class:`LocalCorrection` adds what one measurement says about its neighbours: a
kernel smoother (exponential Hamming kernel) of the guide's current log-errors on
the measured designs, so that a design measured slower (or faster) than predicted
moves the predictions of the designs that differ from it in a decision or two, and
a search never keeps measuring near-copies of a design it found over the budget.

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

__all__ = ["LatencyCalibration", "LocalCorrection", "log_scale"]

#: Smallest log-scale uncertainty of a prediction (a guide that claims certainty is not believed).
MIN_SCALE = 0.02
#: Log-errors are clipped to this (a factor of 4): one degenerate design that is 30 times faster
#: than predicted says little about the designs near the budget.
MAX_LOG_ERROR = float(np.log(4.0))


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
                   shift: np.ndarray | float = 0.0, shrink: np.ndarray | float = 1.0) -> np.ndarray:
        """Probability that each design's latency fits ``budget_ms`` (1 without a budget).

        ``shift`` (log units) and ``shrink`` (of the spread) come from a :class:`LocalCorrection`.
        """
        mean_ms = np.asarray(mean_ms, dtype=float)
        if budget_ms is None:
            return np.ones(mean_ms.shape)
        scale = np.asarray(scale, float)
        t = (np.log(budget_ms) - np.log(np.maximum(mean_ms, 1e-12)) - shift) / scale
        return special.stdtr(self.dof, (t - self.mu) / (self.sigma * np.sqrt(shrink)))

    def upper(self, mean_ms: np.ndarray, scale: np.ndarray, confidence: float,
              shift: np.ndarray | float = 0.0, shrink: np.ndarray | float = 1.0) -> np.ndarray:
        """Recalibrated upper bound of each design's latency at ``confidence``."""
        q = self.mu + self.sigma * np.sqrt(shrink) * special.stdtrit(self.dof, confidence)
        return np.asarray(mean_ms, float) * np.exp(np.asarray(scale, float) * q + shift)

    def __repr__(self) -> str:
        return f"LatencyCalibration(n={self.n:.1f}, mu={self.mu:.3f}, sigma={self.sigma:.3f}, dof={self.dof:.1f})"


class LocalCorrection:
    """What measured designs say about their neighbours' latency (see the module docstring).

    For a design ``x`` the correction is ``(A - mu * B) / (prior + C)`` in log units, with
    ``C = sum_i k(x, x_i)``, ``A = sum_i k(x, x_i) e_i``, ``B = sum_i k(x, x_i) s_i`` over the
    measured designs ``x_i`` (log-error ``e_i`` of the guide's current prediction, log-scale
    ``s_i``) and ``k = exp(-hamming / length)``; ``mu * s_i`` is the part of the error the global
    calibration already explains. The spread shrinks by ``prior / (prior + C)`` (at least by a
    half) near measured designs.

    Args:
        cardinalities: Number of choices of each decision.
        length: Kernel length in changed decisions.
        prior: Pseudo-count of the "no correction" prior.

    Example:
        >>> import numpy as np
        >>> local = LocalCorrection(np.array([3, 3]))
        >>> local.fit(np.array([[0, 0]]), np.array([np.log(2.0)]), np.array([0.1]))
        >>> shift, shrink = local.correction(local.terms(np.array([[0, 1], [2, 2]])), mu=0.0)
        >>> bool(shift[0] > shift[1] > 0)
        True
    """

    def __init__(self, cardinalities: np.ndarray, *, length: float = 1.0, prior: float = 1.0) -> None:
        self.cardinalities = np.asarray(cardinalities, dtype=np.int64)
        self.length = float(length)
        self.prior = float(prior)
        self._offsets = np.concatenate([[0], np.cumsum(self.cardinalities)[:-1]])
        self.fit(np.zeros((0, self.cardinalities.size), dtype=np.int64), np.zeros(0), np.zeros(0))

    def encode(self, indices: np.ndarray) -> np.ndarray:
        """One-hot rows (float32): a Hamming distance is the number of decisions minus a dot product."""
        indices = np.asarray(indices, dtype=np.int64)
        out = np.zeros((indices.shape[0], int(self.cardinalities.sum())), dtype=np.float32)
        out[np.arange(indices.shape[0])[:, None], indices + self._offsets] = 1.0
        return out

    def fit(self, indices: np.ndarray, errors: np.ndarray, scales: np.ndarray, *, append: bool = False) -> None:
        """The measured designs, the guide's current log-errors on them and their log-scales
        (``append``: added to those already there)."""
        x = self.encode(indices)
        e = np.clip(np.asarray(errors, dtype=float), -MAX_LOG_ERROR, MAX_LOG_ERROR)
        s = np.asarray(scales, dtype=float)
        if append:
            x, e, s = np.concatenate([self._x, x]), np.concatenate([self._e, e]), np.concatenate([self._s, s])
        self._x, self._e, self._s = x, e, s

    def terms(self, indices: np.ndarray | None = None, *, encoded: np.ndarray | None = None,
              since: int = 0) -> np.ndarray:
        """``(3, m)`` sums ``A, B, C`` for designs given as indices (or already one-hot ``encoded``),
        over the measured designs from position ``since`` on."""
        x = self.encode(indices) if encoded is None else encoded
        if self._e.size <= since:
            return np.zeros((3, x.shape[0]))
        kernel = np.exp(-(self.cardinalities.size - x @ self._x[since:].T) / self.length)
        return np.stack([kernel @ self._e[since:], kernel @ self._s[since:], kernel.sum(axis=1)])

    def correction(self, terms: np.ndarray, mu: float) -> tuple[np.ndarray, np.ndarray]:
        """Shift (log units) and spread factor from :meth:`terms` and the calibration's mean ``mu``."""
        a, b, c = terms
        return (a - mu * b) / (self.prior + c), np.maximum(self.prior / (self.prior + c), 0.5)
