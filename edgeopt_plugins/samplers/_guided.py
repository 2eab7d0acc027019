"""``GuidedSampler``: an Optuna sampler that guides the architecture of each trial with a :class:`SearchGuide`.

What a trial's architecture is (the rule, and the guarantee it gives, are in
:mod:`edgeopt_plugins.optimizer._search`, shared with the NNI strategy):

- **warm start** (accuracy unknown): designs predicted to fit, spread under the budget;
- **guided**: the design with the best probability of fitting times expected improvement
  (over the named accuracy, or an objective surrogate learned from the study's values);
- **base**: the base sampler's own proposal, screened (repaired when almost surely
  infeasible or already tried), unscreened once measurements contradicted the screen.

The sampler is a drop-in:

- Everything is rebuilt from the study's storage before each decision, and a trial
  waits (up to ``claim_timeout_s``) for the lower-numbered running trials to claim
  their designs, so threads and processes sharing one RDB or Journal study never
  measure the same design twice.
- Each trial is attributed to the design of its *actual* parameters (enqueued,
  partially fixed, :class:`~optuna.samplers.PartialFixedSampler`); fixed decisions
  are respected when choosing the others.
- Parameter names and choice values are translated (:class:`ParamMap`): given, or
  detected from the study by choice sets and order. A trial that reports a latency
  but whose parameters cannot be mapped stops the study with one line naming the
  ``param_names`` to pass; when no latency has been read after a few trials, one
  warning says where the sampler looks.
- Latencies of pruned and failed trials are used too. Parameters that are not
  part of the architecture go to the base sampler.
- The sampler pickles and deep-copies (caches and locks are rebuilt).
"""

from __future__ import annotations

import datetime
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from edgeopt_plugins._values import check_seed, finite_or_none, positive_or_none
from edgeopt_plugins.exceptions import EdgeOptWarning, InputError
from edgeopt_plugins.optimizer import NO_LATENCY_WARN_AFTER, GuidedSearch, Observation, Proposal, SearchGuide
from edgeopt_plugins.samplers._params import ChoiceValues, ParamMap

__all__ = ["GuidedSampler", "latency_reader"]

#: Namespaced trial system attributes written by the sampler.
ATTR_ARCH = "edgeopt:arch"
ATTR_SOURCE = "edgeopt:source"
ATTR_PRED = "edgeopt:predicted_latency_ms"
ATTR_UPPER = "edgeopt:latency_upper_ms"
ATTR_SCALE = "edgeopt:latency_scale"
ATTR_PFEAS = "edgeopt:p_feasible"
ATTR_ACC = "edgeopt:predicted_accuracy"

LatencySpec = str | Callable[[FrozenTrial], float | None] | None

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def latency_reader(spec: LatencySpec, latency_budget_ms: float | None) -> Callable[[FrozenTrial], float | None] | None:
    """Turn a ``latency_from`` specification into a function of a finished trial.

    Args:
        spec: ``"user_attr:<name>"`` (default ``user_attr:latency_ms``), ``"objective:<i>"``,
            ``"constraint:<key>"`` (a constraint set as ``latency_ms - budget``, so the
            latency is the value plus the budget), a callable ``FrozenTrial -> float | None``,
            or ``None`` (the study reports no latency: no online adaptation).
        latency_budget_ms: The budget, needed for ``constraint:`` specifications.

    Example:
        >>> read = latency_reader("user_attr:latency_ms", None)
        >>> import optuna
        >>> read(optuna.trial.create_trial(value=1.0, user_attrs={"latency_ms": 3.5}))
        3.5
    """
    if spec is None or callable(spec):
        return spec
    kind, _, key = str(spec).partition(":")
    if not key or kind not in ("user_attr", "objective", "constraint"):
        raise InputError(
            f"latency_from must be 'user_attr:<name>', 'objective:<index>', 'constraint:<key>', a callable or None, "
            f"got {spec!r}"
        )
    if kind == "objective":
        try:
            int(key)
        except ValueError:
            raise InputError(f"latency_from {spec!r}: objective index must be an integer") from None
    if kind == "constraint" and latency_budget_ms is None:
        raise InputError(f"latency_from {spec!r} needs a latency budget (constraint = latency - budget)")
    return _LatencyReader(kind, key, latency_budget_ms)


