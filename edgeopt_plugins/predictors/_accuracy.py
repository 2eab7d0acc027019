"""Accuracy of any architecture: exact table lookup with a learned fallback.

Where a benchmark lists the accuracy of every architecture (NB201 from
NATS-Bench) the prediction *is* the table; the network only serves
architectures outside it. For Accel-NASBench (MnasNet, 5,125 of about 4e10
architectures) the network generalises from the table. For spaces without an
accuracy benchmark (OFA, OFA + quantization) the user supplies an accuracy
function; it is evaluated on sampled architectures and distilled into the same
kind of network so the fitted model stays self-contained.

**Accuracy-function interface.** ``accuracy_fn(archs: list[str]) -> Sequence[float]``:
given a list of canonical architecture strings of the space, return one
accuracy per architecture, in percent (0-100), in the same order. Wrap a
per-architecture function ``f(arch) -> float`` as ``lambda archs: [f(a) for a in archs]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from edgeopt_plugins.data import MetricTable
from edgeopt_plugins.exceptions import InputError, ModelFormatError
from edgeopt_plugins.predictors._archkeys import ArchKeyIndex
from edgeopt_plugins.predictors._mlp import NumpyMLP, fit_regressor
from edgeopt_plugins.spaces import ArchLike, SearchSpace, get_space

__all__ = ["AccuracyPredictor", "fit_accuracy_predictor", "AccuracyFn"]

AccuracyFn = Callable[[Sequence[str]], Sequence[float]]


class AccuracyPredictor:
    """Predicted accuracy (percent) of architectures of one space.

    Attributes:
        space: The search space.
        dataset: Name of the accuracy (``"cifar10"``, ``"imagenet"``, or the user's label).
        source: ``"table"`` or ``"function"``.
        table: Architectures with known accuracy, and ``values`` their accuracies.
        net: Fallback network for other architectures (``None``: table only).

    Example:
        >>> import numpy as np
        >>> from edgeopt_plugins.spaces import get_space
        >>> space = get_space("nb201")
        >>> archs = space.sample(50, seed=0)
        >>> acc = fit_accuracy_predictor(space, accuracy_fn=lambda a: [90.0] * len(a), n_samples=50, epochs=2)
        >>> float(acc(archs[:1])[0])
        90.0
    """

    def __init__(self, space: SearchSpace, dataset: str, source: str, table: ArchKeyIndex, values: np.ndarray,
                 net: NumpyMLP | None) -> None:
        self.space = get_space(space)
        self.dataset = str(dataset)
        self.source = source
        self.table = table
        self.values = np.asarray(values, dtype=np.float64)
        self.net = net
        if self.values.shape != (len(table),):
            raise InputError("accuracy predictor: one value per table architecture expected")

    def __call__(self, archs: Iterable[ArchLike] | np.ndarray) -> np.ndarray:
        return self.predict_indices(self.space.to_indices(archs))

    def exact(self, indices: np.ndarray) -> np.ndarray:
        """Whether each architecture's accuracy is a table value (not a network estimate)."""
        return self.table.positions(indices) >= 0

    def predict_indices(self, indices: np.ndarray) -> np.ndarray:
        """Accuracy of each row of a choice-index matrix (table value, else the network)."""
        idx = np.asarray(indices, dtype=np.int64)
        pos = self.table.positions(idx)
        out = np.empty(idx.shape[0])
        hit = pos >= 0
        out[hit] = self.values[pos[hit]]
        if (~hit).any():
            if self.net is None:
                raise InputError(f"{self.space.name}: {int((~hit).sum())} architecture(s) have no known accuracy "
                                 "and the accuracy predictor has no network")
            out[~hit] = np.clip(self.net(self.space.encode(idx[~hit]))[:, 0], 0.0, 100.0)
        return out

    # ----------------------------------------------------------------- persistence
    def to_arrays(self, prefix: str = "accuracy") -> dict[str, np.ndarray]:
        out = {f"{prefix}.table_indices": self.table.indices.astype(np.int32), f"{prefix}.values": self.values}
        if self.net is not None:
            out.update(self.net.to_arrays(f"{prefix}.net"))
        return out

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "source": self.source, "net": self.net is not None, "table_size": len(self.table)}

    @classmethod
    def from_saved(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray], space: SearchSpace,
                   prefix: str = "accuracy") -> AccuracyPredictor:
        try:
            indices = np.asarray(arrays[f"{prefix}.table_indices"], dtype=np.int64)
            values = np.asarray(arrays[f"{prefix}.values"], dtype=np.float64)
            net = NumpyMLP.from_arrays(arrays, f"{prefix}.net") if meta["net"] else None
            dataset, source = str(meta["dataset"]), str(meta["source"])
        except (KeyError, TypeError) as err:
            raise ModelFormatError(f"accuracy predictor: missing or malformed entry ({err})") from None
        if indices.ndim != 2 or indices.shape[1] != len(space.decisions) or values.shape != (indices.shape[0],):
            raise ModelFormatError("accuracy predictor: tensor shapes do not match the space")
        if net is not None and (net.n_out != 1 or net.n_in != space.encode(indices[:1]).shape[1]):
            raise ModelFormatError("accuracy predictor: network does not match the space")
        try:
            table = ArchKeyIndex(space.to_indices(indices), space.cardinalities)
        except InputError as err:
            raise ModelFormatError(f"accuracy predictor: bad architecture table ({err})") from None
        return cls(space, dataset, source, table, values, net)


