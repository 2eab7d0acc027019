"""Optuna samplers that warm-start, screen and adapt the search with edgeopt predictors.

- :class:`DeviceConditionedSampler`: approach 2 (a fitted device-conditioned model).
- :class:`ProxySampler`: approach 1 (proxy devices adapted to the target).
- :class:`GuidedSampler`: the shared machinery, for your own :class:`~edgeopt_plugins.optimizer.SearchGuide`.

Example:
    >>> import optuna
    >>> from edgeopt_plugins.samplers import DeviceConditionedSampler
    >>> sampler = DeviceConditionedSampler(model="model/", profile="phone.csv", latency_budget_ms=20.0)  # doctest: +SKIP
    >>> study = optuna.create_study(direction="maximize", sampler=sampler)  # doctest: +SKIP
"""

from edgeopt_plugins.samplers._conditioned import DeviceConditionedSampler
from edgeopt_plugins.samplers._guided import GuidedSampler, latency_reader
from edgeopt_plugins.samplers._proxy import ProxySampler

__all__ = ["DeviceConditionedSampler", "ProxySampler", "GuidedSampler", "latency_reader"]
