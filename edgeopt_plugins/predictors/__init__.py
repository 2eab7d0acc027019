"""Predictors: monotonicity statistics, proxy-device and device-conditioned predictors.

The device-conditioned predictor (approach 2) is fitted by
:func:`fit_conditioned_predictor` on :class:`TrainingDevices`; it embeds a
:class:`~edgeopt_plugins.devices.DeviceProfile` into a :class:`DeviceEmbedding`
and predicts latency (and energy) with calibrated upper bounds. The
:class:`AccuracyPredictor` serves accuracy (exact table lookup with a learned
fallback, or a surrogate of a user-supplied accuracy function).
"""

from edgeopt_plugins.predictors._accuracy import (
    AccuracyPredictor,
    fit_accuracy_predictor,
)
from edgeopt_plugins.predictors._calibration import Calibrator
from edgeopt_plugins.predictors._conditioned import (
    ConditionedPredictor,
    DeviceEmbedding,
    PredictorConfig,
    fit_conditioned_predictor,
)
from edgeopt_plugins.predictors._monotonicity import (
    central_device,
    kendall,
    monotonicity_matrix,
    rank_correlation,
    spearman,
)
from edgeopt_plugins.predictors._training import TrainingDevices

__all__ = [
    "spearman",
    "kendall",
    "rank_correlation",
    "monotonicity_matrix",
    "central_device",
    "TrainingDevices",
    "ConditionedPredictor",
    "DeviceEmbedding",
    "PredictorConfig",
    "fit_conditioned_predictor",
    "Calibrator",
    "AccuracyPredictor",
    "fit_accuracy_predictor",
]
