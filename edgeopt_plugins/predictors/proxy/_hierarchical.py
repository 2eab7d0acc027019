"""Hierarchical proxy model: the proxies' prior, corrected by the target's own measurements.

The target's latency, in the units of a transform ``T`` (milliseconds over each proxy's mean,
or centred log-milliseconds), is a transfer Gaussian process (``predictors._transfer``)::

    T(latency_target(x)) = c + s0 * ( a * m(x) + C(x) @ u + f(x) + noise )
    m(x) = mean over proxies of P_d(x)          (the "average device")
    C(x) = (P_d(x) - m(x)) / sqrt(D)            (how devices differ from it)
    a ~ N(1, kappa^2), u ~ N(0, I_D)            ("a mix of the proxies")
    f ~ GP(0, summary + additive + pairwise kernels)   (what no mix of proxies explains)

``u`` says which mix of proxies the target resembles; its prior is the empirical spread of
the proxies themselves, so the target is a priori "one more device like these". With
probability ``copy_prob`` the target is instead "a near copy of proxy d" (prior mean
``P_d``, tighter ``u``): devices of one chip family are near copies, and a handful of points
identify the right one. ``f`` is what no mix explains: a linear model of the architecture's
summary features (FLOPs, parameters, operation counts), a per-decision cost and every
interaction of two decisions, with scales chosen by the target's own evidence. With a few
points the posterior is the proxies' ranking; as points accumulate the kernels take over
wherever the proxies are wrong, so the predictor converges to what the device alone supports.

Nothing is tuned on the proxies: every hyper-parameter (transform, noise level, kernel scales,
anchor) is averaged over by its marginal likelihood on the target's ``k`` points (the log
transform's evidence includes its Jacobian), so a device unlike every proxy is judged by its
own data.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.predictors._kernels import KERNEL_BLOCKS, ArchKernels, KernelFeatures
from edgeopt_plugins.predictors._measurements import Measurements
from edgeopt_plugins.predictors._transfer import AnchorSet, Points, TransferGrid, TransferPosterior, fit_transfer
from edgeopt_plugins.predictors.proxy._adapted import AdaptedPredictor
from edgeopt_plugins.predictors._design import greedy_design
from edgeopt_plugins.predictors.proxy._pool import ProxyPool
from edgeopt_plugins.spaces import SearchSpace

__all__ = ["HierarchicalConfig", "HierarchicalPredictor"]

TRANSFORMS = ("linear", "log")
#: Reference architectures used for posterior draws (the rank-correlation estimate).
_DRAW_REF = 500
#: Least variance unit, relative to the average device's variance across architectures (binds
#: for one proxy or near copies; a pool of distinct devices spreads 0.3-1.2 of it on the tables).
_UNIT_FLOOR = 0.1


@dataclass(frozen=True)
class HierarchicalConfig:
    """Hyper-priors of the hierarchical model (all relative, so they hold for any space).

    Attributes:
        transforms: Candidate transforms of the latency, weighed by evidence (``"linear"``:
            ms over each proxy's mean; ``"log"``: centred log-ms).
        noise: Target noise variance relative to the spread between devices.
        noise_levels: Multiples of ``noise`` averaged over.
        summary_scales: Prior variances of the summary-feature correction.
        additive_scales: Prior variances of the per-decision correction.
        pairwise_scales: Prior variances of the pairwise-interaction correction.
        kappa: Prior standard deviation of the average device's weight ``a`` (mean 1).
        copy_prob: Prior probability that the target is a near copy of one proxy.
        copy_scale: How far a near copy may stray, relative to the device spread.
        robust: Down-weight outlying measurements (a phone's slow run).
    """

    transforms: tuple[str, ...] = TRANSFORMS
    noise: float = 0.1
    noise_levels: tuple[float, ...] = (0.1, 1.0, 10.0)
    summary_scales: tuple[float, ...] = (0.0, 1.0, 10.0)
    additive_scales: tuple[float, ...] = (0.0, 0.1, 1.0, 10.0)
    pairwise_scales: tuple[float, ...] = (0.0, 0.1, 1.0, 10.0)
    kappa: float = 1.0
    copy_prob: float = 0.5
    copy_scale: float = 0.5
    robust: bool = True

    def __post_init__(self) -> None:
        if not self.transforms or any(t not in TRANSFORMS for t in self.transforms):
            raise InputError(f"HierarchicalConfig: transforms must be among {TRANSFORMS}, got {self.transforms!r}")
        scales = (self.noise_levels, self.summary_scales, self.additive_scales, self.pairwise_scales)
        if not all(s and all(np.isfinite(v) and v >= 0 for v in s) for s in scales) or min(self.noise_levels) <= 0:
            raise InputError("HierarchicalConfig: scales must be non-empty lists of finite non-negative numbers "
                             "(noise levels positive)")
        if not (self.noise > 0 and self.kappa >= 0 and 0 <= self.copy_prob < 1 and self.copy_scale > 0):
            raise InputError("HierarchicalConfig: need noise > 0, kappa >= 0, 0 <= copy_prob < 1, copy_scale > 0")

    @property
    def grid(self) -> TransferGrid:
        return TransferGrid(self.noise, self.noise_levels, (
            ("summary", self.summary_scales), ("additive", self.additive_scales), ("pairwise", self.pairwise_scales)))


# --------------------------------------------------------------------------- units and basis
@dataclass(frozen=True)
class _Units:
    """One transform's normalisation: constants from the proxies' reference latencies."""

    transform: str
    centre: np.ndarray  # per proxy: mean latency (linear) or mean log-latency (log)
    unit: float  # spread between devices per architecture (variance)

    @classmethod
    def of(cls, transform: str, ref_latency: np.ndarray) -> _Units:
        centre = ref_latency.mean(axis=0) if transform == "linear" else np.log(ref_latency).mean(axis=0)
        basis = cls(transform, centre, 1.0).basis(ref_latency)
        spread = float(np.mean((basis[:, 1:] ** 2).sum(axis=1)))
        # One proxy (or only near copies) has no spread between devices: corrections in those
        # units could never move the proxy's ranking. A floor of a fraction of the average
        # device's spread across architectures keeps them meaningful (each scale, zero
        # included, is still weighed by the target's evidence).
        floor = _UNIT_FLOOR * float(basis[:, 0].var())
        return cls(transform, centre, max(spread, floor, 1e-12))

    def basis(self, latency: np.ndarray) -> np.ndarray:
        """``[m, C]`` (see the module doc) of proxy latencies ``(n, D)``."""
        pn = latency / self.centre if self.transform == "linear" else np.log(latency) - self.centre
        m = pn.mean(axis=1)
        return np.column_stack([m, (pn - m[:, None]) / np.sqrt(pn.shape[1])])

    def forward(self, latency_ms: np.ndarray) -> np.ndarray:
        return latency_ms if self.transform == "linear" else np.log(latency_ms)

    def backward(self, z: np.ndarray) -> np.ndarray:
        return np.maximum(z, 1e-6) if self.transform == "linear" else np.exp(z)

    def log_jacobian(self, latency_ms: np.ndarray) -> float:
        return 0.0 if self.transform == "linear" else -float(np.log(latency_ms).sum())


def _anchors(n_proxies: int, config: HierarchicalConfig) -> list[AnchorSet]:
    """"A new mix of the proxies" and, with ``copy_prob``, "a near copy of proxy d" for each d."""
    P = 1 + n_proxies
    var = np.ones(P)
    var[0] = config.kappa**2
    base_mean = np.zeros((1, P))
    base_mean[0, 0] = 1.0
    use_copies = config.copy_prob > 0 and n_proxies > 1
    out = [AnchorSet(base_mean, var, np.log([1.0 - config.copy_prob if use_copies else 1.0]))]
    if use_copies:
        means = np.zeros((n_proxies, P))
        means[:, 0] = 1.0
        means[np.arange(n_proxies), 1 + np.arange(n_proxies)] = np.sqrt(n_proxies)
        copy_var = var.copy()
        copy_var[1:] = config.copy_scale**2
        out.append(AnchorSet(means, copy_var, np.full(n_proxies, np.log(config.copy_prob / n_proxies))))
    return out


def _kernels(pool: ProxyPool) -> ArchKernels:
    """The space's kernels, standardised on the pool's reference set (cached with the pool)."""
    cache = pool._shared
    if "kernels" not in cache:
        cache["kernels"] = ArchKernels(pool.space, pool.reference_indices)
    return cache["kernels"]


# --------------------------------------------------------------------------- the fitted predictor
class HierarchicalPredictor(AdaptedPredictor):
    """Posterior of the hierarchical model given ``k`` target measurements (see module doc).

    Args:
        pool: The proxies.
        config: Hyper-priors.
        measurements: The target's measurements, or ``None`` for the prior (``k = 0``).
        warm: A previous predictor of the same target on fewer points: only its
            hyper-parameter groups that still carry weight are refitted (a search refit
            costs a few small factorisations instead of the whole grid).
        n_samples: Posterior draws used to estimate the rank correlation.
        seed: Seed of those draws and of :meth:`next_archs`.
    """

    method = "hierarchical"

    def __init__(
        self,
        pool: ProxyPool,
        config: HierarchicalConfig | None = None,
        measurements: Measurements | None = None,
        *,
        warm: HierarchicalPredictor | None = None,
        n_samples: int = 64,
        seed: int = 0,
    ) -> None:
        self.pool = pool
        self.space: SearchSpace = pool.space
        self.config = config or HierarchicalConfig()
        self.seed, self._n_samples = seed, n_samples
        self.kernels = _kernels(pool)
        ref = pool.reference_latency
        self.measured: tuple[str, ...] = () if measurements is None else measurements.archs
        self.k = len(self.measured)
        self._anchors = _anchors(len(pool.devices), self.config)
        transforms = self.config.transforms if self.k >= 2 else self.config.transforms[:1]
        if warm is not None and warm.config == self.config and warm.k >= 2:
            # a warm refit (a few more points) skips the transforms the previous evidence ruled out
            transforms = tuple(t for t in transforms if warm.transform_weights.get(t, 0.0) > 0.0) or transforms
        self.units = [_Units.of(t, ref) for t in transforms]
        X_idx = None if measurements is None else measurements.indices
        X_lat = None if measurements is None else pool.latencies(X_idx)
        X_feats = None if X_idx is None else self.kernels.features(X_idx)
        self.posteriors: list[TransferPosterior] = []
        log_ev = []
        shared: dict[str, Any] = {}  # the measured architectures' kernel matrices, the same under every transform
        for units in self.units:
            groups = None
            if warm is not None and warm.config == self.config:
                previous = {u.transform: p for u, p in zip(warm.units, warm.posteriors)}.get(units.transform)
                groups = None if previous is None else previous.significant_groups()
            X = None if X_idx is None else Points(units.basis(X_lat), X_feats)
            y = None if measurements is None else units.forward(measurements.latency_ms)
            post = fit_transfer(self.kernels, self._anchors, X, y, unit=units.unit, grid=self.config.grid,
                                groups=groups, robust=self.config.robust, shared=shared)
            self.posteriors.append(post)
            log_ev.append(post.log_evidence + (0.0 if measurements is None else units.log_jacobian(measurements.latency_ms)))
        lw = np.array(log_ev)
        w = np.exp(lw - lw.max())
        w = np.where(w >= 1e-3 * w.max(), w, 0.0)  # a transform the evidence rules out is not computed
        self.transform_weights = dict(zip((u.transform for u in self.units), (w / w.sum()).tolist()))

    # ----------------------------------------------------------------- prediction
    def _inputs(self, archs: Any) -> tuple[np.ndarray, KernelFeatures]:
        """Proxy latencies and kernel inputs of some architectures (the last few lists are cached:
        a search predicts the same candidate pool after every refit)."""
        idx = self.space.to_indices(archs)
        cache = self.pool._shared.setdefault("inputs", {})
        key = (idx.shape, hashlib.blake2b(np.ascontiguousarray(idx).tobytes(), digest_size=16).digest())
        if key not in cache:
            if len(cache) >= 4:
                cache.pop(next(iter(cache)))
            cache[key] = (self.pool.latencies(idx), self.kernels.features(idx))
        return cache[key]

    def _points(self, units: _Units, archs: Any) -> Points:
        lat, feats = self._inputs(archs)
        return Points(units.basis(lat), feats)

    def predict(self, archs: Any) -> np.ndarray:
        """Predicted target latency in milliseconds, one per architecture."""
        out: np.ndarray | float = 0.0
        for units, post in zip(self.units, self.posteriors):
            w = self.transform_weights[units.transform]
            if w > 0:
                out = out + w * units.backward(post.mean(self._points(units, archs)))
        return np.asarray(out, dtype=np.float64)

    def predict_interval(self, archs: Any, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """A central predictive interval of a new measurement of each architecture, in ms
        (from the dominant transform's posterior; includes the device's noise)."""
        if not 0.0 < level < 1.0:
            raise InputError(f"predict_interval: level must be in (0, 1), got {level!r}")
        units, post = self._dominant()
        pts = self._points(units, archs)
        mean, sd = post.mean(pts), post.predictive_sd(pts)
        z = float(stats.norm.ppf(0.5 + level / 2))
        return units.backward(mean - z * sd), units.backward(mean + z * sd)

    def _dominant(self) -> tuple[_Units, TransferPosterior]:
        best = max(range(len(self.units)), key=lambda i: self.transform_weights[self.units[i].transform])
        return self.units[best], self.posteriors[best]

    # ----------------------------------------------------------------- rank-correlation estimate
    @functools.cached_property
    def _draw_rows(self) -> np.ndarray:
        ref = self.pool.reference_indices
        rng = np.random.default_rng(self.seed)
        return np.sort(rng.choice(ref.shape[0], size=min(_DRAW_REF, ref.shape[0]), replace=False))

    def _draws(self, n_samples: int) -> np.ndarray:
        """Posterior draws of the (noisy) target on part of the reference set, one per column."""
        rng = np.random.default_rng(self.seed)
        idx = self.pool.reference_indices[self._draw_rows]
        w = np.array([self.transform_weights[u.transform] for u in self.units])
        which = rng.choice(len(self.units), size=n_samples, p=w / w.sum())
        out = np.empty((idx.shape[0], n_samples))
        for t in np.unique(which):
            cols = np.flatnonzero(which == t)
            units = self.units[t]
            out[:, cols] = self.posteriors[t].draws(self._points(units, idx), len(cols), rng)
        return out

    # The estimate costs more than a fit; predictions (a search refit) never need it.
    @functools.cached_property
    def _spearman_estimate(self) -> tuple[float, float]:
        idx = self.pool.reference_indices[self._draw_rows]
        pred_rank = stats.rankdata(self.predict(idx))
        draws = self._draws(self._n_samples)
        vals = [_spearman_ranked(draws[:, j], pred_rank) for j in range(draws.shape[1])]
        return float(np.mean(vals)), float(np.std(vals))

    @property
    def estimated_spearman(self) -> float:  # type: ignore[override]
        return float(np.clip(self._spearman_estimate[0], -1.0, 1.0))

    @property
    def spearman_std(self) -> float:  # type: ignore[override]
        return self._spearman_estimate[1]

    def proxy_spearman(self, n_samples: int = 64) -> dict[str, tuple[float, float]]:
        """Expected Spearman of each proxy's own ranking against the target, ``(mean, sd)``,
        over posterior draws of the target on the reference set."""
        draws = self._draws(n_samples)
        draw_ranks = stats.rankdata(draws, axis=0)
        draw_ranks = (draw_ranks - draw_ranks.mean(axis=0)) / np.maximum(draw_ranks.std(axis=0), 1e-12)
        lat = self.pool.reference_latency[self._draw_rows]
        out = {}
        for j, name in enumerate(self.pool.devices):
            r = stats.rankdata(lat[:, j])
            r = (r - r.mean()) / max(float(r.std()), 1e-12)
            vals = (draw_ranks * r[:, None]).mean(axis=0)
            out[name] = (float(np.clip(vals.mean(), -1, 1)), float(vals.std()))
        return out

    @functools.cached_property
    def proxy_weights(self) -> dict[str, float]:  # type: ignore[override]
        """Weight of each proxy in the posterior-mean ranking (normalised to sum to 1)."""
        d = len(self.pool.devices)
        total = np.zeros(d)
        for units, post in zip(self.units, self.posteriors):
            coef = post._coef
            total += self.transform_weights[units.transform] * (coef[0] / d + (coef[1:] - coef[1:].mean()) / np.sqrt(d))
        s = total.sum()
        total = total / s if abs(s) > 1e-12 else total
        return {name: float(v) for name, v in zip(self.pool.devices, total)}

    @property
    def kernel_share(self) -> dict[str, float]:
        """Posterior probability that each kernel block is switched on (how much the target's
        own data correct the proxies), averaged over transforms."""
        out = {b: 0.0 for b in KERNEL_BLOCKS}
        for units, post in zip(self.units, self.posteriors):
            tw = self.transform_weights[units.transform]
            for bi, b in enumerate(post.blocks):
                on = post.groups[post.comp_group, 2 + bi] > 0
                out[b] += tw * float(post.weights[on].sum())
        return out

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        out["transform_weights"] = {t: round(w, 4) for t, w in self.transform_weights.items()}
        out["kernel_share"] = {b: round(v, 4) for b, v in self.kernel_share.items()}
        return out

    # ----------------------------------------------------------------- active choice
    def _default_candidates(self) -> np.ndarray:
        return self.pool.reference_indices

    def _select(self, n: int, candidates: np.ndarray, *, seed: int) -> np.ndarray:
        """Greedy integrated-variance reduction over the reference set (see ``_design``)."""
        units, post = self._dominant()
        ref = self.pool.reference_indices[self._draw_rows]
        return greedy_design(post, lambda idx: self._points(units, idx), candidates, ref, n, seed=seed)


def _spearman_ranked(pred: np.ndarray, true_ranks: np.ndarray) -> float:
    """Spearman of a continuous prediction against precomputed (tie-averaged) ranks."""
    if np.ptp(pred) == 0:
        return 0.0
    r = np.empty(pred.shape[0])
    r[np.argsort(pred, kind="stable")] = np.arange(pred.shape[0])
    return float(np.corrcoef(r, true_ranks)[0, 1])
