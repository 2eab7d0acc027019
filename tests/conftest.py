"""Shared fixtures: the benchmark data folder, small tables, and CLI runners."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgeopt_plugins.cli import main


def _data_dir() -> Path | None:
    env = os.environ.get("EDGEOPT_DATA_DIR")
    return Path(env) if env and Path(env).is_dir() else None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real benchmark data (EDGEOPT_DATA_DIR); tests that need it skip without it."""
    found = _data_dir()
    if found is None:
        pytest.skip("benchmark data not available: set EDGEOPT_DATA_DIR (CI sets it to ../shared/data)")
    return Path(found).resolve()  # absolute: some tests change the working directory


@pytest.fixture(scope="session")
def nb201_latency(data_dir):
    from edgeopt_plugins.data import load_table

    return load_table("nb201", "latency_ms", data_dir=data_dir)


@pytest.fixture(scope="session")
def nb201_accuracy(data_dir):
    from edgeopt_plugins.data import load_table

    return load_table("nb201", "accuracy", data_dir=data_dir)


@pytest.fixture
def run_cli(capsys):
    """Run ``edgeopt`` in-process; returns (exit code, stdout, stderr)."""

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse usage errors
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="session")
def tiny_model_dir(data_dir, tmp_path_factory):
    """A tiny approach-2 model of nb201 (fitted once per session) that never saw tests._approach2.HELD_OUT."""
    from edgeopt_plugins.optimizer import FitConfig, fit_from_data
    from tests._approach2 import HELD_OUT

    folder = tmp_path_factory.mktemp("models") / "tiny"
    fit_from_data("nb201", data_dir=data_dir, exclude_devices=HELD_OUT, config=FitConfig.tiny(), seed=0).save(folder)
    return folder


@pytest.fixture
def saved_figures(monkeypatch):
    """Every matplotlib figure saved during the test, with its :func:`tests._figures.layout_problems`."""
    from matplotlib.figure import Figure

    from tests._figures import layout_problems

    saved: list[dict] = []
    original = Figure.savefig

    def savefig(self, *args, **kwargs):
        original(self, *args, **kwargs)
        saved.append({"figure": self, "problems": layout_problems(self)})

    monkeypatch.setattr(Figure, "savefig", savefig)
    return saved
