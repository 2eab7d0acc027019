"""Benchmark of approach 1: proxy devices, latency monotonicity and few-shot adaptation.

Leave-one-device-out: each device of a table in turn is the *target*. Its column is
removed from the table before anything is built (the proxies, their normalisation,
meta-tuning and every choice see only the other devices; the target's measurements
arrive under the neutral name ``"target"``). ``k`` of its architectures are drawn at
random (seeded, several draws) as its measurements, and every method ranks *all*
architectures of the table; the figure is the Spearman correlation with the target's
true latencies. Methods:

- ``flops``: the space's analytic FLOPs (device-agnostic);
- ``proxy_central``: the most central proxy (chosen without the target);
- ``proxy_best_k``: the proxy that ranks the ``k`` points best (honest choice);
- ``proxy_oracle``: the proxy that is truly best for the target (a reference, not a method);
- ``published``: Lu et al. 2021 (central proxy's additive predictor, rescaled, plus a
  per-operation correction with a validated penalty);
- ``k_only``: an additive per-device model fitted on the ``k`` points alone;
- ``hierarchical``: ours (a prior over devices learned from the proxies, meta-tuned).

Also: the proxy predictors' accuracy on held-out architectures of their own device;
the calibration of the estimated rank correlation; and the published decision loop
(measure until the estimate reaches 0.9) with our choice of architectures against
random ones.

Run with ``python -m benchmarks.approach1 [--quick]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from benchmarks._common import RESULTS, command_line, save_result
from edgeopt_plugins._plots import new_figure, save_figure
from edgeopt_plugins.data import load_table
from edgeopt_plugins.predictors import (
    Measurements,
    ProxyAdapter,
    ProxyPool,
    ProxyPredictor,
    choose_proxy,
    propose_measurements,
)

NAME = "approach1"
KS = (0, 5, 10, 20, 50)
METHODS = ("flops", "proxy_central", "proxy_best_k", "proxy_best_posterior", "proxy_oracle", "own_half", "published",
           "k_only", "hierarchical")
LABELS = {
    "flops": "FLOPs",
    "proxy_central": "central proxy",
    "proxy_best_k": "best proxy (chosen on k points)",
    "proxy_best_posterior": "best proxy (chosen by our posterior)",
    "proxy_oracle": "oracle best proxy (reference)",
    "own_half": "target's own additive model on half its archs (reference)",
    "published": "published adaptation (Lu et al.)",
    "k_only": "per-device model, k points alone",
    "hierarchical": "ours (hierarchical)",
}
#: Box-plot labels: short, and still telling the two "best proxy" choices apart.
SHORT_LABELS = {
    "proxy_best_k": "best proxy (k points)",
    "proxy_best_posterior": "best proxy (posterior)",
    "proxy_oracle": "oracle best proxy",
    "own_half": "target's own model (half)",
    "published": "published (Lu et al.)",
    "hierarchical": "ours",
}
TARGETS = {"10": {"mean": 0.90, "min": 0.80}, "50": {"mean": 0.95}}
THRESHOLD = 0.9


def _rank_z(x: np.ndarray) -> np.ndarray:
    r = stats.rankdata(x)
    sd = r.std()
    return (r - r.mean()) / sd if sd > 0 else np.zeros_like(r)


def _rho(pred: np.ndarray, truth_z: np.ndarray) -> float:
    return float(np.mean(_rank_z(pred) * truth_z))


def _evaluate_target(table, target: str, ks: tuple[int, ...], draws: int, seed: int, loop: bool) -> dict[str, Any]:
    """All methods for one held-out target."""
    rows = np.flatnonzero(table.complete_rows)
    proxies = table.select(devices=[d for d in table.devices if d != target], rows=rows)
    truth = table.values[rows, table.device_index(target)]
    truth_z = _rank_z(truth)
    pool = ProxyPool(proxies, seed=seed)
    hier = ProxyAdapter(pool, seed=seed)
    pub = ProxyAdapter(pool, method="published", seed=seed)
    allidx = proxies.indices
    lat_all = proxies.values
    proxy_rho = {d: _rho(lat_all[:, j], truth_z) for j, d in enumerate(proxies.devices)}
    central = pool.central_device()
    fixed = {
        "flops": _rho(table.space.flops(allidx), truth_z),
        "proxy_central": proxy_rho[central],
        "proxy_oracle": max(proxy_rho.values()),
        "own_half": _own_half(proxies, truth, seed),
    }
    out: dict[str, Any] = {"central_proxy": central, "oracle_proxy": max(proxy_rho, key=proxy_rho.get), "k": {}}
    timings = {"hierarchical": 0.0, "published": 0.0}
    rng = np.random.default_rng([seed, table.device_index(target)])
    estimates: list[dict[str, Any]] = []
    choices: list[dict[str, Any]] = []
    for k in ks:
        per: dict[str, list[float]] = {m: [] for m in METHODS}
        n_draws = 1 if k == 0 else draws
        for _ in range(n_draws):
            for m, v in fixed.items():
                per[m].append(v)
            if k == 0:
                t0 = time.perf_counter()
                per["hierarchical"].append(_rho(hier.fit(None).predict(allidx), truth_z))
                timings["hierarchical"] += time.perf_counter() - t0
                per["published"].append(_rho(pub.fit(None).predict(allidx), truth_z))
                per["proxy_best_k"].append(fixed["proxy_central"])
                per["proxy_best_posterior"].append(fixed["proxy_central"])
                continue
            pick = rng.choice(len(rows), size=k, replace=False)
            meas = Measurements(table.space, tuple(proxies.archs[i] for i in pick), truth[pick], "target")
            choice = choose_proxy(pool, meas, n_boot=20, seed=seed)
            per["proxy_best_k"].append(proxy_rho[choice.device])
            choices.append({"k": k, "criterion": "spearman", "estimated": choice.estimated_spearman,
                            "std": choice.spearman_std, "actual": proxy_rho[choice.device]})
            t0 = time.perf_counter()
            model = hier.fit(meas)
            per["hierarchical"].append(_rho(model.predict(allidx), truth_z))
            timings["hierarchical"] += time.perf_counter() - t0
            estimates.append({"k": k, "estimated": model.estimated_spearman, "std": model.spearman_std,
                              "actual": per["hierarchical"][-1]})
            by_proxy = model.proxy_spearman()  # the same posterior ranks every single proxy
            best = max(by_proxy, key=lambda d: by_proxy[d][0])
            per["proxy_best_posterior"].append(proxy_rho[best])
            choices.append({"k": k, "criterion": "posterior", "estimated": by_proxy[best][0], "std": by_proxy[best][1],
                            "actual": proxy_rho[best]})
            t0 = time.perf_counter()
            per["published"].append(_rho(pub.fit(meas).predict(allidx), truth_z))
            timings["published"] += time.perf_counter() - t0
            per["k_only"].append(_rho(ProxyPredictor(model="additive").fit(meas).predict(allidx), truth_z))
        out["k"][str(k)] = {m: [round(v, 5) for v in vals] for m, vals in per.items() if vals}
    out["estimates"] = estimates
    out["choices"] = choices
    out["seconds"] = {m: round(v, 3) for m, v in timings.items()}
    if loop:
        out["loop"] = _decision_loops(hier, pub, proxies, truth, truth_z, seed)
    return out


def _own_half(proxies, truth: np.ndarray, seed: int) -> float:
    """Reference for how rankable the target is at all: its own additive model fitted on a
    random half of its architectures, Spearman on the other half (noise and non-additivity cap it)."""
    half = np.random.default_rng(seed).permutation(len(truth))
    fit, held = np.sort(half[: len(half) // 2]), np.sort(half[len(half) // 2 :])
    meas = Measurements(proxies.space, tuple(proxies.archs[i] for i in fit), truth[fit], "target")
    pred = ProxyPredictor(model="additive").fit(meas).predict(proxies.indices[held])
    return _rho(pred, _rank_z(truth[held]))


def _decision_loops(hier, pub, proxies, truth, truth_z, seed) -> dict[str, Any]:
    """Measure until the estimate reaches the threshold: our choice of archs vs random, and the published loop."""
    lookup = {a: float(v) for a, v in zip(proxies.archs, truth)}

    def measure(archs: list[str]) -> list[float]:
        return [lookup[a] for a in archs]

    allidx = proxies.indices
    res = {}
    for name, adapter, active in (("hierarchical_active", hier, True), ("hierarchical_random", hier, False),
                                  ("published", pub, True)):
        if active:
            run = propose_measurements(adapter, measure, threshold=THRESHOLD, max_measurements=50, batch=5, seed=seed)
            k, est, model = len(run.measurements), run.predictor.estimated_spearman, run.predictor
        else:
            rng = np.random.default_rng(seed)
            order = rng.permutation(len(proxies.archs))
            k = 5
            while True:
                pick = order[:k]
                meas = Measurements(proxies.space, tuple(proxies.archs[i] for i in pick), truth[pick], "target")
                model = adapter.fit(meas)
                est = model.estimated_spearman
                if est >= THRESHOLD or k >= 50:
                    break
                k += 5
        res[name] = {"measurements": k, "estimated": round(float(est), 4), "reached": bool(est >= THRESHOLD),
                     "actual": round(_rho(model.predict(allidx), truth_z), 4)}
    return res


def _proxy_accuracy(table, devices: list[str], models: tuple[str, ...], seed: int) -> list[dict[str, Any]]:
    """Held-out accuracy of the proxy predictors on their own device (80/20 split)."""
    rows = np.flatnonzero(table.complete_rows)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(rows)
    cut = int(0.8 * len(perm))
    train, test = np.sort(perm[:cut]), np.sort(perm[cut:])
    out = []
    for device in devices:
        col = table.column(device)
        tr = Measurements(table.space, tuple(table.archs[i] for i in train), col[train], device)
        te = Measurements(table.space, tuple(table.archs[i] for i in test), col[test], device)
        row: dict[str, Any] = {"device": device, "train": len(tr), "test": len(te)}
        for model in models:
            t0 = time.perf_counter()
            pred = ProxyPredictor(model=model, seed=seed).fit(tr)
            fit_s = time.perf_counter() - t0
            ev = pred.evaluate(te)
            row[model] = {"spearman": round(ev["spearman"], 4), "kendall": round(ev["kendall"], 4),
                          "mape_pct": round(ev["mape_pct"], 2), "fit_s": round(fit_s, 2)}
        out.append(row)
    return out


def _summarise(per_target: dict[str, Any], ks: tuple[int, ...]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for k in ks:
        row = {}
        for m in METHODS:
            per_dev = {d: float(np.mean(r["k"][str(k)][m])) for d, r in per_target.items() if m in r["k"][str(k)]}
            if not per_dev:
                continue
            worst = min(per_dev, key=per_dev.get)
            all_draws = [v for r in per_target.values() for v in r["k"][str(k)].get(m, [])]
            row[m] = {"mean": round(float(np.mean(list(per_dev.values()))), 4), "min": round(per_dev[worst], 4),
                      "worst_device": worst, "worst_draw": round(float(np.min(all_draws)), 4)}
        summary[str(k)] = row
    est = [e for r in per_target.values() for e in r["estimates"]]
    calib = {}
    for k in sorted({e["k"] for e in est}):
        sel = [e for e in est if e["k"] == k]
        a = np.array([e["actual"] for e in sel])
        e_ = np.array([e["estimated"] for e in sel])
        s = np.array([e["std"] for e in sel])
        calib[str(k)] = {"mean_error": round(float(np.mean(e_ - a)), 4), "mean_abs_error": round(float(np.mean(np.abs(e_ - a))), 4),
                    "corr": round(float(np.corrcoef(e_, a)[0, 1]), 3) if len(sel) > 2 and np.std(e_) > 0 else None,
                    "coverage_90": round(float(np.mean(np.abs(e_ - a) <= 1.645 * s)), 3)}
    summary["calibration"] = calib
    ch = [c for r in per_target.values() for c in r.get("choices", [])]
    choice = {}
    for crit in ("spearman", "posterior"):
        for k in sorted({c["k"] for c in ch}):
            sel = [c for c in ch if c["k"] == k and c["criterion"] == crit]
            if not sel:
                continue
            e_ = np.array([c["estimated"] for c in sel])
            a = np.array([c["actual"] for c in sel])
            s = np.array([c["std"] for c in sel])
            choice.setdefault(crit, {})[str(k)] = {
                "mean_error": round(float(np.mean(e_ - a)), 4), "mean_abs_error": round(float(np.mean(np.abs(e_ - a))), 4),
                "coverage_90": round(float(np.mean(np.abs(e_ - a) <= 1.645 * s + 1e-12)), 3)}
    summary["proxy_choice_estimates"] = choice
    loops = {d: r["loop"] for d, r in per_target.items() if "loop" in r}
    if loops:
        summary["loop"] = {}
        for name in next(iter(loops.values())):
            vals = [v[name] for v in loops.values()]
            summary["loop"][name] = {
                "mean_measurements": round(float(np.mean([v["measurements"] for v in vals])), 1),
                "reached_share": round(float(np.mean([v["reached"] for v in vals])), 3),
                "mean_actual_at_stop": round(float(np.mean([v["actual"] for v in vals])), 4),
                "min_actual_at_stop": round(float(np.min([v["actual"] for v in vals])), 4),
                "share_actual_ge_threshold": round(float(np.mean([v["actual"] >= THRESHOLD for v in vals])), 3),
            }
    return summary


def _evaluate_space(space: str, *, draws: int, seed: int, loop: bool, devices: list[str] | None, progress: bool) -> dict[str, Any]:
    table = load_table(space, "latency_ms")
    targets = devices or list(table.devices)
    per_target = {}
    start = time.perf_counter()
    for i, target in enumerate(targets):
        per_target[target] = _evaluate_target(table, target, KS, draws, seed, loop)
        if progress:
            print(f"  {space} {i + 1}/{len(targets)} {target}: k=10 ours "
                  f"{np.mean(per_target[target]['k']['10']['hierarchical']):.3f} "
                  f"({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    return {"devices": targets, "archs": int(table.complete_rows.sum()), "draws": draws,
            "per_target": per_target, "summary": _summarise(per_target, KS),
            "seconds": round(time.perf_counter() - start, 1)}


def run(*, quick: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run the benchmark; quick mode: NB201 only, 2 draws, the MLP on four devices only."""
    seed = 0
    start = time.perf_counter()
    result: dict[str, Any] = {"quick": quick, "ks": list(KS), "methods": list(METHODS), "targets": TARGETS,
                              "threshold": THRESHOLD, "spaces": {}}
    # NB201 carries the targets; FBNet and OFA are the generalisation check (fewer draws).
    plan = {"nb201": 2} if quick else {"nb201": 5, "fbnet": 3, "ofa": 3}
    for space, draws in plan.items():
        result["spaces"][space] = _evaluate_space(space, draws=draws, seed=seed, loop=(space == "nb201"),
                                                  devices=None, progress=progress)
    nb = load_table("nb201", "latency_ms")
    mlp_devices = ["pixel3", "raspi4", "samsung_s7", "1080ti_1"] if quick else list(nb.devices)
    result["proxy_accuracy"] = {
        "additive": _proxy_accuracy(nb, list(nb.devices), ("additive",), seed),
        "mlp": _proxy_accuracy(nb, mlp_devices, ("additive", "mlp"), seed),
    }
    result["seconds"] = round(time.perf_counter() - start, 1)
    save_result(NAME, result)  # the figures first: a plotting problem must not lose them
    _plot(result)
    return result


