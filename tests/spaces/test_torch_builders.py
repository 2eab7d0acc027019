"""Tests of the PyTorch model builders for NB201 and OFA MobileNetV3."""

from __future__ import annotations

import pytest
import torch
from torch.ao.nn import quantized as nnq
from torch.utils.flop_counter import FlopCounterMode

from edgeopt_plugins.spaces._torch_nb201 import NB201_INPUT_SHAPE, build_nb201_model
from edgeopt_plugins.spaces._torch_ofa import build_ofa_model, ofa_input_shape

CONV3 = ["nor_conv_3x3"] * 6
MIXED = ["nor_conv_3x3", "skip_connect", "none", "avg_pool_3x3", "nor_conv_1x1", "nor_conv_3x3"]
NONE_HEAVY = ["none", "skip_connect", "none", "none", "none", "nor_conv_1x1"]

K3, E3, D2 = [3] * 20, [3] * 20, [2] * 5
R = 128


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _flops(model: torch.nn.Module, shape: tuple[int, ...]) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, *shape))
    return counter.get_total_flops()


def _ofa_out(model: torch.nn.Module, seed: int = 0) -> torch.Tensor:
    x = torch.randn(2, *ofa_input_shape(R), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model(x)


# ----------------------------------------------------------------- NB201


@pytest.mark.parametrize("ops", [CONV3, MIXED, NONE_HEAVY, ["none"] * 6])
def test_nb201_output_shape(ops: list[str]) -> None:
    model = build_nb201_model(ops, cells_per_stage=1, num_classes=7, seed=0)
    assert not model.training
    with torch.no_grad():
        y = model(torch.randn(2, *NB201_INPUT_SHAPE))
    assert y.shape == (2, 7)
    assert torch.isfinite(y).all()
    assert NB201_INPUT_SHAPE == (3, 32, 32)


def test_nb201_full_size_param_counts_match_benchmark() -> None:
    # NAS-Bench-201 reports 1.5316 MB (all conv3x3) and 0.0733 MB (all none).
    assert _params(build_nb201_model(CONV3, seed=0)) == 1_531_546
    assert _params(build_nb201_model(["none"] * 6, seed=0)) == 73_306


def test_nb201_none_heavy_is_cheaper() -> None:
    costs = {}
    for name, ops in {"none": NONE_HEAVY, "mixed": MIXED, "conv3": CONV3}.items():
        model = build_nb201_model(ops, cells_per_stage=1, seed=0)
        costs[name] = (_params(model), _flops(model, NB201_INPUT_SHAPE))
    assert costs["none"][0] < costs["mixed"][0] < costs["conv3"][0]
    assert costs["none"][1] < costs["mixed"][1] < costs["conv3"][1]


def test_nb201_dead_edges_are_not_pruned() -> None:
    # node 1 feeds only ``none`` edges, but its conv is still computed
    dead = ["nor_conv_3x3", "skip_connect", "none", "skip_connect", "none", "skip_connect"]
    alive = ["none", "skip_connect", "none", "skip_connect", "none", "skip_connect"]
    shape = NB201_INPUT_SHAPE
    dead_model = build_nb201_model(dead, cells_per_stage=1, seed=0)
    alive_model = build_nb201_model(alive, cells_per_stage=1, seed=0)
    assert _flops(dead_model, shape) > _flops(alive_model, shape)


def test_nb201_seed_is_deterministic_and_local() -> None:
    x = torch.randn(2, *NB201_INPUT_SHAPE)
    state = torch.get_rng_state()
    a = build_nb201_model(MIXED, cells_per_stage=1, seed=3)
    b = build_nb201_model(MIXED, cells_per_stage=1, seed=3)
    c = build_nb201_model(MIXED, cells_per_stage=1, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
        assert not torch.equal(a(x), c(x))
    torch.manual_seed(5)
    d = build_nb201_model(MIXED, cells_per_stage=1)
    torch.manual_seed(5)
    e = build_nb201_model(MIXED, cells_per_stage=1)
    with torch.no_grad():
        assert torch.equal(d(x), e(x))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ops": CONV3[:5]}, "ops"),
        ({"ops": CONV3 + ["none"]}, "ops"),
        ({"ops": ["conv_5x5"] + CONV3[1:]}, r"ops\[0\].*conv_5x5"),
        ({"ops": "|nor_conv_3x3~0|"}, "ops"),
        ({"ops": CONV3, "channels": 0}, "channels"),
        ({"ops": CONV3, "cells_per_stage": -1}, "cells_per_stage"),
        ({"ops": CONV3, "num_classes": 2.5}, "num_classes"),
        ({"ops": CONV3, "seed": "x"}, "seed"),
    ],
)
def test_nb201_invalid_arguments(kwargs: dict, match: str) -> None:
    ops = kwargs.pop("ops")
    with pytest.raises(ValueError, match=match):
        build_nb201_model(ops, **kwargs)


# ------------------------------------------------------------------- OFA


def test_ofa_output_shape_and_input_shape() -> None:
    assert ofa_input_shape(R) == (3, R, R)
    model = build_ofa_model(K3, E3, D2, num_classes=10, seed=0)
    assert not model.training
    y = _ofa_out(model)
    assert y.shape == (2, 10)
    assert torch.isfinite(y).all()


