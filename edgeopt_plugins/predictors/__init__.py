"""Predictors: monotonicity statistics, proxy-device and device-conditioned predictors."""

from edgeopt_plugins.predictors._monotonicity import (
    central_device,
    kendall,
    monotonicity_matrix,
    rank_correlation,
    spearman,
)

__all__ = ["spearman", "kendall", "rank_correlation", "monotonicity_matrix", "central_device"]
