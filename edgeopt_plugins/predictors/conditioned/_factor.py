"""Low-rank structure of a metric (log latency or log energy) across devices.

``log y[a, d] = b_d + sum_r U[a, r] V[d, r] + e[a, d]``: every device ``d`` has
a log-scale ``b_d`` and loadings ``V[d]`` on a few architecture factors
``U[a]`` shared by all devices (a truncated SVD of the device-centred
log-metric matrix, with soft-imputation of unmeasured entries). The factors of
the architectures in the training tables are stored exactly; a small MLP (the
*architecture tower*) maps any other architecture's encoding to its factors.

``e`` is heteroscedastic: its variance is ``s2_d * w(a)`` where ``w(a)``
(learned per architecture, from residuals of devices *held out* of the
factorisation) says which architectures new devices disagree on, and ``s2_d``
is the device's own noise level, unknown for a new device (an inverse-gamma
prior over training devices; each profile picks its own value).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgeopt_plugins.exceptions import InputError, ModelFormatError
from edgeopt_plugins.predictors._archkeys import ArchKeyIndex
from edgeopt_plugins.predictors._mlp import NumpyMLP, fit_regressor
from edgeopt_plugins.spaces import SearchSpace

__all__ = ["MetricFactors", "FactorBasis", "fit_basis", "fit_metric_factors", "device_folds", "near_copy_groups"]

_W_FLOOR, _W_CAP = 0.05, 25.0


def device_folds(n_devices: int, n_folds: int, seed: int, groups: np.ndarray | None = None) -> list[np.ndarray]:
    """Random partition of device positions into ``min(n_folds, n_devices)`` folds.

    With ``groups`` (a label per device), devices sharing a label land in one fold: a held-out
    device never has a near copy among the devices a fold model is fitted on, so what is
    measured on it is what a new hardware family will see.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n_devices) if groups is None else np.asarray(groups)
    uniq = rng.permutation(np.unique(labels))
    k = max(2, min(n_folds, uniq.size))
    members = {g: np.flatnonzero(labels == g) for g in uniq}
    folds: list[list[int]] = [[] for _ in range(k)]
    for g in sorted(uniq, key=lambda g: -members[g].size):  # largest groups first, each to the smallest fold
        folds[int(np.argmin([len(f) for f in folds]))].extend(members[g].tolist())
    return [np.sort(np.array(f, dtype=np.int64)) for f in folds if f]


def near_copy_groups(logy: np.ndarray, threshold: float = 0.95) -> np.ndarray:
    """A group label per device (column): devices whose log-metrics correlate at ``threshold`` or
    more over their common architectures are linked, and linked devices share a label."""
    n = logy.shape[1]
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a in range(n):
        for b in range(a + 1, n):
            ok = ~np.isnan(logy[:, a]) & ~np.isnan(logy[:, b])
            if ok.sum() < 3:
                continue
            if np.corrcoef(logy[ok, a], logy[ok, b])[0, 1] >= threshold:
                parent[root(a)] = root(b)
    return np.array([root(i) for i in range(n)], dtype=np.int64)


