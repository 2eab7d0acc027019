"""Model folders: atomic saves under a full disk and kills, regular files only, finite tensors."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from benchmarks._faults import (
    DISK_FULL,
    MODEL_FORMAT,
    SAVE_KILL_POINTS,
    SAVE_WRITES,
    disk_full_at_fsync,
    kill_during_save,
    load_model,
    save_model,
)
from edgeopt_plugins.exceptions import InputError, ModelFormatError
from edgeopt_plugins.predictors._store import (
    MANIFEST,
    _manifest_digest,
    check_model_folder,
    load_model_folder,
    save_model_folder,
    tensor_path,
)


def test_a_new_save_replaces_the_old_model_and_leaves_two_files(tmp_path):
    save_model(tmp_path / "m", 1.0)
    save_model(tmp_path / "m", 2.0)
    assert load_model(tmp_path / "m") == 2.0
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [MANIFEST, tensor_path(tmp_path / "m").name]


@pytest.mark.parametrize("code", DISK_FULL)
@pytest.mark.parametrize("failing_write", SAVE_WRITES)
def test_disk_full_during_a_save_keeps_the_old_model(tmp_path, code, failing_write):
    folder = tmp_path / "m"
    save_model(folder, 1.0)
    with pytest.raises(OSError) as caught, disk_full_at_fsync(failing_write, code):
        save_model(folder, 2.0)
    assert caught.value.errno == code and caught.value.filename  # the error names the file
    assert load_model(folder) == 1.0
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    save_model(folder, 3.0)  # and the next save cleans what the failed one left
    assert load_model(folder) == 3.0 and len(list(folder.iterdir())) == 2


@pytest.mark.parametrize(("point", "nth", "when", "survivor"), SAVE_KILL_POINTS)
def test_a_save_killed_at_any_point_leaves_a_loadable_model(tmp_path, point, nth, when, survivor):
    folder = tmp_path / "m"
    save_model(folder, 1.0)
    assert kill_during_save(folder, point, nth, 2.0) == -signal.SIGKILL
    assert load_model(folder) == {"old": 1.0, "new": 2.0}[survivor], when
    check_model_folder(folder)  # `fit --out` accepts the folder as it is
    save_model(folder, 3.0)
    assert load_model(folder) == 3.0 and len(list(folder.iterdir())) == 2


def test_a_stale_temporary_file_from_an_older_version_is_ignored(tmp_path):
    folder = tmp_path / "m"
    save_model(folder, 1.0)
    (folder / ".tensors.safetensors.ab12cd34.tmp").write_bytes(b"\x00" * 100)
    assert load_model(folder) == 1.0
    check_model_folder(folder)
    save_model(folder, 2.0)
    assert len(list(folder.iterdir())) == 2


def test_a_folder_of_earlier_versions_still_loads(tmp_path):
    """``tensors.safetensors`` named by its bare checksum, as written before atomic saves."""
    import hashlib

    from safetensors.numpy import save as to_bytes

    folder = tmp_path / "old"
    folder.mkdir()
    blob = to_bytes({"w": np.full(1000, 5.0)})
    (folder / "tensors.safetensors").write_bytes(blob)
    manifest = {"format": MODEL_FORMAT["format_name"], "format_version": MODEL_FORMAT["format_version"],
                "library_version": "0.1.0", "files": {"tensors.safetensors": hashlib.sha256(blob).hexdigest()},
                "meta": {"value": 5.0}}
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest))
    assert load_model(folder) == 5.0
    save_model(folder, 6.0)
    assert load_model(folder) == 6.0 and not (folder / "tensors.safetensors").exists()


@pytest.mark.parametrize("kind", ["symlink to /dev/zero", "fifo"])
def test_only_regular_files_are_read(tmp_path, kind):
    folder = tmp_path / "m"
    save_model(folder, 1.0)

    def replace(path: Path) -> None:
        path.unlink()
        if kind == "fifo":
            os.mkfifo(path)
        else:
            path.symlink_to("/dev/zero")

    replace(tensor_path(folder))
    with pytest.raises(ModelFormatError, match="regular files only"):
        load_model(folder)
    replace(folder / MANIFEST)
    with pytest.raises(ModelFormatError, match="regular files only"):
        load_model(folder)


def test_a_file_larger_than_the_manifest_says_is_refused(tmp_path):
    folder = tmp_path / "m"
    save_model(folder, 1.0)
    with tensor_path(folder).open("ab") as handle:
        handle.write(b"\x00" * 10)
    with pytest.raises(ModelFormatError, match="bytes"):
        load_model(folder)


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
    save_model(folder, 1.0)
    w = np.full(1000, 1.0)
    w[7] = bad
    _rehashed(folder, {"w": w})
    with pytest.raises(ModelFormatError, match="'w' holds NaN or infinite"):
        load_model(folder)
    with pytest.raises(ModelFormatError, match="NaN or infinite"):
        save_model_folder(tmp_path / "n", meta={}, arrays={"w": w}, **MODEL_FORMAT)
    assert not (tmp_path / "n" / MANIFEST).exists()


@pytest.mark.parametrize("text", ["[" * 100000 + "]" * 100000, '{"a": ' + "9" * 10000 + "}", '{"a": 1e999}'])
def test_hostile_manifest_json_is_one_error(tmp_path, text):
    folder = tmp_path / "m"
    save_model(folder, 1.0)
    (folder / MANIFEST).write_text(text)
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        load_model_folder(folder, **MODEL_FORMAT)


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