def _call_accuracy_fn(fn: AccuracyFn, archs: list[str]) -> np.ndarray:
    try:
        out = np.asarray(list(fn(archs)), dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise InputError(f"accuracy_fn must return one number per architecture ({err})") from None
    if out.shape != (len(archs),):
        raise InputError(f"accuracy_fn returned {out.size} values for {len(archs)} architectures")
    if not np.isfinite(out).all() or (out < 0).any() or (out > 100).any():
        raise InputError("accuracy_fn must return finite accuracies in percent (0-100)")
    return out


def fit_accuracy_predictor(
    space: str | SearchSpace,
    *,
    table: MetricTable | None = None,
    dataset: str | None = None,
    accuracy_fn: AccuracyFn | None = None,
    n_samples: int = 20_000,
    epochs: int = 60,
    hidden: tuple[int, ...] = (128, 128),
    seed: int = 0,
    on_epoch: Callable[[int], None] | None = None,
) -> AccuracyPredictor:
    """Accuracy predictor from a benchmark table column or from a user function.

    Args:
        space: The search space.
        table: An accuracy :class:`MetricTable` (its columns are data sets).
        dataset: Column of ``table`` (default: its first), or a label for ``accuracy_fn``.
        accuracy_fn: Batched accuracy function (see the module docstring), used when
            there is no table: evaluated on ``n_samples`` random architectures.
        n_samples: Architectures evaluated with ``accuracy_fn``.
        epochs: Epochs of the fallback network (0: table lookup only).
        hidden: Hidden sizes of the network.
        seed: Seed of sampling and training.
        on_epoch: Progress callback.
    """
    sp = get_space(space)
    if (table is None) == (accuracy_fn is None):
        raise InputError("fit_accuracy_predictor: give exactly one of table= or accuracy_fn=")
    if table is not None:
        if table.metric != "accuracy" or table.space.name != sp.name:
            raise InputError(f"{table.source}: expected an accuracy table of space {sp.name}")
        name = dataset or table.devices[0]
        col = table.values[:, table.device_index(name)]
        keep = ~np.isnan(col)
        indices, values, source = table.indices[keep], col[keep], "table"
    else:
        assert accuracy_fn is not None
        if not callable(accuracy_fn):
            raise InputError("accuracy_fn must be callable: list of architecture strings -> accuracies")
        if n_samples < 2:
            raise InputError(f"n_samples must be at least 2, got {n_samples}")
        indices = sp.sample_indices(min(n_samples, sp.size), seed=seed)
        values = _call_accuracy_fn(accuracy_fn, sp.from_indices(indices))
        name, source = dataset or "user", "function"
    net = None
    if epochs > 0:
        batch = int(np.clip(len(values) // 40, 64, 1024))
        net = fit_regressor(sp.encode(indices), values, hidden=hidden, epochs=epochs, batch_size=batch, seed=seed,
                            on_epoch=on_epoch)
    return AccuracyPredictor(sp, name, source, ArchKeyIndex(indices, sp.cardinalities), values, net)
