"""Spaces of your own: from Optuna distributions, spec files, module:attr, NNI; features from built models."""

from __future__ import annotations

import json
import warnings

import numpy as np
import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from torch import nn

from edgeopt_plugins.exceptions import ArchitectureError, EdgeOptWarning, InputError
from edgeopt_plugins.spaces import (
    LAYER_FEATURES,
    CustomSpace,
    Decision,
    from_nni,
    from_optuna,
    get_space,
    layer_statistics,
    read_space_spec,
    resolve_space,
    saved_space,
    space_from_spec,
    space_record,
)
from tests.spaces import _toy_space
from tests.spaces._toy_space import SPACE as TOY

optuna.logging.set_verbosity(optuna.logging.ERROR)


def _dists():
    return {"k": CategoricalDistribution([3, 5, 7]), "d": IntDistribution(2, 6, step=2),
            "w": FloatDistribution(0.1, 0.5, step=0.1), "act": CategoricalDistribution(["relu", None, True])}


def test_from_optuna_makes_finite_decisions_with_canonical_strings():
    space = from_optuna(_dists(), name="t_canonical")
    assert space.names == ("k", "d", "w", "act")
    assert space.decisions[1].choices == (2, 4, 6)
    assert space.decisions[2].choices == (0.1, 0.2, 0.3, 0.4, 0.5)
    assert space.size == 3 * 3 * 5 * 3
    arch = space.format({"k": 5, "d": 4, "w": 0.1 + 0.2, "act": None})  # 0.30000000000000004 is the choice 0.3
    assert arch == '{"k": 5, "d": 4, "w": 0.3, "act": null}'
    assert space.parse(arch) == {"k": 5, "d": 4, "w": 0.3, "act": None}
    assert space.format(space.parse(arch)) == arch and space.contains(arch)
    assert len(set(space.enumerate())) == space.size
    for bad, fragment in [('{"k": 4, "d": 4, "w": 0.3, "act": null}', "k = 4 is not one of"),
                          ('{"k": 5, "d": 4, "w": 0.35, "act": null}', "w = 0.35"),
                          ('{"k": 5, "d": 4}', "missing key"),
                          ('{"k": 5, "d": 4, "w": 0.3, "act": null, "x": 1}', "unknown key"),
                          ("[5, 4]", "JSON object"), ("{oops", "malformed JSON")]:
        with pytest.raises(ArchitectureError, match=fragment):
            space.parse(bad)


def test_distributions_and_suggest_are_the_users_own():
    space = from_optuna(_dists(), name="t_suggest")
    dists = space.distributions()
    assert isinstance(dists["d"], IntDistribution) and dists["d"].step == 2
    assert isinstance(dists["w"], FloatDistribution) and dists["w"].step == pytest.approx(0.1)
    seen = []

    def objective(trial):
        arch = space.suggest(trial)
        # an objective written against the user's own distributions still works alongside
        trial.suggest_int("d", 2, 6, step=2)
        seen.append(arch)
        return len(arch)

    for sampler in (optuna.samplers.RandomSampler(seed=0), optuna.samplers.TPESampler(seed=0, n_startup_trials=3)):
        study = optuna.create_study(sampler=sampler)
        study.optimize(objective, n_trials=6)
        assert all(space.contains(a) for a in seen)
        assert space.params_to_arch(study.best_params) in seen
    params = space.arch_to_params(seen[0])
    assert all(dists[k]._contains(dists[k].to_internal_repr(v)) for k, v in params.items())


@pytest.mark.parametrize(
    ("dists", "kwargs", "fragment"),
    [
        ({}, {}, "has no decisions"),
        ({"k": CategoricalDistribution([3])}, {}, "only one choice"),
        ({"w": FloatDistribution(0.1, 0.5)}, {}, "without a step is continuous"),
        ({"w": FloatDistribution(0.1, 0.5, log=True)}, {}, "log-scaled float"),
        ({"k": CategoricalDistribution([3, 3])}, {}, "lists a choice twice"),
        ({"k": CategoricalDistribution([3, 5]), "o": "not a distribution"}, {}, "expected a Categorical"),
        ({"k": CategoricalDistribution([3, 5])}, {"build": _toy_space.build}, "needs input_shape"),
        ({"k": CategoricalDistribution([3, 5])}, {"build": lambda p: 1 / 0, "input_shape": (3, 8, 8)},
         "build raised ZeroDivisionError"),
        ({"k": CategoricalDistribution([3, 5])}, {"build": lambda p: 42, "input_shape": (3, 8, 8)},
         "build returned int for .*, not a torch.nn.Module"),
        ({"k": CategoricalDistribution([3, 5])}, {"build": lambda p: nn.Linear(3, 2), "input_shape": (3, 8, 8)},
         "failed on an input of shape"),
        ({"k": CategoricalDistribution([3, 5])}, {"input_shape": (3, -8)}, "input_shape must be"),
    ],
)
def test_bad_specs_are_one_clear_line(dists, kwargs, fragment):
    with pytest.raises(InputError, match=fragment) as info:
        from_optuna(dists, name="t_bad", **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("name", "fragment"), [("nb201", "built-in"), ("has space", "letters, digits")])
