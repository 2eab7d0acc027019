"""PyTorch builder for Once-for-All MobileNetV3 sub-networks (for latency).

Builds the sub-network of OFA ``ofa_mbv3_d234_e346_k357_w1.0`` selected by
kernel sizes ``ks``, expand ratios ``e`` and stage depths ``d``, with random
weights (OFA's ``he_fout`` init) and BN statistics set from one random batch
(as OFA does for sub-networks), in eval mode:

* first conv 3x3 / 2 (3 -> 16) + BN + h_swish;
* fixed first block MBConv(k3, expand 1, 16 -> 16, relu) with identity skip;
* five stages of widths 24, 40, 80, 112, 160, first-block strides
  2, 2, 2, 1, 2, activations relu, relu, h_swish, h_swish, h_swish and
  squeeze-excite off, on, off, on, on; stage ``i`` has ``d[i]`` MBConv blocks,
  block ``j`` using kernel ``ks[4*i + j]`` and expand ratio ``e[4*i + j]``
  (entries with ``j >= d[i]`` are inactive); a block has a residual when its
  stride is 1 and its input and output widths agree;
* 1x1 conv 160 -> 960 + BN + h_swish, global average pool,
  1x1 conv 960 -> 1280 + h_swish, linear classifier.

MBConv: [1x1 expand conv-BN-act] - kxk depthwise conv-BN-act - [SE] -
1x1 project conv-BN. SE: avg-pool, 1x1 conv (bias) + relu, 1x1 conv (bias)
+ h_sigmoid, multiply; hidden width ``make_divisible(mid // 4, 8)``.

Per-stage weight bit-widths (``wbits``), realised with what PyTorch really
runs on CPU. Stem, first block and head always stay float32.

* ``32``: float32.
* ``16``: the stage's weights *and activations* in bfloat16 (float16 if the
  CPU cannot run bfloat16 convolutions), with casts at the stage boundary.
* ``8``: real int8 kernels: eager-mode static quantization
  (``torch.ao.quantization``) of the stage, conv-BN(-ReLU) fused, int8
  per-channel symmetric weights, uint8 activations, calibrated with min/max
  observers on two random batches; Quant/DeQuant stubs at the boundaries of
  each run of consecutive integer stages. Uses the ``x86``/``fbgemm`` engine
  (``qnnpack`` on ARM); if the current engine is unusable the builder sets
  ``torch.backends.quantized.engine``, and the model must be run with that
  engine selected.
* ``4``: PyTorch has no int4 convolution kernels on CPU, so the stage is
  quantized exactly like ``8`` but its weights are restricted to the 15
  4-bit levels ``-7..7`` (per-channel symmetric rounding, i.e. 4-bit
  fake quantization) and executed by the int8 kernels. Its latency is
  therefore that of int8; only its accuracy effect is that of 4 bits.

``torch.ao.quantization`` eager mode is deprecated upstream (in favour of
torchao); its deprecation warnings are silenced here.

Example:
    >>> import torch
    >>> from edgeopt_plugins.spaces._torch_ofa import build_ofa_model, ofa_input_shape
    >>> model = build_ofa_model([3] * 20, [3] * 20, [2] * 5, wbits=[32, 32, 8, 8, 16], seed=0)
    >>> with torch.no_grad():
    ...     model(torch.randn(1, *ofa_input_shape(128))).shape
    torch.Size([1, 1000])
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn
from torch.ao import quantization as tq
from torch.ao.nn.quantized import FloatFunctional

__all__ = [
    "OFA_DEPTHS",
    "OFA_EXPANDS",
    "OFA_KERNELS",
    "OFA_WBITS",
    "build_ofa_model",
    "ofa_input_shape",
]

OFA_KERNELS: tuple[int, ...] = (3, 5, 7)
OFA_EXPANDS: tuple[int, ...] = (3, 4, 6)
OFA_DEPTHS: tuple[int, ...] = (2, 3, 4)
OFA_WBITS: tuple[int, ...] = (4, 8, 16, 32)

_WIDTHS = (24, 40, 80, 112, 160)
_STRIDES = (2, 2, 2, 1, 2)
_ACTS = ("relu", "relu", "h_swish", "h_swish", "h_swish")
_SE = (False, True, False, True, True)
_MAX_DEPTH = 4
_CALIB_BATCHES = 2
_CALIB_SHAPE = (2, 3, 160, 160)
_BN_SHAPE = (8, 3, 128, 128)


def _make_divisible(v: float, divisor: int = 8) -> int:
    """OFA/TF ``make_divisible``: round to a multiple, losing at most 10%."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _act(name: str) -> nn.Module:
    return nn.ReLU(inplace=True) if name == "relu" else nn.Hardswish()


