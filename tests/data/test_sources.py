"""Data folder resolution and checked downloads against a local HTTP server."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading

import pytest

from edgeopt_plugins.data import _sources, download, manifest, resolve_data_dir
from edgeopt_plugins.exceptions import DataNotFoundError, InputError


def test_resolution_order(tmp_path, monkeypatch):
    explicit = tmp_path / "explicit"
    (explicit / "upstream").mkdir(parents=True)
    env = tmp_path / "env"
    (env / "tables").mkdir(parents=True)
    monkeypatch.setenv("EDGEOPT_DATA_DIR", str(env))
    assert resolve_data_dir(explicit) == explicit
    assert resolve_data_dir() == env
    monkeypatch.delenv("EDGEOPT_DATA_DIR")
    monkeypatch.setenv("EDGEOPT_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataNotFoundError, match="edgeopt data download"):
        resolve_data_dir()
    (tmp_path / "cache" / "upstream").mkdir(parents=True)
    assert resolve_data_dir() == tmp_path / "cache"
    with pytest.raises(DataNotFoundError, match="does not exist"):
        resolve_data_dir(tmp_path / "nope")


def test_manifest_lists_upstream_files_with_checksums():
    files = manifest()
    assert len(files) >= 70
    assert all(len(f.sha256) == 64 and f.size > 0 for f in files)
    assert {f.path for f in files if f.url is None} == {"upstream/nats_bench/nats_bench.csv"}


@pytest.fixture
def mirror(tmp_path):
    """A local HTTP server on 127.0.0.1 serving a folder laid out like the upstream data."""
    root = tmp_path / "mirror"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))

    class Quiet(handler.func):  # type: ignore[misc, valid-type]
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _tiny_manifest(monkeypatch, content: bytes):
    entry = _sources.ManifestFile("upstream/help/fbnet/arch.pt", hashlib.sha256(content).hexdigest(), len(content), None)
    monkeypatch.setattr(_sources, "manifest", lambda: [entry])
    return entry


def test_download_checks_checksums_and_writes_atomically(tmp_path, monkeypatch, mirror):
    root, url = mirror
    entry = _tiny_manifest(monkeypatch, b"real bytes")
    (root / "upstream/help/fbnet").mkdir(parents=True)
    (root / entry.path).write_bytes(b"real bytes")
    monkeypatch.setenv("EDGEOPT_DATA_MIRROR", url)
    target = tmp_path / "cache"
    report = download(target, retries=1)
    assert report["downloaded"] == [entry.path]
    assert (target / entry.path).read_bytes() == b"real bytes"
    assert download(target, retries=1)["present"] == [entry.path]


def test_tampered_download_is_refused_and_leaves_nothing(tmp_path, monkeypatch, mirror):
    root, url = mirror
    entry = _tiny_manifest(monkeypatch, b"real bytes")
    (root / "upstream/help/fbnet").mkdir(parents=True)
    (root / entry.path).write_bytes(b"evil bytes")  # same size, other content
    monkeypatch.setenv("EDGEOPT_DATA_MIRROR", url)
    target = tmp_path / "cache"
    with pytest.raises(InputError, match="checksum mismatch"):
        download(target, retries=2)
    folder = target / "upstream/help/fbnet"
    assert not folder.exists() or list(folder.iterdir()) == []


def test_unreachable_mirror_fails_after_bounded_retries(tmp_path, monkeypatch):
    _tiny_manifest(monkeypatch, b"x")
    monkeypatch.setenv("EDGEOPT_DATA_MIRROR", "http://127.0.0.1:9")
    monkeypatch.setattr(_sources.time, "sleep", lambda s: None)
    with pytest.raises(InputError, match="failed after 2 attempts"):
        download(tmp_path / "c", retries=2, timeout_s=2)


def test_real_manifest_matches_the_shared_data(data_dir, tmp_path, monkeypatch, mirror):
    """Downloading from a mirror of the real files verifies every published checksum."""
    root, url = mirror
    shutil.copytree(data_dir / "upstream" / "help" / "nasbench201", root / "upstream/help/nasbench201")
    subset = [f for f in manifest() if f.path.startswith("upstream/help/nasbench201/latency/p")]
    monkeypatch.setattr(_sources, "manifest", lambda: subset)
    monkeypatch.setenv("EDGEOPT_DATA_MIRROR", url)
    report = download(tmp_path / "cache", retries=1)
    assert sorted(report["downloaded"]) == sorted(f.path for f in subset)
