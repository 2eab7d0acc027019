"""``GuidedSearch``: the decision rule shared by the Optuna sampler and the NNI strategy.

A guided search has three kinds of trials. It decides which kind comes next, and
which design, from the trials finished so far (and the ones still running), so that
any number of threads or processes sharing one study make the same decisions.

**Guided trials** maximise an acquisition over a pool of candidate designs (every
design of a small space; else a fixed random sample, the guide's own suggestions and
the neighbours of the best designs found):

- the probability that the design fits the budget, from the guide's latency
  prediction *recalibrated on the target's measured residuals*
  (:class:`~edgeopt_plugins.optimizer.LatencyCalibration`) and corrected by what the
  measured designs say about the choices they share with it
  (:class:`~edgeopt_plugins.optimizer.LatencyCorrection`),
- times the expected improvement of the objective: over the best named accuracy
  found so far when the user named an accuracy source (the guide's ``screen`` returns
  one), else from :class:`~edgeopt_plugins.optimizer.ObjectiveSurrogate`, a Gaussian
  process learned online from the study's own values. Without a named accuracy, the
  first ``n_warm_start`` trials are *warm-start* designs: predicted to fit, spread over
  the latency range under the budget and far apart in the space.

**Base trials** are the base sampler's (or base strategy's) own proposals. One that
is new and has at least ``min_p_feasible`` probability of fitting passes unchanged
(``base``); a repeat or an almost surely infeasible one is *repaired* to its nearest
untried neighbour that plausibly fits (``repaired``), except every ``audit_every``-th
rejection, which is measured anyway (``audit``).

**The yield rule** (how the guidance notices it is wrong and gives way):

1. *Latency.* Every measurement recalibrates the bound (widening it when designs
   come out slower than predicted, tightening it when faster) and corrects the
   predictions of the designs that share its choices, so a guide that is too
   pessimistic near the budget cannot hide the designs there for long, and a search
   does not keep measuring near-copies of a design it found over the budget.
   Designs that resemble ones whose measurement failed (nothing reported) are
   estimated less likely to run, which lowers their probability of fitting.
2. *Screen.* Once ``contradictions`` designs that the screen would have rejected
   (probability of fitting under ``min_p_feasible`` when measured) turned out to fit,
   the screen is off: base proposals pass unscreened (``unscreened``).
3. *Accuracy.* A named accuracy whose ranking disagrees with the study's values
   (Spearman < 0.3 over at least 6 designs that fit) is dropped; the search then
   learns the objective online like an unnamed one.
4. *Share.* After the warm start, the base sampler's share of the trials is
   ``r_b / (r_g + r_b)`` clipped to ``[min_base_share, 1 - min_base_share]``, where
   ``r_g`` and ``r_b`` are the rates at which guided and base trials improved the best
   feasible value (with priors of one improvement in two guided and one in eight base
   trials). When the guidance stops paying off and the base sampler does not, the base
   sampler takes over; the guided proposals never take more than ``1 - min_base_share``
   of the trials, and no design is proposed twice.

**Guarantee.** At least one trial in ``1 / min_base_share`` (8 by default) is the
base sampler's own proposal, unscreened once the screen has been contradicted; when
guided trials stop improving while base trials do, the base share grows to
``1 - min_base_share``. So a search whose guidance is wrong still runs the base
sampler, on a history that contains every guided measurement, at a share that
follows the evidence. What it cannot promise is the base sampler's exact trajectory:
the base sampler sees the guided trials too (for TPE they usually help).

Example:
    >>> from edgeopt_plugins.optimizer import GuidedSearch, Observation
    >>> search = GuidedSearch(my_guide, seed=0)  # doctest: +SKIP
    >>> search.tell([Observation("|...|", latency_ms=3.2, value=91.0, source="guided")])  # doctest: +SKIP
    >>> search.plan(), search.propose(exclude=set()).arch  # doctest: +SKIP
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from edgeopt_plugins.exceptions import EdgeOptWarning, InputError
from edgeopt_plugins.optimizer._guide import GuideBase, SearchGuide
from edgeopt_plugins.optimizer._online import LatencyCalibration, LatencyCorrection, log_scale
from edgeopt_plugins.optimizer._surrogate import ObjectiveSurrogate, expected_improvement

__all__ = ["GuidedSearch", "Observation", "Proposal", "GUIDED_SOURCES", "BASE_SOURCES", "NO_LATENCY_WARN_AFTER"]

#: Sources of trials chosen by the guidance.
GUIDED_SOURCES = ("warm_start", "guided")
#: Sources of trials proposed by the base sampler or strategy.
BASE_SOURCES = ("base", "repaired", "audit", "unscreened")

#: Spaces up to this size are searched over every design; larger ones over a sample.
ENUMERATE_LIMIT = 50_000
#: Candidates whose expected improvement is computed exactly per guided trial.
EXACT_CANDIDATES = 256
#: Latency targets of successive warm-start designs, as fractions of the budget.
WARM_FRACTIONS = (0.95, 0.8, 0.65, 0.9, 0.72)
#: Priors of the share rule: (improvements, trials) of guided and base trials.
GUIDED_PRIOR = (1.0, 2.0)
BASE_PRIOR = (1.0, 8.0)
#: A named accuracy is dropped when its Spearman correlation with the values falls under this.
MIN_ACCURACY_AGREEMENT = 0.3
MIN_AGREEMENT_SAMPLES = 6
#: Finished trials after which a search that has read no latency warns (once).
NO_LATENCY_WARN_AFTER = 3


@dataclass(frozen=True)
class Observation:
    """One trial, as the search needs it.

    Attributes:
        arch: Canonical string of the design actually evaluated.
        latency_ms: Measured latency on the target, if reported.
        value: Objective value, larger is better (``None`` for failed, pruned or multi-objective trials).
        source: What proposed it (one of :data:`GUIDED_SOURCES` or :data:`BASE_SOURCES`), ``None`` for
            trials the search did not propose (enqueued, another sampler).
        predicted_ms: Latency predicted when it was proposed (an out-of-sample prediction).
        latency_scale: Log-scale uncertainty of that prediction.
        p_feasible: Probability of fitting the budget when it was proposed.
        failed: The trial failed without a latency (the design could not be measured on the device).
    """

    arch: str
    latency_ms: float | None = None
    value: float | None = None
    source: str | None = None
    predicted_ms: float | None = None
    latency_scale: float | None = None
    p_feasible: float | None = None
    failed: bool = False


@dataclass(frozen=True)
class Proposal:
    """A design to evaluate next and what was predicted for it (calibrated)."""

    arch: str
    source: str
    predicted_latency_ms: float
    latency_upper_ms: float
    latency_scale: float
    p_feasible: float
    predicted_accuracy: float | None = None


@dataclass(frozen=True)
class _Predicted:
    """The guide's predictions for candidate designs, with the correction learned from the measurements."""

    idx: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    accuracy: np.ndarray | None
    shift: np.ndarray
    failure: np.ndarray
    archs: Any  # a sequence of strings (possibly a lazy view of the pool)

    def take(self, rows: np.ndarray | slice, archs: Any) -> _Predicted:
        return _Predicted(self.idx[rows], self.mean[rows], self.scale[rows],
                          None if self.accuracy is None else self.accuracy[rows], self.shift[rows],
                          self.failure[rows], archs)


