"""Choosing architectures to measure: the FLOPs-stratified spread and architecture list files."""

from __future__ import annotations

import numpy as np
import pytest

from edgeopt_plugins.devices import read_arch_list, spread_archs
from edgeopt_plugins.exceptions import ArchitectureError, InputError
from edgeopt_plugins.spaces import get_space

NB201 = get_space("nb201")


def test_spread_is_seeded_and_covers_the_cost_range():
    a = spread_archs("nb201", 20, seed=3)
    assert a == spread_archs("nb201", 20, seed=3) and a != spread_archs("nb201", 20, seed=4)
    assert len(set(a)) == 20
    flops = NB201.flops(a)
    assert np.all(np.diff(flops) >= 0)
    everything = NB201.flops(NB201.sample_indices(5000, seed=0, unique=False))
    # the cheapest and the most expensive 5% of the space are both represented
    assert flops[0] <= np.percentile(everything, 5) and flops[-1] >= np.percentile(everything, 95)


@pytest.mark.parametrize("space", ["ofa", "fbnet", "ofa_quant"])
def test_spread_in_large_spaces(space):
    archs = spread_archs(space, 5, seed=0, pool=500)
    assert len(archs) == 5 and all(get_space(space).contains(a) for a in archs)


@pytest.mark.parametrize("n", [0, -1, 2.5, True])
def test_spread_rejects_bad_counts(n):
    with pytest.raises(InputError, match="positive integer"):
        spread_archs("nb201", n)
    with pytest.raises(InputError, match="cannot choose"):
        spread_archs("nb201", 20_000)


def test_read_one_per_line_and_csv(tmp_path):
    archs = NB201.sample(3, seed=1)
    lines = tmp_path / "archs.txt"
    lines.write_text("# my picks\n" + "\n\n".join(archs) + "\n")
    assert read_arch_list(lines, "nb201") == archs
    table = tmp_path / "archs.csv"
    table.write_text("idx,arch,latency_ms\n" + "".join(f"{i},{a},1.0\n" for i, a in enumerate(archs)))
    assert read_arch_list(table, "nb201") == archs
    ofa = get_space("ofa").sample(2, seed=0)  # JSON with commas: one per line
    (tmp_path / "ofa.txt").write_text("\n".join(ofa))
    assert read_arch_list(tmp_path / "ofa.txt", "ofa") == ofa


@pytest.mark.parametrize(
    ("text", "fragment", "error"),
    [
        ("", "lists no architectures", InputError),
        ("# nothing\n", "lists no architectures", InputError),
        ("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|\n|conv~0|\n", "line 2: nb201 architecture",
         ArchitectureError),
        ("arch\n|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|\n\n|x|\n", "line 4:", ArchitectureError),
        ("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|\n"
         "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|\n", "line 2: ", InputError),
    ],
)
def test_read_rejects_bad_files_with_line_numbers(tmp_path, text, fragment, error):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(error, match=fragment.replace("|", r"\|")) as info:
        read_arch_list(path, "nb201")
    assert "bad.txt" in str(info.value) and "\n" not in str(info.value)


def test_read_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_arch_list(tmp_path / "nope.txt", "nb201")
