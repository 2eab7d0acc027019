"""``DeviceProfile``: the measurements a user carries from a device, as CSV + JSON sidecar.

File format::

    device.csv    arch,latency_ms[,energy_mj]     one row per measured architecture
    device.json   {"format": 1, "space": "nb201", "name": "my-phone", ...}   (optional)

The sidecar holds metadata (space, device name, how it was measured). Without a
sidecar the space must be given by the caller.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeopt_plugins._io import atomic_write, display_path, existing_file, parse_json, printable
from edgeopt_plugins.data._table import MetricTable, invalid_value_reason
from edgeopt_plugins.exceptions import ArchitectureError, InputError
from edgeopt_plugins.spaces import ArchLike, SearchSpace, get_space

__all__ = ["DeviceProfile", "sidecar_path", "PROFILE_FORMAT"]

PROFILE_FORMAT = 1
_METRIC_COLUMNS = ("latency_ms", "energy_mj")


def sidecar_path(csv_path: str | os.PathLike[str]) -> Path:
    """The JSON sidecar of a profile CSV: same folder and stem, ``.json`` suffix."""
    return Path(csv_path).with_suffix(".json")


@dataclass
class DeviceProfile:
    """Measured ``(architecture, latency_ms[, energy_mj])`` pairs of one device.

    Attributes:
        space: The search space of the architectures.
        archs: Canonical architecture strings, unique.
        latency_ms: Latency of each architecture, positive and finite.
        energy_mj: Energy of each architecture, or ``None`` when not measured.
        metadata: Free-form facts about the device (``name``, threads, batch, ...).

    Example:
        >>> from edgeopt_plugins.devices import DeviceProfile
        >>> p = DeviceProfile.from_dict("nb201", {
        ...     "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|": 1.2,
        ...     "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|": 3.4}, name="phone")
        >>> len(p), p.name
        (2, 'phone')
    """

    space: SearchSpace
    archs: tuple[str, ...]
    latency_ms: np.ndarray
    energy_mj: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.space = get_space(self.space)
        self.metadata = dict(self.metadata)
        if self.metadata.get("name") is not None:  # it reaches terminals: no escape sequences
            self.metadata["name"] = printable(self.metadata["name"])
        where = f"profile {self.metadata.get('name') or ''}".strip()
        try:
            self.archs = tuple(self.space.format(a) for a in self.archs)
        except ArchitectureError as err:
            raise ArchitectureError(f"{where}: {err}") from None
        self.latency_ms = np.asarray(self.latency_ms, dtype=np.float64).reshape(-1)
        if self.latency_ms.shape[0] != len(self.archs):
            raise InputError(f"{where}: {len(self.archs)} architectures but {self.latency_ms.shape[0]} latencies")
        if self.energy_mj is not None:
            self.energy_mj = np.asarray(self.energy_mj, dtype=np.float64).reshape(-1)
            if self.energy_mj.shape[0] != len(self.archs):
                raise InputError(f"{where}: {len(self.archs)} architectures but {self.energy_mj.shape[0]} energies")
        if len(set(self.archs)) != len(self.archs):
            raise InputError(f"{where}: an architecture appears twice")
        for metric, values in (("latency_ms", self.latency_ms), ("energy_mj", self.energy_mj)):
            if values is None:
                continue
            for arch, value in zip(self.archs, values):
                reason = invalid_value_reason(metric, float(value))
                if reason:
                    raise InputError(f"{where}: {arch}: {reason}")
        self.metadata.setdefault("space", self.space.name)

    # ----------------------------------------------------------------- basics
    def __len__(self) -> int:
        return len(self.archs)

    @property
    def name(self) -> str:
        """Device name from the metadata (``"unnamed"`` when absent)."""
        return str(self.metadata.get("name") or "unnamed")

    def as_dict(self) -> dict[str, float]:
        """``{arch: latency_ms}``."""
        return dict(zip(self.archs, self.latency_ms.tolist()))

    def indices(self) -> np.ndarray:
        """Choice-index matrix of the measured architectures."""
        return self.space.to_indices(list(self.archs))

    def subset(self, rows: Iterable[int] | np.ndarray) -> DeviceProfile:
        """A profile with only the given row positions."""
        r = np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows, dtype=np.int64)
        return DeviceProfile(
            self.space,
            tuple(self.archs[i] for i in r),
            self.latency_ms[r],
            None if self.energy_mj is None else self.energy_mj[r],
            dict(self.metadata),
        )

    def extended(self, archs: Iterable[ArchLike], latency_ms: Iterable[float]) -> DeviceProfile:
        """A profile with more measurements (a re-measured architecture takes the new value)."""
        values = self.as_dict()
        for arch, lat in zip(archs, latency_ms):
            values[self.space.format(arch)] = float(lat)
        return DeviceProfile(self.space, tuple(values), np.array(list(values.values())), None, dict(self.metadata))

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_dict(
        cls,
        space: str | SearchSpace,
        latencies: Mapping[Any, float],
        *,
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> DeviceProfile:
        """Profile from ``{arch: latency_ms}``."""
        meta = dict(metadata or {})
        if name is not None:
            meta["name"] = name
        return cls(get_space(space), tuple(latencies), np.array(list(latencies.values()), dtype=float), None, meta)

    @classmethod
    def from_table(
        cls,
        table: MetricTable,
        device: str,
        *,
        archs: Iterable[ArchLike] | None = None,
        k: int | None = None,
        seed: int | None = None,
    ) -> DeviceProfile:
        """Profile of one table column: the given architectures, or ``k`` random measured ones.

        Args:
            table: A latency table.
            device: Its column.
            archs: Which architectures to take (all must be measured).
            k: Otherwise, how many to draw at random among the measured ones.
            seed: Seed of that draw.
        """
        if table.metric != "latency_ms":
            raise InputError(f"profiles hold latency; table {table.source} has {table.metric}")
        col = table.device_index(device)
        if archs is not None:
            rows = table.rows_of(archs)
        else:
            measured = np.flatnonzero(table.available[:, col])
            if k is None or k > len(measured) or k < 1:
                raise InputError(f"k must be between 1 and {len(measured)} for device {device!r}, got {k!r}")
            rows = np.random.default_rng(seed).choice(measured, size=k, replace=False)
        lat = table.values[rows, col]
        if np.isnan(lat).any():
            raise InputError(f"{table.source}: device {device!r} has no measurement for some requested architectures")
        return cls(table.space, tuple(table.archs[i] for i in rows), lat, None,
                   {"name": device, "source": table.source})

    @classmethod
    def coerce(cls, profile: Any, space: str | SearchSpace | None = None) -> DeviceProfile:
        """A profile from what users pass around: a profile, a CSV path, or ``{arch: latency_ms}``.

        Args:
            profile: A :class:`DeviceProfile`, a path to a profile CSV, or a mapping.
            space: The expected space (needed for a mapping or a CSV without a sidecar).

        Raises:
            InputError: for another type, or a profile of another space.
        """
        if isinstance(profile, DeviceProfile):
            out = profile
        elif isinstance(profile, (str, os.PathLike)):
            return cls.read(profile, space)
        elif isinstance(profile, Mapping):
            if space is None:
                raise InputError("a profile given as a dict needs its search space")
            return cls.from_dict(space, profile)
        else:
            raise InputError(
                f"profile must be a DeviceProfile, a CSV path or a dict arch -> latency_ms, got {type(profile).__name__}"
            )
        if space is not None and get_space(space).name != out.space.name:
            raise InputError(f"profile {out.name!r} is for space {out.space.name!r}, expected {get_space(space).name!r}")
        return out

    # ----------------------------------------------------------------- files
    @classmethod
    def read(cls, path: str | os.PathLike[str], space: str | SearchSpace | None = None) -> DeviceProfile:
        """Read a profile CSV (and its JSON sidecar when present).

        Args:
            path: The CSV file with columns ``arch,latency_ms[,energy_mj]``.
            space: The search space; required when there is no sidecar naming it.

        Raises:
            InputError: naming the file, line and problem, for a missing column,
                an unknown architecture, a negative/zero/NaN/inf value, or an
                architecture listed twice with different values.
        """
        p = existing_file(path, "profile CSV")
        shown = display_path(p)
        meta = _read_sidecar(sidecar_path(p))
        sp = _resolve_space(space, meta, shown)
        meta.setdefault("space", sp.name)
        meta.setdefault("name", p.stem)
        try:
            with p.open(newline="", encoding="utf-8-sig") as handle:  # -sig: Excel's byte order mark
                rows = list(csv.reader(handle))
        except UnicodeDecodeError:
            raise InputError(f"{shown}: not a text CSV file (UTF-8)") from None
        except csv.Error as err:
            raise InputError(f"{shown}: malformed CSV ({err})") from None
        if not rows or not any(cell.strip() for cell in rows[0]):
            raise InputError(f"{shown}: file is empty (expected a header arch,latency_ms)")
        header = [c.strip() for c in rows[0]]
        if "arch" not in header or "latency_ms" not in header:
            missing = [c for c in ("arch", "latency_ms") if c not in header]
            raise InputError(f"{shown} line 1: missing column(s) {', '.join(missing)} (header is {','.join(header)})")
        if len(set(header)) != len(header):
            raise InputError(f"{shown} line 1: a column name appears twice")
        col = {name: header.index(name) for name in header}
        has_energy = "energy_mj" in col
        seen: dict[str, tuple[int, float, float]] = {}
        for line, row in enumerate(rows[1:], start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise InputError(f"{shown} line {line}: {len(row)} fields, expected {len(header)}")
            try:
                arch = sp.format(row[col["arch"]].strip())
            except ArchitectureError as err:
                raise ArchitectureError(f"{shown} line {line}: {err}") from None
            lat = _value(row[col["latency_ms"]], "latency_ms", shown, line)
            energy = _value(row[col["energy_mj"]], "energy_mj", shown, line) if has_energy else math.nan
            if arch in seen:
                first, old_lat, old_energy = seen[arch]
                same_energy = (math.isnan(old_energy) and math.isnan(energy)) or old_energy == energy
                if old_lat != lat or not same_energy:
                    raise InputError(
                        f"{shown} line {line}: {arch} was already measured on line {first} with a different value "
                        f"({old_lat} vs {lat})"
                    )
                continue
            seen[arch] = (line, lat, energy)
        if not seen:
            raise InputError(f"{shown}: has a header but no measurements")
        archs = tuple(seen)
        lat_arr = np.array([seen[a][1] for a in archs])
        energy_arr = np.array([seen[a][2] for a in archs]) if has_energy else None
        return cls(sp, archs, lat_arr, energy_arr, meta)

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write ``path`` (CSV) and its JSON sidecar atomically; returns the CSV path.

        Both files are written to temporary files first: an error leaves neither behind.
        """
        p = Path(path)
        columns = ["arch", "latency_ms"] + (["energy_mj"] if self.energy_mj is not None else [])
        ref = {"space_ref": self.space.ref} if getattr(self.space, "ref", None) else {}
        sidecar = json.dumps({"format": PROFILE_FORMAT, **self.metadata, "space": self.space.name, **ref}, indent=2)
        with atomic_write(p, newline="") as handle, atomic_write(sidecar_path(p)) as side:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(columns)
            for i, arch in enumerate(self.archs):
                row = [arch, repr(float(self.latency_ms[i]))]
                if self.energy_mj is not None:
                    row.append(repr(float(self.energy_mj[i])))
                writer.writerow(row)
            side.write(sidecar + "\n")
        return p


