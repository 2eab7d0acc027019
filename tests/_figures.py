"""Check a rendered matplotlib figure for the defects a reader notices first.

:func:`layout_problems` returns one line per defect (empty list: none found):

- text of one panel (tick labels, axis labels, titles, annotations) running into another panel;
- tick labels of one axis overlapping each other, or the same label twice;
- an axis that shows fewer than two tick labels (one label on a log axis says nothing about
  its scale), unless its ticks were placed by hand (categories) or switched off;
- a bar of zero or missing height with no label saying so (it would simply vanish; empty bins
  of a histogram are fine);
- a panel with nothing drawn in it.

The ``saved_figures`` fixture (tests/conftest.py) records every figure the library saves,
with these problems and the PNG path, so that a test renders a plot the way users get it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["layout_problems", "png_problems"]


def _in_view(axis: Any, value: float) -> bool:
    lo, hi = sorted(axis.get_view_interval())
    span = (hi - lo) or 1.0
    return lo - 1e-9 * span <= value <= hi + 1e-9 * span


def _tick_labels(axis: Any) -> list[Any]:
    """The tick labels the reader sees: visible, non-empty, inside the view."""
    index = 0 if axis.axis_name == "x" else 1
    return [label for label in axis.get_ticklabels(which="both")
            if label.get_visible() and label.get_text().strip() and _in_view(axis, label.get_position()[index])]


def _labels_switched_off(axis: Any) -> bool:
    from matplotlib.ticker import NullLocator

    params = axis.get_tick_params(which="major")
    sides = ("labelbottom", "labeltop") if axis.axis_name == "x" else ("labelleft", "labelright")
    return isinstance(axis.get_major_locator(), NullLocator) or not any(params.get(s, s in ("labelbottom",
                                                                                           "labelleft")) for s in sides)


def _texts(ax: Any, renderer: Any) -> list[tuple[str, Any]]:
    found = [(f"{axis.axis_name} tick label {t.get_text()!r}", t) for axis in (ax.xaxis, ax.yaxis)
             for t in _tick_labels(axis)]
    found += [("x label", ax.xaxis.label), ("y label", ax.yaxis.label), ("title", ax.title)]
    found += [(f"text {t.get_text()!r}", t) for t in ax.texts]
    return [(name, t.get_window_extent(renderer)) for name, t in found if t.get_visible() and t.get_text().strip()]


def _name(ax: Any, i: int) -> str:
    title = (ax.get_title() or ax.get_ylabel() or ax.get_xlabel())[:40]
    return f"panel {i + 1}" + (f" ({title!r})" if title else "")


def _overlaps(a: Any, b: Any, slack: float = 1.0) -> bool:
    return (a.x0 + slack < b.x1 and b.x0 + slack < a.x1 and a.y0 + slack < b.y1 and b.y0 + slack < a.y1)


def _is_histogram(container: Any) -> bool:
    """Bars that tile an interval without gaps: the bins of a histogram, where empty bins are normal."""
    bars = sorted(container.patches, key=lambda b: b.get_x())
    return len(bars) > 2 and all(math.isclose(a.get_x() + a.get_width(), b.get_x(), rel_tol=1e-6, abs_tol=1e-12)
                                 for a, b in zip(bars, bars[1:]))


def _bar_problems(ax: Any, renderer: Any) -> list[str]:
    from matplotlib.container import BarContainer

    problems = []
    text_x = [t.get_window_extent(renderer) for t in ax.texts if t.get_visible() and t.get_text().strip()]
    for container in ax.containers:
        if not isinstance(container, BarContainer) or _is_histogram(container):
            continue
        for bar in container.patches:
            size = bar.get_height() if container.orientation == "vertical" else bar.get_width()
            if size != 0 and math.isfinite(size):
                continue
            y = ax.get_ylim()[0]
            (x0, _), (x1, _) = ax.transData.transform([(bar.get_x(), y), (bar.get_x() + bar.get_width(), y)])
            if not any(x0 - 1 <= (box.x0 + box.x1) / 2 <= x1 + 1 for box in text_x):
                problems.append(f"a bar of height {size} at x={bar.get_x() + bar.get_width() / 2:g} has no label")
    return problems


def layout_problems(fig: Any) -> list[str]:
    """What a reader would find wrong in ``fig`` (see the module docstring); ``[]`` when nothing."""
    from matplotlib.category import StrCategoryLocator
    from matplotlib.ticker import FixedLocator

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    texts = {id(ax): _texts(ax, renderer) for ax in axes}
    problems = []
    for i, ax in enumerate(axes):
        name = _name(ax, i)
        if not (ax.lines or ax.collections or ax.patches or ax.images):
            problems.append(f"{name}: nothing drawn")
        for j, other in enumerate(axes):
            if other is ax:
                continue
            frame = other.get_window_extent(renderer)
            for what, box in texts[id(ax)]:
                if _overlaps(box, frame):
                    problems.append(f"{name}: its {what} runs into {_name(other, j)}")
                clash = next((w for w, b in texts[id(other)] if _overlaps(box, b)), None)
                if clash is not None and i < j:
                    problems.append(f"{name}: its {what} overlaps the {clash} of {_name(other, j)}")
        for axis in (ax.xaxis, ax.yaxis):
            labels = _tick_labels(axis)
            locator = axis.get_major_locator()
            placed = isinstance(locator, (FixedLocator, StrCategoryLocator))  # by hand: categories
            if len(labels) < 2 and not (placed and len(labels) == sum(_in_view(axis, v) for v in locator())) \
                    and not _labels_switched_off(axis):
                listed = ", ".join(repr(t.get_text()) for t in labels) or "none"
                problems.append(f"{name}: {axis.axis_name} axis ({axis.get_scale()}) shows {len(labels)} tick "
                                f"label(s): {listed}")
            shown = [t.get_text() for t in labels]
            problems += [f"{name}: {axis.axis_name} tick label {text!r} appears {shown.count(text)} times"
                         for text in sorted(set(shown)) if shown.count(text) > 1]
            upright = [t for t in labels if t.get_rotation() in (0.0, 90.0)]
            boxes = [t.get_window_extent(renderer) for t in upright]
            for a in range(len(boxes)):
                for b in range(a + 1, len(boxes)):
                    if _overlaps(boxes[a], boxes[b]):
                        problems.append(f"{name}: {axis.axis_name} tick labels {upright[a].get_text()!r} and "
                                        f"{upright[b].get_text()!r} overlap")
        problems += [f"{name}: {p}" for p in _bar_problems(ax, renderer)]
    return problems


def png_problems(path: Any, *, max_pixels: int = 4000) -> list[str]:
    """A saved PNG that is unreadable, blank or absurdly large."""
    from matplotlib.image import imread

    image = imread(str(path))
    height, width = image.shape[:2]
    problems = []
    if not (200 <= width <= max_pixels and 150 <= height <= max_pixels):
        problems.append(f"{path}: {width}x{height} pixels")
    if float(np.std(image[..., :3])) < 0.01:
        problems.append(f"{path}: blank")
    return problems
