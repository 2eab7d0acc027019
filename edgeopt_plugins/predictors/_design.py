"""Which architectures to measure: greedy optimal design over a transfer posterior.

A measurement is worth what it teaches about the *ranking* of the space: the design picks,
one at a time, the candidate whose measurement most reduces the posterior variance of the
target's latencies on a reference set, each taken relative to the reference mean (the level
is free: only differences rank). Each pick conditions the covariances on it (a rank-one
update), so the next pick complements it: a batch spreads along the directions in which the
prior is unsure (which mix of proxies, which operations cost what on this device) instead of
clustering. It needs no measured values, so it plans a whole profile before any measurement
(over the prior) and continues a partial profile (over its posterior).

Variance reduction trusts the prior's covariances: its picks are the architectures on which
the proxies disagree most. On a device whose measurements are noise-dominated, ten such
points can be explained by the wrong proxies (FBNet's ``samsung_s7``: 0.27 Spearman against
0.71 from random points). So half of a profile of four or more is a stratified random sample
over the predicted latency (one candidate drawn from each of ``n // 2`` equal strata of the
posterior mean), unbiased like random points and spanning the whole range; the variance picks
then complement those. Leave-one-family-out at k = 10 this moved FBNet from 0.847 (worst family
0.27) to 0.889 (0.65), random points giving 0.875 (0.71), and kept NB201 at 0.963 (0.964 before,
random 0.956). Evenly spaced quantiles instead of random draws did as well on FBNet but cost
NB201 0.012.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeopt_plugins.predictors._transfer import Points, TransferPosterior

__all__ = ["greedy_design"]

#: At most this many candidates are scored (a random subset of a larger list).
MAX_CANDIDATES = 1500
#: Components of the posterior whose covariances guide the design.
_COMPONENTS = 4


def _design_components(post: TransferPosterior) -> tuple[np.ndarray, np.ndarray]:
    """``(positions, weights)`` of the components to design for.

    With points, the heaviest components. Before any point the weights are only the prior's,
    spread over the whole grid: the design then uses the grid's middle component (median
    noise, every kernel block at its median non-zero scale, the "new mix" anchor).
    """
    if post.k >= 2:
        top = post.top_components(_COMPONENTS, 0.95)
        return top, post.weights[top] / post.weights[top].sum()
    levels = post.groups[:, 1]
    want = [np.median(np.unique(levels))]
    for bi in range(len(post.blocks)):
        on = np.unique(post.groups[:, 2 + bi])
        on = on[on > 0]
        want.append(float(on[(len(on) - 1) // 2]) if on.size else 0.0)
    target = np.array(want)
    dist = np.abs(post.groups[post.comp_group, 1:] - target[None, :]).sum(axis=1)
    dist = dist + 1e9 * ((post.groups[post.comp_group, 0] != 0) | (post.comp_anchor != 0))
    return np.array([int(np.argmin(dist))]), np.ones(1)


def greedy_design(post: TransferPosterior, points: Callable[[np.ndarray], Points], candidates: np.ndarray,
                  reference: np.ndarray, n: int, *, seed: int = 0) -> np.ndarray:
    """Positions in ``candidates`` of the ``n`` architectures to measure, most informative first.

    Args:
        post: The posterior (or prior) of the target.
        points: Turns a choice-index matrix into the posterior's :class:`Points`.
        candidates: Choice-index matrix of what may be measured (measured ones removed).
        reference: Choice-index matrix of the architectures whose ranking matters.
        n: How many to pick (at most ``len(candidates)``).
        seed: Seed of the candidate subsample and of tie-breaking.
    """
    rng = np.random.default_rng(seed)
    n = int(min(n, candidates.shape[0]))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    rows = np.arange(candidates.shape[0])
    if rows.size > MAX_CANDIDATES:
        rows = np.sort(rng.choice(rows, size=MAX_CANDIDATES, replace=False))
    C, R = points(candidates[rows]), points(reference)
    comps, weights = _design_components(post)
    state = []
    with post.remembering():
        for i in comps:
            cross = post.component_cov(int(i), C, R)
            cross -= cross.mean(axis=1, keepdims=True)  # rank by differences: the level is free
            cov = post.component_cov(int(i), C)
            level = 10.0 * float(np.mean(np.diag(cov))) + 1e-12  # an unknown offset, shared by every point
            state.append([cross, cov + level, post.noise_var(int(i))])
    picks: list[int] = []
    if n >= 4:  # half of the profile: one random candidate per stratum of the predicted latency
        order = np.argsort(post.mean(C), kind="stable")
        edges = np.linspace(0, len(order), n // 2 + 1).astype(int)
        for lo, hi in zip(edges[:-1], edges[1:]):
            picks.append(int(order[rng.integers(lo, hi)]))
            _condition(state, picks[-1])
    while len(picks) < n:
        gain = np.zeros(len(rows))
        for w, (cross, cov, noise) in zip(weights, state):
            gain += w * (cross**2).sum(axis=1) / (np.diag(cov) + noise)
        gain[picks] = -np.inf
        best = int(np.argmax(gain + rng.random(len(gain)) * 1e-12 * (np.abs(gain[np.isfinite(gain)]).max() + 1)))
        picks.append(best)
        _condition(state, best)
    return rows[np.array(picks, dtype=np.int64)]


def _condition(state: list[list], best: int) -> None:
    """Condition every component's covariances on a measurement at candidate ``best`` (rank-one update)."""
    for item in state:
        cross, cov, noise = item
        v = cov[:, best].copy()
        denom = float(v[best] + noise)
        item[0] = cross - np.outer(v, cross[best]) / denom
        item[1] = cov - np.outer(v, v) / denom
