"""The learned device-conditioned optimizer and its exact training-label solver."""

from edgeopt_plugins.optimizer._exact import best_under_budget, top_under_budget

__all__ = ["best_under_budget", "top_under_budget"]
