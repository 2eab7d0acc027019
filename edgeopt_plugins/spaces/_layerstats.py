"""Layer statistics of a built PyTorch model, counted by PyTorch itself.

One forward pass of batch 1 runs under :class:`torch.utils.flop_counter.FlopCounterMode`
(PyTorch's own FLOP formulas for convolutions, matrix products and attention), with
forward hooks on the leaf modules that attribute those FLOPs, the parameters and the
output sizes to a *layer kind*. No formula here is written per layer type: the kinds
only sort what PyTorch counted.

Layer kinds (:func:`layer_kind`): ``conv`` (a dense k x k convolution, k > 1),
``pointwise`` (1 x 1 convolution), ``depthwise`` (one group per input channel),
``linear``, ``norm``, ``other`` (activations, pooling, anything else). FLOPs of
operations outside leaf modules (a ``torch.matmul`` in a block's ``forward``) count
in ``mflops`` and ``mflops_other``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["LAYER_FEATURES", "layer_kind", "layer_statistics"]

_KINDS = ("conv", "pointwise", "depthwise", "linear")

#: Columns of :func:`layer_statistics`, in order (all non-negative).
LAYER_FEATURES: tuple[str, ...] = (
    "mflops",  # every FLOP PyTorch counted (multiply-add = 2), millions
    "mparams",  # every parameter of the model, millions
    *(f"mflops_{k}" for k in _KINDS),
    "mflops_other",
    *(f"mparams_{k}" for k in _KINDS),
    "activation_mb",  # sum of leaf-module outputs at float32, MB (memory traffic of one inference)
    "peak_activation_mb",  # the largest single leaf output, MB
    "elementwise_mb",  # outputs of norm / activation / pooling layers, MB (memory-bound work)
    "weighted_layers",  # leaf modules with parameters (the network's depth in layers)
    "leaf_modules",  # every leaf module that ran
)


def layer_kind(module: Any) -> str:
    """The kind of a leaf module: ``conv``, ``pointwise``, ``depthwise``, ``linear``, ``norm`` or ``other``.

    Example:
        >>> from torch import nn
        >>> layer_kind(nn.Conv2d(8, 8, 3, groups=8)), layer_kind(nn.Conv2d(8, 4, 1)), layer_kind(nn.ReLU())
        ('depthwise', 'pointwise', 'other')
    """
    from torch import nn

    if isinstance(module, nn.modules.conv._ConvNd):
        if module.groups > 1 and module.groups == module.in_channels:
            return "depthwise"
        if all(k == 1 for k in module.kernel_size):
            return "pointwise"
        return "conv"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)):
        return "norm"
    return "other"


def _tensors(value: Any) -> list[Any]:
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def _leaf_key(module: Any, inputs: tuple) -> tuple:
    """What a leaf call's FLOPs depend on: the module's type and settings, its parameter and input shapes."""
    return (type(module), module.extra_repr(), tuple(tuple(p.shape) for p in module.parameters(recurse=False)),
            tuple((tuple(t.shape), t.dtype) for t in _tensors(inputs)))


def layer_statistics(model: Any, example: Any, *, leaf_flops: dict | None = None) -> np.ndarray:
    """The :data:`LAYER_FEATURES` of ``model`` on one input.

    Args:
        model: A ``torch.nn.Module`` (put in eval mode for the count).
        example: Its input (batch 1), a tensor or a tuple of tensors.
        leaf_flops: A dict shared between calls. Without it, the whole forward pass runs
            under ``FlopCounterMode``, which also counts operations outside leaf modules
            (``torch.matmul`` in a block's ``forward``). With it, each distinct leaf call
            (module type and settings, parameter and input shapes) is counted once, on
            its own, and reused: later models run at plain speed, but operations outside
            leaf modules are not counted (check a few models both ways first, as
            :class:`~edgeopt_plugins.spaces.CustomSpace` does).

    Returns:
        A float64 vector aligned with :data:`LAYER_FEATURES`.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
        >>> stats = dict(zip(LAYER_FEATURES, layer_statistics(net, torch.zeros(1, 3, 4, 4))))
        >>> round(stats["mflops_conv"] * 1e6), round(stats["mflops_linear"] * 1e6), int(stats["weighted_layers"])
        (6912, 2560, 2)
        >>> cache = {}
        >>> bool((layer_statistics(net, torch.zeros(1, 3, 4, 4), leaf_flops=cache) == list(stats.values())).all())
        True
    """
    import contextlib

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False) if leaf_flops is None else None
    flops = dict.fromkeys(_KINDS, 0)
    params = dict.fromkeys(_KINDS, 0)
    totals = {"flops": 0, "activation": 0, "peak": 0, "elementwise": 0, "weighted": 0, "leaves": 0}
    started: dict[int, int] = {}
    busy = [False]  # a leaf counted on its own must not be recorded twice

    def before(module: Any, inputs: Any) -> None:
        if counter is not None:
            started[id(module)] = counter.get_total_flops()

    def leaf_cost(module: Any, inputs: Any) -> int:
        if counter is not None:
            return counter.get_total_flops() - started.pop(id(module), counter.get_total_flops())
        assert leaf_flops is not None
        key = _leaf_key(module, inputs)
        if key not in leaf_flops:
            copies = tuple(t.clone() if isinstance(t, torch.Tensor) else t for t in inputs)
            busy[0] = True
            try:
                with FlopCounterMode(display=False) as alone:
                    module(*copies)
            finally:
                busy[0] = False
            leaf_flops[key] = alone.get_total_flops()
        return leaf_flops[key]

    def after(module: Any, inputs: Any, output: Any) -> None:
        if busy[0]:
            return
        kind = layer_kind(module)
        spent = leaf_cost(module, inputs)
        n_params = sum(p.numel() for p in module.parameters(recurse=False))
        out_elems = sum(t.numel() for t in _tensors(output))
        if kind in flops:
            flops[kind] += spent
            params[kind] += n_params
        else:
            totals["elementwise"] += out_elems
        totals["flops"] += spent
        totals["activation"] += out_elems
        totals["peak"] = max(totals["peak"], out_elems)
        totals["weighted"] += int(n_params > 0)
        totals["leaves"] += 1

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [h for m in leaves for h in (m.register_forward_pre_hook(before), m.register_forward_hook(after))]
    args = example if isinstance(example, tuple) else (example,)
    was_training = model.training
    if was_training:
        model.eval()
    try:
        with torch.no_grad(), counter if counter is not None else contextlib.nullcontext():
            model(*args)
    finally:
        for h in handles:
            h.remove()
        if was_training:
            model.train()
    total = counter.get_total_flops() if counter is not None else totals["flops"]
    mb = 4.0 / 1e6  # float32 bytes, in MB
    row = [
        total / 1e6,
        sum(p.numel() for p in model.parameters()) / 1e6,
        *(flops[k] / 1e6 for k in _KINDS),
        max(0, total - sum(flops.values())) / 1e6,
        *(params[k] / 1e6 for k in _KINDS),
        totals["activation"] * mb,
        totals["peak"] * mb,
        totals["elementwise"] * mb,
        totals["weighted"],
        totals["leaves"],
    ]
    return np.asarray(row, dtype=np.float64)
