"""Search spaces: named finite decisions with a canonical architecture form.

Five built-in spaces, and spaces of your own (:func:`from_optuna`, :func:`from_nni`,
a spec file, or ``module:attr`` on the command line) that work everywhere a
built-in space does.

Example:
    >>> from edgeopt_plugins.spaces import get_space, available_spaces
    >>> available_spaces()
    ('nb201', 'fbnet', 'ofa', 'ofa_quant', 'mnasnet')
    >>> get_space("fbnet").size == 9 ** 22
    True
"""

from __future__ import annotations

from edgeopt_plugins.spaces._base import ArchLike, Decision, SearchSpace
from edgeopt_plugins.spaces._custom import CustomSpace, FloatDecision, IntDecision
from edgeopt_plugins.spaces._define import from_optuna, read_space_spec, space_from_spec
from edgeopt_plugins.spaces._fbnet import FBNET_OPS, FBNetSpace
from edgeopt_plugins.spaces._from_nni import from_nni
from edgeopt_plugins.spaces._layerstats import LAYER_FEATURES, layer_statistics
from edgeopt_plugins.spaces._mnasnet import MnasNetSpace
from edgeopt_plugins.spaces._nb201 import NB201_EDGES, NB201_OPS, NB201Space
from edgeopt_plugins.spaces._ofa import OFASpace
from edgeopt_plugins.spaces._registry import (
    BUILTIN_NAMES,
    available_spaces,
    get_space,
    import_object,
    register_space,
    resolve_space,
    saved_space,
    space_record,
    space_reference,
)

__all__ = [
    "ArchLike",
    "Decision",
    "IntDecision",
    "FloatDecision",
    "SearchSpace",
    "CustomSpace",
    "NB201Space",
    "FBNetSpace",
    "OFASpace",
    "MnasNetSpace",
    "NB201_OPS",
    "NB201_EDGES",
    "FBNET_OPS",
    "BUILTIN_NAMES",
    "LAYER_FEATURES",
    "get_space",
    "available_spaces",
    "register_space",
    "resolve_space",
    "space_record",
    "import_object",
    "saved_space",
    "space_reference",
    "from_optuna",
    "from_nni",
    "space_from_spec",
    "read_space_spec",
    "layer_statistics",
]
