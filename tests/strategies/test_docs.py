"""The NNI tutorial and the docstring examples of edgeopt_plugins.strategies run as written."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

from tests._markdown import run_python_blocks

nni = pytest.importorskip("nni", reason="NNI is an optional extra: pip install -c constraints.txt -e '.[nni]'")

TUTORIAL = Path(__file__).resolve().parents[2] / "docs" / "tutorial-nni.md"
MODULES = ["__init__", "_space", "_evaluator", "_strategy", "_profiler", "_run"]


def test_tutorial_code_runs_in_order(data_dir, monkeypatch):
    monkeypatch.setenv("EDGEOPT_DATA_DIR", str(data_dir))
    monkeypatch.setattr(nni.trial, "_params", None)  # the tutorial drives NNI directly at the end
    ns = run_python_blocks(TUTORIAL, min_blocks=9)
    trials = ns["result"].trials
    assert ns["result"].best().latency_ms <= ns["budget_ms"]
    assert sum(t.latency_ms <= ns["budget_ms"] for t in trials) >= 0.7 * len(trials)
    assert all(t.latency_ms <= ns["budget_ms"] for t in ns["result_toy"].trials[:3])
    # "30 + 20 trials resumed equal 50 trials in one go", as the tutorial says.
    once = ns["run_nni_search"]("nb201", ns["evaluate"], ns["make_strategy"](), max_trials=50)
    assert once.trials == ns["resumed"].trials


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module):
    name = "edgeopt_plugins.strategies" + ("" if module == "__init__" else f".{module}")
    assert doctest.testmod(importlib.import_module(name), raise_on_error=False).failed == 0
