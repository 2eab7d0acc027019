"""``Measurements``: the (architecture, latency) pairs a predictor is fitted on or adapted to.

Predictors accept whatever a user has at hand and turn it into this one small type:
a :class:`~edgeopt_plugins.devices.DeviceProfile`, one column of a
:class:`~edgeopt_plugins.data.MetricTable`, a plain ``{arch: latency_ms}`` dict, or
any object with ``archs`` and ``latency_ms`` attributes (what a profiling device returns).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeopt_plugins.data import MetricTable
from edgeopt_plugins.exceptions import ArchitectureError, InputError
from edgeopt_plugins.spaces import SearchSpace, get_space

__all__ = ["Measurements", "as_measurements"]


@dataclass(frozen=True)
class Measurements:
    """Latencies of some architectures on one device; at least two usable rows.

    Attributes:
        space: The search space of the architectures.
        archs: Canonical architecture strings, unique.
        latency_ms: Positive finite latency of each architecture.
        name: A label for messages (a device name, ``"target"``...).

    Example:
        >>> from edgeopt_plugins.predictors import Measurements
        >>> from edgeopt_plugins.spaces import get_space
        >>> archs = get_space("nb201").sample(3, seed=0)
        >>> m = Measurements.from_dict("nb201", dict(zip(archs, [1.0, 2.0, 3.0])))
        >>> len(m), m.indices.shape
        (3, (3, 6))
    """

    space: SearchSpace
    archs: tuple[str, ...]
    latency_ms: np.ndarray
    name: str = "target"

    def __post_init__(self) -> None:
        space = get_space(self.space)
        object.__setattr__(self, "space", space)
        lat = np.asarray(self.latency_ms, dtype=np.float64).reshape(-1)
        if lat.shape[0] != len(self.archs):
            raise InputError(f"measurements {self.name}: {len(self.archs)} architectures but {lat.shape[0]} latencies")
        try:
            archs = tuple(space.format(a) for a in self.archs)
        except ArchitectureError as err:
            raise ArchitectureError(f"measurements {self.name}: {err}") from None
        # Keep only usable rows: finite positive latencies; the first of repeated architectures.
        keep: dict[str, float] = {}
        for arch, value in zip(archs, lat):
            if np.isfinite(value) and value > 0 and arch not in keep:
                keep[arch] = float(value)
        if len(keep) < 2:
            raise InputError(
                f"measurements {self.name}: need at least 2 usable rows (distinct architectures with a positive "
                f"finite latency), got {len(keep)}"
            )
        values = np.array(list(keep.values()))
        values.setflags(write=False)
        object.__setattr__(self, "archs", tuple(keep))
        object.__setattr__(self, "latency_ms", values)

    def __len__(self) -> int:
        return len(self.archs)

    @property
    def indices(self) -> np.ndarray:
        """Choice-index matrix of the measured architectures."""
        return self.space.to_indices(list(self.archs))

    def subset(self, rows: Any) -> Measurements:
        """The measurements at the given row positions (a list or boolean mask)."""
        pos = np.arange(len(self.archs))[rows]
        return Measurements(self.space, tuple(self.archs[i] for i in pos), self.latency_ms[pos], self.name)

    def extended(self, archs: Any, latency_ms: Any) -> Measurements:
        """New measurements with more rows (a re-measured architecture takes the new value)."""
        values = dict(zip(self.archs, self.latency_ms.tolist()))
        for arch, value in zip(archs, np.asarray(latency_ms, dtype=np.float64).reshape(-1)):
            values.pop(self.space.format(arch), None)
            values[self.space.format(arch)] = float(value)
        return Measurements(self.space, tuple(values), np.array(list(values.values())), self.name)

    @classmethod
    def from_dict(cls, space: str | SearchSpace, latencies: Mapping[Any, float], *, name: str = "target") -> Measurements:
        """Measurements from ``{arch: latency_ms}``."""
        return cls(get_space(space), tuple(latencies), np.array(list(latencies.values()), dtype=np.float64), name)


def as_measurements(
    source: Any,
    *,
    space: str | SearchSpace | None = None,
    device: str | None = None,
    name: str | None = None,
) -> Measurements:
    """Turn a profile, a table column, a dict or a ``Measurements`` into :class:`Measurements`.

    Args:
        source: A :class:`Measurements`; a ``DeviceProfile`` (or any object with
            ``archs`` and ``latency_ms``); a ``MetricTable`` (with ``device``); or a
            ``{arch: latency_ms}`` mapping (with ``space``).
        space: Search space, needed for a mapping and checked against the others.
        device: Column to take from a table.
        name: Label used in messages (default: the device or profile name).

    Raises:
        InputError: for an unsupported source, a space mismatch, or fewer than two
            usable rows (missing, zero, negative or NaN values do not count).

    Example:
        >>> from edgeopt_plugins.predictors import as_measurements
        >>> from edgeopt_plugins.spaces import get_space
        >>> a, b = get_space("nb201").sample(2, seed=1)
        >>> len(as_measurements({a: 1.0, b: 2.5}, space="nb201"))
        2
    """
    wanted = get_space(space) if space is not None else None
    if isinstance(source, Measurements):
        result = source if name is None else Measurements(source.space, source.archs, source.latency_ms, name)
    elif isinstance(source, MetricTable):
        if device is None:
            raise InputError("as_measurements: a table needs the device column to take (device=...)")
        if source.metric != "latency_ms":
            raise InputError(f"as_measurements: table {source.source} holds {source.metric}, not latency_ms")
        col = source.column(device)
        rows = np.flatnonzero(np.isfinite(col))
        result = Measurements(source.space, tuple(source.archs[i] for i in rows), col[rows], name or device)
    elif isinstance(source, Mapping):
        if wanted is None:
            raise InputError("as_measurements: a dict of latencies needs the search space (space=...)")
        result = Measurements.from_dict(wanted, source, name=name or "target")
    elif hasattr(source, "archs") and hasattr(source, "latency_ms"):
        label = name or str(getattr(source, "name", None) or "target")
        src_space = getattr(source, "space", None) or wanted
        if src_space is None:
            raise InputError(f"as_measurements: {type(source).__name__} has no space; pass space=...")
        result = Measurements(get_space(src_space), tuple(source.archs), np.asarray(source.latency_ms), label)
    else:
        raise InputError(
            f"as_measurements: expected Measurements, a DeviceProfile, a MetricTable column or a dict, "
            f"got {type(source).__name__}"
        )
    if wanted is not None and result.space.name != wanted.name:
        raise InputError(f"measurements {result.name}: space is {result.space.name!r}, expected {wanted.name!r}")
    return result
