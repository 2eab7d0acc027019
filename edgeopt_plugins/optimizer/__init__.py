"""The learned device-conditioned optimizer, search guides and the exact training-label solver."""

from edgeopt_plugins.optimizer._exact import best_under_budget, top_under_budget
from edgeopt_plugins.optimizer._guide import GuideBase, Screening, SearchGuide

__all__ = ["best_under_budget", "top_under_budget", "SearchGuide", "GuideBase", "Screening"]
