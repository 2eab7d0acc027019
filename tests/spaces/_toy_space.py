"""A tiny user space for tests: a two-stage conv net on 8x8 inputs (builds and counts in milliseconds)."""

from __future__ import annotations

import numpy as np
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


def stand_in_accuracy(archs: list[str]) -> list[float]:
    """Accuracy grows with the model's FLOPs and saturates (a test stand-in)."""
    mflops = SPACE.features(list(archs))[:, 0]
    return [float(v) for v in 95.0 - 20.0 * np.exp(-mflops / 0.02)]


def device_table(n_devices: int = 6, *, seed: int = 0):
    """Synthetic devices over every design: latency a weighted sum of the layer statistics, plus noise."""
    from edgeopt_plugins.data import MetricTable

    archs = SPACE.enumerate()
    feats = SPACE.features(archs)
    feats = feats / np.maximum(feats.mean(axis=0), 1e-12)
    rng = np.random.default_rng(seed)
    cols = [(0.1 + feats @ rng.uniform(0.0, 1.0, size=feats.shape[1])) * np.exp(rng.normal(0, 0.02, len(archs)))
            for _ in range(n_devices)]
    return MetricTable(SPACE, "latency_ms", archs, [f"dev{j}" for j in range(n_devices)], np.column_stack(cols),
                       source="toy devices")
