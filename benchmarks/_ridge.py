"""The yardsticks beside every cross-device figure: ridge models that ignore the other devices.

- :func:`ridge_on_points` is the issue's *simple baseline*: a ridge regression of log latency on
  the one-hot operations of the architecture, fitted on the target's ``k`` measured points alone
  (its penalty chosen by exact leave-one-out on those ``k`` points). A predictor that uses proxies
  or training devices should never lose to it once ``k`` is moderate.
- :func:`ceiling` is what the device alone supports with plenty of data: a ridge regression on the
  one-hot operations *and* every pairwise product of two decisions' one-hots, fitted on 80 % of the
  device's architectures (5 folds, penalty by leave-one-out inside each training fold); the figure
  is the Spearman of the pooled out-of-fold predictions over every architecture.

Both are exact kernel ridge regressions: the Gram matrix is that of the explicit features when
they are fewer than the points (``primal``), else the closed form of the one-hot match counts
(``m`` matching decisions give ``m`` one-hot and ``m (m - 1) / 2`` pairwise products). A large
constant in the kernel leaves the intercept practically unpenalised. One eigen-decomposition per
training set serves every penalty and every device.

Example:
    >>> import numpy as np
    >>> from edgeopt_plugins.spaces import get_space
    >>> space = get_space("nb201"); idx = space.sample_indices(300, seed=0)
    >>> y = np.exp(0.3 * (idx == 1).sum(axis=1) + 0.1 * (idx[:, 0] == idx[:, 1]))
    >>> pred = ridge_on_points(space, idx[:40], y[:40], idx)
    >>> round(float(np.corrcoef(np.log(pred), np.log(y))[0, 1]), 2) > 0.9
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgeopt_plugins.spaces import SearchSpace

__all__ = ["KernelRidge", "ceiling", "ridge_on_points"]

#: Penalties tried, relative to the mean kernel diagonal.
PENALTIES = np.logspace(-5, 2, 15)
#: Weight of the constant kernel (nearly free intercept), relative to the mean diagonal.
_INTERCEPT = 100.0


def _onehot(idx: np.ndarray, cards: np.ndarray) -> np.ndarray:
    offsets = np.concatenate([[0], np.cumsum(cards)[:-1]])
    out = np.zeros((idx.shape[0], int(cards.sum())))
    out[np.arange(idx.shape[0])[:, None], idx + offsets] = 1.0
    return out


def _pairs(onehot: np.ndarray, cards: np.ndarray) -> np.ndarray:
    """Products of the one-hots of every two decisions (explicit features)."""
    blocks = np.split(onehot, np.cumsum(cards)[:-1], axis=1)
    out = [(blocks[i][:, :, None] * blocks[j][:, None, :]).reshape(len(onehot), -1)
           for i in range(len(blocks)) for j in range(i + 1, len(blocks))]
    return np.hstack(out) if out else np.zeros((len(onehot), 0))


class KernelRidge:
    """Ridge on one-hot (and pairwise) features of index rows; penalty per output column by exact LOO.

    Args:
        cards: Options of each decision (the space's cardinalities).
        pairwise: Add the products of every two decisions' one-hots.
        solver: ``"primal"`` (explicit features), ``"dual"`` (kernel of match counts) or ``None``
            (primal when there are fewer features than points). Both give the same predictions.
    """

    def __init__(self, cards: Sequence[int], *, pairwise: bool, solver: str | None = None) -> None:
        if solver not in (None, "primal", "dual"):
            raise ValueError(f"solver must be 'primal', 'dual' or None, got {solver!r}")
        self.cards, self.pairwise, self.solver = np.asarray(cards, dtype=np.int64), pairwise, solver

    def _features(self, idx: np.ndarray) -> np.ndarray:
        x = _onehot(idx, self.cards)
        return np.hstack([x, _pairs(x, self.cards)]) if self.pairwise else x

    def _kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        m = _onehot(a, self.cards) @ _onehot(b, self.cards).T  # matching decisions
        return m + m * (m - 1) / 2 if self.pairwise else m

    def fit(self, idx: np.ndarray, y: np.ndarray) -> KernelRidge:
        """``y``: ``(n,)`` or ``(n, outputs)``."""
        y = np.asarray(y, dtype=np.float64)
        self._vector = y.ndim == 1
        Y = y[:, None] if self._vector else y
        n = len(idx)
        n_features = int(self.cards.sum()) + (int(sum(a * b for i, a in enumerate(self.cards)
                                                      for b in self.cards[i + 1:])) if self.pairwise else 0)
        self.primal = n_features + 1 < n if self.solver is None else self.solver == "primal"
        if self.primal:
            phi = self._features(idx)
            scale = float((phi**2).sum(axis=1).mean())
            phi = np.hstack([phi, np.full((n, 1), np.sqrt(_INTERCEPT * scale))])
            U, s, Vt = np.linalg.svd(phi, full_matrices=False)
            lam = s**2
        else:
            K = self._kernel(idx, idx)
            scale = float(np.mean(np.diag(K)))
            K += _INTERCEPT * scale
            lam, U = np.linalg.eigh(K)
            lam = np.maximum(lam, 0.0)
        self.scale = scale
        Uy = U.T @ Y  # (r, outputs)
        best_err = np.full(Y.shape[1], np.inf)
        best_pen = np.zeros(Y.shape[1])
        for pen in PENALTIES:
            shrink = lam / (lam + pen * scale)
            fitted = U @ (shrink[:, None] * Uy)
            hat = (U**2) @ shrink
            err = np.mean(((Y - fitted) / np.maximum(1.0 - hat, 1e-9)[:, None]) ** 2, axis=0)
            better = err < best_err
            best_err[better], best_pen[better] = err[better], pen
        self.penalty = best_pen
        coef = Uy / (lam[:, None] + best_pen[None, :] * scale)  # (r, outputs), in the eigen basis
        if self.primal:
            self._w = Vt.T @ (s[:, None] * coef)  # primal weights, intercept column last
        else:
            self._train, self._alpha = idx, U @ coef
        return self

    def predict(self, idx: np.ndarray) -> np.ndarray:
        if self.primal:
            phi = self._features(idx)
            phi = np.hstack([phi, np.full((len(idx), 1), np.sqrt(_INTERCEPT * self.scale))])
            out = phi @ self._w
        else:
            out = (self._kernel(idx, self._train) + _INTERCEPT * self.scale) @ self._alpha
        return out[:, 0] if self._vector else out


def ridge_on_points(space: SearchSpace, train_idx: np.ndarray, latency_ms: np.ndarray, idx: np.ndarray
                    ) -> np.ndarray:
    """Predicted latency (ms) at ``idx`` of the one-hot ridge fitted on the target's points alone."""
    model = KernelRidge(space.cardinalities, pairwise=False).fit(train_idx, np.log(latency_ms))
    return np.exp(model.predict(idx))


def ceiling(space: SearchSpace, idx: np.ndarray, latency_ms: np.ndarray, *, folds: int = 5, seed: int = 0
            ) -> np.ndarray:
    """Per device (column of ``latency_ms``), the Spearman of the pairwise ridge's out-of-fold predictions."""
    from scipy import stats

    cards = space.cardinalities
    Y = np.log(np.asarray(latency_ms, dtype=np.float64).reshape(len(idx), -1))
    pred = np.empty_like(Y)
    order = np.random.default_rng(seed).permutation(len(idx))
    for held in np.array_split(order, folds):
        train = np.setdiff1d(order, held)
        pred[held] = KernelRidge(cards, pairwise=True).fit(idx[train], Y[train]).predict(idx[held])
    return np.array([stats.spearmanr(pred[:, j], Y[:, j])[0] for j in range(Y.shape[1])])