class _ConvBNAct(nn.Sequential):
    """Conv (no bias) + BN (+ activation); children ``conv``, ``bn``, ``act``."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        k: int,
        stride: int = 1,
        groups: int = 1,
        act: str | None = None,
    ) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            conv=nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False),
            bn=nn.BatchNorm2d(c_out),
        )
        if act is not None:
            layers["act"] = _act(act)
        super().__init__(layers)

    def fuse(self) -> None:
        relu = isinstance(getattr(self, "act", None), nn.ReLU)
        tq.fuse_modules(self, ["conv", "bn", "act"] if relu else ["conv", "bn"], inplace=True)


class _SqueezeExcite(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = _make_divisible(channels // 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, mid, 1)
        self.relu = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(mid, channels, 1)
        self.gate = nn.Hardsigmoid()
        self.mul = FloatFunctional()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mul.mul(x, self.gate(self.expand(self.relu(self.reduce(self.pool(x))))))

    def fuse(self) -> None:
        tq.fuse_modules(self, ["reduce", "relu"], inplace=True)


class _MBConv(nn.Module):
    def __init__(
        self, c_in: int, c_out: int, k: int, stride: int, expand: int, act: str, use_se: bool
    ) -> None:
        super().__init__()
        mid = _make_divisible(round(c_in * expand))
        self.inverted_bottleneck = _ConvBNAct(c_in, mid, 1, act=act) if expand != 1 else None
        self.depth_conv = _ConvBNAct(mid, mid, k, stride, groups=mid, act=act)
        self.se = _SqueezeExcite(mid) if use_se else None
        self.point_linear = _ConvBNAct(mid, c_out, 1)
        self.skip_add = FloatFunctional() if stride == 1 and c_in == c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x if self.inverted_bottleneck is None else self.inverted_bottleneck(x)
        y = self.depth_conv(y)
        if self.se is not None:
            y = self.se(y)
        y = self.point_linear(y)
        return y if self.skip_add is None else self.skip_add.add(y, x)

    def fuse(self) -> None:
        for m in (self.inverted_bottleneck, self.depth_conv, self.se, self.point_linear):
            if m is not None:
                m.fuse()


class OFAMobileNetV3(nn.Module):
    """An OFA MobileNetV3 sub-network; ``stages[i]`` holds stage ``i``."""

    def __init__(
        self, ks: Sequence[int], e: Sequence[int], d: Sequence[int], num_classes: int
    ) -> None:
        super().__init__()
        self.first_conv = _ConvBNAct(3, 16, 3, stride=2, act="h_swish")
        self.first_block = _MBConv(16, 16, 3, 1, 1, "relu", False)
        stages: list[nn.Module] = []
        c_in = 16
        for i, c_out in enumerate(_WIDTHS):
            blocks = []
            for j in range(d[i]):
                stride = _STRIDES[i] if j == 0 else 1
                n = _MAX_DEPTH * i + j
                blocks.append(_MBConv(c_in, c_out, ks[n], stride, e[n], _ACTS[i], _SE[i]))
                c_in = c_out
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.final_expand = _ConvBNAct(160, 960, 1, act="h_swish")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_mix = nn.Sequential(nn.Conv2d(960, 1280, 1, bias=False), nn.Hardswish())
        self.classifier = nn.Linear(1280, num_classes)
        for m in self.modules():  # OFA "he_fout" initialisation
            if isinstance(m, nn.Conv2d):
                n_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n_out))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.in_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first_block(self.first_conv(x))
        for stage in self.stages:
            x = stage(x)
        x = self.feature_mix(self.pool(self.final_expand(x)))
        return self.classifier(torch.flatten(x, 1))


class _CastStage(nn.Module):
    """Runs ``body`` in a 16-bit float dtype."""

    def __init__(self, body: nn.Module, dtype: torch.dtype, cast_back: bool) -> None:
        super().__init__()
        self.body = body.to(dtype)
        self.dtype = dtype
        self.cast_back = cast_back

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x.to(self.dtype))
        return y.float() if self.cast_back else y


class _QuantStage(nn.Module):
    """Integer stage; stubs only where the integer region starts / ends."""

    def __init__(self, body: nn.Module, quant_in: bool, dequant_out: bool) -> None:
        super().__init__()
        self.quant = tq.QuantStub() if quant_in else nn.Identity()
        self.body = body
        self.dequant = tq.DeQuantStub() if dequant_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dequant(self.body(self.quant(x)))


def _recalibrate_bn(model: nn.Module) -> None:
    """Sets BN running statistics from random data, as OFA does for sub-networks.

    With untrained weights and identity BN statistics the activations of this
    network shrink by orders of magnitude per layer, which would make int8
    calibration meaningless and could hit slow denormal arithmetic.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
        bn.train()
    with torch.no_grad():
        model(torch.randn(_BN_SHAPE))
    for bn in bns:
        bn.momentum = 0.1
        bn.eval()


