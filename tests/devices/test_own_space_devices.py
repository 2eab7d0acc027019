"""Measuring a space of your own: this machine (TorchDevice), a command (CommandDevice), profile quality."""

from __future__ import annotations

import json
import os
import sys
import time
import warnings

import numpy as np
import pytest

from edgeopt_plugins.data import MetricTable
from edgeopt_plugins.devices import (
    CommandDevice,
    CommandMeasurer,
    DeviceProfile,
    TorchDevice,
    export_model,
    sidecar_path,
)
from edgeopt_plugins.exceptions import EdgeOptWarning, InputError, MeasurementError
from edgeopt_plugins.spaces import resolve_space
from tests.spaces._toy_space import SPACE as TOY

REF = "tests.spaces._toy_space:SPACE"
QUICK = ("--repeats", "4", "--warmup", "1", "--quiet")

#: A measuring script following the --measure-cmd contract: loads the exported model and times it.
MEASURE_SCRIPT = """
import os, sys, time, torch
path, shape = sys.argv[1], [int(v) for v in sys.argv[2].split(",")]
assert os.environ["EDGEOPT_MODEL"] == path and os.environ["EDGEOPT_INPUT_SHAPE"] == sys.argv[2]
fmt = os.environ["EDGEOPT_MODEL_FORMAT"]
model = torch.jit.load(path) if fmt == "torchscript" else torch.export.load(path).module()
x = torch.zeros(*shape)
start = time.perf_counter()
model(x)
print("loaded", path)
print((time.perf_counter() - start) * 1000 + 0.001)
"""


def test_torch_device_measures_a_user_space(tmp_path):
    assert resolve_space(REF) is TOY  # the space now knows how it was named
    dev = TorchDevice(TOY, warmup=1, repeats=4, seed=3)
    assert dev.metadata["space"] == "toy_convnet" and dev.metadata["input_shape"] == [3, 8, 8]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EdgeOptWarning)  # tiny models on a busy machine: not the point here
        profile = dev.profile(TOY.sample(8, seed=2))
    assert len(profile) == 8 and (profile.latency_ms > 0).all()
    assert -1 <= profile.metadata["rank_stability"] <= 1 and "noisy" in profile.metadata
    model, x = dev.model_and_input(profile.archs[0])
    assert tuple(x.shape) == (1, 3, 8, 8) and model(x).shape == (1, 10)
    path = profile.write(tmp_path / "toy.csv")
    assert json.loads(sidecar_path(path).read_text())["space_ref"] == TOY.ref
    assert DeviceProfile.read(path).space is TOY
    with pytest.raises(InputError, match="resolution applies to nb201 and ofa only"):
        TorchDevice(TOY, resolution=64)


@pytest.mark.filterwarnings("ignore::edgeopt_plugins.exceptions.EdgeOptWarning")
@pytest.mark.parametrize("dtype", ["bfloat16", "int8"])
def test_user_space_low_precision(dtype):
    profile = TorchDevice(TOY, dtype=dtype, warmup=1, repeats=3).profile(TOY.sample(2, seed=5))
    assert profile.metadata["rank_stability"] is None  # two designs say nothing about stability
    assert len(profile) == 2 and profile.metadata["dtype"] == dtype


def test_noisy_repeats_are_flagged_and_recorded(monkeypatch, run_cli, tmp_path):
    rng = np.random.default_rng(0)
    monkeypatch.setattr(TorchDevice, "_time_ms", lambda self, model, x: float(rng.uniform(1.0, 3.0)))
    with pytest.warns(EdgeOptWarning, match="repeats spread .* rank"):
        profile = TorchDevice(TOY, warmup=0, repeats=6).profile(TOY.sample(8, seed=1))
    assert profile.metadata["noisy"] and profile.metadata["median_relative_iqr"] > 0.15
    assert profile.metadata["rank_stability"] < 0.9
    out = tmp_path / "noisy.csv"
    code, stdout, err = run_cli("profile", "--space", REF, "--archs", "8", "--out", out, *QUICK)
    assert code == 0 and err.count("warning: device") == 1 and "rank stability" in stdout
    assert json.loads(sidecar_path(out).read_text())["noisy"] is True


def test_profile_cli_measures_a_user_space(run_cli, tmp_path):
    out = tmp_path / "proxy.csv"
    code, stdout, err = run_cli("profile", "--space", REF, "--archs", "5", "--out", out, *QUICK)
    assert code == 0, err
    profile = DeviceProfile.read(out, space=TOY)
    assert len(profile) == 5 and profile.metadata["selection"] == "spread by FLOPs"


@pytest.mark.parametrize("fmt", ["torchscript", "exported"])
def test_measure_cmd_gets_an_exported_model(tmp_path, fmt):
    script = tmp_path / "measure.py"
    script.write_text(MEASURE_SCRIPT)
    measurer = CommandMeasurer(f"{sys.executable} {script} {{model}} {{input_shape}}", space=TOY, export=fmt,
                               timeout_s=60)
    arch = TOY.sample(1, seed=0)[0]
    assert measurer(arch) > 0


