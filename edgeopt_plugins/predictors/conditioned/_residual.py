"""What the device-conditioned predictor misses about one device, learned from its own profile.

The conditioned predictor describes a device by a few latent coordinates on factors learned
from the training devices: a device unlike all of them (a new hardware family) keeps a
systematic error however many measurements it brings. A Gaussian process on the log-latency
residuals of the device's profile corrects it::

    log y(x) - mu(x) = c + f(x) + e(x)
    f ~ GP(0, unit * sum_b gamma_b K_b)          (``predictors._kernels``: summary, additive, pairwise)
    e ~ N(0, nu * sigma(x)^2)                    (the predictor's own variance at x, maybe widened)

with a flat offset ``c`` (a large constant variance). ``(nu, gamma)`` run over a grid and
every device averages the grid by its own evidence: a profile that agrees with the prior
keeps ``gamma = 0, nu = 1`` (the predictor unchanged); one that disagrees widens its bounds
(``nu > 1``) and, as measurements accumulate, learns its own per-operation costs and
interactions, so predictions converge to what the device's data support.

Devices are fitted in batches (one stacked Cholesky factorisation per chunk of devices and
grid points), so a fleet of ten thousand profiles costs about a second.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_triangular

from edgeopt_plugins.predictors._kernels import ArchKernels, KernelFeatures

__all__ = ["ResidualConfig", "DeviceResiduals", "fit_residuals"]

#: Devices per stacked factorisation (bounds the memory of a chunk).
_CHUNK = 512
#: Variance of the free offset, in units of the device spread.
_OFFSET_VAR = 10.0
#: Student-t reweighting of outlying points (a phone's slow run, a near-empty cell's ~0 ms).
_T_DOF = 4.0
_OUTLIER_Z = 3.0
_ROBUST_ITERATIONS = 2


@dataclass(frozen=True)
class ResidualConfig:
    """The grid each device averages over.

    Attributes:
        noise_scales: Multiples ``nu`` of the predictor's own variance at a point.
        summary_scales: Prior variances of the summary-feature correction (units of the
            spread between training devices).
        additive_scales: Prior variances of the per-decision correction.
        pairwise_scales: Prior variances of the pairwise-interaction correction.
    """

    noise_scales: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0)
    summary_scales: tuple[float, ...] = (0.0, 0.1, 1.0)
    additive_scales: tuple[float, ...] = (0.0, 0.1, 1.0)
    pairwise_scales: tuple[float, ...] = (0.0, 0.1)

    def grid(self, blocks: Sequence[str]) -> np.ndarray:
        """Rows ``[nu, gamma per block...]``."""
        scales = {"summary": self.summary_scales, "additive": self.additive_scales, "pairwise": self.pairwise_scales}
        rows = itertools.product(self.noise_scales, *[scales[b] for b in blocks])
        return np.array(list(rows), dtype=np.float64)


@dataclass
class DeviceResiduals:
    """Fitted corrections of ``B`` devices (see the module doc).

    Attributes:
        feats: Kernel inputs of each device's profile points, padded to ``k`` rows.
        mask: ``(B, k)`` which rows are real.
        beta: ``(B, blocks, k)`` weights of each block's cross-kernel in the mean correction.
        beta_offset: ``(B,)`` the estimated offset.
        chol: ``(B, k, k)`` Cholesky factor of each device's heaviest grid point.
        gamma: ``(B, blocks)`` and ``nu`` ``(B,)``: that grid point.
        share: ``(B,)`` posterior probability that the device needs a correction (``gamma != 0``).
    """

    kernels: ArchKernels
    blocks: tuple[str, ...]
    unit: float
    feats: list[KernelFeatures]
    mask: np.ndarray
    beta: np.ndarray
    beta_offset: np.ndarray
    chol: np.ndarray
    gamma: np.ndarray
    nu: np.ndarray
    share: np.ndarray

    def __len__(self) -> int:
        return int(self.mask.shape[0])

    def take(self, rows: np.ndarray) -> DeviceResiduals:
        rows = np.atleast_1d(rows)
        return DeviceResiduals(self.kernels, self.blocks, self.unit, [self.feats[i] for i in rows], self.mask[rows],
                               self.beta[rows], self.beta_offset[rows], self.chol[rows], self.gamma[rows],
                               self.nu[rows], self.share[rows])

    def adjust(self, feats: KernelFeatures | Sequence[KernelFeatures], mu: np.ndarray, sigma: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """Corrected ``(mu, sigma)`` (log scale, ``(B, n)``) at new architectures.

        ``feats`` are shared by all devices or given per device.
        """
        mu, sigma = np.array(mu, dtype=np.float64), np.array(sigma, dtype=np.float64)
        off = _OFFSET_VAR * self.unit
        for b in range(len(self)):
            f = feats if isinstance(feats, KernelFeatures) else feats[b]
            grams = self.kernels.cross(f, self.feats[b])
            m = self.mask[b]
            corr = np.full(len(f), self.beta_offset[b])
            prior = np.full(len(f), off)
            kx = np.full((len(f), m.size), off)
            for j, blk in enumerate(self.blocks):
                corr += grams[blk] @ self.beta[b, j]
                if self.gamma[b, j]:
                    kx += self.unit * self.gamma[b, j] * grams[blk]
                    prior += self.unit * self.gamma[b, j]
            kx[:, ~m] = 0.0
            v = solve_triangular(self.chol[b], kx.T, lower=True, check_finite=False)
            var_f = np.maximum(prior - (v**2).sum(axis=0), 0.0)
            mu[b] += corr
            sigma[b] = np.sqrt(self.nu[b] * sigma[b] ** 2 + var_f)
        return mu, sigma


def _lower_solve(L: np.ndarray, b: np.ndarray, *, transposed: bool = False) -> np.ndarray:
    """Solve ``L x = b`` (or ``L^T x = b``) for stacks of lower-triangular ``L`` (``(..., k, k)``, ``b``: ``(..., k)``).

    Small systems (profiles of a few dozen points, many devices at once) by vectorised
    substitution; large ones by LAPACK.
    """
    k = b.shape[-1]
    if k > 32:
        A = np.swapaxes(L, -1, -2) if transposed else L
        return np.linalg.solve(A, b[..., None])[..., 0]
    x = np.zeros(b.shape)
    order = range(k - 1, -1, -1) if transposed else range(k)
    for j in order:
        if transposed:
            acc = np.einsum("...i,...i->...", L[..., j + 1:, j], x[..., j + 1:])
        else:
            acc = np.einsum("...i,...i->...", L[..., j, :j], x[..., :j])
        x[..., j] = (b[..., j] - acc) / L[..., j, j]
    return x


def _fit_chunk(grid: np.ndarray, grams: np.ndarray, mm: np.ndarray, m: np.ndarray, r: np.ndarray, v: np.ndarray,
               unit: float, off: float) -> tuple[np.ndarray, ...]:
    """One chunk of devices: ``(beta, beta_offset, chol, gamma, nu, share)`` (see :class:`DeviceResiduals`)."""
    n, kmax = r.shape
    G = grid.shape[0]
    # K[i, g] = unit * sum_b gamma * gram_b + nu * diag(var) + offset * 1 1^T (real rows), identity on padding
    K = unit * np.einsum("gb,ibjk->igjk", grid[:, 1:], grams)
    K += (off * mm)[:, None]
    diag = np.where(m, v, 1.0)[:, None, :] * np.where(m[:, None, :], grid[None, :, :1], 1.0)
    K[..., np.arange(kmax), np.arange(kmax)] += diag
    L = np.linalg.cholesky(K)  # (n, G, k, k)
    w = _lower_solve(L, np.broadcast_to(r[:, None, :], (n, G, kmax)))
    alpha = _lower_solve(L, w, transposed=True)  # (n, G, k)
    log_ev = -0.5 * (w**2).sum(-1) - np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(-1)
    post = np.exp(log_ev - log_ev.max(axis=1, keepdims=True))
    post /= post.sum(axis=1, keepdims=True)  # (n, G)
    beta = unit * np.einsum("ig,gb,igk->ibk", post, grid[:, 1:], alpha)
    beta_offset = off * np.einsum("ig,igk->i", post, alpha * m[:, None, :])
    best = post.argmax(axis=1)
    share = (post * (grid[None, :, 1:] > 0).any(axis=2)).sum(axis=1)
    return beta, beta_offset, L[np.arange(n), best], grid[best, 1:], grid[best, 0], share


def fit_residuals(kernels: ArchKernels, unit: float, feats: Sequence[KernelFeatures], resid: Sequence[np.ndarray],
                  var: Sequence[np.ndarray], config: ResidualConfig | None = None) -> DeviceResiduals:
    """Fit the corrections of many devices at once.

    Args:
        kernels: The space's kernel blocks.
        unit: Variance unit (the spread of log-latency between training devices).
        feats: Kernel inputs of each device's profile points.
        resid: Each device's log-latency residuals ``log y - mu`` at those points.
        var: The predictor's own predictive variance there (``sigma^2``).
        config: The grid (default :class:`ResidualConfig`).
    """
    cfg = config or ResidualConfig()
    blocks = kernels.blocks
    grid = cfg.grid(blocks)
    B, G = len(feats), grid.shape[0]
    kmax = max(1, max(len(r) for r in resid))
    mask = np.zeros((B, kmax), dtype=bool)
    padded_feats = []
    for b, f in enumerate(feats):
        n = len(resid[b])
        mask[b, :n] = True
        pad = kmax - n
        padded_feats.append(KernelFeatures(np.vstack([f.onehot, np.zeros((pad, f.onehot.shape[1]), f.onehot.dtype)]),
                                           np.vstack([f.summary, np.zeros((pad, f.summary.shape[1]))])))
    beta = np.zeros((B, len(blocks), kmax))
    beta_offset = np.zeros(B)
    chol = np.tile(np.eye(kmax), (B, 1, 1))
    gamma = np.zeros((B, len(blocks)))
    nu = np.ones(B)
    share = np.zeros(B)
    off = _OFFSET_VAR * unit
    for start in range(0, B, _CHUNK):
        rows = np.arange(start, min(B, start + _CHUNK))
        n = rows.size
        m = mask[rows]
        mm = (m[:, :, None] & m[:, None, :]).astype(np.float64)
        r = np.zeros((n, kmax))
        v = np.ones((n, kmax))
        grams = np.zeros((n, len(blocks), kmax, kmax))
        for i, b in enumerate(rows):
            k = len(resid[b])
            r[i, :k] = resid[b]
            v[i, :k] = var[b]
            g = kernels.cross(padded_feats[b], padded_feats[b])
            grams[i] = np.stack([g[blk] for blk in blocks]) * mm[i]
        fit = _fit_chunk(grid, grams, mm, m, r, v, unit, off)
        for _ in range(_ROBUST_ITERATIONS):  # Student-t noise: inflate the variance of outlying points
            fitted = np.einsum("ibjk,ibk->ij", grams, fit[0]) + fit[1][:, None]
            z2 = np.where(m, (r - fitted) ** 2 / (fit[4][:, None] * v), 0.0)
            if z2.max() < _OUTLIER_Z**2:
                break
            weight = np.where(z2.max(axis=1, keepdims=True) >= _OUTLIER_Z**2, (_T_DOF + 1.0) / (_T_DOF + z2), 1.0)
            v = v / np.minimum(weight / weight.max(axis=1, keepdims=True), 1.0)
            fit = _fit_chunk(grid, grams, mm, m, r, v, unit, off)
        beta[rows], beta_offset[rows], chol[rows], gamma[rows], nu[rows], share[rows] = fit
    return DeviceResiduals(kernels, blocks, float(unit), padded_feats, mask, beta, beta_offset, chol, gamma, nu, share)
