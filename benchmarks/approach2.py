"""Benchmark of approach 2: device-conditioned predictor, calibrated bounds and the learned optimizer.

Leave-one-device-out on the NB201 devices (and the Accel-NASBench MnasNet devices):
for each held-out device a model is fitted *without* it (its column never reaches
the predictor, the calibration, the rank selection or the optimizer's training),
then ``k`` = 10 and 20 random measurements of it form its profile (several seeds).

- prediction: Spearman of the predicted latency with the truth on every
  architecture of the table, and coverage of the upper bound at several confidences;
- recommendation: budgets at the 20/40/60/80th percentile of the device's true
  latency, confidence 0.95: violation (true latency of the recommended design >
  budget) and accuracy regret against the true optimum under the budget, for the
  learned optimizer and for exact screening of the whole table with the same
  predictor (MnasNet: exact screening of the 5,125 table designs, the only ones with
  a true latency); a sweep of the confidence shows the violation/regret trade-off;
- speed: one recommendation for a new device, 10,000 simulated devices in one
  batch, and a per-device Optuna TPE search on the same predictors run until it
  matches the learned optimizer's predicted accuracy.

``python -m benchmarks.approach2 [--quick]``: quick mode uses 6 NB201 and 4 MnasNet
held-out devices, 2 seeds and lighter fits (a few minutes); the full mode all devices,
5 seeds (about half an hour on 2 cores).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import RESULTS, command_line, load_result, save_result
from edgeopt_plugins._plots import new_figure, save_figure
from edgeopt_plugins.data import load_table
from edgeopt_plugins.devices import DeviceProfile
from edgeopt_plugins.exceptions import InfeasibleBudgetError
from edgeopt_plugins.optimizer import (
    ConditionedModel,
    FitConfig,
    OptimizerConfig,
    best_under_budget,
    fit_from_data,
)
from edgeopt_plugins.predictors import PredictorConfig, spearman

NAME = "approach2"
KS = (10, 20)
PERCENTILES = (20, 40, 60, 80)
CONFIDENCE = 0.95
SWEEP = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
COVERAGE_LEVELS = (0.5, 0.8, 0.9, 0.95, 0.99)
TARGETS = {"spearman_k10": 0.90, "violation_rate": 0.05, "regret_k10_cifar10": 0.15, "single_ms": 50.0,
           "batch_10k_s": 10.0}


def _config(quick: bool) -> FitConfig:
    if not quick:
        return FitConfig.fast()
    return FitConfig(
        PredictorConfig(calib_draws=2, calib_archs=1000, tower_epochs=10),
        OptimizerConfig(n_devices=1200, epochs=15, hidden=(128, 128)),
        accuracy_epochs=10,
        accuracy_samples=5000,
    )


def _held_out(devices: tuple[str, ...], n: int | None) -> list[str]:
    """Every device, or ``n`` spread evenly over the table's column order (never chosen by name)."""
    if n is None or n >= len(devices):
        return list(devices)
    picks = np.unique(np.round(np.linspace(0, len(devices) - 1, n)).astype(int))
    return [devices[i] for i in picks]


