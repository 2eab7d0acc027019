"""Defects from the reliability audit that are not one bad input line: files, signals, API types, terminals."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from edgeopt_plugins.devices import DeviceProfile
from edgeopt_plugins.exceptions import InputError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory, nb201_latency):
    root = tmp_path_factory.mktemp("reliability")
    profile = DeviceProfile.from_table(nb201_latency, "pixel3", k=10, seed=0)
    profile.write(root / "phone.csv")
    (root / "archs.csv").write_text("arch\n" + "\n".join(nb201_latency.archs[:5]) + "\n")
    return root


def _predict(run_cli, files, data_dir, out, *extra):
    return run_cli("predict", "--data-dir", data_dir, "--profile", files / "phone.csv", "--archs",
                   files / "archs.csv", "--out", out, "-q", *extra)


@pytest.mark.parametrize("which", ["phone.csv", "archs.csv"])
def test_out_equal_to_an_input_is_refused_and_the_input_kept(run_cli, files, data_dir, which):
    before = (files / which).read_bytes()
    code, _, err = _predict(run_cli, files, data_dir, files / which)
    assert code == 2 and "would overwrite it" in err and len(err.strip().splitlines()) == 1
    assert (files / which).read_bytes() == before
    code, _, err = _predict(run_cli, files, data_dir, f"{files}/./{which}")  # another spelling of the same file
    assert code == 2 and "would overwrite it" in err


def test_profile_out_equal_to_its_archs_file_is_refused(run_cli, files):
    before = (files / "archs.csv").read_bytes()
    code, _, err = run_cli("profile", "--archs-file", files / "archs.csv", "--out", files / "archs.csv", "-q")
    assert code == 2 and "--archs-file input" in err
    assert (files / "archs.csv").read_bytes() == before


def test_output_files_respect_the_umask_and_keep_an_existing_mode(run_cli, files, data_dir, tmp_path):
    out = tmp_path / "pred.csv"
    old = os.umask(0o022)
    try:
        assert _predict(run_cli, files, data_dir, out)[0] == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o644  # was 0600 whatever the umask
        os.chmod(out, 0o664)
        assert _predict(run_cli, files, data_dir, out)[0] == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o664
    finally:
        os.umask(old)


def test_a_utf8_byte_order_mark_is_accepted(run_cli, files, data_dir, tmp_path):
    for name in ("phone.csv", "archs.csv"):
        (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + (files / name).read_bytes())
    (tmp_path / "phone.json").write_bytes((files / "phone.json").read_bytes())
    code, _, err = run_cli("predict", "--data-dir", data_dir, "--profile", tmp_path / "phone.csv", "--archs",
                           tmp_path / "archs.csv", "--out", tmp_path / "pred.csv", "-q")
    assert code == 0, err
    assert len((tmp_path / "pred.csv").read_text().splitlines()) == 6


def test_control_characters_of_a_sidecar_name_never_reach_the_terminal(run_cli, files, tiny_model_dir, data_dir,
                                                                        tmp_path):
    (tmp_path / "evil.csv").write_bytes((files / "phone.csv").read_bytes())
    sidecar = json.loads((files / "phone.json").read_text())
    (tmp_path / "evil.json").write_text(json.dumps({**sidecar, "name": "evil\x1b[2J\x1b]0;pwned\x07\rok"}))
    code, out, err = run_cli("recommend", "--model", tiny_model_dir, "--profile", tmp_path / "evil.csv",
                             "--latency-budget-ms", "0.0001")
    assert code == 2 and "evil" in err
    outputs = [err]
    code, out, err = run_cli("recommend", "--model", tiny_model_dir, "--profile", tmp_path / "evil.csv",
                             "--latency-budget-ms", "1000")
    assert code == 0 and "evil" in out
    outputs += [out, err]
    code, out, err = run_cli("predict", "--data-dir", data_dir, "--profile", tmp_path / "evil.csv", "--archs",
                             files / "archs.csv", "--out", tmp_path / "pred.csv")
    assert code == 0 and "evil" in out
    for text in [*outputs, out, err]:
        assert not any(ord(c) < 32 and c not in "\n\t" for c in text)


def test_predict_never_writes_a_prediction_that_is_not_a_number(run_cli, files, tiny_model_dir, tmp_path,
                                                                 monkeypatch):
    from edgeopt_plugins.optimizer import ConditionedModel

    real = ConditionedModel.predict

    def broken(self, *args, **kwargs):
        mean, upper = real(self, *args, **kwargs)
        return np.full_like(mean, np.nan), upper

    monkeypatch.setattr(ConditionedModel, "predict", broken)
    code, _, err = run_cli("predict", "--method", "conditioned", "--model", tiny_model_dir, "--profile",
                           files / "phone.csv", "--archs", files / "archs.csv", "--out", tmp_path / "p.csv")
    assert code == 2 and "not finite" in err
    assert not (tmp_path / "p.csv").exists()


def test_fit_checks_its_out_folder_before_training(run_cli, data_dir, tmp_path, monkeypatch):
    import edgeopt_plugins.cli._fit as fit_cli

    monkeypatch.setattr(fit_cli, "fit_from_data", lambda *a, **k: pytest.fail("trained before checking --out"))
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = run_cli("fit", "--data-dir", data_dir, "--config", "tiny", "--out", tmp_path)
    assert code == 2 and "not empty" in err
    code, _, err = run_cli("fit", "--data-dir", data_dir, "--config", "tiny", "--out", tmp_path / "notes.txt")
    assert code == 2 and "not a folder" in err


_SLOW_WRITE = textwrap.dedent("""
    import os, sys, time
    real_fsync = os.fsync
    def slow(fd):
        print("writing", flush=True)
        time.sleep(60)
    os.fsync = slow
    from edgeopt_plugins.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def test_sigterm_during_a_write_leaves_no_temporary_file(files, data_dir, tmp_path):
    out = tmp_path / "pred.csv"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITE, "predict", "--data-dir", str(data_dir), "--profile",
                             str(files / "phone.csv"), "--archs", str(files / "archs.csv"), "--out", str(out), "-q"],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"  # inside atomic_write, the temporary file exists
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.strip() == "edgeopt predict: terminated"
    assert list(tmp_path.iterdir()) == []


