"""How a space's decisions appear in a study: parameter names and choice values.

A study may name the architecture's parameters differently from the space's
decisions (``"cell/e0"`` for ``edge_1_0``), list their choices in another order, or
spell them differently (``"conv3x3"`` for ``nor_conv_3x3``). :class:`ParamMap`
translates both ways, working only from the :class:`~edgeopt_plugins.spaces.SearchSpace`
interface (decisions and their choices), so it serves any space:

- **names**: given (``param_names``), else the decision's own name, else *detected*:
  the first categorical parameter of the trial whose set of choices equals the next
  unmatched decision's (by choice sets and order);
- **values**: the study's choices are learned from the distribution the objective
  suggests; equal sets map by value, a given ``choice_values`` map applies, and lists
  of the same length with other spellings map by position (with a warning).

Numpy scalars (``np.str_``, ``np.int64``) are accepted wherever a value is read.

Example:
    >>> from optuna.distributions import CategoricalDistribution
    >>> from edgeopt_plugins.spaces import get_space
    >>> space = get_space("nb201")
    >>> pm = ParamMap(space)
    >>> ops = list(space.decisions[0].choices)[::-1]          # same choices, another order
    >>> [pm.match(f"cell/{i}", CategoricalDistribution(ops)) for i in range(6)]
    [0, 1, 2, 3, 4, 5]
    >>> pm.params_of("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")["cell/0"]
    'none'
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from edgeopt_plugins.exceptions import EdgeOptWarning, InputError
from edgeopt_plugins.spaces import SearchSpace

__all__ = ["ParamMap", "plain"]

ChoiceValues = Mapping[Any, Any] | Mapping[str, Mapping[Any, Any]]


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds; anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def _key(value: Any) -> tuple[bool, Any]:
    """Hashable identity of a choice value (``True`` and ``1`` stay apart, ``np.int64(3)`` is ``3``,
    ``0.30000000000000004`` is ``0.3``)."""
    value = plain(value)
    if isinstance(value, float):
        value = round(value, 9)
    return isinstance(value, bool), value


def _choices(distribution: BaseDistribution) -> tuple[Any, ...] | None:
    """The finite values of a study distribution: a categorical's choices, an integer or stepped
    float range; ``None`` for a continuous float (no decision can stand for it)."""
    if isinstance(distribution, CategoricalDistribution):
        return tuple(distribution.choices)
    if isinstance(distribution, IntDistribution):
        return tuple(range(distribution.low, distribution.high + 1, distribution.step))
    if isinstance(distribution, FloatDistribution) and distribution.step is not None:
        n = int(round((distribution.high - distribution.low) / distribution.step)) + 1
        return tuple(round(distribution.low + i * distribution.step, 12) for i in range(n))
    return None


class ParamMap:
    """Two-way translation between architectures and a study's parameters (see the module docstring).

    Args:
        space: The search space.
        names: ``{decision name: study parameter name}`` for decisions named otherwise.
        choice_values: ``{space value: study value}`` for every decision, or
            ``{decision name: {space value: study value}}``, for choices spelt otherwise.
    """

    def __init__(self, space: SearchSpace, names: Mapping[str, str] | None = None,
                 choice_values: ChoiceValues | None = None) -> None:
        self.space = space
        self.explicit = bool(names)
        given = space._param_names(names) if names else {}
        self._param: dict[int, str] = {i: given[d.name] for i, d in enumerate(space.decisions) if given}
        self._theirs: dict[int, tuple[Any, ...]] = {}
        self._to_theirs: dict[int, dict[tuple[bool, Any], Any]] = {}
        self._to_ours: dict[int, dict[tuple[bool, Any], int]] = {}
        self._dists: dict[int, BaseDistribution] = {}
        self._value_maps = self._split_choice_values(choice_values)

    def _split_choice_values(self, choice_values: ChoiceValues | None) -> dict[int, dict[tuple[bool, Any], Any]]:
        if not choice_values:
            return {}
        names = {d.name: i for i, d in enumerate(self.space.decisions)}
        per_decision = all(k in names and isinstance(v, Mapping) for k, v in choice_values.items())
        out = {}
        for i, d in enumerate(self.space.decisions):
            mapping = choice_values.get(d.name, {}) if per_decision else choice_values
            out[i] = {_key(k): v for k, v in mapping.items()}  # type: ignore[union-attr]
        return out

    # ----------------------------------------------------------------- what is known
    @property
    def complete(self) -> bool:
        """Whether every decision's parameter and choices are known."""
        return len(self._theirs) == len(self.space.decisions)

    def param_names(self) -> dict[str, str]:
        """``{decision name: study parameter name}`` as far as known."""
        return {self.space.decisions[i].name: p for i, p in sorted(self._param.items())}

    def decision_of(self, param: str) -> int | None:
        for i, name in self._param.items():
            if name == param:
                return i
        return None

    def distributions(self) -> dict[str, BaseDistribution]:
        """The study's distributions of the architecture's parameters (known ones only)."""
        return {self._param[i]: self._dists[i] for i in self._theirs}

    # ----------------------------------------------------------------- learning the mapping
    def match(self, param: str, distribution: BaseDistribution) -> int | None:
        """The decision a study parameter stands for (learning its choices), or ``None``."""
        theirs = _choices(distribution)
        if theirs is None:
            return None
        d = self.decision_of(param)
        if d is None and not self.explicit:
            names = {dec.name: i for i, dec in enumerate(self.space.decisions)}
            if param in names and names[param] not in self._param:
                d = names[param]
            else:
                wanted = {_key(v) for v in theirs}
                d = next((i for i, dec in enumerate(self.space.decisions)
                          if i not in self._param and {_key(v) for v in dec.choices} == wanted), None)
        if d is None:
            return None
        self._param[d] = param
        self._dists[d] = distribution
        if d not in self._theirs or self._theirs[d] != theirs:
            self._learn_choices(d, theirs)
        return d

    def learn(self, distributions: Mapping[str, BaseDistribution]) -> None:
        """Match every parameter of a finished trial (in the order the objective suggested them)."""
        for name, dist in distributions.items():
            self.match(name, dist)

    def _learn_choices(self, d: int, theirs: tuple[Any, ...]) -> None:
        decision = self.space.decisions[d]
        ours = [_key(v) for v in decision.choices]
        their_keys = [_key(v) for v in theirs]
        given = self._value_maps.get(d, {})
        mapped = [_key(given.get(k, decision.choices[i])) for i, k in enumerate(ours)]
        if set(mapped) <= set(their_keys):
            to_theirs = {k: theirs[their_keys.index(m)] for k, m in zip(ours, mapped)}
        elif len(theirs) == len(ours):
            warnings.warn(
                f"edgeopt: parameter {self._param[d]!r} has choices {list(theirs)} where {self.space.name} decision "
                f"{decision.name!r} has {list(decision.choices)}; mapping them by position (pass choice_values= to "
                "map them yourself)", EdgeOptWarning, stacklevel=4)
            to_theirs = dict(zip(ours, theirs))
        else:
            raise InputError(
                f"edgeopt: parameter {self._param[d]!r} has choices {list(theirs)}, which cannot stand for "
                f"{self.space.name} decision {decision.name!r} with choices {list(decision.choices)}; pass "
                f"choice_values={{{decision.name!r}: {{space value: your value}}}} or fix param_names")
        self._theirs[d] = theirs
        self._to_theirs[d] = to_theirs
        self._to_ours[d] = {_key(v): i for i, v in enumerate(to_theirs[k] for k in ours)}

    def missing_message(self, params: Mapping[str, Any]) -> str:
        """One line naming the mapping to pass when a trial's parameters are not the space's decisions."""
        missing = [d.name for i, d in enumerate(self.space.decisions) if i not in self._theirs]
        example = ", ".join(f"{name!r}: '<your parameter>'" for name in missing[:2])
        return (f"edgeopt: the {self.space.name} decision(s) {', '.join(missing)} are not among the trial's "
                f"finite parameters {sorted(params)} (matched by name or by choice set and order); pass "
                f"param_names={{{example}{', ...' if len(missing) > 2 else ''}}}")

    # ----------------------------------------------------------------- translation
    def value_of(self, d: int, choice_index: int) -> Any:
        """The study's value of choice ``choice_index`` of decision ``d``."""
        ours = _key(self.space.decisions[d].choices[choice_index])
        return self._to_theirs[d][ours] if d in self._to_theirs else self.space.decisions[d].choices[choice_index]

    def params_of(self, arch: str) -> dict[str, Any]:
        """The study's parameters of an architecture (decisions whose parameter is known)."""
        idx = self.space.indices_of(arch)
        return {self._param.get(d, self.space.decisions[d].name): self.value_of(d, int(c)) for d, c in enumerate(idx)}

    def indices_of(self, params: Mapping[str, Any]) -> dict[int, int]:
        """``{decision: choice index}`` of the decisions present (with a known value) in ``params``."""
        out = {}
        for d, name in self._param.items():
            if name in params and d in self._to_ours:
                c = self._to_ours[d].get(_key(params[name]))
                if c is not None:
                    out[d] = c
        return out

    def arch_of(self, params: Mapping[str, Any]) -> str | None:
        """Canonical architecture of a trial's parameters, or ``None`` when a decision is absent."""
        idx = self.indices_of(params)
        if len(idx) != len(self.space.decisions):
            return None
        return self.space.from_indices(np.array([[idx[d] for d in range(len(self.space.decisions))]]))[0]