def _evaluate_device(model: ConditionedModel, latency, accuracy: np.ndarray, device: str, *, seeds: int,
                     learned: bool, pool: np.ndarray | None = None) -> dict[str, Any]:
    """All figures of one held-out device (``learned``: the optimizer's designs have a true latency)."""
    col = latency.device_index(device)
    rows = np.flatnonzero(latency.available[:, col] & np.isfinite(accuracy))
    idx = latency.indices[rows]
    truth = latency.values[rows, col]
    acc = accuracy[rows]
    row_of = {a: i for i, a in enumerate(latency.space.from_indices(idx))}
    out: dict[str, Any] = {"device": device, "k": {}}
    timings = []
    for k in KS:
        per: dict[str, list] = {"spearman": [], "coverage": {str(c): [] for c in COVERAGE_LEVELS}, "cases": []}
        for s in range(seeds):
            profile = DeviceProfile.from_table(latency, device, k=k, seed=1000 * s + col)
            profile.metadata["name"] = "held-out"
            t0 = time.perf_counter()
            emb = model.embed(profile)
            mean, upper = model.predict(idx, emb, confidence=CONFIDENCE)
            timings.append(time.perf_counter() - t0)
            per["spearman"].append(spearman(mean, truth))
            for c in COVERAGE_LEVELS:
                _, up_c = model.predict(idx, emb, confidence=c)
                per["coverage"][str(c)].append(float(np.mean(truth <= up_c)))
            sweep_upper = {c: model.predict(idx, emb, confidence=c)[1] for c in SWEEP}
            pred_acc = model.predict_accuracy(idx)
            for pct in PERCENTILES:
                budget = float(np.percentile(truth, pct))
                best = best_under_budget(truth, acc, budget)
                case: dict[str, Any] = {"seed": s, "pct": pct, "budget_ms": budget, "best_acc": float(acc[best])}
                for c, up_c in sweep_upper.items():
                    pick = best_under_budget(up_c, pred_acc, budget)
                    case[f"sweep_{c}"] = None if pick < 0 else [bool(truth[pick] > budget),
                                                                float(acc[best] - acc[pick])]
                methods = {"exact": idx}
                if learned:
                    methods["learned"] = None
                for method, cand in methods.items():
                    t0 = time.perf_counter()
                    try:
                        design = model.recommend(emb, latency_budget_ms=budget, confidence=CONFIDENCE,
                                                 candidates=cand, top_k=1)[0]
                    except InfeasibleBudgetError:
                        case[method] = None
                        continue
                    dt = time.perf_counter() - t0
                    i = row_of.get(design.arch)
                    if i is None:  # outside the table: no true latency (cannot happen for NB201)
                        case[method] = {"outside_table": True, "predicted_accuracy": design.predicted_accuracy}
                        continue
                    case[method] = {"violated": bool(truth[i] > budget), "regret": float(acc[best] - acc[i]),
                                    "upper_ms": design.latency_upper_ms, "true_ms": float(truth[i]), "s": dt}
                if pool is not None and k == KS[0]:
                    # Large space: the learned optimizer's design vs exact screening of a big candidate pool,
                    # both judged by the model (no true latency exists outside the table).
                    try:
                        mine = model.recommend(emb, latency_budget_ms=budget, top_k=1)[0].predicted_accuracy
                        ref = model.recommend(emb, latency_budget_ms=budget, top_k=1,
                                              candidates=pool)[0].predicted_accuracy
                        case["pool_gap"] = float(ref - mine)
                    except InfeasibleBudgetError:
                        case["pool_gap"] = None
                per["cases"].append(case)
        out["k"][str(k)] = per
    out["embed_predict_s"] = float(np.median(timings))
    return out


def _summarise(devices: list[dict[str, Any]], learned: bool) -> dict[str, Any]:
    """Means over devices, seeds and budgets, by k (and by budget percentile)."""
    summary: dict[str, Any] = {}
    methods = ["exact"] + (["learned"] if learned else [])
    for k in KS:
        key = str(k)
        sp = [np.mean(d["k"][key]["spearman"]) for d in devices]
        cov = {str(c): float(np.mean([np.mean(d["k"][key]["coverage"][str(c)]) for d in devices]))
               for c in COVERAGE_LEVELS}
        cases = [case for d in devices for case in d["k"][key]["cases"]]
        rec: dict[str, Any] = {}
        for m in methods:
            done = [c[m] for c in cases if c.get(m) and "violated" in c[m]]
            rec[m] = {
                "violation_rate": float(np.mean([c["violated"] for c in done])) if done else None,
                "mean_regret": float(np.mean([c["regret"] for c in done])) if done else None,
                "infeasible_rate": float(np.mean([c.get(m) is None for c in cases])),
                "by_percentile": {str(p): {
                    "violation_rate": float(np.mean([c[m]["violated"] for c in cases if c["pct"] == p and c.get(m)
                                                     and "violated" in c[m]] or [np.nan])),
                    "mean_regret": float(np.mean([c[m]["regret"] for c in cases if c["pct"] == p and c.get(m)
                                                  and "violated" in c[m]] or [np.nan])),
                } for p in PERCENTILES},
            }
        sweep = {}
        for c in SWEEP:
            got = [case[f"sweep_{c}"] for case in cases if case[f"sweep_{c}"] is not None]
            sweep[str(c)] = {"violation_rate": float(np.mean([g[0] for g in got])) if got else None,
                             "mean_regret": float(np.mean([g[1] for g in got])) if got else None,
                             "infeasible_rate": float(1 - len(got) / max(1, len(cases)))}
        gaps = [c["pool_gap"] for c in cases if c.get("pool_gap") is not None]
        summary[key] = {
            "learned_vs_pool_predicted_gap": float(np.mean(gaps)) if gaps else None,
            "learned_worse_than_pool_share": float(np.mean([g > 1e-9 for g in gaps])) if gaps else None,
            "mean_spearman": float(np.mean(sp)),
            "min_spearman": float(np.min(sp)),
            "spearman_by_device": {d["device"]: float(np.mean(d["k"][key]["spearman"])) for d in devices},
            "coverage": cov,
            "coverage_by_device_95": {d["device"]: float(np.mean(d["k"][key]["coverage"][str(CONFIDENCE)]))
                                      for d in devices},
            "recommendation": rec,
            "confidence_sweep_exact": sweep,
        }
    return summary


