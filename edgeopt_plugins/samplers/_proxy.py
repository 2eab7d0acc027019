"""``ProxySampler``: approach 1 as a drop-in Optuna sampler."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from optuna.samplers import BaseSampler

from edgeopt_plugins._values import check_seed
from edgeopt_plugins.data import MetricTable
from edgeopt_plugins.optimizer import ProxyGuide
from edgeopt_plugins.optimizer._proxy_guide import AccuracySource
from edgeopt_plugins.samplers._guided import GuidedSampler, LatencySpec
from edgeopt_plugins.spaces import ArchLike, SearchSpace

__all__ = ["ProxySampler"]


class ProxySampler(GuidedSampler):
    """An Optuna sampler for one target device, driven by proxy devices adapted to it.

    The proxies' measured latencies are adapted to the target from its profile (the
    hierarchical adaptation by default, or the published one); the first trials are
    the most accurate designs predicted to fit the budget, later ones are screened
    base-sampler proposals, and every latency the objective reports refits the adaptation.

    Args:
        profile: The device: a :class:`~edgeopt_plugins.devices.DeviceProfile`, a profile
            CSV path, or ``{arch: latency_ms}`` (then give ``space``).
        latency_budget_ms: Designs are screened so that their upper bound fits it.
        proxies: Latency table of the proxy devices (default: the space's benchmark table).
        space: The search space, when the profile does not say it.
        data_dir: Benchmark data folder.
        exclude_devices: Table devices not used as proxies.
        method: ``"hierarchical"`` (default), ``"published"`` or ``"proxy"``.
        proxy: Force one proxy device (or a set).
        accuracy: Accuracy table or function for warm starts and repairs (default: the space's table).
        confidence: Confidence of the heuristic upper bound (see :func:`~edgeopt_plugins.optimizer._proxy_guide.upper_margin`).
        base_sampler: Sampler whose proposals are screened (default TPE).
        seed: Seed of the sampler and the adaptation.
        param_names: The study's parameter names, if not the space's decision names.
        latency_from: Where the objective reports measured latency (see :func:`latency_reader`).
        n_warm_start: How many predicted-best designs to try first.
        n_explore: How many trials then follow the designs that plausibly fit (median prediction).
        candidates: Only warm-start with these architectures.

    Example:
        >>> import optuna
        >>> from edgeopt_plugins.samplers import ProxySampler
        >>> sampler = ProxySampler(profile="phone.csv", latency_budget_ms=20.0, seed=0)  # doctest: +SKIP
        >>> study = optuna.create_study(direction="maximize", sampler=sampler)  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        profile: Any,
        latency_budget_ms: float,
        proxies: MetricTable | None = None,
        space: str | SearchSpace | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        exclude_devices: Iterable[str] = (),
        method: str = "hierarchical",
        proxy: str | Sequence[str] | None = None,
        accuracy: AccuracySource = None,
        confidence: float = 0.95,
        base_sampler: BaseSampler | None = None,
        seed: int | None = None,
        param_names: Mapping[str, str] | None = None,
        latency_from: LatencySpec = "user_attr:latency_ms",
        n_warm_start: int = 5,
        n_explore: int = 20,
        candidates: Iterable[ArchLike] | None = None,
    ) -> None:
        check_seed(seed, allow_none=True)  # before the adaptation uses it
        guide = ProxyGuide(profile, latency_budget_ms, proxies=proxies, space=space, data_dir=data_dir,
                           exclude_devices=exclude_devices, method=method, proxy=proxy, accuracy=accuracy,
                           confidence=confidence, candidates=candidates, seed=seed or 0)
        super().__init__(guide, base_sampler=base_sampler, seed=seed, param_names=param_names,
                         latency_from=latency_from, n_warm_start=n_warm_start, n_explore=n_explore)