def test_api_type_mistakes_are_input_errors(tiny_model_dir, files):
    from edgeopt_plugins.samplers import DeviceConditionedSampler

    profile = DeviceProfile.read(files / "phone.csv")
    for kwargs, fragment in [({"seed": -1}, "seed must be an integer"), ({"seed": 2**64}, "seed must be"),
                             ({"model": 123}, "model must be a ConditionedModel"),
                             ({"confidence": "high"}, "confidence must be a number"),
                             ({"latency_budget_ms": 1e308}, "plausible range")]:
        args = {"model": tiny_model_dir, "profile": profile, "latency_budget_ms": 10.0, **kwargs}
        with pytest.raises(InputError, match=fragment):
            DeviceConditionedSampler(**args)


def test_extreme_budgets_and_tradeoffs_are_refused_without_warnings(run_cli, files, tiny_model_dir, recwarn):
    base = ["recommend", "--model", tiny_model_dir, "--profile", files / "phone.csv"]
    for extra, fragment in [(["--latency-budget-ms", "1e308"], "from 1e-06 to 1e+07"),
                            (["--latency-budget-ms", "5e-324"], "from 1e-06 to 1e+07"),
                            (["--latency-budget-ms", "10", "--tradeoff", "1e308"], "from 0 to 1e+06")]:
        code, _, err = run_cli(*base, *extra)
        assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


@pytest.mark.parametrize("argv", [
    ["fit", "--simulated-devices", str(10**8), "--config", "tiny"],
    ["profile", "--archs", "2", "--batch", str(10**6)],
    ["profile", "--archs", "2", "--resolution", str(10**5)],
])
def test_sizes_that_cannot_fit_in_memory_are_refused_up_front(run_cli, data_dir, tmp_path, argv):
    out = ["--out", tmp_path / ("m" if argv[0] == "fit" else "p.csv")]
    start = time.perf_counter()
    code, _, err = run_cli(*argv, *([] if argv[0] == "profile" else ["--data-dir", data_dir]), *out, "-q")
    assert code == 2 and "of memory, more than the" in err, err
    assert time.perf_counter() - start < 60
    assert list(tmp_path.iterdir()) in ([], [tmp_path / "m"])
