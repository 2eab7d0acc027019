"""NNI model spaces and sample <-> architecture translation (ours and NNI's hub NAS-Bench-201)."""

from __future__ import annotations

import pytest

pytest.importorskip("nni", reason="NNI is an optional extra: pip install -c constraints.txt -e '.[nni]'")

from edgeopt_plugins.exceptions import ArchitectureError, InputError  # noqa: E402
from edgeopt_plugins.spaces import get_space  # noqa: E402
from edgeopt_plugins.strategies import (  # noqa: E402
    NB201_HUB_LABELS,
    NNILabels,
    arch_to_sample,
    nni_space,
    resolve_labels,
    sample_to_arch,
)
from edgeopt_plugins.strategies._space import check_choices  # noqa: E402

NB201 = get_space("nb201")
ARCH = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|none~1|avg_pool_3x3~2|"
HUB_SAMPLE = {
    "cell/0_1": "conv_3x3",
    "cell/0_2": "none",
    "cell/1_2": "skip_connect",
    "cell/0_3": "conv_1x1",
    "cell/1_3": "none",
    "cell/2_3": "avg_pool_3x3",
}


@pytest.fixture(scope="module")
def hub_space():
    from nni.nas.hub.pytorch import NasBench201

    return NasBench201(stem_out_channels=4, num_modules_per_stack=1)  # labels do not depend on the size


@pytest.mark.parametrize("name", ["nb201", "fbnet", "ofa_quant", "mnasnet"])
def test_torch_free_space_has_our_decisions_and_round_trips(name):
    space = get_space(name)
    ms = nni_space(space)
    mutables = ms.simplify()
    assert list(mutables) == list(space.names)
    assert [tuple(m.values) for m in mutables.values()] == [d.choices for d in space.decisions]
    for arch in space.sample(5, seed=0):
        sample = arch_to_sample(space, arch)
        assert ms.contains(sample) and ms.freeze(sample) == sample
        assert sample_to_arch(space, sample) == arch


def test_hub_nb201_labels_and_values_both_ways(hub_space):
    assert arch_to_sample(NB201, ARCH, labels=NB201_HUB_LABELS) == HUB_SAMPLE
    assert sample_to_arch(NB201, HUB_SAMPLE) == ARCH  # layout recognised from the labels
    assert sample_to_arch(NB201, HUB_SAMPLE, labels=NB201_HUB_LABELS) == ARCH
    mutables = hub_space.simplify()
    assert resolve_labels(NB201, None, mutables) is NB201_HUB_LABELS
    check_choices(NB201, NB201_HUB_LABELS, mutables)
    for arch in NB201.sample(20, seed=1):
        sample = arch_to_sample(NB201, arch, labels=NB201_HUB_LABELS)
        assert hub_space.contains(sample)
        assert sample_to_arch(NB201, sample) == arch


def test_custom_layout():
    labels = NNILabels({n: f"my/{n}" for n in NB201.names}, {"none": "zero"})
    sample = arch_to_sample(NB201, ARCH, labels=labels)
    assert sample["my/edge_2_0"] == "zero" and sample["my/edge_1_0"] == "nor_conv_3x3"
    assert sample_to_arch(NB201, sample, labels=labels) == ARCH
    plain = {n: f"L{i}" for i, n in enumerate(NB201.names)}  # a bare mapping renames labels only
    assert sample_to_arch(NB201, arch_to_sample(NB201, ARCH, labels=plain), labels=plain) == ARCH


def test_bad_samples_and_layouts_are_rejected(hub_space):
    with pytest.raises(ArchitectureError, match="unknown label"):
        sample_to_arch(NB201, {**arch_to_sample(NB201, ARCH), "extra": 1}, labels=NNILabels.identity(NB201))
    with pytest.raises(ArchitectureError, match="missing"):
        sample_to_arch(NB201, {k: v for k, v in HUB_SAMPLE.items() if k != "cell/2_3"}, labels=NB201_HUB_LABELS)
    with pytest.raises(ArchitectureError, match="spelled 'conv_3x3'"):
        sample_to_arch(NB201, {**HUB_SAMPLE, "cell/0_1": "nor_conv_3x3"}, labels=NB201_HUB_LABELS)
    with pytest.raises(ArchitectureError, match="not one of"):
        sample_to_arch(NB201, {**HUB_SAMPLE, "cell/0_1": "conv_5x5"}, labels=NB201_HUB_LABELS)
    with pytest.raises(InputError, match="cannot tell"):
        sample_to_arch(NB201, {"a": 1})
    with pytest.raises(InputError, match="every decision"):
        arch_to_sample(NB201, ARCH, labels={"edge_1_0": "x"})
    with pytest.raises(InputError, match="share"):
        NNILabels({"edge_1_0": "x", "edge_2_0": "x"})
    mutables = dict(nni_space(NB201).simplify())
    mutables["edge_1_0"] = hub_space.simplify()["cell/0_1"]  # NNI's op names under our label
    with pytest.raises(InputError, match="offers"):
        check_choices(NB201, NNILabels.identity(NB201), mutables)
    mutables["edge_1_0"] = 3
    with pytest.raises(InputError, match="not a Categorical"):
        check_choices(NB201, NNILabels.identity(NB201), mutables)
