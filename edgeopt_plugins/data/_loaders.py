"""Readers for the upstream benchmark formats and for flat CSV tables.

Each reader returns :class:`~edgeopt_plugins.data.MetricTable` objects and reports
problems as :class:`~edgeopt_plugins.exceptions.InputError` naming the file (and
line, for CSV). Pickled files are read with ``torch.load(weights_only=True)``:
no code from a data file ever runs.
"""

from __future__ import annotations

import codecs
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from edgeopt_plugins._io import display_path, existing_file
from edgeopt_plugins.data._table import MetricTable, invalid_value_reason
from edgeopt_plugins.exceptions import ArchitectureError, DataNotFoundError, InputError
from edgeopt_plugins.spaces import SearchSpace, get_space

__all__ = [
    "read_help_latency",
    "read_nats_bench",
    "read_accel_nasbench",
    "read_table_csv",
    "read_help_archs",
]

#: Columns of a flat CSV that name the architecture, and id columns that are not devices.
ARCH_COLUMNS = ("arch", "arch_str")
ID_COLUMNS = ("nb201_index", "arch_index", "index")
#: Values that mean "not measured" in upstream files and flat CSV.
MISSING_SENTINELS = (-1.0,)

_HELP_FOLDERS = {"nb201": "nasbench201", "fbnet": "fbnet", "ofa": "ofa"}
_NATS_COLUMNS = {
    "cifar10": ("CIFAR10TestAccuracy200Epochs", "cifar10_test_acc"),
    "cifar100": ("CIFAR100TestAccuracy200Epochs", "cifar100_test_acc"),
    "imagenet16_120": ("ImageNetTestAccuracy200Epochs", "imagenet16_120_test_acc"),
}


def _torch_load(path: Path) -> Any:
    """``torch.load`` with ``weights_only=True``; numpy scalars are allow-listed, nothing else."""
    import torch

    allowed = [
        (np._core.multiarray.scalar, "numpy.core.multiarray.scalar"),  # how numpy<2 pickled scalars
        np.dtype,
        type(np.dtype("int64")),
        type(np.dtype("float64")),
        type(np.dtype("int32")),
        type(np.dtype("float32")),
        codecs.encode,
    ]
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"{display_path(path)}: not a readable weights-only torch file ({first[:200]})") from None


def read_help_archs(space: str | SearchSpace, folder: str | Path) -> list[str]:
    """Architectures of a HELP data folder, in file order (canonical strings)."""
    sp = get_space(space)
    root = Path(folder)
    if sp.name == "nb201":
        path = existing_file(root / "str_arch2idx.pt", "HELP NB201 index file")
        mapping = _torch_load(path)
        if not isinstance(mapping, dict):
            raise InputError(f"{display_path(path)}: expected a dict arch string -> index")
        order = sorted(mapping.items(), key=lambda kv: kv[1])
        if [i for _, i in order] != list(range(len(order))):
            raise InputError(f"{display_path(path)}: indices are not 0..{len(order) - 1}")
        raw: list[Any] = [a for a, _ in order]
    elif sp.name == "fbnet":
        path = existing_file(root / "arch.pt", "HELP FBNet architecture file")
        raw = [json.dumps([int(v) for v in a]) for a in _torch_load(path)]
    elif sp.name == "ofa":
        path = existing_file(root / "ofa_archs.pt", "HELP OFA architecture file")
        obj = _torch_load(path)
        entries = obj["arch"] if isinstance(obj, dict) else obj
        raw = [
            json.dumps({"ks": [int(v) for v in a["ks"]], "e": [int(v) for v in a["e"]],
                        "d": [int(v) for v in a["d"]], "r": int(a["r"])})
            for a in entries
        ]
    else:
        raise InputError(f"HELP has no data for space {sp.name!r} (it covers {', '.join(_HELP_FOLDERS)})")
    try:
        return [sp.format(a) for a in raw]
    except ArchitectureError as err:
        raise ArchitectureError(f"{display_path(path)}: {err}") from None


def read_help_latency(space: str | SearchSpace, folder: str | Path) -> MetricTable:
    """Latency table from a HELP data folder (``latency/<device>.pt`` lists, ms).

    Args:
        space: ``"nb201"``, ``"fbnet"`` or ``"ofa"``.
        folder: The HELP folder of that space (``.../help/nasbench201`` for nb201).
    """
    sp = get_space(space)
    root = Path(folder)
    archs = read_help_archs(sp, root)
    files = sorted((root / "latency").glob("*.pt"))
    if not files:
        raise DataNotFoundError(f"{display_path(root / 'latency')}: no <device>.pt latency files")
    columns = []
    for f in files:
        values = _torch_load(f)
        if not isinstance(values, (list, tuple)) or len(values) != len(archs):
            raise InputError(f"{display_path(f)}: expected a list of {len(archs)} latencies")
        columns.append(np.asarray(values, dtype=np.float64))
    vals = np.column_stack(columns)
    return MetricTable(sp, "latency_ms", archs, [f.stem for f in files], vals,
                       missing=np.isin(vals, MISSING_SENTINELS), source=display_path(root))


