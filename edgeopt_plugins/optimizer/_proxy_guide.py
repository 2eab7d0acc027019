"""``ProxyGuide``: approach 1 (proxy devices adapted to the target) as a :class:`SearchGuide`."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from edgeopt_plugins.data import MetricTable, load_table
from edgeopt_plugins.devices import DeviceProfile
from edgeopt_plugins.exceptions import DataNotFoundError, InputError
from edgeopt_plugins.optimizer._conditioned_guide import check_budget
from edgeopt_plugins.optimizer._guide import GuideBase, Screening
from edgeopt_plugins.optimizer._learned import candidate_pool
from edgeopt_plugins.predictors import ProxyAdapter, ProxyPool
from edgeopt_plugins.spaces import ArchLike, SearchSpace

__all__ = ["ProxyGuide", "upper_margin"]

AccuracySource = MetricTable | Callable[[list[str]], Any] | None
#: Designs the warm start chooses from in a space too large to enumerate, with an accuracy function.
_WARM_POOL = 20_000


def upper_margin(measured_ms: np.ndarray, predicted_ms: np.ndarray, confidence: float) -> float:
    """Multiplicative margin so that ``prediction * margin`` bounds the measured latencies.

    The split-conformal quantile of the log-ratios ``log(measured / predicted)`` on the
    device's own measurements (the largest one when there are too few). These are
    in-sample residuals: a heuristic, not a guarantee (approach 2 is calibrated on unseen
    devices).
    """
    ratios = np.sort(np.log(np.asarray(measured_ms, float) / np.asarray(predicted_ms, float)))
    k = ratios.size
    if k == 0:
        return 1.0
    rank = min(k, math.ceil((k + 1) * confidence)) - 1
    return float(math.exp(max(0.0, ratios[rank])))


def _accuracy_lookup(accuracy: AccuracySource, space: SearchSpace, data_dir: Any) -> Callable[[list[str]], np.ndarray] | None:
    if callable(accuracy):
        return lambda archs: np.asarray(accuracy(list(archs)), dtype=float).reshape(-1)
    table = accuracy
    if table is None:
        try:
            table = load_table(space.name, "accuracy", data_dir=data_dir)
        except DataNotFoundError:
            return None
    if not isinstance(table, MetricTable) or table.metric != "accuracy":
        raise InputError("accuracy must be an accuracy MetricTable, a callable list[arch] -> accuracies, or None")
    values = dict(zip(table.archs, table.values[:, 0].tolist()))
    return lambda archs: np.array([values.get(a, np.nan) for a in archs], dtype=float)


class ProxyGuide(GuideBase):
    """Warm start, screening and online adaptation from proxy devices adapted to the target.

    The proxies' latencies (a benchmark table) are adapted to the target's profile
    with :class:`~edgeopt_plugins.predictors.ProxyAdapter`; every measured latency
    extends the profile and refits the adaptation. Warm-start designs are the most
    accurate designs of the candidate pool whose bound fits the budget (this needs
    an accuracy source: the space's accuracy table by default).

    Args:
        profile: The target's profile (a :class:`DeviceProfile`, a CSV path, or
            ``{arch: latency_ms}`` with ``space``).
        latency_budget_ms: The budget checked against the upper bound.
        proxies: A latency table (or :class:`ProxyPool`) of proxy devices; default: the
            space's benchmark table from ``data_dir``.
        space: The search space (needed for a dict profile).
        data_dir: Benchmark data folder.
        exclude_devices: Table devices not to use as proxies (e.g. the target itself).
        method: Adaptation method (``"hierarchical"``, ``"published"``, ``"proxy"``).
        proxy: Force one proxy (or a set of proxies).
        accuracy: Accuracy table, callable ``list[arch] -> accuracies``, or ``None`` (the
            space's accuracy table when present).
        confidence: Confidence of the (heuristic) upper bound, see :func:`upper_margin`.
        candidates: Designs to warm-start from (default: the whole space when small,
            else the table's designs, topped up with random designs to 20,000 when
            ``accuracy`` is a function that can score them).
        seed: Seed of the adaptation.
    """

    def __init__(
        self,
        profile: Any,
        latency_budget_ms: float,
        *,
        proxies: MetricTable | ProxyPool | None = None,
        space: str | SearchSpace | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        exclude_devices: Iterable[str] = (),
        method: str = "hierarchical",
        proxy: str | Sequence[str] | None = None,
        accuracy: AccuracySource = None,
        confidence: float = 0.95,
        candidates: Iterable[ArchLike] | None = None,
        seed: int = 0,
    ) -> None:
        self.profile = DeviceProfile.coerce(profile, space)
        super().__init__(self.profile.space, check_budget(latency_budget_ms))
        if not 0.0 < float(confidence) < 1.0:
            raise InputError(f"confidence must be between 0 and 1, got {confidence!r}")
        self.confidence = float(confidence)
        table = proxies if proxies is not None else load_table(self.space.name, "latency_ms", data_dir=data_dir)
        excluded = set(exclude_devices)
        if excluded and isinstance(table, MetricTable):
            table = table.select(devices=[d for d in table.devices if d not in excluded])
        self.adapter = ProxyAdapter(table, method=method, proxy=proxy, seed=seed)
        self._accuracy = _accuracy_lookup(accuracy, self.space, data_dir)
        if candidates is not None:
            self.pool = [self.space.format(a) for a in candidates]
            self._pool_idx = self.space.to_indices(self.pool)
        else:
            indices = table.indices if isinstance(table, MetricTable) else self.adapter.pool.reference_indices
            # A proxy table of a few hundred profiled designs leaves the warm start little to choose
            # from in a large space: an accuracy function scores any design, so add random ones.
            extra = max(0, _WARM_POOL - len(indices)) if callable(accuracy) else 0
            self._pool_idx = candidate_pool(self.space, indices, extra, seed)
            self.pool = self.space.from_indices(self._pool_idx)
        self._pool_accuracy = None if self._accuracy is None else self._accuracy(self.pool)
        self._full_fit_size = len(self.profile)
        self._fit(self.profile)

    def _fit(self, profile: DeviceProfile, warm: Any = None) -> None:
        self.predictor = self.adapter.fit(profile, warm=warm)
        self._fitted = profile
        self._log_ratios = np.log(profile.latency_ms / self.predictor.predict(list(profile.archs)))
        self.margin = self._margin(self.confidence)
        self._pool_mean: np.ndarray | None = None
        self._forget_ranking()

    def _margin(self, confidence: float) -> float:
        return upper_margin(np.exp(self._log_ratios), np.ones_like(self._log_ratios), confidence)

    def _refit(self, measurements: dict[str, float]) -> None:
        # Refit when the data reached the next point of a fixed schedule (each a fifth larger),
        # on the first measurements in the order they came: the fit depends only on what was
        # measured, not on when observe() was called (an exactly resumable search), and the
        # per-trial cost stays low.
        size = len(self.profile) + len(measurements)
        target = len(self.profile)
        while (step := max(target + 1, target * 6 // 5)) <= size:
            target = step
        if target == len(self._fitted):
            return
        take = list(measurements.items())[: target - len(self.profile)]
        # A refit keeps to the hyper-parameters that carried weight before (a few small
        # factorisations); the whole grid is weighed again whenever the data have doubled.
        warm = self.predictor if target < 2 * self._full_fit_size else None
        self._fit(self.profile.extended([a for a, _ in take], [v for _, v in take]), warm)
        if warm is None:
            self._full_fit_size = target

    def screen(self, archs: Sequence[str]) -> Screening:
        with self._lock:
            predictor, margin = self.predictor, self.margin
        mean = np.asarray(predictor.predict(list(archs)), dtype=float)
        accuracy = None if self._accuracy is None else self._accuracy(list(archs))
        return Screening(mean, mean * margin, accuracy)

    def _ranked(self, n: int, confidence: float) -> tuple[list[str], bool]:
        if self._accuracy is None:
            return [], True
        if self._pool_mean is None:
            self._pool_mean = np.asarray(self.predictor.predict(self._pool_idx), dtype=float)
        mean, acc = self._pool_mean, self._pool_accuracy
        ok = np.flatnonzero((mean * self._margin(confidence) <= self.latency_budget_ms) & np.isfinite(acc))
        order = ok[np.lexsort((mean[ok], -acc[ok]))]
        keep = max(n, 32)
        return [self.pool[i] for i in order[:keep]], len(order) <= keep
