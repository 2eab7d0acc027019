"""The :class:`SearchSpace` base class: a fixed list of named categorical decisions.

An architecture has three interchangeable forms:

- its *canonical string* (what files, tables, profiles and Optuna users see),
- a *params dict* ``{decision name: choice value}`` (what Optuna trials hold),
- a row of *choice indices* (what the numerics use; many rows form an ``int`` matrix).

Subclasses only say how the canonical string is parsed and formatted and how a
FLOPs-like cost is computed; everything else (validation, sampling, encoding,
Optuna glue) lives here once.
"""

from __future__ import annotations

import functools
import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from edgeopt_plugins.exceptions import ArchitectureError, InputError

if TYPE_CHECKING:  # pragma: no cover
    import optuna

__all__ = ["Decision", "SearchSpace", "ArchLike"]

ArchLike = Union[str, Mapping[str, Any]]

#: Spaces larger than this refuse to enumerate.
ENUMERATE_LIMIT = 2_000_000


@dataclass(frozen=True)
class Decision:
    """One categorical decision of a search space.

    Attributes:
        name: Parameter name (also the Optuna parameter name).
        choices: Allowed values, in a fixed order (the order of one-hot columns).
    """

    name: str
    choices: tuple[Any, ...]

    def distribution(self) -> optuna.distributions.BaseDistribution:
        """The Optuna distribution a study uses for this decision (categorical here)."""
        from optuna.distributions import CategoricalDistribution  # optuna stays out of import time

        return CategoricalDistribution(list(self.choices))

    def suggest(self, trial: Any, param_name: str) -> Any:
        """Ask an Optuna trial for this decision under ``param_name``."""
        return trial.suggest_categorical(param_name, list(self.choices))

    def to_spec(self) -> Any:
        """JSON form of the decision in a space spec (see :func:`~edgeopt_plugins.spaces.space_from_spec`)."""
        return list(self.choices)

    def index(self, value: Any) -> int:
        """Position of ``value`` in :attr:`choices` (``bool`` and ``int`` are not mixed)."""
        for i, choice in enumerate(self.choices):
            if type(choice) is type(value) and choice == value:
                return i
            if isinstance(choice, (int, np.integer)) and not isinstance(choice, bool):
                if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and value == choice:
                    return i
        raise KeyError(value)


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class SearchSpace(ABC):
    """A set of named categorical decisions with a canonical architecture form.

    Subclasses set :attr:`name` and :attr:`decisions` and implement
    :meth:`_parse_values`, :meth:`_format_values` and :meth:`_costs`.

    Example:
        >>> from edgeopt_plugins.spaces import get_space
        >>> space = get_space("nb201")
        >>> arch = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|none~1|avg_pool_3x3~2|"
        >>> space.parse(arch)["edge_2_1"]
        'skip_connect'
        >>> space.format(space.parse(arch)) == arch
        True
        >>> space.encode([arch]).shape[0]
        1
    """

    name: str
    decisions: tuple[Decision, ...]
    #: Names of the columns of :meth:`costs`.
    cost_names: tuple[str, ...] = ("mflops", "mparams")
    #: Whether :meth:`features` costs milliseconds per architecture (built models) rather than
    #: microseconds (formulas): callers then keep the number of architectures they describe small.
    costly_features: bool = False

    # ----------------------------------------------------------------- subclass hooks
    @abstractmethod
    def _parse_values(self, text: str) -> list[Any]:
        """Split a canonical string into one value per decision (no range checks needed)."""

    @abstractmethod
    def _format_values(self, values: Sequence[Any]) -> str:
        """Inverse of :meth:`_parse_values` for valid values."""

    @abstractmethod
    def _costs(self, indices: np.ndarray) -> np.ndarray:
        """FLOPs-like costs, one row per row of ``indices``: columns :attr:`cost_names`."""

    # ----------------------------------------------------------------- basic facts
    @functools.cached_property
    def names(self) -> tuple[str, ...]:
        """Decision names, in order."""
        return tuple(d.name for d in self.decisions)

    @functools.cached_property
    def cardinalities(self) -> np.ndarray:
        """Number of choices of each decision."""
        return np.array([len(d.choices) for d in self.decisions], dtype=np.int64)

    @property
    def size(self) -> int:
        """Number of architectures in the space."""
        return math.prod(int(c) for c in self.cardinalities)

    @property
    def is_finite_enumerable(self) -> bool:
        """Whether :meth:`enumerate` is allowed (the space is small enough)."""
        return self.size <= ENUMERATE_LIMIT

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, decisions={len(self.decisions)}, size={self.size})"

    # ----------------------------------------------------------------- conversions
    def parse(self, text: str) -> dict[str, Any]:
        """Parse and validate a canonical architecture string.

        Args:
            text: The architecture in this space's canonical form.

        Returns:
            ``{decision name: value}`` in decision order.

        Raises:
            ArchitectureError: naming the bad part when the string is malformed
                or outside the space.
        """
        return dict(zip(self.names, self._values_of(self.indices_of(text))))

    def format(self, arch: ArchLike) -> str:
        """Canonical string of an architecture given as a params dict or a string."""
        return self._format_values(self._values_of(self.indices_of(arch)))

    def canonical(self, arch: ArchLike) -> str:
        """Alias of :meth:`format`: the canonical string (validates the input)."""
        return self.format(arch)

    def validate(self, arch: ArchLike) -> None:
        """Raise :class:`ArchitectureError` if ``arch`` is not in the space."""
        self.indices_of(arch)

    def contains(self, arch: ArchLike) -> bool:
        """Whether ``arch`` is a valid architecture of this space."""
        try:
            self.indices_of(arch)
        except ArchitectureError:
            return False
        return True

    def indices_of(self, arch: ArchLike) -> tuple[int, ...]:
        """Choice indices of one architecture (string or params dict)."""
        if isinstance(arch, str):
            return self._indices_of_text(arch)
        if isinstance(arch, Mapping):
            return self._indices_of_params(arch)
        raise ArchitectureError(
            f"{self.name}: expected an architecture string or a dict of decisions, got {type(arch).__name__}"
        )

    @functools.lru_cache(maxsize=200_000)  # noqa: B019 - spaces are long-lived singletons
    def _indices_of_text(self, text: str) -> tuple[int, ...]:
        try:
            values = self._parse_values(text.strip())
        except ArchitectureError as err:
            raise ArchitectureError(f"{self.name} architecture {_short(text)!r}: {err}") from None
        if len(values) != len(self.decisions):  # pragma: no cover - subclasses check lengths
            raise ArchitectureError(f"{self.name} architecture {_short(text)!r}: wrong number of decisions")
        out = []
        for decision, value in zip(self.decisions, values):
            try:
                out.append(decision.index(value))
            except KeyError:
                raise ArchitectureError(
                    f"{self.name} architecture {_short(text)!r}: {decision.name} = {value!r} is not one of "
                    f"{', '.join(map(str, decision.choices))}"
                ) from None
        return tuple(out)

    def _indices_of_params(self, params: Mapping[str, Any]) -> tuple[int, ...]:
        unknown = [k for k in params if k not in self.names]
        if unknown:
            raise ArchitectureError(f"{self.name}: unknown decision(s) {', '.join(map(repr, unknown))}")
        out = []
        for decision in self.decisions:
            if decision.name not in params:
                raise ArchitectureError(f"{self.name}: decision {decision.name!r} is missing")
            try:
                out.append(decision.index(params[decision.name]))
            except KeyError:
                raise ArchitectureError(
                    f"{self.name}: {decision.name} = {params[decision.name]!r} is not one of "
                    f"{', '.join(map(str, decision.choices))}"
                ) from None
        return tuple(out)

    def _values_of(self, indices: Sequence[int]) -> list[Any]:
        return [d.choices[int(i)] for d, i in zip(self.decisions, indices)]

    def to_indices(self, archs: Iterable[ArchLike] | np.ndarray) -> np.ndarray:
        """Choice-index matrix ``(n, n_decisions)`` of many architectures.

        An integer array of that shape is checked and returned unchanged.
        """
        if isinstance(archs, np.ndarray) and archs.dtype.kind in "iu":
            self._check_index_matrix(archs)
            return archs
        if isinstance(archs, (str, Mapping)):
            raise InputError(f"{self.name}: expected a list of architectures, got a single {type(archs).__name__}")
        rows = [self.indices_of(a) for a in archs]
        if not rows:
            return np.zeros((0, len(self.decisions)), dtype=np.int64)
        return np.asarray(rows, dtype=np.int64)

    def _check_index_matrix(self, idx: np.ndarray) -> None:
        if idx.ndim != 2 or idx.shape[1] != len(self.decisions):
            raise InputError(f"{self.name}: index matrix must have shape (n, {len(self.decisions)}), got {idx.shape}")
        if idx.size and ((idx < 0).any() or (idx >= self.cardinalities).any()):
            raise InputError(f"{self.name}: index matrix has out-of-range choice indices")

    def from_indices(self, indices: np.ndarray | Sequence[Sequence[int]]) -> list[str]:
        """Canonical strings of the rows of a choice-index matrix."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.ndim == 1:
            idx = idx[None, :]
        self._check_index_matrix(idx)
        return [self._format_values(self._values_of(row)) for row in idx]

    # ----------------------------------------------------------------- enumerate / sample
    def enumerate(self) -> list[str]:
        """All architectures as canonical strings (finite, small spaces only).

        Raises:
            InputError: if the space has more than two million architectures.
        """
        return self.from_indices(self.all_indices())

    def all_indices(self) -> np.ndarray:
        """Choice-index matrix of every architecture, in lexicographic order (small spaces only)."""
        if not self.is_finite_enumerable:
            raise InputError(f"{self.name}: the space has {self.size:.3g} architectures; too many to enumerate "
                             f"(more than {ENUMERATE_LIMIT:,}): draw a sample instead")
        grid = itertools.product(*[range(int(c)) for c in self.cardinalities])
        return np.array(list(grid), dtype=np.int64)

    def sample(self, n: int, *, seed: int | None = None, unique: bool = True) -> list[str]:
        """Draw ``n`` architectures uniformly at random.

        Args:
            n: How many.
            seed: Seed of the generator; the same seed gives the same list.
            unique: Draw without repetition (``n`` must not exceed :attr:`size`).
        """
        return self.from_indices(self.sample_indices(n, seed=seed, unique=unique))

    def sample_indices(self, n: int, *, seed: int | None = None, unique: bool = True) -> np.ndarray:
        """Like :meth:`sample` but returns the choice-index matrix."""
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
            raise InputError(f"{self.name}: number of samples must be a non-negative integer, got {n!r}")
        if unique and n > self.size:
            raise InputError(f"{self.name}: cannot draw {n} distinct architectures from a space of {self.size}")
        rng = np.random.default_rng(seed)
        card = self.cardinalities
        out = rng.integers(0, card, size=(n, len(card)))
        if unique and n:
            seen: dict[tuple[int, ...], None] = {}
            for row in out:
                seen.setdefault(tuple(int(v) for v in row))
            while len(seen) < n:
                seen.setdefault(tuple(int(v) for v in rng.integers(0, card)))
            out = np.array(list(seen)[:n], dtype=np.int64)
        return out.astype(np.int64)

    # ----------------------------------------------------------------- encodings
    @functools.cached_property
    def one_hot_width(self) -> int:
        """Width of the one-hot encoding."""
        return int(self.cardinalities.sum())

    @functools.cached_property
    def _offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.cardinalities)[:-1]]).astype(np.int64)

    def one_hot(self, archs: Iterable[ArchLike] | np.ndarray) -> np.ndarray:
        """One-hot encoding ``(n, sum of choices)``, float32, one block per decision."""
        idx = self.to_indices(archs)
        out = np.zeros((idx.shape[0], self.one_hot_width), dtype=np.float32)
        if idx.shape[0]:
            out[np.arange(idx.shape[0])[:, None], idx + self._offsets] = 1.0
        return out

    def costs(self, archs: Iterable[ArchLike] | np.ndarray) -> np.ndarray:
        """FLOPs-like summary ``(n, len(cost_names))``: analytic MFLOPs, Mparams, ..."""
        return np.asarray(self._costs(self.to_indices(archs)), dtype=np.float64)

    def flops(self, archs: Iterable[ArchLike] | np.ndarray) -> np.ndarray:
        """MFLOPs of each architecture (the classic device-agnostic latency proxy).

        Raises:
            InputError: for a space without costs (a user space without a PyTorch ``build``).
        """
        if not self.cost_names:
            raise InputError(f"{self.name}: the space has no FLOPs (give it a PyTorch build to count them)")
        return self.costs(archs)[:, 0]

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the columns of :meth:`features`."""
        return self.cost_names

    def features(self, archs: Iterable[ArchLike] | np.ndarray) -> np.ndarray:
        """Device-agnostic numbers describing each architecture: ``(n, len(feature_names))``, float64, >= 0.

        The built-in spaces give their analytic costs (:meth:`costs`). A user space with
        a PyTorch ``build`` gives layer statistics of the built model, counted by PyTorch
        (FLOPs and parameters per layer kind, activation memory, depth; see
        :data:`~edgeopt_plugins.spaces.LAYER_FEATURES`), cached per architecture. A space
        without either has no features (zero columns). Predictors use them through
        :meth:`encode` without knowing the space.

        Example:
            >>> from edgeopt_plugins.spaces import get_space
            >>> space = get_space("nb201")
            >>> space.features(space.sample(3, seed=0)).shape == (3, len(space.feature_names))
            True
        """
        return self.costs(archs)

    def encode(self, archs: Iterable[ArchLike] | np.ndarray, kind: str = "both") -> np.ndarray:
        """Fixed-length float32 vector per architecture.

        Args:
            archs: Architectures (strings, params dicts or an index matrix).
            kind: ``"onehot"``, ``"summary"`` (log1p of :meth:`features`) or ``"both"``.
        """
        if kind not in ("onehot", "summary", "both"):
            raise InputError(f"encode: kind must be 'onehot', 'summary' or 'both', got {kind!r}")
        idx = self.to_indices(archs)
        parts = []
        if kind in ("onehot", "both"):
            parts.append(self.one_hot(idx))
        if kind in ("summary", "both"):
            parts.append(np.log1p(self.features(idx)).astype(np.float32))
        return np.concatenate(parts, axis=1)

    # ----------------------------------------------------------------- Optuna glue
    def distributions(self, names: Mapping[str, str] | None = None) -> dict[str, optuna.distributions.BaseDistribution]:
        """Optuna distribution per decision, keyed by parameter name.

        ``CategoricalDistribution`` for the built-in spaces; a space made by
        :func:`~edgeopt_plugins.spaces.from_optuna` gives back the user's own
        (``IntDistribution``/``FloatDistribution`` with a step included).

        Args:
            names: Optional mapping from decision name to the user's parameter name.
        """
        rename = self._param_names(names)
        return {rename[d.name]: d.distribution() for d in self.decisions}

    def suggest(self, trial: Any, *, names: Mapping[str, str] | None = None) -> str:
        """Ask an Optuna trial for every decision and return the canonical string.

        Args:
            trial: An ``optuna.Trial`` (anything with ``suggest_categorical``, and
                ``suggest_int``/``suggest_float`` for integer and float decisions).
            names: Optional mapping from decision name to the parameter name to use.

        Example:
            >>> import optuna
            >>> from edgeopt_plugins.spaces import get_space
            >>> space = get_space("nb201")
            >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
            >>> study.optimize(lambda t: len(space.suggest(t)), n_trials=2)
            >>> space.contains(space.format(dict(study.best_params)))
            True
        """
        rename = self._param_names(names)
        values = {d.name: d.suggest(trial, rename[d.name]) for d in self.decisions}
        return self.format(values)

    def params_to_arch(self, params: Mapping[str, Any], names: Mapping[str, str] | None = None) -> str | None:
        """Canonical string from a trial's params, or ``None`` if a decision is absent."""
        rename = self._param_names(names)
        try:
            values = {d.name: params[rename[d.name]] for d in self.decisions}
        except KeyError:
            return None
        return self.format(values)

    def arch_to_params(self, arch: ArchLike, names: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Trial params (with the user's parameter names) of an architecture."""
        rename = self._param_names(names)
        return {rename[k]: v for k, v in self.parse(self.format(arch)).items()}

    def _param_names(self, names: Mapping[str, str] | None) -> dict[str, str]:
        rename = {n: n for n in self.names}
        if names:
            unknown = [k for k in names if k not in rename]
            if unknown:
                raise InputError(f"{self.name}: parameter mapping names unknown decision(s) {', '.join(unknown)}")
            rename.update(names)
            if len(set(rename.values())) != len(rename):
                raise InputError(f"{self.name}: parameter mapping gives two decisions the same name")
        return rename