def read_nats_bench(path: str | Path) -> MetricTable:
    """NB201 test accuracies (%) from the NATS-Bench CSV export (or the flat ``accuracy.csv``).

    Columns: ``cifar10``, ``cifar100``, ``imagenet16_120``.
    """
    p = existing_file(path, "NATS-Bench CSV")
    frame = _read_csv(p)
    arch_col = next((c for c in ("ArchitectureString", *ARCH_COLUMNS) if c in frame.columns), None)
    if arch_col is None:
        raise InputError(f"{display_path(p)}: no architecture column (expected ArchitectureString or arch)")
    cols, names = [], []
    for name, candidates in _NATS_COLUMNS.items():
        found = next((c for c in candidates if c in frame.columns), None)
        if found is None:
            raise InputError(f"{display_path(p)}: missing accuracy column {candidates[0]!r}")
        cols.append(_numeric_column(frame, found, p, "accuracy"))
        names.append(name)
    vals = np.column_stack(cols)
    return MetricTable("nb201", "accuracy", list(frame[arch_col]), names, vals,
                       missing=np.isnan(vals), source=display_path(p))


_ANB_LATENCY = ("zcu102", "vck190")
_ANB_THROUGHPUT = ("a100", "3090", "tpuv2", "tpuv3", "zcu102", "vck190")


def read_accel_nasbench(path: str | Path) -> dict[str, MetricTable]:
    """Accel-NASBench (MnasNet space) from its JSON archive or its flat CSV export.

    Returns ``{"accuracy": ..., "latency_ms": ...}``. Accuracy is ImageNet top-1
    (column ``imagenet``). Latency devices are ``zcu102`` and ``vck190`` (measured
    latency) and ``<device>_per_image`` for every throughput measurement, as
    ``1000 / throughput`` ms per image (a per-image cost at the benchmark's batch
    size, not batch-1 latency). Architectures listed twice are averaged.
    """
    p = existing_file(path, "Accel-NASBench file")
    records = _anb_records_from_csv(p) if p.suffix == ".csv" else _anb_records_from_archive(p)
    space = get_space("mnasnet")
    grouped: dict[str, list[dict[str, float]]] = {}
    for arch, metrics in records:
        grouped.setdefault(space.format(arch), []).append(metrics)
    archs = list(grouped)

    def column(key: str) -> np.ndarray:
        return np.array([np.nanmean([m.get(key, np.nan) for m in grouped[a]]) if any(
            np.isfinite(m.get(key, np.nan)) for m in grouped[a]) else np.nan for a in archs])

    acc = column("val_top1")[:, None]
    lat_cols, lat_names = [], []
    for dev in _ANB_LATENCY:
        lat_cols.append(column(f"latency_{dev}"))
        lat_names.append(dev)
    for dev in _ANB_THROUGHPUT:
        tput = column(f"throughput_{dev}")
        with np.errstate(divide="ignore", invalid="ignore"):
            lat_cols.append(np.where(tput > 0, 1000.0 / tput, np.nan))
        lat_names.append(f"{dev}_per_image")
    lat = np.column_stack(lat_cols)
    src = display_path(p)
    return {
        "accuracy": MetricTable(space, "accuracy", archs, ["imagenet"], acc, missing=np.isnan(acc), source=src),
        "latency_ms": MetricTable(space, "latency_ms", archs, lat_names, lat, missing=np.isnan(lat), source=src),
    }


def _anb_arch(get: Any) -> dict[str, Any]:
    return {
        "e": [int(get(f"block{i}_e")) for i in range(7)],
        "k": [int(get(f"block{i}_k")) for i in range(7)],
        "l": [int(get(f"block{i}_l")) for i in range(7)],
        "se": [_as_bool(get(f"block{i}_se")) for i in range(7)],
    }


