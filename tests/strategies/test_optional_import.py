"""NNI is optional: the core never imports it, and the subpackage says how to install it."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest


def test_core_and_optuna_glue_never_import_nni():
    code = (
        "import sys, edgeopt_plugins, edgeopt_plugins.spaces, edgeopt_plugins.data, edgeopt_plugins.devices, "
        "edgeopt_plugins.optimizer, edgeopt_plugins.samplers, edgeopt_plugins.cli; "
        "assert 'nni' not in sys.modules, 'nni imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_missing_nni_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m.split(".")[:2] == ["edgeopt_plugins", "strategies"]]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "nni", None)  # what an environment without NNI looks like to import
    with pytest.raises(ImportError, match=r"pip install -c constraints.txt -e '\.\[nni\]'"):
        importlib.import_module("edgeopt_plugins.strategies")
