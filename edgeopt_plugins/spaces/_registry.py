"""Finding a space by name, by ``module:attr`` or by spec file: the one resolver every entry point uses.

- :func:`get_space` looks a *name* up: the built-in spaces, then the user spaces
  created in this process (each :class:`~edgeopt_plugins.spaces.CustomSpace`
  registers itself). It never imports anything, so names read from files
  (profile sidecars, saved models) cannot run code.
- :func:`resolve_space` also accepts ``"package.module:attr"`` (imported; the
  current folder is importable) and a spec file path (``.json``, ``.yaml``): what
  a user types after ``--space``.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.spaces._base import SearchSpace
from edgeopt_plugins.spaces._custom import CustomSpace
from edgeopt_plugins.spaces._fbnet import FBNetSpace
from edgeopt_plugins.spaces._mnasnet import MnasNetSpace
from edgeopt_plugins.spaces._nb201 import NB201Space
from edgeopt_plugins.spaces._ofa import OFASpace

__all__ = ["BUILTIN_NAMES", "get_space", "available_spaces", "register_space", "resolve_space", "import_object",
           "space_record", "saved_space", "space_reference"]

_FACTORIES: dict[str, Callable[[], SearchSpace]] = {
    "nb201": NB201Space,
    "fbnet": FBNetSpace,
    "ofa": OFASpace,
    "ofa_quant": lambda: OFASpace(quantization=True),
    "mnasnet": MnasNetSpace,
}
BUILTIN_NAMES: tuple[str, ...] = tuple(_FACTORIES)
_INSTANCES: dict[str, SearchSpace] = {}
_USER: dict[str, SearchSpace] = {}

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_SPEC_SUFFIXES = (".json", ".yaml", ".yml")


def available_spaces() -> tuple[str, ...]:
    """Names of the built-in spaces (spaces of your own are found by :func:`resolve_space`)."""
    return BUILTIN_NAMES


def register_space(space: SearchSpace) -> SearchSpace:
    """Make ``space`` findable by its name in this process (a later space of the same name replaces it)."""
    if not isinstance(space, SearchSpace):
        raise InputError(f"register_space: expected a SearchSpace, got {type(space).__name__}")
    if space.name in _FACTORIES:
        raise InputError(f"space name {space.name!r} is taken by a built-in space")
    _USER[space.name] = space
    return space


def get_space(name: str | SearchSpace) -> SearchSpace:
    """The search space called ``name`` (one shared instance per name).

    Args:
        name: A built-in name (:func:`available_spaces`), the name of a user space
            created in this process, or a space (returned unchanged).

    Raises:
        InputError: for an unknown name.
    """
    if isinstance(name, SearchSpace):
        return name
    if isinstance(name, str) and name in _FACTORIES:
        if name not in _INSTANCES:
            _INSTANCES[name] = _FACTORIES[name]()
        return _INSTANCES[name]
    if isinstance(name, str) and name in _USER:
        return _USER[name]
    known = ", ".join((*BUILTIN_NAMES, *_USER))
    raise InputError(f"unknown search space {name!r} (expected one of {known}, "
                     "or a space of your own as module:attribute or a spec .json file)")


def resolve_space(spec: str | os.PathLike[str] | SearchSpace) -> SearchSpace:
    """A space from what a user names: a space, a name, ``"module:attr"`` or a spec file.

    ``module:attr`` imports ``module`` (the current folder is importable) and takes
    ``attr``: a :class:`SearchSpace`, or a function without arguments returning one.
    A path ending in ``.json``/``.yaml``/``.yml`` is read with
    :func:`~edgeopt_plugins.spaces.read_space_spec`. User spaces remember how they
    were found (``space.ref``), so saved models can say how to load them again.

    Raises:
        InputError: one line saying what could not be found or imported, and why.

    Example:
        >>> resolve_space("nb201").name
        'nb201'
        >>> resolve_space("edgeopt_plugins.examples.mobilenet:SPACE").name
        'tiny_mbnet'
    """
    if isinstance(spec, SearchSpace):
        return spec
    if isinstance(spec, os.PathLike) or (isinstance(spec, str) and spec.lower().endswith(_SPEC_SUFFIXES)):
        from edgeopt_plugins.spaces._define import read_space_spec

        return read_space_spec(spec)
    if not isinstance(spec, str):
        raise InputError(f"search space must be a name, 'module:attr', a spec file or a SearchSpace, got "
                         f"{type(spec).__name__}")
    if ":" not in spec or Path(spec).exists():
        return get_space(spec)
    value = import_object(spec, "space")
    if not isinstance(value, SearchSpace) and callable(value):
        try:
            value = value()
        except InputError as err:
            raise InputError(f"space {spec!r}: {err}") from None
        except Exception as err:  # noqa: BLE001 - the user's factory: one line naming it
            raise InputError(f"space {spec!r}: calling it raised {type(err).__name__}: {err}") from None
    if not isinstance(value, SearchSpace):
        raise InputError(f"space {spec!r} is a {type(value).__name__}, not a SearchSpace "
                         "(make one with edgeopt_plugins.spaces.from_optuna or from_nni)")
    if isinstance(value, CustomSpace) and value.ref is None:
        value.ref = spec
    if value.name not in _FACTORIES:
        register_space(value)
    return value


def import_object(text: str, what: str) -> Any:
    """The object ``attr`` of ``module`` named by ``"module:attr"`` (the current folder is importable).

    Raises:
        InputError: for a malformed name, a module that cannot be imported, or a missing attribute.
    """
    module_name, _, attr = text.partition(":")
    if not _DOTTED.match(module_name) or not _DOTTED.match(attr):
        raise InputError(f"{what} {text!r}: expected 'package.module:attribute'")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise InputError(f"{what} {text!r}: cannot import {module_name!r} ({err})") from None
    except InputError as err:
        raise InputError(f"{what} {text!r}: {err}") from None
    except Exception as err:  # noqa: BLE001 - the user's module failed while importing: one line
        raise InputError(f"{what} {text!r}: importing {module_name!r} raised {type(err).__name__}: {err}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InputError(f"{what} {text!r}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def space_reference(space: SearchSpace) -> str:
    """What finds ``space`` again in another process: its name if built in, else how it was resolved.

    Raises:
        InputError: for a space of your own made in this process only (no ``module:attr`` or spec file).
    """
    if space.name in _FACTORIES:
        return space.name
    ref = getattr(space, "ref", None)
    if not ref:
        raise InputError(f"space {space.name!r} was made in this process only; name it as module:attr or a spec "
                         "file (resolve_space) so that other processes can find it")
    return str(ref)


def space_record(space: SearchSpace) -> dict[str, Any]:
    """What a saved file records about its space: the name, and for a user space its spec.

    Example:
        >>> space_record(get_space("nb201"))
        {'space': 'nb201'}
    """
    out: dict[str, Any] = {"space": space.name}
    if isinstance(space, CustomSpace):
        out["space_spec"] = space.to_spec()
    return out


def saved_space(record: Mapping[str, Any], given: str | SearchSpace | None, where: str) -> SearchSpace:
    """The space of a saved file (see :func:`space_record`), checked against the one the caller gives.

    Nothing is imported: a user space comes from ``given``, from this process, or
    (when it has no build) from the recorded spec.

    Raises:
        InputError: for another space, a user space whose decisions changed, or a
            space with build-based features that was not given (the message names
            how it was found when it was saved, e.g. ``--space module:attr``).
    """
    name = record.get("space")
    spec = record.get("space_spec")
    if not isinstance(name, str) or (spec is not None and not isinstance(spec, Mapping)):
        raise InputError(f"{where}: malformed space record")
    fingerprint = spec.get("fingerprint") if spec else None
    if given is not None:
        space = get_space(given)
        if space.name != name:
            raise InputError(f"{where}: saved for space {name!r}, not {space.name!r}")
        if fingerprint and getattr(space, "fingerprint", None) != fingerprint:
            raise InputError(f"{where}: the decisions of space {name!r} changed since it was saved")
        if space.name not in _FACTORIES:
            register_space(space)
        return space
    known = _FACTORIES.get(name) is not None or name in _USER
    if known and (not fingerprint or getattr(get_space(name), "fingerprint", None) == fingerprint):
        return get_space(name)
    if spec is None:
        raise InputError(f"{where}: unknown search space {name!r}")
    hint = spec.get("ref") or "module:attr or a spec file"
    if spec.get("features") or spec.get("build"):
        raise InputError(f"{where}: saved for space {name!r}, whose models come from its PyTorch build: give the "
                         f"space (--space {hint}; in Python load(..., space=...))")
    from edgeopt_plugins.spaces._define import space_from_spec

    return space_from_spec({"name": name, "decisions": spec.get("decisions", {})}, where=where)
