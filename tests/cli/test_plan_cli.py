"""`edgeopt plan-profile`: designed profiles from the CLI, within candidates, after a partial profile."""

from __future__ import annotations

import csv

import pytest

from edgeopt_plugins.devices import DeviceProfile
from tests._synthetic import fleet, write_data_dir


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("plan")
    table = fleet(7, 600, seed=5)
    write_data_dir(table.select(devices=[f"dev{i}" for i in range(6)]), root / "data")
    DeviceProfile.from_table(table, "dev6", k=4, seed=0).write(root / "partial.csv")
    (root / "cands.txt").write_text("\n".join(table.archs[:30]) + "\n")
    return root, table


def _archs(path):
    with path.open() as handle:
        return [row["arch"] for row in csv.DictReader(handle)]


def test_plan_profile_writes_distinct_new_candidates(run_cli, setup, tmp_path):
    root, table = setup
    out = tmp_path / "next.csv"
    code, stdout, err = run_cli("plan-profile", "--space", "nb201", "--data-dir", root / "data", "--n", "6",
                                "--candidates", root / "cands.txt", "--profile", root / "partial.csv", "--out", out)
    assert code == 0, err
    picks = _archs(out)
    measured = set(DeviceProfile.read(root / "partial.csv", space="nb201").archs)
    assert len(picks) == len(set(picks)) == 6
    assert set(picks) <= set(table.archs[:30]) and not set(picks) & measured
    assert "wrote 6 architectures" in stdout


def test_plan_profile_before_any_measurement_is_deterministic(run_cli, setup, tmp_path):
    root, _ = setup
    outs = [tmp_path / f"a{i}.csv" for i in range(2)]
    for out in outs:
        code, _, err = run_cli("plan-profile", "--space", "nb201", "--data-dir", root / "data", "--n", "5",
                               "--out", out, "-q")
        assert code == 0, err
    assert _archs(outs[0]) == _archs(outs[1]) and len(_archs(outs[0])) == 5
