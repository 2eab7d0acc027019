"""Optuna samplers that warm-start, screen and adapt the search with edgeopt predictors.

Example:
    >>> import optuna
    >>> from edgeopt_plugins.samplers import GuidedSampler  # doctest: +SKIP
"""

from edgeopt_plugins.samplers._guided import GuidedSampler, latency_reader

__all__ = ["GuidedSampler", "latency_reader"]
