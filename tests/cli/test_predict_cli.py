"""`edgeopt predict --method proxy` end to end, and clean failures that write nothing."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from edgeopt_plugins.data import MetricTable
from edgeopt_plugins.devices import DeviceProfile
from edgeopt_plugins.predictors import spearman
from edgeopt_plugins.spaces import get_space
from tests._synthetic import fleet, write_data_dir


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    table = fleet(7, 600, seed=11)
    proxies = table.select(devices=[f"dev{i}" for i in range(6)])
    write_data_dir(proxies, root / "data")
    DeviceProfile.from_table(table, "dev6", k=12, seed=0).write(root / "target.csv")
    (root / "archs.csv").write_text("arch,comment\n" + "".join(f"{a},x\n" for a in table.archs[:200]))
    (root / "archs.txt").write_text("\n".join(table.archs[200:230]) + "\n")
    return root, table


def _read(path):
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_predict_writes_every_requested_arch(run_cli, setup, tmp_path):
    root, table = setup
    out = tmp_path / "pred.csv"
    code, stdout, err = run_cli("predict", "--method", "proxy", "--space", "nb201", "--data-dir", root / "data",
                                "--profile", root / "target.csv", "--archs", root / "archs.csv", "--out", out)
    assert code == 0, err
    rows = _read(out)
    assert [r["arch"] for r in rows] == list(table.archs[:200])
    assert list(rows[0]) == ["arch", "latency_ms"]
    pred = np.array([float(r["latency_ms"]) for r in rows])
    assert np.all(pred > 0)
    assert spearman(pred, table.column("dev6")[:200]) > 0.9
    assert "estimated Spearman" in stdout and "wrote 200 predictions" in stdout


@pytest.mark.parametrize("adapt", ["published", "proxy"])
def test_predict_one_arch_per_line_and_forced_proxy(run_cli, setup, tmp_path, adapt):
    root, table = setup
    out = tmp_path / "pred.csv"
    code, _, err = run_cli("predict", "--data-dir", root / "data", "--profile", root / "target.csv",
                           "--archs", root / "archs.txt", "--out", out, "--proxy", "dev2", "--adapt", adapt, "-q")
    assert code == 0, err
    assert [r["arch"] for r in _read(out)] == list(table.archs[200:230])


def test_fbnet_architectures_with_commas(run_cli, tmp_path):
    space = get_space("fbnet")
    idx = space.sample_indices(300, seed=1)
    flops = space.flops(idx)
    rng = np.random.default_rng(0)
    vals = np.column_stack([flops * rng.uniform(0.5, 2) + rng.uniform(1, 5) + rng.normal(0, 1, 300) ** 2
                            for _ in range(4)])
    t = MetricTable(space, "latency_ms", space.from_indices(idx), ["a", "b", "c", "d"], vals)
    write_data_dir(t, tmp_path / "data")
    DeviceProfile.from_dict("fbnet", dict(zip(t.archs[:6], vals[:6, 0] * 1.3))).write(tmp_path / "t.csv")
    with (tmp_path / "archs.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch"])
        writer.writerows([[a] for a in t.archs[10:15]])
    code, _, err = run_cli("predict", "--space", "fbnet", "--data-dir", tmp_path / "data", "--profile", tmp_path / "t.csv",
                           "--archs", tmp_path / "archs.csv", "--out", tmp_path / "p.csv", "-q")
    assert code == 0, err
    assert [r["arch"] for r in _read(tmp_path / "p.csv")] == list(t.archs[10:15])


@pytest.mark.parametrize(("change", "fragment"), [
    ("one_row_profile", "at least 2 usable rows"),
    ("negative_profile", "latency_ms is negative"),
    ("arch_outside_space", "archs.txt line 2"),
    ("unknown_proxy", "--proxy 'nope' is not a device"),
    ("missing_profile", "profile CSV not found"),
    ("binary_archs", "not a text file"),
    ("empty_archs", "no architectures"),
    ("bad_out", "must end in .csv"),
    ("no_table", "has neither upstream/ nor tables/"),
])
def test_bad_input_is_one_line_exit_2_and_no_output(run_cli, setup, tmp_path, change, fragment):
    root, table = setup
    profile, archs, out, data = root / "target.csv", root / "archs.txt", tmp_path / "pred.csv", root / "data"
    extra: list[str] = []
    if change == "one_row_profile":
        profile = tmp_path / "one.csv"
        profile.write_text(f"arch,latency_ms\n{table.archs[0]},1.5\n")
    elif change == "negative_profile":
        profile = tmp_path / "neg.csv"
        profile.write_text(f"arch,latency_ms\n{table.archs[0]},1.5\n{table.archs[1]},-2\n")
    elif change == "arch_outside_space":
        archs = tmp_path / "archs.txt"
        archs.write_text(f"{table.archs[0]}\n|conv_7x7~0|+|none~0|none~1|+|none~0|none~1|none~2|\n")
    elif change == "unknown_proxy":
        extra = ["--proxy", "nope"]
    elif change == "missing_profile":
        profile = tmp_path / "nothing.csv"
    elif change == "binary_archs":
        archs = tmp_path / "archs.txt"
        archs.write_bytes(b"\xff\xfe\x00\x81binary")
    elif change == "empty_archs":
        archs = tmp_path / "archs.txt"
        archs.write_text("\n\n")
    elif change == "bad_out":
        out = tmp_path / "pred.txt"
    elif change == "no_table":
        data = tmp_path / "empty"
        data.mkdir()
    code, _, err = run_cli("predict", "--data-dir", data, "--profile", profile, "--archs", archs, "--out", out,
                                *extra)
    assert code == 2
    assert fragment in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pred")]  # no temporary left behind


def test_real_nb201_table_as_proxies(run_cli, nb201_latency, data_dir, tmp_path):
    table = nb201_latency
    DeviceProfile.from_table(table, "raspi4", k=10, seed=1).write(tmp_path / "raspi4.csv")
    (tmp_path / "archs.txt").write_text("\n".join(table.archs[::500]) + "\n")
    out = tmp_path / "pred.csv"
    code, stdout, err = run_cli("predict", "--space", "nb201", "--data-dir", data_dir, "--profile", tmp_path / "raspi4.csv",
                                "--archs", tmp_path / "archs.txt", "--out", out)
    assert code == 0, err
    pred = np.array([float(r["latency_ms"]) for r in _read(out)])
    assert spearman(pred, table.column("raspi4")[::500]) > 0.95  # raspi4 is in the table: a near copy is found
    assert "from 10 measurements of raspi4" in stdout
