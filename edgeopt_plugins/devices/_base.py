"""The :class:`Device` protocol and :class:`BaseDevice`, the behaviour every device shares.

A device turns architectures into measured metrics. ``measure`` returns one array
per metric, aligned with the architectures passed in:

- ``"latency_ms"`` always (``NaN`` only where a device was told to skip what it
  cannot measure, see :class:`~edgeopt_plugins.devices.TableDevice`);
- ``"energy_mj"`` when the device knows energy;
- device-specific extras (for example the spread of repeated timings), which
  generic code ignores.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from edgeopt_plugins.devices._profile import DeviceProfile
from edgeopt_plugins.exceptions import InputError, MeasurementError
from edgeopt_plugins.spaces import ArchLike, SearchSpace

__all__ = ["Device", "BaseDevice", "Archs"]

#: What ``measure`` accepts: architectures in any form the space parses, or a choice-index matrix.
Archs = Sequence[ArchLike] | np.ndarray

#: The metrics whose values must be positive (extras are not checked).
_CHECKED = ("latency_ms", "energy_mj")


@runtime_checkable
class Device(Protocol):
    """Anything that measures architectures of one search space.

    Attributes:
        name: Stable name; the same settings always give the same name.
        metadata: JSON-serialisable facts that define the device (how it measures).
        space: The search space whose architectures it measures.
    """

    name: str
    metadata: dict[str, Any]
    space: SearchSpace

    def measure(self, archs: Archs) -> dict[str, np.ndarray]:
        """Metrics of ``archs``: ``"latency_ms"`` (and ``"energy_mj"`` when known), one value per arch."""
        ...

    def profile(self, archs: Archs) -> DeviceProfile:
        """Measure ``archs`` and return them as a :class:`DeviceProfile`."""
        ...


class BaseDevice(ABC):
    """Shared behaviour of the library's devices: input validation, output checks, profiles.

    Subclasses set :attr:`name`, :attr:`metadata` and :attr:`space` and implement
    :meth:`_measure` on a validated choice-index matrix.
    """

    name: str
    metadata: dict[str, Any]
    space: SearchSpace

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, space={self.space.name!r})"

    @abstractmethod
    def _measure(self, indices: np.ndarray, *, progress: bool) -> dict[str, np.ndarray]:
        """Metrics of the rows of ``indices`` (valid choice indices of :attr:`space`)."""

    def measure(self, archs: Archs, *, progress: bool = False) -> dict[str, np.ndarray]:
        """Measure ``archs``.

        Args:
            archs: Architectures (strings, params dicts) or a choice-index matrix.
            progress: Show a progress bar where measuring takes time.

        Returns:
            ``{"latency_ms": (n,), ...}`` aligned with ``archs``; see the module docs.

        Raises:
            InputError: for an empty list.
            ArchitectureError: for an architecture outside :attr:`space`.
            MeasurementError: when the device returns an invalid value.
        """
        idx = self.space.to_indices(archs)
        if not len(idx):
            raise InputError(f"device {self.name}: no architectures to measure")
        out = self._measure(idx, progress=progress)
        for metric in _CHECKED:
            if metric not in out:
                if metric == "latency_ms":
                    raise MeasurementError(f"device {self.name}: measured no latency_ms")
                continue
            values = np.asarray(out[metric], dtype=np.float64)
            if values.shape != (len(idx),):
                raise MeasurementError(f"device {self.name}: {metric} has shape {values.shape}, expected ({len(idx)},)")
            with np.errstate(invalid="ignore"):
                bad = ~np.isnan(values) & ~(np.isfinite(values) & (values > 0))
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                arch = self.space.from_indices(idx[row])[0]
                raise MeasurementError(f"device {self.name}: {metric} of {arch} is {values[row]} (must be positive)")
            out[metric] = values
        return out

    def profile(
        self, archs: Archs, *, progress: bool = False, metadata: dict[str, Any] | None = None
    ) -> DeviceProfile:
        """Measure ``archs`` and return a :class:`DeviceProfile` named after this device.

        Architectures the device skipped (``NaN`` latency) are left out.

        Args:
            archs: Architectures (strings, params dicts) or a choice-index matrix.
            progress: Show a progress bar where measuring takes time.
            metadata: Extra facts for the profile's metadata (they override the device's).

        Raises:
            MeasurementError: if no architecture could be measured.
        """
        idx = self.space.to_indices(archs)
        measured = self.measure(idx, progress=progress)
        keep = np.isfinite(measured["latency_ms"])
        energy = measured.get("energy_mj")
        if energy is not None:
            keep &= np.isfinite(energy)
        if not keep.any():
            raise MeasurementError(f"device {self.name}: none of the {len(idx)} architectures could be measured")
        return DeviceProfile(
            self.space,
            tuple(self.space.from_indices(idx[keep])),
            measured["latency_ms"][keep],
            None if energy is None else energy[keep],
            {**self.metadata, "name": self.name, **self._summary(measured, keep), **(metadata or {})},
        )

    def _summary(self, measured: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, Any]:
        """Facts about one measurement worth keeping in a profile's metadata (none by default)."""
        return {}
