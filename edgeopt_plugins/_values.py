"""Reading numbers that come back from user code (objectives, evaluators, measurements)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["finite_or_none", "positive_or_none"]


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
