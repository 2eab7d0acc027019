"""benchmarks.search: saved rows survive reruns, interrupted runs and merges (nothing silently dropped)."""

from __future__ import annotations

import json

import pytest

import benchmarks._common as common
import benchmarks.search as search

SETTINGS = {"quick": False, "devices": ["pixel3"], "families": ["snapdragon_845"], "percentiles": [10, 20, 50],
            "seeds": 1, "tolerance": 0.1, "profile": 10, "default_cap": 300, "seed_limits": {"optuna_gp": 1}}


def rows(measurements: int) -> list[dict]:
    return [{"device": "pixel3", "family": "snapdragon_845", "percentile": p, "seed": 0, "measurements": measurements,
             "trials": measurements, "cap": 300, "sampler_ms_per_trial": 1.0} for p in (10, 20, 50)]


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    monkeypatch.setattr(search, "RESULTS", tmp_path)
    return tmp_path


def test_each_save_keeps_the_saved_rows_of_methods_it_did_not_measure(results):
    search._save(SETTINGS, {"optuna_tpe": rows(40)}, {})
    search._save(SETTINGS, {"edgeopt_proxy_unknown": rows(12)}, {"edgeopt_proxy_unknown": 3.0})
    saved = search._save(SETTINGS, {"edgeopt_proxy_unknown": rows(11)}, {})

    assert set(saved["runs"]) == {"optuna_tpe", "edgeopt_proxy_unknown"}
    assert saved["summary"]["edgeopt_proxy_unknown"]["median_measurements"] == 11  # replaced, not appended
    assert saved["overhead"] == {"edgeopt_proxy_unknown": 3.0}
    assert saved["versus_tpe"]["edgeopt_proxy_unknown"]["all_not_worse"]
    assert (results / "search.png").exists()


def test_a_save_of_another_size_starts_afresh(results):
    search._save(SETTINGS, {"optuna_tpe": rows(40)}, {})
    quick = search._save({**SETTINGS, "quick": True}, {"optuna_random": rows(90)}, {})
    assert set(quick["runs"]) == {"optuna_random"}


def test_rerun_refuses_a_saved_result_of_another_size(results):
    search._save({**SETTINGS, "quick": True}, {"optuna_tpe": rows(40)}, {})
    with pytest.raises(SystemExit, match="another size.*quick=True"):
        search.run(rerun=["optuna_tpe"], progress=False, methods={"optuna_tpe": lambda task, cap: ([], 0, 0.0)})
    assert set(json.loads((results / "search.json").read_text())["runs"]) == {"optuna_tpe"}


def test_merge_adds_only_the_methods_the_saved_result_lacks(results, tmp_path_factory):
    other = tmp_path_factory.mktemp("old") / "search.json"
    search._save(SETTINGS, {"optuna_tpe": rows(40), "edgeopt_proxy_named": rows(30)}, {"optuna_tpe": 4.0})
    other.write_text((results / "search.json").read_text())
    (results / "search.json").unlink()
    search._save(SETTINGS, {"edgeopt_proxy_named": rows(14)}, {})

    merged = search.merge(other)

    assert set(merged["runs"]) == {"optuna_tpe", "edgeopt_proxy_named"}
    assert merged["summary"]["edgeopt_proxy_named"]["median_measurements"] == 14  # ours kept, not the old one
    assert merged["overhead"] == {"optuna_tpe": 4.0}
    other.write_text(json.dumps({**json.loads(other.read_text()), "seeds": 5}))
    with pytest.raises(SystemExit, match="not a search result of the saved size"):
        search.merge(other)


def test_trace_says_how_each_seed_nears_the_optimum(results):
    rows = search.trace("pixel3", 50, ["optuna_random"], quick=True)

    assert [(r["method"], r["seed"]) for r in rows] == [("optuna_random", 0), ("optuna_random", 1)]
    for r in rows:
        steps = [v for v in r["within"].values() if v is not None]
        assert steps == sorted(steps) and 0.0 < r["fits"] < 1.0  # looser tolerances are reached first
    with pytest.raises(SystemExit, match="unknown method"):
        search.trace("pixel3", 50, ["optuna_tpe_typo"], quick=True)


def test_a_trace_is_kept_with_the_result_and_reported(results):
    search._save({**SETTINGS, "quick": True}, {"optuna_tpe": rows(40)}, {})
    search.trace("pixel3", 50, ["optuna_random"], quick=True)
    saved = search._save({**SETTINGS, "quick": True}, {"optuna_nsga2": rows(50)}, {})

    assert [r["method"] for r in saved["traces"]["pixel3 p50"]] == ["optuna_random"] * 2
    assert "How the runs near the optimum on pixel3 p50" in search.report(saved)
