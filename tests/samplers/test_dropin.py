"""GuidedSampler as a true drop-in: names and values of the study's own, enqueued and fixed parameters,
warnings, pickling, numpy scalars, and processes sharing one storage."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution

from edgeopt_plugins.exceptions import EdgeOptWarning, InputError
from edgeopt_plugins.samplers import GuidedSampler
from edgeopt_plugins.samplers._guided import ATTR_ARCH, ATTR_SOURCE
from tests.samplers._guides import SPACE, FormulaGuide, true_accuracy, true_latency

optuna.logging.set_verbosity(optuna.logging.WARNING)
BUDGET = float(np.percentile(true_latency(SPACE.sample(2000, seed=1)), 40))
OPS = list(SPACE.decisions[0].choices)
ROOT = Path(__file__).resolve().parents[2]


def _report(trial, arch):
    latency = float(true_latency([arch])[0])
    trial.set_user_attr("latency_ms", latency)
    return float(true_accuracy([arch])[0]) if latency <= BUDGET else -latency / BUDGET


def _study(sampler, **kwargs):
    return optuna.create_study(direction="maximize", sampler=sampler, **kwargs)


def _renamed_objective(names, values=None):
    """An objective that names the decisions ``names[i]`` and offers the ops as ``values``: the same ones in
    another order, or other spellings of them (``values[i]`` for ``OPS[i]``)."""
    spelt = values or OPS
    meaning = {v: v for v in OPS} if set(spelt) == set(OPS) else dict(zip(spelt, OPS))

    def objective(trial):
        picked = [trial.suggest_categorical(name, spelt) for name in names]
        arch = SPACE.format({d.name: meaning[v] for d, v in zip(SPACE.decisions, picked)})
        trial.set_user_attr("arch", arch)
        return _report(trial, arch)

    return objective


def _attributed(study, guide):
    """Every trial's latency was learned under the design it actually evaluated."""
    truth = {t.user_attrs["arch"]: t.user_attrs["latency_ms"] for t in study.trials[:-1]}
    return guide.observed == pytest.approx(truth)


def test_parameter_names_are_detected_by_choice_sets_and_order():
    guide = FormulaGuide(BUDGET, bias=1.0)
    study = _study(GuidedSampler(guide, seed=0))
    names = [f"cell/e{i}" for i in range(6)]
    study.optimize(_renamed_objective(names), n_trials=8)
    assert _attributed(study, guide) and len(guide.observed) == 7
    assert all(t.system_attrs[ATTR_ARCH] == t.user_attrs["arch"] for t in study.trials)  # guided from trial 0
    feasible = [a for a in SPACE.from_indices(SPACE.all_indices()) if true_latency([a])[0] <= BUDGET]
    assert study.best_value == pytest.approx(true_accuracy(feasible).max())  # the named accuracy guided it


def test_choices_in_another_order_are_mapped_by_value():
    guide = FormulaGuide(BUDGET, bias=1.0)
    study = _study(GuidedSampler(guide, seed=1))
    study.optimize(_renamed_objective(list(SPACE.names), values=OPS[::-1]), n_trials=6)  # no "dynamic value space"
    assert _attributed(study, guide)
    assert all(t.system_attrs[ATTR_ARCH] == t.user_attrs["arch"] for t in study.trials)


