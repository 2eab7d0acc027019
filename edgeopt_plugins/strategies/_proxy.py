"""``ProxyStrategy``: approach 1 as an NNI strategy."""

from __future__ import annotations

from typing import Any

from edgeopt_plugins.optimizer import ProxyGuide
from edgeopt_plugins.strategies._strategy import GuidedStrategy

__all__ = ["ProxyStrategy"]

_GUIDE_OPTIONS = ("proxies", "space", "data_dir", "exclude_devices", "method", "proxy", "accuracy", "confidence",
                  "candidates")


class ProxyStrategy(GuidedStrategy):
    """An NNI 3.0 strategy for one target device, guided by adapted proxy devices.

    Accuracy is used only when you name it (``accuracy="table"``, a table or a function);
    otherwise the objective is learned from the reported metrics (see :class:`GuidedStrategy`).

    Args:
        profile: The device (a :class:`~edgeopt_plugins.devices.DeviceProfile`, a CSV path, or
            ``{arch: latency_ms}`` with ``space``).
        latency_budget_ms: The budget the (heuristic) upper bound must fit.
        **kwargs: Options of :class:`~edgeopt_plugins.optimizer.ProxyGuide` (``proxies``,
            ``space``, ``data_dir``, ``exclude_devices``, ``method``, ``proxy``, ``accuracy``,
            ``confidence``, ``candidates``) and of :class:`GuidedStrategy` (``n_warm_start``,
            ``population_size``, ``sample_size``, ``seed``, ...).

    Example:
        >>> from edgeopt_plugins.strategies import ProxyStrategy, run_nni_search
        >>> strategy = ProxyStrategy(profile="phone.csv", latency_budget_ms=20.0, seed=0)  # doctest: +SKIP
        >>> result = run_nni_search("nb201", evaluate, strategy, max_trials=30)  # doctest: +SKIP
    """

    def __init__(self, *, profile: Any, latency_budget_ms: float, **kwargs: Any) -> None:
        guide_options = {k: kwargs.pop(k) for k in _GUIDE_OPTIONS if k in kwargs}
        guide = ProxyGuide(profile, latency_budget_ms, seed=kwargs.get("seed") or 0, **guide_options)
        super().__init__(guide, **kwargs)
