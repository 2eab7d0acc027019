"""Batched Bayesian linear regression with an empirical-Bayes noise level.

A device is a latent vector ``theta`` (its log-scale and loadings on the
architecture factors). Each profile measurement is one linear observation
``y_i = h_i . theta + e_i`` with ``e_i ~ N(0, g * s2_i + t_i)``: ``s2_i`` is
the typical out-of-subspace variance of that architecture, ``t_i`` an extra
variance for architectures whose factors come from the network rather than the
table, and ``g`` a per-device noise multiplier. ``theta`` has a Gaussian prior
learned across training devices; ``g`` has an inverse-gamma prior and is set
to its maximum a posteriori value on a grid (marginal likelihood of the
profile). Everything is vectorised over many devices at once.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Posterior", "solve_posteriors", "NOISE_GRID"]

#: Multipliers of the typical noise level tried for each device (log-spaced).
NOISE_GRID = np.exp(np.linspace(-4.0, 3.0, 29))


class Posterior:
    """Gaussian posteriors of many devices' latents.

    Attributes:
        mean: ``(B, D)`` posterior means.
        cov: ``(B, D, D)`` posterior covariances.
        noise: ``(B,)`` chosen noise multipliers ``g``.
    """

    __slots__ = ("mean", "cov", "noise")

    def __init__(self, mean: np.ndarray, cov: np.ndarray, noise: np.ndarray) -> None:
        self.mean = mean
        self.cov = cov
        self.noise = noise


def solve_posteriors(
    h: np.ndarray,
    y: np.ndarray,
    s2: np.ndarray,
    t: np.ndarray,
    mask: np.ndarray,
    prior_mean: np.ndarray,
    prior_cov: np.ndarray,
    *,
    noise_alpha: float,
    noise_beta: float,
    noise_grid: np.ndarray = NOISE_GRID,
    chunk: int = 512,
) -> Posterior:
    """Posteriors of ``B`` devices from padded observation batches.

    Args:
        h: ``(B, K, D)`` design rows (zero rows where ``mask`` is false).
        y: ``(B, K)`` observations (log metric values).
        s2: ``(B, K)`` base noise variance of each observation (scaled by ``g``).
        t: ``(B, K)`` extra, unscaled noise variance of each observation.
        mask: ``(B, K)`` which observations are real.
        prior_mean: ``(D,)`` prior mean of the latent.
        prior_cov: ``(D, D)`` prior covariance.
        noise_alpha, noise_beta: Inverse-gamma prior of ``g`` (shape, scale).
        noise_grid: Candidate values of ``g``.
        chunk: Devices per vectorised block (bounds memory).

    Returns:
        The :class:`Posterior` of each device.
    """
    b_total, _, d = h.shape
    grid = np.asarray(noise_grid, dtype=np.float64)
    prior_prec = np.linalg.inv(prior_cov)
    _, prior_logdet = np.linalg.slogdet(prior_cov)
    log_prior_g = -(noise_alpha + 1.0) * np.log(grid) - noise_beta / grid
    means = np.empty((b_total, d))
    covs = np.empty((b_total, d, d))
    noises = np.empty(b_total)
    for start in range(0, b_total, chunk):
        sl = slice(start, start + chunk)
        hb, yb, mb = h[sl], y[sl], mask[sl].astype(np.float64)
        resid = (yb - hb @ prior_mean) * mb
        # Noise variance of each observation for each g: (B, G, K); padded rows get 1 (weight 0).
        var = grid[None, :, None] * s2[sl][:, None, :] + t[sl][:, None, :]
        var = np.where(mb[:, None, :] > 0, var, 1.0)
        wgt = mb[:, None, :] / var
        prec = prior_prec + np.einsum("bki,bgk,bkj->bgij", hb, wgt, hb)
        u = np.einsum("bki,bgk,bk->bgi", hb, wgt, resid)
        chol = np.linalg.cholesky(prec)
        logdet_prec = 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(-1)
        sol = np.linalg.solve(prec, u[..., None])[..., 0]
        quad = np.einsum("bgk,bk->bg", wgt, resid**2) - np.einsum("bgi,bgi->bg", u, sol)
        logdet_k = (mb[:, None, :] * np.log(var)).sum(-1) + prior_logdet + logdet_prec
        score = -0.5 * (logdet_k + quad) + log_prior_g[None, :]
        best = np.argmax(score, axis=1)
        rows = np.arange(hb.shape[0])
        noises[sl] = grid[best]
        covs[sl] = np.linalg.inv(prec[rows, best])
        means[sl] = prior_mean + sol[rows, best]
    return Posterior(means, covs, noises)
