"""DeviceProfile: CSV + sidecar round trip and one clear error per malformed file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeopt_plugins.devices import DeviceProfile, sidecar_path
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.spaces import get_space

ARCHS = get_space("nb201").sample(4, seed=2)
FB = get_space("fbnet").sample(2, seed=0)


def test_round_trip_with_sidecar(tmp_path):
    p = DeviceProfile.from_dict("nb201", dict(zip(ARCHS, [1.5, 2.5, 3.5, 4.5])), name="phone",
                                metadata={"threads": 1})
    path = p.write(tmp_path / "phone.csv")
    meta = json.loads(sidecar_path(path).read_text())
    assert meta == {"format": 1, "name": "phone", "threads": 1, "space": "nb201"}
    back = DeviceProfile.read(path)
    assert back.archs == p.archs and back.name == "phone"
    np.testing.assert_array_equal(back.latency_ms, p.latency_ms)


def test_json_architectures_with_commas_round_trip(tmp_path):
    p = DeviceProfile.from_dict("fbnet", {FB[0]: 3.0, FB[1]: 4.0})
    back = DeviceProfile.read(p.write(tmp_path / "fb.csv"))
    assert back.archs == p.archs


def test_energy_column_is_optional(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text(f"arch,latency_ms,energy_mj\n{ARCHS[0]},1.0,2.0\n{ARCHS[1]},1.5,2.5\n")
    p = DeviceProfile.read(path, space="nb201")
    assert p.energy_mj.tolist() == [2.0, 2.5]
    assert DeviceProfile.read(p.write(tmp_path / "e2.csv")).energy_mj.tolist() == [2.0, 2.5]


def test_identical_duplicates_are_merged(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text(f"arch,latency_ms\n{ARCHS[0]},1.0\n{ARCHS[0]},1.0\n{ARCHS[1]},2\n")
    assert len(DeviceProfile.read(path, space="nb201")) == 2


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "file is empty"),
        ("arch,latency_ms\n", "has a header but no measurements"),
        ("arch,ms\nx,1\n", "line 1: missing column(s) latency_ms"),
        ("latency_ms\n1\n", "line 1: missing column(s) arch"),
        (f"arch,latency_ms\n{ARCHS[0]},1\n|bad~0|,2\n", "line 3: nb201 architecture '|bad~0|'"),
        (f"arch,latency_ms\n{ARCHS[0]},-1\n", "line 2: latency_ms is negative"),
        (f"arch,latency_ms\n{ARCHS[0]},0\n", "line 2: latency_ms is zero"),
        (f"arch,latency_ms\n{ARCHS[0]},nan\n", "line 2: latency_ms is nan"),
        (f"arch,latency_ms\n{ARCHS[0]},inf\n", "line 2: latency_ms is inf"),
        (f"arch,latency_ms\n{ARCHS[0]},fast\n", "line 2: latency_ms 'fast' is not a number"),
        (f"arch,latency_ms\n{ARCHS[0]},\n", "line 2: latency_ms is empty"),
        (f"arch,latency_ms\n{ARCHS[0]},1,2\n", "line 2: 3 fields, expected 2"),
        (f"arch,latency_ms\n{ARCHS[0]},1\n{ARCHS[0]},2\n", "line 3: " + ARCHS[0] + " was already measured on line 2"),
    ],
)
def test_malformed_profiles_name_file_line_and_problem(tmp_path, text, fragment):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        DeviceProfile.read(path, space="nb201")
    message = str(info.value)
    assert message.startswith(str(path)) or message.startswith("bad.csv") or "bad.csv" in message
    assert fragment in message
    assert "\n" not in message


def test_space_must_be_known_and_consistent(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(f"arch,latency_ms\n{ARCHS[0]},1\n")
    with pytest.raises(InputError, match="pass the space"):
        DeviceProfile.read(path)
    sidecar_path(path).write_text(json.dumps({"space": "fbnet"}))
    with pytest.raises(InputError, match="sidecar says space 'fbnet'"):
        DeviceProfile.read(path, space="nb201")
    sidecar_path(path).write_text("{not json")
    with pytest.raises(InputError, match="sidecar is not valid JSON"):
        DeviceProfile.read(path, space="nb201")
    sidecar_path(path).write_text(json.dumps({"space": "nb201", "format": 99}))
    with pytest.raises(InputError, match="format 99 is not supported"):
        DeviceProfile.read(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(InputError, match="not found"):
        DeviceProfile.read(tmp_path / "none.csv", space="nb201")
    with pytest.raises(InputError, match="is a folder"):
        DeviceProfile.read(tmp_path, space="nb201")


def test_from_table_and_extension(nb201_latency):
    p = DeviceProfile.from_table(nb201_latency, "pixel3", k=10, seed=0)
    assert len(p) == 10 and p.name == "pixel3"
    assert DeviceProfile.from_table(nb201_latency, "pixel3", k=10, seed=0).archs == p.archs
    np.testing.assert_allclose(p.latency_ms, nb201_latency.lookup(p.archs, "pixel3"))
    more = p.extended([ARCHS[0]], [9.0])
    assert len(more) == 11 or ARCHS[0] in p.archs
    with pytest.raises(InputError, match="k must be between"):
        DeviceProfile.from_table(nb201_latency, "pixel3", k=0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(ARCHS + ["|x~0|", ""]),
                  st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5))),
        min_size=0, max_size=6,
    )
)
def test_any_profile_file_reads_or_fails_with_one_clear_line(tmp_path, rows):
    path = tmp_path / "prop.csv"
    path.write_text("arch,latency_ms\n" + "".join(f"{a},{v}\n".replace("\r", "") for a, v in rows))
    try:
        p = DeviceProfile.read(path, space="nb201")
    except InputError as err:
        assert "\n" not in str(err) and "prop.csv" in str(err)
    else:
        assert len(p) >= 1
        assert np.isfinite(p.latency_ms).all() and (p.latency_ms > 0).all()


def test_write_is_all_or_nothing(tmp_path):
    p = DeviceProfile.from_dict("nb201", {ARCHS[0]: 1.0}, name="phone")
    (tmp_path / "phone.json").mkdir()  # the sidecar cannot be written
    with pytest.raises(InputError, match="is a folder"):
        p.write(tmp_path / "phone.csv")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["phone.json"]
