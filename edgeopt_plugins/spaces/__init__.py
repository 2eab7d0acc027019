"""Search spaces: named categorical decisions with a canonical architecture form.

Example:
    >>> from edgeopt_plugins.spaces import get_space, available_spaces
    >>> available_spaces()
    ('nb201', 'fbnet', 'ofa', 'ofa_quant', 'mnasnet')
    >>> get_space("fbnet").size == 9 ** 22
    True
"""

from __future__ import annotations

from collections.abc import Callable

from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.spaces._base import ArchLike, Decision, SearchSpace
from edgeopt_plugins.spaces._fbnet import FBNET_OPS, FBNetSpace
from edgeopt_plugins.spaces._mnasnet import MnasNetSpace
from edgeopt_plugins.spaces._nb201 import NB201_EDGES, NB201_OPS, NB201Space
from edgeopt_plugins.spaces._ofa import OFASpace

__all__ = [
    "ArchLike",
    "Decision",
    "SearchSpace",
    "NB201Space",
    "FBNetSpace",
    "OFASpace",
    "MnasNetSpace",
    "NB201_OPS",
    "NB201_EDGES",
    "FBNET_OPS",
    "get_space",
    "available_spaces",
]

_FACTORIES: dict[str, Callable[[], SearchSpace]] = {
    "nb201": NB201Space,
    "fbnet": FBNetSpace,
    "ofa": OFASpace,
    "ofa_quant": lambda: OFASpace(quantization=True),
    "mnasnet": MnasNetSpace,
}
_INSTANCES: dict[str, SearchSpace] = {}


def available_spaces() -> tuple[str, ...]:
    """Names accepted by :func:`get_space`."""
    return tuple(_FACTORIES)


def get_space(name: str | SearchSpace) -> SearchSpace:
    """The search space called ``name`` (one shared instance per name).

    Args:
        name: One of :func:`available_spaces`, or a space (returned unchanged).

    Raises:
        InputError: for an unknown name.
    """
    if isinstance(name, SearchSpace):
        return name
    if not isinstance(name, str) or name not in _FACTORIES:
        raise InputError(f"unknown search space {name!r} (expected one of {', '.join(_FACTORIES)})")
    if name not in _INSTANCES:
        _INSTANCES[name] = _FACTORIES[name]()
    return _INSTANCES[name]