def _half_dtype() -> torch.dtype:
    """bfloat16 if CPU convolutions run in it, else float16."""
    for dtype in (torch.bfloat16, torch.float16):
        try:
            conv = nn.Conv2d(8, 8, 3, padding=1, groups=8).to(dtype)
            conv(torch.zeros(1, 8, 4, 4, dtype=dtype))
        except RuntimeError:
            continue
        return dtype
    raise RuntimeError(
        "wbits=16 needs bfloat16 or float16 convolutions, which this PyTorch build cannot run"
    )


def _select_qengine() -> str:
    supported = torch.backends.quantized.supported_engines
    current = torch.backends.quantized.engine
    if current in ("x86", "fbgemm", "qnnpack") and current in supported:
        return current
    for engine in ("x86", "fbgemm", "qnnpack"):
        if engine in supported:
            torch.backends.quantized.engine = engine
            return engine
    raise RuntimeError(
        "wbits 4/8 need a quantized engine (x86, fbgemm or qnnpack); this PyTorch build "
        f"supports only {supported}"
    )


def _qconfig(engine: str, bits: int) -> tq.QConfig:
    qmax = 2 ** (bits - 1) - 1
    # x86/fbgemm want 7-bit activations (the "reduce_range" of their default qconfigs)
    act_max = 127 if engine in ("x86", "fbgemm") else 255
    return tq.QConfig(
        activation=tq.MinMaxObserver.with_args(quant_min=0, quant_max=act_max),
        weight=tq.PerChannelMinMaxObserver.with_args(
            dtype=torch.qint8, qscheme=torch.per_channel_symmetric, quant_min=-qmax, quant_max=qmax
        ),
    )


