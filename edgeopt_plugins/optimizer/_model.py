"""``ConditionedModel``: the fitted approach-2 bundle (predictors, calibration, optimizer).

It bundles the device-conditioned latency (and energy) predictor with its
conformal calibration, the accuracy predictor and the learned optimizer, and
answers the questions a sampler, a strategy or a fleet runner asks:

- ``predict(archs, profile)``: latency and its calibrated upper bound;
- ``embed(profiles)``: device representations, in one batch;
- ``recommend(profile, latency_budget_ms=...)``: the best designs whose upper
  bound fits the budget, with no per-device search;
- ``recommend_many(profiles, budgets)``: the same for thousands of devices.

Saved as a folder of JSON + safetensors (see :mod:`edgeopt_plugins.predictors._store`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgeopt_plugins._memory import require_memory
from edgeopt_plugins._values import MAX_TRADEOFF, check_seed, implausible
from edgeopt_plugins.data import MetricTable, load_table
from edgeopt_plugins.devices import DeviceProfile
from edgeopt_plugins.exceptions import (
    DataNotFoundError,
    InfeasibleBudgetError,
    InputError,
    ModelFormatError,
)
from edgeopt_plugins.optimizer._learned import (
    LearnedOptimizer,
    OptimizerConfig,
    Task,
    candidate_pool,
    fit_learned_optimizer,
)
from edgeopt_plugins.predictors import (
    AccuracyPredictor,
    ConditionedPredictor,
    DeviceEmbedding,
    PredictorConfig,
    TrainingDevices,
    fit_accuracy_predictor,
    fit_conditioned_predictor,
)
from edgeopt_plugins.predictors._accuracy import AccuracyFn
from edgeopt_plugins.predictors._archkeys import unique_rows
from edgeopt_plugins.predictors._calibration import check_confidence
from edgeopt_plugins.predictors._store import load_model_folder, save_model_folder
from edgeopt_plugins.spaces import BUILTIN_NAMES, ArchLike, SearchSpace, get_space, saved_space, space_record

__all__ = ["ConditionedModel", "Design", "FitConfig", "fit_from_data", "MODEL_FORMAT", "MODEL_FORMAT_VERSION",
           "DEFAULT_DATASETS"]

MODEL_FORMAT = "edgeopt-conditioned-model"
MODEL_FORMAT_VERSION = 1
#: Accuracy data set used by default for the spaces that have accuracy tables.
DEFAULT_DATASETS = {"nb201": "cifar10", "mnasnet": "imagenet"}
#: Budgets are shrunk by these factors to find feasible proposals before giving up.
_RETRY_SHRINK = (0.5, 0.2, 0.05)
#: Random designs added to the table designs when proposals of a large space all miss the budget
#: (an eighth of it for spaces whose features are counted on built models).
_FALLBACK_SAMPLE = 4096


def _round_up(value: float) -> float:
    """``value`` rounded up to three significant digits (a budget quoted back must still work)."""
    if not np.isfinite(value) or value <= 0:
        return value
    step = 10.0 ** (np.floor(np.log10(value)) - 2)
    rounded = float(np.ceil(value / step) * step)
    return float(f"{rounded:.3g}") if float(f"{rounded:.3g}") >= value else rounded


@dataclass(frozen=True)
class Design:
    """One recommended design.

    Attributes:
        arch: Canonical architecture string.
        predicted_latency_ms: Predicted latency on the device.
        latency_upper_ms: Calibrated upper bound at the requested confidence (fits the budget).
        predicted_accuracy: Predicted (or table) accuracy, percent.
        predicted_energy_mj: Predicted energy (``None`` without an energy model).
        energy_upper_mj: Its upper bound (``None`` without an energy model).
    """

    arch: str
    predicted_latency_ms: float
    latency_upper_ms: float
    predicted_accuracy: float
    predicted_energy_mj: float | None = None
    energy_upper_mj: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (energy keys only when predicted)."""
        out = asdict(self)
        if self.predicted_energy_mj is None:
            out.pop("predicted_energy_mj")
            out.pop("energy_upper_mj")
        return out