def _as_bool(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if str(value).strip().lower() in ("true", "1"):
        return True
    if str(value).strip().lower() in ("false", "0"):
        return False
    raise InputError(f"expected a boolean, got {value!r}")


def _anb_records_from_archive(path: Path) -> list[tuple[dict[str, Any], dict[str, float]]]:
    records = []
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                if not member.isfile() or not member.name.endswith(".json"):
                    continue
                if member.size > 1_000_000:
                    raise InputError(f"{display_path(path)}: member {member.name} is implausibly large")
                handle = archive.extractfile(member)
                if handle is None:
                    continue
                obj = json.loads(handle.read().decode("utf-8"))
                arch = obj["architecture"]
                metrics = {"val_top1": float(obj["metrics"]["val_top1"])}
                for name, perf in obj.get("platform_perf", {}).items():
                    kind = "latency" if name.startswith("latency_") else "throughput"
                    value = perf.get(f"{kind}_mean")
                    metrics[name] = float(value) if value is not None else np.nan
                records.append((_record_number(member.name), _anb_arch(arch.__getitem__), metrics))
    except (tarfile.TarError, OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise InputError(f"{display_path(path)}: not a readable Accel-NASBench archive ({err})") from None
    if not records:
        raise InputError(f"{display_path(path)}: no result_*.json records in the archive")
    return [(arch, metrics) for _, arch, metrics in sorted(records, key=lambda r: r[0])]


def _record_number(name: str) -> int:
    """``N`` of ``.../result_N.json`` (records are ordered by it, as in the published CSV)."""
    digits = "".join(ch for ch in Path(name).stem if ch.isdigit())
    return int(digits) if digits else -1


def _anb_records_from_csv(path: Path) -> list[tuple[dict[str, Any], dict[str, float]]]:
    frame = _read_csv(path)
    needed = [f"block{i}_{f}" for i in range(7) for f in ("e", "k", "l", "se")] + ["val_top1"]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise InputError(f"{display_path(path)}: missing column(s) {', '.join(missing[:5])}")
    perf = {}
    for col in frame.columns:
        if col.endswith("_mean") and "__" in col:
            perf[col.split("__")[0]] = _numeric_column(frame, col, path, None)
    acc = _numeric_column(frame, "val_top1", path, "accuracy")
    records = []
    order = range(len(frame))
    if "file" in frame.columns:
        order = sorted(order, key=lambda i: _record_number(str(frame["file"].iloc[i])))
    for i in order:
        row = frame.iloc[i]
        try:
            arch = _anb_arch(row.__getitem__)
        except (InputError, ValueError) as err:
            raise InputError(f"{display_path(path)} line {i + 2}: {err}") from None
        metrics = {"val_top1": float(acc[i]), **{k: float(v[i]) for k, v in perf.items()}}
        records.append((arch, metrics))
    return records


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise InputError(f"{display_path(path)}: file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputError(f"{display_path(path)}: not a readable CSV ({str(err).strip().splitlines()[0]})") from None
    if frame.empty:
        raise InputError(f"{display_path(path)}: has a header but no rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _numeric_column(frame: pd.DataFrame, column: str, path: Path, metric: str | None) -> np.ndarray:
    """Numbers of a text column; empty cells and ``-1`` become NaN (missing); junk is an error."""
    out = np.empty(len(frame), dtype=np.float64)
    for i, cell in enumerate(frame[column]):
        text = str(cell).strip()
        if text == "":
            out[i] = np.nan
            continue
        try:
            value = float(text)
        except ValueError:
            raise InputError(f"{display_path(path)} line {i + 2}: column {column!r}: {text!r} is not a number") from None
        if value in MISSING_SENTINELS:
            out[i] = np.nan
            continue
        if metric is not None:
            reason = invalid_value_reason(metric, value)
            if reason:
                raise InputError(f"{display_path(path)} line {i + 2}: column {column!r}: {reason}")
        out[i] = value
    return out


def read_table_csv(
    path: str | Path,
    space: str | SearchSpace,
    metric: str = "latency_ms",
    *,
    devices: Sequence[str] | None = None,
) -> MetricTable:
    """A flat CSV: one row per architecture, one column per device.

    The architecture column is ``arch`` (or ``arch_str``); id columns such as
    ``nb201_index`` are ignored; every other column is a device. Empty cells and
    ``-1`` mean "not measured". Anything else that is not a valid value is an
    error naming the file, line and column.

    Args:
        path: The CSV file.
        space: Its search space.
        metric: What the numbers are (``latency_ms`` by default).
        devices: Keep only these device columns.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "lat.csv"
        >>> _ = p.write_text("arch,phone\\n[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],3.5\\n")
        >>> read_table_csv(p, "fbnet").devices
        ('phone',)
    """
    sp = get_space(space)
    p = existing_file(path, "CSV table")
    frame = _read_csv(p)
    arch_col = next((c for c in ARCH_COLUMNS if c in frame.columns), None)
    if arch_col is None:
        raise InputError(f"{display_path(p)}: no architecture column (expected one of {', '.join(ARCH_COLUMNS)})")
    device_cols = [c for c in frame.columns if c not in (arch_col, *ARCH_COLUMNS, *ID_COLUMNS)]
    if devices is not None:
        unknown = [d for d in devices if d not in device_cols]
        if unknown:
            raise InputError(f"{display_path(p)}: no column for device(s) {', '.join(unknown)}")
        device_cols = list(devices)
    if not device_cols:
        raise InputError(f"{display_path(p)}: no device columns besides {arch_col!r}")
    archs = []
    for i, text in enumerate(frame[arch_col]):
        try:
            archs.append(sp.format(text))
        except ArchitectureError as err:
            raise ArchitectureError(f"{display_path(p)} line {i + 2}: {err}") from None
    vals = np.column_stack([_numeric_column(frame, c, p, metric) for c in device_cols])
    return MetricTable(sp, metric, archs, device_cols, vals, missing=np.isnan(vals), source=display_path(p))
