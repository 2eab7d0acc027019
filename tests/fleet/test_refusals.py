"""A refused fleet pins nothing; failed measurements are one line (none with --quiet); bad fleet settings."""

from __future__ import annotations

import errno
import logging
import os

import pytest

from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.fleet import FleetSettings, TargetSpec, run_fleet
from tests.fleet.test_run import _profiles, settings


def test_a_fleet_refused_before_any_device_pins_nothing(tiny_model_dir, data_dir, tmp_path, monkeypatch):
    """A full disk on the first journal write: no fleet.json, no journal (other settings may start afresh)."""
    out = tmp_path / "out"
    real_write = os.write

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError, match="No space left"):
        run_fleet(settings(tiny_model_dir, data_dir, simulated=2), out, progress=False)
    monkeypatch.setattr(os, "write", real_write)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("quiet", [False, True])
def test_failed_measurements_log_one_line_each_and_none_when_quiet(tiny_model_dir, data_dir, tmp_path, caplog,
                                                                   capsys, quiet):
    _profiles(tmp_path / "profiles", 1)
    s = settings(tiny_model_dir, data_dir, profiles_dir=str(tmp_path / "profiles"), refine=2)

    def measure(arch: str) -> float:
        raise OSError("board disconnected")

    with caplog.at_level(logging.INFO):
        report = run_fleet(s, tmp_path / "out", measure=measure, progress=False, quiet=quiet)
    failed = report.summary["refine"]["failed_trials"]
    assert failed == 6  # every attempt failed: 3 per requested trial
    lines = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert "Traceback" not in capsys.readouterr().err and not any(r.exc_info for r in caplog.records)
    assert len(lines) == (0 if quiet else failed)
    assert quiet or "board disconnected" in lines[0]


@pytest.mark.parametrize(("change", "fragment"), [
    ({"seed": -1}, "seed must be"), ({"measure_timeout_s": float("nan")}, "measure_timeout_s"),
    ({"measure_timeout_s": 0}, "measure_timeout_s"), ({"refine": -2}, "refine"), ({"chunk_size": 0}, "chunk_size"),
])
def test_bad_settings_are_refused_when_made(change, fragment):
    with pytest.raises(InputError, match=fragment):
        FleetSettings(TargetSpec("nb201", simulated=2), "model", budget_percentile=30, **change)


def test_a_damaged_fleet_json_is_one_error(tiny_model_dir, data_dir, tmp_path):
    (tmp_path / "fleet.json").write_text("[" * 100_000)
    with pytest.raises(InputError, match="fleet.json: not valid JSON"):
        run_fleet(settings(tiny_model_dir, data_dir, simulated=2), tmp_path, progress=False)
    with pytest.raises(InputError, match="not fleet settings"):
        FleetSettings.from_json({"targets": {"space": "nb201"}, "model_dir": "m", "bogus": 1})


def test_out_naming_a_file_is_refused(tiny_model_dir, data_dir, tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        run_fleet(settings(tiny_model_dir, data_dir, simulated=2), tmp_path / "f", progress=False)


def test_simulated_fleets_that_cannot_fit_in_memory_are_refused(data_dir):
    from edgeopt_plugins.fleet import build_targets

    with pytest.raises(InputError, match="--simulated 100000000 needs about .* of memory"):
        build_targets(TargetSpec("nb201", simulated=10**8, data_dir=str(data_dir)))
