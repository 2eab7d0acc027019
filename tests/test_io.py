"""The shared file helpers: atomic writes (modes, errors naming the file, stale temporary files), bounded JSON."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from edgeopt_plugins._io import (
    atomic_write,
    parse_json,
    printable,
    remove_stale_temp_files,
    stale_temp_files,
    write_text,
)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_a_new_file_gets_the_mode_the_umask_allows(tmp_path, umask, expected):
    old = os.umask(umask)
    try:
        write_text(tmp_path / "designs.csv", "x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "designs.csv") == expected


def test_rewriting_a_file_keeps_its_mode(tmp_path):
    path = tmp_path / "shared.csv"
    write_text(path, "old")
    os.chmod(path, 0o664)
    old = os.umask(0o077)
    try:
        write_text(path, "new")
    finally:
        os.umask(old)
    assert path.read_text() == "new" and _mode(path) == 0o664


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG, errno.EDQUOT])
def test_a_full_disk_names_the_file_and_leaves_nothing(tmp_path, code):
    path = tmp_path / "out.csv"
    with pytest.raises(OSError) as caught, atomic_write(path) as handle:
        handle.write("partial")
        raise OSError(code, os.strerror(code))
    assert caught.value.errno == code and caught.value.filename.endswith("out.csv")
    assert list(tmp_path.iterdir()) == []


def test_stale_temporary_files_are_those_of_dead_writers(tmp_path):
    mine = tmp_path / f".model.json.{os.getpid()}.abcd1234.tmp"
    dead = tmp_path / ".model.json.999999999.abcd1234.tmp"  # no such process
    older = tmp_path / ".tensors.safetensors.ab12cd34.tmp"  # written before temporary files named their writer
    for path in (mine, dead, older, tmp_path / "model.json"):
        path.write_text("x")
    assert stale_temp_files(tmp_path) == sorted([dead, older])
    assert remove_stale_temp_files(tmp_path, ["model.json"]) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, older.name, "model.json"])


@pytest.mark.parametrize(("text", "reason"), [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("9" * 10_000, "too many digits"),
    ('{"a": 1e999}', "out of range"),
    ('{"a": ', "Expecting value"),
    (b"{\"a\": \"\x80\"}", "not UTF-8"),
])
def test_hostile_json_is_one_value_error(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_json(text)


def test_json_that_the_library_writes_still_reads():
    assert parse_json('{"a": NaN, "b": [1, 2.5e-3], "c": "x"}')["b"] == [1, 0.0025]


def test_control_characters_are_shown_not_obeyed():
    assert printable("evil\x1b[2J\x1b]0;title\x07\r\nok\u202e") == "evil\\x1b[2J\\x1b]0;title\\x07\\r\\nok\\u202e"
    assert printable("café\tok") == "café\tok"


def test_a_write_removes_what_a_killed_writer_of_the_same_file_left(tmp_path):
    dead = tmp_path / ".pred.csv.999999999.abcd1234.tmp"
    other = tmp_path / ".other.csv.999999999.abcd1234.tmp"
    dead.write_text("half")
    other.write_text("half")
    write_text(tmp_path / "pred.csv", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([other.name, "pred.csv"])