def test_choices_spelt_otherwise_are_mapped_given_or_by_position():
    spelt = ["zero", "skip", "conv1", "conv3", "pool"]
    guide = FormulaGuide(BUDGET, bias=1.0)
    sampler = GuidedSampler(guide, seed=2, param_names={d.name: f"x{i}" for i, d in enumerate(SPACE.decisions)},
                            choice_values=dict(zip(OPS, spelt)))
    study = _study(sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        study.optimize(_renamed_objective([f"x{i}" for i in range(6)], values=spelt), n_trials=5)
    assert _attributed(study, guide)

    guide = FormulaGuide(BUDGET, bias=1.0)
    sampler = GuidedSampler(guide, seed=2, param_names={d.name: f"x{i}" for i, d in enumerate(SPACE.decisions)})
    with pytest.warns(EdgeOptWarning, match="mapping them by position"):
        _study(sampler).optimize(_renamed_objective([f"x{i}" for i in range(6)], values=spelt), n_trials=3)


def test_unmatched_parameters_stop_the_study_with_the_mapping_to_pass():
    spelt = ["zero", "skip", "conv1", "conv3", "pool"]
    study = _study(GuidedSampler(FormulaGuide(BUDGET), seed=3))
    with pytest.raises(InputError, match=r"pass param_names=\{'edge_1_0': '<your parameter>'") as err:
        study.optimize(_renamed_objective([f"x{i}" for i in range(6)], values=spelt), n_trials=5)
    assert "\n" not in str(err.value) and len(study.trials) == 1  # one line, on the first trial


def test_one_warning_when_no_latency_is_read():
    study = _study(GuidedSampler(FormulaGuide(BUDGET), seed=4))

    def elsewhere(trial):  # latency under another key
        arch = SPACE.suggest(trial)
        trial.set_user_attr("lat", float(true_latency([arch])[0]))
        return float(true_accuracy([arch])[0])

    with pytest.warns(EdgeOptWarning, match=r"none reported a latency.*\['lat'\]") as caught:
        study.optimize(elsewhere, n_trials=6)
    assert sum("none reported a latency" in str(w.message) for w in caught) == 1


def test_enqueued_and_partially_fixed_trials_are_attributed_to_their_actual_design():
    guide = FormulaGuide(BUDGET, bias=1.0)
    study = _study(GuidedSampler(guide, seed=5))
    full = SPACE.sample(1, seed=11)[0]
    study.enqueue_trial(SPACE.parse(full))
    study.enqueue_trial({"edge_1_0": "nor_conv_3x3", "edge_3_2": "skip_connect"})  # partial
    study.optimize(_renamed_objective(list(SPACE.names)), n_trials=4)
    first, second = study.trials[0], study.trials[1]
    assert first.user_attrs["arch"] == full
    parsed = SPACE.parse(second.user_attrs["arch"])
    assert parsed["edge_1_0"] == "nor_conv_3x3" and parsed["edge_3_2"] == "skip_connect"
    assert second.system_attrs[ATTR_ARCH] == second.user_attrs["arch"]  # the guided part respected the fix
    assert _attributed(study, guide)


def test_partial_fixed_sampler_keeps_guiding_the_free_decisions():
    guide = FormulaGuide(BUDGET, bias=1.0)
    fixed = {"edge_2_0": "nor_conv_1x1"}
    sampler = optuna.samplers.PartialFixedSampler(fixed, GuidedSampler(guide, seed=6))
    study = _study(sampler)
    study.optimize(_renamed_objective(list(SPACE.names)), n_trials=8)
    assert all(SPACE.parse(t.user_attrs["arch"])["edge_2_0"] == "nor_conv_1x1" for t in study.trials)
    assert _attributed(study, guide)
    later = study.trials[2:]
    assert all(t.system_attrs[ATTR_SOURCE] in ("guided", "base", "repaired", "audit") for t in later)
    assert all(t.system_attrs[ATTR_ARCH] == t.user_attrs["arch"] for t in later)  # proposals honour the fix


def test_numpy_scalars_in_earlier_trials_are_read():
    guide = FormulaGuide(BUDGET, bias=1.0)
    study = _study(GuidedSampler(guide, seed=7))
    arch = SPACE.sample(1, seed=3)[0]
    dists = {d.name: CategoricalDistribution(list(d.choices)) for d in SPACE.decisions}
    study.add_trial(optuna.trial.create_trial(
        params={k: np.str_(v) for k, v in SPACE.parse(arch).items()}, distributions=dists, value=80.0,
        user_attrs={"latency_ms": np.float64(true_latency([arch])[0])}))
    study.optimize(_renamed_objective(list(SPACE.names)), n_trials=3)
    assert arch in guide.observed and len(study.trials) == 4


def test_sampler_and_study_pickle_and_deepcopy():
    sampler = GuidedSampler(FormulaGuide(BUDGET, bias=1.0), seed=8)
    study = _study(sampler)
    study.optimize(_renamed_objective(list(SPACE.names)), n_trials=4)
    clone = copy.deepcopy(study)
    clone.optimize(_renamed_objective(list(SPACE.names)), n_trials=2)
    restored = pickle.loads(pickle.dumps(sampler))
    again = _study(restored)
    for t in study.trials:
        again.add_trial(t)
    again.optimize(_renamed_objective(list(SPACE.names)), n_trials=2)
    assert len(clone.trials) == len(again.trials) == 6 and len(study.trials) == 4
    assert len({t.user_attrs["arch"] for t in again.trials}) == 6


@pytest.mark.parametrize("storage_kind", ["sqlite", "journal"])
def test_threads_on_a_persistent_storage_measure_no_design_twice(tmp_path, storage_kind):
    if storage_kind == "sqlite":
        storage = f"sqlite:///{tmp_path / 'study.db'}"
    else:
        from optuna.storages.journal import JournalFileBackend

        storage = optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "journal.log")))
    study = _study(GuidedSampler(FormulaGuide(BUDGET, bias=1.0, accuracy=False), seed=9), storage=storage)
    study.optimize(_renamed_objective(list(SPACE.names)), n_trials=16, n_jobs=2)
    archs = [t.user_attrs["arch"] for t in study.trials]
    assert len(archs) == 16 and len(set(archs)) == 16


