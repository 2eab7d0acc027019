"""Model folders: one JSON manifest + one safetensors file, checked on load, never unpickled.

Layout::

    MODEL/model.json            {"format": NAME, "format_version": N, "library_version": ..., "files":
                                 {"tensors.safetensors": SHA-256}, "meta": {...}, "manifest_sha256": ...}
    MODEL/tensors.safetensors   every array (safetensors: a JSON header + raw little-endian buffers)

Loading refuses (with :class:`~edgeopt_plugins.exceptions.ModelFormatError`) a
folder with any other file (for example a pickle dropped next to the model), a
manifest of another format or version, a manifest or tensor file whose
checksum does not match, and unreadable tensors. The checksums detect edits
and corruption; they are not a signature against someone who rewrites both.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from edgeopt_plugins import __version__
from edgeopt_plugins._io import atomic_write, display_path, write_json
from edgeopt_plugins.exceptions import DataNotFoundError, InputError, ModelFormatError

__all__ = ["save_model_folder", "load_model_folder", "MANIFEST", "TENSORS"]

MANIFEST = "model.json"
TENSORS = "tensors.safetensors"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest_digest(manifest: dict[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return _digest(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8"))


def save_model_folder(folder: str | os.PathLike[str], *, format_name: str, format_version: int,
                      meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """Write a model folder (creating it; an existing model folder is replaced).

    Raises:
        InputError: if ``folder`` is a file, or a non-empty folder that is not a model folder.
    """
    from safetensors.numpy import save

    root = Path(folder)
    if root.exists() and not root.is_dir():
        raise InputError(f"{display_path(root)}: exists and is not a folder")
    if root.is_dir():
        others = [p.name for p in root.iterdir() if p.name not in (MANIFEST, TENSORS)]
        if others:
            raise InputError(f"{display_path(root)}: folder is not empty and not a model folder "
                             f"(holds {', '.join(sorted(others)[:3])}); choose a new folder")
    root.mkdir(parents=True, exist_ok=True)
    tensors = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    blob = save(tensors)
    with atomic_write(root / TENSORS, "wb") as handle:
        handle.write(blob)
    manifest = {
        "format": format_name,
        "format_version": int(format_version),
        "library_version": __version__,
        "files": {TENSORS: _digest(blob)},
        "meta": meta,
    }
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    write_json(root / MANIFEST, manifest)
    return root


def load_model_folder(folder: str | os.PathLike[str], *, format_name: str, format_version: int
                      ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and verify a model folder; returns ``(meta, arrays)``.

    Raises:
        DataNotFoundError: if the folder does not exist.
        ModelFormatError: for anything else that is not a sound model of this format and version.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load

    root = Path(folder)
    shown = display_path(root)
    if not root.exists():
        raise DataNotFoundError(f"{shown}: model folder not found")
    if not root.is_dir():
        raise ModelFormatError(f"{shown}: a model is a folder (with {MANIFEST} and {TENSORS}), got a file")
    names = sorted(p.name for p in root.iterdir())
    unexpected = [n for n in names if n not in (MANIFEST, TENSORS)]
    if unexpected:
        raise ModelFormatError(f"{shown}: unexpected file(s) {', '.join(unexpected[:3])} in the model folder "
                               f"(only {MANIFEST} and {TENSORS} belong there); refusing to load a tampered folder")
    if MANIFEST not in names:
        raise ModelFormatError(f"{shown}: no {MANIFEST}; not a model folder")
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFormatError(f"{shown}/{MANIFEST}: not valid JSON ({err})") from None
    if not isinstance(manifest, dict):
        raise ModelFormatError(f"{shown}/{MANIFEST}: expected a JSON object")
    if manifest.get("format") != format_name:
        raise ModelFormatError(f"{shown}: format {manifest.get('format')!r} is not {format_name!r}")
    version = manifest.get("format_version")
    if version != format_version:
        raise ModelFormatError(f"{shown}: model format version {version!r} (library "
                               f"{manifest.get('library_version', '?')}), this library reads version {format_version}; "
                               "refit the model with this version")
    if manifest.get("manifest_sha256") != _manifest_digest(manifest):
        raise ModelFormatError(f"{shown}/{MANIFEST}: checksum mismatch (the manifest was modified after saving)")
    files = manifest.get("files")
    if not isinstance(files, dict) or set(files) != {TENSORS} or not isinstance(manifest.get("meta"), dict):
        raise ModelFormatError(f"{shown}/{MANIFEST}: malformed manifest (files/meta)")
    if TENSORS not in names:
        raise ModelFormatError(f"{shown}: {TENSORS} is missing")
    blob = (root / TENSORS).read_bytes()
    if _digest(blob) != files[TENSORS]:
        raise ModelFormatError(f"{shown}/{TENSORS}: checksum mismatch (the tensors were modified after saving)")
    try:
        arrays = load(blob)
    except (SafetensorError, ValueError) as err:
        raise ModelFormatError(f"{shown}/{TENSORS}: unreadable tensors ({err})") from None
    return manifest["meta"], arrays