def _value(text: str, metric: str, shown: str, line: int) -> float:
    cell = text.strip()
    if cell == "":
        raise InputError(f"{shown} line {line}: {metric} is empty")
    try:
        value = float(cell)
    except ValueError:
        raise InputError(f"{shown} line {line}: {metric} {cell!r} is not a number") from None
    reason = invalid_value_reason(metric, value)
    if reason:
        raise InputError(f"{shown} line {line}: {reason}")
    return value


def _read_sidecar(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        meta = parse_json(path.read_bytes())
    except ValueError as err:
        raise InputError(f"{display_path(path)}: sidecar is not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise InputError(f"{display_path(path)}: sidecar must be a JSON object")
    if meta.get("format", PROFILE_FORMAT) != PROFILE_FORMAT:
        raise InputError(f"{display_path(path)}: profile format {meta.get('format')!r} is not supported (expected {PROFILE_FORMAT})")
    return meta


def _resolve_space(space: str | SearchSpace | None, meta: Mapping[str, Any], shown: str) -> SearchSpace:
    named = meta.get("space")
    if space is None and named is None:
        raise InputError(f"{shown}: no sidecar names the search space; pass the space (e.g. --space nb201)")
    if space is None:
        try:
            return get_space(named)
        except InputError:
            hint = meta.get("space_ref") or "module:attr or a spec file"
            raise InputError(f"{shown}: the sidecar names space {named!r}, which is not defined here; "
                             f"pass it (--space {hint})") from None
    sp = get_space(space)
    if named is not None and named != sp.name:
        raise InputError(f"{shown}: sidecar says space {named!r} but {sp.name!r} was requested")
    return sp
