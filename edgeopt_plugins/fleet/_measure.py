"""Measuring designs on a target during a search, with faults turned into clear failures.

A measurement that raises, hangs past its timeout, or returns something that is not
a positive finite latency becomes a :class:`~edgeopt_plugins.exceptions.MeasurementError`
with the reason; the search marks that one trial failed and goes on.
"""

from __future__ import annotations

import math
import os
import shlex
import subprocess
import threading
from collections.abc import Callable

from edgeopt_plugins.exceptions import InputError, MeasurementError

__all__ = ["guarded", "CommandMeasurer", "Measure"]

Measure = Callable[[str], float]


def _check(arch: str, value: object) -> float:
    try:
        latency = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MeasurementError(f"measuring {arch}: returned {value!r}, not a number") from None
    if not math.isfinite(latency) or latency <= 0:
        raise MeasurementError(f"measuring {arch}: returned {latency}, not a positive finite latency")
    return latency


def guarded(measure: Measure, *, timeout_s: float | None = None) -> Measure:
    """Wrap ``measure(arch) -> latency_ms`` so that every fault is a :class:`MeasurementError`.

    Args:
        measure: The measuring function.
        timeout_s: Give up after this many seconds. The call runs in a helper thread
            that is abandoned (Python cannot stop a thread): use :class:`CommandMeasurer`
            when a hung measurement must really be killed.

    Example:
        >>> def flaky(arch):
        ...     raise OSError("board unplugged")
        >>> try:
        ...     guarded(flaky)("a")
        ... except Exception as err:
        ...     print(err)
        measuring a: OSError: board unplugged
    """

    def run(arch: str) -> float:
        if timeout_s is None:
            try:
                value = measure(arch)
            except MeasurementError:
                raise
            except Exception as err:  # noqa: BLE001 - any fault of a user's measurement is a failed trial
                raise MeasurementError(f"measuring {arch}: {type(err).__name__}: {err}") from None
            return _check(arch, value)
        box: dict[str, object] = {}

        def target() -> None:
            try:
                box["value"] = measure(arch)
            except BaseException as err:  # noqa: BLE001
                box["error"] = err

        thread = threading.Thread(target=target, name="edgeopt-measure", daemon=True)
        thread.start()
        thread.join(timeout_s)
        if thread.is_alive():
            raise MeasurementError(f"measuring {arch}: no answer within {timeout_s:g} s (timed out)")
        if "error" in box:
            err = box["error"]
            if isinstance(err, MeasurementError):
                raise err
            raise MeasurementError(f"measuring {arch}: {type(err).__name__}: {err}")
        return _check(arch, box.get("value"))

    return run


class CommandMeasurer:
    """Measure by running a command: the architecture goes in, a latency in ms comes out.

    The command is a shell-like string; ``{arch}`` is replaced by the architecture (as one
    argument). The architecture is also in the ``EDGEOPT_ARCH`` environment variable. The
    last non-empty line of the command's standard output must be the latency in ms.

    Args:
        command: For example ``"python measure_on_board.py --arch {arch}"``.
        timeout_s: Kill the command after this many seconds.

    Example:
        >>> CommandMeasurer("echo 4.5")("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
        4.5
    """

    def __init__(self, command: str, *, timeout_s: float = 600.0) -> None:
        try:
            self.argv = shlex.split(command)
        except ValueError as err:
            raise InputError(f"measure command {command!r}: {err}") from None
        if not self.argv:
            raise InputError("measure command is empty")
        if timeout_s <= 0:
            raise InputError(f"measure timeout must be positive, got {timeout_s}")
        self.command = command
        self.timeout_s = timeout_s

    def __call__(self, arch: str) -> float:
        argv = [part.replace("{arch}", arch) for part in self.argv]
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=self.timeout_s,
                env={**os.environ, "EDGEOPT_ARCH": arch}, check=False,
            )
        except subprocess.TimeoutExpired:
            raise MeasurementError(f"measuring {arch}: {argv[0]} timed out after {self.timeout_s:g} s (killed)") from None
        except OSError as err:
            raise MeasurementError(f"measuring {arch}: cannot run {argv[0]}: {err.strerror}") from None
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or [""])[-1][:200]
            raise MeasurementError(f"measuring {arch}: {argv[0]} exited with code {proc.returncode} {tail}".rstrip())
        lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
        if not lines:
            raise MeasurementError(f"measuring {arch}: {argv[0]} printed nothing")
        return _check(arch, lines[-1])
