"""The README's Python examples run as written, in order, as one session (every block is ```python)."""

from __future__ import annotations

import re
from pathlib import Path

from tests._markdown import run_python_blocks

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run_in_order(data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEOPT_DATA_DIR", str(data_dir))
    monkeypatch.chdir(tmp_path)
    ns = run_python_blocks(README, min_blocks=3)
    assert ns["study"].best_trial.user_attrs["latency_ms"] <= ns["budget_ms"]
    assert ns["result"].best().latency_ms <= ns["budget_ms"] and len(ns["result"].trials) == 20
    assert ns["adapted"].estimated_spearman > 0.8
    assert ns["best"][0].latency_upper_ms <= ns["budget_ms"]


def test_every_code_block_of_the_readme_runs_or_is_a_shell_command():
    fences = re.findall(r"^```(\w*)$", README.read_text(), flags=re.M)
    assert set(fences[0::2]) <= {"python", "bash"}, "a ```py (or other) block would escape test_readme"


def test_readme_commands_are_marked_for_ci():
    text = README.read_text()
    for marker in ("main-command", "test-command"):
        block = re.search(rf"<!-- {marker} -->\n```bash\n(.+?)\n```\n<!-- /{marker} -->", text, flags=re.S)
        assert block and "constraints.txt" in block.group(1)
