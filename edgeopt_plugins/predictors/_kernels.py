"""Device-agnostic prior covariances between the architectures of any search space.

What no training device explains about a new device must be learned from its own
measurements. Three kernels describe how alike two architectures are, whatever the
hardware; each has unit variance on the diagonal so their scales are comparable:

- ``summary``: a linear kernel on the space's standardised summary features (log FLOPs,
  parameters, operation counts; for a user-defined space, what its built model reports).
  Few dimensions, so a handful of points estimate it: it carries the ranking at small ``k``.
- ``additive``: the share of decisions two architectures make alike (the linear kernel of the
  one-hot encoding): a per-operation cost model.
- ``pairwise``: the share of *pairs* of decisions they make alike: every interaction of two
  decisions (which operations meet in one cell, which kernel follows which expansion).

``additive`` and ``pairwise`` are polynomials in the number of matching decisions (one
product of one-hot encodings), so they cost the same for any space, however many pairs of
choices it has.

Example:
    >>> from edgeopt_plugins.predictors._kernels import ArchKernels
    >>> from edgeopt_plugins.spaces import get_space
    >>> space = get_space("nb201")
    >>> ref = space.sample_indices(200, seed=0)
    >>> kernels = ArchKernels(space, ref)
    >>> f = kernels.features(ref[:3])
    >>> grams = kernels.cross(f, f)
    >>> sorted(grams), float(grams["pairwise"][0, 0])
    (['additive', 'pairwise', 'summary'], 1.0)
    >>> round(float(kernels.diagonal(kernels.features(ref))["summary"].mean()), 6)  # unit variance on average
    1.0
"""

from __future__ import annotations

import numpy as np

from dataclasses import dataclass

from edgeopt_plugins.spaces import SearchSpace

__all__ = ["KERNEL_BLOCKS", "ArchKernels", "KernelFeatures"]

#: The kernel blocks, from the fewest to the most degrees of freedom.
KERNEL_BLOCKS = ("summary", "additive", "pairwise")


@dataclass(frozen=True)
class KernelFeatures:
    """What the kernels need of some architectures: one-hot rows and standardised summaries."""

    onehot: np.ndarray  # (n, one-hot width), float32
    summary: np.ndarray  # (n, F)

    def __len__(self) -> int:
        return int(self.onehot.shape[0])

    def take(self, rows: np.ndarray) -> KernelFeatures:
        return KernelFeatures(self.onehot[rows], self.summary[rows])


class ArchKernels:
    """The kernel blocks of one space, with summary features standardised on a reference set.

    Args:
        space: The search space.
        reference: Choice-index matrix of representative architectures (the mean and spread
            of each summary feature are taken there; constant features are dropped).
    """

    def __init__(self, space: SearchSpace, reference: np.ndarray) -> None:
        self.space = space
        self.n_decisions = len(space.decisions)
        feats = self._raw_summary(reference)
        sd = feats.std(axis=0)
        self._keep = np.flatnonzero(sd > 1e-9 * (1.0 + np.abs(feats).max(axis=0)))
        self._mean = feats.mean(axis=0)[self._keep]
        self._scale = sd[self._keep] * np.sqrt(max(len(self._keep), 1))

    @property
    def blocks(self) -> tuple[str, ...]:
        """The blocks this space supports (no ``pairwise`` with one decision, no ``summary``
        without varying features)."""
        out = []
        if len(self._keep):
            out.append("summary")
        out.append("additive")
        if self.n_decisions > 1:
            out.append("pairwise")
        return tuple(out)

    def _raw_summary(self, idx: np.ndarray) -> np.ndarray:
        return np.asarray(self.space.encode(idx, kind="summary"), dtype=np.float64)

    def summary(self, idx: np.ndarray) -> np.ndarray:
        """Standardised summary features ``(n, F)``, scaled so that each row has unit mean square norm."""
        return (self._raw_summary(idx)[:, self._keep] - self._mean) / self._scale

    def features(self, idx: np.ndarray) -> KernelFeatures:
        """The kernel inputs of the architectures of a choice-index matrix."""
        return KernelFeatures(self.space.one_hot(idx), self.summary(idx))

    def cross(self, a: KernelFeatures, b: KernelFeatures) -> dict[str, np.ndarray]:
        """Every block between two sets of architectures: ``{block: (len(a), len(b))}``."""
        out: dict[str, np.ndarray] = {}
        if "summary" in self.blocks:
            out["summary"] = a.summary @ b.summary.T
        match = (a.onehot @ b.onehot.T).astype(np.float64)  # decisions made alike
        d = self.n_decisions
        out["additive"] = match / d
        if d > 1:
            out["pairwise"] = match * (match - 1.0) / (d * (d - 1.0))
        return out

    def diagonal(self, a: KernelFeatures) -> dict[str, np.ndarray]:
        """The blocks' variances at each architecture: ``{block: (n,)}``."""
        out: dict[str, np.ndarray] = {}
        if "summary" in self.blocks:
            out["summary"] = (a.summary**2).sum(axis=1)
        out["additive"] = np.ones(len(a))
        if self.n_decisions > 1:
            out["pairwise"] = np.ones(len(a))
        return out
