"""Devices: things that turn architectures into measured metrics, and device profiles.

Example:
    >>> from edgeopt_plugins.devices import DeviceProfile
    >>> DeviceProfile.from_dict("nb201", {"|none~0|+|none~0|none~1|+|none~0|none~1|none~2|": 1.0}).name
    'unnamed'
"""

from edgeopt_plugins.devices._profile import PROFILE_FORMAT, DeviceProfile, sidecar_path

__all__ = ["DeviceProfile", "sidecar_path", "PROFILE_FORMAT"]