def _plot(result: dict[str, Any], folder: Path = RESULTS) -> None:
    spaces = list(result["spaces"])
    fig, axes = new_figure(2, len(spaces), figsize=(5.2 * len(spaces), 8.5), squeeze=False, layout="constrained")
    styles = {"flops": ":", "proxy_central": "--", "proxy_best_k": "-", "proxy_best_posterior": "--",
              "proxy_oracle": ":", "own_half": ":", "published": "-", "k_only": "-.", "hierarchical": "-"}
    colors = {m: f"C{i}" for i, m in enumerate(METHODS)}
    ks = result["ks"]
    for col, space in enumerate(spaces):
        summ = result["spaces"][space]["summary"]
        ax = axes[0][col]
        for m in METHODS:
            pos = [i for i, k in enumerate(ks) if m in summ[str(k)]]
            ax.plot(pos, [summ[str(ks[i])][m]["mean"] for i in pos], styles[m], color=colors[m], marker="o", ms=3,
                    label=LABELS[m], lw=2.4 if m == "hierarchical" else 1.2)
            if m == "hierarchical":
                ax.plot(pos, [summ[str(ks[i])][m]["min"] for i in pos], ":", color=colors[m], lw=1.2,
                        label="ours, worst device")
        ax.axhline(0.9, color="grey", lw=0.6)
        ax.axhline(0.95, color="grey", lw=0.6, ls="--")
        ax.set_xticks(range(len(ks)))
        ax.set_xticklabels([str(k) for k in ks])
        ax.set_ylim(0.3, 1.0)
        ax.set_xlabel("k target measurements")
        ax.set_ylabel("mean Spearman over held-out devices")
        ax.set_title(f"{space}: leave-one-device-out ({len(result['spaces'][space]['devices'])} devices)", fontsize=9)
        ax = axes[1][col]
        per = result["spaces"][space]["per_target"]
        shown = [m for m in METHODS if m != "flops" and all(m in r["k"]["10"] for r in per.values())]
        data = [[float(np.mean(r["k"]["10"][m])) for r in per.values()] for m in shown]
        ax.boxplot(data, showfliers=False)
        for i, (m, vals) in enumerate(zip(shown, data), start=1):
            ax.scatter(np.full(len(vals), i) + np.linspace(-0.15, 0.15, len(vals)), vals, s=6, alpha=0.7,
                       color=colors[m])
        ax.set_xticks(range(1, len(shown) + 1))
        ax.set_xticklabels([SHORT_LABELS.get(m, LABELS[m]) for m in shown], rotation=30, ha="right", fontsize=7)
        ax.axhline(0.8, color="red", lw=0.6)
        ax.set_ylabel("Spearman per held-out device, k = 10")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=5, fontsize=7)
    save_figure(fig, folder / f"{NAME}.png")


