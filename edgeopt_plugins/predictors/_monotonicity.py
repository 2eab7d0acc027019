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

__all__ = ["central_device", "kendall", "monotonicity_matrix", "monotonicity_report", "rank_correlation", "spearman"]


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


def monotonicity_report(
    table: MetricTable, *, devices: Sequence[str] | None = None, methods: Sequence[str] = ("spearman",)
) -> dict:
    """Full monotonicity picture of a table: matrices, per-device neighbours, ties.

    Args:
        table: A latency (or energy) table.
        devices: Columns to compare (default: all); at least two.
        methods: Any of ``"spearman"``, ``"kendall"`` (both tie-aware).

    Returns:
        A JSON-ready dict: ``devices``, ``archs`` (rows measured on all of them),
        ``matrices`` (method -> square list), ``summary`` (method -> min/median/max of the
        off-diagonal values and the most central device) and ``per_device`` rows
        (distinct values, share of tied rows, nearest device per method).

    Example:
        >>> import numpy as np
        >>> from edgeopt_plugins.data import MetricTable
        >>> from edgeopt_plugins.spaces import get_space
        >>> archs = get_space("nb201").sample(4, seed=0)
        >>> t = MetricTable("nb201", "latency_ms", archs, ["a", "b"], np.array([[1, 2], [2, 2], [3, 5], [4, 3.0]]))
        >>> rep = monotonicity_report(t, methods=("spearman", "kendall"))
        >>> rep["per_device"][1]["tied_share"]
        0.5
    """
    names = list(devices) if devices is not None else list(table.devices)
    if len(names) < 2:
        raise InputError(f"monotonicity needs at least two devices, got {len(names)}")
    if len(set(names)) != len(names):
        raise InputError("monotonicity: a device is listed twice")
    for method in methods:
        if method not in ("spearman", "kendall"):
            raise InputError(f"unknown rank correlation {method!r} (expected 'spearman' or 'kendall')")
    cols = [table.device_index(d) for d in names]
    complete = table.available[:, cols].all(axis=1)
    if complete.sum() < 2:
        raise InputError(f"{table.source}: fewer than 2 architectures are measured on all of {', '.join(names)}")
    sub = table.select(devices=names, rows=complete)
    out: dict = {"space": table.space.name, "metric": table.metric, "devices": names, "archs": int(complete.sum()),
                 "matrices": {}, "summary": {}, "per_device": []}
    mats = {}
    for method in methods:
        _, mat = monotonicity_matrix(sub, names, method)
        mats[method] = mat
        off = mat[~np.eye(len(names), dtype=bool)]
        out["matrices"][method] = np.round(mat, 6).tolist()
        out["summary"][method] = {"min": float(np.min(off)), "median": float(np.median(off)), "max": float(np.max(off)),
                                  "central_device": central_device(names, mat)}
    for i, name in enumerate(names):
        col = sub.values[:, i]
        _, counts = np.unique(col, return_counts=True)
        row = {"device": name, "distinct_values": len(counts),
               "tied_share": round(float(counts[counts > 1].sum() / len(col)), 4)}
        for method, mat in mats.items():
            others = mat[i].copy()
            others[i] = -np.inf
            j = int(np.argmax(others))
            row[f"nearest_{method}"] = names[j]
            row[f"{method}_to_nearest"] = float(mat[i, j])
            row[f"{method}_median"] = float(np.median(np.delete(mat[i], i)))
        out["per_device"].append(row)
    return out
