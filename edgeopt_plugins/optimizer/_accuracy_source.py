"""Where a search's accuracy comes from: only what the user names, never a hidden table.

A guided search ranks designs by accuracy only when the user says where accuracy
comes from; otherwise accuracy is *unknown* and the search learns the objective
online from the values the study reports (see :mod:`edgeopt_plugins.optimizer._surrogate`).

Accepted specifications (:data:`AccuracySpec`):

- ``None``: unknown (the default).
- ``"table"``: the space's benchmark accuracy table, its first metric
  (CIFAR-10 for NAS-Bench-201); ``"table:<metric>"`` picks a column
  (``"table:cifar100"``, ``"table:imagenet16_120"``).
- ``"model"``: the accuracy predictor inside a fitted
  :class:`~edgeopt_plugins.optimizer.ConditionedModel` (approach 2 only).
- an accuracy :class:`~edgeopt_plugins.data.MetricTable` (its first column),
- a callable ``list[arch] -> accuracies`` (one number per canonical architecture string).

Example:
    >>> import numpy as np
    >>> from edgeopt_plugins.spaces import get_space
    >>> space = get_space("nb201")
    >>> source = accuracy_source(lambda archs: [len(a) for a in archs], space)
    >>> source.name, source(space.sample(2, seed=0)).shape
    ('callable', (2,))
    >>> accuracy_source(None, space) is None
    True
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Union

import numpy as np

from edgeopt_plugins.data import MetricTable, load_table
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.spaces import SearchSpace

__all__ = ["AccuracySpec", "AccuracySource", "accuracy_source"]

AccuracySpec = Union[None, str, MetricTable, Callable[[list[str]], Any]]


class AccuracySource:
    """A named accuracy: ``source(archs) -> np.ndarray`` (``nan`` where it has no value).

    Attributes:
        name: What the user named (``"table:cifar10"``, ``"model"``, ``"callable"``, ...).
    """

    def __init__(self, name: str, fn: Callable[[list[str]], np.ndarray]) -> None:
        self.name = name
        self._fn = fn

    def __call__(self, archs: Sequence[str]) -> np.ndarray:
        archs = list(archs)
        try:
            out = np.asarray(self._fn(archs), dtype=float).reshape(-1)
        except (TypeError, ValueError) as err:
            raise InputError(f"accuracy {self.name}: must return one number per architecture ({err})") from None
        if out.shape != (len(archs),):
            raise InputError(f"accuracy {self.name}: returned {out.size} values for {len(archs)} architectures")
        return out

    def __repr__(self) -> str:
        return f"AccuracySource({self.name!r})"


def _from_table(table: MetricTable, metric: str | None, name: str) -> AccuracySource:
    if not isinstance(table, MetricTable) or table.metric != "accuracy":
        raise InputError(f"accuracy {name}: expected an accuracy MetricTable, got {type(table).__name__}")
    column = table.devices[0] if metric is None else metric
    if column not in table.devices:
        raise InputError(f"accuracy {name}: unknown metric {column!r} (the table has {', '.join(table.devices)})")
    values = dict(zip(table.archs, table.column(column).tolist()))
    space = table.space

    def lookup(archs: list[str]) -> list[float]:
        # Canonical strings hit directly; other spellings are formatted once.
        return [values[a] if a in values else values.get(space.format(a), np.nan) for a in archs]

    return AccuracySource(f"table:{column}", lookup)


def accuracy_source(
    spec: AccuracySpec,
    space: SearchSpace,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    model: Any = None,
) -> AccuracySource | None:
    """Resolve an accuracy specification (see the module docstring); ``None`` stays ``None``.

    Args:
        spec: What the user named.
        space: The search space the accuracies are for.
        data_dir: Benchmark data folder for ``"table"`` (default ``EDGEOPT_DATA_DIR``).
        model: A fitted :class:`~edgeopt_plugins.optimizer.ConditionedModel`, needed for ``"model"``.

    Raises:
        InputError: for an unknown specification, a table of another metric, ``"model"`` without a model.
        DataNotFoundError: when ``"table"`` names a table that is not in the data folder.
    """
    if spec is None:
        return None
    if isinstance(spec, MetricTable):
        if spec.space.name != space.name:
            raise InputError(f"accuracy table is for space {spec.space.name!r}, not {space.name!r}")
        return _from_table(spec, None, "table")
    if isinstance(spec, str):
        kind, _, metric = spec.partition(":")
        if kind == "table":
            return _from_table(load_table(space.name, "accuracy", data_dir=data_dir), metric or None, spec)
        if kind == "model" and not metric:
            if model is None or not hasattr(model, "predict_accuracy"):
                raise InputError("accuracy='model' needs a fitted ConditionedModel (approach 2)")
            return AccuracySource("model", lambda archs: model.predict_accuracy(archs))
        raise InputError(
            f"accuracy must be None (unknown: learned from the study), 'table', 'table:<metric>', 'model', "
            f"an accuracy MetricTable or a callable, got {spec!r}"
        )
    if callable(spec):
        return AccuracySource("callable", spec)
    raise InputError(f"accuracy must be None, 'table', 'table:<metric>', 'model', an accuracy MetricTable or a "
                     f"callable, got {type(spec).__name__}")