def report(result: dict[str, Any]) -> str:
    """Markdown section: figures next to targets, per-method tables, plot, reproducing command."""
    lines = [
        "## Approach 1: proxy devices and few-shot adaptation",
        "",
        (f"Reproduce: `EDGEOPT_DATA_DIR=../shared/data python -m benchmarks.approach1{' --quick' if result['quick'] else ''}`"
         f" (results in `benchmarks/results/{NAME}.json`, plot `benchmarks/results/{NAME}.png`; {result['seconds']:.0f} s)."),
        "",
    ]
    nb = result["spaces"]["nb201"]["summary"]
    lines += ["| NB201 target | measured (ours) | target |", "|---|---|---|"]
    for k, t in TARGETS.items():
        for stat, goal in t.items():
            lines.append(f"| k = {k}, {stat} Spearman over held-out devices | {nb[str(k)]['hierarchical'][stat]:.3f} | >= {goal:.2f} |")
    lines.append("")
    for space, res in result["spaces"].items():
        summ = res["summary"]
        lines += [(f"### {space}: {len(res['devices'])} held-out devices, {res['archs']:,} architectures, "
                   f"{res['draws']} draws of the k points"), "",
                  "Spearman on all architectures, mean / min over held-out devices (each device: mean over draws):", "",
                  "| method | " + " | ".join(f"k = {k}" for k in result["ks"]) + " |",
                  "|---|" + "---|" * len(result["ks"])]
        for m in METHODS:
            cells = []
            for k in result["ks"]:
                r = summ[str(k)].get(m)
                cells.append(f"{r['mean']:.3f} / {r['min']:.3f}" if r else "-")
            lines.append(f"| {LABELS[m]} | " + " | ".join(cells) + " |")
        worst = summ["10"]["hierarchical"]
        lines += ["", f"Ours at k = 10: worst device {worst['worst_device']}, worst single draw {worst['worst_draw']:.3f}.", ""]
        cal = summ["calibration"]
        lines += ["Estimated vs actual Spearman (ours): " + "; ".join(
            f"k={k}: mean error {c['mean_error']:+.3f}, |error| {c['mean_abs_error']:.3f}, corr {c['corr']}, "
            f"90% interval covers {c['coverage_90']:.0%}" for k, c in cal.items()), ""]
        pc = summ.get("proxy_choice_estimates", {})
        if pc:
            lines += ["Proxy choice, estimated vs actual Spearman of the chosen proxy: " + "; ".join(
                f"{crit} k={k}: mean error {c['mean_error']:+.3f}, |error| {c['mean_abs_error']:.3f}, "
                f"90% interval covers {c['coverage_90']:.0%}" for crit, by_k in pc.items() for k, c in by_k.items()), ""]
        if "loop" in summ:
            lines += [f"Decision loop (threshold {result['threshold']}, batches of 5, at most 50 measurements):", "",
                      "| loop | mean measurements | reached threshold | mean / min actual Spearman at stop | actual >= 0.9 |",
                      "|---|---|---|---|---|"]
            for name, r in summ["loop"].items():
                lines.append(f"| {name} | {r['mean_measurements']} | {r['reached_share']:.0%} | "
                             f"{r['mean_actual_at_stop']:.3f} / {r['min_actual_at_stop']:.3f} | "
                             f"{r['share_actual_ge_threshold']:.0%} |")
            lines.append("")
    acc = result["proxy_accuracy"]
    lines += ["### Proxy predictors on held-out architectures of their own device (NB201, 80/20 split)", "",
              "| device | additive Spearman | additive MAPE % | MLP Spearman | MLP MAPE % |", "|---|---|---|---|---|"]
    mlp = {r["device"]: r for r in acc["mlp"]}
    for r in acc["additive"]:
        m = mlp.get(r["device"])
        lines.append(f"| {r['device']} | {r['additive']['spearman']:.3f} | {r['additive']['mape_pct']:.1f} | "
                     + (f"{m['mlp']['spearman']:.3f} | {m['mlp']['mape_pct']:.1f} |" if m else "- | - |"))
    lines += ["", f"![approach 1](../benchmarks/results/{NAME}.png)", ""]
    return "\n".join(lines)


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Figures next to their targets (NB201, ours = hierarchical), for docs/benchmarks.md's summary table."""
    nb = result["spaces"]["nb201"]["summary"]
    rows = []
    for k, goals in TARGETS.items():
        for stat, goal in goals.items():
            value = nb[str(k)]["hierarchical"][stat]
            rows.append({"figure": f"NB201 Spearman, k = {k}, {stat} over held-out devices", "target": f">= {goal:.2f}",
                         "measured": f"{value:.3f}", "met": bool(value >= goal)})
    return rows


if __name__ == "__main__":
    command_line(run, report, __doc__)
