"""Hierarchical proxy mixture: a prior over target devices learned from the proxies.

Model, in the normalised space of a transform ``T`` (milliseconds divided by each proxy's
mean, or centred log-milliseconds)::

    T(latency_target(x)) = c + s0 * ( a * m(x) + C(x) @ u + g * onehot(x) @ v + noise )
    m(x) = mean over proxies of P_d(x)          (the "average device")
    C(x) = (P_d(x) - m(x)) / sqrt(D)            (how devices differ from it)
    a ~ N(1, kappa^2), u ~ N(0, I_D), v ~ N(0, I_W), noise ~ N(0, sigma^2)

``u`` says which mix of proxies the target resembles: its prior is the empirical spread of
the proxy devices themselves, so the target is a priori "one more device like these".
``v`` is a per-operation correction for what no mix of proxies explains (the published
one-hot correction, here with a prior instead of a tuned penalty). The offset ``c`` has a
flat prior and is integrated out exactly (the likelihood uses the ``k - 1`` contrasts of
the points); the scale ``s0`` is matched to the spread of the points, which keeps the fit
stable when the points say little.

The prior is a *mixture*, and the posterior weighs its components by their evidence
(marginal likelihood) on the ``k`` points:

- anchors: "a new mix of the proxies" (prior mean ``m``), or, with probability
  ``copy_prob``, "a near copy of proxy d" (prior mean ``P_d``, tighter ``u``) for each
  ``d``: devices of one family and batch size are near copies, and a handful of points
  identify the right one;
- noise levels: ``sigma^2`` times each of ``noise_levels`` (phones that report whole
  milliseconds are far noisier than GPUs).

Every component is Gaussian with a closed-form posterior; only ``(k-1) x (k-1)`` systems are
solved. The remaining hyper-parameters (transform, correction scale ``gamma``, ``copy_prob``)
are *meta-learned* from the proxies: each proxy in turn plays the target, the others the
proxies, ``k`` random architectures are "measured", and the setting that ranks these
pseudo-targets best wins. The same pseudo-targets calibrate the estimated rank correlation.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from edgeopt_plugins.predictors.proxy._adapted import AdaptedPredictor
from edgeopt_plugins.predictors._measurements import Measurements
from edgeopt_plugins.predictors.proxy._pool import ProxyPool
from edgeopt_plugins.spaces import SearchSpace

__all__ = ["META_GRID", "HierarchicalConfig", "HierarchicalPredictor", "MetaResult", "meta_tune"]

TRANSFORMS = ("linear", "log")
#: Pseudo-observations of the prior on the residual scale (how much k points may widen it).
_NU0 = 4.0
#: Degrees of freedom of the Student-t noise used to down-weight outlying measurements.
_T_DOF = 4.0
#: Reweighting starts only when a point lies this many robust standard deviations off.
_OUTLIER_Z = 3.0
_ROBUST_ITERATIONS = 2
#: Meta-tuning scores settings on this many reference architectures, calibrates on this many pseudo-targets.
_META_REF = 1000
_CALIBRATION_TASKS = 16


@dataclass(frozen=True)
class HierarchicalConfig:
    """Hyper-parameters of the hierarchical model (all relative, so they transfer across spaces).

    Attributes:
        transform: ``"linear"`` (ms over each proxy's mean) or ``"log"`` (centred log-ms).
        noise: Target noise variance relative to the prior variance of the device spread.
        gammas: Prior variances of the one-hot correction, in the same unit; the posterior
            averages over them by evidence (``0`` = no correction).
        kappa: Prior standard deviation of the average device's weight ``a`` (mean 1).
        copy_prob: Prior probability that the target is a near copy of one proxy (same
            chip family and setting); the rest goes to "a new mix of the proxies".
        copy_scale: How far a near copy may stray, relative to the device spread.
    """

    transform: str = "linear"
    noise: float = 0.1
    gammas: tuple[float, ...] = (0.0, 0.1, 1.0)
    kappa: float = 1.0
    copy_prob: float = 0.5
    copy_scale: float = 0.5
    noise_levels: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0)


#: The settings meta-tuning chooses from.
META_GRID: tuple[HierarchicalConfig, ...] = tuple(
    HierarchicalConfig(t, copy_prob=cp) for t, cp in itertools.product(TRANSFORMS, (0.0, 0.5))
)


# --------------------------------------------------------------------------- the model's algebra
def _normalise(latency: np.ndarray, ref_latency: np.ndarray, transform: str) -> np.ndarray:
    """Proxy latencies in the model's units, with constants taken from the reference set."""
    if transform == "linear":
        return latency / ref_latency.mean(axis=0)
    return np.log(latency) - np.log(ref_latency).mean(axis=0)


def _target(latency_ms: np.ndarray, transform: str) -> np.ndarray:
    return latency_ms if transform == "linear" else np.log(latency_ms)


def _split(pn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average device ``m`` and the scaled deviations ``C`` of the proxies from it."""
    m = pn.mean(axis=1)
    return m, (pn - m[:, None]) / np.sqrt(pn.shape[1])


def _unit(C_ref: np.ndarray) -> float:
    """Prior variance of the device spread per architecture: the unit of noise and gamma."""
    return float(max(np.mean((C_ref**2).sum(axis=1)), 1e-12))


@dataclass
class _Group:
    """Components sharing one prior variance: enough to rebuild their posterior covariance."""

    prior_var: np.ndarray  # (P,)
    hq_pv: np.ndarray | None  # (k-1, P) contrasts of the design times the prior variance
    chol: np.ndarray | None  # Cholesky factor of the contrasts' covariance, (k-1, k-1)
    hq: np.ndarray | None = None  # (k-1, P) contrasts of the design
    yq: np.ndarray | None = None  # (k-1,) contrasts of the (transformed) measurements
    noise_half: np.ndarray | None = None  # (k-1, k): contrasts of the per-point noise sd
    noise_var: float = 0.0
    _cov: np.ndarray | None = None

    def sample(self, prior_mean: np.ndarray, s0: float, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` posterior draws ``(n, P)`` by Matheron's rule: a prior draw, corrected by the
        data it would have produced; exact, and only a ``(k-1)``-sized solve per draw."""
        phi0 = prior_mean[None, :] + np.sqrt(self.prior_var)[None, :] * rng.standard_normal((n, len(self.prior_var)))
        if self.hq is None or self.chol is None or self.yq is None:
            return phi0
        assert self.noise_half is not None
        eps = rng.standard_normal((n, self.noise_half.shape[1])) @ self.noise_half.T
        r = (self.yq / s0)[None, :] - phi0 @ self.hq.T - eps  # (n, k-1)
        sol = np.linalg.solve(self.chol.T, np.linalg.solve(self.chol, r.T))  # (k-1, n)
        return phi0 + sol.T @ self.hq_pv

    @property
    def cov(self) -> np.ndarray:
        """Posterior covariance of ``(a, u, v)`` in units of ``s0^2`` (built on first use)."""
        if self._cov is None:
            cov = np.diag(self.prior_var)
            if self.hq_pv is not None and self.chol is not None:
                half = np.linalg.solve(self.chol, self.hq_pv)
                cov = cov - half.T @ half
            self._cov = (cov + cov.T) / 2
        return self._cov


@dataclass
class _Mixture:
    """Posterior of the model: one Gaussian component per prior anchor, weighted by evidence.

    Component 0 is anchored at the average device; with ``copy_prob > 0`` component
    ``1 + d`` is anchored at proxy ``d`` ("the target is a near copy of proxy d").
    """

    c: np.ndarray  # (J,) offsets
    s0: np.ndarray  # (J,) scales
    means: np.ndarray  # (J, P) posterior means of (a, u, v)
    prior_means: np.ndarray  # (J, P) prior means: (1, 0, ...) or an anchor
    groups: list[_Group]
    group: np.ndarray  # (J,) index into groups
    weights: np.ndarray  # (J,) posterior probabilities
    tau2: np.ndarray  # (J,) residual scale (1 = as the prior expects)

    def predict(self, H: np.ndarray) -> np.ndarray:
        """Posterior mean of the transformed target at designs ``H`` (n, P)."""
        return self.predict_split(H, None)

    def predict_split(self, H: np.ndarray, extra: np.ndarray | None) -> np.ndarray:
        """Same, with the design given in two blocks (``[H, extra]``) to avoid stacking big arrays."""
        coef = self.means * (self.s0 * self.weights)[:, None]  # (J, P): weights folded in
        out = H @ coef[:, : H.shape[1]].sum(axis=0)
        if extra is not None:
            out = out + extra @ coef[:, H.shape[1]:].sum(axis=0)
        return out + float(self.c @ self.weights)


@functools.lru_cache(maxsize=256)
def _contrasts(k: int) -> np.ndarray:
    """Orthonormal basis ``(k, k-1)`` of the vectors orthogonal to the ones vector."""
    return np.linalg.qr(np.eye(k) - 1.0 / k)[0][:, : k - 1]


def _group_posterior(
    H_k: np.ndarray | None,
    y: np.ndarray | None,
    prior_means: np.ndarray,
    prior_var: np.ndarray,
    noise_var: float,
    point_weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, _Group, np.ndarray, np.ndarray]:
    """Posteriors of components sharing one prior variance, given ``y ~ c + s0 * (H_k @ phi + noise)``.

    Returns ``(c, s0, means, group, log evidence of y, tau2)``. The flat offset ``c`` is
    integrated out exactly by working with the ``k - 1`` contrasts of the points; each
    component's scale ``s0`` matches the spread of the points under its prior. Only
    ``(k-1) x (k-1)`` systems are solved, so wide designs (many one-hot columns) stay cheap.
    ``point_weights`` (default all 1) divide each point's noise variance: a suspected
    outlier gets a small weight.
    """
    J = prior_means.shape[0]
    if H_k is None or y is None or y.shape[0] < 2:
        return np.zeros(J), np.ones(J), prior_means.copy(), _Group(prior_var, None, None), np.zeros(J), np.ones(J)
    k = y.shape[0]
    q = _contrasts(k)
    Hq = q.T @ H_k
    yq = q.T @ y
    hq_pv = Hq * prior_var[None, :]
    w = np.ones(k) if point_weights is None else point_weights
    noise_half = q.T * np.sqrt(noise_var / w)[None, :]
    K = hq_pv @ Hq.T + noise_half @ noise_half.T
    L = np.linalg.cholesky(K)
    proj = Hq @ prior_means.T  # (k-1, J)
    expected = float(np.trace(K)) + (proj**2).sum(axis=0)
    ss = float(yq @ yq)
    s0 = np.sqrt(ss / expected) if ss > 0 else np.ones(J)
    R = yq[:, None] / s0[None, :] - proj
    W = np.linalg.solve(L, R)
    alpha = np.linalg.solve(L.T, W)
    means = prior_means + alpha.T @ hq_pv
    c = y.mean() - s0 * (means @ H_k.mean(axis=0))
    maha = (W**2).sum(axis=0)
    logdet = 2.0 * np.log(np.diag(L)).sum()
    log_ev = -0.5 * (maha + logdet + (k - 1) * np.log(2 * np.pi)) - (k - 1) * np.log(s0)
    tau2 = (_NU0 + maha) / (_NU0 + k - 1)
    return c, s0, means, _Group(prior_var, hq_pv, L, Hq, yq, noise_half), log_ev, tau2


def _fit_mixture(H_k: np.ndarray | None, y: np.ndarray | None, n_proxies: int, n_extra: int, config: HierarchicalConfig,
                 noise_var: float) -> _Mixture:
    """The posterior mixture for a design ``[m, C (n_proxies), one-hot (n_extra)]``, robust to outliers.

    A Gaussian fit is followed by reweighted ones (Student-t noise, by iteratively
    reweighted least squares): a point far from the others' consensus, e.g. one run of a
    phone that hit a slow clock, gets its noise variance inflated instead of bending the fit.
    """
    mix = _fit_mixture_once(H_k, y, n_proxies, n_extra, config, noise_var, None)
    if H_k is None or y is None or y.shape[0] < 5:
        return mix
    for _ in range(_ROBUST_ITERATIONS):
        resid = y - mix.predict(H_k)
        scale = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
        if not scale > 0:
            break
        r2 = (resid / scale) ** 2
        if r2.max() < _OUTLIER_Z**2:
            break  # nothing stands out: keep the current fit
        weights = (_T_DOF + 1.0) / (_T_DOF + r2)
        weights = np.minimum(weights / np.max(weights), 1.0)
        mix = _fit_mixture_once(H_k, y, n_proxies, n_extra, config, noise_var, weights)
    return mix


def _fit_mixture_once(H_k: np.ndarray | None, y: np.ndarray | None, n_proxies: int, n_extra: int,
                      config: HierarchicalConfig, noise_var: float, point_weights: np.ndarray | None) -> _Mixture:
    """The mixture for fixed per-point weights.

    Components: every anchor (the average device, and each proxy when ``copy_prob > 0``)
    crossed with every noise level and every one-hot correction scale, weighted by prior
    probability times evidence.
    """
    P = 1 + n_proxies + n_extra
    use_copies = config.copy_prob > 0 and n_proxies > 1
    gammas = config.gammas if n_extra else (0.0,)
    cs, s0s, means, pms, groups, group, logw, tau2s = [], [], [], [], [], [], [], []
    n_levels = len(config.noise_levels) * len(gammas)
    for factor, gamma in itertools.product(config.noise_levels, gammas):
        base_var = np.ones(P)
        base_var[0] = config.kappa**2
        base_var[1 + n_proxies :] = gamma
        base_mean = np.zeros((1, P))
        base_mean[0, 0] = 1.0
        priors = [(base_mean, base_var, np.array([1.0 - config.copy_prob if use_copies else 1.0]))]
        if use_copies:
            anchors = np.zeros((n_proxies, P))
            anchors[:, 0] = 1.0
            anchors[np.arange(n_proxies), 1 + np.arange(n_proxies)] = np.sqrt(n_proxies)
            anchor_var = base_var.copy()
            anchor_var[1 : 1 + n_proxies] = config.copy_scale**2
            priors.append((anchors, anchor_var, np.full(n_proxies, config.copy_prob / n_proxies)))
        for pm, pv, prior_w in priors:
            c, s0, mu, grp, log_ev, tau2 = _group_posterior(H_k, y, pm, pv, noise_var * factor, point_weights)
            grp.noise_var = noise_var * factor
            cs.append(c)
            s0s.append(s0)
            means.append(mu)
            pms.append(pm)
            group.append(np.full(len(c), len(groups)))
            groups.append(grp)
            logw.append(np.log(prior_w / n_levels) + log_ev)
            tau2s.append(tau2)
    lw = np.concatenate(logw)
    w = np.exp(lw - lw.max())
    return _Mixture(np.concatenate(cs), np.concatenate(s0s), np.vstack(means), np.vstack(pms), groups,
                    np.concatenate(group), w / w.sum(), np.concatenate(tau2s))


def _spearman_ranked(pred: np.ndarray, true_ranks: np.ndarray) -> float:
    """Spearman of a continuous prediction against precomputed (tie-averaged) true ranks."""
    if np.ptp(pred) == 0:
        return 0.0
    r = np.empty(pred.shape[0])
    r[np.argsort(pred, kind="stable")] = np.arange(pred.shape[0])
    return float(np.corrcoef(r, true_ranks)[0, 1])


# --------------------------------------------------------------------------- the fitted predictor
class HierarchicalPredictor(AdaptedPredictor):
    """Posterior of the hierarchical model given ``k`` target measurements (see module doc).

    Args:
        pool: The proxies.
        config: Hyper-parameters.
        measurements: The target's measurements, or ``None`` for the prior (``k = 0``).
        calibration: ``(bias, extra sd)`` added to the sampled Spearman estimate (from
            meta-tuning's pseudo-targets).
        n_samples: Posterior draws used to estimate the rank correlation.
        seed: Seed of those draws and of :meth:`next_archs`.
    """

    method = "hierarchical"

    def __init__(
        self,
        pool: ProxyPool,
        config: HierarchicalConfig,
        measurements: Measurements | None,
        *,
        calibration: tuple[float, float] = (0.0, 0.0),
        n_samples: int = 64,
        seed: int = 0,
    ) -> None:
        self.pool = pool
        self.space: SearchSpace = pool.space
        self.config = config
        self.seed = seed
        self._ref = pool.reference_latency
        _, C_ref = _split(_normalise(self._ref, self._ref, config.transform))
        self.unit = _unit(C_ref)
        # One-hot columns scaled so that a correction prior variance of 1 equals the device spread.
        self._g = float(np.sqrt(self.unit / len(self.space.decisions))) if max(config.gammas) > 0 else 0.0
        self.noise_var = config.noise * self.unit
        self._ref_H = self._design(self._ref, pool.reference_indices)
        n_extra = self._ref_H.shape[1] - 1 - len(pool.devices)
        if measurements is None:
            self.measured: tuple[str, ...] = ()
            H_k = y = None
        else:
            self.measured = measurements.archs
            H_k = self._design(pool.latencies(measurements.indices), measurements.indices)
            y = _target(measurements.latency_ms, config.transform)
        self.k = len(self.measured)
        self.mixture = _fit_mixture(H_k, y, len(pool.devices), n_extra, config, self.noise_var)
        self._calibration, self._n_samples = calibration, n_samples

    # The rank-correlation estimate (posterior draws over the reference set) costs more than the fit
    # itself; predictions (a search guide refitting as measurements arrive) never need it.
    @functools.cached_property
    def _spearman_estimate(self) -> tuple[float, float]:
        raw, std = self._sampled_spearman(self._n_samples)
        return raw, std

    @property
    def raw_estimated_spearman(self) -> float:
        """The sampled Spearman estimate before calibration."""
        return self._spearman_estimate[0]

    @property
    def estimated_spearman(self) -> float:  # type: ignore[override]
        return float(np.clip(self.raw_estimated_spearman + self._calibration[0], -1.0, 1.0))

    @property
    def spearman_std(self) -> float:  # type: ignore[override]
        return float(np.sqrt(self._spearman_estimate[1] ** 2 + self._calibration[1] ** 2))

    @functools.cached_property
    def proxy_weights(self) -> dict[str, float]:  # type: ignore[override]
        return self._weights()

    def _design(self, latency: np.ndarray, idx: np.ndarray) -> np.ndarray:
        m, C = _split(_normalise(latency, self._ref, self.config.transform))
        parts = [m[:, None], C]
        if self._g > 0:
            parts.append(self._g * self.space.one_hot(idx).astype(np.float64))
        return np.hstack(parts)

    def _features(self, idx: np.ndarray) -> np.ndarray:
        return self._design(self.pool.latencies(idx), idx)

    def predict(self, archs: Any) -> np.ndarray:
        idx = self.space.to_indices(archs)
        z = self.mixture.predict(self._features(idx))
        return np.maximum(z, 1e-6) if self.config.transform == "linear" else np.exp(z)

    def _draws(self, n_samples: int) -> np.ndarray:
        """Posterior draws of the (noisy, transformed) target on the reference set, one per column."""
        rng = np.random.default_rng(self.seed)
        mix = self.mixture
        comps = rng.choice(len(mix.weights), size=n_samples, p=mix.weights)
        phis = np.empty((n_samples, mix.means.shape[1]))
        for j in np.unique(comps):
            rows = np.flatnonzero(comps == j)
            grp = mix.groups[mix.group[j]]
            draws = grp.sample(mix.prior_means[j], float(mix.s0[j]), rng, len(rows))
            # widen by the residual scale of this component around its posterior mean
            phis[rows] = mix.means[j] + np.sqrt(mix.tau2[j]) * (draws - mix.means[j])
        noise_sd = np.sqrt(np.array([mix.groups[mix.group[j]].noise_var * mix.tau2[j] for j in comps]))
        noise = rng.standard_normal((self._ref_H.shape[0], n_samples)) * noise_sd[None, :]
        return mix.c[comps][None, :] + mix.s0[comps][None, :] * (self._ref_H @ phis.T + noise)

    def _sampled_spearman(self, n_samples: int) -> tuple[float, float]:
        """Spearman between the posterior mean and posterior draws of the truth, on the reference set."""
        pred_rank = stats.rankdata(self.mixture.predict(self._ref_H))
        draws = self._draws(n_samples)
        vals = [_spearman_ranked(draws[:, j], pred_rank) for j in range(n_samples)]
        return float(np.mean(vals)), float(np.std(vals))

    def proxy_spearman(self, n_samples: int = 64) -> dict[str, tuple[float, float]]:
        """Expected Spearman of each proxy's own ranking against the target, ``(mean, sd)``,
        over posterior draws of the target on the reference set."""
        draws = self._draws(n_samples)
        draw_ranks = stats.rankdata(draws, axis=0)
        draw_ranks = (draw_ranks - draw_ranks.mean(axis=0)) / draw_ranks.std(axis=0)
        bias = self.estimated_spearman - self.raw_estimated_spearman
        out = {}
        for j, name in enumerate(self.pool.devices):
            r = stats.rankdata(self._ref[:, j])
            r = (r - r.mean()) / r.std()
            vals = (draw_ranks * r[:, None]).mean(axis=0)
            out[name] = (float(np.clip(vals.mean() + bias, -1, 1)), float(vals.std()))
        return out

    def _weights(self) -> dict[str, float]:
        """Weight of each proxy in the posterior-mean ranking (normalised to sum to 1)."""
        d = len(self.pool.devices)
        mix = self.mixture
        total = np.zeros(d)
        for j, wj in enumerate(mix.weights):
            a, u = mix.means[j, 0], mix.means[j, 1 : 1 + d]
            total += wj * mix.s0[j] * (a / d + (u - u.mean()) / np.sqrt(d))
        s = total.sum()
        total = total / s if abs(s) > 1e-12 else total
        return {name: float(v) for name, v in zip(self.pool.devices, total)}

    # ----------------------------------------------------------------- active choice
    def _default_candidates(self) -> np.ndarray:
        return self.pool.reference_indices

    def _select(self, n: int, candidates: np.ndarray, *, seed: int) -> np.ndarray:
        """Greedy integrated-variance reduction: each pick most reduces the posterior variance
        summed over the candidates, given the picks before it (batch-aware, needs no values).
        With several anchors, the reductions are weighted by the anchors' probabilities."""
        rng = np.random.default_rng(seed)
        H = self._features(candidates)
        H = H - H.mean(axis=0)  # the offset is free: only differences between archs matter
        sub = rng.choice(H.shape[0], size=min(H.shape[0], 2000), replace=False)
        G = H[sub].T @ H[sub] / len(sub)
        mix = self.mixture
        group_w = np.array([mix.weights[mix.group == g].sum() for g in range(len(mix.groups))])
        covs = [grp.cov.copy() for grp in mix.groups]
        nvs = [grp.noise_var for grp in mix.groups]
        picks: list[int] = []
        for _ in range(n):
            gain = np.zeros(H.shape[0])
            for gw, cov, nv in zip(group_w, covs, nvs):
                if gw < 1e-3:
                    continue
                hc = H @ cov
                var = np.einsum("ij,ij->i", hc, H)
                gain += gw * np.einsum("ij,jk,ik->i", hc, G, hc) / (nv + var)
            gain[picks] = -np.inf
            best = int(np.argmax(gain + rng.random(len(gain)) * 1e-12))
            picks.append(best)
            for g, (cov, nv) in enumerate(zip(covs, nvs)):
                if group_w[g] < 1e-3:
                    continue
                v = cov @ H[best]
                covs[g] = cov - np.outer(v, v) / (nv + float(H[best] @ v))
        return np.array(picks, dtype=np.int64)


# --------------------------------------------------------------------------- meta-tuning
@dataclass
class MetaResult:
    """What meta-tuning learned for one ``k``.

    Attributes:
        config: The chosen hyper-parameters.
        k: The number of measurements simulated.
        scores: Mean Spearman of each candidate setting over the pseudo-targets.
        calibration: ``(mean, sd)`` of actual minus estimated Spearman over the pseudo-targets.
        n_tasks: Number of pseudo-target draws.
    """

    config: HierarchicalConfig
    k: int
    scores: dict[HierarchicalConfig, float]
    calibration: tuple[float, float]
    n_tasks: int


def _small_matrix_threads() -> Any:
    """Limit BLAS to one thread while solving many tiny systems, when ``threadpoolctl`` is present.

    Thousands of ``k x k`` solves gain nothing from threads, and on a busy machine
    OpenBLAS's thread hand-offs make them 10x slower. Without ``threadpoolctl`` nothing changes.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def meta_tune(
    pool: ProxyPool,
    proxies: tuple[str, ...],
    k: int,
    *,
    grid: tuple[HierarchicalConfig, ...] = META_GRID,
    draws: int = 2,
    seed: int = 0,
    calibrate: bool = True,
) -> MetaResult:
    """Choose the hyper-parameters that rank pseudo-targets best (each pool device in turn).

    Args:
        pool: All devices available (pseudo-targets are drawn from them).
        proxies: The proxies the real target will use; a pseudo-target ``e`` uses
            ``proxies`` without ``e``.
        k: Number of target measurements to simulate.
        grid: Candidate settings.
        draws: Random draws of the ``k`` architectures per pseudo-target.
        seed: Seed of those draws.
        calibrate: Also measure how the estimated Spearman errs on the pseudo-targets.
    """
    with _small_matrix_threads():
        return _meta_tune(pool, proxies, k, grid=grid, draws=draws, seed=seed, calibrate=calibrate)


def _meta_tune(
    pool: ProxyPool,
    proxies: tuple[str, ...],
    k: int,
    *,
    grid: tuple[HierarchicalConfig, ...],
    draws: int,
    seed: int,
    calibrate: bool,
) -> MetaResult:
    rng = np.random.default_rng(seed)
    # Scoring on at most _META_REF architectures of the reference set is plenty to rank settings.
    keep = np.sort(rng.choice(len(pool.reference_indices), size=min(_META_REF, len(pool.reference_indices)),
                              replace=False))
    ref = pool.reference_latency[keep]
    idx = pool.reference_indices[keep]
    n_ref = ref.shape[0]
    k = int(max(2, min(k, n_ref // 2)))
    onehot = pool.space.one_hot(idx).astype(np.float64)
    n_dec = len(pool.space.decisions)
    pos = {d: i for i, d in enumerate(pool.devices)}
    tasks = []
    for e in pool.devices:
        others = [pos[d] for d in proxies if d != e]
        if not others:
            continue
        for _ in range(draws):
            tasks.append((pos[e], others, rng.choice(n_ref, size=k, replace=False)))
    true_ranks = {j: stats.rankdata(ref[:, j]) for j in {t[0] for t in tasks}}
    scores: dict[HierarchicalConfig, list[float]] = {cfg: [] for cfg in grid}
    for transform in TRANSFORMS:
        cfgs = [c for c in grid if c.transform == transform]
        if not cfgs:
            continue
        pn_all = _normalise(ref, ref, transform)
        designs: dict[tuple[int, ...], tuple[np.ndarray, float]] = {}
        for e, others, rows in tasks:
            key = tuple(others)
            if key not in designs:
                m, C = _split(pn_all[:, others])
                designs[key] = (np.column_stack([m, C]), _unit(C))
            base, unit = designs[key]
            y = _target(ref[rows, e], transform)
            for cfg in cfgs:
                g = np.sqrt(unit / n_dec) if max(cfg.gammas) > 0 else 0.0
                H_k = np.hstack([base[rows], g * onehot[rows]]) if g > 0 else base[rows]
                n_extra = onehot.shape[1] if g > 0 else 0
                mix = _fit_mixture(H_k, y, len(others), n_extra, cfg, cfg.noise * unit)
                f = mix.predict_split(base, g * onehot if g > 0 else None)
                scores[cfg].append(_spearman_ranked(f, true_ranks[e]))
    mean_scores = {cfg: float(np.mean(v)) for cfg, v in scores.items() if v}
    best = max(grid, key=lambda c: (round(mean_scores.get(c, -2.0), 4), -grid.index(c)))
    calibration = (0.0, 0.0)
    if calibrate and tasks:
        diffs = []
        full_ranks = {j: stats.rankdata(pool.reference_latency[:, j]) for j in true_ranks}
        for e, others, rows in tasks[:: max(1, len(tasks) // _CALIBRATION_TASKS)]:
            sub = pool.subset([pool.devices[j] for j in others])
            meas = Measurements(pool.space, tuple(pool.space.from_indices(idx[rows])), ref[rows, e], "pseudo-target")
            pred = HierarchicalPredictor(sub, best, meas, seed=seed, n_samples=32)
            actual = _spearman_ranked(pred.mixture.predict(pred._ref_H), full_ranks[e])
            diffs.append(actual - pred.raw_estimated_spearman)
        calibration = (float(np.mean(diffs)), float(np.std(diffs)))
    return MetaResult(best, k, mean_scores, calibration, len(tasks))