def test_ofa_param_counts_follow_kernel_expand_depth() -> None:
    base = _params(build_ofa_model(K3, E3, D2, seed=0))
    # stage 0, block 0: 16 -> 24, mid = 16 * 3 = 48 channels, no SE
    ks = list(K3)
    ks[0] = 5
    assert _params(build_ofa_model(ks, E3, D2, seed=0)) - base == (25 - 9) * 48
    e = list(E3)
    e[0] = 4  # mid 48 -> 64: expand 1x1 + BN + depthwise 3x3 + BN + project 1x1
    assert _params(build_ofa_model(K3, e, D2, seed=0)) - base == 16 * (16 + 2 + 9 + 2 + 24)
    d = list(D2)
    d[0] = 3  # one more 24 -> 24 block with mid 72
    extra = 24 * 72 + 2 * 72 + 9 * 72 + 2 * 72 + 72 * 24 + 2 * 24
    assert _params(build_ofa_model(K3, E3, d, seed=0)) - base == extra
    largest = _params(build_ofa_model([7] * 20, [6] * 20, [4] * 5, seed=0))
    assert largest > base


def test_ofa_inactive_entries_are_ignored() -> None:
    ks, e = list(K3), list(E3)
    ks[3], e[2] = 7, 6  # stage 0 has depth 2: entries 2 and 3 are inactive
    a = build_ofa_model(K3, E3, D2, seed=0)
    b = build_ofa_model(ks, e, D2, seed=0)
    assert _params(a) == _params(b)
    assert torch.equal(_ofa_out(a), _ofa_out(b))


@pytest.mark.parametrize("bits", [4, 8, 16, 32])
def test_ofa_each_wbits_runs(bits: int) -> None:
    model = build_ofa_model(K3, E3, D2, wbits=[bits] * 5, seed=0)
    y = _ofa_out(model)
    assert y.shape == (2, 1000)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()


def _quantized_convs(module: torch.nn.Module) -> list[nnq.Conv2d]:
    return [m for m in module.modules() if isinstance(m, nnq.Conv2d)]


def _float_convs(module: torch.nn.Module) -> list[torch.nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]


def test_ofa_mixed_policy_stage_contents() -> None:
    wbits = [32, 8, 16, 4, 8]
    model = build_ofa_model(K3, E3, D2, wbits=wbits, seed=0)
    assert _ofa_out(model).shape == (2, 1000)
    for stage, bits in zip(model.stages, wbits):
        if bits in (4, 8):
            assert _quantized_convs(stage) and not _float_convs(stage)
        else:
            assert _float_convs(stage) and not _quantized_convs(stage)
            dtype = torch.bfloat16 if bits == 16 else torch.float32
            assert {p.dtype for p in stage.parameters()} <= {dtype, torch.float16}
            if bits == 32:
                assert {p.dtype for p in stage.parameters()} == {torch.float32}
    # int8 weights use the full range; 4-bit weights only the levels -7..7
    w8 = torch.cat([c.weight().int_repr().flatten() for c in _quantized_convs(model.stages[1])])
    w4 = torch.cat([c.weight().int_repr().flatten() for c in _quantized_convs(model.stages[3])])
    assert int(w8.abs().max()) > 7
    assert int(w4.abs().max()) == 7
    # stem and head stay float32
    assert not _quantized_convs(model.first_conv) and not _quantized_convs(model.final_expand)


def test_ofa_seed_is_deterministic_and_local() -> None:
    state = torch.get_rng_state()
    for wbits in (None, [8] * 5):
        a = build_ofa_model(K3, E3, D2, wbits=wbits, seed=1)
        b = build_ofa_model(K3, E3, D2, wbits=wbits, seed=1)
        assert torch.equal(_ofa_out(a), _ofa_out(b))
    c = build_ofa_model(K3, E3, D2, seed=2)
    assert not torch.equal(_ofa_out(a), _ofa_out(c))
    assert torch.equal(torch.get_rng_state(), state)


def test_ofa_without_quantized_engine_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(type(torch.backends.quantized), "supported_engines", ["none"])
    with pytest.raises(RuntimeError, match="quantized engine"):
        build_ofa_model(K3, E3, D2, wbits=[32, 32, 8, 32, 32], seed=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ks": [3] * 19}, "ks"),
        ({"ks": [3] * 19 + [4]}, r"ks\[19\].*4"),
        ({"e": [3] * 20 + [3]}, "e"),
        ({"e": [2] + [3] * 19}, r"e\[0\].*2"),
        ({"d": [2] * 4}, "d"),
        ({"d": [2, 2, 5, 2, 2]}, r"d\[2\].*5"),
        ({"d": [True] * 5}, r"d\[0\]"),
        ({"wbits": [8] * 4}, "wbits"),
        ({"wbits": [8, 8, 2, 8, 8]}, r"wbits\[2\].*2"),
        ({"num_classes": 0}, "num_classes"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_ofa_invalid_arguments(kwargs: dict, match: str) -> None:
    args = {"ks": K3, "e": E3, "d": D2} | kwargs
    with pytest.raises(ValueError, match=match):
        build_ofa_model(args.pop("ks"), args.pop("e"), args.pop("d"), **args)


@pytest.mark.parametrize("r", [31, 0, 128.0, True])
def test_ofa_input_shape_invalid(r: object) -> None:
    with pytest.raises(ValueError, match="r must"):
        ofa_input_shape(r)  # type: ignore[arg-type]
