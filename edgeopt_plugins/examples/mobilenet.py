"""A small MobileNet-like search space for CIFAR-sized input, defined as a NAS team would.

Copy this file, replace :data:`DISTRIBUTIONS`, :func:`build` and :func:`stand_in_accuracy`
with yours, and name it on the command line as ``--space your_module:SPACE``
(see docs/tutorial-own-space.md).

The network: a 3x3 stem, four stages of inverted-residual (MobileNetV2) blocks and a
linear classifier for 10 classes on ``3 x 32 x 32`` images. Per stage ``s``:

- ``kernel_s``: depthwise kernel 3, 5 or 7 (``CategoricalDistribution``);
- ``expand_s``: expansion ratio 3, 4 or 6 (``CategoricalDistribution``);
- ``depth_s``: 2 to 4 blocks (``IntDistribution``);

and one ``width`` multiplier 0.5, 0.75 or 1.0 of every channel count
(``FloatDistribution`` with ``step=0.25``): 3 x 27^4 = 1,594,323 architectures.

:func:`stand_in_accuracy` is **a cheap stand-in, not an accuracy**: a smooth,
saturating function of the decisions that rewards capacity with diminishing returns
(so that accuracy and latency trade off as they do in practice). Replace it with
your own evaluation (training and validating each design, or a trained accuracy
predictor).

Example:
    >>> from edgeopt_plugins.examples.mobilenet import SPACE
    >>> SPACE.name, SPACE.size
    ('tiny_mbnet', 1594323)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from torch import nn

from edgeopt_plugins.spaces import from_optuna

__all__ = ["DISTRIBUTIONS", "SPACE", "STAGES", "build", "stand_in_accuracy", "INPUT_SHAPE"]

#: (output channels at width 1.0, stride of the first block) of each stage.
STAGES = ((24, 1), (40, 2), (80, 2), (112, 2))
INPUT_SHAPE = (3, 32, 32)
_STEM, _CLASSES = 16, 10

#: The decisions, exactly as an Optuna objective would suggest them.
DISTRIBUTIONS = {
    "width": FloatDistribution(0.5, 1.0, step=0.25),
    **{
        name: dist
        for s in range(1, len(STAGES) + 1)
        for name, dist in (
            (f"kernel_{s}", CategoricalDistribution([3, 5, 7])),
            (f"expand_{s}", CategoricalDistribution([3, 4, 6])),
            (f"depth_{s}", IntDistribution(2, 4)),
        )
    },
}


def _channels(base: int, width: float) -> int:
    """``base * width`` rounded to a multiple of 8 (at least 8), as MobileNets do."""
    return max(8, int(round(base * width / 8)) * 8)


class _InvertedResidual(nn.Module):
    """1x1 expand - kxk depthwise - 1x1 project, with a skip when the shape allows it."""

    def __init__(self, c_in: int, c_out: int, kernel: int, expand: int, stride: int) -> None:
        super().__init__()
        mid = c_in * expand
        self.body = nn.Sequential(
            nn.Conv2d(c_in, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU6(inplace=True),
            nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False), nn.BatchNorm2d(mid),
            nn.ReLU6(inplace=True),
            nn.Conv2d(mid, c_out, 1, bias=False), nn.BatchNorm2d(c_out),
        )
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.skip else out


def build(params: dict) -> nn.Module:
    """The network of one architecture (random weights; latency does not depend on them).

    Args:
        params: ``{"width": 0.75, "kernel_1": 5, "expand_1": 4, "depth_1": 3, ...}``.
    """
    width = float(params["width"])
    c_in = _channels(_STEM, width)
    layers: list[nn.Module] = [nn.Conv2d(3, c_in, 3, 1, 1, bias=False), nn.BatchNorm2d(c_in), nn.ReLU6(inplace=True)]
    for s, (base, stride) in enumerate(STAGES, start=1):
        c_out = _channels(base, width)
        for block in range(int(params[f"depth_{s}"])):
            layers.append(_InvertedResidual(c_in, c_out, int(params[f"kernel_{s}"]), int(params[f"expand_{s}"]),
                                            stride if block == 0 else 1))
            c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, _CLASSES)]
    return nn.Sequential(*layers)


def stand_in_accuracy(archs: Sequence[str]) -> list[float]:
    """A cheap stand-in for accuracy (percent): **replace it with your own evaluation**.

    Capacity grows with depth, expansion and width and with the kernel where the
    feature map is large enough to use it; accuracy saturates towards 95%.

    Example:
        >>> small = SPACE.format({"width": 0.5, **{f"{k}_{s}": v for s in range(1, 5)
        ...                       for k, v in (("kernel", 3), ("expand", 3), ("depth", 2))}})
        >>> big = SPACE.format({"width": 1.0, **{f"{k}_{s}": v for s in range(1, 5)
        ...                     for k, v in (("kernel", 7), ("expand", 6), ("depth", 4))}})
        >>> a, b = stand_in_accuracy([small, big])
        >>> 60 < a < b < 95
        True
    """
    out = []
    size = INPUT_SHAPE[1]
    for arch in archs:
        p = SPACE.parse(SPACE.format(arch))
        capacity, spatial = 0.0, size
        for s, (_, stride) in enumerate(STAGES, start=1):
            spatial //= stride
            useful_kernel = min(int(p[f"kernel_{s}"]), spatial + 1)
            per_block = (0.55 + 0.3 * math.log2(p[f"expand_{s}"])) * (1.0 + 0.09 * (useful_kernel - 3))
            capacity += s ** 0.5 * p[f"depth_{s}"] * per_block
        capacity *= 0.6 + 0.4 * float(p["width"]) / 0.5 ** 0.3
        out.append(round(95.0 - 36.0 * math.exp(-capacity / 9.0), 4))
    return out


#: The space: canonical strings, Optuna distributions, a builder, features from the built model.
SPACE = from_optuna(DISTRIBUTIONS, name="tiny_mbnet", build=build, input_shape=INPUT_SHAPE)
