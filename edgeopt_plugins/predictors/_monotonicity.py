"""Latency monotonicity: how well one device's ranking of architectures predicts another's.

Both statistics are tie-aware (average ranks for Spearman, tau-b for Kendall), which
matters for phones that report whole milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from edgeopt_plugins.data import MetricTable
from edgeopt_plugins.exceptions import InputError

__all__ = ["spearman", "kendall", "rank_correlation", "monotonicity_matrix", "central_device"]


def _pair(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=np.float64).reshape(-1)
    y = np.asarray(b, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise InputError(f"rank correlation needs two sequences of the same length, got {x.size} and {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Tie-aware Spearman correlation of two paired sequences (NaN pairs dropped).

    Returns ``nan`` when fewer than 2 pairs remain or one side is constant.

    Example:
        >>> round(spearman([1, 2, 3, 4], [10, 20, 30, 25]), 2)
        0.8
    """
    x, y = _pair(a, b)
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(stats.rankdata(x), stats.rankdata(y))[0, 1])


def kendall(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Kendall's tau-b (tie-aware) of two paired sequences (NaN pairs dropped)."""
    x, y = _pair(a, b)
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(stats.kendalltau(x, y, variant="b").statistic)


def rank_correlation(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, method: str = "spearman") -> float:
    """Spearman or Kendall, by name."""
    if method == "spearman":
        return spearman(a, b)
    if method == "kendall":
        return kendall(a, b)
    raise InputError(f"unknown rank correlation {method!r} (expected 'spearman' or 'kendall')")


def monotonicity_matrix(
    table: MetricTable, devices: Sequence[str] | None = None, method: str = "spearman"
) -> tuple[list[str], np.ndarray]:
    """Pairwise rank correlation between device columns, on architectures measured on both.

    Args:
        table: A latency (or energy) table.
        devices: Columns to compare (default: all).
        method: ``"spearman"`` or ``"kendall"``.

    Returns:
        ``(device names, square matrix)`` with ones on the diagonal.

    Example:
        >>> import numpy as np
        >>> from edgeopt_plugins.data import MetricTable
        >>> from edgeopt_plugins.spaces import get_space
        >>> archs = get_space("nb201").sample(4, seed=0)
        >>> t = MetricTable("nb201", "latency_ms", archs, ["a", "b"], np.array([[1, 2], [2, 4], [3, 5], [4, 3.0]]))
        >>> monotonicity_matrix(t)[1].round(1).tolist()
        [[1.0, 0.4], [0.4, 1.0]]
    """
    names = list(devices) if devices is not None else list(table.devices)
    cols = [table.device_index(d) for d in names]
    if method not in ("spearman", "kendall"):
        raise InputError(f"unknown rank correlation {method!r} (expected 'spearman' or 'kendall')")
    n = len(cols)
    out = np.eye(n)
    vals = table.values
    complete = table.available[:, cols].all(axis=1)
    if method == "spearman" and complete.all():
        ranks = np.column_stack([stats.rankdata(vals[:, c]) for c in cols])
        out = np.corrcoef(ranks, rowvar=False) if n > 1 else out
        return names, np.atleast_2d(out)
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = rank_correlation(vals[:, cols[i]], vals[:, cols[j]], method)
    return names, out


def central_device(names: Sequence[str], matrix: np.ndarray) -> str:
    """The device whose ranking agrees best with the others (highest median correlation).

    A sensible default proxy when nothing is known about the target.
    """
    m = np.array(matrix, dtype=np.float64)
    if m.shape != (len(names), len(names)) or len(names) < 2:
        raise InputError("central_device needs a square matrix over at least two devices")
    np.fill_diagonal(m, np.nan)
    return list(names)[int(np.nanargmax(np.nanmedian(m, axis=1)))]
