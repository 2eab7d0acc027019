"""``GuidedStrategy``: an NNI 3.0 multi-trial strategy guided by a :class:`SearchGuide`.

The NNI twin of :class:`~edgeopt_plugins.samplers.GuidedSampler`: the decisions (warm
start, guided acquisition, screening of the base proposals, and the rule by which the
guidance yields when measurements contradict it) are those of
:class:`~edgeopt_plugins.optimizer.GuidedSearch`; its *base* proposals come from
regularized (aging) evolution: random designs until the population is full, then
the winner of a tournament of ``sample_size`` members with each decision redrawn
with ``mutation_prob``. The oldest member leaves the population when a new one enters.

Accuracy is used only when the guide returns one (the user named an accuracy
source); otherwise the search learns the objective from the metrics the evaluator
reports. Latency comes from the evaluator's final metric dict
(``{"default": accuracy, "latency_ms": ms}``) or from a callable on the architecture,
and every measured latency (failed trials' too) refines the guide before the next proposal.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Union

import numpy as np
from nni.nas.execution import ExecutionEngine
from nni.nas.execution.event import FinalMetricEvent, ModelEventType, TrainingEndEvent
from nni.nas.space import ExecutableModelSpace, ModelStatus
from nni.nas.strategy.base import Strategy

from edgeopt_plugins._values import finite_or_none
from edgeopt_plugins.exceptions import EdgeOptWarning, InputError, ModelFormatError
from edgeopt_plugins.optimizer import NO_LATENCY_WARN_AFTER, GuidedSearch, Observation, Proposal, SearchGuide
from edgeopt_plugins.strategies._evaluator import LATENCY_KEY, reported_value
from edgeopt_plugins.strategies._space import LabelsLike, arch_to_sample, check_choices, resolve_labels

__all__ = ["GuidedStrategy"]

LatencyFrom = Union[str, Callable[[str], Union[float, None]], None]

_STATE_FORMAT = "edgeopt.GuidedStrategy"
_STATE_VERSION = 2
#: Mutants drawn before a repeat is handed to the search (which repairs it).
_MUTATION_TRIES = 32


class GuidedStrategy(Strategy):
    """Guided search on top of aging evolution (see the module docstring).

    Usually built through :class:`~edgeopt_plugins.strategies.DeviceConditionedStrategy`
    or :class:`~edgeopt_plugins.strategies.ProxyStrategy`; use it directly with
    your own :class:`~edgeopt_plugins.optimizer.SearchGuide`. Run it in-process with
    :func:`~edgeopt_plugins.strategies.run_nni_search`, or drive it yourself with
    ``strategy.initialize(model_space, SequentialExecutionEngine(..., continue_on_failure=True))``
    then ``strategy.run()``.

    Args:
        guide: The predictor stack for the target device and budget.
        n_warm_start: Warm-start designs when no accuracy is named.
        population_size: Members of the aging population.
        sample_size: Tournament size (``1 <= sample_size <= population_size``).
        mutation_prob: Chance that each decision is redrawn in a child (at least
            one always changes); default ``1 / number of decisions``.
        labels: Sample layout of the NNI model space (default: recognised, see
            :func:`~edgeopt_plugins.strategies.resolve_labels`).
        latency_from: Where measured latency comes from: a key of the reported
            metric dict (default ``"latency_ms"``), a callable ``arch -> ms | None``
            called after each trial, or ``None`` (no online adaptation).
        min_p_feasible: Evolution's proposals less likely than this to fit are repaired.
        min_base_share: Smallest share of proposals left to evolution after the warm start.
        seed: Seed of every random choice (same seed, same guide -> same search).

    Example (a complete, runnable guide is in docs/tutorial-nni.md):
        >>> from edgeopt_plugins.strategies import GuidedStrategy, run_nni_search
        >>> strategy = GuidedStrategy(my_guide, seed=0)  # doctest: +SKIP
        >>> result = run_nni_search("nb201", evaluate, strategy, max_trials=20)  # doctest: +SKIP
        >>> result.best(), strategy.counts  # doctest: +SKIP
    """

    def __init__(
        self,
        guide: SearchGuide,
        *,
        n_warm_start: int = 3,
        population_size: int = 20,
        sample_size: int = 5,
        mutation_prob: float | None = None,
        labels: LabelsLike = None,
        latency_from: LatencyFrom = LATENCY_KEY,
        min_p_feasible: float = 0.05,
        min_base_share: float = 0.125,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if not 1 <= sample_size <= population_size:
            raise InputError(f"need 1 <= sample_size <= population_size, got {sample_size}, {population_size}")
        if mutation_prob is not None and not 0.0 <= mutation_prob <= 1.0:
            raise InputError(f"mutation_prob must be in [0, 1], got {mutation_prob}")
        if latency_from is not None and not isinstance(latency_from, str) and not callable(latency_from):
            raise InputError(f"latency_from must be a metric key, a callable or None, got {latency_from!r}")
        self._search = GuidedSearch(guide, n_warm_start=n_warm_start, min_p_feasible=min_p_feasible,
                                    min_base_share=min_base_share, seed=seed)
        self._space = guide.space
        self.population_size = population_size
        self.sample_size = sample_size
        self.mutation_prob = 1.0 / len(self._space.decisions) if mutation_prob is None else float(mutation_prob)
        self._labels_arg = labels
        self._latency_from = latency_from
        self._rng = np.random.default_rng(seed)
        self._card = self._space.cardinalities
        self._mutable_dims = np.flatnonzero(self._card > 1)
        # Search state (all of it is in state_dict).
        self._population: list[tuple[str, float]] = []  # oldest first
        self._history: list[dict[str, Any]] = []
        self._tried: set[str] = set()
        self._counts = {"repaired": 0, "failed": 0, "filtered": 0}
        # Run-time only.
        self._pending: dict[int, tuple[ExecutableModelSpace, dict[str, Any]]] = {}
        self._warned_no_latency = False

    def extra_repr(self) -> str:
        guide = self._search.guide
        return (
            f"guide={type(guide).__name__}, space={self._space.name!r}, "
            f"budget_ms={guide.latency_budget_ms}, population_size={self.population_size}, "
            f"sample_size={self.sample_size}, mutation_prob={self.mutation_prob:.3g}"
        )

    # ----------------------------------------------------------------- results
    @property
    def guide(self) -> SearchGuide:
        """The guide driving this strategy."""
        return self._search.guide

    @property
    def search(self) -> GuidedSearch:
        """The decision rule (its calibration, surrogate and counts)."""
        return self._search

    @property
    def history(self) -> list[dict[str, Any]]:
        """Every finished proposal, in order: ``arch``, ``source`` (``warm_start``, ``guided``, ``base``,
        ``repaired``, ``audit`` or ``unscreened``), ``predicted_latency_ms``, ``latency_upper_ms``,
        ``p_feasible``, ``metric``, ``latency_ms`` and ``status`` (``trained``, ``failed``, or ``filtered``
        by a middleware)."""
        return [dict(record) for record in self._history]

    @property
    def counts(self) -> dict[str, int]:
        """Evolution's proposals ``repaired`` by the screen, trials ``failed``, models ``filtered`` by a middleware."""
        return dict(self._counts)

    # ----------------------------------------------------------------- NNI lifecycle
    def _initialize(self, model_space: ExecutableModelSpace, engine: ExecutionEngine) -> ExecutableModelSpace:
        mutables = model_space.simplify()
        self._labels = resolve_labels(self._space, self._labels_arg, mutables.keys())
        check_choices(self._space, self._labels, mutables)
        engine.register_model_event_callback(ModelEventType.FinalMetric, self._on_final_metric)
        engine.register_model_event_callback(ModelEventType.TrainingEnd, self._on_training_end)
        return model_space

    def _cleanup(self) -> None:
        self.engine.unregister_model_event_callback(ModelEventType.FinalMetric, self._on_final_metric)
        self.engine.unregister_model_event_callback(ModelEventType.TrainingEnd, self._on_training_end)

    def _run(self) -> None:
        while self.wait_for_resource():  # budget first: no random draw happens past the budget (exact resume)
            proposal = self._propose()
            if proposal is None:
                warnings.warn(
                    f"edgeopt: no untried design found; stopping after {len(self._history)} trials",
                    EdgeOptWarning,
                    stacklevel=3,
                )
                break
            self._submit(proposal)
        self.engine.wait_models()
        self._search.tell(self._observations())  # the guide learns from the last trials too

    # ----------------------------------------------------------------- proposals
    def _observations(self) -> list[Observation]:
        return [Observation(r["arch"], r["latency_ms"], r["metric"], r["source"], r["predicted_latency_ms"],
                            r["latency_scale"], r["p_feasible"], failed=r["status"] == "failed")
                for r in self._history if r["status"] != "filtered"]

    def _propose(self) -> Proposal | None:
        """The next design: warm start, guided, or evolution's proposal screened (``None``: space exhausted)."""
        self._search.tell(self._observations())
        pending = [record["source"] for _, record in self._pending.values()]
        kind = self._search.plan(pending)
        try:
            if kind == "base":
                proposal = self._search.screen_base(self._evolve(), self._tried)
                self._counts["repaired"] += proposal.source == "repaired"
            else:
                proposal = self._search.propose(self._tried, kind=kind)
        except InputError:
            return None
        return proposal

    def _evolve(self) -> str:
        """Evolution's next design: random while the population fills, then a mutated tournament winner."""
        if len(self._population) + len(self._pending) < self.population_size:
            return self._space.from_indices(self._rng.integers(0, self._card))[0]
        for _ in range(_MUTATION_TRIES):
            child = self._space.from_indices(self._mutant())[0]
            if child not in self._tried:
                break
        return child

    def _mutant(self) -> np.ndarray:
        """A tournament winner with each decision redrawn with ``mutation_prob`` (at least one changes)."""
        members = len(self._population)
        entrants = self._rng.choice(members, size=min(self.sample_size, members), replace=False)
        winner = max(entrants, key=lambda j: self._population[j][1])
        parent = np.array(self._space.indices_of(self._population[winner][0]))
        redraw = self._rng.random(parent.shape) < self.mutation_prob
        child = np.where(redraw, self._rng.integers(0, self._card), parent)
        if (child == parent).all() and self._mutable_dims.size:
            d = self._mutable_dims[self._rng.integers(self._mutable_dims.size)]
            child[d] = (child[d] + self._rng.integers(1, self._card[d])) % self._card[d]
        return child

    def _submit(self, proposal: Proposal) -> None:
        model = self.model_space.freeze(arch_to_sample(self._space, proposal.arch, labels=self._labels))
        record: dict[str, Any] = {
            "arch": proposal.arch, "source": proposal.source, "predicted_latency_ms": proposal.predicted_latency_ms,
            "latency_upper_ms": proposal.latency_upper_ms, "latency_scale": proposal.latency_scale,
            "p_feasible": proposal.p_feasible, "metric": None, "latency_ms": None, "status": None,
        }
        self._tried.add(proposal.arch)
        self._pending[id(model)] = (model, record)
        self.engine.submit_models(model)  # the sequential engine evaluates it right here

    # ----------------------------------------------------------------- engine events
    def _on_final_metric(self, event: FinalMetricEvent) -> None:
        entry = self._pending.get(id(event.model))
        if entry is not None and isinstance(self._latency_from, str):
            entry[1]["latency_ms"] = reported_value(event.metric, self._latency_from)

    def _on_training_end(self, event: TrainingEndEvent) -> None:
        entry = self._pending.pop(id(event.model), None)
        if entry is None:
            return
        model, record = entry
        metric = reported_value(model.metric, "default")
        if event.status == ModelStatus.Invalid:
            record.update(status="filtered", latency_ms=None)
            self._counts["filtered"] += 1
        elif event.status == ModelStatus.Trained and metric is not None:
            record.update(status="trained", metric=metric)
            self._population.append((record["arch"], metric))
            if len(self._population) > self.population_size:
                self._population.pop(0)  # aging: the oldest leaves
        else:
            record["status"] = "failed"
            self._counts["failed"] += 1
        if event.status == ModelStatus.Trained and callable(self._latency_from):
            record["latency_ms"] = finite_or_none(self._latency_from(record["arch"]))
        self._measure(record)
        self._history.append(record)

    def _measure(self, record: dict[str, Any]) -> None:
        """Warn once when a few trained trials reported no latency (the guide cannot adapt then)."""
        if record["latency_ms"] is not None and record["latency_ms"] <= 0:
            record["latency_ms"] = None
        if self._latency_from is None or self._warned_no_latency:
            return
        trained = [r for r in self._history + [record] if r["status"] == "trained"]
        if len(trained) >= NO_LATENCY_WARN_AFTER and all(r["latency_ms"] is None for r in trained):
            self._warned_no_latency = True
            warnings.warn(
                f"edgeopt: {len(trained)} trials reported no latency ({self._latency_from!r}); the guide only adapts "
                "to trials that report one, e.g. nni.report_final_result({'default': acc, 'latency_ms': ms})",
                EdgeOptWarning,
                stacklevel=3,
            )

    # ----------------------------------------------------------------- checkpointing
    def state_dict(self) -> dict[str, Any]:
        """The search state as plain JSON types; with the engine's state it resumes the search exactly.

        Designs still being evaluated are left out (they may be proposed again).
        """
        running = {record["arch"] for _, record in self._pending.values()}
        return {
            "format": _STATE_FORMAT,
            "version": _STATE_VERSION,
            "space": self._space.name,
            "population": [[arch, metric] for arch, metric in self._population],
            "history": self.history,
            "tried": sorted(self._tried - running),
            "counts": dict(self._counts),
            "rng": self._rng.bit_generator.state,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` (call after ``initialize``, before ``run``).

        Raises:
            ModelFormatError: for a state of another format, version or space.
        """
        got = (state_dict.get("format"), state_dict.get("version"), state_dict.get("space"))
        if got != (_STATE_FORMAT, _STATE_VERSION, self._space.name):
            raise ModelFormatError(
                f"GuidedStrategy.load_state_dict: expected format {_STATE_FORMAT} version {_STATE_VERSION} "
                f"for space {self._space.name!r}, got {got}"
            )
        fmt = self._space.format
        try:
            self._population = [(fmt(a), float(m)) for a, m in state_dict["population"]]
            self._history = [dict(r, arch=fmt(r["arch"])) for r in state_dict["history"]]
            self._tried = {fmt(a) for a in state_dict["tried"]}
            self._counts = {k: int(state_dict["counts"][k]) for k in self._counts}
            self._rng.bit_generator.state = state_dict["rng"]
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFormatError(f"GuidedStrategy.load_state_dict: malformed state ({err!r})") from None
