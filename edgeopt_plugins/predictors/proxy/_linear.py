"""Ridge regression with unpenalized columns and exact leave-one-out predictions.

Shared by the additive proxy predictor, the published adaptation (Lu et al.) and the
few-shot per-device baseline. Unpenalized columns (intercept, a proxy's prediction)
are partialled out first (Frisch-Waugh-Lovell), so one SVD of the penalized block
gives the whole regularisation path and the exact leave-one-out residuals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeopt_plugins.predictors._monotonicity import spearman

__all__ = ["ALPHAS", "RidgePath", "ridge_path", "select_alpha"]

#: Default penalty grid, relative to the mean squared singular value of the penalized block.
ALPHAS = tuple(float(a) for a in np.logspace(-6, 3, 19))


@dataclass
class RidgePath:
    """Ridge solutions of ``y ~ Q @ beta + Z @ b`` (penalty on ``b`` only) for several penalties.

    Attributes:
        alphas: Penalties actually used (absolute).
        b: ``(len(alphas), Z columns)`` penalized coefficients.
        beta: ``(len(alphas), Q columns)`` unpenalized coefficients.
        loo: ``(len(alphas), n)`` exact leave-one-out predictions of ``y``.
    """

    alphas: np.ndarray
    b: np.ndarray
    beta: np.ndarray
    loo: np.ndarray


def ridge_path(
    Z: np.ndarray, y: np.ndarray, *, Q: np.ndarray | None = None, alphas: tuple[float, ...] = ALPHAS, relative: bool = True
) -> RidgePath:
    """Ridge path with exact leave-one-out predictions.

    Args:
        Z: Penalized design ``(n, p)``.
        y: Targets ``(n,)``.
        Q: Unpenalized design ``(n, q)`` (default: an intercept column).
        alphas: Penalties; with ``relative`` they scale with ``mean(s**2)`` of ``Z``'s
            singular values, so one grid fits designs of any scale.
        relative: See ``alphas``.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> Z = rng.normal(size=(40, 3)); y = 2.0 + Z @ [1.0, -1.0, 0.5]
        >>> path = ridge_path(Z, y, alphas=(1e-9,))
        >>> np.round(path.b[0], 3).tolist(), round(float(path.beta[0, 0]), 3)
        ([1.0, -1.0, 0.5], 2.0)
    """
    Z = np.asarray(Z, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    n = y.shape[0]
    Q = np.ones((n, 1)) if Q is None else np.asarray(Q, dtype=np.float64).reshape(n, -1)
    # Orthonormal basis of the unpenalized columns and the annihilator applied to Z and y.
    qu, qs, _ = np.linalg.svd(Q, full_matrices=False)
    qu = qu[:, qs > 1e-10 * max(qs.max(initial=0.0), 1e-300)]
    MZ = Z - qu @ (qu.T @ Z)
    My = y - qu @ (qu.T @ y)
    hq = (qu**2).sum(axis=1)
    u, s, vt = np.linalg.svd(MZ, full_matrices=False)
    keep = s > 1e-10 * max(s.max(initial=0.0), 1e-300)
    u, s, vt = u[:, keep], s[keep], vt[keep]
    scale = float(np.mean(s**2)) if relative and s.size else 1.0
    used = np.array([a * scale for a in alphas], dtype=np.float64)
    uty = u.T @ My
    b_all, beta_all, loo_all = [], [], []
    q_pinv = np.linalg.pinv(Q)
    for alpha in used:
        shrink = s**2 / (s**2 + alpha) if s.size else s
        b = vt.T @ ((s / (s**2 + alpha)) * uty) if s.size else np.zeros(Z.shape[1])
        fitted_pen = u @ (shrink * uty) if s.size else np.zeros(n)
        beta = q_pinv @ (y - Z @ b)
        fitted = (y - My) + fitted_pen
        h = hq + ((u**2) @ shrink if s.size else 0.0)
        h = np.minimum(h, 1.0 - 1e-9)
        loo = y - (y - fitted) / (1.0 - h)
        b_all.append(b)
        beta_all.append(beta)
        loo_all.append(loo)
    return RidgePath(used, np.array(b_all), np.array(beta_all), np.array(loo_all))


def select_alpha(path: RidgePath, y: np.ndarray, *, criterion: str = "spearman") -> int:
    """Index of the penalty whose leave-one-out predictions are best.

    ``"spearman"`` ranks by the rank correlation of the pooled leave-one-out predictions
    (ties broken by their squared error, then by the larger penalty); ``"mse"`` by the
    squared error alone.
    """
    y = np.asarray(y, dtype=np.float64)
    mse = ((path.loo - y[None, :]) ** 2).mean(axis=1)
    if criterion == "mse":
        score = -mse
        return int(np.flatnonzero(score >= score.max() - 1e-12 * abs(score.max()))[-1])
    rho = np.array([spearman(p, y) for p in path.loo])
    rho = np.where(np.isfinite(rho), rho, -1.0)
    order = np.lexsort((-np.arange(len(rho)), mse, -np.round(rho, 9)))
    return int(order[0])
