"""Where benchmark files come from: a path, ``EDGEOPT_DATA_DIR``, or a checked download.

A *data folder* has the layout of the public upstream releases::

    upstream/help/{nasbench201,fbnet,ofa}/...       HELP (.pt lists)
    upstream/nats_bench/nats_bench.csv              NATS-Bench accuracies (an export)
    upstream/accel_nasbench/anb_dataset_jsons.tar.gz
    tables/...                                      optional flat CSV copies

Resolution order: the explicit ``data_dir`` argument, then the ``EDGEOPT_DATA_DIR``
environment variable, then the user cache (``EDGEOPT_CACHE_DIR`` or
``~/.cache/edgeopt``) once :func:`download` has filled it. Nothing is downloaded
implicitly and nothing at import time.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from edgeopt_plugins._io import atomic_write, display_path
from edgeopt_plugins.exceptions import DataNotFoundError, InputError

__all__ = ["ManifestFile", "manifest", "resolve_data_dir", "cache_dir", "download", "DATA_ENV", "MIRROR_ENV"]

DATA_ENV = "EDGEOPT_DATA_DIR"
CACHE_ENV = "EDGEOPT_CACHE_DIR"
#: Base URL replacing the upstream locations (a mirror, or a local server in tests).
MIRROR_ENV = "EDGEOPT_DATA_MIRROR"
_CHUNK = 1 << 16


@dataclass(frozen=True)
class ManifestFile:
    """One published file: where it goes in a data folder, its checksum and its URL."""

    path: str
    sha256: str
    size: int
    url: str | None


def manifest() -> list[ManifestFile]:
    """The files known to the loaders, with checksums (from the package's ``manifest.json``)."""
    text = resources.files("edgeopt_plugins.data").joinpath("manifest.json").read_text(encoding="utf-8")
    return [ManifestFile(**entry) for entry in json.loads(text)["files"]]


def cache_dir() -> Path:
    """The user cache folder that :func:`download` fills."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edgeopt"


def _looks_like_data(folder: Path) -> bool:
    return (folder / "upstream").is_dir() or (folder / "tables").is_dir()


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data folder to read from.

    Args:
        data_dir: An explicit folder; it must exist.

    Raises:
        DataNotFoundError: with the three ways to provide data, when none works.

    Example:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp(); os.mkdir(os.path.join(d, "upstream"))
        >>> resolve_data_dir(d).name == os.path.basename(d)
        True
    """
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise DataNotFoundError(f"data folder {display_path(folder)} does not exist (given as --data-dir/data_dir)")
        if not _looks_like_data(folder):
            raise DataNotFoundError(
                f"data folder {display_path(folder)} has neither upstream/ nor tables/ (see docs/data.md for the layout)"
            )
        return folder
    env = os.environ.get(DATA_ENV)
    if env:
        folder = Path(env).expanduser()
        if not folder.is_dir() or not _looks_like_data(folder):
            raise DataNotFoundError(f"{DATA_ENV}={env} is not a data folder with upstream/ or tables/")
        return folder
    cached = cache_dir()
    if cached.is_dir() and _looks_like_data(cached):
        return cached
    raise DataNotFoundError(
        f"no benchmark data found: pass --data-dir, set {DATA_ENV}, or run `edgeopt data download` "
        f"to fill {display_path(cached)}"
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _url_for(entry: ManifestFile) -> str | None:
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        return mirror.rstrip("/") + "/" + entry.path
    return entry.url


def _fetch(url: str, entry: ManifestFile, target: Path, timeout_s: float) -> None:
    """Download ``url`` to ``target`` atomically, checking size and checksum."""
    digest = hashlib.sha256()
    received = 0
    with urllib.request.urlopen(url, timeout=timeout_s) as response, atomic_write(target, "wb") as out:  # noqa: S310
        while True:
            chunk = response.read(_CHUNK)
            if not chunk:
                break
            received += len(chunk)
            if received > entry.size:
                raise InputError(f"{url}: larger than the expected {entry.size} bytes; refusing it")
            digest.update(chunk)
            out.write(chunk)
        if received != entry.size:
            raise InputError(f"{url}: got {received} bytes, expected {entry.size}")
        if digest.hexdigest() != entry.sha256:
            raise InputError(f"{url}: checksum mismatch (sha256 {digest.hexdigest()[:16]}..., expected {entry.sha256[:16]}...)")


def download(
    target: str | os.PathLike[str] | None = None,
    *,
    retries: int = 3,
    timeout_s: float = 60.0,
    progress: Callable[[ManifestFile], None] | None = None,
) -> dict[str, list[str]]:
    """Fill a data folder (default: the user cache) from the public upstream locations.

    Files already present with the right checksum are kept. Each file is written
    to a temporary name and renamed only after its size and SHA-256 match the
    manifest, so an interrupted download never leaves a corrupt file.

    Args:
        target: Folder to fill (default :func:`cache_dir`).
        retries: Attempts per file, with exponential backoff.
        timeout_s: Network timeout per request.
        progress: Called with each manifest entry before it is handled.

    Returns:
        ``{"downloaded": [...], "present": [...], "unavailable": [...]}`` (relative paths);
        ``unavailable`` lists files with no public URL, to be provided by hand.

    Raises:
        InputError: if a file keeps failing or its checksum does not match.
    """
    root = Path(target) if target is not None else cache_dir()
    report: dict[str, list[str]] = {"downloaded": [], "present": [], "unavailable": []}
    for entry in manifest():
        if progress:
            progress(entry)
        dest = root / entry.path
        if dest.is_file() and dest.stat().st_size == entry.size and _sha256(dest) == entry.sha256:
            report["present"].append(entry.path)
            continue
        url = _url_for(entry)
        if url is None:
            report["unavailable"].append(entry.path)
            continue
        for attempt in range(retries):
            try:
                _fetch(url, entry, dest, timeout_s)
                break
            except (urllib.error.URLError, OSError, InputError) as err:
                if attempt == retries - 1:
                    reason = err.reason if isinstance(err, urllib.error.URLError) else err
                    raise InputError(f"download of {entry.path} from {url} failed after {retries} attempts: {reason}") from None
                time.sleep(min(8.0, 0.5 * 2**attempt))
        report["downloaded"].append(entry.path)
    return report
