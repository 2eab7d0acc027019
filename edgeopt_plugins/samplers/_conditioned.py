"""``DeviceConditionedSampler``: approach 2 as a drop-in Optuna sampler."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from optuna.samplers import BaseSampler

from edgeopt_plugins._values import check_seed
from edgeopt_plugins.optimizer import ConditionedGuide, ConditionedModel
from edgeopt_plugins.samplers._guided import GuidedSampler, LatencySpec
from edgeopt_plugins.spaces import ArchLike

__all__ = ["DeviceConditionedSampler"]


class DeviceConditionedSampler(GuidedSampler):
    """An Optuna sampler for one target device, driven by a fitted device-conditioned model.

    Its first trials are the learned optimizer's top designs for the device and the
    budget; after that it screens the base sampler's proposals with the model's
    calibrated latency upper bound (repairing infeasible ones), and every latency
    the objective reports refines the device's representation.

    Args:
        model: A fitted :class:`~edgeopt_plugins.optimizer.ConditionedModel` or its folder.
        profile: The device: a :class:`~edgeopt_plugins.devices.DeviceProfile`, a profile
            CSV path, or ``{arch: latency_ms}``.
        latency_budget_ms: Designs are screened so that their upper bound fits it.
        confidence: Confidence of the upper bound.
        base_sampler: Sampler whose proposals are screened (default TPE).
        seed: Seed of the sampler (and of the default TPE).
        param_names: The study's parameter names, if not the space's decision names.
        latency_from: Where the objective reports measured latency: ``"user_attr:latency_ms"``
            (default), ``"objective:<i>"``, ``"constraint:<key>"`` (latency - budget) or a callable.
        n_warm_start: How many recommended designs to try first.
        n_explore: How many trials then follow the designs that plausibly fit (median prediction).
        candidates: Only warm-start with these (deployable) architectures.

    Example:
        >>> import optuna
        >>> from edgeopt_plugins.samplers import DeviceConditionedSampler
        >>> from edgeopt_plugins.spaces import get_space
        >>> sampler = DeviceConditionedSampler(model="model/", profile="phone.csv",
        ...                                    latency_budget_ms=20.0, seed=0)  # doctest: +SKIP
        >>> def objective(trial):
        ...     arch = get_space("nb201").suggest(trial)
        ...     latency = measure_on_phone(arch)            # your measurement
        ...     trial.set_user_attr("latency_ms", latency)
        ...     trial.set_constraint("latency", latency - 20.0)
        ...     return train_and_eval(arch) if latency <= 20.0 else 0.0
        >>> study = optuna.create_study(direction="maximize", sampler=sampler)  # doctest: +SKIP
        >>> study.optimize(objective, n_trials=30)  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        model: ConditionedModel | str | os.PathLike[str],
        profile: Any,
        latency_budget_ms: float,
        confidence: float = 0.95,
        base_sampler: BaseSampler | None = None,
        seed: int | None = None,
        param_names: Mapping[str, str] | None = None,
        latency_from: LatencySpec = "user_attr:latency_ms",
        n_warm_start: int = 5,
        n_explore: int = 20,
        candidates: Iterable[ArchLike] | None = None,
    ) -> None:
        check_seed(seed, allow_none=True)  # before the model is loaded
        guide = ConditionedGuide(model, profile, latency_budget_ms, confidence=confidence, candidates=candidates)
        super().__init__(guide, base_sampler=base_sampler, seed=seed, param_names=param_names,
                         latency_from=latency_from, n_warm_start=n_warm_start, n_explore=n_explore)
