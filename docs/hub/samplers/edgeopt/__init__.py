"""OptunaHub entry of edgeopt-plugins: cross-device hardware-aware NAS samplers.

The samplers live in the ``edgeopt-plugins`` package (``pip install edgeopt-plugins``);
this entry re-exports them so that ``optunahub.load_module("samplers/edgeopt")`` works.
"""

from .sampler import DeviceConditionedSampler, GuidedSampler, ProxySampler

__all__ = ["DeviceConditionedSampler", "ProxySampler", "GuidedSampler"]
