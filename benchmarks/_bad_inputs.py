"""A catalog of bad inputs for every ``edgeopt`` command, and the check that each is rejected cleanly.

"Cleanly" means: exit code 2, exactly one line on stderr that says what is wrong,
no traceback, and no output file left behind. The test suite runs the whole
catalog (tests/test_bad_inputs.py) and the reliability benchmark reports it.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Case", "build_cases", "check_case", "prepare_workdir"]


@dataclass(frozen=True)
class Case:
    """One bad input: the command line, the files it must not create, what the message says."""

    name: str
    category: str
    argv: tuple[str, ...]
    expect: str
    outputs: tuple[str, ...] = field(default=())


def prepare_workdir(work: Path, data_dir: Path, model_dir: Path) -> dict[str, str]:
    """Write the bad (and good) input files the cases use; returns name -> path."""
    from edgeopt_plugins.data import load_table
    from edgeopt_plugins.devices import DeviceProfile

    work.mkdir(parents=True, exist_ok=True)
    table = load_table("nb201", data_dir=data_dir)
    good = DeviceProfile.from_table(table, "pixel3", k=10, seed=0)
    a, b = good.archs[0], good.archs[1]
    files = {
        "good": good.write(work / "good.csv"),
        "empty": "",
        "header_only": "arch,latency_ms\n",
        "wrong_columns": "name,ms\nx,1\n",
        "missing_latency": f"arch\n{a}\n",
        "unknown_arch": f"arch,latency_ms\n{a},1.0\n|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|,2.0\n",
        "malformed_arch": f"arch,latency_ms\n{a},1.0\nnot-an-architecture,2.0\n",
        "nan": f"arch,latency_ms\n{a},nan\n",
        "inf": f"arch,latency_ms\n{a},inf\n",
        "negative": f"arch,latency_ms\n{a},-3\n",
        "zero": f"arch,latency_ms\n{a},0\n",
        "text_latency": f"arch,latency_ms\n{a},fast\n",
        "conflicting_duplicates": f"arch,latency_ms\n{a},1.0\n{b},2.0\n{a},1.5\n",
        "one_row": f"arch,latency_ms\n{a},1.0\n",
        "archs_unknown": f"arch\n{a}\n|nor_conv_7x7~0|+|none~0|none~1|+|none~0|none~1|none~2|\n",
        "archs_good": f"arch\n{a}\n{b}\n",
        "fbnet_bad_json": "arch,latency_ms\n\"[0, 1, 2\",1.0\n",
    }
    paths: dict[str, str] = {}
    for name, content in files.items():
        path = work / f"{name}.csv"
        if isinstance(content, str):
            path.write_text(content)
        paths[name] = str(path)
    sidecar = json.loads((work / "good.json").read_text())
    for name in files:  # the sidecar names the space, so only the CSV is wrong
        if name not in ("good", "archs_unknown", "archs_good") and not (work / f"{name}.json").exists():
            (work / f"{name}.json").write_text(json.dumps({**sidecar, "name": name}))
    (work / "fbnet_bad_json.json").write_text(json.dumps({"format": 1, "space": "fbnet", "name": "fb"}))
    # Model folders: another version, a tampered tensor file, a pickle payload next to the model.
    for variant in ("model_v99", "model_tampered", "model_pickle"):
        shutil.copytree(model_dir, work / variant, dirs_exist_ok=True)
    manifest = json.loads((work / "model_v99" / "model.json").read_text())
    manifest["format_version"] = 99
    (work / "model_v99" / "model.json").write_text(json.dumps(manifest))
    tensors = work / "model_tampered" / "tensors.safetensors"
    data = bytearray(tensors.read_bytes())
    data[-8:] = b"\x00" * 8
    tensors.write_bytes(bytes(data))
    (work / "model_pickle" / "payload.pkl").write_bytes(
        b"\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x04true\x94\x85\x94R\x94."
    )
    paths.update({"model": str(model_dir), **{v: str(work / v) for v in ("model_v99", "model_tampered", "model_pickle")}})
    paths["data"] = str(data_dir)
    paths["work"] = str(work)
    return paths


def build_cases(p: dict[str, str]) -> list[Case]:
    """Every case, with paths from :func:`prepare_workdir`."""
    w = p["work"]
    out = f"{w}/out.csv"
    cases: list[Case] = []

    def add(name: str, category: str, argv: list[str], expect: str, outputs: tuple[str, ...] = ()) -> None:
        cases.append(Case(name, category, tuple(argv), expect, outputs))

    # --- predict (both methods) on malformed profiles
    bad_profiles = {
        "empty": "file is empty", "header_only": "no measurements", "wrong_columns": "missing column",
        "missing_latency": "missing column(s) latency_ms", "unknown_arch": "unknown op 'conv_9x9'",
        "malformed_arch": "not-an-architecture", "nan": "latency_ms is nan", "inf": "latency_ms is inf",
        "negative": "latency_ms is negative", "zero": "latency_ms is zero", "text_latency": "is not a number",
        "conflicting_duplicates": "already measured on line 2",
    }
    for bad, expect in bad_profiles.items():
        for method in ("proxy", "conditioned"):
            argv = ["predict", "--method", method, "--data-dir", p["data"], "--profile", p[bad], "--archs",
                    p["archs_good"], "--out", out]
            if method == "conditioned":
                argv += ["--model", p["model"]]
            add(f"predict {method}: {bad} profile", "malformed profile", argv, expect, (out,))
        add(f"recommend: {bad} profile", "malformed profile",
            ["recommend", "--model", p["model"], "--profile", p[bad], "--latency-budget-ms", "10"], expect)
    add("predict proxy: one usable row", "too few measurements",
        ["predict", "--method", "proxy", "--data-dir", p["data"], "--profile", p["one_row"], "--archs",
         p["archs_good"], "--out", out], "at least 2", (out,))
    add("predict: archs outside the space", "unknown architecture",
        ["predict", "--method", "proxy", "--data-dir", p["data"], "--profile", p["good"], "--archs",
         p["archs_unknown"], "--out", out], "nor_conv_7x7", (out,))
    add("predict: proxy not in the table", "unknown device",
        ["predict", "--method", "proxy", "--data-dir", p["data"], "--profile", p["good"], "--archs",
         p["archs_good"], "--proxy", "pixel99", "--out", out], "pixel99", (out,))
    add("predict: malformed fbnet JSON", "malformed architecture",
        ["predict", "--method", "proxy", "--space", "fbnet", "--data-dir", p["data"], "--profile",
         p["fbnet_bad_json"], "--archs", p["archs_good"], "--out", out], "malformed JSON", (out,))
    add("predict: unknown space", "unknown space",
        ["predict", "--method", "proxy", "--space", "nb202", "--data-dir", p["data"], "--profile", p["good"],
         "--archs", p["archs_good"], "--out", out], "nb202", (out,))
    add("predict: missing profile file", "unreadable path",
        ["predict", "--method", "proxy", "--data-dir", p["data"], "--profile", f"{w}/nope.csv", "--archs",
         p["archs_good"], "--out", out], "not found", (out,))
    add("predict: profile is a folder", "unreadable path",
        ["predict", "--method", "proxy", "--data-dir", p["data"], "--profile", w, "--archs", p["archs_good"],
         "--out", out], "is a folder", (out,))
    add("predict: output not a csv", "bad output path",
        ["predict", "--method", "proxy", "--data-dir", p["data"], "--profile", p["good"], "--archs",
         p["archs_good"], "--out", f"{w}/out.txt"], ".csv", (f"{w}/out.txt",))
    add("predict: missing data folder", "unreadable path",
        ["predict", "--method", "proxy", "--data-dir", f"{w}/no-data", "--profile", p["good"], "--archs",
         p["archs_good"], "--out", out], "does not exist", (out,))
    # --- models
    for variant, expect in (("model_v99", "version"), ("model_tampered", "checksum"), ("model_pickle", "payload.pkl")):
        add(f"recommend: {variant}", "bad model folder",
            ["recommend", "--model", p[variant], "--profile", p["good"], "--latency-budget-ms", "10"], expect)
        add(f"predict conditioned: {variant}", "bad model folder",
            ["predict", "--method", "conditioned", "--model", p[variant], "--profile", p["good"], "--archs",
             p["archs_good"], "--out", out], expect, (out,))
    add("recommend: missing model folder", "unreadable path",
        ["recommend", "--model", f"{w}/no-model", "--profile", p["good"], "--latency-budget-ms", "10"], "no-model")
    add("recommend: budget below every design", "infeasible budget",
        ["recommend", "--model", p["model"], "--profile", p["good"], "--latency-budget-ms", "0.0001"], "no design")
    add("recommend: negative budget", "bad argument",
        ["recommend", "--model", p["model"], "--profile", p["good"], "--latency-budget-ms", "-5"], "budget")
    add("recommend: candidates with unknown archs", "unknown architecture",
        ["recommend", "--model", p["model"], "--profile", p["good"], "--latency-budget-ms", "50", "--candidates",
         p["archs_unknown"]], "nor_conv_7x7")
    add("recommend: confidence out of range", "bad argument",
        ["recommend", "--model", p["model"], "--profile", p["good"], "--latency-budget-ms", "10", "--confidence",
         "1.5"], "between 0 and 1")
    # --- other commands
    add("monotonicity: unknown device", "unknown device",
        ["monotonicity", "--data-dir", p["data"], "--devices", "pixel3,nope", "--json"], "nope")
    add("monotonicity: unknown space", "unknown space", ["monotonicity", "--space", "nb999", "--data-dir", p["data"]],
        "nb999")
    add("overview: unknown proxy", "unknown device",
        ["overview", "--data-dir", p["data"], "--proxy", "nope", "--out", f"{w}/ov"], "nope", (f"{w}/ov/overview.png",))
    add("data info: missing folder", "unreadable path", ["data", "info", "--data-dir", f"{w}/nothing"], "does not exist")
    add("profile: unknown space", "unknown space", ["profile", "--space", "resnet", "--archs", "2", "--out", out],
        "resnet", (out,))
    add("profile: bad archs file", "unknown architecture",
        ["profile", "--space", "nb201", "--archs-file", p["archs_unknown"], "--out", out], "nor_conv_7x7", (out,))
    add("fit: unknown space", "unknown space",
        ["fit", "--space", "nb000", "--data-dir", p["data"], "--out", f"{w}/m"], "nb000", (f"{w}/m/model.json",))
    add("fleet: no devices", "bad argument",
        ["fleet", "--model", p["model"], "--data-dir", p["data"], "--budget-percentile", "30", "--out", f"{w}/f1"],
        "no target devices", (f"{w}/f1/designs.csv",))
    add("fleet: unknown table device", "unknown device",
        ["fleet", "--model", p["model"], "--data-dir", p["data"], "--table-devices", "nope", "--budget-percentile",
         "30", "--out", f"{w}/f2"], "nope", (f"{w}/f2/designs.csv",))
    add("fleet: bad profile folder", "malformed profile",
        ["fleet", "--model", p["model"], "--data-dir", p["data"], "--profiles", w, "--budget-percentile", "30",
         "--out", f"{w}/f3"], "line", (f"{w}/f3/designs.csv",))
    add("fleet: bad storage", "bad argument",
        ["fleet", "--model", p["model"], "--data-dir", p["data"], "--simulated", "2", "--budget-percentile", "30",
         "--storage", "ftp://nowhere", "--out", f"{w}/f4"], "storage", (f"{w}/f4/designs.csv",))
    add("fleet: model from another version", "bad model folder",
        ["fleet", "--model", p["model_v99"], "--data-dir", p["data"], "--simulated", "2", "--budget-percentile", "30",
         "--out", f"{w}/f5"], "version", (f"{w}/f5/designs.csv",))
    add("unknown command", "bad argument", ["frobnicate"], "invalid choice")
    _own_space_cases(p, add)
    return cases


# --- spaces of your own (issue 14): bad specs, module:attr that cannot be found, measure commands
def _own_space_cases(p: dict[str, str], add: Callable[..., None]) -> None:
    """Cases for ``--space`` given as a spec file or ``module:attr`` (writes the spec files they read)."""
    w = Path(p["work"])
    out = f"{w}/own.csv"
    specs = {
        "empty": {"name": "own_empty", "decisions": {}},
        "one_choice": {"name": "own_one", "decisions": {"kernel": [3], "depth": [1, 2]}},
        "float_no_step": {"name": "own_float", "decisions": {"width": {"low": 0.25, "high": 1.0}}},
        "build_raises": {"name": "own_raises", "decisions": {"k": [3, 5]}, "build": "math:sqrt",
                         "input_shape": [3, 8, 8]},
        "build_no_module": {"name": "own_nomodule", "decisions": {"k": [3, 5]}, "build": "builtins:len",
                            "input_shape": [3, 8, 8]},
        "too_large": {"name": "own_large", "decisions": {f"k{i}": [1, 2, 3] for i in range(30)}},
    }
    spec = {}
    for name, body in specs.items():
        spec[name] = str(w / f"space_{name}.json")
        Path(spec[name]).write_text(json.dumps(body))
    own = "edgeopt_plugins.examples.mobilenet:SPACE"
    add("space: empty space", "bad space spec", ["space", "--space", spec["empty"]], "has no decisions")
    add("profile: a decision with one choice", "bad space spec",
        ["profile", "--space", spec["one_choice"], "--archs", "2", "--out", out], "only one choice", (out,))
    add("predict: a float without a step", "bad space spec",
        ["predict", "--space", spec["float_no_step"], "--profile", p["good"], "--archs", p["archs_good"], "--out",
         out], "without a step", (out,))
    add("fit: a build that raises", "bad space spec",
        ["fit", "--space", spec["build_raises"], "--tables", p["good"], "--out", f"{w}/own-model"],
        "build raised TypeError", (f"{w}/own-model/model.json",))
    add("profile: a build that returns no module", "bad space spec",
        ["profile", "--space", spec["build_no_module"], "--archs", "2", "--out", out], "not a torch.nn.Module", (out,))
    add("space: too large to enumerate", "bad space spec",
        ["space", "--space", spec["too_large"], "--archs", "all", "--out", out], "too many to enumerate", (out,))
    add("profile: space module not importable", "unknown space",
        ["profile", "--space", "no_such_module_xyz:SPACE", "--archs", "2", "--out", out], "cannot import", (out,))
    add("profile: space attribute missing", "unknown space",
        ["profile", "--space", "edgeopt_plugins.examples.mobilenet:NOPE", "--archs", "2", "--out", out],
        "has no attribute", (out,))
    add("profile: measure command without a device name", "bad argument",
        ["profile", "--space", own, "--archs", "2", "--measure-cmd", "echo 1", "--out", out], "needs --name", (out,))
    add("profile: measure timeout zero", "bad argument",
        ["profile", "--space", own, "--archs", "2", "--name", "b", "--measure-cmd", "echo 1", "--measure-timeout",
         "0", "--out", out], "positive number", (out,))
    add("predict: own space without --tables", "missing data",
        ["predict", "--space", own, "--profile", p["good"], "--archs", p["archs_good"], "--out", out],
        "no benchmark table", (out,))


def check_case(case: Case, main: Callable[[list[str]], int]) -> dict[str, object]:
    """Run one case in-process; returns what happened and whether it was rejected cleanly."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(list(case.argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception as exc:  # noqa: BLE001 - a crash is exactly what this check reports
            code = f"crash: {type(exc).__name__}: {exc}"
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    leftovers = [o for o in case.outputs if Path(o).exists()]
    clean = (code == 2 and len(lines) == 1 and "Traceback" not in err.getvalue() and case.expect in lines[0]
             and not leftovers)
    return {"name": case.name, "category": case.category, "code": code, "stderr": lines, "leftovers": leftovers,
            "clean": clean}
