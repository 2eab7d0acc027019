"""Model folders: one JSON manifest + one safetensors file, checked on load, never unpickled.

Layout::

    MODEL/model.json                      {"format": NAME, "format_version": N, "library_version": ...,
                                           "files": {"tensors-<sha>.safetensors": {"sha256": ..., "bytes": ...}},
                                           "meta": {...}, "manifest_sha256": ...}
    MODEL/tensors-<sha>.safetensors       every array (safetensors: a JSON header + raw little-endian buffers)

Saving is atomic as a whole: the tensor file is named after its content and
written beside the old one, then the manifest is renamed over the old manifest.
That rename is the switch; a kill or a full disk at any earlier point leaves the
previous model loadable, and a kill after it leaves the new one. Files an
interrupted save leaves behind (temporary files, a tensor file no manifest names)
are ignored by loading and removed by the next save.

Loading refuses (with :class:`~edgeopt_plugins.exceptions.ModelFormatError`) a
folder with any other file (for example a pickle dropped next to the model), a
file that is not a regular file (a symbolic link, a FIFO), files larger than the
manifest says, a manifest of another format or version, a checksum mismatch, and
unreadable or non-finite tensors. The checksums detect edits and corruption; they
are not a signature against someone who rewrites both.

Folders written by earlier versions (``tensors.safetensors``, named in ``files``
with its bare checksum) load as before.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgeopt_plugins import __version__
from edgeopt_plugins._io import (
    atomic_write,
    check_writable,
    display_path,
    parse_json,
    remove_stale_temp_files,
    write_json,
)
from edgeopt_plugins.exceptions import DataNotFoundError, InputError, ModelFormatError

__all__ = ["save_model_folder", "load_model_folder", "check_model_folder", "tensor_path", "MANIFEST"]

MANIFEST = "model.json"
#: Tensor files: ``tensors-<first 16 hex digits of the SHA-256>.safetensors`` (``tensors.safetensors`` before).
_TENSORS = re.compile(r"^tensors(-[0-9a-f]{16})?\.safetensors$")
_TEMP = re.compile(r"^\.(model\.json|tensors(-[0-9a-f]{16})?\.safetensors)\..*\.tmp$")
#: A manifest is a few kilobytes; refuse to read more than this.
MAX_MANIFEST_BYTES = 16 * 2**20
#: Tensor files of folders from earlier versions (whose manifest gives no size) may be at most this big.
MAX_TENSOR_BYTES = 8 * 2**30


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest_digest(manifest: dict[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return _digest(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8"))


def _belongs(name: str) -> bool:
    """Whether ``name`` is a file a model folder may hold (the manifest, tensors, leftovers of a save)."""
    return name == MANIFEST or bool(_TENSORS.match(name) or _TEMP.match(name))


def check_model_folder(folder: str | os.PathLike[str]) -> Path:
    """``folder`` if a model can be saved there: new, empty, or a model folder (checked before long training).

    Raises:
        InputError: if ``folder`` is a file, a folder holding other files, or cannot be written.
    """
    root = Path(folder)
    shown = display_path(root)
    if root.exists() and not root.is_dir():
        raise InputError(f"{shown}: exists and is not a folder")
    if root.is_dir():
        others = sorted(p.name for p in root.iterdir() if not _belongs(p.name))
        if others:
            raise InputError(f"{shown}: folder is not empty and not a model folder "
                             f"(holds {', '.join(others[:3])}); choose a new folder")
    check_writable(root)
    return root


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Hold an exclusive lock on the folder, so that two saves into it never interleave."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(root, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some file systems cannot lock folders
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _finite(arrays: dict[str, np.ndarray], where: str) -> None:
    for key, value in arrays.items():
        if value.dtype.kind in "fc" and not np.isfinite(value).all():
            raise ModelFormatError(f"{where}: tensor {key!r} holds NaN or infinite values")


def save_model_folder(folder: str | os.PathLike[str], *, format_name: str, format_version: int,
                      meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """Write a model folder (creating it; an existing model folder is replaced in one rename).

    Raises:
        InputError: if ``folder`` is a file, or a non-empty folder that is not a model folder.
        ModelFormatError: if a tensor holds NaN or infinite values (the model would not load).
    """
    from safetensors.numpy import save

    root = check_model_folder(folder)
    tensors = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    _finite(tensors, f"cannot save {display_path(root)}")
    blob = save(tensors)
    digest = _digest(blob)
    name = f"tensors-{digest[:16]}.safetensors"
    manifest = {
        "format": format_name,
        "format_version": int(format_version),
        "library_version": __version__,
        "files": {name: {"sha256": digest, "bytes": len(blob)}},
        "meta": meta,
    }
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{display_path(root)}: cannot create the model folder ({err.strerror})") from None
    with _locked(root):
        remove_stale_temp_files(root)
        with atomic_write(root / name, "wb") as handle:
            handle.write(blob)
        write_json(root / MANIFEST, manifest)  # the switch: before it the old model, after it the new one
        for old in root.iterdir():
            if _TENSORS.match(old.name) and old.name != name:
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()
    return root


def _read_regular(path: Path, limit: int, shown: str) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes (never follows a link)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise ModelFormatError(f"{shown}: is missing") from None
    if stat.S_ISLNK(info.st_mode):
        raise ModelFormatError(f"{shown}: is a symbolic link; a model folder holds regular files only")
    if not stat.S_ISREG(info.st_mode):
        raise ModelFormatError(f"{shown}: is not a regular file; a model folder holds regular files only")
    if info.st_size > limit:
        raise ModelFormatError(f"{shown}: {info.st_size} bytes, more than the {limit} expected")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ModelFormatError(f"{shown}: is a symbolic link; a model folder holds regular files only") from None
        raise
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # swapped after the check above
            raise ModelFormatError(f"{shown}: is not a regular file; a model folder holds regular files only")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ModelFormatError(f"{shown}: more than the {limit} bytes expected")
    return data


def _tensor_file(manifest: dict[str, Any], shown: str) -> tuple[str, str, int]:
    """``(name, sha256, size limit)`` of the manifest's tensor file (either layout)."""
    files = manifest.get("files")
    if not isinstance(files, dict) or len(files) != 1 or not isinstance(manifest.get("meta"), dict):
        raise ModelFormatError(f"{shown}/{MANIFEST}: malformed manifest (files/meta)")
    (name, entry), = files.items()
    if not _TENSORS.match(str(name)):
        raise ModelFormatError(f"{shown}/{MANIFEST}: malformed manifest (tensor file {str(name)[:40]!r})")
    if isinstance(entry, str):  # folders written before sizes were recorded
        return name, entry, MAX_TENSOR_BYTES
    size = entry.get("bytes") if isinstance(entry, dict) else None
    if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_TENSOR_BYTES:
        raise ModelFormatError(f"{shown}/{MANIFEST}: malformed manifest (size of {name})")
    return name, str(entry.get("sha256")), size


