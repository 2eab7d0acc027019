"""``edgeopt space``: checks and describes a space, writes designs for other commands."""

from __future__ import annotations

import json

import pandas as pd

REF = "tests.spaces._toy_space:SPACE"


def test_space_describes_a_user_space_and_lists_designs(run_cli, tmp_path):
    code, out, err = run_cli("space", "--space", REF)
    assert code == 0, err
    assert "toy_convnet: 4 decisions, 81 designs" in out and "mflops=" in out
    code, out, err = run_cli("space", "--space", REF, "--archs", "all", "--out", tmp_path / "all.csv", "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["size"] == 81 and info["decisions"]["width"] == [0.5, 0.75, 1.0] and "mflops" in info["feature_names"]
    assert len(pd.read_csv(tmp_path / "all.csv")) == 81
    code, out, err = run_cli("space", "--space", "nb201", "--archs", "5", "--out", tmp_path / "five.csv")
    assert code == 0 and len(pd.read_csv(tmp_path / "five.csv")) == 5 and "mflops=" in out
    code, _, err = run_cli("space", "--space", REF, "--archs", "5")
    assert code == 2 and "go together" in err
    code, _, err = run_cli("space")
    assert code == 2 and "--space" in err
