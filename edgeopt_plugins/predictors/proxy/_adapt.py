"""``ProxyAdapter`` / ``adapt``: from proxies and a few target measurements to a target predictor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgeopt_plugins._threads import blas_threads
from edgeopt_plugins.data import MetricTable
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.predictors.proxy._adapted import (
    AdaptedPredictor,
    farthest_point_selection,
)
from edgeopt_plugins.predictors.proxy._hierarchical import HierarchicalConfig, HierarchicalPredictor
from edgeopt_plugins.predictors._measurements import Measurements, as_measurements
from edgeopt_plugins.predictors._monotonicity import spearman
from edgeopt_plugins.predictors.proxy._pool import ProxyPool
from edgeopt_plugins.predictors.proxy._published import PublishedPredictor
from edgeopt_plugins.spaces import SearchSpace

__all__ = ["ADAPT_METHODS", "ProxyAdapter", "SingleProxyPredictor", "adapt"]

#: ``hierarchical``: ours; ``published``: Lu et al. 2021; ``proxy``: one proxy, no adaptation.
ADAPT_METHODS = ("hierarchical", "published", "proxy")
class ProxyAdapter:
    """Adapts proxy devices to a target device from a few of its measurements.

    Args:
        proxies: A :class:`ProxyPool`, or a latency table (all its columns become proxies).
        method: ``"hierarchical"`` (default: the proxies' prior, corrected by the target's own
            measurements through architecture kernels; see ``_hierarchical``),
            ``"published"`` (Lu et al. 2021: one proxy's additive predictor, rescaled, plus a
            per-operation correction with a validated penalty) or ``"proxy"`` (one proxy,
            no correction).
        proxy: Force the proxy (one name) or the proxy set (several names). Default:
            all proxies for ``"hierarchical"``; the most central proxy for ``"published"``;
            for ``"proxy"`` the one that ranks the target's measurements best.
        config: Hyper-priors of ``"hierarchical"`` (default :class:`HierarchicalConfig`; every
            hyper-parameter is then weighed by the target's own evidence).
        seed: Seed of every random choice (posterior samples, picks).

    Example:
        >>> from edgeopt_plugins.data import load_table
        >>> from edgeopt_plugins.devices import DeviceProfile
        >>> from edgeopt_plugins.predictors import ProxyAdapter
        >>> table = load_table("nb201")  # doctest: +SKIP
        >>> proxies = table.select(devices=[d for d in table.devices if d != "pixel3"])  # doctest: +SKIP
        >>> target = DeviceProfile.from_table(table, "pixel3", k=10, seed=0)  # doctest: +SKIP
        >>> predictor = ProxyAdapter(proxies).fit(target)  # doctest: +SKIP
        >>> predictor.predict(table.archs[:3]), predictor.estimated_spearman  # doctest: +SKIP
    """

    def __init__(
        self,
        proxies: ProxyPool | MetricTable,
        *,
        method: str = "hierarchical",
        proxy: str | Sequence[str] | None = None,
        config: HierarchicalConfig | None = None,
        seed: int = 0,
    ) -> None:
        if method not in ADAPT_METHODS:
            raise InputError(f"ProxyAdapter: method must be one of {', '.join(ADAPT_METHODS)}, got {method!r}")
        if isinstance(proxies, MetricTable):
            proxies = ProxyPool(proxies, seed=seed)
        if not isinstance(proxies, ProxyPool):
            raise InputError(f"ProxyAdapter: expected a ProxyPool or a MetricTable, got {type(proxies).__name__}")
        if config is not None and not isinstance(config, HierarchicalConfig):
            raise InputError(f"ProxyAdapter: config must be a HierarchicalConfig, got {type(config).__name__}")
        self.pool = proxies
        self.method = method
        self.config = config or HierarchicalConfig()
        self.seed = seed
        if proxy is None:
            self.proxies: tuple[str, ...] | None = None
        else:
            names = (proxy,) if isinstance(proxy, str) else tuple(proxy)
            if not names:
                raise InputError("ProxyAdapter: proxy must name at least one device")
            for name in names:
                if name not in proxies.devices:
                    raise InputError(f"ProxyAdapter: unknown proxy {name!r} (known: {', '.join(proxies.devices)})")
            if method != "hierarchical" and len(names) > 1:
                raise InputError(f"ProxyAdapter: method {method!r} uses one proxy, got {len(names)}")
            self.proxies = names

    @property
    def space(self) -> SearchSpace:
        return self.pool.space

    def fit(self, measurements: Any = None, *, space: str | SearchSpace | None = None,
            warm: AdaptedPredictor | None = None) -> AdaptedPredictor:
        """Adapt to the target's measurements (``None``: the proxies alone, ``k = 0``).

        Args:
            measurements: A ``DeviceProfile``, a ``{arch: latency_ms}`` dict (with ``space``),
                :class:`Measurements`, or anything :func:`as_measurements` takes.
            space: Search space of a dict of measurements (checked for the others).
            warm: A predictor this adapter fitted earlier for the same target on fewer
                measurements: the refit keeps to its hyper-parameters that still carry weight
                (a search refitting after every few trials stays cheap).
        """
        with blas_threads(1):
            return self._fit(measurements, space, warm)

    def _fit(self, measurements: Any, space: str | SearchSpace | None, warm: AdaptedPredictor | None
             ) -> AdaptedPredictor:
        data = None if measurements is None else as_measurements(measurements, space=space or self.space)
        if data is not None and data.space.name != self.space.name:
            raise InputError(f"ProxyAdapter: measurements are in {data.space.name!r}, proxies in {self.space.name!r}")
        if self.method == "published":
            proxy = self.proxies[0] if self.proxies else self.pool.central_device()
            return PublishedPredictor(self.pool, proxy, data, seed=self.seed)
        if self.method == "proxy":
            if self.proxies:
                proxy = self.proxies[0]
            elif data is not None:
                from edgeopt_plugins.predictors.proxy._choice import choose_proxy

                proxy = choose_proxy(self.pool, data, seed=self.seed).device
            else:
                proxy = self.pool.central_device()
            return SingleProxyPredictor(self.pool, proxy, data, seed=self.seed)
        pool = self.pool.subset(self.proxies) if self.proxies else self.pool
        if not isinstance(warm, HierarchicalPredictor) or warm.pool.devices != pool.devices:
            warm = None
        return HierarchicalPredictor(pool, self.config, data, warm=warm, seed=self.seed)


def adapt(
    proxies: ProxyPool | MetricTable,
    measurements: Any,
    *,
    method: str = "hierarchical",
    proxy: str | Sequence[str] | None = None,
    space: str | SearchSpace | None = None,
    seed: int = 0,
) -> AdaptedPredictor:
    """One-call form of ``ProxyAdapter(proxies, method=..., proxy=..., seed=...).fit(measurements)``.

    Example:
        >>> from edgeopt_plugins.predictors import adapt
        >>> predictor = adapt(table_without_target, profile_of_target)  # doctest: +SKIP
        >>> predictor.predict(archs), predictor.estimated_spearman  # doctest: +SKIP
    """
    return ProxyAdapter(proxies, method=method, proxy=proxy, seed=seed).fit(measurements, space=space)


class SingleProxyPredictor(AdaptedPredictor):
    """One proxy's latencies, linearly rescaled to the target's measurements (no correction)."""

    method = "proxy"

    def __init__(self, pool: ProxyPool, proxy: str, measurements: Measurements | None, *, n_boot: int = 200, seed: int = 0) -> None:
        self.pool, self.space, self.proxy, self.seed = pool, pool.space, proxy, seed
        self._col = pool.devices.index(proxy)
        self.proxy_weights = {proxy: 1.0}
        self.a, self.c = 1.0, 0.0
        self.measured = () if measurements is None else measurements.archs
        self.k = len(self.measured)
        self.estimated_spearman, self.spearman_std = float("nan"), float("nan")
        if measurements is not None:
            x = pool.latencies(measurements.indices)[:, self._col]
            y = measurements.latency_ms
            A = np.column_stack([np.ones(self.k), x])
            self.c, self.a = (float(v) for v in np.linalg.lstsq(A, y, rcond=None)[0])
            if not self.a > 0:
                self.a, self.c = float(np.mean(y) / np.mean(x)), 0.0
            rho = spearman(x, y)
            self.estimated_spearman = float(rho) if np.isfinite(rho) else 0.0
            rng = np.random.default_rng(seed)
            boots = [spearman(x[p], y[p]) for p in (rng.integers(0, self.k, self.k) for _ in range(n_boot))]
            boots = [b for b in boots if np.isfinite(b)]
            self.spearman_std = float(np.std(boots)) if boots else float("nan")

    def predict(self, archs: Any) -> np.ndarray:
        lat = self.pool.latencies(self.space.to_indices(archs))[:, self._col]
        return np.maximum(self.a * lat + self.c, 1e-6)

    def _default_candidates(self) -> np.ndarray:
        return self.pool.reference_indices

    def _select(self, n: int, candidates: np.ndarray, *, seed: int) -> np.ndarray:
        return farthest_point_selection(self.space, candidates, self.space.to_indices(list(self.measured)), n, seed=seed)
