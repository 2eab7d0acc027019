"""Approach 1 and 2 on a space of your own, end to end: Optuna samplers, an NNI strategy, the CLI."""

from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import optuna
import pytest

from edgeopt_plugins.devices import DeviceProfile
from edgeopt_plugins.optimizer import ConditionedModel, FitConfig, fit_from_data
from edgeopt_plugins.predictors import ProxyAdapter, TrainingDevices, spearman
from edgeopt_plugins.samplers import DeviceConditionedSampler, ProxySampler
from edgeopt_plugins.samplers._guided import ATTR_ARCH
from tests.spaces._toy_space import SPACE as TOY
from tests.spaces._toy_space import device_table, stand_in_accuracy

REF = "tests.spaces._toy_space:SPACE"
TARGET = "dev5"
optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def problem():
    table = device_table(6, seed=3)
    proxies = table.select(devices=[d for d in table.devices if d != TARGET])
    profile = DeviceProfile.from_table(table, TARGET, k=6, seed=0)
    latency = dict(zip(table.archs, table.column(TARGET)))
    accuracy = dict(zip(TOY.enumerate(), stand_in_accuracy(TOY.enumerate())))
    budget = float(np.percentile(list(latency.values()), 40))
    optimum = max(a for arch, a in accuracy.items() if latency[arch] <= budget)
    return proxies, profile, latency, accuracy, budget, optimum


def _objective(latency, accuracy, budget, seen):
    def objective(trial):
        arch = TOY.suggest(trial)  # suggest_int / suggest_float / suggest_categorical: the user's own
        seen.append(arch)
        trial.set_user_attr("latency_ms", latency[arch])
        return accuracy[arch] if latency[arch] <= budget else accuracy[arch] - 100.0
    return objective


def test_proxy_adaptation_ranks_a_user_space(problem):
    proxies, profile, latency, *_ = problem
    adapted = ProxyAdapter(proxies).fit(profile)
    archs = list(latency)
    assert spearman(adapted.predict(archs), [latency[a] for a in archs]) > 0.9


def test_the_summary_kernel_reads_the_built_models_layer_statistics(problem):
    """Approach 1 and 2 share device-agnostic kernels; their summary block is what a user's build counts."""
    from edgeopt_plugins.predictors._kernels import ArchKernels
    from edgeopt_plugins.spaces import CustomSpace

    proxies, profile, latency, *_ = problem
    idx = TOY.to_indices(list(latency))
    kernels = ArchKernels(TOY, idx)
    assert kernels.blocks == ("summary", "additive", "pairwise")
    varying = int((np.log1p(TOY.features(idx)).std(axis=0) > 0).sum())
    assert kernels.summary(idx).shape == (len(idx), varying) and varying >= 10  # FLOPs, params per layer kind, ...
    # the summary block alone ranks the target from 10 of its measurements (kernel ridge, 5 draws)
    feats, y = kernels.features(idx), np.log(list(latency.values()))
    rhos = []
    for draw in range(5):
        rows = np.random.default_rng(draw).choice(len(idx), 10, replace=False)
        gram = kernels.cross(feats.take(rows), feats.take(rows))["summary"]
        weights = np.linalg.solve(gram + 0.01 * np.eye(10), y[rows] - y[rows].mean())
        rhos.append(spearman(kernels.cross(feats, feats.take(rows))["summary"] @ weights, y))
    assert np.median(rhos) > 0.9
    no_build = CustomSpace("toy_nobuild", TOY.decisions)
    assert ArchKernels(no_build, idx).blocks == ("additive", "pairwise")


