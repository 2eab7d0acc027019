"""OptunaHub entry of edgeopt-plugins: cross-device hardware-aware NAS samplers.

The samplers live in the ``edgeopt-plugins`` package (not on PyPI: ``pip install -c constraints.txt -e .``
in a clone of its repository);
this entry re-exports them so that ``optunahub.load_module("samplers/edgeopt")`` works.
"""

from .sampler import DeviceConditionedSampler, GuidedSampler, ProxySampler

__all__ = ["DeviceConditionedSampler", "ProxySampler", "GuidedSampler"]
