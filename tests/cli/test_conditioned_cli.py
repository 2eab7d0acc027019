"""`edgeopt fit / predict --method conditioned / recommend`: files, JSON, and one-line errors with exit 2."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from edgeopt_plugins.devices import DeviceProfile


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, data_dir, nb201_latency):
    from edgeopt_plugins.cli import main

    root = tmp_path_factory.mktemp("cli")
    code = main(["fit", "--space", "nb201", "--data-dir", str(data_dir), "--out", str(root / "model"),
                 "--config", "tiny", "--exclude-devices", "pixel3", "--quiet"])
    assert code == 0
    DeviceProfile.from_table(nb201_latency, "pixel3", k=10, seed=0).write(root / "pixel3.csv")
    pd.DataFrame({"arch": nb201_latency.archs[:40], "note": range(40)}).to_csv(root / "archs.csv", index=False)
    return root


def test_fit_writes_a_model_folder(workdir):
    names = sorted(p.name for p in (workdir / "model").iterdir())
    assert names[0] == "model.json" and len(names) == 2 and names[1].startswith("tensors-")
    meta = json.loads((workdir / "model" / "model.json").read_text())
    assert meta["meta"]["info"]["excluded_devices"] == ["pixel3"]


def test_predict_writes_latency_and_upper_bound(run_cli, workdir):
    out = workdir / "pred.csv"
    code, stdout, err = run_cli("predict", "--method", "conditioned", "--model", workdir / "model",
                                "--profile", workdir / "pixel3.csv", "--archs", workdir / "archs.csv",
                                "--out", out, "--confidence", "0.9")
    assert code == 0, err
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["arch", "latency_ms", "latency_upper_ms"] and len(frame) == 40
    assert (frame.latency_upper_ms > frame.latency_ms).all() and (frame.latency_ms > 0).all()


def test_recommend_json_is_best_first_within_budget(run_cli, workdir, nb201_latency):
    budget = float(np.quantile(nb201_latency.column("pixel3"), 0.6))
    code, stdout, err = run_cli("recommend", "--model", workdir / "model", "--profile", workdir / "pixel3.csv",
                                "--latency-budget-ms", budget, "--top-k", "3", "--json")
    assert code == 0, err
    designs = json.loads(stdout)["designs"]
    assert 1 <= len(designs) <= 3
    assert set(designs[0]) == {"arch", "predicted_latency_ms", "latency_upper_ms", "predicted_accuracy"}
    assert all(d["latency_upper_ms"] <= budget for d in designs)
    acc = [d["predicted_accuracy"] for d in designs]
    assert acc == sorted(acc, reverse=True)


def test_recommend_among_candidates_prints_a_table(run_cli, workdir, nb201_latency):
    code, stdout, _ = run_cli("recommend", "--model", workdir / "model", "--profile", workdir / "pixel3.csv",
                              "--latency-budget-ms", "1000", "--candidates", workdir / "archs.csv", "--top-k", "2")
    assert code == 0 and "predicted_accuracy" in stdout
    listed = set(nb201_latency.archs[:40])
    assert sum(line.split()[0] in listed for line in stdout.splitlines()[3:]) == 2


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--latency-budget-ms", "0.0001"], "no design of the space has a 95% latency upper bound within 0.0001 ms; the "
                                        "smallest budget that works at 95% confidence is"),
    (["--latency-budget-ms", "5", "--candidates", "BADCANDS"], "line 3"),
    (["--latency-budget-ms", "-3"], "expected a number from 1e-06 to 1e+07"),
    (["--latency-budget-ms", "5", "--confidence", "1.5"], "between 0 and 1"),
    (["--latency-budget-ms", "5", "--profile", "BADPROFILE"], "negative"),
])
def test_recommend_errors_are_one_line_and_exit_2(run_cli, workdir, argv, fragment):
    (workdir / "bad_cands.csv").write_text("arch\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|\n|conv9~0|\n")
    (workdir / "bad_profile.csv").write_text("arch,latency_ms\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,-1\n")
    argv = [str(workdir / "bad_cands.csv") if a == "BADCANDS" else str(workdir / "bad_profile.csv")
            if a == "BADPROFILE" else a for a in argv]
    base = ["recommend", "--model", workdir / "model"]
    if "--profile" not in argv:
        base += ["--profile", workdir / "pixel3.csv"]
    code, _, err = run_cli(*base, *argv)
    assert code == 2
    assert fragment in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1  # argparse adds usage lines


def test_tampered_model_exits_2(run_cli, workdir, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for p in (workdir / "model").iterdir():
        (bad / p.name).write_bytes(p.read_bytes())
    (bad / "evil.pkl").write_bytes(b"\x80\x04K\x01.")
    code, _, err = run_cli("predict", "--method", "conditioned", "--model", bad, "--profile", workdir / "pixel3.csv",
                           "--archs", workdir / "archs.csv", "--out", tmp_path / "p.csv")
    assert code == 2 and "evil.pkl" in err
    assert not (tmp_path / "p.csv").exists()


def test_predict_without_model_is_a_clear_error(run_cli, workdir, tmp_path):
    code, _, err = run_cli("predict", "--method", "conditioned", "--profile", workdir / "pixel3.csv",
                           "--archs", workdir / "archs.csv", "--out", tmp_path / "p.csv")
    assert code == 2 and "--model" in err
