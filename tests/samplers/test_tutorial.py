"""The Optuna tutorial runs as written, and the samplers' docstring examples parse."""

from __future__ import annotations

from pathlib import Path

from tests._markdown import run_python_blocks

TUTORIAL = Path(__file__).resolve().parents[2] / "docs" / "tutorial-optuna.md"


def test_tutorial_code_runs_in_order(data_dir, monkeypatch):
    monkeypatch.setenv("EDGEOPT_DATA_DIR", str(data_dir))
    ns = run_python_blocks(TUTORIAL, min_blocks=7)
    assert ns["study"].best_trial.user_attrs["latency_ms"] <= ns["budget_ms"]
    assert ns["proxy_study"].best_value > 85.0  # accuracy unknown, learned from the study
    assert ns["proxy_study"].trials[0].system_attrs["edgeopt:source"] == "warm_start"
    assert len(ns["mo_study"].trials) == 20
    renamed = ns["renamed_study"]
    assert all(k.startswith("cell/") for k in renamed.trials[0].params)
    assert len(ns["sampler"].guide.observed) == 29
    assert renamed.sampler.guide.observed  # detected names: the latencies were attributed
