"""`edgeopt monotonicity`: matrices as JSON, tables, heatmaps, and clean failures."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from tests._synthetic import fleet, write_data_dir


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("mono")
    table = fleet(4, 300, seed=2)
    return write_data_dir(table, root), table


def test_json_has_both_tie_aware_matrices(run_cli, data):
    root, table = data
    code, out, err = run_cli("monotonicity", "--space", "nb201", "--data-dir", root, "--method", "both", "--json",
                             "--devices", "dev0,dev2,dev3")
    assert code == 0, err
    rep = json.loads(out)
    assert rep["devices"] == ["dev0", "dev2", "dev3"] and rep["archs"] == 300
    sp, kt = np.array(rep["matrices"]["spearman"]), np.array(rep["matrices"]["kendall"])
    assert sp[0, 1] == pytest.approx(stats.spearmanr(table.column("dev0"), table.column("dev2")).statistic, abs=1e-6)
    assert kt[1, 2] == pytest.approx(stats.kendalltau(table.column("dev2"), table.column("dev3")).statistic, abs=1e-6)
    assert rep["summary"]["spearman"]["central_device"] in rep["devices"]


def test_table_and_heatmap(run_cli, data, tmp_path):
    root, _ = data
    code, out, err = run_cli("monotonicity", "--data-dir", root, "--plot", tmp_path / "h.png")
    assert code == 0, err
    assert "most central device" in out and "nearest_spearman" in out
    assert (tmp_path / "h.png").stat().st_size > 5_000


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--devices", "dev0,nope"], "unknown device 'nope'"),
    (["--devices", "dev0"], "at least two devices"),
    (["--method", "pearson"], "invalid choice"),
    (["--plot", "h.jpg"], "must end in .png"),
    (["--space", "nowhere"], "unknown search space"),
])
def test_bad_input(run_cli, data, argv, fragment):
    root, _ = data
    code, _, err = run_cli("monotonicity", "--data-dir", root, *argv)
    assert code == 2 and fragment in err and "Traceback" not in err
