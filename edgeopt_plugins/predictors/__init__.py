"""Predictors: monotonicity statistics, proxy-device predictors and their few-shot adaptation.

Example:
    >>> from edgeopt_plugins.predictors import spearman
    >>> spearman([1, 2, 3], [2, 4, 9])
    1.0
"""

from edgeopt_plugins.predictors._adapt import (
    ADAPT_METHODS,
    ProxyAdapter,
    SingleProxyPredictor,
    adapt,
)
from edgeopt_plugins.predictors._adapted import AdaptedPredictor
from edgeopt_plugins.predictors._choice import (
    CHOICE_CRITERIA,
    ProxyChoice,
    choose_proxy,
)
from edgeopt_plugins.predictors._hierarchical import (
    META_GRID,
    HierarchicalConfig,
    HierarchicalPredictor,
)
from edgeopt_plugins.predictors._loop import MeasurementLoop, propose_measurements
from edgeopt_plugins.predictors._measurements import Measurements, as_measurements
from edgeopt_plugins.predictors._monotonicity import (
    central_device,
    kendall,
    monotonicity_matrix,
    monotonicity_report,
    rank_correlation,
    spearman,
)
from edgeopt_plugins.predictors._pool import ProxyPool
from edgeopt_plugins.predictors._proxy import PROXY_MODELS, ProxyPredictor
from edgeopt_plugins.predictors._published import PublishedPredictor

__all__ = [
    "ADAPT_METHODS",
    "CHOICE_CRITERIA",
    "META_GRID",
    "PROXY_MODELS",
    "AdaptedPredictor",
    "HierarchicalConfig",
    "HierarchicalPredictor",
    "MeasurementLoop",
    "Measurements",
    "ProxyAdapter",
    "ProxyChoice",
    "ProxyPool",
    "ProxyPredictor",
    "PublishedPredictor",
    "SingleProxyPredictor",
    "adapt",
    "as_measurements",
    "central_device",
    "choose_proxy",
    "kendall",
    "monotonicity_matrix",
    "monotonicity_report",
    "propose_measurements",
    "rank_correlation",
    "spearman",
]