def _apply_policy(model: OFAMobileNetV3, wbits: Sequence[int]) -> None:
    half = _half_dtype() if 16 in wbits else None
    engine = _select_qengine() if 4 in wbits or 8 in wbits else None
    is_int = [b in (4, 8) for b in wbits] + [False]
    n = len(wbits)
    for i, bits in enumerate(wbits):
        body = model.stages[i]
        if bits == 16:
            model.stages[i] = _CastStage(body, half, cast_back=i == n - 1 or wbits[i + 1] != 16)
        elif bits in (4, 8):
            for block in body:
                block.fuse()
            stage = _QuantStage(
                body, quant_in=i == 0 or not is_int[i - 1], dequant_out=not is_int[i + 1]
            )
            stage.qconfig = _qconfig(engine, bits)
            model.stages[i] = stage
    if engine is None:
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated")
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor, torch\.quantize_")
        tq.prepare(model, inplace=True)
        with torch.no_grad():
            for _ in range(_CALIB_BATCHES):
                model(torch.randn(_CALIB_SHAPE))
        tq.convert(model, inplace=True)
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, 64, 64))
    except (RuntimeError, NotImplementedError) as exc:
        raise RuntimeError(
            f"the quantized stages of wbits={list(wbits)} cannot run with quantized engine "
            f"{engine!r}: {exc}"
        ) from exc


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_choices(name: str, values: object, length: int, allowed: tuple[int, ...]) -> list[int]:
    sized = hasattr(values, "__len__") and hasattr(values, "__iter__")
    if isinstance(values, (str, bytes)) or not sized:
        raise ValueError(f"{name} must be a sequence of {length} integers, got {values!r}")
    if len(values) != length:
        raise ValueError(f"{name} must have {length} entries, got {len(values)}: {list(values)!r}")
    for k, v in enumerate(values):
        if not _is_int(v) or v not in allowed:
            raise ValueError(f"{name}[{k}] must be one of {allowed}, got {v!r}")
    return [int(v) for v in values]


def ofa_input_shape(r: int) -> tuple[int, int, int]:
    """Returns the input shape ``(3, r, r)`` for resolution ``r``.

    Args:
        r: Input resolution (OFA uses 128..224); at least 32.

    Raises:
        ValueError: If ``r`` is not an integer >= 32.

    Example:
        >>> ofa_input_shape(224)
        (3, 224, 224)
    """
    if not _is_int(r) or r < 32:
        raise ValueError(f"r must be an integer >= 32, got {r!r}")
    return (3, int(r), int(r))


def build_ofa_model(
    ks: Sequence[int],
    e: Sequence[int],
    d: Sequence[int],
    *,
    wbits: Sequence[int] | None = None,
    num_classes: int = 1000,
    seed: int | None = None,
) -> nn.Module:
    """Builds an OFA MobileNetV3 sub-network with random weights, ready for inference.

    Args:
        ks: 20 kernel sizes (3, 5 or 7), four per stage.
        e: 20 expand ratios (3, 4 or 6), four per stage.
        d: 5 stage depths (2, 3 or 4); only the first ``d[i]`` of stage
            ``i``'s four ``ks``/``e`` entries are used.
        wbits: 5 per-stage weight bit-widths (4, 8, 16 or 32; see the module
            docs for how each is run); ``None`` means all float32.
        num_classes: Classifier outputs.
        seed: If given, weights (and calibration data) are drawn from this
            seed without touching the global torch RNG; otherwise from the
            global RNG.

    Returns:
        The network in eval mode with the policy applied; input shape
        ``(B, *ofa_input_shape(r))``.

    Raises:
        ValueError: If an argument has a wrong length or value.
        RuntimeError: If this PyTorch build cannot realise ``wbits``.

    Example:
        >>> model = build_ofa_model([7] * 20, [6] * 20, [4] * 5, wbits=[8] * 5, seed=0)
    """
    ks = _check_choices("ks", ks, 5 * _MAX_DEPTH, OFA_KERNELS)
    e = _check_choices("e", e, 5 * _MAX_DEPTH, OFA_EXPANDS)
    d = _check_choices("d", d, 5, OFA_DEPTHS)
    policy = None if wbits is None else _check_choices("wbits", wbits, 5, OFA_WBITS)
    if not _is_int(num_classes) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if seed is not None and not _is_int(seed):
        raise ValueError(f"seed must be an integer or None, got {seed!r}")

    def make() -> nn.Module:
        model = OFAMobileNetV3(ks, e, d, int(num_classes))
        _recalibrate_bn(model)
        model.eval()
        if policy is not None and any(b != 32 for b in policy):
            _apply_policy(model, policy)
        return model

    if seed is None:
        return make()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return make()