def _space_study(space: str, *, quick: bool, n_devices: int | None, seeds: int, progress: bool) -> dict[str, Any]:
    latency = load_table(space, "latency_ms")
    acc_table = load_table(space, "accuracy")
    dataset = {"nb201": "cifar10", "mnasnet": "imagenet"}[space]
    acc_rows = acc_table.rows_of(latency.archs)
    accuracy = acc_table.values[acc_rows, acc_table.device_index(dataset)]
    learned = space == "nb201"
    pool = None
    if not learned:
        from edgeopt_plugins.optimizer._learned import candidate_pool

        pool = candidate_pool(latency.space, latency.indices, 30_000, seed=123)
    devices, fits = [], []
    for n, device in enumerate(_held_out(latency.devices, n_devices)):
        t0 = time.perf_counter()
        model = fit_from_data(space, exclude_devices=[device], config=_config(quick), seed=0)
        fit_s = time.perf_counter() - t0
        assert device not in model.info["training_devices"]  # no leak of the held-out device
        res = _evaluate_device(model, latency, accuracy, device, seeds=seeds, learned=learned, pool=pool)
        res["fit_s"] = fit_s
        res["rank"] = model.predictor.metrics["latency_ms"].rank
        devices.append(res)
        fits.append(fit_s)
        if progress:
            k10 = res["k"]["10"]
            print(f"  {space} {n + 1}: held-out device fitted in {fit_s:.0f}s, k=10 Spearman "
                  f"{np.mean(k10['spearman']):.3f}", file=sys.stderr, flush=True)
    return {"space": space, "dataset": dataset, "devices": devices, "summary": _summarise(devices, learned),
            "fit_s_mean": float(np.mean(fits)), "last_model": model, "latency": latency, "accuracy": accuracy}


def _fleet_profiles(model: ConditionedModel, n: int, k: int, seed: int, *, energy: bool = False
                    ) -> tuple[list[DeviceProfile], np.ndarray, Any, np.ndarray]:
    """``n`` devices of a :class:`SimulatedFleet` fitted to the model's own training devices, ``k``-point profiles.

    Returns the profiles, per-device budgets (median latency over a random pool), the
    simulated devices and the pool's choice indices.
    """
    from edgeopt_plugins.devices import SimulatedFleet

    space = model.space
    table = load_table(space.name, "latency_ms")
    real = [d for d in model.predictor.info["latency_devices"] if d in table.devices]
    sims = SimulatedFleet.fit(table, devices=real, seed=seed).sample_devices(n, seed=seed + 1)
    pool = space.sample_indices(2000, seed=seed)
    lat = sims.latency(pool)  # (pool, n) float32
    en = sims.energy(pool) if energy else None
    rng = np.random.default_rng(seed)
    archs = space.from_indices(pool)
    profiles = []
    for i in range(n):
        rows = rng.choice(pool.shape[0], size=k, replace=False)
        profiles.append(DeviceProfile(space, tuple(archs[r] for r in rows), lat[rows, i].astype(np.float64),
                                      None if en is None else en[rows, i].astype(np.float64),
                                      {"name": sims.names[i]}))
    return profiles, np.median(lat, axis=0).astype(np.float64), sims, pool


