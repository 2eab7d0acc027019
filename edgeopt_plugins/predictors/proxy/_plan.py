"""``plan_profile``: which architectures to measure on a new device, before or between measurements."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from edgeopt_plugins.data import MetricTable
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.predictors._measurements import Measurements, as_measurements
from edgeopt_plugins.predictors.proxy._adapt import ProxyAdapter
from edgeopt_plugins.predictors.proxy._pool import ProxyPool
from edgeopt_plugins.spaces import ArchLike, SearchSpace

__all__ = ["plan_profile"]


def plan_profile(
    proxies: ProxyPool | MetricTable,
    n: int,
    *,
    candidates: Iterable[ArchLike] | None = None,
    profile: Any = None,
    space: str | SearchSpace | None = None,
    seed: int = 0,
) -> list[str]:
    """The ``n`` architectures whose measurements teach the predictor most about a new device.

    Optimal design over the hierarchical model (see ``_design``): before any measurement it
    plans over the proxies' prior; given a partial ``profile`` it continues from the posterior
    on those measurements (sequential design). Measured architectures are never proposed.

    Args:
        proxies: The proxy devices (a :class:`ProxyPool` or a latency table).
        n: How many architectures to propose.
        candidates: Only these may be proposed (what the user can build and measure); default:
            the proxies' reference architectures. An architecture of ``profile`` outside the
            candidates is used as data all the same.
        profile: Measurements already taken (a profile, ``{arch: ms}`` with ``space``...).
        space: The search space of a dict profile.
        seed: Seed of the candidate subsample and of tie-breaking.

    Returns:
        Canonical strings, most informative first.

    Raises:
        InputError: if ``n`` is not a positive integer, or fewer than ``n`` candidates are left
            once the profile's architectures are removed.

    Example:
        >>> from edgeopt_plugins.data import load_table
        >>> from edgeopt_plugins.predictors import plan_profile
        >>> table = load_table("nb201")  # doctest: +SKIP
        >>> plan_profile(table, 10)  # doctest: +SKIP
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise InputError(f"plan_profile: n must be a positive integer, got {n!r}")
    adapter = ProxyAdapter(proxies, seed=seed)
    sp = adapter.space
    measured: Measurements | None = None
    done: set[str] = set()
    if profile is not None:
        archs = list(profile) if isinstance(profile, Mapping) else list(getattr(profile, "archs", ()))
        if archs and len({sp.format(a) for a in archs}) < 2:  # one measurement: no contrast to learn from yet
            done = {sp.format(a) for a in archs}
        else:
            measured = as_measurements(profile, space=space or sp)
            done = set(measured.archs)
    cand = None
    if candidates is not None:
        listed = list(dict.fromkeys(sp.format(a) for a in candidates))
        left = [a for a in listed if a not in done]
        if len(left) < n:
            raise InputError(f"plan_profile: only {len(left)} of the {len(listed)} candidates are not measured yet; "
                             f"ask for at most {len(left)} (got n={n})")
        cand = sp.to_indices(left)
    model = adapter.fit(measured)
    extra = len(done) if measured is None else 0  # a lone measurement is not in the model: skip it here
    picks = [a for a in model.next_archs(n + extra, cand, seed=seed) if a not in done][:n]
    if len(picks) < n:
        raise InputError(f"plan_profile: only {len(picks)} architectures are left to propose; ask for at most "
                         f"{len(picks)} (got n={n})")
    return picks