def test_export_refuses_onnx_without_the_package_or_writes_it(tmp_path):
    model, x = TorchDevice(TOY).model_and_input(TOY.sample(1, seed=0)[0])
    try:
        import onnx  # noqa: F401
    except ImportError:
        with pytest.raises(InputError, match="needs the onnx package"):
            export_model(model, x, tmp_path, fmt="onnx")
        return
    assert export_model(model, x, tmp_path, fmt="onnx").stat().st_size > 0  # pragma: no cover - onnx installed


def test_measure_cmd_with_model_needs_a_measurable_space():
    with pytest.raises(InputError, match="give the search space"):
        CommandMeasurer("run {model}")
    with pytest.raises(InputError, match="no PyTorch builder for space 'fbnet'"):
        CommandMeasurer("run {model}", space="fbnet")
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(InputError, match="positive number of seconds"):
            CommandMeasurer("echo 1", timeout_s=bad)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
            return "zombie" not in handle.read()
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not hasattr(os, "killpg") or not os.path.isdir("/proc"), reason="POSIX process groups")
def test_a_timeout_kills_the_whole_process_group(tmp_path):
    pids = tmp_path / "pids"
    command = f"sh -c 'sleep 300 & echo $! > {pids}; sh -c \"sleep 300\" & echo $! >> {pids}; wait'"
    start = time.perf_counter()
    with pytest.raises(MeasurementError, match=r"timed out after 1 s \(its process group was killed\)"):
        CommandMeasurer(command, timeout_s=1.0)("arch")
    assert time.perf_counter() - start < 10
    grandchildren = [int(p) for p in pids.read_text().split()]
    assert len(grandchildren) == 2
    deadline = time.time() + 5
    while any(_alive(p) for p in grandchildren) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in grandchildren)


def test_profile_cli_with_a_measure_command(run_cli, tmp_path):
    script = tmp_path / "measure.py"
    script.write_text(MEASURE_SCRIPT)
    archs = tmp_path / "archs.txt"
    archs.write_text("\n".join(TOY.sample(2, seed=6)) + "\n")
    out = tmp_path / "board.csv"
    cmd = f"{sys.executable} {script} {{model}} {{input_shape}}"
    code, stdout, err = run_cli("profile", "--space", REF, "--archs-file", archs, "--measure-cmd", cmd, "--name",
                                "board", "--out", out, "--quiet")
    assert code == 0, err
    profile = DeviceProfile.read(out)
    assert profile.name == "board" and len(profile) == 2 and profile.metadata["kind"] == "command"
    assert profile.metadata["export"] == "torchscript"
    code, _, err = run_cli("profile", "--space", REF, "--archs", "3", "--measure-cmd", cmd, "--out",
                           tmp_path / "x.csv")
    assert code == 2 and "needs --name" in err and not (tmp_path / "x.csv").exists()
    code, _, err = run_cli("profile", "--space", REF, "--archs", "2", "--name", "b", "--quiet", "--measure-cmd",
                           f"{sys.executable} -c 'import sys; sys.exit(4)'", "--out", tmp_path / "y.csv")
    assert code == 2 and "every measurement failed" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "y.csv").exists()


def test_command_device_leaves_out_failed_designs():
    arch_ok, arch_bad = TOY.sample(2, seed=9)
    device = CommandDevice(TOY, f"{sys.executable} -c \"import os,sys; a=os.environ['EDGEOPT_ARCH']; "
                                f"sys.exit(3) if a == os.environ['BAD'] else print(2.5)\"", name="b")
    os.environ["BAD"] = arch_bad
    try:
        with pytest.warns(EdgeOptWarning, match="1 of 2 measurements failed"):
            profile = device.profile([arch_ok, arch_bad])
    finally:
        del os.environ["BAD"]
    assert profile.archs == (arch_ok,)


def test_metric_table_from_profiles_merges_devices(tmp_path):
    archs = TOY.enumerate()[:5]
    a = DeviceProfile.from_dict(TOY, dict(zip(archs[:3], [1.0, 2.0, 3.0])), name="fp32")
    b = DeviceProfile.from_dict(TOY, dict(zip(archs[2:], [5.0, 6.0, 7.0])), name="fp32")
    c = DeviceProfile.from_dict(TOY, dict(zip(archs, [1.0, 1.5, 2.0, 2.5, 3.0])), name="bf16")
    path = c.write(tmp_path / "bf16.csv")
    flat = tmp_path / "flat.csv"
    flat.write_text("arch,board_a,board_b\n" + "".join(f'"{x.replace(chr(34), 2 * chr(34))}",{i + 1},-1\n'
                                                      for i, x in enumerate(archs[:2])))
    table = MetricTable.from_profiles([a, b, path, flat], space=TOY)
    assert table.devices == ("fp32", "bf16", "board_a", "board_b") and len(table) == 5
    fp32 = table.column("fp32")
    assert fp32[2] == pytest.approx(4.0) and np.isnan(table.column("board_b")).all()
    assert table.available[:, 0].tolist() == [True] * 5
    nb = DeviceProfile.from_dict("nb201", {"|none~0|+|none~0|none~1|+|none~0|none~1|none~2|": 1.0}, name="x")
    with pytest.raises(InputError, match="is for space 'nb201'"):
        MetricTable.from_profiles([a, nb])
    with pytest.raises(InputError, match="no profiles"):
        MetricTable.from_profiles([])
