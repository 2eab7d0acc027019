"""Model folders: atomic saves under a full disk and kills, regular files only, finite tensors."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edgeopt_plugins.exceptions import InputError, ModelFormatError
from edgeopt_plugins.predictors._store import (
    MANIFEST,
    _manifest_digest,
    check_model_folder,
    load_model_folder,
    save_model_folder,
    tensor_path,
)

ROOT = Path(__file__).resolve().parents[2]
FORMAT = {"format_name": "test-model", "format_version": 1}


def save(folder, value: float) -> None:
    save_model_folder(folder, meta={"value": value}, arrays={"w": np.full(1000, value)}, **FORMAT)


def load(folder) -> float:
    meta, arrays = load_model_folder(folder, **FORMAT)
    assert np.all(arrays["w"] == meta["value"])
    return meta["value"]


def test_a_new_save_replaces_the_old_model_and_leaves_two_files(tmp_path):
    save(tmp_path / "m", 1.0)
    save(tmp_path / "m", 2.0)
    assert load(tmp_path / "m") == 2.0
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [MANIFEST, tensor_path(tmp_path / "m").name]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG, errno.EDQUOT])
@pytest.mark.parametrize("failing_write", [1, 3])  # fsyncs: 1 the tensor file, 2 its folder, 3 the manifest
def test_disk_full_during_a_save_keeps_the_old_model(tmp_path, monkeypatch, code, failing_write):
    folder = tmp_path / "m"
    save(folder, 1.0)
    calls = []
    real_fsync = os.fsync

    def full_disk(fd):
        calls.append(fd)
        if len(calls) == failing_write:
            raise OSError(code, os.strerror(code))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError) as caught:
        save(folder, 2.0)
    assert caught.value.errno == code and caught.value.filename  # the error names the file
    monkeypatch.undo()
    assert load(folder) == 1.0
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    save(folder, 3.0)  # and the next save cleans what the failed one left
    assert load(folder) == 3.0 and len(list(folder.iterdir())) == 2


_KILLER = textwrap.dedent("""
    import os, pathlib, signal, sys
    import numpy as np
    from edgeopt_plugins.predictors._store import save_model_folder
    point, nth = sys.argv[2], int(sys.argv[3])
    target = {"replace": os, "fsync": os, "unlink": pathlib.Path}[point]
    real = getattr(target, point)
    count = [0]
    def hook(*args, **kwargs):
        count[0] += 1
        if count[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    setattr(target, point, hook)
    save_model_folder(sys.argv[1], meta={"value": 2.0}, arrays={"w": np.full(1000, 2.0)},
                      format_name="test-model", format_version=1)
""")


@pytest.mark.parametrize(("point", "nth", "expected"), [
    ("fsync", 1, 1.0),    # during the tensor write: a temporary file is left
    ("replace", 1, 1.0),  # tensor file written, not yet renamed
    ("fsync", 3, 1.0),    # new tensor file in place, manifest being written (2: the folder)
    ("replace", 2, 1.0),  # between the two renames
    ("unlink", 1, 2.0),   # switched; the old tensor file not yet removed
])
def test_a_save_killed_at_any_point_leaves_a_loadable_model(tmp_path, point, nth, expected):
    folder = tmp_path / "m"
    save(folder, 1.0)
    child = subprocess.run([sys.executable, "-c", _KILLER, str(folder), point, str(nth)], cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    assert load(folder) == expected
    check_model_folder(folder)  # `fit --out` accepts the folder as it is
    save(folder, 3.0)
    assert load(folder) == 3.0 and len(list(folder.iterdir())) == 2


def test_a_stale_temporary_file_from_an_older_version_is_ignored(tmp_path):
    folder = tmp_path / "m"
    save(folder, 1.0)
    (folder / ".tensors.safetensors.ab12cd34.tmp").write_bytes(b"\x00" * 100)
    assert load(folder) == 1.0
    check_model_folder(folder)
    save(folder, 2.0)
    assert len(list(folder.iterdir())) == 2


def test_a_folder_of_earlier_versions_still_loads(tmp_path):
    """``tensors.safetensors`` named by its bare checksum, as written before atomic saves."""
    from safetensors.numpy import save as to_bytes

    folder = tmp_path / "old"
    folder.mkdir()
    blob = to_bytes({"w": np.full(1000, 5.0)})
    (folder / "tensors.safetensors").write_bytes(blob)
    import hashlib

    manifest = {**FORMAT, "library_version": "0.1.0", "files": {"tensors.safetensors": hashlib.sha256(blob).hexdigest()},
                "meta": {"value": 5.0}}
    manifest["format"] = manifest.pop("format_name")
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest))
    assert load(folder) == 5.0
    save(folder, 6.0)
    assert load(folder) == 6.0 and not (folder / "tensors.safetensors").exists()


@pytest.mark.parametrize("kind", ["symlink to /dev/zero", "fifo"])
def test_only_regular_files_are_read(tmp_path, kind):
    folder = tmp_path / "m"
    save(folder, 1.0)
    tensors = tensor_path(folder)
    tensors.unlink()
    if kind == "fifo":
        os.mkfifo(tensors)
    else:
        tensors.symlink_to("/dev/zero")
    with pytest.raises(ModelFormatError, match="regular files only"):
        load(folder)
    (folder / MANIFEST).unlink()
    if kind == "fifo":
        os.mkfifo(folder / MANIFEST)
    else:
        (folder / MANIFEST).symlink_to("/dev/zero")
    with pytest.raises(ModelFormatError, match="regular files only"):
        load(folder)


def test_a_file_larger_than_the_manifest_says_is_refused(tmp_path):
    folder = tmp_path / "m"
    save(folder, 1.0)
    with tensor_path(folder).open("ab") as handle:
        handle.write(b"\x00" * 10)
    with pytest.raises(ModelFormatError, match="bytes"):
        load(folder)


def _rehashed(folder: Path, arrays: dict) -> None:
    """Rewrite the tensors and fix both checksums (what a careful tamperer does)."""
    import hashlib

    from safetensors.numpy import save as to_bytes

    blob = to_bytes(arrays)
    old = tensor_path(folder)
    old.write_bytes(blob)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"][old.name] = {"sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)}
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_tensors_are_refused_on_load_and_on_save(tmp_path, bad):
    folder = tmp_path / "m"
    save(folder, 1.0)
    w = np.full(1000, 1.0)
    w[7] = bad
    _rehashed(folder, {"w": w})
    with pytest.raises(ModelFormatError, match="'w' holds NaN or infinite"):
        load(folder)
    with pytest.raises(ModelFormatError, match="NaN or infinite"):
        save_model_folder(tmp_path / "n", meta={}, arrays={"w": w}, **FORMAT)
    assert not (tmp_path / "n" / MANIFEST).exists()


@pytest.mark.parametrize("text", ["[" * 100000 + "]" * 100000, '{"a": ' + "9" * 10000 + "}", '{"a": 1e999}'])
def test_hostile_manifest_json_is_one_error(tmp_path, text):
    folder = tmp_path / "m"
    save(folder, 1.0)
    (folder / MANIFEST).write_text(text)
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        load(folder)


def test_check_model_folder_refuses_files_and_foreign_folders(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        check_model_folder(tmp_path / "file")
    with pytest.raises(InputError, match="not a folder"):
        check_model_folder(tmp_path / "file" / "model")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        check_model_folder(tmp_path / "notes")
    assert check_model_folder(tmp_path / "new" / "model") == tmp_path / "new" / "model"
