"""The Optuna tutorial runs as written, and the samplers' docstring examples parse."""

from __future__ import annotations

from pathlib import Path

from tests._markdown import run_python_blocks

TUTORIAL = Path(__file__).resolve().parents[2] / "docs" / "tutorial-optuna.md"


def test_tutorial_code_runs_in_order(data_dir, monkeypatch):
    monkeypatch.setenv("EDGEOPT_DATA_DIR", str(data_dir))
    ns = run_python_blocks(TUTORIAL, min_blocks=7)
    assert ns["study"].best_trial.user_attrs["latency_ms"] <= ns["budget_ms"]
    assert ns["proxy_study"].best_value > 85.0
    assert len(ns["mo_study"].trials) == 20
    assert all(k.startswith("cell/") for k in ns["renamed_study"].trials[0].params)