def _energy_study(*, quick: bool) -> dict[str, Any]:
    """Energy (simulated: no table has it): coverage of the energy bound on held-out simulated devices."""
    held = "pixel3"
    model = fit_from_data("nb201", exclude_devices=[held], simulated_devices=60 if quick else 150,
                          config=_config(quick), seed=0)
    out: dict[str, Any] = {"training_simulated_devices": model.info["simulated_devices"]}
    n = 20 if quick else 60
    for with_energy in (False, True):
        # A fleet of another seed: these devices were never trained on.
        profiles, _, sims, pool = _fleet_profiles(model, n, 10, seed=4242, energy=with_energy)
        truth = sims.energy(pool)
        cov, sp = [], []
        for i, p in enumerate(profiles):
            mean, upper = model.predict(pool, p, confidence=CONFIDENCE, metric="energy_mj")
            cov.append(float(np.mean(truth[:, i] <= upper)))
            sp.append(spearman(mean, truth[:, i]))
        out["profile_with_energy" if with_energy else "latency_only_profile"] = {
            "coverage_95": float(np.mean(cov)), "mean_spearman": float(np.mean(sp)), "devices": n}
    return out


def _speed(model: ConditionedModel, latency, *, n_batch: int, tpe_cases: int, tpe_trials: int) -> dict[str, Any]:
    """Single-device and batch recommendation time, and an Optuna TPE search on the same predictors."""
    import optuna

    profiles, budgets, _, _ = _fleet_profiles(model, n_batch, 10, seed=7)
    single = []
    for p, b in zip(profiles[:50], budgets[:50]):
        t0 = time.perf_counter()
        model.recommend(p, latency_budget_ms=b, top_k=1)
        single.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    emb = model.embed(profiles)
    embed_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    recs = model.recommend_many(emb, budgets, top_k=1, on_infeasible="empty")
    batch_s = time.perf_counter() - t0
    # Per-device Optuna TPE on the same predictors, until it matches the learned optimizer's predicted accuracy.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = model.space
    tpe = []
    for i in range(tpe_cases):
        if not recs[i]:
            continue
        target = recs[i][0].predicted_accuracy
        e = emb[i]
        t0 = time.perf_counter()
        q = model.predictor.multipliers(e, CONFIDENCE)

        def objective(trial, e=e, budget=budgets[i]):
            arch = space.suggest(trial)
            _, up = model.predict([arch], e, confidence=CONFIDENCE)
            feasible = up[0] <= budget
            return float(model.predict_accuracy([arch])[0]) if feasible else -1.0

        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=i))
        reached = None
        for t in range(tpe_trials):
            study.optimize(objective, n_trials=1)
            if study.best_value >= target - 1e-9:
                reached = t + 1
                break
        tpe.append({"trials": reached, "s": time.perf_counter() - t0, "target_acc": target,
                    "best_acc": study.best_value, "multiplier": float(q[0])})
    single_ms = 1000 * float(np.median(single))
    reached = [t for t in tpe if t["trials"] is not None]
    # Time until TPE matched (or, when it never did, the whole run: the ratio is then a lower bound).
    tpe_s = float(np.mean([t["s"] for t in tpe])) if tpe else None
    return {
        "single_recommend_ms": single_ms,
        "batch_devices": n_batch,
        "batch_embed_s": embed_s,
        "batch_recommend_s": batch_s,
        "batch_total_s": embed_s + batch_s,
        "batch_infeasible": int(sum(not r for r in recs)),
        "tpe": tpe,
        "tpe_trials": tpe_trials,
        "tpe_reached_share": len(reached) / max(1, len(tpe)),
        "tpe_mean_trials_when_reached": float(np.mean([t["trials"] for t in reached])) if reached else None,
        "tpe_mean_s": tpe_s,
        "tpe_over_learned_time_ratio": (tpe_s / (single_ms / 1000)) if tpe_s else None,
    }


