"""Transfer Gaussian process: a posterior for a target device whose prior comes from other devices.

Both approaches share this model. In the units of a transform of the target's latency::

    y(x) = c + s0 * ( h(x) @ phi + f(x) + noise )
    phi  ~ N(anchor_j, diag(v))             what transfers from other devices
    f    ~ GP(0, unit * sum_b gamma_b K_b)  what no other device explains (``_kernels``)
    noise ~ N(0, unit * nu * shape(x) / w(x))

``h(x)`` is the *transferred basis*: approach 1 uses the proxies' latencies (their mean and
how each proxy deviates from it), approach 2 the device-conditioned predictor's
architecture factors. ``anchor_j`` are prior means ("a new mix of the proxies", "a near copy
of proxy d"...). The offset ``c`` has a flat prior and is integrated out exactly (the
likelihood uses the ``k - 1`` contrasts of the points); the scale ``s0`` is matched to the
spread of the points, so the prior needs no absolute scale. ``w`` down-weights outlying
points (Student-t noise, by iterated reweighting).

The hyper-parameters (which anchor, ``nu``, each ``gamma_b``) form a grid, and the posterior
is the average of the grid's components weighted by their evidence (marginal likelihood) on
the target's own points: with few points the simplest explanation wins (the transferred
prior), and as points accumulate the kernels take over where the prior is wrong, so the
prediction converges to what the device's own data support.

Every group of components sharing a covariance is solved as one batched ``(k-1) x (k-1)``
Cholesky factorisation.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import cho_solve, solve_triangular

from edgeopt_plugins.predictors._kernels import ArchKernels, KernelFeatures

__all__ = ["AnchorSet", "Points", "TransferGrid", "TransferPosterior", "fit_transfer"]

#: Degrees of freedom of the Student-t noise used to down-weight outlying measurements.
_T_DOF = 4.0
#: A point is an outlier when its leave-one-out prediction misses it by this many standard deviations.
_OUTLIER_Z = 4.0
#: ... or this many, both leave-one-out and against the residuals' median absolute deviation.
_BULK_Z = 3.0
_ROBUST_ITERATIONS = 2
#: Components below this share of the largest weight are dropped from predictions.
_NEGLIGIBLE = 1e-6


@dataclass(frozen=True)
class AnchorSet:
    """Prior means of the transferred coefficients that share one prior variance.

    Attributes:
        means: ``(J, P)`` prior means.
        var: ``(P,)`` prior variances (diagonal).
        log_prior: ``(J,)`` log prior probabilities of the anchors.
    """

    means: np.ndarray
    var: np.ndarray
    log_prior: np.ndarray


@dataclass(frozen=True)
class TransferGrid:
    """The hyper-parameter grid that the posterior averages over.

    Attributes:
        noise: Noise variance in units of the device spread.
        noise_levels: Multiples of ``noise`` (phones that report whole milliseconds are far
            noisier than GPUs).
        scales: Prior variance of each kernel block, in units of the device spread (``0``:
            the block is off).
    """

    noise: float = 0.1
    noise_levels: tuple[float, ...] = (0.1, 1.0, 10.0)
    scales: Mapping[str, tuple[float, ...]] = (  # type: ignore[assignment]
        ("summary", (0.0, 1.0, 10.0)), ("additive", (0.0, 1.0, 10.0)), ("pairwise", (0.0, 1.0)))

    def __post_init__(self) -> None:
        object.__setattr__(self, "scales", dict(self.scales))

    def groups(self, n_sets: int, blocks: Sequence[str]) -> np.ndarray:
        """Every component group: rows ``[anchor set, noise level, gamma per block...]``."""
        scales = [self.scales.get(b, (0.0,)) for b in blocks]
        rows = [(s, nl, *g) for s in range(n_sets) for nl in self.noise_levels for g in itertools.product(*scales)]
        return np.array(rows, dtype=np.float64).reshape(len(rows), 2 + len(blocks))


@dataclass(frozen=True)
class Points:
    """Architectures as the model sees them.

    Attributes:
        basis: Transferred basis ``h(x)``, ``(n, P)``.
        feats: Kernel inputs (``ArchKernels.features``).
    """

    basis: np.ndarray
    feats: KernelFeatures

    def __len__(self) -> int:
        return int(self.basis.shape[0])

    def take(self, rows: np.ndarray) -> Points:
        return Points(self.basis[rows], self.feats.take(rows))


def _helmert_scale(k: int) -> np.ndarray:
    i = np.arange(1, k, dtype=np.float64)
    return 1.0 / np.sqrt(i * (i + 1.0))


def _contrast_t(a: np.ndarray) -> np.ndarray:
    """``Q^T a`` for the Helmert contrasts ``Q`` (``k x (k-1)``, orthonormal, orthogonal to the ones
    vector: column ``i`` is ``(1, ..., 1, -i, 0, ...) / sqrt(i (i+1))``), in ``O(k)`` per column by
    cumulative sums instead of a dense product. Any orthonormal contrast basis gives the same
    evidence and posterior; this one needs no ``k x k`` matrix."""
    k = a.shape[0]
    i = np.arange(1, k, dtype=np.float64).reshape((-1,) + (1,) * (a.ndim - 1))
    scale = _helmert_scale(k).reshape(i.shape)
    return (np.cumsum(a, axis=0)[:-1] - i * a[1:]) * scale


def _contrast(a: np.ndarray) -> np.ndarray:
    """``Q a`` for the contrasts of :func:`_contrast_t` (``a`` has ``k-1`` rows; the result ``k``)."""
    k = a.shape[0] + 1
    shape = (-1,) + (1,) * (a.ndim - 1)
    b = a * _helmert_scale(k).reshape(shape)
    tail = np.cumsum(b[::-1], axis=0)[::-1]  # tail[j] = sum of b[j:]
    out = np.zeros((k,) + a.shape[1:])
    out[:-1] = tail
    out[1:] -= np.arange(1, k, dtype=np.float64).reshape(shape) * b
    return out


def _project(m: np.ndarray) -> np.ndarray:
    """``Q^T m Q`` of a symmetric ``k x k`` matrix."""
    return _contrast_t(_contrast_t(m).T)


class TransferPosterior:
    """The fitted model (see the module doc). Built by :func:`fit_transfer`.

    Attributes:
        log_evidence: Log marginal likelihood of the points, summed over the components.
        weights: Posterior probability of each retained component.
        groups: The component groups (rows as in :meth:`TransferGrid.groups`).
    """

    def __init__(self, kernels: ArchKernels, anchors: Sequence[AnchorSet], blocks: tuple[str, ...],
                 unit: float, noise: float, X: Points | None, y: np.ndarray | None,
                 noise_shape: np.ndarray | None, groups: np.ndarray, point_weights: np.ndarray | None,
                 shared: dict[str, Any] | None = None) -> None:
        self.kernels, self.anchors, self.blocks = kernels, list(anchors), blocks
        self.unit, self.noise, self.X, self.y = float(unit), float(noise), X, y
        self.groups = groups
        # What depends on the architectures alone (their kernel matrices, projected): shared by
        # the robust refits and by the other transforms of the same measurements
        self._shared: dict[str, Any] = {} if shared is None else shared
        if X is not None and "grams" not in self._shared:
            self._shared["grams"] = kernels.cross(X.feats, X.feats)
        # kernel matrices by point-set pair: the measured points' always, others while remembering()
        self._crosses: list[tuple[KernelFeatures, KernelFeatures, dict[str, np.ndarray]]] = (
            [] if X is None else [(X.feats, X.feats, self._shared["grams"])])
        self._keep, self._remember = len(self._crosses), False
        k = 0 if y is None else len(y)
        self.k = k
        shape = np.ones(k) if noise_shape is None else np.asarray(noise_shape, dtype=np.float64)
        self._noise_diag = shape / (np.ones(k) if point_weights is None else point_weights)
        if k < 2 or X is None or y is None:
            self._fit_prior()
        else:
            self._fit_points(X, y)

    # ----------------------------------------------------------------- fitting
    def _fit_prior(self) -> None:
        """No data: the components keep their prior weights, ``s0 = 1``, ``c = 0``."""
        comp_group, comp_anchor, lw = [], [], []
        counts = np.bincount(self.groups[:, 0].astype(int), minlength=len(self.anchors))
        for g, row in enumerate(self.groups):
            s = int(row[0])
            for j, lp in enumerate(self.anchors[s].log_prior):
                comp_group.append(g)
                comp_anchor.append(j)
                lw.append(lp - np.log(counts[s]))
        self._set_components(np.array(comp_group), np.array(comp_anchor), np.array(lw), np.ones(len(lw)),
                             np.zeros((len(lw), 0)))
        self.log_evidence = 0.0
        self._chol = np.zeros((len(self.groups), 0, 0))

    def _fit_points(self, X: Points, y: np.ndarray) -> None:
        k = len(y)
        yq = _contrast_t(y)
        ss = float(yq @ yq)
        grams = self._shared["grams"]
        projected = self._shared.setdefault("projected", {})
        for b in self.blocks:
            if b not in projected:
                projected[b] = _project(grams[b])
        bq = _contrast_t(X.basis)
        terms = [(bq * a.var) @ bq.T for a in self.anchors]
        terms += [self.unit * projected[b] for b in self.blocks]
        terms.append(self.noise * self.unit * _project(np.diag(self._noise_diag)))
        coef = np.zeros((len(self.groups), len(terms)))
        coef[np.arange(len(self.groups)), self.groups[:, 0].astype(int)] = 1.0
        coef[:, len(self.anchors):len(self.anchors) + len(self.blocks)] = self.groups[:, 2:]
        coef[:, -1] = self.groups[:, 1]
        kq = (coef @ np.stack(terms).reshape(len(terms), -1)).reshape(len(self.groups), k - 1, k - 1)
        chol = np.linalg.cholesky(kq)
        logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        trace = np.trace(kq, axis1=1, axis2=2)
        counts = np.bincount(self.groups[:, 0].astype(int), minlength=len(self.anchors))
        comp_group, comp_anchor, lws, s0s, alphas = [], [], [], [], []
        for s, anchor in enumerate(self.anchors):
            rows = np.flatnonzero(self.groups[:, 0] == s)
            if rows.size == 0:
                continue
            mq = anchor.means @ bq.T  # (J, k-1)
            expected = trace[rows][:, None] + (mq**2).sum(axis=1)[None, :]  # (G_s, J)
            s0 = np.sqrt(ss / expected) if ss > 0 else np.ones_like(expected)
            resid = yq[None, :, None] / s0[:, None, :] - mq.T[None, :, :]  # (G_s, k-1, J)
            w = np.empty_like(resid)
            alpha_q = np.empty_like(resid)
            for n, g in enumerate(rows):
                w[n] = solve_triangular(chol[g], resid[n], lower=True, check_finite=False)
                alpha_q[n] = solve_triangular(chol[g], w[n], lower=True, trans="T", check_finite=False)
            maha = (w**2).sum(axis=1)  # (G_s, J)
            log_ev = (-0.5 * (maha + logdet[rows][:, None] + (k - 1) * np.log(2 * np.pi))
                      - (k - 1) * np.log(s0) + anchor.log_prior[None, :] - np.log(counts[s]))
            gg, jj = np.meshgrid(rows, np.arange(len(anchor.log_prior)), indexing="ij")
            comp_group.append(gg.ravel())
            comp_anchor.append(jj.ravel())
            lws.append(log_ev.ravel())
            s0s.append(s0.ravel())
            alphas.append(np.swapaxes(_contrast(np.swapaxes(alpha_q, 0, 1)), 0, 1).swapaxes(1, 2).reshape(-1, k))
        lw = np.concatenate(lws)
        self.log_evidence = float(np.logaddexp.reduce(lw))
        self._chol = chol
        self._set_components(np.concatenate(comp_group), np.concatenate(comp_anchor), lw, np.concatenate(s0s),
                             np.vstack(alphas))

    def _set_components(self, group: np.ndarray, anchor: np.ndarray, lw: np.ndarray, s0: np.ndarray,
                        alpha: np.ndarray) -> None:
        """Keep the components that matter and fold them into one coefficient per basis column and block."""
        w = np.exp(lw - lw.max())
        keep = np.flatnonzero(w >= _NEGLIGIBLE * w.max())
        w = w[keep] / w[keep].sum()
        self.comp_group, self.comp_anchor, self.comp_s0 = group[keep], anchor[keep], s0[keep]
        self.comp_alpha, self.weights = alpha[keep], w
        P = self.anchors[0].means.shape[1]
        coef = np.zeros(P)
        beta = {b: np.zeros(self.k) for b in self.blocks}
        for i in range(len(w)):
            g, j, s0 = self.comp_group[i], self.comp_anchor[i], self.comp_s0[i]
            a = self.anchors[int(self.groups[g, 0])]
            ws = w[i] * s0
            coef += ws * a.means[j]
            if self.k >= 2:
                assert self.X is not None
                coef += ws * a.var * (self.X.basis.T @ self.comp_alpha[i])
                for bi, b in enumerate(self.blocks):
                    beta[b] += ws * self.unit * self.groups[g, 2 + bi] * self.comp_alpha[i]
        self._coef, self._beta = coef, beta
        self.offset = 0.0
        if self.k >= 2:
            assert self.X is not None and self.y is not None
            self.offset = float(np.mean(self.y - self._latent_mean(self.X)))

    # ----------------------------------------------------------------- prediction
    def _latent_mean(self, pts: Points) -> np.ndarray:
        out = pts.basis @ self._coef
        if self.k >= 2 and any(np.any(v) for v in self._beta.values()):
            assert self.X is not None
            grams = self._cross(pts.feats, self.X.feats)
            for b, beta in self._beta.items():
                out = out + grams[b] @ beta
        return out

    def mean(self, pts: Points) -> np.ndarray:
        """Posterior mean of the (transformed) latency at ``pts``."""
        return self._latent_mean(pts) + self.offset

    def fitted(self) -> np.ndarray:
        """Posterior mean at the measured points."""
        assert self.X is not None
        return self.mean(self.X)

    def top_components(self, n: int = 8, mass: float = 0.99) -> np.ndarray:
        """Positions of the heaviest components covering ``mass`` of the weight (at most ``n``)."""
        order = np.argsort(-self.weights)
        cum = np.cumsum(self.weights[order])
        return order[: max(1, min(n, int(np.searchsorted(cum, mass)) + 1))]

    def significant_groups(self, mass: float = 0.999, most: int = 8) -> np.ndarray:
        """The heaviest component groups, together holding ``mass`` of the weight (at most ``most``):
        what a cheap refit on a few more points needs."""
        weight = np.bincount(self.comp_group, weights=self.weights, minlength=len(self.groups))
        order = np.argsort(-weight)
        n = int(np.searchsorted(np.cumsum(weight[order]), mass * weight.sum())) + 1
        return self.groups[np.sort(order[: max(1, min(n, most))])]

    def _prior_cov(self, i: int, a: Points, b: Points) -> np.ndarray:
        """Prior covariance (latent ``h @ phi + f``, units of ``s0^2``) of component ``i`` between two point sets."""
        g = self.comp_group[i]
        var = self.anchors[int(self.groups[g, 0])].var
        out = (a.basis * var) @ b.basis.T
        grams = self._cross(a.feats, b.feats)
        for bi, blk in enumerate(self.blocks):
            gamma = self.groups[g, 2 + bi]
            if gamma:
                out = out + self.unit * gamma * grams[blk]
        return out

    def _cross(self, a: KernelFeatures, b: KernelFeatures) -> dict[str, np.ndarray]:
        """``kernels.cross(a, b)``, looked up among the remembered pairs (either way round)."""
        for fa, fb, grams in self._crosses:
            if fa is a and fb is b:
                return grams
            if fa is b and fb is a:
                return {blk: m.T for blk, m in grams.items()}
        grams = self.kernels.cross(a, b)
        if self._remember:
            self._crosses.append((a, b, grams))
        return grams

    @contextlib.contextmanager
    def remembering(self) -> Iterator[None]:
        """Keep the kernel matrices computed inside the block (a loop over components asks each
        component for the same point sets); they are dropped at its end, so a model kept alive
        does not hold matrices of every candidate pool it was asked about."""
        outer, self._remember = self._remember, True
        try:
            yield
        finally:
            self._remember = outer
            if not outer:
                del self._crosses[self._keep:]

    def _prior_var(self, i: int, a: Points) -> np.ndarray:
        g = self.comp_group[i]
        var = self.anchors[int(self.groups[g, 0])].var
        out = ((a.basis**2) * var).sum(axis=1)
        diag = self.kernels.diagonal(a.feats)
        for bi, blk in enumerate(self.blocks):
            out = out + self.unit * self.groups[g, 2 + bi] * diag[blk]
        return out

    def noise_var(self, i: int) -> float:
        """Noise variance of component ``i`` (units of ``s0^2``)."""
        return self.noise * self.unit * float(self.groups[self.comp_group[i], 1])

    def _conditioning(self, i: int, a: Points) -> np.ndarray | None:
        """``L^-1 Q^T k(X, a)``: what the measured points explain of the prior at ``a``."""
        if self.k < 2:
            return None
        assert self.X is not None
        return solve_triangular(self._chol[self.comp_group[i]], _contrast_t(self._prior_cov(i, self.X, a)), lower=True,
                                check_finite=False)

    def component_mean(self, i: int, pts: Points) -> np.ndarray:
        """Posterior mean of component ``i`` in the latent units (without ``c`` and ``s0``)."""
        g, j = self.comp_group[i], self.comp_anchor[i]
        out = pts.basis @ self.anchors[int(self.groups[g, 0])].means[j]
        if self.k >= 2:
            assert self.X is not None
            out = out + self._prior_cov(i, pts, self.X) @ self.comp_alpha[i]
        return out

    def component_cov(self, i: int, a: Points, b: Points | None = None) -> np.ndarray:
        """Posterior covariance of the latent of component ``i`` (units of ``s0^2``, offset-free)."""
        b = a if b is None else b
        out = self._prior_cov(i, a, b)
        va = self._conditioning(i, a)
        if va is not None:
            vb = va if b is a else self._conditioning(i, b)
            assert vb is not None
            out = out - va.T @ vb
        return out

    def component_var(self, i: int, a: Points) -> np.ndarray:
        """Diagonal of :meth:`component_cov` (cheaper)."""
        out = self._prior_var(i, a)
        va = self._conditioning(i, a)
        if va is not None:
            out = out - (va**2).sum(axis=0)
        return np.maximum(out, 0.0)

    def predictive_sd(self, pts: Points) -> np.ndarray:
        """Posterior standard deviation of a new measurement at ``pts``: the mixture of the heaviest
        components, each with the uncertainty of the offset (universal kriging with a flat mean)."""
        top = self.top_components()
        w = self.weights[top] / self.weights[top].sum()
        means, second = np.zeros(len(pts)), np.zeros(len(pts))
        with self.remembering():
            for wi, i in zip(w, top):
                s0 = self.comp_s0[i]
                m = s0 * self.component_mean(int(i), pts)
                var = self._prior_var(int(i), pts) + self.noise_var(int(i))
                if self.k >= 2:
                    assert self.X is not None
                    K = self._prior_cov(int(i), self.X, self.X) + self.noise_var(int(i)) * np.diag(self._noise_diag)
                    lower = np.linalg.cholesky(K)
                    v = np.linalg.solve(lower, self._prior_cov(int(i), self.X, pts))
                    u = np.linalg.solve(lower, np.ones(self.k))
                    var = var - (v**2).sum(axis=0) + (1.0 - u @ v) ** 2 / float(u @ u)
                means += wi * m
                second += wi * (s0**2 * np.maximum(var, 0.0) + m**2)
        return np.sqrt(np.maximum(second - means**2, 1e-300))

    def loo_z2(self) -> np.ndarray:
        """Squared standardised leave-one-out residuals of the measured points under the heaviest
        component (closed form: ``alpha_i^2 / [K^-1]_ii``; the offset's variance made large)."""
        if self.k < 3:
            return np.zeros(self.k)
        assert self.X is not None and self.y is not None
        i = int(np.argmax(self.weights))
        g, j = self.comp_group[i], self.comp_anchor[i]
        prior = self._prior_cov(i, self.X, self.X)
        K = prior + self.noise_var(i) * np.diag(self._noise_diag)
        K += 1e3 * (1.0 + float(np.mean(np.diag(K))))  # a free offset
        r = self.y / self.comp_s0[i] - self.X.basis @ self.anchors[int(self.groups[g, 0])].means[j]
        chol = np.linalg.cholesky(K)
        alpha = cho_solve((chol, True), r, check_finite=False)
        diag_inv = (solve_triangular(chol, np.eye(self.k), lower=True, check_finite=False) ** 2).sum(axis=0)
        return alpha**2 / np.maximum(diag_inv, 1e-300)

    def draws(self, pts: Points, n: int, rng: np.random.Generator, *, noisy: bool = True) -> np.ndarray:
        """``n`` posterior draws of the latent at ``pts``, one per column (offset-free; for ranks)."""
        comps = rng.choice(len(self.weights), size=n, p=self.weights)
        out = np.empty((len(pts), n))
        with self.remembering():
            for i in np.unique(comps):
                cols = np.flatnonzero(comps == i)
                cov = self.component_cov(int(i), pts)
                jitter = 1e-9 * max(float(np.mean(np.diag(cov))), 1e-12)
                lower = np.linalg.cholesky(cov + (jitter + (self.noise_var(int(i)) if noisy else 0.0)) * np.eye(len(pts)))
                z = rng.standard_normal((len(pts), len(cols)))
                out[:, cols] = self.comp_s0[i] * (self.component_mean(int(i), pts)[:, None] + lower @ z)
        return out


def _bulk_z2(resid: np.ndarray) -> np.ndarray:
    """Squared residuals in units of their median absolute deviation (zero when it is zero)."""
    scale = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
    return (resid / scale) ** 2 if scale > 0 else np.zeros_like(resid)


def fit_transfer(
    kernels: ArchKernels,
    anchors: Sequence[AnchorSet],
    X: Points | None,
    y: np.ndarray | None,
    *,
    unit: float,
    grid: TransferGrid,
    noise_shape: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    robust: bool = True,
    shared: dict[str, Any] | None = None,
) -> TransferPosterior:
    """Fit the transfer GP to ``k`` points (``X``, transformed latencies ``y``).

    Args:
        kernels: The space's kernel blocks.
        anchors: Prior anchor sets of the transferred coefficients.
        X: The measured architectures (``None`` for the prior alone).
        y: Their transformed latencies.
        unit: Variance unit (the spread between devices per architecture).
        grid: The hyper-parameter grid.
        noise_shape: Relative noise variance of each point (default 1).
        groups: Restrict the grid to these groups (e.g. a previous fit's
            :meth:`TransferPosterior.significant_groups`, for cheap refits).
        robust: Down-weight outlying points (Student-t noise by iterated reweighting).
        shared: A dict to keep the kernel matrices of ``X`` in, for another fit on the same
            architectures (e.g. under another transform of the latencies).
    """
    blocks = tuple(b for b in kernels.blocks if any(s > 0 for s in grid.scales.get(b, (0.0,))))
    if groups is None:
        groups = grid.groups(len(anchors), blocks)
    post = TransferPosterior(kernels, anchors, blocks, unit, grid.noise, X, y, noise_shape, groups, None, shared)
    if not robust or y is None or len(y) < 5:
        return post
    weights = np.ones(len(y))
    for _ in range(_ROBUST_ITERATIONS):
        z2, m2 = post.loo_z2(), _bulk_z2(y - post.fitted())
        # An outlier: the other points predict it badly (leave-one-out), or it lies far from the
        # bulk of the residuals *and* the others predict it poorly. The leave-one-out test alone
        # misses a lone slow run among ten points, which the flexible kernels half-explain
        # (FBNet samsung_s7, k = 10: Spearman 0.72 -> -0.11); the residual test alone takes a
        # model misfit for outliers and stops the fit converging on a device unlike the proxies.
        flag = (z2 >= _OUTLIER_Z**2) | ((m2 >= _BULK_Z**2) & (z2 >= _BULK_Z**2))
        if not flag.any():
            break
        # Student-t noise: a point the others predict badly gets its noise variance inflated
        weights = weights * np.where(flag, (_T_DOF + 1.0) / (_T_DOF + np.maximum(z2, m2)), 1.0)
        post = TransferPosterior(kernels, anchors, blocks, unit, grid.noise, X, y, noise_shape, groups, weights,
                                 post._shared)
    return post
