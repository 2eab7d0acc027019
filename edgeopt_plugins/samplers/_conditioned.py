"""``DeviceConditionedSampler``: approach 2 as a drop-in Optuna sampler."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from optuna.samplers import BaseSampler

from edgeopt_plugins._values import check_seed
from edgeopt_plugins.optimizer import AccuracySpec, ConditionedGuide, ConditionedModel
from edgeopt_plugins.samplers._guided import GuidedSampler, LatencySpec
from edgeopt_plugins.samplers._params import ChoiceValues
from edgeopt_plugins.spaces import ArchLike

__all__ = ["DeviceConditionedSampler"]


class DeviceConditionedSampler(GuidedSampler):
    """An Optuna sampler for one target device, driven by a fitted device-conditioned model.

    The model predicts every design's latency on the device with a calibrated upper
    bound; every latency the objective reports refines the device's representation
    and recalibrates the bound. How trials are chosen, and how the guidance yields to
    the base sampler when it is wrong, is described in
    :class:`~edgeopt_plugins.samplers.GuidedSampler`.

    Accuracy is used only when you name it: ``accuracy="model"`` (the model's accuracy
    predictor, and the learned optimizer's recommendations as candidates), ``"table"``,
    an accuracy table or a function; by default it is unknown and learned from the
    study's objective values.

    Args:
        model: A fitted :class:`~edgeopt_plugins.optimizer.ConditionedModel` or its folder.
        profile: The device: a :class:`~edgeopt_plugins.devices.DeviceProfile`, a profile
            CSV path, or ``{arch: latency_ms}``.
        latency_budget_ms: The latency budget the designs should fit.
        confidence: Confidence of the upper bound.
        accuracy: Where accuracy comes from (default ``None``: unknown, learned online).
        data_dir: Benchmark data folder (for ``accuracy="table"``).
        base_sampler: Sampler of the base trials and of non-architecture parameters (default TPE).
        seed: Seed of the sampler (and of the default TPE).
        param_names: The study's parameter names, if not the space's decision names (default: detected).
        choice_values: The study's spelling of the choices, if not the space's.
        latency_from: Where the objective reports measured latency: ``"user_attr:latency_ms"``
            (default), ``"objective:<i>"``, ``"constraint:<key>"`` (latency - budget) or a callable.
        n_warm_start: Warm-start designs when no accuracy is named.
        candidates: Only guide towards these (deployable) architectures.
        **options: Further options of :class:`GuidedSampler` (``min_p_feasible``, ``min_base_share``,
            ``claim_timeout_s``).

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
        accuracy: AccuracySpec = None,
        data_dir: str | os.PathLike[str] | None = None,
        base_sampler: BaseSampler | None = None,
        seed: int | None = None,
        param_names: Mapping[str, str] | None = None,
        choice_values: ChoiceValues | None = None,
        latency_from: LatencySpec = "user_attr:latency_ms",
        n_warm_start: int = 3,
        candidates: Iterable[ArchLike] | None = None,
        **options: Any,
    ) -> None:
        check_seed(seed, allow_none=True)  # before the model is loaded
        guide = ConditionedGuide(model, profile, latency_budget_ms, confidence=confidence, candidates=candidates,
                                 accuracy=accuracy, data_dir=data_dir)
        super().__init__(guide, base_sampler=base_sampler, seed=seed, param_names=param_names,
                         choice_values=choice_values, latency_from=latency_from, n_warm_start=n_warm_start,
                         **options)
