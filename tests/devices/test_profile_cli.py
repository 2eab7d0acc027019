"""``edgeopt profile``: measures this machine end to end; bad input is one line, exit 2, no files."""

from __future__ import annotations

import json

import pytest

from edgeopt_plugins.devices import DeviceProfile, sidecar_path
from edgeopt_plugins.spaces import get_space

QUICK = ("--repeats", "3", "--warmup", "1", "--quiet")


def test_profile_writes_a_profile_the_library_reads(run_cli, tmp_path):
    out = tmp_path / "device.csv"
    code, stdout, err = run_cli("profile", "--space", "nb201", "--archs", "6", "--threads", "1", "--batch", "1",
                                "--seed", "2", "--out", out, *QUICK)
    assert code == 0, err
    profile = DeviceProfile.read(out)
    assert len(profile) == 6 and profile.space.name == "nb201"
    meta = json.loads(sidecar_path(out).read_text())
    assert meta["name"] == profile.name and profile.name.endswith("-t1-b1-fp32")
    assert meta["threads"] == 1 and meta["batch_size"] == 1 and meta["selection"] == "spread by FLOPs"
    assert meta["selection_seed"] == 2 and meta["repeats"] == 3
    assert profile.name in stdout and "wrote" in stdout


def test_profile_from_an_archs_file(run_cli, tmp_path):
    archs = get_space("nb201").sample(3, seed=4)
    listing = tmp_path / "archs.txt"
    listing.write_text("\n".join(archs) + "\n")
    out = tmp_path / "sub" / "dev.csv"
    code, _, err = run_cli("profile", "--archs-file", listing, "--batch", "2", "--out", out, *QUICK)
    assert code == 0, err
    profile = DeviceProfile.read(out)
    assert set(profile.archs) == set(archs) and profile.metadata["batch_size"] == 2
    assert profile.metadata["selection"] == "file"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--space", "fbnet"], "no PyTorch builder for space 'fbnet'"),
        (["--space", "resnet"], "unknown search space 'resnet'"),
        (["--archs-file", "BAD"], "line 2: nb201 architecture"),
        (["--archs-file", "MISSING"], "not found"),
        (["--out", "FILE/dev.csv"], "is not a folder"),
        (["--out", "dev.txt"], "must end in .csv"),
        (["--out", "FOLDER"], "is a folder"),
        (["--dtype", "int4"], "invalid choice"),
        (["--archs", "0"], "expected a positive integer"),
        (["--archs", "3", "--archs-file", "BAD"], "not allowed with argument"),
        (["--space", "ofa_quant", "--dtype", "int8"], "carry their own quantization policy"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(run_cli, tmp_path, argv, fragment):
    bad = tmp_path / "bad.txt"
    bad.write_text("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|\n|nor_conv_5x5~0|\n")
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "folder.csv").mkdir()
    subs = {"BAD": bad, "MISSING": tmp_path / "missing.txt", "FILE/dev.csv": tmp_path / "a_file" / "dev.csv",
            "dev.txt": tmp_path / "dev.txt", "FOLDER": tmp_path / "folder.csv"}
    args = [str(subs.get(a, a)) for a in argv]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "dev.csv")]
    before = set(tmp_path.rglob("*"))
    code, _, err = run_cli("profile", *QUICK, *args)  # every case fails before measuring
    assert code == 2
    assert "Traceback" not in err
    message = err.strip().splitlines()
    assert fragment in message[-1]
    assert len(message) == 1 or err.startswith("usage:")  # library errors are one line; argparse adds its usage
    assert set(tmp_path.rglob("*")) == before