def tensor_path(folder: str | os.PathLike[str]) -> Path:
    """The tensor file the manifest of ``folder`` names (for tools and tests; loading checks it)."""
    root = Path(folder)
    manifest = parse_json((root / MANIFEST).read_bytes())
    return root / _tensor_file(manifest, display_path(root))[0]


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
        raise ModelFormatError(f"{shown}: a model is a folder (with {MANIFEST} and a tensor file), got a file")
    names = sorted(p.name for p in root.iterdir())
    unexpected = [n for n in names if not _belongs(n)]
    if unexpected:
        raise ModelFormatError(f"{shown}: unexpected file(s) {', '.join(unexpected[:3])} in the model folder "
                               f"(only {MANIFEST} and its tensor file belong there); refusing to load a tampered folder")
    if MANIFEST not in names:
        raise ModelFormatError(f"{shown}: no {MANIFEST}; not a model folder")
    try:
        manifest = parse_json(_read_regular(root / MANIFEST, MAX_MANIFEST_BYTES, f"{shown}/{MANIFEST}"))
    except ValueError as err:
        if isinstance(err, ModelFormatError):
            raise
        raise ModelFormatError(f"{shown}/{MANIFEST}: not valid JSON ({err})") from None
    if not isinstance(manifest, dict):
        raise ModelFormatError(f"{shown}/{MANIFEST}: expected a JSON object")
    if manifest.get("format") != format_name:
        raise ModelFormatError(f"{shown}: format {str(manifest.get('format'))[:40]!r} is not {format_name!r}")
    version = manifest.get("format_version")
    if version != format_version:
        raise ModelFormatError(f"{shown}: model format version {str(version)[:20]} (library "
                               f"{str(manifest.get('library_version', '?'))[:20]}), this library reads version "
                               f"{format_version}; refit the model with this version")
    if manifest.get("manifest_sha256") != _manifest_digest(manifest):
        raise ModelFormatError(f"{shown}/{MANIFEST}: checksum mismatch (the manifest was modified after saving)")
    name, digest, limit = _tensor_file(manifest, shown)
    blob = _read_regular(root / name, limit, f"{shown}/{name}")
    if _digest(blob) != digest:
        raise ModelFormatError(f"{shown}/{name}: checksum mismatch (the tensors were modified after saving)")
    try:
        arrays = load(blob)
    except (SafetensorError, ValueError) as err:
        raise ModelFormatError(f"{shown}/{name}: unreadable tensors ({err})") from None
    _finite(arrays, f"{shown}/{name}")
    return manifest["meta"], arrays
