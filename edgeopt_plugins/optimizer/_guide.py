"""Search guides: what an Optuna sampler or NNI strategy asks of our predictors.

A :class:`SearchGuide` knows one target device (through a profile that grows as the
search measures designs) and one latency budget. It answers three questions:

- which designs to try first (:meth:`SearchGuide.warm_start`), at the guide's
  confidence (designs predicted to fit safely) or at a lower one (designs that
  plausibly fit: what a search explores once the safe ones are measured),
- what latency (and upper bound) and accuracy it predicts for candidate designs
  (:meth:`SearchGuide.screen`),
- and it learns from every latency the search measures (:meth:`SearchGuide.observe`).

The Optuna and NNI adapters only translate between their frameworks and this
protocol; the numerics live in the guides (approach 1: proxy predictors,
approach 2: the device-conditioned model).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from edgeopt_plugins.spaces import SearchSpace

__all__ = ["Screening", "SearchGuide", "GuideBase", "refit_point", "refit_points"]


def refit_point(start: int, size: int) -> int:
    """The largest point <= ``size`` of the schedule ``start, start*1.2, ...`` (each a fifth larger, at least +1).

    Guides refit when their data reach the next point, so the fit depends only on what was measured (not on
    when it was observed: resumed searches decide the same) and the cost per measurement stays low.

    Example:
        >>> [refit_point(10, n) for n in (10, 11, 12, 13, 14, 20)]
        [10, 10, 12, 12, 14, 19]
    """
    return ([start] + refit_points(start, size))[-1]


def refit_points(point: int, size: int) -> list[int]:
    """The points of :func:`refit_point`'s schedule after ``point`` (itself a point), up to ``size``.

    Example:
        >>> refit_points(10, 20)
        [12, 14, 16, 19]
    """
    points = []
    while (point := max(point + 1, point * 6 // 5)) <= size:
        points.append(point)
    return points


@dataclass(frozen=True)
class Screening:
    """Predictions for a batch of candidate designs (arrays aligned with the candidates).

    Attributes:
        latency_ms: Predicted latency.
        latency_upper_ms: Upper bound at the guide's confidence (equal to the
            prediction when the guide has no calibrated bound).
        accuracy: The accuracy the user named (a table, a model, a function), or ``None``:
            then the search learns the objective online.
    """

    latency_ms: np.ndarray
    latency_upper_ms: np.ndarray
    accuracy: np.ndarray | None

    def feasible(self, budget_ms: float | None) -> np.ndarray:
        """Which candidates' upper bound fits ``budget_ms`` (all when there is no budget)."""
        if budget_ms is None:
            return np.ones(self.latency_upper_ms.shape, dtype=bool)
        return self.latency_upper_ms <= budget_ms


@runtime_checkable
class SearchGuide(Protocol):
    """What samplers and strategies need from a predictor stack (see module docstring)."""

    space: SearchSpace
    latency_budget_ms: float | None

    def warm_start(self, n: int, *, confidence: float | None = None) -> list[str]:
        """Up to ``n`` designs to evaluate first, best first (canonical strings).

        ``confidence`` overrides the confidence of the latency bound the designs must fit
        (``0.5``: the median prediction fits the budget).
        """
        ...

    def screen(self, archs: Sequence[str]) -> Screening:
        """Predictions for candidate designs (the accuracy only if the user named a source)."""
        ...

    def observe(self, measurements: Mapping[str, float]) -> None:
        """All target latencies measured so far (``{arch: latency_ms}``; idempotent)."""
        ...


class GuideBase:
    """Shared plumbing of the guides: a lock, change detection for :meth:`observe`, pickling.

    Subclasses implement :meth:`_refit` (called with the merged measurements when
    they changed) and :meth:`screen`, and either :meth:`warm_start` or :meth:`_ranked`
    (then :meth:`warm_start` caches its answers per confidence level until the next
    refit, which calls :meth:`_forget_ranking`). :attr:`revision` counts the refits
    that changed the predictions, so that callers know when cached predictions are stale.
    """

    #: Confidence of the latency bound when ``warm_start`` is called without one.
    confidence: float = 0.95

    def __init__(self, space: SearchSpace, latency_budget_ms: float | None) -> None:
        self.space = space
        self.latency_budget_ms = latency_budget_ms
        self._lock = threading.RLock()
        self._seen: dict[str, float] = {}
        self._warm: dict[float, tuple[list[str], bool]] = {}
        self.revision = 0

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def warm_start(self, n: int, *, confidence: float | None = None) -> list[str]:
        level = self.confidence if confidence is None else float(confidence)
        with self._lock:
            cached, complete = self._warm.get(level, ([], False))
            if len(cached) < n and not complete:
                cached, complete = self._ranked(n, level)
                self._warm[level] = (cached, complete)
            return list(cached[:n])

    def latency_of(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(latency_ms, latency_upper_ms)`` of a choice-index matrix: for searches that predict many
        designs after every refit (guides override it to skip the strings and the accuracy)."""
        screening = self.screen(self.space.from_indices(indices))
        return screening.latency_ms, screening.latency_upper_ms

    def _ranked(self, n: int, confidence: float) -> tuple[list[str], bool]:  # pragma: no cover - abstract
        """At least ``n`` designs whose bound at ``confidence`` fits the budget (when that many do), best
        first, and whether they are every such design (then a larger ``n`` needs no new ranking)."""
        raise NotImplementedError

    def _forget_ranking(self) -> None:
        """The predictions changed: warm-start rankings must be recomputed."""
        self._warm = {}
        self.revision += 1

    def observe(self, measurements: Mapping[str, float]) -> None:
        with self._lock:
            fresh = {self.space.format(a): float(v) for a, v in measurements.items() if np.isfinite(v) and v > 0}
            if all(self._seen.get(a) == v for a, v in fresh.items()):
                return
            self._seen.update(fresh)
            self._refit(dict(self._seen))

    @property
    def observed(self) -> dict[str, float]:
        """Measurements received through :meth:`observe` so far."""
        with self._lock:
            return dict(self._seen)

    def _refit(self, measurements: dict[str, float]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError
