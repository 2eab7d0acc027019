"""One fleet problem: a model, the target devices, budgets and the truth to score against.

:meth:`FleetProblem.one_shot` recommends designs for a batch of devices with the
learned optimizer (no per-device search) and scores them where the truth is
known: the design's real latency on the device, budget violations, and the
accuracy regret against the true optimum under the budget.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeopt_plugins.data import MetricTable, load_table
from edgeopt_plugins.exceptions import DataNotFoundError, InputError
from edgeopt_plugins.fleet._targets import Targets
from edgeopt_plugins.optimizer import ConditionedModel

__all__ = ["FleetProblem", "ROW_FIELDS"]

#: Columns of designs.csv, in order.
ROW_FIELDS = (
    "device", "kind", "budget_ms", "arch", "predicted_latency_ms", "latency_upper_ms", "predicted_accuracy",
    "measured_latency_ms", "accuracy", "optimum_accuracy", "regret", "violated", "seconds",
)


def _accuracy_table(model: ConditionedModel, data_dir: str | None) -> MetricTable | None:
    try:
        return load_table(model.space.name, "accuracy", data_dir=data_dir)
    except DataNotFoundError:
        return None


@dataclass
class FleetProblem:
    """Everything needed to decide and score designs for the fleet's devices.

    Args:
        model: The fitted approach-2 model.
        targets: The devices.
        latency_budget_ms: One budget for every device, or
        budget_percentile: a per-device budget: this percentile of the device's
            latency over the candidate pool (true latency where known, else the
            model's prediction from the profile).
        confidence: Confidence of the latency upper bounds.
        top_k: Designs recommended per device.
    """

    model: ConditionedModel
    targets: Targets
    latency_budget_ms: float | None = None
    budget_percentile: float | None = None
    confidence: float = 0.95
    top_k: int = 1

    def __post_init__(self) -> None:
        if (self.latency_budget_ms is None) == (self.budget_percentile is None):
            raise InputError("give exactly one of --latency-budget-ms and --budget-percentile")
        if self.budget_percentile is not None and not 0 < self.budget_percentile <= 100:
            raise InputError(f"--budget-percentile must be in (0, 100], got {self.budget_percentile}")
        if self.latency_budget_ms is not None and not self.latency_budget_ms > 0:
            raise InputError(f"--latency-budget-ms must be positive, got {self.latency_budget_ms}")
        if self.model.space.name != self.targets.space.name:
            raise InputError(f"the model is for space {self.model.space.name!r}, the devices for {self.targets.space.name!r}")
        table = _accuracy_table(self.model, self.targets.spec.data_dir)
        self._accuracy = {} if table is None else dict(zip(table.archs, table.values[:, table.device_index(
            self.model.accuracy.dataset if self.model.accuracy.dataset in table.devices else table.devices[0])]))
        self.pool_accuracy = np.array([self._accuracy.get(a, np.nan) for a in self.targets.pool])
        self._order = np.argsort(-np.nan_to_num(self.pool_accuracy, nan=-np.inf), kind="stable")

    # ----------------------------------------------------------------- accuracy and budgets
    def accuracy_of(self, archs: Sequence[str]) -> np.ndarray:
        """Benchmark accuracy where the table has the design, else the model's prediction."""
        known = np.array([self._accuracy.get(a, np.nan) for a in archs])
        missing = np.isnan(known)
        if missing.any():
            known[missing] = self.model.predict_accuracy([a for a, m in zip(archs, missing) if m])
        return known

    def true_accuracy(self, arch: str) -> float:
        return float(self._accuracy.get(arch, np.nan))

    def budgets(self, ids: Sequence[int], pool_latency: np.ndarray, embedding: Any) -> np.ndarray:
        """Per-device budgets (see the class docstring)."""
        if self.latency_budget_ms is not None:
            return np.full(len(ids), float(self.latency_budget_ms))
        out = np.empty(len(ids))
        unknown = [k for k in range(len(ids)) if np.isnan(pool_latency[:, k]).all()]
        known = [k for k in range(len(ids)) if k not in set(unknown)]
        if known:
            out[known] = np.nanpercentile(pool_latency[:, known], self.budget_percentile, axis=0)
        if unknown:
            mean, _ = self.model.predict(self.targets.pool_indices, embedding[unknown], confidence=self.confidence)
            out[unknown] = np.percentile(np.asarray(mean).reshape(len(unknown), -1), self.budget_percentile, axis=1)
        return out

    def optimum(self, pool_latency: np.ndarray, budgets: np.ndarray) -> np.ndarray:
        """True best accuracy under each device's budget (NaN where the truth is unknown)."""
        lat = pool_latency[self._order]
        acc = self.pool_accuracy[self._order]
        fits = (lat <= budgets[None, :]) & ~np.isnan(acc)[:, None]
        first = fits.argmax(axis=0)
        out = acc[first]
        out[~fits.any(axis=0)] = np.nan
        return out

    # ----------------------------------------------------------------- one shot
    def one_shot_all(self, chunk_size: int = 1000) -> list[dict[str, Any]]:
        """:meth:`one_shot` for every device, ``chunk_size`` devices per batched call (bounded memory)."""
        n = len(self.targets)
        return [row for start in range(0, n, chunk_size)
                for row in self.one_shot(range(start, min(n, start + chunk_size)))]

    def one_shot(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        """Recommend and score designs for the devices ``ids`` (one batched call)."""
        start = time.perf_counter()
        ids = list(ids)
        profiles = self.targets.profiles(ids)
        embedding = self.model.embed(profiles)
        pool_latency = self.targets.pool_latency(ids)
        budgets = self.budgets(ids, pool_latency, embedding)
        designs = self.model.recommend_many(embedding, budgets, confidence=self.confidence, top_k=self.top_k,
                                            on_infeasible="empty")
        optimum = self.optimum(pool_latency, budgets)
        seconds = (time.perf_counter() - start) / max(1, len(ids))
        rows = []
        for k, i in enumerate(ids):
            row: dict[str, Any] = {"device": self.targets.names[i], "kind": self.targets.kinds[i],
                                   "budget_ms": float(budgets[k]), "seconds": seconds}
            if designs[k]:
                best = designs[k][0]
                row.update(best.to_dict())
                row["alternatives"] = [d.arch for d in designs[k][1:]]
                truth = self.targets.true_latency(i, [best.arch])
                if truth is not None and np.isfinite(truth[0]):
                    row["measured_latency_ms"] = float(truth[0])
                    row["violated"] = bool(truth[0] > budgets[k])
                row["accuracy"] = self.true_accuracy(best.arch)
                row["optimum_accuracy"] = float(optimum[k])
                if np.isfinite(row["accuracy"]) and np.isfinite(optimum[k]) and not row.get("violated", False):
                    row["regret"] = float(optimum[k] - row["accuracy"])
            else:
                row["infeasible"] = True
            rows.append({k2: (None if isinstance(v, float) and not np.isfinite(v) else v) for k2, v in row.items()})
        return rows
