"""Approach 2: one device-conditioned predictor for every device.

:func:`fit_conditioned_predictor` fits a :class:`ConditionedPredictor` on
:class:`TrainingDevices`; it embeds a device profile into a :class:`DeviceEmbedding` and
predicts latency (and energy) with calibrated upper bounds.
"""

from edgeopt_plugins.predictors.conditioned._conditioned import (
    ConditionedPredictor,
    DeviceEmbedding,
    PredictorConfig,
    fit_conditioned_predictor,
)
from edgeopt_plugins.predictors.conditioned._training import TrainingDevices

__all__ = ["ConditionedPredictor", "DeviceEmbedding", "PredictorConfig", "TrainingDevices", "fit_conditioned_predictor"]
