"""MetricTable validation and the flat-CSV reader's error messages."""

from __future__ import annotations

import numpy as np
import pytest

from edgeopt_plugins.data import MetricTable, read_table_csv
from edgeopt_plugins.exceptions import ArchitectureError, InputError
from edgeopt_plugins.spaces import get_space

ARCHS = get_space("nb201").sample(3, seed=0)


def test_valid_table_and_lookups():
    t = MetricTable("nb201", "latency_ms", ARCHS, ["a", "b"], [[1, 2], [3, 4], [5, 6]])
    assert t.lookup([ARCHS[2]], "b").tolist() == [6.0]
    assert t.column("a").tolist() == [1, 3, 5]
    sub = t.select(devices=["b"], rows=[0, 2])
    assert sub.devices == ("b",) and len(sub) == 2
    assert list(t.to_frame().columns) == ["arch", "a", "b"]
    with pytest.raises(InputError, match="unknown device 'c'"):
        t.column("c")
    with pytest.raises(InputError, match="not in the table"):
        t.rows_of([get_space("nb201").sample(4, seed=0)[3]])


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ([[1], [np.nan], [2]], "latency_ms is nan"),
        ([[1], [-2], [2]], "latency_ms is negative"),
        ([[1], [0], [2]], "latency_ms is zero"),
        ([[1], [np.inf], [2]], "must be finite"),
    ],
)
def test_bad_values_are_reported_with_arch_and_device(values, fragment):
    with pytest.raises(InputError) as info:
        MetricTable("nb201", "latency_ms", ARCHS, ["dev"], values, source="x.csv")
    assert fragment in str(info.value) and "on dev" in str(info.value) and str(info.value).startswith("x.csv")


def test_missing_values_are_masked_not_used():
    t = MetricTable("nb201", "latency_ms", ARCHS, ["dev"], [[1], [-1], [2]], missing=[[False], [True], [False]])
    assert np.isnan(t.column("dev")[1]) and not t.available[1, 0]
    with pytest.raises(InputError, match="missing"):
        t.lookup([ARCHS[1]], "dev")
    assert np.isnan(t.lookup([ARCHS[1]], "dev", skip_missing=True)[0])


def test_duplicates_and_unknown_architectures():
    with pytest.raises(InputError, match="appears twice"):
        MetricTable("nb201", "latency_ms", [ARCHS[0], ARCHS[0]], ["d"], [[1], [2]])
    with pytest.raises(ArchitectureError, match="architecture 2"):
        MetricTable("nb201", "latency_ms", [ARCHS[0], "|bad~0|"], ["d"], [[1], [2]])
    with pytest.raises(InputError, match="unknown metric"):
        MetricTable("nb201", "speed", ARCHS, ["d"], [[1], [2], [3]])


def test_accuracy_range_is_checked():
    with pytest.raises(InputError, match="outside"):
        MetricTable("nb201", "accuracy", ARCHS, ["c10"], [[90], [101], [50]])


def _write(tmp_path, text):
    p = tmp_path / "t.csv"
    p.write_text(text)
    return p


def test_flat_csv_reads_devices_and_missing_cells(tmp_path):
    p = _write(tmp_path, f"nb201_index,arch_str,phone,gpu\n0,{ARCHS[0]},3.0,\n1,{ARCHS[1]},-1,2.5\n")
    t = read_table_csv(p, "nb201")
    assert t.devices == ("phone", "gpu")
    assert t.available.tolist() == [[True, False], [False, True]]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "file is empty"),
        ("arch,phone\n", "has a header but no rows"),
        ("name,phone\nx,1\n", "no architecture column"),
        (f"arch\n{ARCHS[0]}\n", "no device columns"),
        (f"arch,phone\n{ARCHS[0]},fast\n", "line 2: column 'phone': 'fast' is not a number"),
        (f"arch,phone\n{ARCHS[0]},1\n{ARCHS[1]},-3\n", "line 3: column 'phone': latency_ms is negative"),
        (f"arch,phone\n{ARCHS[0]},nan\n", "line 2: column 'phone': latency_ms is nan"),
        ("arch,phone\n|x~0|,1\n", "line 2: nb201 architecture"),
    ],
)
def test_flat_csv_errors_name_file_and_line(tmp_path, text, fragment):
    with pytest.raises(InputError) as info:
        read_table_csv(_write(tmp_path, text), "nb201")
    assert fragment in str(info.value)
    assert "t.csv" in str(info.value)
