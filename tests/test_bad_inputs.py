"""Every CLI command rejects the catalog of bad inputs cleanly: exit 2, one line, no traceback, no file."""

from __future__ import annotations

import pytest

from benchmarks._bad_inputs import build_cases, check_case, prepare_workdir
from edgeopt_plugins.cli import main


@pytest.fixture(scope="module")
def cases(tiny_model_dir, data_dir, tmp_path_factory):
    paths = prepare_workdir(tmp_path_factory.mktemp("bad"), data_dir, tiny_model_dir)
    return build_cases(paths)


def test_catalog_covers_the_required_kinds(cases):
    kinds = {c.category for c in cases}
    assert {"malformed profile", "unknown architecture", "unknown device", "unknown space", "unreadable path",
            "bad model folder", "infeasible budget", "too few measurements", "hostile model folder", "hostile JSON",
            "implausible value", "too large for memory", "output is an input", "bad storage URL"} <= kinds
    assert len(cases) >= 100


def test_every_bad_input_is_rejected_cleanly(cases):
    failures = [r for r in (check_case(c, main) for c in cases) if not r["clean"]]
    assert not failures, "\n".join(f"{f['name']}: code={f['code']} stderr={f['stderr']} left={f['leftovers']}"
                                   for f in failures)
