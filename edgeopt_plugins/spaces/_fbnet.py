"""FBNet: 22 searchable layers, 9 candidate blocks each (the space of the HELP FBNet data).

Canonical form: a JSON list of 22 op indices, e.g. ``[7, 8, 1, ...]``, indexing
:data:`FBNET_OPS`. The macro skeleton (channels and strides) is FBNet's.
"""

from __future__ import annotations

import numpy as np

from edgeopt_plugins.spaces._json_fields import Field, JsonFieldsSpace

__all__ = ["FBNetSpace", "FBNET_OPS"]

#: Op index -> name, as in the HELP FBNet ``metainfo.pt``.
FBNET_OPS = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
_OP_SPECS = [(3, 1, 1), (3, 1, 2), (3, 3, 1), (3, 6, 1), (5, 1, 1), (5, 1, 2), (5, 3, 1), (5, 6, 1), None]
#: (layers, output channels, first stride) of each stage, input 224x224 after a stride-2 stem of 16.
_STAGES = ((1, 16, 1), (4, 24, 2), (4, 32, 2), (4, 64, 2), (4, 112, 1), (4, 184, 2), (1, 352, 1))
_STEM, _HEAD, _CLASSES, _INPUT = 16, 1504, 1000, 224


def _layer_tables() -> tuple[np.ndarray, np.ndarray, float, float]:
    """Per (layer, op) MFLOPs and Mparams, plus the fixed stem/head cost."""
    flops, params = [], []
    size, cin = _INPUT // 2, _STEM
    for n, cout, stride in _STAGES:
        for j in range(n):
            s = stride if j == 0 else 1
            out = size // s
            fl_row, pa_row = [], []
            for spec in _OP_SPECS:
                if spec is None:  # skip: identity, or a 1x1 projection when the shape changes
                    same = cin == cout and s == 1
                    fl_row.append(0.0 if same else 2.0 * cin * cout * out * out)
                    pa_row.append(0.0 if same else float(cin * cout))
                    continue
                k, e, g = spec
                mid = cin * e
                pw1 = 2.0 * cin * mid / g * size * size
                dw = 2.0 * k * k * mid * out * out
                pw2 = 2.0 * mid * cout / g * out * out
                fl_row.append(pw1 + dw + pw2)
                pa_row.append(cin * mid / g + k * k * mid + mid * cout / g)
            flops.append(fl_row)
            params.append(pa_row)
            size, cin = out, cout
    fixed_flops = 2.0 * 9 * 3 * _STEM * (_INPUT // 2) ** 2 + 2.0 * cin * _HEAD * size * size + 2.0 * _HEAD * _CLASSES
    fixed_params = 9.0 * 3 * _STEM + cin * _HEAD + _HEAD * _CLASSES
    return np.array(flops) / 1e6, np.array(params) / 1e6, fixed_flops / 1e6, fixed_params / 1e6


_FLOPS, _PARAMS, _FIXED_FLOPS, _FIXED_PARAMS = _layer_tables()
N_LAYERS = _FLOPS.shape[0]


class FBNetSpace(JsonFieldsSpace):
    """The FBNet layer-wise space: decisions ``layer_0`` ... ``layer_21``, choices 0..8.

    Example:
        >>> from edgeopt_plugins.spaces import get_space
        >>> space = get_space("fbnet")
        >>> arch = space.sample(1, seed=0)[0]
        >>> space.format(space.parse(arch)) == arch
        True
    """

    name = "fbnet"
    bare_list = True
    fields = (Field("layer", tuple(tuple(range(len(FBNET_OPS))) for _ in range(N_LAYERS))),)
    cost_names = ("mflops", "mparams", *(f"n_{op}" for op in FBNET_OPS))

    def _costs(self, indices: np.ndarray) -> np.ndarray:
        rows = np.arange(N_LAYERS)
        mflops = _FIXED_FLOPS + _FLOPS[rows, indices].sum(axis=1)
        mparams = _FIXED_PARAMS + _PARAMS[rows, indices].sum(axis=1)
        counts = np.stack([(indices == i).sum(axis=1) for i in range(len(FBNET_OPS))], axis=1)
        return np.column_stack([mflops, mparams, counts]).astype(np.float64)
