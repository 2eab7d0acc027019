"""The learned device-conditioned optimizer, search guides and the exact training-label solver.

- :func:`best_under_budget` / :func:`top_under_budget`: the exact solver.
- :class:`ConditionedModel`: approach 2 in one object (device-conditioned
  predictor with calibrated upper bounds, accuracy predictor, learned
  optimizer), fitted by :meth:`ConditionedModel.fit` or :func:`fit_from_data`,
  saved and loaded as a folder of JSON + safetensors.
- :class:`SearchGuide`: what Optuna samplers and NNI strategies ask of a
  predictor stack; :class:`ConditionedGuide` serves it from a ``ConditionedModel``,
  :class:`ProxyGuide` from proxy devices adapted to the target (approach 1).
- :class:`GuidedSearch`: the decision rule of the guided samplers and strategies
  (warm start, acquisition, screening of base proposals and the rule by which the
  guidance yields), with :class:`LatencyCalibration` (online recalibration of the
  latency bound on the target's measurements) and :class:`ObjectiveSurrogate` (the
  objective learned online when no accuracy is named, see :func:`accuracy_source`).
"""

from edgeopt_plugins.optimizer._exact import best_under_budget, top_under_budget
from edgeopt_plugins.optimizer._guide import GuideBase, Screening, SearchGuide
from edgeopt_plugins.optimizer._learned import (
    LearnedOptimizer,
    OptimizerConfig,
    candidate_pool,
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
from edgeopt_plugins.optimizer._conditioned_guide import ConditionedGuide, check_budget  # noqa: I001 (needs the model)
from edgeopt_plugins.optimizer._proxy_guide import ProxyGuide
from edgeopt_plugins.optimizer._accuracy_source import AccuracySource, AccuracySpec, accuracy_source
from edgeopt_plugins.optimizer._online import LatencyCalibration, LatencyCorrection
from edgeopt_plugins.optimizer._surrogate import ObjectiveSurrogate
from edgeopt_plugins.optimizer._search import NO_LATENCY_WARN_AFTER, GuidedSearch, Observation, Proposal

__all__ = [
    "best_under_budget",
    "top_under_budget",
    "SearchGuide",
    "GuideBase",
    "Screening",
    "ConditionedGuide",
    "ProxyGuide",
    "GuidedSearch",
    "NO_LATENCY_WARN_AFTER",
    "Observation",
    "Proposal",
    "LatencyCalibration",
    "LatencyCorrection",
    "ObjectiveSurrogate",
    "AccuracySource",
    "AccuracySpec",
    "accuracy_source",
    "check_budget",
    "ConditionedModel",
    "Design",
    "FitConfig",
    "fit_from_data",
    "LearnedOptimizer",
    "OptimizerConfig",
    "fit_learned_optimizer",
    "candidate_pool",
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
]