class _PoolView:
    """Strings of some pool rows, formatted only when asked for."""

    def __init__(self, pool: list[str], pos: np.ndarray) -> None:
        self.pool, self.pos = pool, pos

    def __len__(self) -> int:
        return len(self.pos)

    def __getitem__(self, i: int) -> str:
        return self.pool[self.pos[i]]


class GuidedSearch:
    """The guided search's decisions (see the module docstring for the rule and its guarantee).

    Args:
        guide: The latency (and optionally accuracy) predictor stack for the target and budget.
        n_warm_start: Warm-start designs when no accuracy is named.
        min_p_feasible: Base proposals less likely than this to fit are repaired.
        min_base_share: Smallest share of trials left to the base sampler after the warm start.
        audit_every: Every this many rejected base proposals, one is measured anyway.
        contradictions: Rejected designs measured feasible after which the screen is off.
        pool_size: Candidate designs of a space too large to enumerate.
        max_candidates: Candidates scored per guided trial (a random subset of the pool, plus
            the neighbours of the best designs).
        seed: Seed of every random choice.
    """

    def __init__(
        self,
        guide: SearchGuide,
        *,
        n_warm_start: int = 3,
        min_p_feasible: float = 0.05,
        min_base_share: float = 0.125,
        audit_every: int = 4,
        contradictions: int = 2,
        pool_size: int = 20_000,
        max_candidates: int = 2048,
        seed: int | None = None,
    ) -> None:
        if not isinstance(guide, SearchGuide):
            raise InputError(f"guide must implement SearchGuide (warm_start, screen, observe), got {type(guide).__name__}")
        if n_warm_start < 0 or audit_every < 1 or contradictions < 1 or pool_size < 1 or max_candidates < 1:
            raise InputError("need n_warm_start >= 0 and audit_every, contradictions, pool_size, max_candidates >= 1, "
                             f"got {n_warm_start}, {audit_every}, {contradictions}, {pool_size}, {max_candidates}")
        if not 0.0 < min_p_feasible < 1.0:
            raise InputError(f"min_p_feasible must be between 0 and 1, got {min_p_feasible!r}")
        if not 0.0 <= min_base_share <= 0.5:
            raise InputError(f"min_base_share must be in [0, 0.5], got {min_base_share!r}")
        self.guide = guide
        self.space = guide.space
        self.budget = guide.latency_budget_ms
        self.confidence = float(getattr(guide, "confidence", 0.95))
        self.n_warm_start = int(n_warm_start)
        self.min_p_feasible = float(min_p_feasible)
        self.min_base_share = float(min_base_share)
        self.audit_every = int(audit_every)
        self.contradictions = int(contradictions)
        self.max_candidates = int(max_candidates)
        self.seed = 0 if seed is None else int(seed)
        self.calibration = LatencyCalibration()
        self.correction = LatencyCorrection(self.space)
        self.surrogate = ObjectiveSurrogate(self.space.cardinalities)
        self._card = self.space.cardinalities
        if self.space.size <= ENUMERATE_LIMIT:
            self._pool = self.space.all_indices()
        else:
            self._pool = self.space.sample_indices(int(pool_size), seed=self.seed, unique=False)
        # The guide's own suggestions (e.g. the learned optimizer's) join the pool, asked once here so that
        # the pool depends only on the guide's initial state (a resumed search makes the same decisions).
        extra = [self.space.format(a) for a in guide.warm_start(16)] if self.budget is not None else []
        if extra:
            self._pool = np.unique(np.concatenate([self._pool, self.space.to_indices(extra)]), axis=0)
        self._pool_archs: list[str] | None = None
        self._pool_index: dict[str, int] = {}
        self._pool_accuracy: tuple[np.ndarray | None] | None = None
        self._observations: list[Observation] = []
        self._scores: dict[str, float] = {}
        self._surrogate_n = -1
        self._warned_unlikely = False
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._lock = threading.RLock()
        self._cache: dict[str, Any] | None = None  # pool predictions, rebuilt on demand
        self._correction_key: tuple[Any, int] | None = None  # (guide revision, measured designs) behind it

    # ----------------------------------------------------------------- pickling
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_lock", "_cache", "_correction_key"):
            del state[key]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    # ----------------------------------------------------------------- learning
    def tell(self, observations: Sequence[Observation]) -> None:
        """Every trial so far, oldest first (idempotent: call it with the whole history each time)."""
        with self._lock:
            self._observations = list(observations)
            fresh = [o for o in self._observations if o.latency_ms is not None and o.arch not in self._scores]
            if not fresh:
                return
            # Out-of-sample scores: the prediction made when the design was proposed, else the
            # guide's prediction now, before it sees the measurement.
            unknown = list(dict.fromkeys(o.arch for o in fresh if not (o.predicted_ms and o.latency_scale)))
            predicted = self._predict(unknown) if unknown else None
            at = {a: i for i, a in enumerate(unknown)}
            for o in fresh:
                if o.predicted_ms and o.latency_scale:
                    mean, scale = o.predicted_ms, o.latency_scale
                else:
                    mean, scale = predicted.mean[at[o.arch]], predicted.scale[at[o.arch]]
                self._scores[o.arch] = self.calibration.score(o.latency_ms, mean, scale)
            self.calibration.fit(list(self._scores.values()))
            self.guide.observe(self._measured())
            if self._cache is not None and self._revision() != self._cache["revision"]:
                self._cache = None

    @property
    def observations(self) -> list[Observation]:
        with self._lock:
            return list(self._observations)

    def _measured(self) -> dict[str, float]:
        return {o.arch: o.latency_ms for o in self._observations if o.latency_ms is not None}

    def _revision(self) -> Any:
        revision = getattr(self.guide, "revision", None)
        return revision if revision is not None else len(self._scores)

    def _feasible(self, o: Observation) -> bool:
        return o.latency_ms is None or self.budget is None or o.latency_ms <= self.budget

    # ----------------------------------------------------------------- predictions
    def _predict(self, archs: Sequence[str]) -> _Predicted:
        """The guide's predictions for designs, with the correction learned from the measured ones."""
        archs = list(archs)
        screening = self.guide.screen(archs)
        mean = np.asarray(screening.latency_ms, dtype=float).reshape(-1)
        scale = log_scale(mean, np.asarray(screening.latency_upper_ms, dtype=float).reshape(-1), self.confidence)
        accuracy = None if screening.accuracy is None else np.asarray(screening.accuracy, dtype=float).reshape(-1)
        idx = self.space.to_indices(archs)
        features = self.correction.encode(idx)
        return _Predicted(idx, mean, scale, accuracy, self._shift(features), self.correction.failure(features), archs)

    def _shift(self, encoded: np.ndarray) -> np.ndarray:
        return self.correction.shift(encoded, self.calibration.mu)

    def _pool_predictions(self) -> dict[str, Any]:
        """The guide's predictions for the pool (recomputed when the guide refits), with the correction."""
        if self._pool_archs is None:
            self._pool_archs = self.space.from_indices(self._pool)
            self._pool_features = self.correction.encode(self._pool)
            self._pool_index = {a: i for i, a in enumerate(self._pool_archs)}
        if self._cache is None:
            # A named accuracy does not change: only the latency is predicted again after a refit.
            if self._pool_accuracy is None or not isinstance(self.guide, GuideBase):
                screening = self.guide.screen(self._pool_archs)
                mean, upper, accuracy = screening.latency_ms, screening.latency_upper_ms, screening.accuracy
                self._pool_accuracy = (None if accuracy is None else np.asarray(accuracy, dtype=float).reshape(-1),)
            else:
                mean, upper = self.guide.latency_of(self._pool)
            mean = np.asarray(mean, dtype=float).reshape(-1)
            self._cache = {
                "revision": self._revision(), "mean": mean,
                "scale": log_scale(mean, np.asarray(upper, dtype=float).reshape(-1), self.confidence),
                "accuracy": self._pool_accuracy[0],
            }
            self._correction_key = None
        self._update_correction()
        return self._cache

    def _update_correction(self) -> None:
        """Refit the correction on the guide's current errors on every measured design, and the failure
        estimate on every design tried (when the guide or the data changed)."""
        cache = self._cache
        measured = self._measured()
        failed = {o.arch for o in self._observations if o.failed and o.latency_ms is None} - set(measured)
        key = (cache["revision"], len(measured), len(failed))
        if key == self._correction_key:
            return
        self._correction_key = key
        if failed:
            tried = list(measured) + sorted(failed)
            self.correction.fit_failures(self.space.to_indices(tried), np.array([a in failed for a in tried]))
        if not measured:
            return
        archs = list(measured)
        pos = [self._pool_index.get(a) for a in archs]
        if all(p is not None for p in pos):
            rows = np.array(pos, dtype=np.int64)
            mean, scale = cache["mean"][rows], cache["scale"][rows]
        else:
            screening = self.guide.screen(archs)
            mean = np.asarray(screening.latency_ms, dtype=float).reshape(-1)
            scale = log_scale(mean, np.asarray(screening.latency_upper_ms, dtype=float).reshape(-1), self.confidence)
        self.correction.fit(self.space.to_indices(archs), np.log(np.array(list(measured.values())) / mean), scale)

    def screen(self, archs: Sequence[str]) -> list[Proposal]:
        """What the search predicts for designs (calibrated and corrected), as proposals without a source."""
        with self._lock:
            self._pool_predictions()
            return self._proposals(self._predict(archs), "")

    def _proposals(self, pred: _Predicted, source: str) -> list[Proposal]:
        pf = self._p_feasible(pred)
        upper = self.calibration.upper(pred.mean, pred.scale, self.confidence, pred.shift)
        corrected = pred.mean * np.exp(pred.shift)
        return [Proposal(pred.archs[i], source, float(corrected[i]), float(upper[i]), float(pred.scale[i]),
                         float(pf[i]), None if pred.accuracy is None or not np.isfinite(pred.accuracy[i])
                         else float(pred.accuracy[i]))
                for i in range(len(pred.archs))]

    def _p_feasible(self, pred: _Predicted) -> np.ndarray:
        """Probability that a design runs on the device and fits the budget."""
        return self.calibration.p_feasible(pred.mean, pred.scale, self.budget, pred.shift) * (1.0 - pred.failure)

    # ----------------------------------------------------------------- state of the yield rule
    def named_accuracy_trusted(self) -> bool:
        """Whether a named accuracy exists and the study's values have not contradicted it."""
        with self._lock:
            if self._pool_predictions()["accuracy"] is None:
                return False
            pairs = [(o.arch, o.value) for o in self._observations if o.value is not None and self._feasible(o)]
            if len(pairs) < MIN_AGREEMENT_SAMPLES:
                return True
            named = self._accuracy_of([a for a, _ in pairs])
            ok = np.isfinite(named)
            if ok.sum() < MIN_AGREEMENT_SAMPLES or np.ptp(named[ok]) == 0:
                return True
            rho = stats.spearmanr(named[ok], np.array([v for _, v in pairs])[ok]).statistic
            return bool(np.isfinite(rho) and rho >= MIN_ACCURACY_AGREEMENT)

    def _accuracy_of(self, archs: Sequence[str]) -> np.ndarray:
        cache = self._pool_predictions()
        known = [self._pool_index.get(a) for a in archs]
        if all(i is not None for i in known):
            return cache["accuracy"][np.array(known, dtype=np.int64)]
        accuracy = self._predict(archs).accuracy
        return np.full(len(archs), np.nan) if accuracy is None else accuracy

    def screen_contradicted(self) -> bool:
        """Whether enough designs the screen would have rejected were measured and fit the budget."""
        with self._lock:
            if self.budget is None:
                return False
            hits = sum(1 for o in self._observations
                       if o.latency_ms is not None and o.latency_ms <= self.budget
                       and (o.source == "audit" or (o.p_feasible is not None and o.p_feasible < self.min_p_feasible)))
            return hits >= self.contradictions

    def base_share(self, pending: Sequence[str | None] = ()) -> float:
        """The base sampler's share of the trials after the warm start (see the module docstring)."""
        with self._lock:
            counts = self._credit(pending)
            rate_g = (counts["i_guided"] + GUIDED_PRIOR[0]) / (counts["n_guided"] + GUIDED_PRIOR[1])
            rate_b = (counts["i_base"] + BASE_PRIOR[0]) / (counts["n_base"] + BASE_PRIOR[1])
            return float(np.clip(rate_b / (rate_g + rate_b), self.min_base_share, 1.0 - self.min_base_share))

    def _credit(self, pending: Sequence[str | None]) -> dict[str, int]:
        counts = {"n_guided": 0, "i_guided": 0, "n_base": 0, "i_base": 0}
        best = -np.inf
        for o in self._observations:
            arm = "guided" if o.source == "guided" else "base" if o.source in BASE_SOURCES else None
            improved = o.value is not None and self._feasible(o) and o.value > best
            if improved:
                best = o.value
            if arm is not None:
                counts[f"n_{arm}"] += 1
                counts[f"i_{arm}"] += int(improved)
        for source in pending:
            if source == "guided":
                counts["n_guided"] += 1
            elif source in BASE_SOURCES:
                counts["n_base"] += 1
        return counts

    # ----------------------------------------------------------------- decisions
    def plan(self, pending: Sequence[str | None] = ()) -> str:
        """The kind of the next trial: ``"warm_start"``, ``"guided"`` or ``"base"``.

        Args:
            pending: Sources of the trials still running (proposed, not finished).
        """
        with self._lock:
            if len(self._observations) + len(pending) < self.n_warm_start and not self.named_accuracy_trusted():
                return "warm_start"
            counts = self._credit(pending)
            done = counts["n_guided"] + counts["n_base"]
            return "base" if counts["n_base"] + 1 <= self.base_share(pending) * (done + 1) + 1e-9 else "guided"

    def propose(self, exclude: Iterable[str] = (), *, fixed: Mapping[int, int] | None = None,
                kind: str = "guided") -> Proposal:
        """The guided (or warm-start) design for the next trial.

        Args:
            exclude: Designs already tried or claimed by running trials.
            fixed: ``{decision position: choice index}`` the trial has fixed already.
            kind: ``"guided"`` or ``"warm_start"``.

        Raises:
            InputError: when every candidate design has been tried.
        """
        with self._lock:
            exclude = set(exclude)
            cands = self._candidates(exclude, fixed)
            if not len(cands.archs):
                raise InputError(f"{self.space.name}: every candidate design has been tried")
            pf = self._p_feasible(cands)
            rng = np.random.default_rng([self.seed, len(self._observations), len(exclude)])
            i = self._guided_pick(cands, pf, rng) if kind == "guided" else None
            if i is None:
                i = self._warm_pick(cands, pf, rng)
            if self.budget is not None and pf.max() < self.min_p_feasible and not self._warned_unlikely:
                self._warned_unlikely = True
                warnings.warn(
                    f"edgeopt: no untried design is likely to fit the budget ({self.budget:.4g} ms); measuring the "
                    f"most likely ones (probability {pf.max():.2g} at best)", EdgeOptWarning, stacklevel=3)
            return self._proposals(cands.take(slice(i, i + 1), [cands.archs[i]]), kind)[0]

    def _candidates(self, exclude: set[str], fixed: Mapping[int, int] | None) -> _Predicted:
        """Untried candidates: the pool (with the fixed decisions imposed) and the best designs' neighbours."""
        cache = self._pool_predictions()
        local = self._local_candidates()
        if fixed:
            rows = np.concatenate([self._pool, local]) if local.size else self._pool.copy()
            for d, c in fixed.items():
                rows[:, d] = c
            names = [a for a in dict.fromkeys(self.space.from_indices(np.unique(rows, axis=0))) if a not in exclude]
            return self._predict(names)
        tried = np.zeros(len(self._pool_archs), dtype=bool)
        tried[[i for a in exclude if (i := self._pool_index.get(a)) is not None]] = True
        pos = np.flatnonzero(~tried)
        pool = _Predicted(self._pool[pos], cache["mean"][pos], cache["scale"][pos],
                          None if cache["accuracy"] is None else cache["accuracy"][pos],
                          self._shift(self._pool_features[pos]), self.correction.failure(self._pool_features[pos]),
                          _PoolView(self._pool_archs, pos))
        names = [a for a in dict.fromkeys(self.space.from_indices(local)) if a not in exclude
                 and a not in self._pool_index] if local.size else []
        if not names:
            return pool
        more = self._predict(names)
        accuracy = None
        if pool.accuracy is not None:
            accuracy = np.concatenate([pool.accuracy, more.accuracy if more.accuracy is not None
                                       else np.full(len(names), np.nan)])
        return _Predicted(np.concatenate([pool.idx, more.idx]), np.concatenate([pool.mean, more.mean]),
                          np.concatenate([pool.scale, more.scale]), accuracy,
                          np.concatenate([pool.shift, more.shift]), np.concatenate([pool.failure, more.failure]),
                          [pool.archs[i] for i in range(len(pos))] + names)

    def _local_candidates(self) -> np.ndarray:
        """Every one-decision neighbour of the three best designs found (for spaces searched by sample)."""
        if self.space.size <= ENUMERATE_LIMIT:
            return np.zeros((0, len(self._card)), dtype=np.int64)
        best = sorted((o for o in self._observations if o.value is not None and self._feasible(o)),
                      key=lambda o: -o.value)[:3]
        rows = [row for o in best for row in self._neighbours(np.array(self.space.indices_of(o.arch)))]
        return np.array(rows, dtype=np.int64) if rows else np.zeros((0, len(self._card)), dtype=np.int64)

    def _neighbours(self, center: np.ndarray, free: Sequence[int] | None = None) -> list[np.ndarray]:
        """Every design that differs from ``center`` in one of the ``free`` decisions (default: any)."""
        rows = []
        for d in range(len(center)) if free is None else free:
            for c in range(int(self._card[d])):
                if c != center[d]:
                    row = center.copy()
                    row[d] = c
                    rows.append(row)
        return rows

    def _warm_pick(self, cands: _Predicted, pf: np.ndarray, rng: np.random.Generator) -> int:
        """A design likely to fit, at the next latency target under the budget, far from measured designs."""
        k = sum(o.source == "warm_start" for o in self._observations)
        measured = [o.arch for o in self._observations]
        idx = cands.idx
        if measured:
            seen = self.space.one_hot(self.space.to_indices(measured))
            overlap = (self.space.one_hot(idx) @ seen.T).max(axis=1)
            distance = 1.0 - overlap / idx.shape[1]
        else:
            distance = np.ones(idx.shape[0])
        jitter = 1e-6 * rng.random(idx.shape[0])
        if self.budget is None:
            return int(np.argmax(distance + jitter))
        safe = pf >= self.confidence
        if not safe.any():
            safe = pf >= np.max(pf) - 1e-12
        target = WARM_FRACTIONS[k % len(WARM_FRACTIONS)] * self.budget
        corrected = cands.mean * np.exp(cands.shift)
        score = -np.abs(np.log(corrected / target)) + 0.1 * distance + jitter
        return int(np.flatnonzero(safe)[np.argmax(score[safe])])

    def _guided_pick(self, cands: _Predicted, pf: np.ndarray, rng: np.random.Generator) -> int | None:
        """Probability of fitting times expected improvement: of the named accuracy, else of the surrogate."""
        accuracy = cands.accuracy
        if accuracy is not None and self.named_accuracy_trusted():
            feasible = [o.arch for o in self._observations if o.latency_ms is not None and self._feasible(o)]
            found = self._accuracy_of(feasible) if feasible else np.zeros(0)
            found = found[np.isfinite(found)]
            finite = np.isfinite(accuracy)
            if finite.any():
                incumbent = found.max() if found.size else np.min(accuracy[finite]) - 1.0
                score = np.where(finite, pf * np.maximum(np.nan_to_num(accuracy) - incumbent, 0.0), 0.0)
                if score.max() > 0:
                    return int(np.argmax(score))
        return self._surrogate_pick(cands.idx, pf, rng)

    def _surrogate_pick(self, idx: np.ndarray, pf: np.ndarray, rng: np.random.Generator) -> int | None:
        """Expected improvement (online surrogate) times the probability of fitting; ``None`` before two values.

        Scored on at most ``max_candidates`` designs: those at least ``min_p_feasible`` likely to fit
        (a random subset when there are more) and an eighth as many of the others.
        """
        data = [o for o in self._observations if o.value is not None and self._feasible(o)]
        if len(data) != self._surrogate_n:
            self.surrogate.fit(self.space.to_indices([o.arch for o in data]), np.array([o.value for o in data]))
            self._surrogate_n = len(data)
        if not self.surrogate.fitted:
            return None
        likely = pf >= self.min_p_feasible
        parts = []
        for mask, size in ((likely, self.max_candidates), (~likely, self.max_candidates // 8)):
            rows = np.flatnonzero(mask)
            parts.append(rng.choice(rows, size=size, replace=False) if rows.size > size else rows)
        eligible = np.concatenate(parts)
        # Expected improvement grows with the predictive sd, which is at most 1: rank by that bound first,
        # then compute the exact value for the most promising candidates only.
        mean = self.surrogate.predict_mean(idx[eligible])
        bound = expected_improvement(mean, np.ones_like(mean), self.surrogate.best) * pf[eligible]
        top = eligible[np.argsort(-bound, kind="stable")[:EXACT_CANDIDATES]]
        score = self.surrogate.expected_improvement(idx[top]) * pf[top]
        return int(top[np.argmax(score)])

    def screen_base(self, arch: str, exclude: Iterable[str] = (), *,
                    fixed: Mapping[int, int] | None = None) -> Proposal:
        """The base sampler's proposal, passed, audited or repaired (see the module docstring)."""
        with self._lock:
            exclude = set(exclude)
            arch = self.space.format(arch)
            proposal = self.screen([arch])[0]
            fresh = arch not in exclude
            if fresh and (self.budget is None or proposal.p_feasible >= self.min_p_feasible):
                return _with_source(proposal, "base")
            if fresh and self.screen_contradicted():
                return _with_source(proposal, "unscreened")
            rejected = sum(o.source in ("repaired", "audit") for o in self._observations)
            if fresh and rejected % self.audit_every == self.audit_every - 1:
                return _with_source(proposal, "audit")
            repaired = self._repair(arch, exclude, fixed)
            return _with_source(repaired if repaired is not None else self.propose(exclude, fixed=fixed), "repaired")

    def _repair(self, arch: str, exclude: set[str], fixed: Mapping[int, int] | None) -> Proposal | None:
        """A random untried design among the nearest (one decision changed, else two) that plausibly fit."""
        center = np.array(self.space.indices_of(arch))
        free = [d for d in range(len(center)) if not fixed or d not in fixed]
        rng = np.random.default_rng([self.seed, len(self._observations), 1])
        doubles = []
        if len(free) >= 2:
            for _ in range(256):
                row = center.copy()
                for d in rng.choice(free, size=2, replace=False):
                    if self._card[d] > 1:
                        row[d] = (row[d] + rng.integers(1, self._card[d])) % self._card[d]
                doubles.append(row)
        threshold = 0.5 if self.budget is not None else 0.0
        for rows in (self._neighbours(center, free), doubles):
            names = [a for a in dict.fromkeys(self.space.from_indices(np.array(rows))) if a not in exclude] \
                if rows else []
            ok = [p for p in self.screen(names) if p.p_feasible >= threshold] if names else []
            if ok:
                return ok[int(rng.integers(len(ok)))]
        return None


def _with_source(proposal: Proposal, source: str) -> Proposal:
    return Proposal(proposal.arch, source, proposal.predicted_latency_ms, proposal.latency_upper_ms,
                    proposal.latency_scale, proposal.p_feasible, proposal.predicted_accuracy)
