"""The `edgeopt` entry point: the default overview job, `data info`, and clean failures."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def test_default_job_writes_table_json_and_plot(run_cli, data_dir, tmp_path):
    code, out, err = run_cli("--data-dir", data_dir, "--out", tmp_path, "--fit-config", "tiny", "--fleet", "40")
    assert code == 0, err
    assert "proxy device" in out and "regret" in out and "fleet: 40 simulated devices" in out
    summary = json.loads((tmp_path / "overview.json").read_text())
    assert len(summary["targets"]) == 4
    for row in summary["targets"]:
        for method in ("proxy_only", "approach1", "approach2"):
            assert row[f"{method}_regret"] >= 0 or row[f"{method}_over_budget"]
    assert summary["fleet"]["devices"] == 40
    assert (tmp_path / "overview.png").stat().st_size > 10_000
    assert (tmp_path / "overview.csv").read_text().startswith("target,")
    assert (tmp_path / "model" / "model.json").exists()  # cached for the next run
    # One line per stage on stderr, and each figure says what it is and where its benchmark-wide
    # counterpart lives.
    assert "[1/4] NB201: 15,625 architectures on 27 devices" in err
    assert f"[2/4] model: fitting the approach-2 model without the targets (--fit-config tiny) into {tmp_path}" in err
    assert "[3/4] each target" in err and "[4/4] fleet: building 40 simulated devices" in err
    words = " ".join(out.split())
    assert 'docs/benchmarks.md, "Approach 2"' in words and 'docs/benchmarks.md, "Fleet scale"' in words
    # A rerun says that it reuses the cached model.
    target = summary["targets"][0]["target"]
    code, _, err = run_cli("--data-dir", data_dir, "--out", tmp_path, "--fit-config", "tiny", "--fleet", "0",
                           "--targets", target)
    assert code == 0, err
    assert f"[2/4] model: reusing {tmp_path / 'model'} (fitted earlier without the targets" in err
    assert "[4/4] fleet: skipped" in err


def test_overview_json_with_chosen_devices_and_a_model(run_cli, data_dir, tmp_path, tiny_model_dir):
    code, out, err = run_cli("overview", "--data-dir", data_dir, "--out", tmp_path, "--proxy", "raspi4",
                             "--targets", "pixel3,gold_6240", "--model", tiny_model_dir, "--fleet", "0", "--json",
                             "--quiet")
    assert code == 0 and err == ""  # --quiet: no stage lines, no progress bars
    summary = json.loads(out)
    assert summary["proxy"] == "raspi4" and [r["target"] for r in summary["targets"]] == ["pixel3", "gold_6240"]
    assert "fleet" not in summary
    code, _, err = run_cli("overview", "--data-dir", data_dir, "--out", tmp_path, "--targets", "raspi4",
                           "--model", tiny_model_dir, "--fleet", "0")
    assert code == 2 and "was trained on target device(s) raspi4" in err


def test_data_info_lists_all_tables(run_cli, data_dir):
    code, out, _ = run_cli("data", "info", "--data-dir", data_dir, "--json")
    assert code == 0
    tables = {(t["space"], t["metric"]): t for t in json.loads(out)["tables"]}
    assert tables[("nb201", "latency_ms")]["archs"] == 15625
    assert len(tables[("nb201", "latency_ms")]["devices"]) == 27
    assert set(tables) >= {("fbnet", "latency_ms"), ("ofa", "latency_ms"), ("mnasnet", "accuracy")}
    mnasnet = tables[("mnasnet", "latency_ms")]
    assert mnasnet["missing"] == sum(mnasnet["missing_by_device"].values()) > 0
    assert 0 < mnasnet["incomplete_archs"] <= mnasnet["missing"]
    code, out, _ = run_cli("data", "info", "--data-dir", data_dir)
    assert code == 0
    assert "missing cells: (architecture, device) pairs without a measurement" in out
    assert (f"mnasnet latency_ms: {mnasnet['missing']} of {mnasnet['archs'] * 8:,} cells, "
            f"{mnasnet['incomplete_archs']} architectures; by device: tpuv3_per_image") in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["data", "info", "--data-dir", "/no/such/folder"], "does not exist"),
        (["overview", "--data-dir", "DATA", "--proxy", "nope"], "unknown device 'nope'"),
        (["overview", "--data-dir", "DATA", "--budget-percentile", "0"], "--budget-percentile must be in"),
        (["overview", "--data-dir", "DATA", "--dataset", "mnist"], "unknown device 'mnist'"),
        (["no-such-command"], "unknown command 'no-such-command'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(run_cli, data_dir, tmp_path, argv, fragment):
    argv = [str(data_dir) if a == "DATA" else a for a in argv] + (["--out", str(tmp_path)] if "overview" in argv else [])
    code, out, err = run_cli(*argv)
    assert code == 2
    assert fragment in err
    assert "Traceback" not in err
    assert not list(tmp_path.glob("*.png"))


def test_console_script_module_runs(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "edgeopt_plugins.cli", "data", "info", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