_WORKER = textwrap.dedent("""
    import sys
    import optuna
    from optuna.storages.journal import JournalFileBackend
    from edgeopt_plugins.samplers import GuidedSampler
    from tests.samplers._guides import FormulaGuide
    from tests.samplers.test_dropin import BUDGET, SPACE, _renamed_objective

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kind, where, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    storage = (f"sqlite:///{where}" if kind == "sqlite"
               else optuna.storages.JournalStorage(JournalFileBackend(where)))
    # a generous claim timeout: on a loaded CI machine the other process may take seconds to claim
    sampler = GuidedSampler(FormulaGuide(BUDGET, bias=1.0, accuracy=False), seed=seed, claim_timeout_s=60.0)
    study = optuna.load_study(study_name="shared", storage=storage, sampler=sampler)
    study.optimize(_renamed_objective(list(SPACE.names)), n_trials=10)
""")


@pytest.mark.slow
@pytest.mark.parametrize("storage_kind", ["sqlite", "journal"])
def test_two_processes_on_one_study_measure_no_design_twice(tmp_path, storage_kind):
    where = str(tmp_path / ("study.db" if storage_kind == "sqlite" else "journal.log"))
    if storage_kind == "sqlite":
        storage = f"sqlite:///{where}"
    else:
        from optuna.storages.journal import JournalFileBackend

        storage = optuna.storages.JournalStorage(JournalFileBackend(where))
    optuna.create_study(study_name="shared", storage=storage, direction="maximize")
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    workers = [subprocess.Popen([sys.executable, str(script), storage_kind, where, str(seed)], cwd=ROOT,
                                env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, stderr=subprocess.PIPE,
                                text=True) for seed in (0, 1)]
    errors = [w.communicate(timeout=300)[1] for w in workers]
    assert all(w.returncode == 0 for w in workers), errors
    study = optuna.load_study(study_name="shared", storage=storage)
    archs = [t.user_attrs["arch"] for t in study.trials]
    assert len(archs) == 20 and len(set(archs)) == 20
    warm = [t for t in study.trials if t.system_attrs[ATTR_SOURCE] == "warm_start"]
    assert len(warm) == 3  # the two processes shared one warm start


def test_integer_and_stepped_float_parameters_are_decisions_under_other_names():
    """A user space from Optuna's own distributions: int and stepped-float parameters are found by
    their value sets when the study names them otherwise, and translate both ways."""
    from optuna.distributions import FloatDistribution, IntDistribution

    from edgeopt_plugins.samplers._params import ParamMap
    from edgeopt_plugins.spaces import from_optuna

    space = from_optuna({"kernel": optuna.distributions.CategoricalDistribution([3, 5, 7]),
                         "depth": IntDistribution(2, 4), "ratio": FloatDistribution(0.1, 0.3, step=0.1)},
                        name="tiny_user_space")
    pm = ParamMap(space)
    assert pm.match("n_blocks", IntDistribution(2, 4)) == 1
    assert pm.match("expand", FloatDistribution(0.1, 0.3, step=0.1)) == 2
    assert pm.match("lr", FloatDistribution(1e-4, 1e-1, log=True)) is None  # continuous: no decision
    assert pm.match("k", optuna.distributions.CategoricalDistribution([3, 5, 7])) == 0 and pm.complete
    arch = space.format({"kernel": 5, "depth": 3, "ratio": 0.3})
    params = pm.params_of(arch)
    assert params == {"k": 5, "n_blocks": 3, "expand": pytest.approx(0.3)}
    assert pm.arch_of({"k": 5, "n_blocks": 3, "expand": 0.30000000000000004}) == arch
    assert isinstance(pm.distributions()["n_blocks"], IntDistribution)
