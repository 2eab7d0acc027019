"""Once-for-All MobileNetV3 (``ofa_mbv3_d234_e346_k357_w1.0``), optionally with a quantization policy.

Canonical form: ``{"ks": [20 kernel sizes], "e": [20 expand ratios], "d": [5 depths], "r": resolution}``
and, in the ``ofa_quant`` space, ``"wbits": [5 per-stage weight bit-widths]``.
Block ``j`` of stage ``i`` (``ks[4*i + j]``, ``e[4*i + j]``) is active when ``j < d[i]``;
inactive blocks keep their values in the string (so data rows round-trip exactly) but
do not count in the costs.
"""

from __future__ import annotations

import numpy as np

from edgeopt_plugins.spaces._json_fields import Field, JsonFieldsSpace

__all__ = ["OFASpace", "OFA_RESOLUTIONS", "OFA_WBITS"]

OFA_KERNELS = (3, 5, 7)
OFA_EXPANDS = (3, 4, 6)
OFA_DEPTHS = (2, 3, 4)
OFA_RESOLUTIONS = tuple(range(128, 225, 4))
OFA_WBITS = (4, 8, 16, 32)
#: Output width, first stride and squeeze-excite of each of the 5 stages.
OFA_STAGES = ((24, 2, False), (40, 2, True), (80, 2, False), (112, 1, True), (160, 2, True))
MAX_DEPTH = 4
_FINAL_EXPAND, _FEATURE, _CLASSES = 960, 1280, 1000


def _divisible(v: np.ndarray | float, divisor: int = 8) -> np.ndarray:
    """OFA's ``make_divisible`` (round to a multiple of 8, never below 90%)."""
    v = np.asarray(v, dtype=np.float64)
    out = np.maximum(divisor, np.floor(v / divisor + 0.5) * divisor)
    return np.where(out < 0.9 * v, out + divisor, out)


class OFASpace(JsonFieldsSpace):
    """OFA MobileNetV3 space; ``quantization=True`` adds per-stage weight bit-widths.

    Example:
        >>> from edgeopt_plugins.spaces import get_space
        >>> space = get_space("ofa_quant")
        >>> arch = space.parse(space.sample(1, seed=1)[0])
        >>> sorted({arch[f"wbits_{i}"] in (4, 8, 16, 32) for i in range(5)})
        [True]
    """

    cost_names = ("mflops", "mparams", "weight_mbytes")

    def __init__(self, *, quantization: bool = False) -> None:
        self.quantization = quantization
        self.name = "ofa_quant" if quantization else "ofa"
        fields = [
            Field("ks", tuple(OFA_KERNELS for _ in range(4 * len(OFA_STAGES)))),
            Field("e", tuple(OFA_EXPANDS for _ in range(4 * len(OFA_STAGES)))),
            Field("d", tuple(OFA_DEPTHS for _ in range(len(OFA_STAGES)))),
            Field("r", (OFA_RESOLUTIONS,), scalar=True),
        ]
        if quantization:
            fields.append(Field("wbits", tuple(OFA_WBITS for _ in range(len(OFA_STAGES)))))
        self.fields = tuple(fields)
        super().__init__()

    def _costs(self, indices: np.ndarray) -> np.ndarray:
        n = indices.shape[0]
        ks = self.field_values(indices, "ks")
        ex = self.field_values(indices, "e")
        depth = self.field_values(indices, "d")
        res = self.field_values(indices, "r")[:, 0]
        bits = self.field_values(indices, "wbits") if self.quantization else np.full((n, len(OFA_STAGES)), 32.0)
        size = np.ceil(res / 2)  # stem stride 2
        flops = 2.0 * 9 * 3 * 16 * size**2 + 2.0 * (9 * 16 + 16 * 16) * size**2  # stem + fixed first block
        params = np.full(n, 9.0 * 3 * 16 + 9 * 16 + 16 * 16)
        wbytes = params * 4.0
        cin = 16
        for stage, (cout, stride, se) in enumerate(OFA_STAGES):
            for j in range(MAX_DEPTH):
                active = depth[:, stage] > j
                s = stride if j == 0 else 1
                out = np.ceil(size / s)
                c_in = cin if j == 0 else cout
                mid = _divisible(c_in * ex[:, 4 * stage + j])
                k = ks[:, 4 * stage + j]
                f = 2.0 * c_in * mid * size**2 + 2.0 * k * k * mid * out**2 + 2.0 * mid * cout * out**2
                p = c_in * mid + k * k * mid + mid * cout
                if se:
                    red = _divisible(mid / 4)
                    f = f + 4.0 * mid * red + mid * out**2
                    p = p + 2.0 * mid * red
                flops = flops + np.where(active, f, 0.0)
                params = params + np.where(active, p, 0.0)
                wbytes = wbytes + np.where(active, p * bits[:, stage] / 8.0, 0.0)
                if j == 0:
                    size = out
            cin = cout
        head_f = 2.0 * cin * _FINAL_EXPAND * size**2 + 2.0 * _FINAL_EXPAND * _FEATURE + 2.0 * _FEATURE * _CLASSES
        head_p = cin * _FINAL_EXPAND + _FINAL_EXPAND * _FEATURE + _FEATURE * _CLASSES
        flops = flops + head_f
        params = params + head_p
        wbytes = wbytes + head_p * 4.0
        return np.column_stack([flops / 1e6, params / 1e6, wbytes / 1e6])
