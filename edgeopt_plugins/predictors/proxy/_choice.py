"""``choose_proxy``: which proxy ranks a target best, from a few of the target's measurements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from edgeopt_plugins.data import MetricTable
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.predictors._measurements import as_measurements
from edgeopt_plugins.predictors.proxy._pool import ProxyPool

__all__ = ["CHOICE_CRITERIA", "ProxyChoice", "choose_proxy"]

CHOICE_CRITERIA = ("spearman", "posterior")


@dataclass
class ProxyChoice:
    """The chosen proxy, its estimated rank correlation with the target, and the runners-up.

    Attributes:
        device: The chosen proxy.
        estimated_spearman: Estimated Spearman between that proxy and the target over the space.
        spearman_std: Its uncertainty (standard deviation).
        ranking: One row per proxy, best first: ``device``, ``estimated_spearman``,
            ``spearman_std``, ``p_best`` (how often it wins under resampling).
        mixture_weights: With ``criterion="posterior"``: the weights of the best *mix* of
            proxies (the hierarchical model's), and ``mixture_spearman`` its estimate.
    """

    device: str
    estimated_spearman: float
    spearman_std: float
    criterion: str
    ranking: list[dict[str, Any]]
    mixture_weights: dict[str, float] = field(default_factory=dict)
    mixture_spearman: float = float("nan")


def choose_proxy(
    proxies: ProxyPool | MetricTable,
    measurements: Any,
    *,
    criterion: str = "spearman",
    n_boot: int = 200,
    seed: int = 0,
) -> ProxyChoice:
    """Choose the proxy that ranks the target best, with an uncertainty.

    Args:
        proxies: A :class:`ProxyPool` or a latency table.
        measurements: The target's measurements (profile, dict, :class:`Measurements`...).
        criterion: ``"spearman"``: tie-aware Spearman on the ``k`` points (ties between
            proxies broken by the Pearson correlation of log-latencies), uncertainty by
            bootstrap over the points. ``"posterior"``: the expected Spearman of each proxy
            against posterior draws of the target over the whole reference set (the
            hierarchical model), which does not saturate at small ``k``.
        n_boot: Bootstrap resamples (``"spearman"``) or posterior draws (``"posterior"``).
        seed: Seed of the resampling.

    Example:
        >>> from edgeopt_plugins.predictors import choose_proxy
        >>> choice = choose_proxy(table_without_target, target_profile)  # doctest: +SKIP
        >>> choice.device, round(choice.estimated_spearman, 2)  # doctest: +SKIP
    """
    if criterion not in CHOICE_CRITERIA:
        raise InputError(f"choose_proxy: criterion must be one of {', '.join(CHOICE_CRITERIA)}, got {criterion!r}")
    if not isinstance(n_boot, int) or n_boot < 1:
        raise InputError(f"choose_proxy: n_boot must be a positive integer, got {n_boot!r}")
    pool = proxies if isinstance(proxies, ProxyPool) else ProxyPool(proxies, seed=seed)
    data = as_measurements(measurements, space=pool.space)
    if criterion == "posterior":
        return _posterior_choice(pool, data, n_boot, seed)
    x = pool.latencies(data.indices)
    y = data.latency_ms
    rng = np.random.default_rng(seed)
    score = _scores(x, y)
    wins = np.zeros(len(pool.devices))
    boot = np.full((n_boot, len(pool.devices)), np.nan)
    for b in range(n_boot):
        pick = rng.integers(0, len(y), len(y))
        s = _scores(x[pick], y[pick])
        boot[b] = _spearman_cols(x[pick], y[pick])
        wins[int(np.argmax(s))] += 1
    sd = np.nanstd(boot, axis=0)
    rho = _spearman_cols(x, y)
    order = np.argsort(-score, kind="stable")
    ranking = [
        {"device": pool.devices[j], "estimated_spearman": float(rho[j]), "spearman_std": float(sd[j]),
         "p_best": float(wins[j] / n_boot)}
        for j in order
    ]
    best = ranking[0]
    return ProxyChoice(best["device"], best["estimated_spearman"], best["spearman_std"], criterion, ranking)


def _corr_cols(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each column of ``a`` with ``b`` (0 where one side is constant)."""
    a = a - a.mean(axis=0)
    b = b - b.mean()
    den = np.sqrt((a**2).sum(axis=0) * (b**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (a * b[:, None]).sum(axis=0) / den
    return np.where(den > 0, out, 0.0)


def _spearman_cols(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Tie-aware Spearman of each column of ``x`` with ``y`` (average ranks)."""
    return _corr_cols(stats.rankdata(x, axis=0), stats.rankdata(y))


def _scores(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman on the points, plus a tiny Pearson-of-logs term that only breaks ties."""
    return np.round(_spearman_cols(x, y), 9) + 1e-4 * _corr_cols(np.log(x), np.log(y))


def _posterior_choice(pool: ProxyPool, data: Any, n_draws: int, seed: int) -> ProxyChoice:
    from edgeopt_plugins.predictors.proxy._adapt import ProxyAdapter

    model = ProxyAdapter(pool, seed=seed).fit(data)
    stats_by_proxy = model.proxy_spearman(n_samples=min(n_draws, 128))  # type: ignore[attr-defined]
    order = sorted(stats_by_proxy, key=lambda d: -stats_by_proxy[d][0])
    ranking = [{"device": d, "estimated_spearman": stats_by_proxy[d][0], "spearman_std": stats_by_proxy[d][1],
                "p_best": float("nan")} for d in order]
    best = ranking[0]
    return ProxyChoice(best["device"], best["estimated_spearman"], best["spearman_std"], "posterior", ranking,
                       mixture_weights=dict(model.proxy_weights), mixture_spearman=model.estimated_spearman)
