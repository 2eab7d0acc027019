"""``GuidedStrategy``: an NNI 3.0 multi-trial strategy that warm-starts, screens and adapts with a :class:`SearchGuide`.

How the next design is chosen (the NNI twin of :class:`~edgeopt_plugins.samplers.GuidedSampler`):

1. **Warm start.** The guide's top designs (``guide.warm_start(n)``, asked once
   and kept in the state) are proposed first, in order.
1b. **Exploration.** Then, for ``n_explore`` proposals, the guide's best designs
   that plausibly fit (``guide.warm_start(..., confidence=explore_confidence)``,
   recomputed as measurements arrive): the optimum usually sits at the budget,
   where a conservative bound hides it.
2. **Regularized (aging) evolution.** Until the population is full, random
   designs; then tournament selection (best of ``sample_size`` random members)
   and per-decision mutation of the winner. The oldest member leaves the
   population when a new one enters. Candidates are drawn in batches of 32; when
   the guide predicts accuracy, the feasible candidate it predicts most accurate
   is taken, else the first feasible one.
3. **Screening before the engine.** Every candidate (warm starts included) is
   skipped if it was proposed before or if the guide's latency upper bound
   exceeds the budget. Skipped candidates never reach the engine, so they cost
   no trial. Only when no untried design is predicted to fit (a guide too
   cautious, or a budget nothing meets) is the candidate with the lowest upper
   bound evaluated instead (source ``fallback``, with a warning): its
   measurement teaches the guide.
4. **Online adaptation.** Before every proposal the guide receives all latencies
   measured so far (``guide.observe``), so its predictions improve during the search.

Latency comes from the evaluator's final metric dict
(``{"default": accuracy, "latency_ms": ms}``) or from a callable on the architecture.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple, Union

import numpy as np
from nni.nas.execution import ExecutionEngine
from nni.nas.execution.event import FinalMetricEvent, ModelEventType, TrainingEndEvent
from nni.nas.space import ExecutableModelSpace, ModelStatus
from nni.nas.strategy.base import Strategy

from edgeopt_plugins.exceptions import EdgeOptWarning, InputError, ModelFormatError
from edgeopt_plugins.optimizer import SearchGuide
from edgeopt_plugins._values import finite_or_none
from edgeopt_plugins.strategies._evaluator import LATENCY_KEY, reported_value
from edgeopt_plugins.strategies._space import LabelsLike, arch_to_sample, check_choices, resolve_labels

__all__ = ["GuidedStrategy"]

LatencyFrom = Union[str, Callable[[str], Union[float, None]], None]

_STATE_FORMAT = "edgeopt.GuidedStrategy"
_STATE_VERSION = 1
#: Candidates generated and screened together.
_BATCH = 32


class _Proposal(NamedTuple):
    arch: str
    source: str
    predicted_latency_ms: float
    latency_upper_ms: float


class GuidedStrategy(Strategy):
    """Warm start, predictor screening and online adaptation on top of aging evolution.

    Usually built through :class:`~edgeopt_plugins.strategies.DeviceConditionedStrategy`
    or :class:`~edgeopt_plugins.strategies.ProxyStrategy`; use it directly with
    your own :class:`~edgeopt_plugins.optimizer.SearchGuide`. Run it in-process with
    :func:`~edgeopt_plugins.strategies.run_nni_search`, or drive it yourself with
    ``strategy.initialize(model_space, SequentialExecutionEngine(..., continue_on_failure=True))``
    then ``strategy.run()``.

    Args:
        guide: The predictor stack for the target device and budget.
        n_warm_start: How many of the guide's top designs to try first.
        n_explore: How many proposals then follow the guide's designs that plausibly fit
            (their bound at ``explore_confidence`` fits the budget), recomputed after every measurement.
        explore_confidence: Confidence of that bound (0.5: the median prediction).
        population_size: Members of the aging population.
        sample_size: Tournament size (``1 <= sample_size <= population_size``).
        mutation_prob: Chance that each decision is redrawn in a child (at least
            one always changes); default ``1 / number of decisions``.
        labels: Sample layout of the NNI model space (default: recognised, see
            :func:`~edgeopt_plugins.strategies.resolve_labels`).
        latency_from: Where measured latency comes from: a key of the reported
            metric dict (default ``"latency_ms"``), a callable ``arch -> ms | None``
            called after each successful trial, or ``None`` (no online adaptation).
        max_attempts: Candidates screened per proposal before giving up on
            mutation (then random designs get as many); when none is predicted
            to fit, the closest one is evaluated (see the module notes).
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
        n_warm_start: int = 5,
        n_explore: int = 20,
        explore_confidence: float = 0.5,
        population_size: int = 20,
        sample_size: int = 5,
        mutation_prob: float | None = None,
        labels: LabelsLike = None,
        latency_from: LatencyFrom = LATENCY_KEY,
        max_attempts: int = 512,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(guide, SearchGuide):
            raise InputError(
                f"guide must implement SearchGuide (warm_start, screen, observe), got {type(guide).__name__}"
            )
        if n_warm_start < 0 or not 1 <= sample_size <= population_size or max_attempts < 1:
            raise InputError(
                "need n_warm_start >= 0, 1 <= sample_size <= population_size and max_attempts >= 1, got "
                f"{n_warm_start}, {sample_size}, {population_size}, {max_attempts}"
            )
        if n_explore < 0 or not 0.0 < explore_confidence < 1.0:
            raise InputError(f"need n_explore >= 0 and 0 < explore_confidence < 1, got {n_explore}, {explore_confidence}")
        if mutation_prob is not None and not 0.0 <= mutation_prob <= 1.0:
            raise InputError(f"mutation_prob must be in [0, 1], got {mutation_prob}")
        if latency_from is not None and not isinstance(latency_from, str) and not callable(latency_from):
            raise InputError(f"latency_from must be a metric key, a callable or None, got {latency_from!r}")
        self._guide = guide
        self._space = guide.space
        self._n_warm = n_warm_start
        self._n_explore = n_explore
        self._explore_confidence = float(explore_confidence)
        self.population_size = population_size
        self.sample_size = sample_size
        self.mutation_prob = 1.0 / len(self._space.decisions) if mutation_prob is None else float(mutation_prob)
        self._labels_arg = labels
        self._latency_from = latency_from
        self._max_attempts = max_attempts
        self._rng = np.random.default_rng(seed)
        self._card = self._space.cardinalities
        self._mutable_dims = np.flatnonzero(self._card > 1)
        # Search state (all of it is in state_dict).
        self._warm: list[str] | None = None
        self._warm_cursor = 0
        self._population: list[tuple[str, float]] = []  # oldest first
        self._history: list[dict[str, Any]] = []
        self._measured: dict[str, float] = {}
        self._tried: set[str] = set()
        self._counts = {"screened_out": 0, "failed": 0, "filtered": 0}
        # Run-time only.
        self._pending: dict[int, tuple[ExecutableModelSpace, dict[str, Any]]] = {}
        self._guide_stale = False
        self._warned_no_latency = False

    def extra_repr(self) -> str:
        return (
            f"guide={type(self._guide).__name__}, space={self._space.name!r}, "
            f"budget_ms={self._guide.latency_budget_ms}, population_size={self.population_size}, "
            f"sample_size={self.sample_size}, mutation_prob={self.mutation_prob:.3g}"
        )

    # ----------------------------------------------------------------- results
    @property
    def guide(self) -> SearchGuide:
        """The guide driving this strategy."""
        return self._guide

    @property
    def history(self) -> list[dict[str, Any]]:
        """Every finished proposal, in order: ``arch``, ``source`` (``warm_start``, ``random``,
        ``mutation`` or ``fallback``), ``predicted_latency_ms``, ``latency_upper_ms``, ``metric``, ``latency_ms``
        and ``status`` (``trained``, ``failed``, or ``filtered`` by a middleware)."""
        return [dict(record) for record in self._history]

    @property
    def counts(self) -> dict[str, int]:
        """Candidates ``screened_out`` by the guide, trials ``failed``, models ``filtered`` by a middleware."""
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
        if self._warm is None:
            self._warm = [self._space.format(a) for a in self._guide.warm_start(self._n_warm)] if self._n_warm else []
        warned = False
        while self.wait_for_resource():  # budget first: no random draw happens past the budget (exact resume)
            self._sync_guide()
            proposal = self._propose()
            if proposal is None:
                warnings.warn(
                    f"edgeopt: no untried design found; stopping after {len(self._history)} trials",
                    EdgeOptWarning,
                    stacklevel=3,
                )
                break
            if proposal.source == "fallback" and not warned:
                warned = True
                warnings.warn(
                    f"edgeopt: no untried design is predicted to fit the budget ({self._guide.latency_budget_ms} ms); "
                    f"evaluating the closest ones instead (upper bound {proposal.latency_upper_ms:.4g} ms)",
                    EdgeOptWarning,
                    stacklevel=3,
                )
            self._submit(proposal)
        self.engine.wait_models()
        self._sync_guide()

    def _sync_guide(self) -> None:
        """Hand every latency measured so far to the guide, if any arrived since last time."""
        if self._guide_stale:
            self._guide.observe(dict(self._measured))
            self._guide_stale = False

    # ----------------------------------------------------------------- proposals
    def _propose(self) -> _Proposal | None:
        """The next design to evaluate: predicted to fit if any is found, else the closest fallback."""
        assert self._warm is not None
        while self._warm_cursor < len(self._warm):
            arch = self._warm[self._warm_cursor]
            self._warm_cursor += 1
            if arch not in self._tried and (found := self._screen([arch], "warm_start")[0]) is not None:
                return found
        explored = sum(r["source"] == "explore" for r in self._history)
        explored += sum(rec["source"] == "explore" for _, rec in self._pending.values())
        if explored < self._n_explore:
            level = self._explore_confidence
            for arch in self._guide.warm_start(self._n_warm + self._n_explore, confidence=level):
                if arch not in self._tried:
                    s = self._guide.screen([arch])
                    return _Proposal(arch, "explore", float(s.latency_ms[0]), float(s.latency_upper_ms[0]))
        nearest = []
        if len(self._population) + len(self._pending) >= self.population_size:
            found, near = self._search(self._mutants, "mutation")
            if found is not None:
                return found
            nearest.append(near)
        found, near = self._search(self._randoms, "random")
        if found is not None:
            return found
        closest = min((p for p in (*nearest, near) if p is not None), key=lambda p: p.latency_upper_ms, default=None)
        return None if closest is None else closest._replace(source="fallback")

    def _search(self, generate: Callable[[int], np.ndarray], source: str) -> tuple[_Proposal | None, _Proposal | None]:
        """Screen batches of generated candidates until one is new and predicted to fit.

        Returns:
            That candidate (or ``None``) and the new candidate with the lowest upper bound seen.
        """
        closest = None
        for _ in range(math.ceil(self._max_attempts / _BATCH)):
            candidates = [a for a in dict.fromkeys(self._space.from_indices(generate(_BATCH))) if a not in self._tried]
            found, near = self._screen(candidates, source)
            if found is not None:
                return found, None
            if near is not None and (closest is None or near.latency_upper_ms < closest.latency_upper_ms):
                closest = near
        return None, closest

    def _screen(self, archs: list[str], source: str) -> tuple[_Proposal | None, _Proposal | None]:
        """The best of ``archs`` whose latency upper bound fits the budget (highest predicted
        accuracy, else the first), or else the one closest to the budget."""
        if not archs:
            return None, None
        screening = self._guide.screen(archs)
        ok = np.flatnonzero(screening.feasible(self._guide.latency_budget_ms))
        self._counts["screened_out"] += len(archs) - ok.size
        if ok.size == 0:
            i = int(np.argmin(screening.latency_upper_ms))
        elif screening.accuracy is None:
            i = int(ok[0])
        else:
            i = int(ok[np.argmax(screening.accuracy[ok])])
        proposal = _Proposal(archs[i], source, float(screening.latency_ms[i]), float(screening.latency_upper_ms[i]))
        return (proposal, None) if ok.size else (None, proposal)

    def _randoms(self, k: int) -> np.ndarray:
        return self._rng.integers(0, self._card, size=(k, len(self._card)))

    def _mutants(self, k: int) -> np.ndarray:
        """``k`` children: tournament winners with each decision redrawn with ``mutation_prob``."""
        members = len(self._population)
        size = min(self.sample_size, members)
        parents = np.empty((k, len(self._card)), dtype=np.int64)
        for row in range(k):
            entrants = self._rng.choice(members, size=size, replace=False)
            winner = max(entrants, key=lambda j: self._population[j][1])
            parents[row] = self._space.indices_of(self._population[winner][0])
        redraw = self._rng.random(parents.shape) < self.mutation_prob
        children = np.where(redraw, self._rng.integers(0, self._card, size=parents.shape), parents)
        # Force one change where nothing changed, so every child is a new design.
        dims = self._mutable_dims[self._rng.integers(0, len(self._mutable_dims), size=k)]
        shift = self._rng.integers(1, self._card[dims])
        same = np.flatnonzero((children == parents).all(axis=1))
        children[same, dims[same]] = (children[same, dims[same]] + shift[same]) % self._card[dims[same]]
        return children

    def _submit(self, proposal: _Proposal) -> None:
        model = self.model_space.freeze(arch_to_sample(self._space, proposal.arch, labels=self._labels))
        record: dict[str, Any] = {**proposal._asdict(), "metric": None, "latency_ms": None, "status": None}
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
        """Keep a trial's measured latency for the guide (warn once when trials report none)."""
        latency = record["latency_ms"]
        if latency is not None and latency > 0:
            self._measured[record["arch"]] = latency
            self._guide_stale = True
        elif record["status"] == "trained" and self._latency_from is not None and not self._warned_no_latency:
            self._warned_no_latency = True
            warnings.warn(
                f"edgeopt: trial {record['arch']} reported no latency ({self._latency_from!r}); the guide only adapts "
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
            "warm_start": None if self._warm is None else list(self._warm),
            "warm_cursor": self._warm_cursor,
            "population": [[arch, metric] for arch, metric in self._population],
            "history": self.history,
            "measured": dict(self._measured),
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
            warm = state_dict["warm_start"]
            self._warm = None if warm is None else [fmt(a) for a in warm]
            self._warm_cursor = int(state_dict["warm_cursor"])
            self._population = [(fmt(a), float(m)) for a, m in state_dict["population"]]
            self._history = [dict(r, arch=fmt(r["arch"])) for r in state_dict["history"]]
            self._measured = {fmt(a): float(v) for a, v in state_dict["measured"].items()}
            self._tried = {fmt(a) for a in state_dict["tried"]}
            self._counts = {k: int(state_dict["counts"][k]) for k in self._counts}
            self._rng.bit_generator.state = state_dict["rng"]
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFormatError(f"GuidedStrategy.load_state_dict: malformed state ({err!r})") from None
        self._guide_stale = bool(self._measured)