def _approach1() -> dict[str, Any] | None:
    """Approach 1's NB201 k=10 figures when its benchmark result is present (same leave-one-device-out protocol)."""
    res = load_result("approach1")
    try:
        nb = res["spaces"]["nb201"]
        hier = nb["summary"]["10"]["hierarchical"]
    except (KeyError, TypeError):
        return None
    return {"k10_mean_spearman": hier["mean"], "k10_min_spearman": hier["min"], "devices": len(nb["devices"]),
            "quick": bool(res.get("quick"))}


# ===================================================================== plots
def _plots(result: dict[str, Any], folder: Path = RESULTS) -> dict[str, str]:
    paths = {}
    studies = [s for s in (result.get("nb201"), result.get("mnasnet")) if s]
    # Spearman by device.
    fig, axes = new_figure(1, len(studies), figsize=(7 * len(studies), 4.2), squeeze=False, layout="constrained")
    for ax, st in zip(axes[0], studies):
        names = list(st["summary"]["10"]["spearman_by_device"])
        x = np.arange(len(names))
        for j, k in enumerate(KS):
            vals = [st["summary"][str(k)]["spearman_by_device"][n] for n in names]
            ax.bar(x + (j - 0.5) * 0.4, vals, width=0.4, label=f"k = {k}")
        ax.axhline(TARGETS["spearman_k10"], color="red", lw=0.8, ls="--", label="target (k=10 mean)")
        ax.set_xticks(x, names, rotation=70, fontsize=7)
        ax.set_ylim(0.5, 1.0)
        ax.set_ylabel("Spearman (all archs)")
        ax.set_title(f"{st['space']}: held-out devices", fontsize=9)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=3, fontsize=7)  # the bars fill every panel
    paths["spearman"] = str(save_figure(fig, folder / f"{NAME}_spearman.png"))
    # Regret and violation by budget percentile.
    fig, axes = new_figure(2, len(studies), figsize=(6 * len(studies), 6.5), squeeze=False)
    for col, st in enumerate(studies):
        for k in KS:
            rec = st["summary"][str(k)]["recommendation"]
            for method, style in (("learned", "-"), ("exact", ":")):
                if method not in rec:
                    continue
                bp = rec[method]["by_percentile"]
                axes[0][col].plot(PERCENTILES, [bp[str(p)]["mean_regret"] for p in PERCENTILES], style, marker="o",
                                  label=f"{method}, k={k}")
                axes[1][col].plot(PERCENTILES, [bp[str(p)]["violation_rate"] for p in PERCENTILES], style,
                                  marker="o", label=f"{method}, k={k}")
        if st["space"] == "nb201":
            axes[0][col].axhline(TARGETS["regret_k10_cifar10"], color="red", lw=0.8, ls="--", label="target k=10")
        axes[1][col].axhline(TARGETS["violation_rate"], color="red", lw=0.8, ls="--", label="target")
        axes[0][col].set_ylabel(f"accuracy regret ({st['dataset']}, points)")
        axes[1][col].set_ylabel("budget violation rate")
        axes[1][col].set_xlabel("budget = percentile of the device's true latency")
        axes[0][col].set_title(f"{st['space']}: confidence {CONFIDENCE}", fontsize=9)
        for ax in axes[:, col]:
            ax.legend(fontsize=7)
    paths["recommendation"] = str(save_figure(fig, folder / f"{NAME}_recommendation.png"))
    # Coverage (reliability) and the violation/regret trade-off of the confidence.
    fig, axes = new_figure(1, 2, figsize=(11, 4), squeeze=False)
    for st in studies:
        for k in KS:
            cov = st["summary"][str(k)]["coverage"]
            axes[0][0].plot(COVERAGE_LEVELS, [cov[str(c)] for c in COVERAGE_LEVELS], marker="o",
                            label=f"{st['space']} k={k}")
            sw = st["summary"][str(k)]["confidence_sweep_exact"]
            axes[0][1].plot([sw[str(c)]["violation_rate"] for c in SWEEP], [sw[str(c)]["mean_regret"] for c in SWEEP],
                            marker="o", label=f"{st['space']} k={k}")
    axes[0][0].plot([0.5, 1], [0.5, 1], color="grey", lw=0.8, ls="--", label="nominal")
    axes[0][0].set_xlabel("confidence of the upper bound")
    axes[0][0].set_ylabel("share of true latencies under it (unseen devices)")
    axes[0][1].axvline(TARGETS["violation_rate"], color="red", lw=0.8, ls="--")
    axes[0][1].set_xlabel("budget violation rate")
    axes[0][1].set_ylabel("mean accuracy regret (points)")
    axes[0][1].set_title(f"confidence sweep {SWEEP[0]}..{SWEEP[-1]} (exact screening)", fontsize=9)
    for ax in axes[0]:
        ax.legend(fontsize=7)
    paths["coverage"] = str(save_figure(fig, folder / f"{NAME}_coverage.png"))
    return paths