def _impute(logy: np.ndarray, rank: int, iters: int = 15) -> np.ndarray:
    """Fill NaNs by iterated low-rank reconstruction (soft-impute, hard rank)."""
    miss = np.isnan(logy)
    if not miss.any():
        return logy
    col = np.nanmean(logy, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows no device measured: filled from the columns
        row = np.nanmean(logy - col, axis=1)
    row = np.where(np.isnan(row), 0.0, row)
    filled = np.where(miss, col[None, :] + row[:, None], logy)
    r = max(1, min(rank, min(filled.shape) - 1))
    for _ in range(iters):
        b = filled.mean(axis=0)
        u, s, vt = _thin_svd(filled - b)
        recon = b + (u[:, :r] * s[:r]) @ vt[:r]
        filled = np.where(miss, recon, logy)
    return filled


@dataclass
class FactorBasis:
    """A truncated SVD of a complete (imputed) log-metric matrix.

    Attributes:
        factors: ``(n_archs, max_rank)`` architecture factors (unit mean square).
        latents: ``(n_devices, 1 + max_rank)`` device latents ``[b_d, V[d]]``.
        filled: The imputed matrix that was factorised.
    """

    factors: np.ndarray
    latents: np.ndarray
    filled: np.ndarray

    def design(self, rank: int) -> np.ndarray:
        """``[1, U[:, :rank]]`` for every architecture."""
        return np.column_stack([np.ones(self.factors.shape[0]), self.factors[:, :rank]])


def _thin_svd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``u, s, vt`` of a tall matrix via the eigendecomposition of its small Gram matrix."""
    n, m = x.shape
    if n < 4 * m:
        return np.linalg.svd(x, full_matrices=False)
    evals, evecs = np.linalg.eigh(x.T @ x)
    order = np.argsort(evals)[::-1]
    s = np.sqrt(np.maximum(evals[order], 0.0))
    v = evecs[:, order]
    keep = s > s[0] * 1e-9 if s.size and s[0] > 0 else np.zeros(s.size, dtype=bool)
    u = np.zeros((n, m))
    u[:, keep] = (x @ v[:, keep]) / s[keep]
    return u, s, v.T


def fit_basis(logy: np.ndarray, max_rank: int) -> FactorBasis:
    """Device-centred truncated SVD of ``logy`` (``n_archs x n_devices``, NaN allowed)."""
    filled = _impute(logy, max_rank)
    n = filled.shape[0]
    b = filled.mean(axis=0)
    u, s, vt = _thin_svd(filled - b)
    r = min(max_rank, s.size)
    factors = u[:, :r] * np.sqrt(n)
    loadings = vt[:r].T * (s[:r] / np.sqrt(n))
    if r < max_rank:  # fewer devices than the rank asked for: pad with null factors
        factors = np.column_stack([factors, np.zeros((n, max_rank - r))])
        loadings = np.column_stack([loadings, np.zeros((loadings.shape[0], max_rank - r))])
    return FactorBasis(factors, np.column_stack([b, loadings]), filled)


def _normal_solve(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares through the (tiny) normal equations, with a whisper of ridge for null factors."""
    gram = x.T @ x
    gram = gram + 1e-9 * np.trace(gram) / gram.shape[0] * np.eye(gram.shape[0])
    return np.linalg.solve(gram, x.T @ y)


def held_out_residuals(logy: np.ndarray, rank: int, folds: list[np.ndarray], bases: list[FactorBasis] | None = None
                       ) -> np.ndarray:
    """Residuals of each device's measured entries from the subspace fitted without its fold.

    The device's latent is its least-squares fit on all its measurements (an
    oracle profile): what remains is what no profile can explain.
    """
    out = np.full(logy.shape, np.nan)
    for i, fold in enumerate(folds):
        rest = np.setdiff1d(np.arange(logy.shape[1]), fold)
        basis = bases[i] if bases is not None else fit_basis(logy[:, rest], rank)
        design = basis.design(rank)
        complete = [d for d in fold if not np.isnan(logy[:, d]).any()]
        if complete:
            theta = _normal_solve(design, logy[:, complete])
            out[:, complete] = logy[:, complete] - design @ theta
        for d in fold:
            if d in complete:
                continue
            obs = ~np.isnan(logy[:, d])
            theta = _normal_solve(design[obs], logy[obs, d])
            out[obs, d] = logy[obs, d] - design[obs] @ theta
    return out


def noise_structure(resid: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """Per-architecture scale ``w``, typical variance ``s2`` and the inverse-gamma prior of devices' multipliers.

    Returns:
        ``(w, s2, alpha, beta)``: ``w`` has mean 1; a device's noise variance is
        ``g * s2 * w(a)`` with ``g ~ InvGamma(alpha, beta)`` (mean ~1).
    """
    sq = resid**2
    per_device = np.nanmean(sq, axis=0)
    per_device = np.where(per_device > 0, per_device, np.nanmax(per_device[per_device > 0], initial=1e-4))
    w = np.nanmean(sq / per_device, axis=1)
    w = np.where(np.isnan(w), 1.0, w)
    w = np.clip(w / w.mean(), _W_FLOOR, _W_CAP)
    w = w / w.mean()
    per_device = np.nanmean(sq / w[:, None], axis=0)
    per_device = np.maximum(per_device, 1e-8)
    s2 = float(np.exp(np.mean(np.log(per_device))))
    g = per_device / s2
    mean, var = float(g.mean()), float(g.var())
    alpha = mean**2 / var + 2.0 if var > 1e-12 else 10.0
    alpha = float(np.clip(alpha, 2.05, 50.0))
    beta = mean * (alpha - 1.0)
    return w, s2, alpha, float(beta)


@dataclass
class MetricFactors:
    """Fitted low-rank structure of one metric.

    Attributes:
        metric: ``"latency_ms"`` or ``"energy_mj"``.
        rank: Number of architecture factors.
        table: Index of the training architectures.
        table_design: ``(n_archs, rank + 1)`` exact ``[1, factors]`` of the training architectures.
        table_logw: ``(n_archs,)`` log of the per-architecture noise scale.
        tower: Architecture encoding -> ``[factors, log w]`` for other architectures (or ``None``).
        tower_var: Extra log-variance of an architecture served by the tower.
        noise_s2: Typical noise variance ``s2``.
        noise_alpha, noise_beta: Inverse-gamma prior of a device's noise multiplier.
        device_latents: ``(n_devices, rank + 1)`` latents of the training devices.
    """

    metric: str
    rank: int
    table: ArchKeyIndex
    table_design: np.ndarray
    table_logw: np.ndarray
    tower: NumpyMLP | None
    tower_var: float
    noise_s2: float
    noise_alpha: float
    noise_beta: float
    device_latents: np.ndarray

    @property
    def dim(self) -> int:
        return self.rank + 1

    def features(self, space: SearchSpace, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(design (n, rank+1), s2 (n,), extra variance t (n,))`` of any architectures.

        Table architectures get their exact factors (``t = 0``); others get the
        tower's factors and ``t = tower_var``.

        Raises:
            InputError: if some architecture is outside the table and there is no tower.
        """
        idx = np.asarray(indices, dtype=np.int64)
        pos = self.table.positions(idx)
        design = np.empty((idx.shape[0], self.dim))
        logw = np.empty(idx.shape[0])
        hit = pos >= 0
        design[hit] = self.table_design[pos[hit]]
        logw[hit] = self.table_logw[pos[hit]]
        extra = np.zeros(idx.shape[0])
        if (~hit).any():
            if self.tower is None:
                raise InputError(
                    f"{space.name}: {int((~hit).sum())} architecture(s) are not in the training tables and this "
                    "model has no architecture network (fit it with tower_epochs > 0)"
                )
            out = self.tower(space.encode(idx[~hit])).astype(np.float64)
            design[~hit, 0] = 1.0
            design[~hit, 1:] = out[:, : self.rank]
            logw[~hit] = np.clip(out[:, self.rank], np.log(_W_FLOOR), np.log(_W_CAP))
            extra[~hit] = self.tower_var
        return design, self.noise_s2 * np.exp(logw), extra

    # ----------------------------------------------------------------- persistence
    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        out = {
            f"{prefix}.table_indices": self.table.indices.astype(np.int32),
            f"{prefix}.table_design": self.table_design.astype(np.float64),
            f"{prefix}.table_logw": self.table_logw.astype(np.float64),
            f"{prefix}.device_latents": self.device_latents.astype(np.float64),
        }
        if self.tower is not None:
            out.update(self.tower.to_arrays(f"{prefix}.tower"))
        return out

    def to_json(self) -> dict:
        return {
            "metric": self.metric,
            "rank": self.rank,
            "tower": self.tower is not None,
            "tower_var": self.tower_var,
            "noise_s2": self.noise_s2,
            "noise_alpha": self.noise_alpha,
            "noise_beta": self.noise_beta,
        }

    @classmethod
    def from_saved(cls, meta: dict, arrays: dict[str, np.ndarray], prefix: str, space: SearchSpace) -> MetricFactors:
        try:
            rank = int(meta["rank"])
            indices = np.asarray(arrays[f"{prefix}.table_indices"], dtype=np.int64)
            design = np.asarray(arrays[f"{prefix}.table_design"], dtype=np.float64)
            logw = np.asarray(arrays[f"{prefix}.table_logw"], dtype=np.float64)
            latents = np.asarray(arrays[f"{prefix}.device_latents"], dtype=np.float64)
            tower = NumpyMLP.from_arrays(arrays, f"{prefix}.tower") if meta["tower"] else None
            floats = [float(meta[k]) for k in ("tower_var", "noise_s2", "noise_alpha", "noise_beta")]
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFormatError(f"metric {prefix!r}: missing or malformed entry ({err})") from None
        n = indices.shape[0]
        if (indices.ndim != 2 or indices.shape[1] != len(space.decisions) or design.shape != (n, rank + 1)
                or logw.shape != (n,) or latents.ndim != 2 or latents.shape[1] != rank + 1):
            raise ModelFormatError(f"metric {prefix!r}: tensor shapes do not match rank {rank} and space {space.name}")
        if tower is not None and (tower.n_out != rank + 1 or tower.n_in != space.encode(indices[:1]).shape[1]):
            raise ModelFormatError(f"metric {prefix!r}: architecture network does not match the space")
        try:
            table = ArchKeyIndex(space.to_indices(indices), space.cardinalities)
        except InputError as err:
            raise ModelFormatError(f"metric {prefix!r}: bad architecture table ({err})") from None
        return cls(str(meta["metric"]), rank, table, design, logw, tower, *floats, latents)


def fit_metric_factors(
    space: SearchSpace,
    indices: np.ndarray,
    values: np.ndarray,
    *,
    metric: str,
    rank: int,
    n_folds: int = 5,
    seed: int = 0,
    basis: FactorBasis | None = None,
    fold_bases: list[FactorBasis] | None = None,
    folds: list[np.ndarray] | None = None,
    tower_epochs: int = 0,
    tower_hidden: tuple[int, ...] = (128, 128),
    on_epoch: Callable[[int], None] | None = None,
) -> MetricFactors:
    """Fit :class:`MetricFactors` to a matrix of positive values.

    Args:
        space: The search space.
        indices: ``(n_archs, n_decisions)`` architectures.
        values: ``(n_archs, n_devices)`` metric values, NaN where unmeasured.
        metric: Name of the metric.
        rank: Number of factors.
        n_folds: Device folds used to measure held-out residuals.
        seed: Seed of the folds and of the tower.
        basis, fold_bases, folds: Precomputed SVDs to reuse (rank selection shares them).
        tower_epochs: Epochs of the architecture tower (0: no tower).
        tower_hidden: Hidden sizes of the tower.
        on_epoch: Progress callback of the tower training.
    """
    logy = np.log(np.asarray(values, dtype=np.float64))
    m = logy.shape[1]
    if m < 2:
        raise InputError(f"{metric}: a conditioned predictor needs at least 2 training devices, got {m}")
    rank = int(min(rank, m - 1))
    basis = basis if basis is not None else fit_basis(logy, rank)
    folds = folds if folds is not None else device_folds(m, n_folds, seed)
    resid = held_out_residuals(logy, rank, folds, fold_bases)
    w, s2, alpha, beta = noise_structure(resid)
    design = basis.design(rank)
    latents = basis.latents[:, : rank + 1]
    tower, tower_var = None, 0.0
    if tower_epochs > 0:
        tower, tower_var = _fit_tower(space, indices, design[:, 1:], np.log(w), latents, epochs=tower_epochs,
                                      hidden=tower_hidden, seed=seed, on_epoch=on_epoch)
    return MetricFactors(metric, rank, ArchKeyIndex(indices, space.cardinalities), design, np.log(w), tower,
                         tower_var, s2, alpha, beta, latents)


def _fit_tower(space: SearchSpace, indices: np.ndarray, factors: np.ndarray, logw: np.ndarray, latents: np.ndarray,
               *, epochs: int, hidden: tuple[int, ...], seed: int, on_epoch: Callable[[int], None] | None
               ) -> tuple[NumpyMLP, float]:
    """Architecture encoding -> [factors, log w]; the extra variance is measured on 10% held-out archs."""
    x = space.encode(indices)
    y = np.column_stack([factors, logw])
    n = x.shape[0]
    perm = np.random.default_rng(seed + 17).permutation(n)
    n_val = max(1, n // 10) if n >= 20 else 0
    val, train = perm[:n_val], perm[n_val:]
    batch = int(np.clip(n // 40, 64, 1024))
    tower = fit_regressor(x[train], y[train], hidden=hidden, epochs=epochs, batch_size=batch, seed=seed,
                          on_epoch=on_epoch)
    if n_val == 0:
        return tower, 0.0
    err = tower(x[val])[:, : factors.shape[1]] - factors[val]
    projected = err @ latents[:, 1:].T  # log-metric error on every training device
    return tower, float(np.mean(projected**2))
