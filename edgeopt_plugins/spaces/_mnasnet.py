"""The Accel-NASBench MnasNet/EfficientNet-B0 block space (7 blocks x e, k, l, se).

Canonical form: ``{"e": [7 expand ratios], "k": [7 kernels], "l": [7 layer counts], "se": [7 booleans]}``.
Choices follow Accel-NASBench's configuration space: e in {1, 4, 6}, k in {3, 5},
l in {1, 2, 3} ({1, 2, 3, 4} for block 5), se in {false, true}.
"""

from __future__ import annotations

import numpy as np

from edgeopt_plugins.spaces._json_fields import Field, JsonFieldsSpace

__all__ = ["MnasNetSpace", "MNASNET_BLOCKS"]

#: (first stride, input channels, output channels) of the 7 blocks (EfficientNet-B0 skeleton).
MNASNET_BLOCKS = ((1, 32, 16), (2, 16, 24), (2, 24, 40), (2, 40, 80), (1, 80, 112), (2, 112, 192), (1, 192, 320))
_LAYERS = tuple((1, 2, 3, 4) if b == 5 else (1, 2, 3) for b in range(len(MNASNET_BLOCKS)))
_STEM, _HEAD, _CLASSES, _INPUT = 32, 1280, 1000, 224


class MnasNetSpace(JsonFieldsSpace):
    """Accel-NASBench's MnasNet space (about 4.1e10 architectures).

    Example:
        >>> from edgeopt_plugins.spaces import get_space
        >>> space = get_space("mnasnet")
        >>> space.parse('{"e": [1,4,6,6,6,6,6], "k": [3,3,5,3,5,5,3], "l": [1,2,2,3,3,4,1], '
        ...             '"se": [true,true,true,true,true,true,true]}')["l_5"]
        4
    """

    name = "mnasnet"
    fields = (
        Field("e", tuple((1, 4, 6) for _ in MNASNET_BLOCKS)),
        Field("k", tuple((3, 5) for _ in MNASNET_BLOCKS)),
        Field("l", _LAYERS),
        Field("se", tuple((False, True) for _ in MNASNET_BLOCKS)),
    )

    def _costs(self, indices: np.ndarray) -> np.ndarray:
        e = self.field_values(indices, "e")
        k = self.field_values(indices, "k")
        layers = self.field_values(indices, "l")
        se = self.field_values(indices, "se")
        n = indices.shape[0]
        size = _INPUT // 2
        flops = np.full(n, 2.0 * 9 * 3 * _STEM * size * size)
        params = np.full(n, 9.0 * 3 * _STEM)
        for b, (stride, cin, cout) in enumerate(MNASNET_BLOCKS):
            for j in range(max(_LAYERS[b])):
                active = layers[:, b] > j
                s = stride if j == 0 else 1
                out = size // s
                c_in = cin if j == 0 else cout
                mid = c_in * e[:, b]
                expand = np.where(e[:, b] > 1, 2.0 * c_in * mid * size * size, 0.0)
                f = expand + 2.0 * k[:, b] ** 2 * mid * out * out + 2.0 * mid * cout * out * out
                p = np.where(e[:, b] > 1, c_in * mid, 0.0) + k[:, b] ** 2 * mid + mid * cout
                red = np.maximum(1.0, np.floor(c_in * 0.25))
                f = f + se[:, b] * (4.0 * mid * red + mid * out * out)
                p = p + se[:, b] * (2.0 * mid * red)
                flops = flops + np.where(active, f, 0.0)
                params = params + np.where(active, p, 0.0)
                if j == 0:
                    size = out
        flops = flops + 2.0 * MNASNET_BLOCKS[-1][2] * _HEAD * size * size + 2.0 * _HEAD * _CLASSES
        params = params + MNASNET_BLOCKS[-1][2] * _HEAD + _HEAD * _CLASSES
        return np.column_stack([flops / 1e6, params / 1e6])
