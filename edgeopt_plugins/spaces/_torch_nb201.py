"""PyTorch builder for NAS-Bench-201 architectures (for on-device latency).

The network follows the NAS-Bench-201 inference skeleton (``TinyNetwork`` /
``InferCell`` of the reference implementation), with random weights:

* stem: 3x3 conv (3 -> C, no bias) + BN;
* three stages of ``cells_per_stage`` cells with C, 2C and 4C channels,
  separated by the NB201 residual reduction block (stride 2:
  ReLU-conv3x3-BN, ReLU-conv3x3-BN, shortcut 2x2 avg-pool + 1x1 conv);
* head: BN-ReLU, global average pool, linear classifier.

Weights use PyTorch's default initialisation; BN running statistics are then
set from one random batch so that activations keep a realistic scale.

A cell has four nodes; node 0 is the cell input, node ``i`` is the sum of
the edge operations applied to every earlier node, and node 3 is the cell
output. The six edge operations are given in the order of the canonical
architecture string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``, i.e. edges
(1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2). Operations:

* ``none``: the zero operation. Adding a zero tensor changes nothing, so
  ``none`` edges are left out of their node's sum; a node whose inputs are
  all ``none`` becomes a zero tensor of the right shape. This is numerically
  identical to NB201 and costs (almost) nothing, as on a real deployment.
* ``skip_connect``: identity.
* ``nor_conv_1x1`` / ``nor_conv_3x3``: ReLU - Conv (no bias) - BN.
* ``avg_pool_3x3``: 3x3 average pool, stride 1, ``count_include_pad=False``.

Nothing is pruned: an edge whose result cannot reach the cell output (for
example one feeding a node that is only followed by ``none`` edges) is still
computed, exactly as NB201 does, so measured latency matches the benchmark's
definition of the architecture.

Example:
    >>> import torch
    >>> from edgeopt_plugins.spaces._torch_nb201 import (
    ...     NB201_INPUT_SHAPE, build_nb201_model)
    >>> ops = ["nor_conv_3x3", "skip_connect", "none",
    ...        "avg_pool_3x3", "nor_conv_1x1", "nor_conv_3x3"]
    >>> model = build_nb201_model(ops, seed=0)
    >>> with torch.no_grad():
    ...     model(torch.randn(1, *NB201_INPUT_SHAPE)).shape
    torch.Size([1, 10])
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["NB201_INPUT_SHAPE", "NB201_OPS", "build_nb201_model"]

NB201_INPUT_SHAPE: tuple[int, int, int] = (3, 32, 32)
"""Input shape (channels, height, width) of the NB201 networks (CIFAR)."""

NB201_OPS: tuple[str, ...] = (
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
)
"""Allowed edge operations."""

#: For each edge in canonical order: (target node, source node).
_EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


class _Zero(nn.Module):
    """The ``none`` operation (kept for structure; :class:`_Cell` skips it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


class _ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


def _make_op(name: str, channels: int) -> nn.Module:
    if name == "none":
        return _Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return _ReLUConvBN(channels, channels, 1, 1)
    if name == "nor_conv_3x3":
        return _ReLUConvBN(channels, channels, 3, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NB201 operation {name!r}")  # pragma: no cover


class _Cell(nn.Module):
    """NB201 ``InferCell``: four nodes, six edges, stride 1."""

    def __init__(self, ops: Sequence[str], channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(_make_op(op, channels) for op in ops)
        # per target node: the indices of its non-``none`` incoming edges
        self._inputs: list[list[int]] = [
            [k for k, (dst, _) in enumerate(_EDGES) if dst == node and ops[k] != "none"]
            for node in (1, 2, 3)
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for inputs in self._inputs:
            if not inputs:
                nodes.append(torch.zeros_like(x))
                continue
            out = self.edges[inputs[0]](nodes[_EDGES[inputs[0]][1]])
            for k in inputs[1:]:
                out = out + self.edges[k](nodes[_EDGES[k][1]])
            nodes.append(out)
        return nodes[-1]


class _ResidualReduction(nn.Module):
    """NB201 ``ResNetBasicblock`` with stride 2."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = _ReLUConvBN(c_in, c_out, 3, 2)
        self.conv_b = _ReLUConvBN(c_out, c_out, 3, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """NAS-Bench-201 ``TinyNetwork`` with a fixed cell (see module docs)."""

    def __init__(
        self, ops: Sequence[str], channels: int, cells_per_stage: int, num_classes: int
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        layers: list[nn.Module] = []
        c_prev = channels
        for stage in range(3):
            c = channels * 2**stage
            if stage > 0:
                layers.append(_ResidualReduction(c_prev, c))
            layers.extend(_Cell(ops, c) for _ in range(cells_per_stage))
            c_prev = c
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.global_pooling(x), 1))


def _recalibrate_bn(model: nn.Module, batch: int = 16) -> None:
    """Sets BN running statistics from random data.

    With untrained weights and identity BN statistics the activations shrink
    by orders of magnitude over the network, which could reach slow denormal
    arithmetic and distort latency.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
        bn.train()
    with torch.no_grad():
        model(torch.randn(batch, *NB201_INPUT_SHAPE))
    for bn in bns:
        bn.momentum = 0.1
        bn.eval()


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def build_nb201_model(
    ops: Sequence[str],
    *,
    channels: int = 16,
    cells_per_stage: int = 5,
    num_classes: int = 10,
    seed: int | None = None,
) -> nn.Module:
    """Builds a NAS-Bench-201 network with random weights, in eval mode.

    Args:
        ops: The six edge operations in canonical order (1<-0), (2<-0),
            (2<-1), (3<-0), (3<-1), (3<-2); each one of :data:`NB201_OPS`.
        channels: Channels of the first stage (NB201: 16).
        cells_per_stage: Cells per stage (NB201: 5).
        num_classes: Classifier outputs (NB201 CIFAR-10: 10).
        seed: If given, weights are drawn from this seed without touching
            the global torch RNG; otherwise from the global RNG.

    Returns:
        The network in eval mode; input shape ``(B, *NB201_INPUT_SHAPE)``.

    Raises:
        ValueError: If an argument has a wrong length or value.

    Example:
        >>> ops = ["nor_conv_3x3"] * 6
        >>> model = build_nb201_model(ops, cells_per_stage=1, seed=0)
    """
    if isinstance(ops, str) or not (hasattr(ops, "__len__") and hasattr(ops, "__iter__")):
        raise ValueError(f"ops must be a sequence of 6 operation names, got {ops!r}")
    if len(ops) != len(_EDGES):
        raise ValueError(f"ops must have {len(_EDGES)} entries, got {len(ops)}: {list(ops)!r}")
    for k, op in enumerate(ops):
        if not isinstance(op, str) or op not in NB201_OPS:
            raise ValueError(f"ops[{k}] must be one of {NB201_OPS}, got {op!r}")
    channels = _check_positive_int("channels", channels)
    cells_per_stage = _check_positive_int("cells_per_stage", cells_per_stage)
    num_classes = _check_positive_int("num_classes", num_classes)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise ValueError(f"seed must be an integer or None, got {seed!r}")

    def make() -> nn.Module:
        model = NB201Network(list(ops), channels, cells_per_stage, num_classes)
        _recalibrate_bn(model)
        return model

    if seed is None:
        model = make()
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = make()
    return model.eval()
