"""``ProxySampler``: approach 1 as a drop-in Optuna sampler."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from optuna.samplers import BaseSampler

from edgeopt_plugins._values import check_seed
from edgeopt_plugins.data import MetricTable
from edgeopt_plugins.optimizer import AccuracySpec, ProxyGuide
from edgeopt_plugins.samplers._guided import GuidedSampler, LatencySpec
from edgeopt_plugins.samplers._params import ChoiceValues
from edgeopt_plugins.spaces import ArchLike, SearchSpace

__all__ = ["ProxySampler"]


class ProxySampler(GuidedSampler):
    """An Optuna sampler for one target device, driven by proxy devices adapted to it.

    The proxies' measured latencies are adapted to the target from its profile (the
    hierarchical adaptation by default, or the published one), and every latency
    the objective reports refits the adaptation and recalibrates its bound. How
    trials are chosen, and how the guidance yields to the base sampler when it is
    wrong, is described in :class:`~edgeopt_plugins.samplers.GuidedSampler`.

    Accuracy is used only when you name it (``accuracy="table"`` for the space's
    benchmark table, ``"table:cifar100"``, an accuracy table or a function); by
    default it is unknown and learned from the study's objective values.

    Args:
        profile: The device: a :class:`~edgeopt_plugins.devices.DeviceProfile`, a profile
            CSV path, or ``{arch: latency_ms}`` (then give ``space``).
        latency_budget_ms: The latency budget the designs should fit.
        proxies: Latency table of the proxy devices (default: the space's benchmark table).
        space: The search space, when the profile does not say it.
        data_dir: Benchmark data folder.
        exclude_devices: Table devices not used as proxies.
        method: ``"hierarchical"`` (default), ``"published"`` or ``"proxy"``.
        proxy: Force one proxy device (or a set).
        accuracy: Where accuracy comes from (default ``None``: unknown, learned online).
        confidence: Confidence of the latency upper bound.
        base_sampler: Sampler of the base trials and of non-architecture parameters (default TPE).
        seed: Seed of the sampler and the adaptation.
        param_names: The study's parameter names, if not the space's decision names (default: detected).
        choice_values: The study's spelling of the choices, if not the space's.
        latency_from: Where the objective reports measured latency (see :func:`latency_reader`).
        n_warm_start: Warm-start designs when no accuracy is named.
        candidates: Only guide towards these architectures.
        **options: Further options of :class:`GuidedSampler` (``min_p_feasible``, ``min_base_share``,
            ``claim_timeout_s``).

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
        accuracy: AccuracySpec = None,
        confidence: float = 0.95,
        base_sampler: BaseSampler | None = None,
        seed: int | None = None,
        param_names: Mapping[str, str] | None = None,
        choice_values: ChoiceValues | None = None,
        latency_from: LatencySpec = "user_attr:latency_ms",
        n_warm_start: int = 3,
        candidates: Iterable[ArchLike] | None = None,
        **options: Any,
    ) -> None:
        check_seed(seed, allow_none=True)  # before the adaptation uses it
        guide = ProxyGuide(profile, latency_budget_ms, proxies=proxies, space=space, data_dir=data_dir,
                           exclude_devices=exclude_devices, method=method, proxy=proxy, accuracy=accuracy,
                           confidence=confidence, candidates=candidates, seed=seed or 0)
        super().__init__(guide, base_sampler=base_sampler, seed=seed, param_names=param_names,
                         choice_values=choice_values, latency_from=latency_from, n_warm_start=n_warm_start,
                         **options)
