"""Fast lookup of architectures (rows of choice indices) in a fixed list.

Predictors keep per-architecture arrays for the architectures of their training
tables (exact latent factors, accuracies). Looking up many candidate designs
must be vectorised: each row of choice indices is hashed to one ``uint64`` key
(mixed-radix chunks mixed by a multiplicative hash), keys are binary-searched,
and every hit is verified against the stored row, so a hash collision can only
turn a hit into a miss, never into a wrong answer.
"""

from __future__ import annotations

import numpy as np

from edgeopt_plugins.exceptions import InputError

__all__ = ["ArchKeyIndex", "row_keys", "unique_rows"]

_MIX = np.uint64(0x9E3779B97F4A7C15)


def row_keys(indices: np.ndarray, cardinalities: np.ndarray) -> np.ndarray:
    """One ``uint64`` key per row of a choice-index matrix.

    Decisions are packed mixed-radix into chunks that fit 62 bits; chunks are
    combined with a multiplicative hash. Spaces up to 2**62 architectures get
    collision-free keys.
    """
    idx = np.asarray(indices, dtype=np.int64)
    card = np.asarray(cardinalities, dtype=np.int64)
    key = np.zeros(idx.shape[0], dtype=np.uint64)
    chunk = np.zeros(idx.shape[0], dtype=np.int64)
    radix = 1
    first = True
    with np.errstate(over="ignore"):
        for j, c in enumerate(card.tolist()):
            if radix * c >= 2**62:
                key = chunk.astype(np.uint64) if first else (key * _MIX) ^ chunk.astype(np.uint64)
                first = False
                chunk = np.zeros(idx.shape[0], dtype=np.int64)
                radix = 1
            chunk = chunk + idx[:, j] * radix
            radix *= c
        key = chunk.astype(np.uint64) if first else (key * _MIX) ^ chunk.astype(np.uint64)
    return key


def unique_rows(indices: np.ndarray, cardinalities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(unique rows, inverse)`` of a choice-index matrix, via the row keys (verified)."""
    idx = np.asarray(indices, dtype=np.int64)
    if idx.shape[0] == 0:
        return idx, np.zeros(0, dtype=np.int64)
    _, first, inverse = np.unique(row_keys(idx, cardinalities), return_index=True, return_inverse=True)
    uniq = idx[first]
    if not (uniq[inverse] == idx).all():  # a hash collision: fall back to the exact (slower) way
        uniq, inverse = np.unique(idx, axis=0, return_inverse=True)
    return uniq, inverse.reshape(-1)


class ArchKeyIndex:
    """Positions of architectures in a fixed list of choice-index rows.

    Args:
        indices: ``(n, n_decisions)`` choice indices, one row per architecture, unique.
        cardinalities: Number of choices of each decision.

    Example:
        >>> import numpy as np
        >>> index = ArchKeyIndex(np.array([[0, 1], [2, 0]]), np.array([3, 2]))
        >>> index.positions(np.array([[2, 0], [1, 1]])).tolist()
        [1, -1]
    """

    def __init__(self, indices: np.ndarray, cardinalities: np.ndarray) -> None:
        self.indices = np.ascontiguousarray(indices, dtype=np.int64)
        self.cardinalities = np.asarray(cardinalities, dtype=np.int64)
        keys = row_keys(self.indices, self.cardinalities)
        self._order = np.argsort(keys, kind="stable")
        self._sorted = keys[self._order]
        if self._sorted.size > 1 and (self._sorted[1:] == self._sorted[:-1]).any():
            dup = np.flatnonzero(self._sorted[1:] == self._sorted[:-1])[0]
            a, b = self._order[dup], self._order[dup + 1]
            if np.array_equal(self.indices[a], self.indices[b]):
                raise InputError(f"architecture list has a duplicate (rows {min(a, b)} and {max(a, b)})")
            raise InputError("architecture list: hash collision between two different rows")

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def positions(self, indices: np.ndarray) -> np.ndarray:
        """Position of each row in the list, ``-1`` where absent."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.shape[0] == 0 or len(self) == 0:
            return np.full(idx.shape[0], -1, dtype=np.int64)
        keys = row_keys(idx, self.cardinalities)
        at = np.searchsorted(self._sorted, keys)
        at = np.minimum(at, self._sorted.size - 1)
        pos = np.where(self._sorted[at] == keys, self._order[at], -1)
        hit = pos >= 0
        if hit.any():
            same = (self.indices[pos[hit]] == idx[hit]).all(axis=1)
            pos[np.flatnonzero(hit)[~same]] = -1
        return pos.astype(np.int64)
