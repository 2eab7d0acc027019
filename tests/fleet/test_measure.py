"""Measurement faults (raise, hang, NaN, bad command) become MeasurementError; a study goes on."""

from __future__ import annotations

import sys
import time

import optuna
import pytest

from edgeopt_plugins.exceptions import InputError, MeasurementError
from edgeopt_plugins.fleet import CommandMeasurer, guarded

ARCH = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


@pytest.mark.parametrize(
    ("fn", "fragment"),
    [
        (lambda a: 1 / 0, "ZeroDivisionError"),
        (lambda a: float("nan"), "returned nan"),
        (lambda a: -3.0, "returned -3.0"),
        (lambda a: "fast", "not a number"),
        (lambda a: None, "not a number"),
    ],
)
def test_faults_become_measurement_errors(fn, fragment):
    for timeout in (None, 5.0):
        with pytest.raises(MeasurementError, match=fragment):
            guarded(fn, timeout_s=timeout)(ARCH)


def test_hang_times_out():
    start = time.perf_counter()
    with pytest.raises(MeasurementError, match="timed out"):
        guarded(lambda a: time.sleep(30), timeout_s=0.3)(ARCH)
    assert time.perf_counter() - start < 5


def test_command_measurer(tmp_path):
    script = tmp_path / "m.py"
    script.write_text("import os, sys\nprint('warming up')\nprint(len(sys.argv[1]) / 10 + len(os.environ['EDGEOPT_ARCH']) / 100)\n")
    value = CommandMeasurer(f"{sys.executable} {script} {{arch}}")(ARCH)
    assert value == pytest.approx(len(ARCH) / 10 + len(ARCH) / 100)
    with pytest.raises(MeasurementError, match="exited with code 3"):
        CommandMeasurer(f"{sys.executable} -c 'import sys; sys.exit(3)'")(ARCH)
    with pytest.raises(MeasurementError, match="timed out after 0.5 s"):
        CommandMeasurer(f"{sys.executable} -c 'import time; time.sleep(20)'", timeout_s=0.5)(ARCH)
    with pytest.raises(MeasurementError, match="cannot run"):
        CommandMeasurer("/no/such/binary {arch}")(ARCH)
    with pytest.raises(MeasurementError, match="printed nothing"):
        CommandMeasurer("true")(ARCH)
    with pytest.raises(InputError, match="empty"):
        CommandMeasurer("  ")


def test_a_study_survives_failing_measurements():
    calls = iter([2.0, RuntimeError("device rebooted"), float("nan"), 3.0])

    def measure(arch):
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    safe = guarded(measure)

    def objective(trial):
        trial.suggest_int("x", 0, 10)
        return safe(ARCH)

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=4, catch=(MeasurementError,))
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "FAIL", "FAIL", "COMPLETE"]
