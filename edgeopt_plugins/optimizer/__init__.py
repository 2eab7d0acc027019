"""The learned device-conditioned optimizer, its exact training-label solver, and the fitted model.

- :func:`best_under_budget` / :func:`top_under_budget`: the exact solver.
- :class:`ConditionedModel`: approach 2 in one object (device-conditioned
  predictor with calibrated upper bounds, accuracy predictor, learned
  optimizer), fitted by :meth:`ConditionedModel.fit` or :func:`fit_from_data`,
  saved and loaded as a folder of JSON + safetensors.
"""

from edgeopt_plugins.optimizer._exact import best_under_budget, top_under_budget
from edgeopt_plugins.optimizer._learned import (
    LearnedOptimizer,
    OptimizerConfig,
    fit_learned_optimizer,
)
from edgeopt_plugins.optimizer._model import (
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    ConditionedModel,
    Design,
    FitConfig,
    fit_from_data,
)

__all__ = [
    "best_under_budget",
    "top_under_budget",
    "ConditionedModel",
    "Design",
    "FitConfig",
    "fit_from_data",
    "LearnedOptimizer",
    "OptimizerConfig",
    "fit_learned_optimizer",
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
]
