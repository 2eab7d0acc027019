"""FBNet and Once-for-All defined as a user would: Optuna distributions and a PyTorch builder.

The generic path of ``benchmarks.own_space`` runs approach 1 and 2 on these spaces (made
with :func:`~edgeopt_plugins.spaces.from_optuna`, features counted on the built models)
and on the built-in :class:`~edgeopt_plugins.spaces.FBNetSpace` / ``OFASpace`` (analytic
costs), on the same benchmark tables. Decision names are the built-in spaces' own, so a
table architecture converts with ``generic.format(builtin.parse(arch))``.

The FBNet builder follows the macro skeleton of :mod:`edgeopt_plugins.spaces._fbnet`
(the one its analytic costs describe); the OFA builder is the project's
``OFAMobileNetV3`` without its BatchNorm recalibration (weights do not matter for counting).
"""

from __future__ import annotations

from typing import Any

from optuna.distributions import CategoricalDistribution, IntDistribution
from torch import nn

from edgeopt_plugins.spaces import CustomSpace, from_optuna, get_space
from edgeopt_plugins.spaces._fbnet import _CLASSES, _HEAD, _INPUT, _OP_SPECS, _STAGES, _STEM, FBNET_OPS, N_LAYERS
from edgeopt_plugins.spaces._ofa import OFA_DEPTHS, OFA_EXPANDS, OFA_KERNELS, OFA_RESOLUTIONS, OFA_STAGES

__all__ = ["generic_space", "to_generic"]


def _conv_bn(c_in: int, c_out: int, k: int, stride: int, groups: int = 1, act: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(c_out)]
    return layers + ([nn.ReLU(inplace=True)] if act else [])


class _FBNetBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, op: int) -> None:
        super().__init__()
        spec = _OP_SPECS[op]
        if spec is None:  # skip: identity, or a 1x1 projection when the shape changes
            same = c_in == c_out and stride == 1
            self.body = nn.Identity() if same else nn.Sequential(*_conv_bn(c_in, c_out, 1, stride, act=False))
            self.residual = False
            return
        k, e, g = spec
        mid = c_in * e
        self.body = nn.Sequential(*_conv_bn(c_in, mid, 1, 1, groups=g), *_conv_bn(mid, mid, k, stride, groups=mid),
                                  *_conv_bn(mid, c_out, 1, 1, groups=g, act=False))
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: Any) -> Any:
        out = self.body(x)
        return x + out if self.residual else out


def build_fbnet(params: dict[str, Any]) -> nn.Module:
    """The FBNet network of ``{"layer_0": op, ..., "layer_21": op}`` (224 x 224 input, 1000 classes)."""
    layers: list[nn.Module] = _conv_bn(3, _STEM, 3, 2)
    c_in, n = _STEM, 0
    for repeats, c_out, stride in _STAGES:
        for j in range(repeats):
            layers.append(_FBNetBlock(c_in, c_out, stride if j == 0 else 1, int(params[f"layer_{n}"])))
            c_in, n = c_out, n + 1
    layers += [*_conv_bn(c_in, _HEAD, 1, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(_HEAD, _CLASSES)]
    return nn.Sequential(*layers)


def build_ofa(params: dict[str, Any]) -> nn.Module:
    """The OFA MobileNetV3 sub-network of ``{"ks_0": 3, ..., "e_0": 4, ..., "d_0": 2, ..., "r": 224}``."""
    from edgeopt_plugins.spaces._torch_ofa import OFAMobileNetV3

    n_blocks = 4 * len(OFA_STAGES)
    return OFAMobileNetV3([int(params[f"ks_{i}"]) for i in range(n_blocks)],
                          [int(params[f"e_{i}"]) for i in range(n_blocks)],
                          [int(params[f"d_{i}"]) for i in range(len(OFA_STAGES))], 1000)


def _ofa_input(params: dict[str, Any]) -> tuple[int, int, int]:
    return (3, int(params["r"]), int(params["r"]))


def generic_space(name: str) -> CustomSpace:
    """``"fbnet"`` or ``"ofa"`` as a user space: ``from_optuna`` with a builder, named ``<name>_generic``."""
    if name == "fbnet":
        dists = {f"layer_{i}": CategoricalDistribution(list(range(len(FBNET_OPS)))) for i in range(N_LAYERS)}
        return from_optuna(dists, name="fbnet_generic", build=build_fbnet, input_shape=(3, _INPUT, _INPUT))
    if name == "ofa":
        n_blocks = 4 * len(OFA_STAGES)
        dists: dict[str, Any] = {f"ks_{i}": CategoricalDistribution(list(OFA_KERNELS)) for i in range(n_blocks)}
        dists |= {f"e_{i}": CategoricalDistribution(list(OFA_EXPANDS)) for i in range(n_blocks)}
        dists |= {f"d_{i}": IntDistribution(min(OFA_DEPTHS), max(OFA_DEPTHS)) for i in range(len(OFA_STAGES))}
        dists["r"] = IntDistribution(min(OFA_RESOLUTIONS), max(OFA_RESOLUTIONS), step=4)
        return from_optuna(dists, name="ofa_generic", build=build_ofa, input_shape=_ofa_input)
    raise ValueError(f"no generic definition of {name!r}")


def to_generic(name: str, space: CustomSpace, archs: list[str]) -> list[str]:
    """Built-in canonical strings of ``name`` as the generic space's strings (same decisions)."""
    builtin = get_space(name)
    return [space.format(builtin.parse(a)) for a in archs]
