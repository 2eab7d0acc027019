"""A search space from an NNI 3.0 model space (its labels and choices)."""

from __future__ import annotations

from typing import Any

from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.spaces._base import Decision
from edgeopt_plugins.spaces._custom import BuildFn, CustomSpace, InputShape

__all__ = ["from_nni"]


def from_nni(
    model_space: Any,
    *,
    name: str | None = None,
    input_shape: InputShape | None = None,
    build: BuildFn | None = None,
) -> CustomSpace:
    """A search space with one decision per label of an NNI model space.

    Every mutable of ``model_space.simplify()`` must be categorical: ``LayerChoice``,
    ``nni.choice``/``ValueChoice``, or an ``nni.mutable.Categorical``; its values (the
    candidate names of a ``LayerChoice``) are the choices, the label is the decision name. A design's NNI sample is then
    its params dict, so the strategies and ``run_nni_search`` need no label mapping.

    A PyTorch model space (``nni.nas.nn.pytorch.ModelSpace``) is also the build:
    ``model_space.freeze(sample)`` is the model of a design, measured and counted
    with ``input_shape``.

    Args:
        model_space: An NNI model space (or any NNI mutable with ``simplify()``).
        name: Name of the space (default: the model space's class name, lower case).
        input_shape: Model input without the batch, e.g. ``(3, 32, 32)``; enables
            measurement and features of a PyTorch model space.
        build: Another builder ``params -> torch.nn.Module`` (default: freezing the space).

    Raises:
        InputError: for a continuous or multi-pick mutable, a label with one choice,
            choices that are not JSON scalars, or a space without labels.

    Example:
        >>> import nni
        >>> from nni.mutable import MutableDict
        >>> space = from_nni(MutableDict({"k": nni.choice("k", [3, 5]), "act": nni.choice("act", ["relu", "gelu"])}),
        ...                  name="nni_doc")
        >>> space.names, space.size
        (('k', 'act'), 4)
    """
    from nni.mutable import Categorical

    if not hasattr(model_space, "simplify"):
        raise InputError(f"from_nni: expected an NNI model space, got {type(model_space).__name__}")
    try:
        mutables = model_space.simplify()
    except Exception as err:  # noqa: BLE001 - NNI's own validation of the user's space
        raise InputError(f"from_nni: NNI could not list the model space's choices ({type(err).__name__}: {err})"
                         ) from None
    decisions = []
    for label, mutable in mutables.items():
        if not isinstance(mutable, Categorical):
            raise InputError(f"from_nni: label {label!r} is a {type(mutable).__name__}; only categorical choices "
                             "are finite decisions (LayerChoice, nni.choice, Categorical)")
        decisions.append(Decision(str(label), tuple(mutable.values)))
    space_name = name or type(model_space).__name__.lower()
    if build is None and input_shape is not None and _is_torch_module(model_space):
        build = _Freeze(model_space)
    return CustomSpace(space_name, decisions, build=build, input_shape=input_shape)


def _is_torch_module(obj: Any) -> bool:
    import torch

    return isinstance(obj, torch.nn.Module)


class _Freeze:
    """``params -> model_space.freeze(params)``: the PyTorch model of one NNI sample."""

    def __init__(self, model_space: Any) -> None:
        self.model_space = model_space

    def __call__(self, params: dict[str, Any]) -> Any:
        return self.model_space.freeze(dict(params))
