"""TorchDevice: real, stable measurements on this machine; settings define the device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgeopt_plugins.devices import Device, DeviceProfile, TorchDevice, spread_archs, summarize_timings
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.predictors import spearman
from edgeopt_plugins.spaces import get_space

NB201 = get_space("nb201")


def test_two_profiles_of_20_nb201_archs_rank_alike():
    archs = spread_archs("nb201", 20, seed=11)
    device = TorchDevice("nb201", threads=1, batch_size=1, warmup=2, repeats=5)
    first = device.measure(archs)
    second = device.measure(archs)
    assert spearman(first["latency_ms"], second["latency_ms"]) >= 0.9
    for out in (first, second):
        assert np.all(out["latency_ms"] > 0)
        assert np.all(out["latency_iqr_ms"] >= 0) and np.all(out["latency_mad_ms"] >= 0)
        assert out["outliers"].max() <= 5


def test_metadata_records_what_defines_the_device():
    dev = TorchDevice("nb201", threads=1, batch_size=1)
    assert isinstance(dev, Device)
    meta = dev.metadata
    for key in ("threads", "batch_size", "dtype", "resolution", "torch_version", "cpu_model", "device"):
        assert key in meta
    assert meta["torch_version"] == torch.__version__ and meta["resolution"] == 32 and meta["device"] == "cpu"
    assert dev.name.startswith("cpu-") and dev.name.endswith("-t1-b1-fp32")
    assert TorchDevice("nb201", threads=1, batch_size=1, resolution=32).name == dev.name
    assert TorchDevice("ofa").metadata["resolution"] == "arch"
    assert meta["clock"] == "thread" and TorchDevice("nb201", threads=2).metadata["clock"] == "wall"


def test_different_settings_are_different_devices():
    settings = [
        {},
        {"threads": 2},
        {"batch_size": 8},
        {"dtype": "bfloat16"},
        {"dtype": "int8"},
        {"resolution": 64},
    ]
    names = [TorchDevice("nb201", **kw).name for kw in settings]
    assert len(set(names)) == len(names)
    assert names[1].endswith("-t2-b1-fp32") and names[3].endswith("-bf16") and names[5].endswith("-r64")
    # repeats, warmup, seed and clock change how, not what, is measured
    assert TorchDevice("nb201", repeats=3, warmup=0, seed=5, clock="wall").name == names[0]


def test_threads_are_set_for_the_measurement_and_restored(monkeypatch):
    before = torch.get_num_threads()
    seen = []
    dev = TorchDevice("nb201", threads=1, warmup=0, repeats=3)
    original = dev._time_ms
    monkeypatch.setattr(dev, "_time_ms", lambda m, x: seen.append(torch.get_num_threads()) or original(m, x))
    torch.set_num_threads(2)
    try:
        dev.measure(NB201.sample(1, seed=0))
        assert set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(("space", "dtype"), [("nb201", "int8"), ("nb201", "bfloat16"), ("ofa", "int8"),
                                              ("ofa", "bfloat16"), ("ofa_quant", "float32")])
def test_quantized_and_low_precision_paths_run(space, dtype):
    dev = TorchDevice(space, dtype=dtype, warmup=1, repeats=3, resolution=None if space == "nb201" else 128)
    profile = dev.profile(get_space(space).sample(2, seed=3))
    assert isinstance(profile, DeviceProfile) and len(profile) == 2
    assert np.all(profile.latency_ms > 0) and profile.metadata["dtype"] == dtype
    assert 0 <= profile.metadata["median_relative_iqr"] and profile.metadata["outliers_rejected"] >= 0


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"space": "fbnet"}, "no PyTorch builder for space 'fbnet'"),
        ({"dtype": "float16"}, "dtype must be one of"),
        ({"threads": 0}, "threads must be an integer >= 1"),
        ({"batch_size": 1.5}, "batch_size must be an integer"),
        ({"repeats": 2}, "repeats must be an integer >= 3"),
        ({"resolution": 4}, "resolution must be an integer >= 8"),
        ({"device": "tpu"}, "device must be 'cpu', 'cuda' or 'auto'"),
        ({"clock": "cycles"}, "clock must be 'auto', 'thread' or 'wall'"),
        ({"clock": "thread", "threads": 2}, "clock='thread' needs threads=1"),
        ({"space": "ofa_quant", "dtype": "int8"}, "carry their own quantization policy"),
    ],
)
def test_bad_settings_are_rejected(kwargs, fragment):
    space = kwargs.pop("space", "nb201")
    with pytest.raises(InputError, match=fragment):
        TorchDevice(space, **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without a GPU")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(InputError, match="sees no CUDA GPU"):
        TorchDevice("nb201", device="cuda")
    assert TorchDevice("nb201", device="auto").metadata["device"] == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_measures_on_the_gpu():
    dev = TorchDevice("nb201", device="cuda", warmup=2, repeats=5)
    assert dev.name.startswith("cuda-") and dev.metadata["cuda_device"]
    archs = spread_archs("nb201", 20, seed=11)
    first, second = dev.measure(archs), dev.measure(archs)
    assert spearman(first["latency_ms"], second["latency_ms"]) >= 0.9


def test_summarize_timings_rejects_outliers_robustly():
    samples = np.array([[5.0, 5.2, 4.8, 5.1, 40.0], [2.0, 2.0, 2.0, 2.0, 2.0]])
    out = summarize_timings(samples)
    assert out["latency_ms"].tolist() == [5.05, 2.0]
    assert out["outliers"].tolist() == [1.0, 0.0]
    assert out["latency_iqr_ms"][1] == 0.0 and out["latency_iqr_ms"][0] < 0.3
