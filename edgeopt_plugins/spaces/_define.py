"""Defining a space the way a NAS team already does: Optuna distributions, or a small spec file."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.spaces._base import Decision
from edgeopt_plugins.spaces._custom import (
    BuildFn,
    CustomSpace,
    FloatDecision,
    InputShape,
    IntDecision,
    spec_decisions,
)

__all__ = ["from_optuna", "space_from_spec", "read_space_spec"]


def from_optuna(
    distributions: Mapping[str, Any],
    *,
    name: str,
    build: BuildFn | None = None,
    input_shape: InputShape | None = None,
) -> CustomSpace:
    """A search space from the Optuna distributions a study already uses.

    ``CategoricalDistribution``, ``IntDistribution`` (any step; log scale with step 1)
    and ``FloatDistribution`` *with a step* are finite decisions; a float without a
    step is continuous and refused. The space's :meth:`~edgeopt_plugins.spaces.SearchSpace.suggest`
    and :meth:`~edgeopt_plugins.spaces.SearchSpace.distributions` give back exactly
    these distributions, so an objective that calls ``trial.suggest_int(...)`` and
    the library's samplers agree without any name mapping.

    Args:
        distributions: ``{parameter name: distribution}``, e.g. ``study.best_trial.distributions``.
        name: Name of the space (appears in profiles, tables and saved models).
        build: ``build(params) -> torch.nn.Module`` (random weights are fine): enables real
            measurement and the layer-statistics features.
        input_shape: The model input without the batch, e.g. ``(3, 32, 32)``, or a
            function of the params (when a decision is the resolution).

    Raises:
        InputError: one line for an empty space, a decision with one choice, a float
            without a step, an unknown distribution, or a build that raises or returns no module.

    Example:
        >>> from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
        >>> space = from_optuna({"kernel": CategoricalDistribution([3, 5, 7]),
        ...                      "depth": IntDistribution(2, 4),
        ...                      "width": FloatDistribution(0.5, 1.0, step=0.25)}, name="doc_space")
        >>> space.size, space.format({"kernel": 5, "depth": 3, "width": 0.75})
        (27, '{"kernel": 5, "depth": 3, "width": 0.75}')
    """
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if not isinstance(distributions, Mapping):
        raise InputError(f"from_optuna: expected a dict of Optuna distributions, got {type(distributions).__name__}")
    decisions: list[Decision] = []
    for param, dist in distributions.items():
        if isinstance(dist, CategoricalDistribution):
            decisions.append(Decision(param, tuple(dist.choices)))
        elif isinstance(dist, IntDistribution):
            decisions.append(IntDecision.make(param, dist.low, dist.high, dist.step, dist.log))
        elif isinstance(dist, FloatDistribution):
            if dist.log:
                raise InputError(f"from_optuna: {param!r} is a log-scaled float, which is continuous; "
                                 "use a FloatDistribution with a step or a CategoricalDistribution")
            decisions.append(FloatDecision.make(param, dist.low, dist.high, dist.step))
        else:
            raise InputError(f"from_optuna: {param!r} is a {type(dist).__name__}; expected a Categorical, "
                             "Int or Float (with step) distribution")
    return CustomSpace(name, decisions, build=build, input_shape=input_shape)


def space_from_spec(spec: Mapping[str, Any], *, where: str = "space spec") -> CustomSpace:
    """A space from its JSON description.

    The spec::

        {
          "name": "tiny_mbnet",
          "decisions": {
            "kernel": [3, 5, 7],                               # categorical
            "depth": {"low": 2, "high": 4},                    # integer, step 1
            "width": {"low": 0.5, "high": 1.0, "step": 0.25}   # float with a step
          },
          "build": "my_models:build",                          # optional: module:function
          "input_shape": [3, 32, 32]                           # needed with a build
        }

    Args:
        spec: The parsed JSON.
        where: Where it came from, for error messages.

    Raises:
        InputError: naming ``where`` and the problem.

    Example:
        >>> space_from_spec({"name": "spec_doc", "decisions": {"k": [3, 5], "d": {"low": 1, "high": 3}}}).size
        6
    """
    if not isinstance(spec, Mapping):
        raise InputError(f"{where}: expected a JSON object with 'name' and 'decisions'")
    unknown = set(spec) - {"name", "decisions", "build", "input_shape", "ref", "features", "fingerprint"}
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} "
                         "(expected name, decisions, build, input_shape)")
    if "name" not in spec or "decisions" not in spec:
        raise InputError(f"{where}: needs 'name' and 'decisions'")
    build = spec.get("build")
    try:
        name = spec["name"]
        decisions = spec_decisions(str(name), spec["decisions"])
        fn = None
        if build is not None:
            from edgeopt_plugins.spaces._registry import import_object

            fn = import_object(str(build), "build")
        return CustomSpace(name, decisions, build=fn, input_shape=spec.get("input_shape"))
    except InputError as err:
        raise InputError(f"{where}: {err}") from None


def read_space_spec(path: str | os.PathLike[str]) -> CustomSpace:
    """A space from a spec file (``.json``; ``.yaml``/``.yml`` when PyYAML is installed).

    See :func:`space_from_spec` for the format.

    Raises:
        InputError: for an unreadable or malformed file, naming it.
    """
    from edgeopt_plugins._io import display_path, read_text_file

    p, text = read_text_file(path, "space spec")
    shown = display_path(p)
    if len(text) > 1_000_000:
        raise InputError(f"{shown}: a space spec of {len(text)} characters is implausibly large")
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise InputError(f"{shown}: reading YAML needs PyYAML (pip install pyyaml), or write the spec as JSON"
                             ) from None
        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise InputError(f"{shown}: not valid YAML ({str(err).splitlines()[0]})") from None
    else:
        try:
            spec = json.loads(text)
        except (ValueError, RecursionError) as err:
            reason = err.msg if isinstance(err, json.JSONDecodeError) else "nested too deeply or a huge number"
            raise InputError(f"{shown}: not valid JSON ({reason})") from None
    space = space_from_spec(spec, where=shown)
    space.ref = str(Path(p).resolve())
    return space
