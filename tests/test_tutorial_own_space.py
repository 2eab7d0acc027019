"""docs/tutorial-own-space.md runs as written: a user space measured for real, approach 1 and 2 on it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests._markdown import run_python_blocks

PAGE = Path(__file__).resolve().parents[1] / "docs" / "tutorial-own-space.md"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::edgeopt_plugins.exceptions.EdgeOptWarning")  # a busy CI machine is noisy
def test_own_space_tutorial_runs_in_order(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    ns = run_python_blocks(PAGE, min_blocks=8)
    assert ns["space"].size == 1_594_323 and len(ns["proxy"]) == 40 and len(ns["target"]) == 10
    assert ns["adapted"].estimated_spearman > 0.5
    assert math.isfinite(ns["best_feasible"](ns["ours"]))
    assert all(d.latency_upper_ms <= ns["budget_ms"] for d in ns["best"])
    assert (tmp_path / "own-space-model" / "model.json").exists()
