"""Search spaces: parse/format round trips, validation messages, sampling, encodings, Optuna glue."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeopt_plugins.exceptions import ArchitectureError, InputError
from edgeopt_plugins.spaces import available_spaces, get_space

ALL = available_spaces()
NB = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|none~1|avg_pool_3x3~2|"


@pytest.mark.parametrize("name", ALL)
def test_sample_is_seeded_unique_and_round_trips(name):
    space = get_space(name)
    a = space.sample(50, seed=3)
    assert a == space.sample(50, seed=3)
    assert a != space.sample(50, seed=4)
    assert len(set(a)) == 50
    for arch in a:
        assert space.format(space.parse(arch)) == arch
        assert space.format(space.parse(arch)) == space.canonical(arch)


@pytest.mark.parametrize("name", ALL)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_choice_combination_round_trips(name, data):
    space = get_space(name)
    params = {d.name: data.draw(st.sampled_from(d.choices)) for d in space.decisions}
    text = space.format(params)
    assert space.parse(text) == params
    idx = space.to_indices([text])
    assert space.from_indices(idx) == [text]


@pytest.mark.parametrize("name", ALL)
@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=60))
def test_random_text_is_either_valid_or_a_clear_architecture_error(name, text):
    space = get_space(name)
    try:
        canonical = space.format(text)
    except ArchitectureError as err:
        assert str(err).startswith(f"{name} architecture")
        assert "\n" not in str(err)
    else:
        assert space.contains(canonical)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv_5x5'"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 must have 2 incoming edge(s), found 1"),
        ("|none~0|+|none~0|none~1|", "expected 3 node groups"),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "expected the NB201 form"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "names source node 1"),
        ("|none|+|none~0|none~1|+|none~0|none~1|none~2|", "malformed token 'none'"),
    ],
)
def test_nb201_errors_name_the_bad_part(text, fragment):
    with pytest.raises(ArchitectureError, match=None) as info:
        get_space("nb201").parse(text)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("fbnet", "[0, 1, 2]", "must have 22 values, found 3"),
        ("fbnet", "[" + ", ".join(["9"] * 22) + "]", "layer_0 = 9 is not one of"),
        ("fbnet", "[0, 1", "malformed JSON"),
        ("fbnet", '{"layer": [0]}', "must be a list of 22 values"),
        ("ofa", '{"ks": [3], "e": [3], "d": [2], "r": 128}', "'ks' must have 20 values, found 1"),
        ("ofa", json.dumps({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5}), "missing key(s) 'r'"),
        ("ofa", json.dumps({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 130}), "r = 130 is not one of"),
        ("ofa", json.dumps({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 128, "wbits": [8] * 5}),
         "unknown key(s) 'wbits'"),
        ("ofa_quant", json.dumps({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 128, "wbits": [2] * 5}),
         "wbits_0 = 2 is not one of"),
        ("mnasnet", json.dumps({"e": [1] * 7, "k": [3] * 7, "l": [1] * 7, "se": [1] * 7}), "'se'[0] must be bool"),
        ("mnasnet", json.dumps({"e": [1] * 7, "k": [3] * 7, "l": [4] * 7, "se": [True] * 7}), "l_0 = 4 is not one of"),
    ],
)
def test_json_space_errors_name_the_bad_part(name, text, fragment):
    with pytest.raises(ArchitectureError) as info:
        get_space(name).parse(text)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unknown_space_is_an_input_error():
    with pytest.raises(InputError, match="unknown search space 'nb202'"):
        get_space("nb202")


def test_params_dicts_are_validated():
    space = get_space("nb201")
    params = space.parse(NB)
    with pytest.raises(ArchitectureError, match="decision 'edge_1_0' is missing"):
        space.format({k: v for k, v in params.items() if k != "edge_1_0"})
    with pytest.raises(ArchitectureError, match="unknown decision"):
        space.format({**params, "edge_9_9": "none"})
    assert space.format(params) == NB


def test_grouped_json_dict_is_accepted():
    space = get_space("ofa")
    grouped = {"ks": [3] * 20, "e": [4] * 20, "d": [2] * 5, "r": 160}
    assert json.loads(space.format(grouped)) == grouped


def test_enumerate_refuses_huge_spaces():
    with pytest.raises(InputError, match="too many to enumerate"):
        get_space("fbnet").enumerate()


def test_one_hot_has_one_active_choice_per_decision():
    space = get_space("mnasnet")
    enc = space.one_hot(space.sample(10, seed=0))
    assert enc.shape == (10, space.one_hot_width)
    assert (enc.sum(axis=1) == len(space.decisions)).all()


@pytest.mark.parametrize("name", ALL)
def test_encode_has_fixed_width_and_costs_are_positive(name):
    space = get_space(name)
    archs = space.sample(7, seed=1)
    both = space.encode(archs)
    assert both.shape == (7, space.one_hot_width + len(space.cost_names))
    assert space.encode(archs, "onehot").shape[1] == space.one_hot_width
    assert (space.flops(archs) > 0).all()
    with pytest.raises(InputError, match="kind must be"):
        space.encode(archs, "bogus")


def test_nb201_flops_follow_the_operations():
    space = get_space("nb201")
    none = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    conv1 = "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    conv3 = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    f = space.flops([none, conv1, conv3])
    assert f[0] == 0 < f[1] < f[2]
    assert f[2] == pytest.approx(9 * f[1], rel=0.1)


def test_ofa_inactive_blocks_do_not_count():
    space = get_space("ofa")
    base = {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 160}
    changed_inactive = {**base, "ks": [3, 3, 7, 7] * 5}
    changed_active = {**base, "ks": [7, 7, 3, 3] * 5}
    f = space.flops([base, changed_inactive, changed_active])
    assert f[0] == f[1] < f[2]
    assert space.flops([{**base, "r": 224}])[0] > f[0]


def test_quantized_weights_shrink_the_model():
    space = get_space("ofa_quant")
    arch = {"ks": [5] * 20, "e": [4] * 20, "d": [3] * 5, "r": 192}
    full = space.costs([{**arch, "wbits": [32] * 5}])[0]
    low = space.costs([{**arch, "wbits": [4] * 5}])[0]
    assert full[0] == low[0]  # same FLOPs
    assert full[2] - low[2] > 0.3 * full[2]  # stage weights take 8x fewer bytes (head stays fp32)


def test_suggest_and_distributions_agree_on_names():
    space = get_space("nb201")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = []
    study.optimize(lambda t: seen.append(space.suggest(t)) or 0.0, n_trials=5)
    dists = space.distributions()
    for trial, arch in zip(study.trials, seen):
        assert set(trial.params) == set(dists)
        assert space.params_to_arch(trial.params) == arch


def test_suggest_with_user_names():
    space = get_space("nb201")
    names = {d.name: f"cell/{d.name}" for d in space.decisions}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(lambda t: len(space.suggest(t, names=names)), n_trials=2)
    assert all(k.startswith("cell/") for k in study.trials[0].params)
    assert space.params_to_arch(study.trials[0].params, names) is not None
    assert space.arch_to_params(NB, names)["cell/edge_1_0"] == "nor_conv_3x3"
    with pytest.raises(InputError, match="unknown decision"):
        space.distributions({"nope": "x"})


def test_index_matrix_is_checked():
    space = get_space("nb201")
    with pytest.raises(InputError, match="out-of-range"):
        space.to_indices(np.array([[0, 0, 0, 0, 0, 7]]))
    with pytest.raises(InputError, match="shape"):
        space.to_indices(np.array([[0, 0]]))


def test_sample_rejects_impossible_requests():
    space = get_space("nb201")
    with pytest.raises(InputError, match="cannot draw"):
        space.sample(15626, seed=0)
    with pytest.raises(InputError, match="non-negative integer"):
        space.sample(-1)
