"""Approach 1: proxy devices adapted to a target from a few of its measurements.

A :class:`ProxyPool` serves the proxies' latencies for any architecture; :class:`ProxyAdapter`
(or :func:`adapt`) adapts them to a target's measurements and returns an
:class:`AdaptedPredictor`; :func:`choose_proxy` picks one proxy; :func:`propose_measurements`
runs the published decision loop; :func:`plan_profile` chooses which architectures to measure. :class:`ProxyPredictor` is a predictor fitted on one device.
"""

from edgeopt_plugins.predictors.proxy._adapt import ADAPT_METHODS, ProxyAdapter, SingleProxyPredictor, adapt
from edgeopt_plugins.predictors.proxy._adapted import AdaptedPredictor
from edgeopt_plugins.predictors.proxy._choice import CHOICE_CRITERIA, ProxyChoice, choose_proxy
from edgeopt_plugins.predictors.proxy._hierarchical import HierarchicalConfig, HierarchicalPredictor
from edgeopt_plugins.predictors.proxy._loop import MeasurementLoop, propose_measurements
from edgeopt_plugins.predictors.proxy._plan import plan_profile
from edgeopt_plugins.predictors.proxy._pool import ProxyPool
from edgeopt_plugins.predictors.proxy._proxy import PROXY_MODELS, ProxyPredictor
from edgeopt_plugins.predictors.proxy._published import PublishedPredictor

__all__ = [
    "ADAPT_METHODS",
    "CHOICE_CRITERIA",
    "PROXY_MODELS",
    "AdaptedPredictor",
    "HierarchicalConfig",
    "HierarchicalPredictor",
    "MeasurementLoop",
    "ProxyAdapter",
    "ProxyChoice",
    "ProxyPool",
    "ProxyPredictor",
    "PublishedPredictor",
    "SingleProxyPredictor",
    "adapt",
    "choose_proxy",
    "plan_profile",
    "propose_measurements",
]
