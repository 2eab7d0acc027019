"""NNI model spaces for our search spaces, and the translation between NNI samples and architectures.

NNI describes a design as a *sample*: ``{label: value}`` over the labelled
mutables of a model space. Our spaces describe it as a canonical string. Two
sample layouts are known:

- **our own**: labels are the decision names and values our choice values, as in
  the torch-free space :func:`nni_space` builds (``{"edge_1_0": "nor_conv_3x3", ...}``);
- **NNI's hub NAS-Bench-201** (``nni.nas.hub.pytorch.NasBench201``): labels
  ``cell/<from>_<to>`` and the conv ops named ``conv_1x1`` / ``conv_3x3``
  (:data:`NB201_HUB_LABELS`).

Any other layout is described with an :class:`NNILabels`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from nni.mutable import Categorical, MutableDict
from nni.nas.space import BaseModelSpace

from edgeopt_plugins.exceptions import ArchitectureError, InputError
from edgeopt_plugins.spaces import NB201_EDGES, ArchLike, SearchSpace, get_space

__all__ = [
    "NNILabels",
    "NB201_HUB_LABELS",
    "LabelsLike",
    "nni_space",
    "arch_to_sample",
    "sample_to_arch",
    "resolve_labels",
    "check_choices",
]


@dataclass(frozen=True)
class NNILabels:
    """How the decisions of a search space appear in an NNI sample.

    Attributes:
        names: Decision name -> NNI label (every decision of the space).
        values: Our choice value -> NNI value, for values NNI spells differently
            (values not listed are the same on both sides).

    Example:
        >>> labels = NNILabels({"edge_1_0": "op"}, {"nor_conv_3x3": "conv3"})
        >>> labels.label("edge_1_0"), labels.to_nni("nor_conv_3x3"), labels.from_nni("conv3")
        ('op', 'conv3', 'nor_conv_3x3')
    """

    names: Mapping[str, str]
    values: Mapping[Any, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(set(self.names.values())) != len(self.names):
            raise InputError(f"NNILabels: two decisions share an NNI label in {dict(self.names)}")
        if len(set(self.values.values())) != len(self.values):
            raise InputError(f"NNILabels: two values map to the same NNI value in {dict(self.values)}")

    @functools.cached_property
    def _inverse(self) -> dict[Any, Any]:
        return {v: k for k, v in self.values.items()}

    def label(self, decision: str) -> str:
        """The NNI label of ``decision``."""
        return self.names[decision]

    def to_nni(self, value: Any) -> Any:
        """The NNI spelling of one of our choice values."""
        return self.values.get(value, value)

    def from_nni(self, value: Any) -> Any:
        """Our spelling of an NNI value.

        Raises:
            ArchitectureError: for one of our values that NNI spells differently.
        """
        if value in self._inverse:
            return self._inverse[value]
        if value in self.values:
            raise ArchitectureError(f"value {value!r} is spelled {self.values[value]!r} in this NNI space")
        return value

    @classmethod
    def identity(cls, space: SearchSpace) -> NNILabels:
        """Labels equal to the decision names, values unchanged (the layout of :func:`nni_space`)."""
        return cls({n: n for n in space.names})


#: The layout of NNI's hub ``NasBench201``: decision ``edge_<to>_<from>`` is label
#: ``cell/<from>_<to>``; ``nor_conv_1x1``/``nor_conv_3x3`` are ``conv_1x1``/``conv_3x3``.
NB201_HUB_LABELS = NNILabels(
    {f"edge_{to}_{frm}": f"cell/{frm}_{to}" for to, frm in NB201_EDGES},
    {"nor_conv_1x1": "conv_1x1", "nor_conv_3x3": "conv_3x3"},
)

#: Known sample layouts per space name, tried in order after our own.
_KNOWN_LAYOUTS: dict[str, tuple[NNILabels, ...]] = {"nb201": (NB201_HUB_LABELS,)}

LabelsLike = Union[NNILabels, Mapping[str, str], None]


class _DictModelSpace(BaseModelSpace, MutableDict):
    """A torch-free NNI model space: a dict of categorical choices; freezing gives the sample itself."""


def nni_space(space: str | SearchSpace) -> BaseModelSpace:
    """A torch-free NNI model space with one ``nni.mutable.Categorical`` per decision.

    Labels are the decision names and values our choice values. Frozen models are
    plain sample dicts, so evaluating a design costs only what your evaluator does
    (a table lookup, a predictor call, a measurement): use it with
    :class:`~edgeopt_plugins.strategies.ArchEvaluator` or
    :func:`~edgeopt_plugins.strategies.run_nni_search`.

    Args:
        space: Our search space (name or instance).

    Returns:
        An ``nni.nas.space.BaseModelSpace`` to wrap in an executable space, e.g.
        ``RawFormatModelSpace(nni_space("nb201"), evaluator)``.

    Example:
        >>> ms = nni_space("nb201")
        >>> list(ms.simplify())[:2]
        ['edge_1_0', 'edge_2_0']
        >>> ms.simplify()["edge_1_0"].values[:2]
        ['none', 'skip_connect']
    """
    space = get_space(space)
    return _DictModelSpace({d.name: Categorical(list(d.choices), label=d.name) for d in space.decisions})


def arch_to_sample(space: str | SearchSpace, arch: ArchLike, *, labels: LabelsLike = None) -> dict[str, Any]:
    """The NNI sample of an architecture.

    Args:
        space: Our search space (name or instance).
        arch: Canonical string or params dict.
        labels: Sample layout (default: the decision names and our values).

    Example:
        >>> arch = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|none~1|avg_pool_3x3~2|"
        >>> arch_to_sample("nb201", arch, labels=NB201_HUB_LABELS)["cell/0_1"]
        'conv_3x3'
    """
    space = get_space(space)
    layout = _as_labels(space, labels)
    return {layout.label(k): layout.to_nni(v) for k, v in space.parse(space.format(arch)).items()}


def sample_to_arch(space: str | SearchSpace, sample: Mapping[str, Any], *, labels: LabelsLike = None) -> str:
    """The canonical architecture of an NNI sample.

    Args:
        space: Our search space (name or instance).
        sample: ``{label: value}``, e.g. ``model.sample`` of a frozen NNI model.
        labels: Sample layout; by default it is recognised from the sample's
            labels among the known layouts (ours, NNI's hub NAS-Bench-201).

    Raises:
        ArchitectureError: if a label is unknown or missing, or a value is not a choice.

    Example:
        >>> sample = {"cell/0_1": "conv_3x3", "cell/0_2": "none", "cell/1_2": "skip_connect",
        ...           "cell/0_3": "conv_1x1", "cell/1_3": "none", "cell/2_3": "avg_pool_3x3"}
        >>> sample_to_arch("nb201", sample)
        '|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|none~1|avg_pool_3x3~2|'
    """
    space = get_space(space)
    layout = resolve_labels(space, labels, sample.keys())
    by_label = {layout.label(n): n for n in space.names}
    unknown = [k for k in sample if k not in by_label]
    if unknown:
        raise ArchitectureError(f"{space.name}: NNI sample has unknown label(s) {', '.join(map(repr, unknown))}")
    params = {}
    for label, value in sample.items():
        try:
            params[by_label[label]] = layout.from_nni(value)
        except ArchitectureError as err:
            raise ArchitectureError(f"{space.name}: NNI label {label!r}: {err}") from None
    return space.format(params)


def resolve_labels(space: SearchSpace, labels: LabelsLike, present: Iterable[str]) -> NNILabels:
    """The sample layout to use with an NNI space whose labels are ``present``.

    Args:
        space: Our search space.
        labels: An explicit layout (returned as an :class:`NNILabels`), or ``None``
            to recognise one of the known layouts from ``present``.
        present: Labels of the NNI model space or sample.

    Raises:
        InputError: when ``labels`` is ``None`` and no known layout has exactly these labels.
    """
    if labels is not None:
        return _as_labels(space, labels)
    found = set(present)
    for layout in (NNILabels.identity(space), *_KNOWN_LAYOUTS.get(space.name, ())):
        if set(layout.names.values()) == found:
            return layout
    raise InputError(
        f"{space.name}: cannot tell which decisions the NNI labels {sorted(found)} are; "
        "pass labels=NNILabels({decision: label, ...})"
    )


def check_choices(space: SearchSpace, layout: NNILabels, mutables: Mapping[str, Any]) -> None:
    """Check that an NNI model space offers exactly our choices under ``layout``.

    Args:
        space: Our search space.
        layout: The sample layout.
        mutables: ``model_space.simplify()`` of the NNI model space.

    Raises:
        InputError: naming the first label whose choices differ, or a label that is
            not a categorical choice.
    """
    for decision in space.decisions:
        label = layout.label(decision.name)
        mutable = mutables.get(label)
        if not isinstance(mutable, Categorical):
            raise InputError(f"{space.name}: NNI label {label!r} ({decision.name}) is not a Categorical: {mutable!r}")
        expected = [layout.to_nni(c) for c in decision.choices]
        if sorted(map(repr, mutable.values)) != sorted(map(repr, expected)):
            raise InputError(
                f"{space.name}: NNI label {label!r} offers {mutable.values}, expected {expected} ({decision.name})"
            )


def _as_labels(space: SearchSpace, labels: LabelsLike) -> NNILabels:
    """An :class:`NNILabels` covering every decision of ``space``."""
    if labels is None:
        return NNILabels.identity(space)
    layout = labels if isinstance(labels, NNILabels) else NNILabels(dict(labels))
    missing = [n for n in space.names if n not in layout.names]
    unknown = [n for n in layout.names if n not in space.names]
    if missing or unknown:
        raise InputError(
            f"{space.name}: labels must name every decision exactly "
            f"(missing: {missing or 'none'}; unknown: {unknown or 'none'})"
        )
    return layout
