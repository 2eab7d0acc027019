"""``ProxyPool``: latencies of several proxy devices for any architecture of a space.

Where a table has measured an architecture on a proxy, the pool returns that measurement;
elsewhere it asks a :class:`ProxyPredictor` fitted on the proxy's column (fitted on first
use, additive by default). Pools can also be built from fitted predictors alone (a proxy
profiled locally, a saved predictor), in which case everything is predicted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgeopt_plugins.data import MetricTable
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.predictors._monotonicity import central_device
from edgeopt_plugins.predictors.proxy._proxy import ProxyPredictor
from edgeopt_plugins.spaces import SearchSpace

__all__ = ["ProxyPool"]


class ProxyPool:
    """Proxy devices whose latencies are known (measured or predicted) for any architecture.

    Args:
        table: A latency table; every column is a proxy unless ``devices`` narrows it.
        devices: The columns to use (default: all).
        model: Model of the fallback predictors for architectures missing from the table.
        reference_size: How many of the table's fully measured architectures form the
            *reference set* used to normalise proxies and estimate rank statistics.
        seed: Seed of the reference set and of the fallback predictors.

    Example:
        >>> import numpy as np
        >>> from edgeopt_plugins.data import MetricTable
        >>> from edgeopt_plugins.predictors import ProxyPool
        >>> from edgeopt_plugins.spaces import get_space
        >>> space = get_space("nb201"); archs = space.sample(50, seed=0)
        >>> flops = space.flops(archs)
        >>> table = MetricTable("nb201", "latency_ms", archs, ["a", "b"], np.column_stack([1 + flops, 2 + 3 * flops]))
        >>> pool = ProxyPool(table)
        >>> pool.latencies(archs[:2]).shape, pool.devices
        ((2, 2), ('a', 'b'))
    """

    def __init__(
        self,
        table: MetricTable,
        *,
        devices: Sequence[str] | None = None,
        model: str = "additive",
        reference_size: int = 2000,
        seed: int = 0,
    ) -> None:
        if not isinstance(table, MetricTable):
            raise InputError(f"ProxyPool: expected a MetricTable, got {type(table).__name__}")
        if table.metric != "latency_ms":
            raise InputError(f"ProxyPool: table {table.source} holds {table.metric}, not latency_ms")
        names = tuple(devices) if devices is not None else table.devices
        if not names:
            raise InputError("ProxyPool: no proxy devices")
        cols = [table.device_index(d) for d in names]
        self.table: MetricTable | None = table
        self.space: SearchSpace = table.space
        self.devices: tuple[str, ...] = tuple(names)
        self._cols = np.array(cols, dtype=np.int64)
        self.model = model
        self.seed = seed
        self._predictors: dict[str, ProxyPredictor] = {}
        self._shared: dict[str, Any] = {}
        complete = np.flatnonzero(table.available[:, self._cols].all(axis=1))
        if complete.size < 3:
            raise InputError(f"ProxyPool: table {table.source} has fewer than 3 architectures measured on every proxy")
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(complete, size=min(reference_size, complete.size), replace=False))
        self._ref_rows = rows
        self.reference_indices = table.indices[rows]
        self._ref_latency = table.values[np.ix_(rows, self._cols)]

    @classmethod
    def from_predictors(
        cls, predictors: Mapping[str, ProxyPredictor], *, reference_size: int = 2000, seed: int = 0
    ) -> ProxyPool:
        """A pool of fitted predictors only; the reference set is sampled from the space."""
        if not predictors:
            raise InputError("ProxyPool.from_predictors: no predictors given")
        spaces = {p.space.name for p in predictors.values() if p.space is not None}
        if len(spaces) != 1 or any(p.space is None for p in predictors.values()):
            raise InputError("ProxyPool.from_predictors: predictors must be fitted and share one search space")
        self = cls.__new__(cls)
        first = next(iter(predictors.values()))
        assert first.space is not None
        self.table, self.space, self.devices = None, first.space, tuple(predictors)
        self._cols = np.zeros(0, dtype=np.int64)
        self.model, self.seed = first.model, seed
        self._predictors = dict(predictors)
        self._shared = {}
        n = int(min(reference_size, self.space.size))
        self.reference_indices = self.space.sample_indices(n, seed=seed)
        self._ref_rows = np.zeros(0, dtype=np.int64)
        self._ref_latency = np.column_stack([p.predict(self.reference_indices) for p in predictors.values()])
        return self

    def __repr__(self) -> str:
        return f"ProxyPool(space={self.space.name!r}, devices={len(self.devices)}, reference={len(self.reference_indices)})"

    def __len__(self) -> int:
        return len(self.devices)

    # ----------------------------------------------------------------- values
    @property
    def reference_latency(self) -> np.ndarray:
        """``(reference archs, devices)`` latencies of the reference set (read-only view)."""
        out = self._ref_latency.view()
        out.setflags(write=False)
        return out

    def predictor(self, device: str) -> ProxyPredictor:
        """The fallback predictor of one proxy (fitted on its table column on first use)."""
        if device not in self.devices:
            raise InputError(f"ProxyPool: unknown proxy {device!r} (known: {', '.join(self.devices)})")
        if device not in self._predictors:
            assert self.table is not None
            self._predictors[device] = ProxyPredictor(model=self.model, seed=self.seed).fit(self.table, device=device)
        return self._predictors[device]

    def latencies(self, archs: Any) -> np.ndarray:
        """``(n, devices)`` latencies in ms: measured where the table has them, predicted elsewhere."""
        idx = self.space.to_indices(archs)
        out = np.full((idx.shape[0], len(self.devices)), np.nan)
        if self.table is not None and idx.shape[0]:
            rows = self._table_rows(idx)
            found = rows >= 0
            if found.any():
                out[found] = self.table.values[np.ix_(rows[found], self._cols)]
        for j, device in enumerate(self.devices):
            missing = ~np.isfinite(out[:, j])
            if missing.any():
                out[missing, j] = self.predictor(device).predict(idx[missing])
        return out

    def _table_rows(self, idx: np.ndarray) -> np.ndarray:
        """Row of each architecture in the table, -1 where absent (vectorised: mixed-radix keys)."""
        # Built on first use and shared with subsets (they copy this dict's reference).
        lookup = self._shared.get("row_lookup")
        if lookup is None:
            assert self.table is not None
            lookup = self._shared["row_lookup"] = _RowLookup(self.table.indices, self.space.cardinalities)
        return lookup(idx)

    # ----------------------------------------------------------------- structure
    def subset(self, devices: Sequence[str]) -> ProxyPool:
        """A pool with only some proxies (same reference set, shared fallback predictors)."""
        unknown = [d for d in devices if d not in self.devices]
        if unknown:
            raise InputError(f"ProxyPool: unknown proxy {unknown[0]!r} (known: {', '.join(self.devices)})")
        if not devices:
            raise InputError("ProxyPool.subset: no proxy devices")
        pos = [self.devices.index(d) for d in devices]
        out = ProxyPool.__new__(ProxyPool)
        out.__dict__.update(self.__dict__)
        out.devices = tuple(devices)
        out._cols = self._cols[pos] if self._cols.size else self._cols
        out._ref_latency = self._ref_latency[:, pos]
        out._predictors = self._predictors  # shared cache: fitting is per device anyway
        return out

    def monotonicity(self) -> tuple[list[str], np.ndarray]:
        """Spearman matrix between the proxies on the reference set."""
        from scipy import stats

        ranks = np.column_stack([stats.rankdata(c) for c in self._ref_latency.T])
        mat = np.atleast_2d(np.corrcoef(ranks, rowvar=False)) if len(self.devices) > 1 else np.ones((1, 1))
        return list(self.devices), mat

    def central_device(self) -> str:
        """The proxy whose ranking agrees best with the others (the default single proxy)."""
        if len(self.devices) == 1:
            return self.devices[0]
        names, mat = self.monotonicity()
        return central_device(names, mat)


class _RowLookup:
    """Rows of index vectors in a table: sorted integer keys (dict of tuples when keys would overflow)."""

    def __init__(self, table_indices: np.ndarray, cardinalities: Any) -> None:
        card = np.asarray(cardinalities, dtype=np.float64)
        self._radix = None
        if float(np.prod(card)) < 2.0**62:
            radix = np.concatenate([np.cumprod(card[::-1])[::-1][1:], [1.0]]).astype(np.int64)
            keys = np.asarray(table_indices, dtype=np.int64) @ radix
            self._radix, self._order = radix, np.argsort(keys, kind="stable")
            self._keys = keys[self._order]
        else:
            self._row_of = {tuple(r): i for i, r in enumerate(np.asarray(table_indices).tolist())}

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        if self._radix is None:
            return np.array([self._row_of.get(tuple(r), -1) for r in idx.tolist()], dtype=np.int64)
        keys = np.asarray(idx, dtype=np.int64) @ self._radix
        pos = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        return np.where(self._keys[pos] == keys, self._order[pos], -1)
