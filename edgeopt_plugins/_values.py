"""Checking numbers: what user code returns (objectives, measurements) and what users pass in (seeds, budgets)."""

from __future__ import annotations

import math
from typing import Any

from edgeopt_plugins.exceptions import InputError

__all__ = ["finite_or_none", "positive_or_none", "check_seed", "implausible", "PLAUSIBLE", "MAX_SEED", "MAX_TRADEOFF"]

#: Largest seed: every random generator the library feeds (NumPy, PyTorch, Optuna's samplers) accepts 0..2**32-1.
MAX_SEED = 2**32 - 1

#: Plausible range of each measured quantity. A value outside is a unit mistake or a damaged file, and
#: would overflow the predictors' arithmetic (1e308 ms), so profiles, tables and budgets refuse it.
PLAUSIBLE = {"latency_ms": (1e-6, 1e7), "energy_mj": (1e-9, 1e9)}

#: Largest trade-off (accuracy points given up per doubling of latency): accuracy spans 100 points, so a
#: larger one ranks by latency alone, and one near 1e308 overflows.
MAX_TRADEOFF = 1e6


def finite_or_none(value: Any) -> float | None:
    """``float(value)`` when it is a finite number, else ``None``."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def positive_or_none(value: Any) -> float | None:
    """A usable latency: ``float(value)`` when finite and positive, else ``None``."""
    out = finite_or_none(value)
    return out if out is not None and out > 0 else None


def implausible(metric: str, value: float, name: str | None = None) -> str | None:
    """Why ``value`` is outside the plausible range of ``metric`` (see :data:`PLAUSIBLE`), or ``None``.

    Example:
        >>> implausible("latency_ms", 1e308)
        'latency_ms 1e+308 is outside the plausible range 1e-06 to 1e+07 ms'
        >>> implausible("latency_ms", 12.5) is None
        True
    """
    low, high = PLAUSIBLE[metric]
    if low <= value <= high:
        return None
    return f"{name or metric} {value:g} is outside the plausible range {low:g} to {high:g} {metric.rsplit('_', 1)[1]}"


def check_seed(seed: Any, name: str = "seed", *, allow_none: bool = False) -> int | None:
    """``seed`` as an ``int`` in ``0..MAX_SEED`` (or ``None`` when allowed), else :class:`InputError`.

    Example:
        >>> check_seed(7)
        7
        >>> check_seed(-1)
        Traceback (most recent call last):
        edgeopt_plugins.exceptions.InputError: seed must be an integer from 0 to 4294967295, got -1
    """
    if seed is None and allow_none:
        return None
    if isinstance(seed, bool) or not hasattr(seed, "__index__") or not 0 <= int(seed.__index__()) <= MAX_SEED:
        raise InputError(f"{name} must be an integer from 0 to {MAX_SEED}, got {seed!r}")
    return int(seed.__index__())
