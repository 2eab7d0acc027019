"""The README's Python examples run as written, in order (```py blocks are illustrations only)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run_in_order(data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEOPT_DATA_DIR", str(data_dir))
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)
    assert len(blocks) >= 2
    ns: dict = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block, str(README), "exec"), ns)  # noqa: S102 - our own documentation
    assert ns["study"].best_trial.user_attrs["latency_ms"] <= ns["budget_ms"]
    assert ns["adapted"].estimated_spearman > 0.8
    assert ns["best"][0].latency_upper_ms <= ns["budget_ms"]


def test_readme_commands_are_marked_for_ci():
    text = README.read_text()
    for marker in ("main-command", "test-command"):
        block = re.search(rf"<!-- {marker} -->\n```bash\n(.+?)\n```\n<!-- /{marker} -->", text, flags=re.S)
        assert block and "constraints.txt" in block.group(1)