@dataclass(frozen=True)
class FitConfig:
    """Everything :meth:`ConditionedModel.fit` trains, and how much.

    Use :meth:`tiny` in tests (seconds), :meth:`fast` for leave-one-device-out
    benchmarks, the default for a model you deploy.
    """

    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    accuracy_epochs: int = 60
    accuracy_samples: int = 20_000

    @classmethod
    def tiny(cls) -> FitConfig:
        """Seconds on a laptop core; for tests (quality is not the point)."""
        return cls(
            PredictorConfig(ranks=(2, 4), n_folds=3, calib_ks=(1, 5, 20), calib_draws=2, calib_archs=300,
                            select_ks=(5,), tower_epochs=3, tower_hidden=(32,)),
            OptimizerConfig(n_devices=150, cases_per_device=4, profile_ks=(5, 20), pool_size=2000, components=2,
                            hidden=(64,), epochs=3, batch_size=256, beam=32),
            accuracy_epochs=3,
            accuracy_samples=500,
        )

    @classmethod
    def fast(cls) -> FitConfig:
        """Tens of seconds; what the leave-one-device-out benchmark fits per held-out device."""
        return cls(
            PredictorConfig(calib_draws=3, calib_archs=2000, tower_epochs=15),
            OptimizerConfig(n_devices=2000, epochs=20, hidden=(128, 128)),
            accuracy_epochs=15,
            accuracy_samples=10_000,
        )

    def to_json(self) -> dict[str, Any]:
        return {"predictor": asdict(self.predictor), "optimizer": asdict(self.optimizer),
                "accuracy_epochs": self.accuracy_epochs, "accuracy_samples": self.accuracy_samples}