def test_proxy_sampler_on_a_user_space(problem):
    proxies, profile, latency, accuracy, budget, optimum = problem
    seen: list[str] = []
    sampler = ProxySampler(profile=profile, latency_budget_ms=budget, proxies=proxies, accuracy=stand_in_accuracy,
                           seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(_objective(latency, accuracy, budget, seen), n_trials=10)
    assert [t.system_attrs[ATTR_ARCH] for t in study.trials] == seen
    best = max(accuracy[a] for a in seen if latency[a] <= budget)
    assert best >= optimum - 0.5


@pytest.fixture(scope="module")
def model(problem):
    proxies, *_ = problem
    return fit_from_data(TOY, extra_devices=TrainingDevices.from_tables(proxies), accuracy_fn=stand_in_accuracy,
                         config=FitConfig.tiny(), seed=0)


def test_device_conditioned_sampler_on_a_user_space(problem, model, tmp_path):
    _, profile, latency, accuracy, budget, optimum = problem
    model.save(tmp_path / "model")
    seen: list[str] = []
    sampler = DeviceConditionedSampler(model=tmp_path / "model", profile=profile, latency_budget_ms=budget,
                                       accuracy="model", seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(_objective(latency, accuracy, budget, seen), n_trials=10)
    assert max(accuracy[a] for a in seen if latency[a] <= budget) >= optimum - 2.0  # a tiny fit on 5 devices
    assert ConditionedModel.load(tmp_path / "model").space is TOY


def test_nni_strategy_on_a_user_space(problem):
    pytest.importorskip("nni")
    from edgeopt_plugins.strategies import ProxyStrategy, run_nni_search

    proxies, profile, latency, accuracy, budget, optimum = problem

    def evaluate(arch):
        return {"default": accuracy[arch], "latency_ms": latency[arch]}

    strategy = ProxyStrategy(profile=profile, latency_budget_ms=budget, proxies=proxies, accuracy=stand_in_accuracy,
                             seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = run_nni_search(TOY, evaluate, strategy, max_trials=8)
    archs = [t.arch for t in result.trials]
    assert all(TOY.contains(a) for a in archs)
    assert max(accuracy[a] for a in archs if latency[a] <= budget) >= optimum - 0.5


def test_cli_approach_1_and_2_on_a_user_space(problem, run_cli, tmp_path):
    proxies, profile, latency, _, budget, _ = problem
    tables = []
    for device in proxies.devices:
        tables.append(DeviceProfile.from_table(proxies, device, archs=proxies.archs).write(tmp_path / f"{device}.csv"))
    target = profile.write(tmp_path / "target.csv")
    archs = tmp_path / "archs.txt"
    archs.write_text("\n".join(TOY.enumerate()[:20]) + "\n")
    code, _, err = run_cli("predict", "--space", REF, "--tables", *tables, "--profile", target, "--archs", archs,
                           "--out", tmp_path / "p1.csv", "--quiet")
    assert code == 0, err
    code, _, err = run_cli("fit", "--space", REF, "--tables", *tables, "--accuracy",
                           "tests.spaces._toy_space:stand_in_accuracy", "--config", "tiny", "--out",
                           tmp_path / "model", "--quiet")
    assert code == 0, err
    code, out, err = run_cli("recommend", "--model", tmp_path / "model", "--space", REF, "--profile", target,
                             "--latency-budget-ms", f"{budget:.4f}", "--json")
    assert code == 0, err
    assert '"designs"' in out
    code, _, err = run_cli("predict", "--method", "conditioned", "--space", REF, "--model", tmp_path / "model",
                           "--profile", target, "--archs", archs, "--out", tmp_path / "p2.csv")
    assert code == 0, err
    fleet = tmp_path / "fleet"
    (tmp_path / "targets").mkdir()
    profile.write(tmp_path / "targets" / "board.csv")
    code, out, err = run_cli("fleet", "--space", REF, "--model", tmp_path / "model", "--profiles",
                             tmp_path / "targets", "--budget-percentile", "40", "--out", fleet, "--json", "--quiet")
    assert code == 0, err
    assert '"recommended": 1' in out and json.loads((fleet / "fleet.json").read_text())["targets"]["space"] == REF
    code, _, err = run_cli("plan-profile", "--space", REF, "--tables", *tables, "--profile", target, "--n", "3",
                           "--out", tmp_path / "plan.csv", "--quiet")
    assert code == 0, err
    with open(tmp_path / "plan.csv", newline="") as handle:
        planned = [TOY.format(row["arch"]) for row in csv.DictReader(handle)]
    assert len(set(planned)) == 3 and not set(planned) & set(profile.archs)
    code, out, err = run_cli("monotonicity", "--space", REF, "--tables", *tables, "--json")
    assert code == 0, err
    code, _, err = run_cli("predict", "--space", REF, "--profile", target, "--archs", archs, "--out",
                           tmp_path / "p3.csv")
    assert code == 2 and "has no benchmark table: give its measurements with --tables" in err
    code, _, err = run_cli("fit", "--space", REF, "--tables", *tables, "--config", "tiny", "--out", tmp_path / "m2")
    assert code == 2 and "pass accuracy_fn" in err and not (tmp_path / "m2").exists()


def test_a_saved_proxy_predictor_records_a_user_space(problem, tmp_path):
    from edgeopt_plugins.predictors import ProxyPredictor

    proxies, *_ = problem
    fitted = ProxyPredictor(model="mlp", max_epochs=5).fit(proxies, device="dev0")
    fitted.save(tmp_path / "p")
    saved = json.loads((tmp_path / "p" / "predictor.json").read_text())
    assert saved["space"] == "toy_convnet" and saved["space_spec"]["fingerprint"] == TOY.fingerprint
    again = ProxyPredictor.load(tmp_path / "p", space=TOY)
    archs = TOY.enumerate()[:5]
    assert np.allclose(again.predict(archs), fitted.predict(archs))
