"""Measuring designs on a target during a search, with faults turned into clear failures.

A measurement that raises, hangs past its timeout, or returns something that is not
a positive finite latency becomes a :class:`~edgeopt_plugins.exceptions.MeasurementError`
with the reason; the search marks that one trial failed and goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from edgeopt_plugins.devices._command import CommandMeasurer
from edgeopt_plugins.devices._command import check_latency as _check
from edgeopt_plugins.exceptions import MeasurementError

__all__ = ["guarded", "CommandMeasurer", "Measure"]

Measure = Callable[[str], float]


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
