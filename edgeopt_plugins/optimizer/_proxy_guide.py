"""``ProxyGuide``: approach 1 (proxy devices adapted to the target) as a :class:`SearchGuide`."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy import stats

from edgeopt_plugins.data import MetricTable, load_table
from edgeopt_plugins.devices import DeviceProfile
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.optimizer._accuracy_source import AccuracySpec, accuracy_source
from edgeopt_plugins.optimizer._conditioned_guide import check_budget
from edgeopt_plugins.optimizer._guide import GuideBase, Screening, refit_points
from edgeopt_plugins.optimizer._learned import candidate_pool
from edgeopt_plugins.predictors import ProxyAdapter, ProxyPool
from edgeopt_plugins.spaces import ArchLike, SearchSpace

__all__ = ["ProxyGuide", "upper_margin"]

#: Smallest log-scale error assumed for the adapted proxies' predictions.
MIN_LOG_SD = 0.1
#: Most measurements (besides the profile) an online refit uses: the latest ones.
REFIT_MEASUREMENTS = 64
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


class ProxyGuide(GuideBase):
    """Warm start, screening and online adaptation from proxy devices adapted to the target.

    The proxies' latencies (a benchmark table) are adapted to the target's profile
    with :class:`~edgeopt_plugins.predictors.ProxyAdapter`; every measured latency
    extends the profile and refits the adaptation. When the user names an accuracy
    source, warm-start designs are the most accurate designs of the candidate pool
    whose bound fits the budget and :meth:`screen` returns that accuracy; otherwise
    accuracy is unknown (the search learns the objective from the study).

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
        accuracy: ``None`` (unknown, the default), ``"table"`` / ``"table:<metric>"`` (the space's
            benchmark accuracy table), an accuracy table, or a callable ``list[arch] -> accuracies``
            (see :func:`~edgeopt_plugins.optimizer.accuracy_source`).
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
        accuracy: AccuracySpec = None,
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
        self._accuracy = accuracy_source(accuracy, self.space, data_dir=data_dir)
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
        self._target = self._full_fit_size = len(self.profile)
        self._fit(self.profile)

    def _fit(self, profile: DeviceProfile, warm: Any = None) -> None:
        self.predictor = self.adapter.fit(profile, warm=warm)
        self._log_ratios = np.log(profile.latency_ms / self.predictor.predict(list(profile.archs)))
        self.margin = self._margin(self.confidence)
        self._pool_mean: np.ndarray | None = None
        self._forget_ranking()

    def _margin(self, confidence: float) -> float:
        # In-sample residuals of a few measurements understate the error on other designs: the
        # margin is at least that of a log-normal error of MIN_LOG_SD.
        floor = math.exp(max(0.0, float(stats.norm.ppf(confidence))) * MIN_LOG_SD)
        return max(floor, upper_margin(np.exp(self._log_ratios), np.ones_like(self._log_ratios), confidence))

    def _refit(self, measurements: dict[str, float]) -> None:
        # Refit at the points of refit_point's schedule, on the measurements in the order they came,
        # the latest REFIT_MEASUREMENTS of them (a search corrects the predictions near every measured
        # design). A refit keeps to the hyper-parameters that carried weight in the previous point's fit
        # (a few small factorisations); the whole grid is weighed again whenever the data have doubled.
        # Points that a late observe() skipped are fitted in turn from the last full fit on, so the
        # predictor depends only on what was measured (a resumed search decides the same).
        plan: list[tuple[int, bool]] = []  # (point, warm)
        full = self._full_fit_size
        for point in refit_points(self._target, len(self.profile) + len(measurements)):
            if point >= 2 * full:
                plan, full = [(point, False)], point
            else:
                plan.append((point, True))
        if not plan:
            return
        items = list(measurements.items())
        for point, warm in plan:
            take = items[: point - len(self.profile)][-REFIT_MEASUREMENTS:]
            self._fit(self.profile.extended([a for a, _ in take], [v for _, v in take]),
                      self.predictor if warm else None)
        self._target, self._full_fit_size = plan[-1][0], full

    def screen(self, archs: Sequence[str]) -> Screening:
        mean, upper = self.latency_of(self.space.to_indices(list(archs)))
        accuracy = None if self._accuracy is None else self._accuracy(list(archs))
        return Screening(mean, upper, accuracy)

    def latency_of(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            predictor, margin = self.predictor, self.margin
        mean = np.asarray(predictor.predict(indices), dtype=float)
        return mean, mean * margin

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
