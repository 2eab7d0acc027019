"""Matplotlib set-up shared by every plot the library writes (PNG, no display needed).

Besides creating and saving figures, it holds the two fixes every plot needs sooner or
later: log axes that carry readable tick labels even over less than a decade
(:func:`log_axis`), and bars whose value is zero or missing, which would otherwise
vanish (:func:`mark_empty_bars`).

Example:
    >>> fig, ax = new_figure()
    >>> bars = ax.bar(["a", "b"], [0.0, 3.0])
    >>> mark_empty_bars(ax, bars, [0.0, 3.0])
    >>> log_axis(ax, "y")
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["log_axis", "mark_empty_bars", "new_figure", "save_figure"]


def new_figure(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``plt.subplots`` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Save ``fig`` as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    from edgeopt_plugins._io import atomic_write

    p = Path(path)
    with atomic_write(p, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return p


def _readable_log_locator() -> Any:
    from matplotlib.ticker import LogLocator

    class ReadableLogLocator(LogLocator):
        """Decades when the view spans several; else 1-2-5, 1-2-3-5-7 or every integer multiple."""

        def tick_values(self, vmin: float, vmax: float) -> Any:
            lo, hi = sorted((vmin, vmax))
            ticks = None
            for subs in ((1.0,), (1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 5.0, 7.0), tuple(float(s) for s in range(1, 10))):
                self.set_params(subs=subs)
                ticks = super().tick_values(vmin, vmax)
                if ((ticks >= lo) & (ticks <= hi)).sum() >= 3:
                    break
            return ticks

    return ReadableLogLocator(base=10.0, numticks=8)


def _plain(value: float, _pos: Any = None) -> str:
    if value <= 0 or not math.isfinite(value):
        return ""
    if 1e-3 <= value < 1e5:
        return f"{value:g}"
    exponent = math.floor(math.log10(value) + 1e-9)
    mantissa = value / 10**exponent
    return f"$10^{{{exponent}}}$" if abs(mantissa - 1) < 1e-6 else f"${mantissa:g}\\times10^{{{exponent}}}$"


def log_axis(ax: Any, which: str = "y") -> None:
    """Put ``ax``'s ``which`` axis (``"x"`` or ``"y"``) on a log scale whose ticks carry labels.

    Matplotlib's default labels only powers of ten, so a view from 2 to 20 ms shows a single
    label. Here ticks are decades when the view spans several, else 1-2-5 (or denser)
    multiples, labelled as plain numbers.
    """
    from matplotlib.ticker import FuncFormatter, NullFormatter

    if which not in ("x", "y"):
        raise ValueError(f"which must be 'x' or 'y', got {which!r}")
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_locator(_readable_log_locator())
    axis.set_major_formatter(FuncFormatter(_plain))
    axis.set_minor_formatter(NullFormatter())


def mark_empty_bars(ax: Any, bars: Any, values: Sequence[float | None], *, zero: str = "0",
                    missing: str = "n/a", fontsize: float = 6.5) -> None:
    """Write ``zero`` (value 0) or ``missing`` (``None``/NaN/inf) at the foot of bars that have no height.

    A bar of height 0, or one with no value, draws nothing: the reader cannot tell "zero"
    from "forgot to plot". The label sits just above the axis, in the bar's colour,
    vertical when it is longer than a few characters.
    """
    from matplotlib.transforms import blended_transform_factory

    where = blended_transform_factory(ax.transData, ax.transAxes)
    for bar, value in zip(bars, values):
        finite = value is not None and math.isfinite(value)
        if finite and value != 0:
            continue
        text = zero if finite else missing
        ax.text(bar.get_x() + bar.get_width() / 2, 0.01, text, transform=where, ha="center", va="bottom",
                fontsize=fontsize, color=bar.get_facecolor(), rotation=90 if len(text) > 3 else 0)
