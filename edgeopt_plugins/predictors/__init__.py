"""Predictors: monotonicity statistics, proxy-device and device-conditioned predictors.

Approach 1 (proxy devices): :class:`ProxyAdapter` / :func:`adapt` adapt proxy
devices (a :class:`ProxyPool` built from a latency table) to a target from a few of
its measurements and return an :class:`AdaptedPredictor` with an estimate of the
rank correlation it achieves; :func:`propose_measurements` runs the published
decision loop (measure more until the estimate reaches a threshold).

Approach 2 (device-conditioned): :func:`fit_conditioned_predictor` fits a
:class:`ConditionedPredictor` on :class:`TrainingDevices`; it embeds a
:class:`~edgeopt_plugins.devices.DeviceProfile` into a :class:`DeviceEmbedding`
and predicts latency (and energy) with calibrated upper bounds. The
:class:`AccuracyPredictor` serves accuracy (exact table lookup with a learned
fallback, or a surrogate of a user-supplied accuracy function).

Example:
    >>> from edgeopt_plugins.predictors import spearman
    >>> spearman([1, 2, 3], [2, 4, 9])
    1.0
"""

from edgeopt_plugins.predictors._accuracy import AccuracyPredictor, fit_accuracy_predictor
from edgeopt_plugins.predictors._adapt import (
    ADAPT_METHODS,
    ProxyAdapter,
    SingleProxyPredictor,
    adapt,
)
from edgeopt_plugins.predictors._adapted import AdaptedPredictor
from edgeopt_plugins.predictors._calibration import Calibrator
from edgeopt_plugins.predictors._choice import (
    CHOICE_CRITERIA,
    ProxyChoice,
    choose_proxy,
)
from edgeopt_plugins.predictors._conditioned import (
    ConditionedPredictor,
    DeviceEmbedding,
    PredictorConfig,
    fit_conditioned_predictor,
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
from edgeopt_plugins.predictors._store import check_model_folder
from edgeopt_plugins.predictors._training import TrainingDevices

__all__ = [
    "ADAPT_METHODS",
    "CHOICE_CRITERIA",
    "META_GRID",
    "PROXY_MODELS",
    "AccuracyPredictor",
    "AdaptedPredictor",
    "Calibrator",
    "ConditionedPredictor",
    "DeviceEmbedding",
    "HierarchicalConfig",
    "HierarchicalPredictor",
    "MeasurementLoop",
    "Measurements",
    "PredictorConfig",
    "ProxyAdapter",
    "ProxyChoice",
    "ProxyPool",
    "ProxyPredictor",
    "PublishedPredictor",
    "SingleProxyPredictor",
    "TrainingDevices",
    "adapt",
    "as_measurements",
    "central_device",
    "check_model_folder",
    "choose_proxy",
    "fit_accuracy_predictor",
    "fit_conditioned_predictor",
    "kendall",
    "monotonicity_matrix",
    "monotonicity_report",
    "propose_measurements",
    "rank_correlation",
    "spearman",
]
