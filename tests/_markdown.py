"""Run the ```python blocks of a documentation page in order, as a reader would."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


def run_python_blocks(page: Path, *, min_blocks: int) -> dict[str, Any]:
    """Execute every ```python block of ``page`` in one namespace and return it."""
    blocks = re.findall(r"^```python\n(.*?)^```", page.read_text(), flags=re.S | re.M)
    assert len(blocks) >= min_blocks, f"{page.name}: expected at least {min_blocks} python blocks, found {len(blocks)}"
    namespace: dict[str, Any] = {"__name__": page.stem}
    for block in blocks:
        exec(compile(block, str(page), "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace
