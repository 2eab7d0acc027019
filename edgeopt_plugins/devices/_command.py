"""Devices measured by running a command: a remote board, a phone behind ``adb``, a simulator.

:class:`CommandMeasurer` runs the user's command for one design under a documented
contract; :class:`CommandDevice` makes it a :class:`~edgeopt_plugins.devices.Device`,
so ``edgeopt profile --measure-cmd ...`` profiles a target the project cannot run itself.
"""

from __future__ import annotations

import math
import os
import shlex
import signal
import subprocess
import tempfile
import warnings
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from edgeopt_plugins.devices._base import BaseDevice
from edgeopt_plugins.devices._export import export_model
from edgeopt_plugins.exceptions import EdgeOptWarning, InputError, MeasurementError
from edgeopt_plugins.spaces import SearchSpace, get_space

__all__ = ["CommandMeasurer", "CommandDevice", "check_latency"]


def check_latency(arch: str, value: object) -> float:
    try:
        latency = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MeasurementError(f"measuring {arch}: returned {value!r}, not a number") from None
    if not math.isfinite(latency) or latency <= 0:
        raise MeasurementError(f"measuring {arch}: returned {latency}, not a positive finite latency")
    return latency


class CommandMeasurer:
    """Measure by running a command: the design goes in, a latency in ms comes out.

    The contract (docs/devices.md, "Measuring with a command"):

    - The command is a shell-like string (split like a shell would, run without a
      shell). ``{arch}`` becomes the canonical architecture (one argument),
      ``{model}`` the path of the design's model file, ``{input_shape}`` its input
      shape with the batch (``1,3,32,32``). The same values are in the environment:
      ``EDGEOPT_ARCH``, ``EDGEOPT_MODEL``, ``EDGEOPT_INPUT_SHAPE``, ``EDGEOPT_MODEL_FORMAT``.
    - With ``{model}`` (or ``EDGEOPT_MODEL`` wanted: ``export=...`` given), the project
      builds the design with the space's builder (random weights) and exports it
      (``torchscript``, ``exported`` or ``onnx``) into a fresh temporary folder,
      atomically, before the command starts; the folder is removed afterwards.
    - The last non-empty line of standard output is the latency in ms (positive,
      finite). A non-zero exit, no output or another value fails that measurement
      with the reason; so does a timeout.
    - The command runs in its own process group (session): on a timeout or an
      interrupt the whole group is killed, children and grandchildren included.

    Args:
        command: For example ``"python measure_on_board.py --arch {arch}"`` or
            ``"ssh board ./bench {model}"`` (copying the file is the command's job).
        timeout_s: Kill the command's process group after this many seconds.
        space: The search space (needed for ``{model}``/``{input_shape}``: it must have
            a PyTorch build).
        export: Model file format (:data:`~edgeopt_plugins.devices.EXPORT_FORMATS`);
            ``None`` exports only when the command names ``{model}`` (as TorchScript).
        batch_size: Batch size of the exported model's input.
        seed: Seed of the exported weights.

    Example:
        >>> CommandMeasurer("echo 4.5")("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
        4.5
    """

    def __init__(self, command: str, *, timeout_s: float = 600.0, space: Any = None, export: str | None = None,
                 batch_size: int = 1, seed: int = 0) -> None:
        try:
            self.argv = shlex.split(command)
        except ValueError as err:
            raise InputError(f"measure command {command!r}: {err}") from None
        if not self.argv:
            raise InputError("measure command is empty")
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not (
                math.isfinite(timeout_s) and timeout_s > 0):
            raise InputError(f"measure timeout must be a positive number of seconds, got {timeout_s!r}")
        self.command = command
        self.timeout_s = float(timeout_s)
        wants_model = any("{model}" in part or "{input_shape}" in part for part in self.argv)
        self.export = export if export is not None else ("torchscript" if wants_model else None)
        self._device = None
        if self.export is not None:
            from edgeopt_plugins.devices._export import EXPORT_FORMATS
            from edgeopt_plugins.devices._torch import TorchDevice

            if self.export not in EXPORT_FORMATS:
                raise InputError(f"export format must be one of {', '.join(EXPORT_FORMATS)}, got {self.export!r}")
            if space is None:
                raise InputError(f"measure command {command!r} names {{model}}: give the search space whose "
                                 "designs it measures")
            self._device = TorchDevice(space, batch_size=batch_size, seed=seed)

    def __call__(self, arch: str) -> float:
        if self._device is None:
            return self._run(arch, {"arch": arch})
        with tempfile.TemporaryDirectory(prefix="edgeopt-model-") as folder:
            try:
                model, example = self._device.model_and_input(arch)
                path = export_model(model, example, folder, fmt=self.export or "torchscript")
            except (InputError, RuntimeError, ValueError) as err:
                raise MeasurementError(f"measuring {arch}: {err}") from None
            shape = ",".join(str(v) for v in example.shape)
            return self._run(arch, {"arch": arch, "model": str(path), "input_shape": shape})

    def _run(self, arch: str, values: dict[str, str]) -> float:
        argv = [_substitute(part, values) for part in self.argv]
        env = {**os.environ, **{f"EDGEOPT_{k.upper()}": v for k, v in values.items()}}
        if self.export is not None:
            env["EDGEOPT_MODEL_FORMAT"] = self.export
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                    start_new_session=True)
        except OSError as err:
            raise MeasurementError(f"measuring {arch}: cannot run {argv[0]}: {err.strerror}") from None
        try:
            stdout, stderr = proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            raise MeasurementError(f"measuring {arch}: {argv[0]} timed out after {self.timeout_s:g} s "
                                   "(its process group was killed)") from None
        except BaseException:
            _kill_group(proc)
            proc.communicate()
            raise
        if proc.returncode != 0:
            tail = (stderr.strip().splitlines() or [""])[-1][:200]
            raise MeasurementError(f"measuring {arch}: {argv[0]} exited with code {proc.returncode} {tail}".rstrip())
        lines = [line.strip() for line in stdout.splitlines() if line.strip()]
        if not lines:
            raise MeasurementError(f"measuring {arch}: {argv[0]} printed nothing")
        return check_latency(arch, lines[-1])


def _substitute(part: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        part = part.replace("{" + key + "}", value)
    return part


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the command and everything it started (it leads its own process group)."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows has no process groups here
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass


class CommandDevice(BaseDevice):
    """A device measured by running a command per design (see :class:`CommandMeasurer`).

    Designs whose measurement fails are left out of the profile, with one warning
    saying how many and why; if none can be measured the first reason is raised.

    Args:
        space: The search space (with a PyTorch build when the command takes ``{model}``).
        command: The measuring command.
        name: The device's name (the profile's name).
        timeout_s, export, batch_size, seed: As in :class:`CommandMeasurer`.
        metadata: Facts about the device to keep in its profile (board, runtime, ...).

    Example:
        >>> dev = CommandDevice("nb201", "echo 2.5", name="board")
        >>> float(dev.measure(["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"])["latency_ms"][0])
        2.5
    """

    def __init__(self, space: str | SearchSpace, command: str, *, name: str, timeout_s: float = 600.0,
                 export: str | None = None, batch_size: int = 1, seed: int = 0,
                 metadata: dict[str, Any] | None = None) -> None:
        self.space = get_space(space)
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"CommandDevice: name must be a non-empty string, got {name!r}")
        self.name = name.strip()
        self.measurer = CommandMeasurer(command, timeout_s=timeout_s, space=self.space, export=export,
                                        batch_size=batch_size, seed=seed)
        self.metadata = {
            "kind": "command",
            "space": self.space.name,
            **({"space_ref": self.space.ref} if getattr(self.space, "ref", None) else {}),
            "command": command,
            "export": self.measurer.export,
            "batch_size": batch_size,
            "timeout_s": self.measurer.timeout_s,
            **(metadata or {}),
        }

    def _measure(self, indices: np.ndarray, *, progress: bool) -> dict[str, np.ndarray]:
        archs = self.space.from_indices(indices)
        out = np.full(len(archs), np.nan)
        failures: list[str] = []
        for i, arch in enumerate(tqdm(archs, desc=self.name, unit="arch", leave=False, disable=not progress)):
            try:
                out[i] = self.measurer(arch)
            except MeasurementError as err:
                failures.append(str(err))
        if failures and len(failures) == len(archs):
            raise MeasurementError(f"device {self.name}: every measurement failed; the first: {failures[0]}")
        if failures:
            warnings.warn(f"device {self.name}: {len(failures)} of {len(archs)} measurements failed and are left "
                          f"out; the first: {failures[0]}", EdgeOptWarning, stacklevel=3)
        return {"latency_ms": out}
