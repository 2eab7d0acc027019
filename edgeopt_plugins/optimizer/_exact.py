"""Exact solver: the most accurate design whose latency fits a budget.

Used for ground truth in benchmarks, for the learned optimizer's training labels,
and anywhere a finite candidate list is searched exhaustively.
"""

from __future__ import annotations

import numpy as np

from edgeopt_plugins.exceptions import InputError

__all__ = ["best_under_budget", "top_under_budget"]


def top_under_budget(latency: np.ndarray, accuracy: np.ndarray, budget: float, k: int = 1) -> np.ndarray:
    """Positions of the ``k`` most accurate designs with ``latency <= budget``.

    Ties in accuracy go to the faster design. Designs with a NaN latency or
    accuracy are never chosen. Fewer than ``k`` positions come back when fewer fit.

    Example:
        >>> import numpy as np
        >>> top_under_budget(np.array([1.0, 2.0, 3.0]), np.array([50.0, 70.0, 90.0]), 2.5, k=2).tolist()
        [1, 0]
    """
    lat = np.asarray(latency, dtype=np.float64)
    acc = np.asarray(accuracy, dtype=np.float64)
    if lat.shape != acc.shape or lat.ndim != 1:
        raise InputError(f"latency and accuracy must be 1-D and of equal length, got {lat.shape} and {acc.shape}")
    with np.errstate(invalid="ignore"):
        feasible = np.flatnonzero((lat <= budget) & np.isfinite(acc))
    if feasible.size == 0:
        return feasible
    order = np.lexsort((lat[feasible], -acc[feasible]))
    return feasible[order[:k]]


def best_under_budget(latency: np.ndarray, accuracy: np.ndarray, budget: float) -> int:
    """Position of the most accurate design within ``budget``, or ``-1`` if none fits."""
    top = top_under_budget(latency, accuracy, budget, k=1)
    return int(top[0]) if top.size else -1