class _LatencyReader:
    """A trial's latency from a user attribute, an objective value or a constraint (picklable)."""

    def __init__(self, kind: str, key: str, budget_ms: float | None) -> None:
        self.kind, self.key, self.budget_ms = kind, key, budget_ms

    def __call__(self, t: FrozenTrial) -> float | None:
        if self.kind == "user_attr":
            return positive_or_none(t.user_attrs.get(self.key))
        if self.kind == "objective":
            index = int(self.key)
            return positive_or_none(t.values[index]) if t.values is not None and len(t.values) > index else None
        if self.key not in t.constraints:
            return None
        return positive_or_none(float(t.constraints[self.key]) + self.budget_ms)


class GuidedSampler(BaseSampler):
    """Guided architecture search on top of any Optuna sampler (see the module docstring).

    Usually built through :class:`~edgeopt_plugins.samplers.DeviceConditionedSampler`
    or :class:`~edgeopt_plugins.samplers.ProxySampler`; use it directly with your own
    :class:`~edgeopt_plugins.optimizer.SearchGuide`.

    Args:
        guide: The predictor stack for the target device and budget. Its ``screen`` returns
            an accuracy only when the user named one; otherwise the objective is learned online.
        base_sampler: Proposes the base trials and every non-architecture parameter
            (default ``TPESampler(seed=seed)``).
        seed: Seed of the sampler's own choices.
        param_names: ``{decision name: study parameter name}``, when the study names the
            architecture's parameters otherwise (default: detected, see :class:`ParamMap`).
        choice_values: ``{space value: study value}`` (or per decision), when the study spells
            the choices otherwise.
        latency_from: Where the objective reports measured latency (see :func:`latency_reader`).
        n_warm_start: Warm-start designs when no accuracy is named.
        min_p_feasible: Base proposals less likely than this to fit the budget are repaired.
        min_base_share: Smallest share of trials left to the base sampler after the warm start.
        claim_timeout_s: How long a trial waits for lower-numbered running trials to claim their designs.

    Example:
        >>> sampler = GuidedSampler(my_guide, seed=0)  # doctest: +SKIP
        >>> study = optuna.create_study(direction="maximize", sampler=sampler)  # doctest: +SKIP
    """

    def __init__(
        self,
        guide: SearchGuide,
        *,
        base_sampler: BaseSampler | None = None,
        seed: int | None = None,
        param_names: Mapping[str, str] | None = None,
        choice_values: ChoiceValues | None = None,
        latency_from: LatencySpec = "user_attr:latency_ms",
        n_warm_start: int = 3,
        min_p_feasible: float = 0.05,
        min_base_share: float = 0.125,
        claim_timeout_s: float = 5.0,
    ) -> None:
        seed = check_seed(seed, allow_none=True)
        if claim_timeout_s < 0:
            raise InputError(f"claim_timeout_s must be >= 0, got {claim_timeout_s!r}")
        self._search = GuidedSearch(guide, n_warm_start=n_warm_start, min_p_feasible=min_p_feasible,
                                    min_base_share=min_base_share, seed=seed)
        self._space = guide.space
        self._base = base_sampler if base_sampler is not None else optuna.samplers.TPESampler(seed=seed)
        self._map = ParamMap(self._space, param_names, choice_values)
        self._latency_from = latency_from
        self._latency = latency_reader(latency_from, guide.latency_budget_ms)
        self._claim_timeout_s = float(claim_timeout_s)
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._lock = threading.RLock()
        self._claimed: set[str] = set()  # proposed here, maybe not yet visible in the storage
        self._decided: dict[int, Proposal] = {}  # trial id -> this trial's design
        self._absent: dict[int, set[str]] = {}  # trial id -> architecture parameters fixed by a wrapper
        self._finished: dict[int, tuple[Observation | None, bool]] = {}  # trial number -> (observation, has latency)
        self._warned_no_latency = False

    # ----------------------------------------------------------------- pickling
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_lock", "_claimed", "_decided", "_absent", "_finished", "_warned_no_latency"):
            del state[key]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    @property
    def guide(self) -> SearchGuide:
        """The guide driving this sampler."""
        return self._search.guide

    @property
    def search(self) -> GuidedSearch:
        """The decision rule (its calibration, surrogate and counts)."""
        return self._search

    # ----------------------------------------------------------------- Optuna protocol
    def reseed_rng(self) -> None:
        self._base.reseed_rng()
        self._search.seed = int(np.random.SeedSequence().generate_state(1)[0])

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._base.before_trial(study, trial)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        space = dict(self._base.infer_relative_search_space(study, trial))
        with self._lock:
            self._learn_names(study)
            space.update(self._map.distributions())  # so a base sampler can propose the architecture jointly
        return space

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        with self._lock:
            ours = set(self._map.distributions())
            # A wrapper such as PartialFixedSampler removed the parameters it fixes from our search space.
            self._absent[trial._trial_id] = ours - set(search_space) if ours else set()
        sampled: list[dict[str, Any]] = []

        def joint() -> dict[str, Any]:
            """The base sampler's joint proposal, architecture included (asked for base trials only)."""
            if not sampled:
                sampled.append(self._base.sample_relative(study, trial, search_space))
            return sampled[0]

        if ours and self._map.complete:
            self._decide(study, trial, joint)
        if sampled:
            params = sampled[0]
        else:  # the base sampler's other parameters only
            rest = {k: v for k, v in search_space.items() if k not in ours}
            params = self._base.sample_relative(study, trial, rest) if rest else {}
        # Architecture values go through sample_independent, in the objective's own distributions.
        return {k: v for k, v in params.items() if k not in ours}

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        with self._lock:
            d = self._map.match(param_name, param_distribution)
        if d is None:
            return self._base.sample_independent(study, trial, param_name, param_distribution)
        proposal = self._decide(study, trial, None)
        return self._map.value_of(d, self._space.indices_of(proposal.arch)[d])

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None) -> None:
        try:
            self._base.after_trial(study, trial, state, values)
        finally:
            with self._lock:
                proposal = self._decided.pop(trial._trial_id, None)
                self._absent.pop(trial._trial_id, None)
                if proposal is not None:
                    self._claimed.discard(proposal.arch)
        self._check_attribution(study, trial, state)

    # ----------------------------------------------------------------- drop-in checks
    def _learn_names(self, study: Study) -> None:
        if self._map.complete:
            return
        for t in reversed(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))):
            self._map.learn(t.distributions)
            if self._map.complete:
                return

    def _check_attribution(self, study: Study, trial: FrozenTrial, state: TrialState) -> None:
        """Stop a study whose measured trials cannot be attributed; warn once when no latency is read."""
        with self._lock:
            self._map.learn(trial.distributions)
            arch = self._map.arch_of(trial.params)
            matched = len(self._map.indices_of(trial.params))
        latency = self._latency(trial) if self._latency is not None else None
        # A complete trial that measured something (or set some of the decisions) but cannot be attributed
        # would teach the search nothing, silently: stop here, naming the mapping to pass.
        if state == TrialState.COMPLETE and arch is None and (matched or latency is not None) and trial.params:
            raise InputError(self._map.missing_message(trial.params))
        if arch is None or self._latency is None or self._warned_no_latency:
            return
        finished = [t for t in study.get_trials(deepcopy=False, states=_FINISHED) if t.number != trial.number]
        with self._lock:
            seen = [self._finished_observation(study, t) for t in finished]
        if latency is None and len(finished) + 1 >= NO_LATENCY_WARN_AFTER and not any(has for _, has in seen):
            self._warned_no_latency = True
            keys = sorted(trial.user_attrs)
            warnings.warn(
                f"edgeopt: {len(finished) + 1} trials finished and none reported a latency under "
                f"latency_from={self._latency_from!r} (trial user attrs: {keys}); the sampler cannot adapt to the "
                "device: call trial.set_user_attr('latency_ms', ms) in the objective or pass latency_from=",
                EdgeOptWarning, stacklevel=2)

    # ----------------------------------------------------------------- the study as the search sees it
    def _finished_observation(self, study: Study, t: FrozenTrial) -> tuple[Observation | None, bool]:
        """A finished trial as an observation (cached: finished trials do not change)."""
        cached = self._finished.get(t.number)
        if cached is not None and (cached[0] is not None or self._map.complete):
            return cached
        arch = self._map.arch_of(t.params)
        if arch is None:
            out: tuple[Observation | None, bool] = (None, False)
        else:
            latency = self._latency(t) if self._latency is not None else None
            value = None
            if t.state == TrialState.COMPLETE and len(study.directions) == 1:
                value = finite_or_none(t.value)
                if value is not None and study.direction == StudyDirection.MINIMIZE:
                    value = -value
            attrs = t.system_attrs if t.system_attrs.get(ATTR_ARCH) == arch else {}
            out = (Observation(arch, latency, value, attrs.get(ATTR_SOURCE), attrs.get(ATTR_PRED),
                               attrs.get(ATTR_SCALE), attrs.get(ATTR_PFEAS), failed=t.state == TrialState.FAIL),
                   latency is not None)
        self._finished[t.number] = out
        return out

    def _history(self, study: Study, trial: FrozenTrial) -> tuple[list[Observation], list[str | None], set[str]]:
        """Finished trials as observations, the sources of running ones, and every design tried or claimed."""
        observations, pending, tried = [], [], set(self._claimed)
        for t in study.get_trials(deepcopy=False):
            if t.number == trial.number:
                continue
            if t.state in _FINISHED:
                obs, _ = self._finished_observation(study, t)
                if obs is not None:
                    observations.append(obs)
                    tried.add(obs.arch)
                continue
            arch = self._claim_of(t)
            if arch is not None:
                tried.add(arch)
                pending.append(t.system_attrs.get(ATTR_SOURCE))
        return observations, pending, tried

    def _claim_of(self, t: FrozenTrial) -> str | None:
        """The design a running or waiting trial will evaluate (its claim, or its fixed parameters)."""
        fixed = self._map.arch_of(t.system_attrs.get("fixed_params", {}))
        return fixed if fixed is not None else t.system_attrs.get(ATTR_ARCH)

    def _wait_for_earlier_claims(self, study: Study, trial: FrozenTrial) -> None:
        """Let lower-numbered running trials (other threads or processes) claim their designs first."""
        deadline = time.monotonic() + self._claim_timeout_s
        while True:
            now = datetime.datetime.now()
            unclaimed = [
                t for t in study._storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.RUNNING,))
                if t.number < trial.number and self._claim_of(t) is None and t.datetime_start is not None
                and (now - t.datetime_start).total_seconds() < self._claim_timeout_s
            ]
            if not unclaimed or time.monotonic() >= deadline:
                return
            time.sleep(0.01)

    def _fixed(self, study: Study, trial: FrozenTrial) -> dict[int, int]:
        """Decisions this trial has fixed already: enqueued values, values given so far, wrapper-fixed ones."""
        fixed = self._map.indices_of(trial.system_attrs.get("fixed_params", {}))
        fixed.update(self._map.indices_of(trial.params))
        absent = self._absent.get(trial._trial_id, set())
        if absent:
            # A wrapper fixes these; it gives every trial the same value: take the latest trial's.
            for t in reversed(study.get_trials(deepcopy=False, states=_FINISHED)):
                for d, c in self._map.indices_of({k: v for k, v in t.params.items() if k in absent}).items():
                    fixed.setdefault(d, c)
                break
        return fixed

    # ----------------------------------------------------------------- decisions
    def _decide(self, study: Study, trial: FrozenTrial,
                base_relative: Callable[[], Mapping[str, Any]] | None) -> Proposal:
        """This trial's design (decided once): warm start, guided, or the base sampler's, screened."""
        with self._lock:
            if trial._trial_id in self._decided:
                return self._decided[trial._trial_id]
        self._wait_for_earlier_claims(study, trial)
        with self._lock:
            if trial._trial_id in self._decided:
                return self._decided[trial._trial_id]
            observations, pending, tried = self._history(study, trial)
            self._search.tell(observations)
            fixed = self._fixed(study, trial)
            kind = self._search.plan(pending)
            if kind == "base" and self._map.complete:
                base_params = base_relative() if base_relative is not None else {}
                proposal = self._search.screen_base(self._base_arch(study, trial, base_params, fixed), tried,
                                                    fixed=fixed)
            else:
                proposal = self._search.propose(tried, fixed=fixed, kind="warm_start" if kind == "warm_start"
                                                else "guided")
            attrs = {ATTR_ARCH: proposal.arch, ATTR_SOURCE: proposal.source,
                     ATTR_PRED: proposal.predicted_latency_ms, ATTR_UPPER: proposal.latency_upper_ms,
                     ATTR_SCALE: proposal.latency_scale, ATTR_PFEAS: proposal.p_feasible}
            if proposal.predicted_accuracy is not None:
                attrs[ATTR_ACC] = proposal.predicted_accuracy
            for key, value in attrs.items():
                study._storage.set_trial_system_attr(trial._trial_id, key, value)
            self._claimed.add(proposal.arch)
            self._decided[trial._trial_id] = proposal
            return proposal

    def _base_arch(self, study: Study, trial: FrozenTrial, base_params: Mapping[str, Any],
                   fixed: Mapping[int, int]) -> str:
        """The base sampler's design: its relative params where it has them, else its independent draws."""
        dists = self._map.distributions()
        row = []
        for d, decision in enumerate(self._space.decisions):
            if d in fixed:
                row.append(fixed[d])
                continue
            name = self._map.param_names()[decision.name]
            value = base_params[name] if name in base_params else self._base.sample_independent(
                study, trial, name, dists[name])
            row.append(self._map.indices_of({name: value})[d])
        return self._space.from_indices(np.array([row]))[0]
