"""A tiny user space for tests: a two-stage conv net on 8x8 inputs (builds and counts in milliseconds)."""

from __future__ import annotations

from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from torch import nn

from edgeopt_plugins.spaces import from_optuna

DISTRIBUTIONS = {
    "channels": CategoricalDistribution([4, 8, 16]),
    "kernel": CategoricalDistribution([1, 3, 5]),
    "depth": IntDistribution(1, 3),
    "width": FloatDistribution(0.5, 1.0, step=0.25),
}
BUILDS = {"count": 0}


def build(params: dict) -> nn.Module:
    BUILDS["count"] += 1
    c = max(2, int(params["channels"] * params["width"]))
    k = int(params["kernel"])
    layers: list[nn.Module] = [nn.Conv2d(3, c, 3, padding=1), nn.ReLU()]
    for _ in range(int(params["depth"])):
        layers += [nn.Conv2d(c, c, k, padding=k // 2, groups=c), nn.Conv2d(c, c, 1), nn.BatchNorm2d(c), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10)]
    return nn.Sequential(*layers)


def make_space():
    """A factory: ``--space tests.spaces._toy_space:make_space`` works too."""
    return SPACE


SPACE = from_optuna(DISTRIBUTIONS, name="toy_convnet", build=build, input_shape=(3, 8, 8))
