"""Every plot the project draws, rendered as users get it and checked for what a reader notices first.

Each test calls one plot function (the library's, or a benchmark's on its stored results)
and asserts that the saved PNG is a sensible image and that the figure has none of
:func:`tests._figures.layout_problems`: text running into a neighbouring panel, an axis with
one tick label, a zero-height bar without a label, an empty panel.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests._figures import layout_problems, png_problems
from tests._synthetic import fleet

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def _check(saved, paths, figures=1):
    assert len(saved) == figures
    assert [s["problems"] for s in saved] == [[]] * figures
    for path in paths:
        assert png_problems(path) == []


def _stored(name):
    return json.loads((RESULTS / f"{name}.json").read_text())


# ----------------------------------------------------------------- the checker itself
def test_the_checker_finds_the_defects_it_promises(tmp_path):
    from matplotlib.ticker import NullFormatter

    from edgeopt_plugins._plots import log_axis, mark_empty_bars, new_figure

    fig, axes = new_figure(1, 3, figsize=(6, 2.5))
    axes[0].scatter([2.0, 5.0, 20.0], [2.0, 5.0, 20.0])
    axes[0].set_xscale("log")
    axes[0].xaxis.set_minor_formatter(NullFormatter())  # what overview.png did: only "10" is labelled
    axes[0].set_ylabel("a long label that runs into its neighbour " * 2)
    axes[1].set_ylabel("another very long label running into the first panel " * 2)
    axes[1].bar(["a", "b"], [0.0, 2.0])
    problems = "\n".join(layout_problems(fig))
    assert "x axis (log) shows 1 tick label" in problems
    assert "runs into panel 1" in problems
    assert "a bar of height 0.0" in problems
    assert "panel 3: nothing drawn" in problems

    fig, ax = new_figure(figsize=(4, 3))
    ax.scatter([2.0, 5.0, 20.0], [2.0, 5.0, 20.0])
    log_axis(ax, "x")
    bars = ax.bar([4.0, 6.0], [0.0, 2.0])
    mark_empty_bars(ax, bars, [0.0, 2.0])
    assert layout_problems(fig) == []


def test_log_axis_labels_a_view_shorter_than_a_decade():
    from edgeopt_plugins._plots import log_axis, new_figure

    for low, high in [(2.0, 20.0), (4.0, 7.5), (0.01, 5e4), (1.5, 2.5)]:
        fig, ax = new_figure(figsize=(3, 3))
        ax.plot([1, 2], [low, high])
        log_axis(ax, "y")
        assert layout_problems(fig) == [], (low, high)


# ----------------------------------------------------------------- the library's plots
def test_overview_plot(saved_figures, data_dir, tmp_path):
    from edgeopt_plugins.cli._overview import _plot

    regrets = {"eyeriss": (0.61, 0.26, 0.41), "2080ti_256": (0.0, 0.0, 2.35), "2080ti_1": (0.51, 0.0, 0.51),
               "titan_rtx_32": (0.45, 0.45, 1.48)}
    rows = [{"target": t, "budget_ms": b, "spearman_vs_proxy": s,
             **{f"{m}_regret": r for m, r in zip(("proxy_only", "approach1", "approach2"), regrets[t])}}
            for (t, b, s) in [("eyeriss", 4.87, 0.50), ("2080ti_256", 15.2, 0.88), ("2080ti_1", 6.9, 0.94),
                              ("titan_rtx_32", 5.76, 0.97)]]
    _plot({"proxy": "gold_6226", "targets": rows}, data_dir, tmp_path / "overview.png")
    _check(saved_figures, [tmp_path / "overview.png"])


def _fleet_rows(n, *, refine=False, seed=0):
    rng = np.random.default_rng(seed)
    rows = [{"kind": "table", "measured_latency_ms": 5.0, "violated": False, "regret": 0.3, "seconds": 0.002},
            {"kind": "profile", "measured_latency_ms": None, "regret": None, "seconds": 0.002}]
    for i in range(n):
        row = {"kind": "simulated", "measured_latency_ms": 4.0, "violated": bool(i % 10 == 0),
               "regret": float(rng.exponential(1.0)), "seconds": 0.0019}
        if refine:
            row.update(refined_regret=float(rng.exponential(0.3)), refine_seconds=float(rng.uniform(0.5, 2.0)))
        rows.append(row)
    return rows


@pytest.mark.parametrize("refine", [False, True])
def test_fleet_plot(saved_figures, tmp_path, refine):
    from edgeopt_plugins.fleet._report import _plot

    _plot(_fleet_rows(200, refine=refine), tmp_path / "fleet.png")
    _check(saved_figures, [tmp_path / "fleet.png"])
    panels = saved_figures[0]["figure"].axes
    assert [t.get_text() for t in panels[0].texts] == ["0/1", "no true latency", "20/200"]
    assert [t.get_text() for t in panels[2].get_xticklabels()] == (["one-shot", "refine"] if refine else ["one-shot"])


@pytest.mark.parametrize("devices", [4, 27])
def test_monotonicity_heatmap(saved_figures, tmp_path, devices):
    from edgeopt_plugins.cli._monotonicity import _heatmap
    from edgeopt_plugins.predictors import monotonicity_report

    report = monotonicity_report(fleet(devices, 200, seed=1), methods=("spearman", "kendall"))
    _heatmap(report, tmp_path / "heat.png")
    _check(saved_figures, [tmp_path / "heat.png"])


# ----------------------------------------------------------------- the benchmarks' plots, on their stored results
def test_approach1_plot(saved_figures, tmp_path):
    from benchmarks.approach1 import _plot

    _plot(_stored("approach1"), tmp_path)
    _check(saved_figures, [tmp_path / "approach1.png"])


def test_approach2_plots(saved_figures, tmp_path):
    from benchmarks.approach2 import _plots

    paths = _plots(_stored("approach2"), tmp_path)
    _check(saved_figures, [Path(p) for p in paths.values()], figures=3)


def test_fleet_scale_plot(saved_figures, tmp_path):
    from benchmarks.fleet_scale import _plot

    _plot(_stored("fleet_scale"), tmp_path)
    _check(saved_figures, [tmp_path / "fleet_scale.png"])


def test_search_plot_marks_methods_that_never_got_there(saved_figures, tmp_path):
    from benchmarks.search import _plot

    _plot(_stored("search")["summary"], tmp_path / "search.png")
    _check(saved_figures, [tmp_path / "search.png"])
    assert "not reached" in [t.get_text() for t in saved_figures[0]["figure"].axes[0].texts]


def test_devices_plot(saved_figures, tmp_path):
    from benchmarks.devices import _plot

    rng = np.random.default_rng(0)
    pairs = lambda centre: np.clip(rng.normal(centre, 0.1, 351), -1, 1)  # noqa: E731
    realism = {"_real_pairwise": pairs(0.8), "real_devices": 27,
               "simulated": {"real": {"_pairwise": pairs(0.8), "target": 0.83}, "0.5": {"_pairwise": pairs(0.5)}}}
    loo = {"devices": [{"nearest_seen_real": float(v), "nearest_simulated": float(v) - 0.01}
                       for v in rng.uniform(0.9, 1.0, 27)]}
    first = rng.uniform(1, 8, 40)
    torch_rows = [{"_runs": (first, first * rng.normal(1, 0.02, 40)), "setting": "t1-b1-fp32",
                   "spearman_two_runs": 0.995}]
    _plot(realism, loo, torch_rows, tmp_path)
    _check(saved_figures, [tmp_path / "devices.png"])
