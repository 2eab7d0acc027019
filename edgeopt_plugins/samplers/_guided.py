"""``GuidedSampler``: an Optuna sampler that warm-starts, screens and adapts with a :class:`SearchGuide`.

How a trial's architecture is chosen:

1. **Warm start.** While the guide's top designs (the learned optimizer's
   recommendations, or the adapted proxy's best designs) whose latency upper bound
   fits the budget have not all been tried, the next untried one is proposed.
2. **Exploration.** Then, for ``n_explore`` trials, the guide's best designs that
   *plausibly* fit (their bound at ``explore_confidence``, by default the median
   prediction, fits the budget): the optimum under a budget usually sits right at
   the budget, where a conservative bound hides it. The list is recomputed after
   every measurement, so these trials follow the device as it becomes better known.
3. **Screened base proposal.** Otherwise the base sampler (TPE by default) proposes
   a design as usual. If the guide predicts its latency upper bound fits the budget
   and it has not been tried, it is used unchanged. If not, it is *repaired*: its
   one- and two-decision neighbours are screened and the feasible, untried
   neighbour with the best predicted accuracy (or the smallest change when the
   guide has no accuracy model) is used instead.
4. **Online adaptation.** Before every proposal the latencies the objective
   reported so far (a user attribute, an objective value or a constraint value)
   are handed to the guide, which refines its picture of the device.

Everything the sampler decides is rebuilt from the study's storage, so several
threads (``n_jobs``) or processes sharing an RDB/Journal storage cooperate.
Parameters that are not part of the architecture go to the base sampler.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from edgeopt_plugins._values import check_seed, positive_or_none
from edgeopt_plugins.exceptions import EdgeOptWarning, InputError
from edgeopt_plugins.optimizer._guide import SearchGuide

__all__ = ["GuidedSampler", "latency_reader"]

#: Namespaced trial system attributes written by the sampler.
ATTR_ARCH = "edgeopt:arch"
ATTR_SOURCE = "edgeopt:source"
ATTR_PRED = "edgeopt:predicted_latency_ms"
ATTR_UPPER = "edgeopt:latency_upper_ms"
ATTR_ACC = "edgeopt:predicted_accuracy"

LatencySpec = str | Callable[[FrozenTrial], float | None]


def latency_reader(spec: LatencySpec, latency_budget_ms: float | None) -> Callable[[FrozenTrial], float | None]:
    """Turn a ``latency_from`` specification into a function of a finished trial.

    Args:
        spec: ``"user_attr:<name>"`` (default ``user_attr:latency_ms``), ``"objective:<i>"``,
            ``"constraint:<key>"`` (a constraint set as ``latency_ms - budget``, so the
            latency is the value plus the budget), or a callable ``FrozenTrial -> float | None``.
        latency_budget_ms: The budget, needed for ``constraint:`` specifications.

    Example:
        >>> read = latency_reader("user_attr:latency_ms", None)
        >>> import optuna
        >>> read(optuna.trial.create_trial(value=1.0, user_attrs={"latency_ms": 3.5}))
        3.5
    """
    if callable(spec):
        return spec
    kind, _, key = str(spec).partition(":")
    if not key or kind not in ("user_attr", "objective", "constraint"):
        raise InputError(
            f"latency_from must be 'user_attr:<name>', 'objective:<index>', 'constraint:<key>' or a callable, got {spec!r}"
        )
    if kind == "user_attr":
        return lambda t: positive_or_none(t.user_attrs.get(key))
    if kind == "objective":
        try:
            index = int(key)
        except ValueError:
            raise InputError(f"latency_from {spec!r}: objective index must be an integer") from None
        return lambda t: positive_or_none(t.values[index]) if t.values is not None and len(t.values) > index else None
    if latency_budget_ms is None:
        raise InputError(f"latency_from {spec!r} needs a latency budget (constraint = latency - budget)")
    budget = latency_budget_ms
    return lambda t: None if key not in t.constraints else positive_or_none(float(t.constraints[key]) + budget)



class GuidedSampler(BaseSampler):
    """Warm start, predictor screening and online adaptation on top of any Optuna sampler.

    Usually built through :class:`~edgeopt_plugins.samplers.DeviceConditionedSampler`
    or :class:`~edgeopt_plugins.samplers.ProxySampler`; use it directly with your own
    :class:`~edgeopt_plugins.optimizer.SearchGuide`.

    Args:
        guide: The predictor stack for the target device and budget.
        base_sampler: Proposes designs after the warm start (default ``TPESampler(seed=seed)``).
        seed: Seed of the sampler's own choices (repairs).
        param_names: Mapping from the space's decision names to the study's parameter names.
        latency_from: Where the objective reports measured latency (see :func:`latency_reader`).
        n_warm_start: How many of the guide's top designs to try first.
        n_explore: How many trials then follow the guide's designs at ``explore_confidence``.
        explore_confidence: Confidence of the bound used while exploring (0.5: the median).
        max_repairs: How many neighbours of a rejected proposal to screen.
    """

    def __init__(
        self,
        guide: SearchGuide,
        *,
        base_sampler: BaseSampler | None = None,
        seed: int | None = None,
        param_names: Mapping[str, str] | None = None,
        latency_from: LatencySpec = "user_attr:latency_ms",
        n_warm_start: int = 5,
        n_explore: int = 20,
        explore_confidence: float = 0.5,
        max_repairs: int = 64,
    ) -> None:
        seed = check_seed(seed, allow_none=True)
        if not isinstance(guide, SearchGuide):
            raise InputError(f"guide must implement SearchGuide (warm_start, screen, observe), got {type(guide).__name__}")
        if n_warm_start < 0 or n_explore < 0 or max_repairs < 1:
            raise InputError(f"n_warm_start and n_explore must be >= 0 and max_repairs >= 1, got "
                             f"{n_warm_start}, {n_explore} and {max_repairs}")
        if not 0.0 < explore_confidence < 1.0:
            raise InputError(f"explore_confidence must be between 0 and 1, got {explore_confidence!r}")
        self._guide = guide
        self._space = guide.space
        self._base = base_sampler if base_sampler is not None else optuna.samplers.TPESampler(seed=seed)
        self._rng = np.random.default_rng(seed)
        self._names = self._space._param_names(param_names)
        self._dists = self._space.distributions(param_names)
        self._latency = latency_reader(latency_from, guide.latency_budget_ms)
        self._n_warm = n_warm_start
        self._n_explore = n_explore
        self._explore_confidence = float(explore_confidence)
        self._max_repairs = max_repairs
        self._lock = threading.RLock()
        self._claimed: set[str] = set()  # designs proposed in this process, visible before storage catches up

    @property
    def guide(self) -> SearchGuide:
        """The guide driving this sampler."""
        return self._guide

    # ----------------------------------------------------------------- Optuna protocol
    def reseed_rng(self) -> None:
        self._base.reseed_rng()
        self._rng = np.random.default_rng()

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._base.before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None) -> None:
        self._base.after_trial(study, trial, state, values)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        space = dict(self._base.infer_relative_search_space(study, trial))
        space.update(self._dists)
        return space

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        base_space = self._base.infer_relative_search_space(study, trial)
        base_params = self._base.sample_relative(study, trial, base_space) if base_space else {}
        if not all(name in search_space for name in self._dists):
            return base_params
        trials = study.get_trials(deepcopy=False)
        self._guide.observe(self._measurements(trials))
        with self._lock:
            tried = self._tried(trials) | self._claimed
            explored = sum(t.system_attrs.get(ATTR_SOURCE) == "explore" for t in trials)
            arch, source = self._choose(study, trial, tried, base_params, explored)
            self._claimed.add(arch)
        screening = self._guide.screen([arch])
        attrs = {ATTR_ARCH: arch, ATTR_SOURCE: source, ATTR_PRED: float(screening.latency_ms[0]),
                 ATTR_UPPER: float(screening.latency_upper_ms[0])}
        if screening.accuracy is not None:
            attrs[ATTR_ACC] = float(screening.accuracy[0])
        for key, value in attrs.items():
            study._storage.set_trial_system_attr(trial._trial_id, key, value)
        return {**base_params, **self._space.arch_to_params(arch, self._names)}

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._base.sample_independent(study, trial, param_name, param_distribution)

    # ----------------------------------------------------------------- decisions
    def _measurements(self, trials: Sequence[FrozenTrial]) -> dict[str, float]:
        out: dict[str, float] = {}
        for t in trials:
            if t.state != TrialState.COMPLETE:
                continue
            arch = self._arch_of(t)
            latency = self._latency(t) if arch is not None else None
            if latency is not None:
                out[arch] = latency
        return out

    def _arch_of(self, trial: FrozenTrial) -> str | None:
        arch = trial.system_attrs.get(ATTR_ARCH)
        if arch is None:
            arch = self._space.params_to_arch(trial.params, self._names)
        return arch

    def _tried(self, trials: Sequence[FrozenTrial]) -> set[str]:
        return {a for t in trials if (a := self._arch_of(t)) is not None}

    def _choose(
        self, study: Study, trial: FrozenTrial, tried: set[str], base_params: Mapping[str, Any], explored: int
    ) -> tuple[str, str]:
        if self._n_warm:
            for arch in self._guide.warm_start(self._n_warm):
                if arch not in tried:
                    return arch, "warm_start"
        if explored < self._n_explore:
            for arch in self._guide.warm_start(self._n_warm + self._n_explore, confidence=self._explore_confidence):
                if arch not in tried:
                    return arch, "explore"
        proposal = self._base_proposal(study, trial, base_params)
        screen = self._guide.screen([proposal])
        if proposal not in tried and bool(screen.feasible(self._guide.latency_budget_ms)[0]):
            return proposal, "base"
        repaired = self._repair(proposal, tried)
        if repaired is not None:
            return repaired, "repaired"
        for arch in self._guide.warm_start(max(4 * self._n_warm, 32)):
            if arch not in tried:
                return arch, "fallback"
        warnings.warn(
            "edgeopt: no untried design is predicted to fit the budget; proposing the base sampler's design",
            EdgeOptWarning,
            stacklevel=2,
        )
        return proposal, "unscreened"

    def _base_proposal(self, study: Study, trial: FrozenTrial, base_params: Mapping[str, Any]) -> str:
        """The base sampler's design: its relative params where it has them, else independent draws."""
        params = {}
        for decision in self._space.decisions:
            name = self._names[decision.name]
            if name in base_params:
                params[decision.name] = base_params[name]
            else:
                params[decision.name] = self._base.sample_independent(study, trial, name, self._dists[name])
        return self._space.format(params)

    def _repair(self, arch: str, tried: set[str]) -> str | None:
        """The best feasible, untried neighbour (one or two decisions changed)."""
        center = np.array(self._space.indices_of(arch))
        card = self._space.cardinalities
        singles = [(d, c) for d in range(len(center)) for c in range(int(card[d])) if c != center[d]]
        rows = []
        for d, c in singles:
            row = center.copy()
            row[d] = c
            rows.append(row)
        n_double = max(0, self._max_repairs - len(rows))
        for _ in range(n_double):
            row = center.copy()
            for d in self._rng.choice(len(center), size=min(2, len(center)), replace=False):
                row[d] = (row[d] + self._rng.integers(1, card[d])) % card[d]
            rows.append(row)
        idx = np.unique(np.array(rows, dtype=np.int64), axis=0)
        candidates = [a for a in self._space.from_indices(idx) if a not in tried]
        if not candidates:
            return None
        screen = self._guide.screen(candidates)
        ok = np.flatnonzero(screen.feasible(self._guide.latency_budget_ms))
        if ok.size == 0:
            return None
        if screen.accuracy is not None:
            best = ok[np.argmax(screen.accuracy[ok])]
        else:
            changes = (self._space.to_indices(candidates) != center).sum(axis=1)
            best = ok[np.lexsort((screen.latency_upper_ms[ok], changes[ok]))[0]]
        return candidates[int(best)]