def _budgets(value: float | Sequence[float] | np.ndarray, n: int, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    arr = arr.reshape(-1)
    if arr.shape != (n,):
        raise InputError(f"{name}: expected one value or {n} values, got {arr.size}")
    if not np.isfinite(arr).all() or (arr <= 0).any():
        bad = arr[~(np.isfinite(arr) & (arr > 0))][0]
        raise InputError(f"{name} must be a positive number, got {bad}")
    for value in arr:
        if reason := implausible(name.replace("_budget", ""), float(value), name):
            raise InputError(reason)
    return arr


class ConditionedModel:
    """The fitted approach-2 model of one search space.

    Args:
        predictor: Latency (+ energy) predictor with calibration.
        accuracy: Accuracy predictor.
        optimizer: Learned optimizer.
        info: Training metadata (devices, configuration, timings).

    Example:
        >>> from edgeopt_plugins.optimizer import ConditionedModel, FitConfig, fit_from_data
        >>> from edgeopt_plugins.devices import DeviceProfile
        >>> from edgeopt_plugins.data import load_table
        >>> model = fit_from_data("nb201", exclude_devices=["pixel3"], config=FitConfig.tiny())  # doctest: +SKIP
        >>> profile = DeviceProfile.from_table(load_table("nb201"), "pixel3", k=10, seed=0)  # doctest: +SKIP
        >>> best = model.recommend(profile, latency_budget_ms=30.0, top_k=3)  # doctest: +SKIP
        >>> best[0].latency_upper_ms <= 30.0  # doctest: +SKIP
        True
    """

    def __init__(self, predictor: ConditionedPredictor, accuracy: AccuracyPredictor, optimizer: LearnedOptimizer,
                 info: dict[str, Any] | None = None) -> None:
        if accuracy.space.name != predictor.space.name or optimizer.space.name != predictor.space.name:
            raise InputError("model parts belong to different search spaces")
        self.predictor = predictor
        self.accuracy = accuracy
        self.optimizer = optimizer
        self.info = dict(info or {})

    # ----------------------------------------------------------------- facts
    @property
    def space(self) -> SearchSpace:
        return self.predictor.space

    @property
    def has_energy(self) -> bool:
        return self.predictor.has_energy

    def __repr__(self) -> str:
        return (f"ConditionedModel(space={self.space.name!r}, rank={self.predictor.metrics['latency_ms'].rank}, "
                f"devices={len(self.predictor.info.get('training_devices', []))}, energy={self.has_energy}, "
                f"accuracy={self.accuracy.dataset!r})")

    # ----------------------------------------------------------------- fitting
    @classmethod
    def fit(
        cls,
        devices: TrainingDevices,
        *,
        accuracy: AccuracyPredictor | MetricTable | AccuracyFn,
        dataset: str | None = None,
        config: FitConfig | None = None,
        seed: int = 0,
        progress: bool = False,
    ) -> ConditionedModel:
        """Train predictor, calibration, accuracy predictor and optimizer.

        Args:
            devices: Training devices (tables, simulated fleets, ...) of one space.
            accuracy: A fitted :class:`AccuracyPredictor`, an accuracy table, or a
                batched accuracy function ``list[str] -> list[float]`` (percent).
            dataset: Column of the accuracy table (default per space, else its first).
            config: What to train and how much (default :class:`FitConfig`).
            seed: Seed of every random choice (same seed, same model).
            progress: Show tqdm progress bars.
        """
        from tqdm.auto import tqdm

        seed = check_seed(seed)
        cfg = config or FitConfig()
        start = time.perf_counter()
        space = devices.space
        steps = tqdm(total=3, desc=f"edgeopt fit {space.name}", disable=not progress)
        steps.set_postfix_str("latency predictor")
        pred = fit_conditioned_predictor(devices, config=cfg.predictor, seed=seed, progress=progress)
        steps.update(1)
        t_pred = time.perf_counter() - start
        steps.set_postfix_str("accuracy predictor")
        if isinstance(accuracy, AccuracyPredictor):
            acc = accuracy
        elif isinstance(accuracy, MetricTable):
            acc = fit_accuracy_predictor(space, table=accuracy, dataset=dataset or DEFAULT_DATASETS.get(space.name),
                                         epochs=cfg.accuracy_epochs, seed=seed)
        elif callable(accuracy):
            acc = fit_accuracy_predictor(space, accuracy_fn=accuracy, dataset=dataset, n_samples=cfg.accuracy_samples,
                                         epochs=max(1, cfg.accuracy_epochs), seed=seed)
        else:
            raise InputError("accuracy must be an AccuracyPredictor, an accuracy MetricTable or a callable")
        steps.update(1)
        t_acc = time.perf_counter() - start - t_pred
        steps.set_postfix_str("learned optimizer")
        opt = fit_learned_optimizer(pred, acc, devices, config=cfg.optimizer, seed=seed, progress=progress)
        steps.update(1)
        steps.close()
        total = time.perf_counter() - start
        info = {
            "space": space.name,
            "seed": seed,
            "config": cfg.to_json(),
            "training_devices": list(devices.devices),
            "device_kinds": {k: devices.kinds.count(k) for k in dict.fromkeys(devices.kinds)},
            "accuracy_dataset": acc.dataset,
            "fit_seconds": {"predictor": round(t_pred, 2), "accuracy": round(t_acc, 2),
                            "optimizer": round(total - t_pred - t_acc, 2), "total": round(total, 2)},
        }
        return cls(pred, acc, opt, info)

    # ----------------------------------------------------------------- devices
    def embed(self, profiles: DeviceProfile | Sequence[DeviceProfile]) -> DeviceEmbedding:
        """Device representations of one or many profiles (one batched solve)."""
        return self.predictor.embed(profiles)

    def update(self, device: DeviceProfile | DeviceEmbedding, archs: Iterable[ArchLike],
               latency_ms: Iterable[float]) -> DeviceEmbedding:
        """Online update: the embedding of a profile extended by new measurements."""
        emb = device if isinstance(device, DeviceEmbedding) else self.embed(device)
        return self.predictor.update(emb, archs, latency_ms)

    # ----------------------------------------------------------------- prediction
    def predict(self, archs: Iterable[ArchLike] | np.ndarray, profile: DeviceProfile | DeviceEmbedding, *,
                confidence: float = 0.95, metric: str = "latency_ms") -> tuple[np.ndarray, np.ndarray]:
        """``(latency_ms, latency_upper_ms)`` of each architecture on the device.

        Args:
            archs: Architectures of the space (strings, params dicts or an index matrix).
            profile: The device's profile (or its embedding; a batch embedding gives 2-D arrays).
            confidence: The true value stays under the upper bound with this
                probability on unseen devices (split-conformal, see docs/approach2.md).
            metric: ``"latency_ms"`` or ``"energy_mj"`` (models trained with energy).
        """
        return self.predictor.predict(archs, profile, confidence=confidence, metric=metric)

    def predict_accuracy(self, archs: Iterable[ArchLike] | np.ndarray) -> np.ndarray:
        """Predicted accuracy (percent) of each architecture."""
        return self.accuracy(archs)

    # ----------------------------------------------------------------- recommendation
    def recommend(
        self,
        profile: DeviceProfile | DeviceEmbedding,
        *,
        latency_budget_ms: float,
        confidence: float = 0.95,
        candidates: Iterable[ArchLike] | np.ndarray | None = None,
        top_k: int = 5,
        tradeoff: float | None = None,
        energy_budget_mj: float | None = None,
        beam: int | None = None,
    ) -> list[Design]:
        """The best designs for one device whose upper bound fits the budget, best first.

        Args:
            profile: The device's profile (or embedding).
            latency_budget_ms: Latency budget; every design's ``latency_upper_ms`` fits it.
            confidence: Confidence of the upper bounds.
            candidates: Only recommend among these architectures (screened exactly);
                default: designs proposed by the learned optimizer.
            top_k: How many designs.
            tradeoff: Accuracy points given up per doubling of predicted latency
                (``None``/0: the most accurate feasible designs).
            energy_budget_mj: Energy budget (models trained with energy only).
            beam: Designs decoded by the optimizer before screening (default from training).

        Raises:
            InfeasibleBudgetError: when no design's upper bound fits the budget.
            ArchitectureError: for a candidate outside the space.
        """
        emb = self.predictor.as_embedding(profile)
        if len(emb) != 1:
            raise InputError("recommend: expected one device; use recommend_many for several")
        return self.recommend_many(emb, latency_budget_ms, confidence=confidence, candidates=candidates, top_k=top_k,
                                   tradeoff=tradeoff, energy_budget_mj=energy_budget_mj, beam=beam)[0]

    def recommend_many(
        self,
        profiles: Sequence[DeviceProfile] | DeviceEmbedding,
        latency_budget_ms: float | Sequence[float] | np.ndarray,
        *,
        confidence: float = 0.95,
        candidates: Iterable[ArchLike] | np.ndarray | None = None,
        top_k: int = 1,
        tradeoff: float | Sequence[float] | None = None,
        energy_budget_mj: float | Sequence[float] | None = None,
        beam: int | None = None,
        on_infeasible: str = "raise",
    ) -> list[list[Design]]:
        """Recommendations for many devices in one batch (embedding, decoding and screening vectorised).

        Args:
            profiles: Profiles, or a :class:`DeviceEmbedding` of ``B`` devices.
            latency_budget_ms: One budget for all, or one per device.
            confidence, candidates, top_k, tradeoff, energy_budget_mj, beam: As in :meth:`recommend`
                (``tradeoff``/``energy_budget_mj`` may be per device).
            on_infeasible: ``"raise"`` (default) raises :class:`InfeasibleBudgetError`
                naming the first infeasible device; ``"empty"`` returns ``[]`` for it.

        Returns:
            One list of designs (best first) per device.
        """
        c = check_confidence(confidence)
        if on_infeasible not in ("raise", "empty"):
            raise InputError(f"on_infeasible must be 'raise' or 'empty', got {on_infeasible!r}")
        if not isinstance(top_k, (int, np.integer)) or isinstance(top_k, bool) or top_k < 1:
            raise InputError(f"top_k must be a positive integer, got {top_k!r}")
        emb = self.predictor.as_embedding(profiles)
        b = len(emb)
        budgets = _budgets(latency_budget_ms, b, "latency_budget_ms")
        trade = np.zeros(b) if tradeoff is None else np.asarray(tradeoff, dtype=np.float64) * np.ones(b)
        if trade.shape != (b,) or not np.isfinite(trade).all() or (trade < 0).any():
            raise InputError(f"tradeoff must be a non-negative number (or one per device), got {tradeoff!r}")
        if (trade > MAX_TRADEOFF).any():
            raise InputError(f"tradeoff must be at most {MAX_TRADEOFF:g} accuracy points per doubling of latency "
                             f"(beyond that only latency counts), got {float(trade.max()):g}")
        if energy_budget_mj is not None and not self.has_energy:
            raise InputError("energy_budget_mj: this model has no energy predictor (no training device measured energy)")
        e_budgets = np.full(b, np.inf) if energy_budget_mj is None else _budgets(energy_budget_mj, b, "energy_budget_mj")
        task = Task(budgets, self.predictor.multipliers(emb, c), trade, e_budgets,
                    self.predictor.multipliers(emb, c, "energy_mj") if self.has_energy else np.zeros(b))
        cand = None if candidates is None else self._candidate_matrix(candidates)
        if cand is not None:
            picks = self._screen_shared(emb, task, cand, top_k)
        else:
            width = int(beam or self.optimizer.info.get("beam", 128))
            picks = self._screen_proposals(emb, task, self.optimizer.propose(
                LearnedOptimizer.features(self.predictor, emb, task), width), top_k)
            missing = [i for i, p in enumerate(picks) if p is None]
            for shrink in _RETRY_SHRINK:
                if not missing:
                    break
                sub = emb[missing]
                sub_task = Task(task.budget_ms[missing] * shrink, task.multiplier[missing], task.tradeoff[missing],
                                task.energy_budget_mj[missing] * shrink, task.energy_multiplier[missing])
                proposals = self.optimizer.propose(LearnedOptimizer.features(self.predictor, sub, sub_task), width)
                real = Task(task.budget_ms[missing], *(a[missing] for a in (task.multiplier, task.tradeoff,
                                                                              task.energy_budget_mj,
                                                                              task.energy_multiplier)))
                for i, pick in zip(missing, self._screen_proposals(sub, real, proposals, top_k)):
                    picks[i] = pick
                missing = [i for i, p in enumerate(picks) if p is None]
            if missing:
                full = self._fallback_pool()
                sub_task = Task(*(a[missing] for a in (task.budget_ms, task.multiplier, task.tradeoff,
                                                       task.energy_budget_mj, task.energy_multiplier)))
                for i, pick in zip(missing, self._screen_shared(emb[missing], sub_task, full, top_k)):
                    picks[i] = pick
        out: list[list[Design]] = []
        for i, pick in enumerate(picks):
            if pick is None:
                if on_infeasible == "raise":
                    raise InfeasibleBudgetError(self._infeasible_message(emb, i, budgets[i], e_budgets[i], c, cand))
                out.append([])
                continue
            out.append(pick)
        return out

    def smallest_budget_ms(
        self,
        profile: DeviceProfile | DeviceEmbedding,
        *,
        confidence: float = 0.95,
        candidates: Iterable[ArchLike] | np.ndarray | None = None,
        energy_budget_mj: float | None = None,
    ) -> float:
        """The smallest latency budget that :meth:`recommend` meets for this device at this confidence.

        It is the lowest calibrated upper bound among ``candidates`` (default: the designs
        :meth:`recommend` screens when the optimizer's proposals all miss: every design of a
        small space, else the training tables' designs and a fixed random sample) that also
        fit ``energy_budget_mj``. :meth:`recommend` with this budget (or more) finds a design.

        Args:
            profile: The device's profile (or an embedding of one device).
            confidence: Confidence of the upper bounds, as in :meth:`recommend`.
            candidates: Only these architectures, as in :meth:`recommend`.
            energy_budget_mj: Only designs whose energy upper bound fits it.

        Returns:
            The budget in ms; ``inf`` when no design fits ``energy_budget_mj``.

        Example:
            >>> floor = model.smallest_budget_ms(profile, confidence=0.95)  # doctest: +SKIP
            >>> model.recommend(profile, latency_budget_ms=floor, top_k=1)  # doctest: +SKIP
        """
        idx = self._fallback_pool() if candidates is None else self._candidate_matrix(candidates)
        _, upper = self.predict(idx, profile, confidence=confidence)
        fits = np.ones(len(upper), dtype=bool)
        if energy_budget_mj is not None:
            fits = self.predict(idx, profile, confidence=confidence, metric="energy_mj")[1] <= energy_budget_mj
        # A hair above the bound, so that passing it back survives the log/exp round trip of the screening.
        return float(upper[fits].min()) * (1 + 1e-9) if fits.any() else float("inf")

    def _fallback_pool(self) -> np.ndarray:
        """Designs screened exactly when proposals miss: every design (small spaces), else table designs + a sample."""
        sample = _FALLBACK_SAMPLE // 8 if self.space.costly_features else _FALLBACK_SAMPLE
        return candidate_pool(self.space, self.predictor.metrics["latency_ms"].table.indices, sample, 0)

    def _infeasible_message(self, emb: DeviceEmbedding, i: int, budget: float, e_budget: float, confidence: float,
                            candidates: np.ndarray | None) -> str:
        where = "the candidate list" if candidates is not None else "the space"
        device = emb[np.array([i])]
        extra = f" and energy budget {e_budget:g} mJ" if np.isfinite(e_budget) else ""
        head = (f"device {emb.names[i]!r}: no design of {where} has a {confidence:.0%} latency upper bound within "
                f"{budget:g} ms{extra}")
        floor = self.smallest_budget_ms(device, confidence=confidence, candidates=candidates,
                                        energy_budget_mj=e_budget if np.isfinite(e_budget) else None)
        if not np.isfinite(floor):
            pool = self._fallback_pool() if candidates is None else candidates
            e_floor = float(self.predict(pool, device, confidence=confidence, metric="energy_mj")[1].min())
            return (f"{head}; no design fits the energy budget: the smallest {confidence:.0%} energy upper bound is "
                    f"{_round_up(e_floor):g} mJ")
        return (f"{head}; the smallest budget that works at {confidence:.0%} confidence is {_round_up(floor):g} ms "
                "(or lower the confidence, or measure more architectures)")

    def _candidate_matrix(self, candidates: Iterable[ArchLike] | np.ndarray) -> np.ndarray:
        if isinstance(candidates, (str, dict)):
            raise InputError("candidates: expected a list of architectures, got a single one")
        idx = self.space.to_indices(candidates if isinstance(candidates, np.ndarray) else list(candidates))
        if idx.shape[0] == 0:
            raise InputError("candidates: the list is empty")
        return unique_rows(idx, self.space.cardinalities)[0]

    def _features(self, idx: np.ndarray) -> dict[str, Any]:
        """Predictor designs/noise and accuracy of unique architectures."""
        out: dict[str, Any] = {"acc": self.accuracy.predict_indices(idx), "kernel": self.predictor.kernel_features(idx)}
        for metric, mf in self.predictor.metrics.items():
            out[metric] = mf.features(self.space, idx)
        return out

    def _screen(self, emb: DeviceEmbedding, task: Task, idx: np.ndarray, feats: dict[str, Any],
                gather: np.ndarray | None, top_k: int) -> list[list[Design] | None]:
        """Screen candidates by upper bound and rank by objective (per-device ``gather`` of candidate rows)."""
        def per_device(values: np.ndarray) -> np.ndarray:
            return values if gather is None else values[np.maximum(gather, 0)]

        design, s2, t = feats["latency_ms"]
        if gather is None:
            mu, sigma = self.predictor.moments(emb, design, s2, t, feats=feats["kernel"])
        else:
            kernel = [feats["kernel"].take(np.maximum(g, 0)) for g in gather]
            mu, sigma = self.predictor.moments(emb, per_device(design), per_device(s2), per_device(t), feats=kernel)
        upper = mu + task.multiplier[:, None] * sigma
        feasible = upper <= np.log(task.budget_ms)[:, None]
        if gather is not None:
            feasible &= gather >= 0
        e_mu = e_upper = None
        if self.has_energy:
            e_design, e_s2, e_t = feats["energy_mj"]
            if gather is None:
                e_mu, e_sigma = self.predictor.moments(emb, e_design, e_s2, e_t, "energy_mj")
            else:
                e_mu, e_sigma = self.predictor.moments(emb, per_device(e_design), per_device(e_s2), per_device(e_t),
                                                       "energy_mj")
            e_upper = e_mu + task.energy_multiplier[:, None] * e_sigma
            feasible &= e_upper <= np.log(task.energy_budget_mj)[:, None]
        acc = feats["acc"] if gather is None else per_device(feats["acc"])
        acc = np.broadcast_to(acc, mu.shape)
        objective = acc - task.tradeoff[:, None] * mu / np.log(2.0) - 1e-9 * mu
        objective = np.where(feasible, objective, -np.inf)
        k = min(top_k, objective.shape[1])
        top = np.argpartition(-objective, k - 1, axis=1)[:, :k] if k < objective.shape[1] else \
            np.tile(np.arange(objective.shape[1]), (objective.shape[0], 1))
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(objective, top, axis=1), axis=1, kind="stable"),
                                 axis=1)
        finite = np.isfinite(np.take_along_axis(objective, top, axis=1))
        dev, slot = np.nonzero(finite)
        cols = top[dev, slot]
        rows = cols if gather is None else gather[dev, cols]
        archs = self.space.from_indices(idx[rows]) if rows.size else []
        lat, up, accs = np.exp(mu[dev, cols]), np.exp(upper[dev, cols]), acc[dev, cols]
        e_lat = None if e_mu is None else np.exp(e_mu[dev, cols])
        e_up = None if e_upper is None else np.exp(e_upper[dev, cols])
        out: list[list[Design] | None] = [None] * len(emb)
        for n, i in enumerate(dev.tolist()):
            design = Design(archs[n], float(lat[n]), float(up[n]), float(accs[n]),
                            None if e_lat is None else float(e_lat[n]), None if e_up is None else float(e_up[n]))
            if out[i] is None:
                out[i] = [design]
            else:
                out[i].append(design)
        return out

    def _screen_shared(self, emb: DeviceEmbedding, task: Task, idx: np.ndarray, top_k: int
                       ) -> list[list[Design] | None]:
        """Exact screening of one candidate list for every device (chunked over devices)."""
        feats = self._features(idx)
        chunk = max(1, int(4_000_000 // max(1, idx.shape[0])))
        out: list[list[Design] | None] = []
        for start in range(0, len(emb), chunk):
            sl = slice(start, start + chunk)
            sub_task = Task(*(a[sl] for a in (task.budget_ms, task.multiplier, task.tradeoff, task.energy_budget_mj,
                                              task.energy_multiplier)))
            out.extend(self._screen(emb[np.arange(len(emb))[sl]], sub_task, idx, feats, None, top_k))
        return out

    def _screen_proposals(self, emb: DeviceEmbedding, task: Task, proposals: np.ndarray, top_k: int
                          ) -> list[list[Design] | None]:
        """Screen each device's own proposals (``(B, P, n_decisions)``, ``-1`` rows are padding)."""
        b, p, _ = proposals.shape
        valid = proposals[:, :, 0] >= 0
        flat = proposals[valid]
        uniq, inverse = unique_rows(flat, self.space.cardinalities)
        gather = np.full((b, p), -1, dtype=np.int64)
        gather[valid] = inverse.reshape(-1)
        return self._screen(emb, task, uniq, self._features(uniq), gather, top_k)

    # ----------------------------------------------------------------- persistence
    def save(self, folder: str | os.PathLike[str]) -> None:
        """Write the model folder (``model.json`` + a tensor file), replacing an existing model in one rename."""
        arrays = {**self.predictor.to_arrays("predictor"), **self.accuracy.to_arrays("accuracy"),
                  **self.optimizer.to_arrays("optimizer")}
        meta = {**space_record(self.space), "predictor": self.predictor.to_json(), "accuracy": self.accuracy.to_json(),
                "optimizer": self.optimizer.to_json(), "info": self.info}
        save_model_folder(folder, format_name=MODEL_FORMAT, format_version=MODEL_FORMAT_VERSION, meta=meta,
                          arrays=arrays)

    @classmethod
    def load(cls, folder: str | os.PathLike[str], *, space: str | SearchSpace | None = None) -> ConditionedModel:
        """Read a model folder written by :meth:`save` (never unpickles, never imports).

        Args:
            folder: The model folder.
            space: The search space, needed for a space of your own whose features come
                from its PyTorch build (the folder records how it was named, e.g.
                ``module:attr``); checked against the saved one when given.

        Raises:
            DataNotFoundError: if the folder does not exist.
            ModelFormatError: for a folder of another format/version, tampered with or corrupt.
            InputError: for a space other than the saved one, or a user space not given.
        """
        meta, arrays = load_model_folder(folder, format_name=MODEL_FORMAT, format_version=MODEL_FORMAT_VERSION)
        space = saved_space(meta, space, str(folder))
        try:
            pred = ConditionedPredictor.from_saved(meta["predictor"], arrays, "predictor")
            acc = AccuracyPredictor.from_saved(meta["accuracy"], arrays, space, "accuracy")
            opt = LearnedOptimizer.from_saved(meta["optimizer"], arrays, space, "optimizer")
            if pred.space.name != space.name:
                raise ModelFormatError("predictor and model disagree on the space")
            if opt.net.n_in != LearnedOptimizer.features(pred, _probe_embedding(pred), _probe_task(pred)).shape[1]:
                raise ModelFormatError("optimizer network inputs do not match the predictor")
            return cls(pred, acc, opt, meta.get("info"))
        except ModelFormatError as err:
            raise ModelFormatError(f"{folder}: {err}") from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
            raise ModelFormatError(f"{folder}: malformed model ({type(err).__name__}: {err})") from None


def _probe_embedding(pred: ConditionedPredictor) -> DeviceEmbedding:
    return DeviceEmbedding(pred.prior_mean[None], pred.prior_cov[None], np.ones(1), np.ones(1, dtype=np.int64),
                           np.zeros(1, dtype=bool), ("probe",))


def _probe_task(pred: ConditionedPredictor) -> Task:
    one = np.ones(1)
    return Task(one, one, one * 0, one * np.inf, one * 0)


# ===================================================================== from the data folder
def fit_from_data(
    space: str | SearchSpace,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    exclude_devices: Iterable[str] = (),
    extra_devices: TrainingDevices | None = None,
    simulated_devices: int = 0,
    accuracy_fn: AccuracyFn | None = None,
    dataset: str | None = None,
    config: FitConfig | None = None,
    seed: int = 0,
    progress: bool = False,
) -> ConditionedModel:
    """Fit a :class:`ConditionedModel` from the benchmark tables of ``space``.

    Args:
        space: ``nb201`` or ``mnasnet`` (accuracy tables included), or ``fbnet``/``ofa``
            with ``accuracy_fn``; ``ofa_quant`` needs ``extra_devices`` for latency, and
            so does a space of your own (``extra_devices`` from
            ``TrainingDevices.from_tables(MetricTable.from_profiles(...))``, with ``accuracy_fn``).
        data_dir: Data folder (default ``EDGEOPT_DATA_DIR``).
        exclude_devices: Table devices left out of training (held-out evaluation).
        extra_devices: More training devices (your own measurements, a fleet you simulated).
        simulated_devices: Also draw this many devices from a
            :class:`~edgeopt_plugins.devices.SimulatedFleet` fitted to the (non-excluded)
            table devices; they carry simulated energy, so the model predicts energy
            and accepts energy budgets. By default they train the energy model and the
            optimizer, not the latency factors (see :class:`PredictorConfig`).
        accuracy_fn: Batched accuracy function for spaces without an accuracy table.
        dataset: Accuracy column (default ``cifar10`` for nb201, ``imagenet`` for mnasnet).
        config: What to train (default :class:`FitConfig`).
        seed: Seed.
        progress: Progress bars.
    """
    sp = get_space(space)
    seed = check_seed(seed)
    devices: TrainingDevices | None = None
    table_space = "ofa" if sp.name == "ofa_quant" else sp.name
    if sp.name != "ofa_quant" and sp.name in BUILTIN_NAMES:
        try:
            devices = TrainingDevices.from_tables(load_table(table_space, "latency_ms", data_dir=data_dir))
        except DataNotFoundError:
            if extra_devices is None:
                raise
    excluded = list(exclude_devices)
    if devices is not None and excluded:
        unknown = [d for d in excluded if d not in devices.devices]
        if unknown:
            raise InputError(f"exclude_devices: unknown device(s) {', '.join(unknown)} (known: {', '.join(devices.devices)})")
        devices = devices.drop(excluded)
    if simulated_devices:
        if devices is None:
            raise InputError(f"simulated_devices needs a latency table of {sp.name!r} to fit the fleet to")
        devices = devices.concat(_simulated(sp.name, devices, int(simulated_devices), data_dir, seed))
    if extra_devices is not None:
        if extra_devices.space.name != sp.name:
            raise InputError(f"extra_devices are for space {extra_devices.space.name!r}, not {sp.name!r}")
        devices = extra_devices if devices is None else devices.concat(extra_devices)
    if devices is None:
        raise DataNotFoundError(f"no latency data for space {sp.name!r}: give extra_devices (e.g. a simulated fleet)")
    accuracy: AccuracyPredictor | MetricTable | AccuracyFn
    if accuracy_fn is not None:
        accuracy = accuracy_fn
    elif sp.name not in BUILTIN_NAMES:
        raise InputError(f"space {sp.name!r} has no accuracy table: pass accuracy_fn (list of architecture "
                         "strings -> accuracies in percent)")
    else:
        try:
            accuracy = load_table(sp.name, "accuracy", data_dir=data_dir)
        except DataNotFoundError:
            raise InputError(f"space {sp.name!r} has no accuracy table: pass accuracy_fn (list of architecture "
                             "strings -> accuracies in percent)") from None
    model = ConditionedModel.fit(devices, accuracy=accuracy, dataset=dataset, config=config, seed=seed,
                                 progress=progress)
    model.info["excluded_devices"] = excluded
    model.info["simulated_devices"] = int(simulated_devices)
    return model


def _simulated(space: str, devices: TrainingDevices, n: int, data_dir: str | os.PathLike[str] | None,
               seed: int) -> TrainingDevices:
    """``n`` devices of a fleet fitted to the table devices in ``devices`` only (held-out devices never leak)."""
    from edgeopt_plugins.devices import SimulatedFleet

    if n < 0:
        raise InputError(f"simulated_devices must be >= 0, got {n}")
    # Latency and energy of every training architecture on every device, in float32 and float64.
    require_memory(24 * len(devices.indices) * n, f"simulated_devices={n}", "simulate fewer devices")
    table = load_table(space, "latency_ms", data_dir=data_dir)
    real = [d for d, kind in zip(devices.devices, devices.kinds) if kind == "table" and d in table.devices]
    fleet = SimulatedFleet.fit(table, devices=real, seed=seed)
    sims = fleet.sample_devices(n, seed=seed + 1)
    idx = devices.indices
    return TrainingDevices.from_arrays(space, idx, sims.latency(idx).astype(np.float64), sims.names,
                                       energy_mj=sims.energy(idx).astype(np.float64), kind="simulated")