def test_bad_names(name, fragment):
    with pytest.raises(InputError, match=fragment):
        from_optuna({"k": CategoricalDistribution([3, 5])}, name=name)


def test_a_space_too_large_to_enumerate_samples_instead():
    space = from_optuna({f"k{i}": CategoricalDistribution([3, 5, 7]) for i in range(40)}, name="t_large")
    with pytest.raises(InputError, match="too many to enumerate"):
        space.enumerate()
    archs = space.sample(5, seed=1)
    assert len(set(archs)) == 5 and archs == space.sample(5, seed=1)


def test_features_come_from_the_built_model_and_are_cached():
    archs = TOY.enumerate()[:6]
    assert TOY.feature_names == LAYER_FEATURES and TOY.costly_features
    before = _toy_space.BUILDS["count"]
    feats = TOY.features(archs)
    built = _toy_space.BUILDS["count"] - before
    assert feats.shape == (6, len(LAYER_FEATURES)) and feats.dtype == np.float64 and (feats >= 0).all()
    assert TOY.features(archs[::-1])[0].tolist() == feats[-1].tolist()
    assert _toy_space.BUILDS["count"] - before == built <= 6  # the second call built nothing
    row = dict(zip(LAYER_FEATURES, feats[0]))
    assert row["mflops"] == pytest.approx(row["mflops_conv"] + row["mflops_pointwise"] + row["mflops_depthwise"]
                                          + row["mflops_linear"] + row["mflops_other"])
    model = TOY.build_model(archs[0])
    assert row["mparams"] == pytest.approx(sum(p.numel() for p in model.parameters()) / 1e6)
    assert TOY.costs(archs).shape == (6, 2) and (TOY.flops(archs) == feats[:, 0]).all()
    assert TOY.encode(archs).shape == (6, TOY.one_hot_width + len(LAYER_FEATURES))
    deeper = TOY.format({**TOY.parse(archs[0]), "depth": 3})
    assert TOY.flops([deeper])[0] > TOY.flops([archs[0]])[0]


def test_layer_statistics_sort_pytorchs_own_counts_by_layer_kind():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Conv2d(8, 4, 1),
                        nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16, 10))
    stats = dict(zip(LAYER_FEATURES, layer_statistics(net, torch.zeros(1, 3, 4, 4))))
    assert stats["mflops_conv"] * 1e6 == pytest.approx(2 * 3 * 9 * 8 * 16)
    assert stats["mflops_depthwise"] * 1e6 == pytest.approx(2 * 9 * 8 * 16)
    assert stats["mflops_pointwise"] * 1e6 == pytest.approx(2 * 8 * 4 * 16)
    assert stats["mflops_linear"] * 1e6 == pytest.approx(2 * 64 * 10)
    assert stats["weighted_layers"] == 5 and stats["leaf_modules"] == 7
    assert stats["elementwise_mb"] == pytest.approx((64 + 64 + 64) * 4 / 1e6)  # BN, ReLU, Flatten outputs


def test_a_space_without_build_has_no_features():
    space = CustomSpace("t_nobuild", [Decision("k", (3, 5)), Decision("d", (1, 2))])
    assert space.feature_names == () and space.features(space.enumerate()).shape == (4, 0)
    assert space.encode(space.enumerate()).shape == (4, 4)
    with pytest.raises(InputError, match="has no FLOPs"):
        space.flops(space.enumerate())


def test_feature_cache_file_survives_a_new_process(tmp_path):
    path = tmp_path / "features.npz"
    archs = TOY.enumerate()[10:14]
    assert TOY.cache_features(path) == 0
    expected = TOY.features(archs)
    fresh = from_optuna(_toy_space.DISTRIBUTIONS, name="toy_convnet", build=_toy_space.build, input_shape=(3, 8, 8))
    assert fresh.cache_features(path) >= 4
    before = _toy_space.BUILDS["count"]
    assert np.array_equal(fresh.features(archs), expected) and _toy_space.BUILDS["count"] == before
    other = from_optuna({"k": CategoricalDistribution([3, 5])}, name="t_other", build=lambda p: nn.Flatten(),
                        input_shape=(2,))
    with pytest.warns(EdgeOptWarning, match="another space"):
        assert other.cache_features(path) == 0
    from edgeopt_plugins.spaces import register_space

    register_space(TOY)  # the module's space again for the other tests


