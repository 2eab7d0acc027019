"""Devices: things that turn architectures into measured metrics, and device profiles.

- :class:`Device`: the protocol (``name``, ``metadata``, ``space``, ``measure``, ``profile``).
- :class:`TableDevice` / :func:`table_devices`: columns of a benchmark latency table.
- :class:`TorchDevice`: this machine, measured for real with PyTorch, one device per setting.
- :class:`CommandDevice` / :class:`CommandMeasurer`: a device measured by a command (a remote
  board): the command gets the design's exported model file and prints its latency.
- :func:`spread_archs` / :func:`read_arch_list`: which architectures to measure.
- :class:`SimulatedFleet`: any number of plausible devices fitted to the real ones, for scale studies.
- :class:`DeviceProfile`: measured (architecture, latency) pairs, as CSV + JSON sidecar.

Example:
    >>> from edgeopt_plugins.devices import DeviceProfile
    >>> DeviceProfile.from_dict("nb201", {"|none~0|+|none~0|none~1|+|none~0|none~1|none~2|": 1.0}).name
    'unnamed'
"""

from edgeopt_plugins.devices._base import Archs, BaseDevice, Device
from edgeopt_plugins.devices._command import CommandDevice, CommandMeasurer
from edgeopt_plugins.devices._export import EXPORT_FORMATS, export_model
from edgeopt_plugins.devices._fleet import (
    FLEET_FORMAT,
    FleetChunk,
    FleetConfig,
    SimulatedDevice,
    SimulatedDevices,
    SimulatedFleet,
)
from edgeopt_plugins.devices._profile import PROFILE_FORMAT, DeviceProfile, sidecar_path
from edgeopt_plugins.devices._select import read_arch_list, spread_archs
from edgeopt_plugins.devices._table import TableDevice, table_devices
from edgeopt_plugins.devices._torch import (
    DTYPES,
    MEASURABLE_SPACES,
    SPREAD_WARNING,
    STABILITY_WARNING,
    TorchDevice,
    cpu_model,
    is_measurable,
    summarize_timings,
)

__all__ = [
    "Device",
    "BaseDevice",
    "Archs",
    "DeviceProfile",
    "sidecar_path",
    "PROFILE_FORMAT",
    "spread_archs",
    "read_arch_list",
    "TableDevice",
    "table_devices",
    "TorchDevice",
    "MEASURABLE_SPACES",
    "SPREAD_WARNING",
    "STABILITY_WARNING",
    "is_measurable",
    "CommandDevice",
    "CommandMeasurer",
    "EXPORT_FORMATS",
    "export_model",
    "DTYPES",
    "SimulatedFleet",
    "SimulatedDevices",
    "SimulatedDevice",
    "FleetConfig",
    "FleetChunk",
    "FLEET_FORMAT",
    "cpu_model",
    "summarize_timings",
]
