"""Helpers shared by the benchmark modules: result files, timing, device splits."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    return {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }


def save_result(name: str, result: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` (atomically) and return its path."""
    from edgeopt_plugins._io import write_json

    path = RESULTS / f"{name}.json"
    write_json(path, {"benchmark": name, "machine": machine(), **result})
    return path


def load_result(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


@contextmanager
def timer() -> Iterator[dict[str, float]]:
    """``with timer() as t: ...`` then ``t["s"]`` holds the wall seconds."""
    box: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield box
    finally:
        box["s"] = time.perf_counter() - start


def command_line(run: Callable[..., dict[str, Any]], report: Callable[[dict[str, Any]], str], doc: str) -> None:
    """``python -m benchmarks.<name> [--quick]``: run the benchmark and print its report."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes")
    print(report(run(quick=parser.parse_args().quick)))
