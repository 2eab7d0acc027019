"""Re-export of the edgeopt-plugins samplers (the implementation is in the pip package)."""

from edgeopt_plugins.samplers import DeviceConditionedSampler, GuidedSampler, ProxySampler

__all__ = ["DeviceConditionedSampler", "ProxySampler", "GuidedSampler"]
