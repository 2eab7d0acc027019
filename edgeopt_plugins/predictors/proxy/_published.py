"""The published proxy adaptation (Lu et al., "One Proxy Device Is Enough for Hardware-Aware
NAS", SIGMETRICS 2022), reproduced as a baseline.

The proxy's latency predictor is additive: ``proxy(x) = onehot(x) @ w``. The target is
modelled as the proxy's per-operation costs rescaled by one common factor ``a`` plus a
per-operation correction ``b``, and an offset ``c``::

    target(x) = onehot(x) @ (w * (a + b)) + c  =  a * proxy(x) + (onehot(x) * w) @ b + c

fitted by least squares on the ``k`` target samples with a penalty ``lambda * ||b||^2``
(the paper's code also offers L1/L-inf; its default is the 2-norm, whose path we follow
with the squared penalty), ``lambda`` chosen by the rank correlation on held-out samples.
We replace the paper's single train/validation split (10 of 70 samples) by exact
leave-one-out, which is defined for any ``k`` >= 3, and refit on all ``k`` points.
The estimated rank correlation is that leave-one-out Spearman, as the paper's decision
loop uses the validation SRCC.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeopt_plugins.predictors.proxy._adapted import (
    AdaptedPredictor,
    farthest_point_selection,
)
from edgeopt_plugins.predictors.proxy._linear import ridge_path, select_alpha
from edgeopt_plugins.predictors._measurements import Measurements
from edgeopt_plugins.predictors._monotonicity import spearman
from edgeopt_plugins.predictors.proxy._pool import ProxyPool
from edgeopt_plugins.predictors.proxy._proxy import ProxyPredictor

__all__ = ["PublishedPredictor"]


class PublishedPredictor(AdaptedPredictor):
    """Lu et al.'s scale + per-operation correction of one proxy's additive predictor."""

    method = "published"

    def __init__(self, pool: ProxyPool, proxy: str, measurements: Measurements | None, *, n_boot: int = 200, seed: int = 0) -> None:
        self.pool = pool
        self.space = pool.space
        self.proxy = proxy
        self.seed = seed
        self.base = _additive_proxy(pool, proxy, seed=seed)
        w, w0 = self.base.additive_weights  # type: ignore[misc]
        self._w, self._w0 = w, w0
        self.proxy_weights = {proxy: 1.0}
        if measurements is None or len(measurements) < 3:
            # Too few points to validate a penalty: the proxy's ranking, scaled to the points if any.
            self.measured = () if measurements is None else measurements.archs
            self.k = len(self.measured)
            self.a, self.c, self.b = 1.0, 0.0, np.zeros_like(w)
            if measurements is not None:
                pp = self._proxy_ms(measurements.indices)
                A = np.column_stack([np.ones(self.k), pp])
                self.c, self.a = (float(v) for v in np.linalg.lstsq(A, measurements.latency_ms, rcond=None)[0])
            self.estimated_spearman, self.spearman_std, self.alpha = float("nan"), float("nan"), float("nan")
            return
        self.measured = measurements.archs
        self.k = len(measurements)
        idx = measurements.indices
        y = measurements.latency_ms
        pp = self._proxy_ms(idx)
        Z = self.space.one_hot(idx).astype(np.float64) * w[None, :]
        path = ridge_path(Z, y, Q=np.column_stack([np.ones(self.k), pp]))
        best = select_alpha(path, y, criterion="spearman")
        self.alpha = float(path.alphas[best])
        self.b = path.b[best]
        self.c, self.a = float(path.beta[best, 0]), float(path.beta[best, 1])
        loo = path.loo[best]
        rho = spearman(loo, y)
        self.estimated_spearman = float(rho) if np.isfinite(rho) else 0.0
        rng = np.random.default_rng(seed)
        boots = []
        for _ in range(n_boot):
            pick = rng.integers(0, self.k, self.k)
            r = spearman(loo[pick], y[pick])
            if np.isfinite(r):
                boots.append(r)
        self.spearman_std = float(np.std(boots)) if boots else float("nan")

    def _proxy_ms(self, idx: np.ndarray) -> np.ndarray:
        return self.space.one_hot(idx).astype(np.float64) @ self._w + self._w0

    def predict(self, archs: Any) -> np.ndarray:
        idx = self.space.to_indices(archs)
        x = self.space.one_hot(idx).astype(np.float64)
        out = self.a * (x @ self._w + self._w0) + (x * self._w[None, :]) @ self.b + self.c
        return np.maximum(out, 1e-6)

    def _default_candidates(self) -> np.ndarray:
        return self.pool.reference_indices

    def _select(self, n: int, candidates: np.ndarray, *, seed: int) -> np.ndarray:
        measured = self.space.to_indices(list(self.measured))
        return farthest_point_selection(self.space, candidates, measured, n, seed=seed)


def _additive_proxy(pool: ProxyPool, proxy: str, *, seed: int) -> ProxyPredictor:
    """The proxy's additive latency predictor (in ms), fitted on the proxy's table column."""
    if proxy not in pool.devices:
        from edgeopt_plugins.exceptions import InputError

        raise InputError(f"unknown proxy {proxy!r} (known: {', '.join(pool.devices)})")
    cache = pool._shared.setdefault("additive_proxies", {})  # shared with the pool's subsets
    if proxy not in cache:
        if pool.table is not None:
            source: Any = pool.table
            cache[proxy] = ProxyPredictor(model="additive", log_space=False, alpha=1e-6, seed=seed).fit(source, device=proxy)
        else:
            j = pool.devices.index(proxy)
            archs = pool.space.from_indices(pool.reference_indices)
            data = Measurements(pool.space, tuple(archs), pool.reference_latency[:, j], proxy)
            cache[proxy] = ProxyPredictor(model="additive", log_space=False, alpha=1e-6, seed=seed).fit(data)
    return cache[proxy]