# ===================================================================== entry points
def run(*, quick: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run the benchmark, save ``benchmarks/results/approach2.json`` and its plots."""
    start = time.perf_counter()
    seeds = 2 if quick else 5
    nb = _space_study("nb201", quick=quick, n_devices=6 if quick else None, seeds=seeds, progress=progress)
    mn = _space_study("mnasnet", quick=quick, n_devices=4 if quick else None, seeds=seeds, progress=progress)
    energy = _energy_study(quick=quick)
    speed = _speed(nb.pop("last_model"), nb.pop("latency"), n_batch=10_000, tpe_cases=3 if quick else 6,
                   tpe_trials=200 if quick else 500)
    mn_model = mn.pop("last_model")
    mn.pop("latency")
    nb.pop("accuracy")
    mn.pop("accuracy")
    result = {
        "quick": quick,
        "protocol": {"ks": KS, "seeds": seeds, "budget_percentiles": PERCENTILES, "confidence": CONFIDENCE,
                     "fit_config": dataclasses.asdict(_config(quick).predictor) | {
                         "optimizer": dataclasses.asdict(_config(quick).optimizer)},
                     "held_out": "leave-one-device-out: one model per held-out device, fitted without it"},
        "targets": TARGETS,
        "nb201": nb,
        "mnasnet": mn,
        "mnasnet_rank": mn_model.predictor.metrics["latency_ms"].rank,
        "speed": speed,
        "energy": energy,
        "approach1": _approach1(),
        "seconds": time.perf_counter() - start,
    }
    result["plots"] = _plots(result)
    save_result(NAME, result)
    return result


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, spec)


def report(result: dict[str, Any]) -> str:
    """Markdown section: figures next to their targets, the plots, the reproducing command."""
    nb, mn, sp = result["nb201"]["summary"], result["mnasnet"]["summary"], result["speed"]
    l10, l20 = nb["10"]["recommendation"]["learned"], nb["20"]["recommendation"]["learned"]
    e10 = nb["10"]["recommendation"]["exact"]
    lines = [
        "## Approach 2: device-conditioned predictor and learned optimizer",
        "",
        f"Leave-one-device-out ({len(result['nb201']['devices'])} NB201 and {len(result['mnasnet']['devices'])} MnasNet "
        f"held-out devices, {result['protocol']['seeds']} profile seeds, confidence {CONFIDENCE}).",
        "",
        "| figure | measured | target |",
        "|---|---|---|",
        f"| NB201 Spearman, k=10 (mean / min over devices) | {_fmt(nb['10']['mean_spearman'])} / "
        f"{_fmt(nb['10']['min_spearman'])} | >= 0.90 mean |",
        f"| NB201 Spearman, k=20 | {_fmt(nb['20']['mean_spearman'])} | |",
        f"| NB201 coverage of the 0.95 bound, k=10 / k=20 | {_fmt(nb['10']['coverage']['0.95'])} / "
        f"{_fmt(nb['20']['coverage']['0.95'])} | 0.95 |",
        f"| NB201 budget violations, learned optimizer, k=10 / k=20 | {_fmt(l10['violation_rate'])} / "
        f"{_fmt(l20['violation_rate'])} | <= 0.05 |",
        f"| NB201 accuracy regret (CIFAR-10 points), learned, k=10 / k=20 | {_fmt(l10['mean_regret'])} / "
        f"{_fmt(l20['mean_regret'])} | <= 0.15 at k=10 |",
        f"| NB201 regret, exact screening with the same predictor, k=10 | {_fmt(e10['mean_regret'])} | (reference) |",
        f"| MnasNet Spearman, k=10 / k=20 | {_fmt(mn['10']['mean_spearman'])} / {_fmt(mn['20']['mean_spearman'])} | |",
        f"| MnasNet violations / regret (ImageNet points), k=10, table designs | "
        f"{_fmt(mn['10']['recommendation']['exact']['violation_rate'])} / "
        f"{_fmt(mn['10']['recommendation']['exact']['mean_regret'])} | |",
        f"| one recommendation for a new device (ms) | {_fmt(sp['single_recommend_ms'], '.1f')} | < 50 |",
        f"| 10,000 simulated devices in one batch (s) | {_fmt(sp['batch_total_s'], '.2f')} | < 10 |",
        f"| Optuna TPE on the same predictors / learned optimizer (time ratio) | "
        f"{'>= ' if sp['tpe_reached_share'] < 1 else ''}{_fmt(sp['tpe_over_learned_time_ratio'], '.0f')}x "
        f"(TPE matched the learned design in {_fmt(sp['tpe_reached_share'], '.0%')} of cases within "
        f"{sp['tpe_trials']} trials) | |",
        f"| energy (simulated devices) coverage of the 0.95 bound, latency-only / with-energy profile | "
        f"{_fmt(result['energy']['latency_only_profile']['coverage_95'])} / "
        f"{_fmt(result['energy']['profile_with_energy']['coverage_95'])} | 0.95 |",
        f"| MnasNet: learned optimizer vs exact screening of 30k designs (pool minus learned predicted accuracy, k=10; negative: learned better) | "
        f"{_fmt(mn['10']['learned_vs_pool_predicted_gap'])} | |",
        "",
        "![Spearman](../benchmarks/results/approach2_spearman.png)",
        "![Recommendation](../benchmarks/results/approach2_recommendation.png)",
        "![Coverage](../benchmarks/results/approach2_coverage.png)",
        "",
        "Reproduce: `EDGEOPT_DATA_DIR=../shared/data python -m benchmarks.approach2` (add `--quick` for a few minutes).",
    ]
    return "\n".join(lines) + "\n"


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Figures next to their targets, for the summary table of docs/benchmarks.md."""
    nb, sp = result["nb201"]["summary"], result["speed"]
    learned = nb["10"]["recommendation"]["learned"]
    rows = [
        {"figure": "NB201 Spearman at k=10 (mean over held-out devices)", "target": ">= 0.90",
         "measured": _fmt(nb["10"]["mean_spearman"]), "met": bool(nb["10"]["mean_spearman"] >= TARGETS["spearman_k10"])},
        {"figure": "budget violations, learned optimizer, k=10, confidence 0.95", "target": "<= 5%",
         "measured": f"{100 * learned['violation_rate']:.1f}%",
         "met": bool(learned["violation_rate"] <= TARGETS["violation_rate"])},
        {"figure": "accuracy regret vs true optimum, k=10 (CIFAR-10 points)", "target": "<= 0.15",
         "measured": _fmt(learned["mean_regret"]), "met": bool(learned["mean_regret"] <= TARGETS["regret_k10_cifar10"])},
        {"figure": "one recommendation for a new device", "target": "< 50 ms",
         "measured": f"{sp['single_recommend_ms']:.1f} ms", "met": bool(sp["single_recommend_ms"] < TARGETS["single_ms"])},
        {"figure": "10,000 simulated devices in one batch", "target": "< 10 s",
         "measured": f"{sp['batch_total_s']:.2f} s", "met": bool(sp["batch_total_s"] < TARGETS["batch_10k_s"])},
    ]
    a1 = result.get("approach1")
    if a1:
        rows.append({"figure": "NB201 Spearman at k=10 better than approach 1 on the same devices",
                     "target": f"> {a1['k10_mean_spearman']:.3f}", "measured": _fmt(nb["10"]["mean_spearman"]),
                     "met": bool(nb["10"]["mean_spearman"] > a1["k10_mean_spearman"])})
    return rows


if __name__ == "__main__":
    command_line(run, report, __doc__)