def test_spec_files_and_the_resolver(tmp_path, monkeypatch):
    spec = {"name": "t_spec", "decisions": {"channels": [4, 8, 16], "kernel": {"choices": [1, 3, 5]},
                                            "depth": {"low": 1, "high": 3}, "width": {"low": 0.5, "high": 1.0,
                                                                                      "step": 0.25}},
            "build": "tests.spaces._toy_space:build", "input_shape": [3, 8, 8]}
    path = tmp_path / "space.json"
    path.write_text(json.dumps(spec))
    space = resolve_space(str(path))
    assert space.name == "t_spec" and space.size == TOY.size and space.ref == str(path.resolve())
    assert space.features(space.sample(1, seed=0)).shape == (1, len(LAYER_FEATURES))
    assert get_space("t_spec") is space  # registered by name in this process
    assert resolve_space("tests.spaces._toy_space:SPACE") is TOY and TOY.ref
    assert resolve_space("tests.spaces._toy_space:make_space") is TOY
    assert space_from_spec({"name": "t_mini", "decisions": {"a": [0, 1], "b": {"low": 1, "high": 4, "step": 3}}}
                           ).size == 4
    for text, fragment in [("no_such_module_xyz:SPACE", "cannot import 'no_such_module_xyz'"),
                           ("tests.spaces._toy_space:NOPE", "has no attribute 'NOPE'"),
                           ("tests.spaces._toy_space:DISTRIBUTIONS", "is a dict, not a SearchSpace"),
                           ("not a name:x", "expected 'package.module:attribute'"),
                           ("nb999", "unknown search space 'nb999'")]:
        with pytest.raises(InputError, match=fragment):
            resolve_space(text)
    for content, fragment in [("{oops", "not valid JSON"), ('{"name": "x"}', "needs 'name' and 'decisions'"),
                              ('{"name": "x", "decisions": {"a": [1, 2]}, "colour": 1}', "unknown key"),
                              ('{"name": "x", "decisions": {"a": {"low": 0.1, "high": 1}}}', "without a step"),
                              ('{"name": "x", "decisions": {"a": [1, 2]}, "build": "os:nope"}', "no attribute"),
                              ('[1, 2]', "JSON object")]:
        bad = tmp_path / "bad.json"
        bad.write_text(content)
        with pytest.raises(InputError, match=fragment):
            read_space_spec(bad)


def test_from_nni_reads_labels_and_freezes_the_model():
    import nni
    from nni.mutable import MutableDict, Numerical

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NNI's note on this PyTorch version
        from nni.nas.nn.pytorch import LayerChoice, ModelSpace, MutableConv2d, MutableLinear

    plain = from_nni(MutableDict({"k": nni.choice("k", [3, 5]), "act": nni.choice("act", ["relu", "gelu"])}),
                     name="t_nni_dict")
    assert plain.names == ("k", "act") and plain.feature_names == ()

    class Net(ModelSpace):
        def __init__(self):
            super().__init__()
            width = nni.choice("width", [4, 8])
            self.conv = MutableConv2d(3, width, 3, padding=1)
            self.act = LayerChoice([nn.ReLU(), nn.Hardswish()], label="act")
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = MutableLinear(width, 10)

        def forward(self, x):
            return self.fc(self.pool(self.act(self.conv(x))).flatten(1))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NNI's note on this PyTorch version
        space = from_nni(Net(), input_shape=(3, 8, 8))
    assert space.name == "net" and space.names == ("width", "act") and space.size == 4
    feats = dict(zip(space.feature_names, space.features([{"width": 8, "act": 0}])[0]))
    assert feats["mflops_conv"] * 1e6 == pytest.approx(2 * 3 * 9 * 8 * 64)
    with pytest.raises(InputError, match="only categorical choices"):
        from_nni(MutableDict({"lr": Numerical(0.0, 1.0, label="lr")}), name="t_nni_bad")


def test_saved_records_bring_the_space_back_or_say_how():
    record = json.loads(json.dumps(space_record(TOY)))
    assert saved_space(record, None, "m") is TOY  # known in this process
    assert saved_space(record, TOY, "m") is TOY
    other = from_optuna({"k": CategoricalDistribution([3, 5])}, name="t_record")
    with pytest.raises(InputError, match="saved for space 'toy_convnet', not 't_record'"):
        saved_space(record, other, "m")
    gone = {**record, "space": "t_gone", "space_spec": {**record["space_spec"], "name": "t_gone"}}
    with pytest.raises(InputError, match=r"give the space \(--space tests.spaces._toy_space:SPACE"):
        saved_space(gone, None, "m")
    no_build = space_record(CustomSpace("t_gone2", [Decision("k", (3, 5))]))
    no_build["space"] = no_build["space_spec"]["name"] = "t_gone3"
    assert saved_space(json.loads(json.dumps(no_build)), None, "m").names == ("k",)
    changed = from_optuna({"k": CategoricalDistribution([3, 5, 7])}, name="t_record")
    with pytest.raises(InputError, match="decisions of space 't_record' changed"):
        saved_space(space_record(other), changed, "m")
