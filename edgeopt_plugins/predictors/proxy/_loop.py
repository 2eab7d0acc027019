"""``propose_measurements``: the published decision loop, with a choice of *which* architectures to measure.

Adapt; if the estimated rank correlation is below the threshold, ask the device for a few
more measurements (the architectures the current predictor expects to learn most from),
adapt again, and stop at the threshold or the measurement budget.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeopt_plugins.exceptions import InputError, MeasurementError
from edgeopt_plugins.predictors.proxy._adapt import ProxyAdapter
from edgeopt_plugins.predictors.proxy._adapted import AdaptedPredictor
from edgeopt_plugins.predictors._measurements import Measurements, as_measurements

__all__ = ["MeasurementLoop", "propose_measurements"]


@dataclass
class MeasurementLoop:
    """Outcome of :func:`propose_measurements`.

    Attributes:
        predictor: The last adapted predictor.
        measurements: Every measurement taken (initial ones included).
        reached: Whether the estimated rank correlation reached the threshold.
        history: One row per round: ``k``, ``estimated_spearman``, ``spearman_std``, ``asked``.
    """

    predictor: AdaptedPredictor
    measurements: Measurements
    reached: bool
    history: list[dict[str, Any]] = field(default_factory=list)


def propose_measurements(
    adapter: ProxyAdapter,
    measure: Callable[[list[str]], Sequence[float] | np.ndarray],
    *,
    initial: Any = None,
    n_initial: int = 5,
    batch: int = 5,
    threshold: float = 0.9,
    max_measurements: int = 50,
    candidates: Iterable[Any] | np.ndarray | None = None,
    seed: int = 0,
    progress: bool = False,
) -> MeasurementLoop:
    """Measure until the adapted predictor's estimated Spearman reaches ``threshold``.

    Args:
        adapter: How to adapt (proxies and method).
        measure: Called with a list of canonical architecture strings; returns their
            latencies in ms (e.g. a device's ``measure`` or a table lookup).
        initial: Measurements already taken (profile, dict, :class:`Measurements`); when
            absent, ``n_initial`` architectures chosen by the proxies' prior are measured.
        n_initial: How many to measure first when ``initial`` is absent (at least 2).
        batch: How many to ask for per round.
        threshold: Stop when the estimated Spearman is at least this (default 0.9, as published).
        max_measurements: Never measure more than this in total.
        candidates: Architectures to choose from (default: the proxies' reference set).
        seed: Seed of the choices.
        progress: Show a progress bar.

    Example:
        >>> from edgeopt_plugins.predictors import ProxyAdapter, propose_measurements
        >>> loop = propose_measurements(ProxyAdapter(proxies), my_device.measure)  # doctest: +SKIP
        >>> loop.predictor.estimated_spearman, len(loop.measurements)  # doctest: +SKIP
    """
    if not 0.0 < threshold <= 1.0:
        raise InputError(f"propose_measurements: threshold must be in (0, 1], got {threshold!r}")
    for name, value, low in (("n_initial", n_initial, 2), ("batch", batch, 1), ("max_measurements", max_measurements, 2)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise InputError(f"propose_measurements: {name} must be an integer >= {low}, got {value!r}")
    space = adapter.space
    cand = None if candidates is None else space.to_indices(candidates)
    if initial is not None:
        data = as_measurements(initial, space=space)
    else:
        first = adapter.fit(None).next_archs(min(n_initial, max_measurements), cand, seed=seed)
        data = Measurements(space, tuple(first), _measured(measure, first), "target")
    history: list[dict[str, Any]] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_measurements, initial=len(data), desc="measurements", unit="arch")
    try:
        round_no = 0
        while True:
            model = adapter.fit(data)
            reached = bool(model.estimated_spearman >= threshold)
            history.append({"k": len(data), "estimated_spearman": model.estimated_spearman,
                            "spearman_std": model.spearman_std, "asked": 0})
            if reached or len(data) >= max_measurements:
                return MeasurementLoop(model, data, reached, history)
            ask = model.next_archs(min(batch, max_measurements - len(data)), cand, seed=seed + round_no + 1)
            if not ask:
                return MeasurementLoop(model, data, reached, history)
            history[-1]["asked"] = len(ask)
            data = data.extended(ask, _measured(measure, ask))
            round_no += 1
            if bar is not None:
                bar.update(len(ask))
    finally:
        if bar is not None:
            bar.close()


def _measured(measure: Callable[[list[str]], Any], archs: list[str]) -> np.ndarray:
    try:
        values = np.asarray(measure(list(archs)), dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise MeasurementError(f"measure() returned something that is not a list of numbers ({err})") from None
    if values.shape[0] != len(archs):
        raise MeasurementError(f"measure() returned {values.shape[0]} latencies for {len(archs)} architectures")
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        raise MeasurementError(f"measure() returned an invalid latency {values[bad][0]!r} for {archs[int(np.argmax(bad))]}")
    return values
