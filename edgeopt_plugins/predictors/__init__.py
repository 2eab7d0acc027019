"""Predictors: monotonicity statistics, proxy-device and device-conditioned predictors.

Each approach has its own room: :mod:`edgeopt_plugins.predictors.proxy` (approach 1) and
:mod:`edgeopt_plugins.predictors.conditioned` (approach 2); statistics, measurements, accuracy
and calibration are shared. Every public name is also importable from here.

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
from edgeopt_plugins.predictors._calibration import Calibrator
from edgeopt_plugins.predictors._measurements import Measurements, as_measurements
from edgeopt_plugins.predictors._monotonicity import (
    central_device,
    kendall,
    monotonicity_matrix,
    monotonicity_report,
    rank_correlation,
    spearman,
)
from edgeopt_plugins.predictors._store import check_model_folder
from edgeopt_plugins.predictors.conditioned import (
    ConditionedPredictor,
    DeviceEmbedding,
    PredictorConfig,
    TrainingDevices,
    fit_conditioned_predictor,
)
from edgeopt_plugins.predictors.proxy import (
    ADAPT_METHODS,
    CHOICE_CRITERIA,
    PROXY_MODELS,
    AdaptedPredictor,
    HierarchicalConfig,
    HierarchicalPredictor,
    MeasurementLoop,
    ProxyAdapter,
    ProxyChoice,
    ProxyPool,
    ProxyPredictor,
    PublishedPredictor,
    SingleProxyPredictor,
    adapt,
    choose_proxy,
    plan_profile,
    propose_measurements,
)

__all__ = [
    "ADAPT_METHODS",
    "CHOICE_CRITERIA",
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
    "plan_profile",
    "fit_accuracy_predictor",
    "fit_conditioned_predictor",
    "kendall",
    "monotonicity_matrix",
    "monotonicity_report",
    "propose_measurements",
    "rank_correlation",
    "spearman",
]
