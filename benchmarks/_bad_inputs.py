"""A catalog of bad inputs for every ``edgeopt`` command, and the check that each is rejected cleanly.

"Cleanly" means: exit code 2, exactly one line on stderr that says what is wrong,
no traceback, and no output file left behind. The test suite runs the whole
catalog (tests/test_bad_inputs.py) and the reliability benchmark reports it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
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
    #: Text that must not appear on stderr (a password).
    never: str | None = None


def prepare_workdir(work: Path, data_dir: Path, model_dir: Path) -> dict[str, str]:
    """Write the bad (and good) input files the cases use; returns name -> path."""
    from edgeopt_plugins.data import load_table
    from edgeopt_plugins.devices import DeviceProfile
    from edgeopt_plugins.predictors._store import tensor_path

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
        "implausible": f"arch,latency_ms\n{a},1e308\n{b},2.0\n",
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
    tensors = tensor_path(work / "model_tampered")
    data = bytearray(tensors.read_bytes())
    data[-8:] = b"\x00" * 8
    tensors.write_bytes(bytes(data))
    (work / "model_pickle" / "payload.pkl").write_bytes(
        b"\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x04true\x94\x85\x94R\x94."
    )
    paths.update({"model": str(model_dir), **{v: str(work / v) for v in ("model_v99", "model_tampered", "model_pickle")}})
    paths.update(_hostile_models(work, model_dir))
    paths.update(_hostile_files(work))
    paths["data"] = str(data_dir)
    paths["work"] = str(work)
    return paths


#: JSON that crashes a plain ``json.loads`` (RecursionError, the 4300-digit limit) or overflows to inf.
DEEP_JSON = "[" * 100_000 + "]" * 100_000
HUGE_INT = "9" * 10_000
SECRET = "Tr0ub4dor"


def _rehash(folder: Path, edit: Callable[[dict], None]) -> None:
    """Edit a model's manifest and fix its checksum, as a careful tamperer would."""
    from edgeopt_plugins.predictors._store import _manifest_digest

    manifest = json.loads((folder / "model.json").read_text())
    edit(manifest)
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    (folder / "model.json").write_text(json.dumps(manifest))


def _nan_tensors(folder: Path) -> None:
    """Put a NaN into the first float tensor and fix both checksums."""
    import hashlib

    import numpy as np
    from safetensors.numpy import load, save

    from edgeopt_plugins.predictors._store import tensor_path

    path = tensor_path(folder)
    arrays = load(path.read_bytes())
    key = next(k for k in sorted(arrays) if arrays[k].dtype.kind == "f")
    arrays[key] = arrays[key].copy()
    arrays[key].flat[0] = np.nan
    blob = save(arrays)
    path.write_bytes(blob)
    _rehash(folder, lambda m: m["files"].__setitem__(path.name, {"sha256": hashlib.sha256(blob).hexdigest(),
                                                                 "bytes": len(blob)}))


def _replace_tensors(folder: Path, make: Callable[[Path], None]) -> None:
    """Swap the tensor file for something that is not a regular file (its name stays)."""
    from edgeopt_plugins.predictors._store import tensor_path

    path = tensor_path(folder)
    path.unlink()
    make(path)


def _hostile_models(work: Path, model_dir: Path) -> dict[str, str]:
    """Model folders that hung, exhausted memory or crashed the loader: a symlink to /dev/zero, a FIFO,
    NaN tensors, deep or huge-number JSON, a re-hashed manifest with ``"metrics": []``."""
    variants: dict[str, Callable[[Path], None]] = {
        "model_symlink": lambda f: _replace_tensors(f, lambda p: p.symlink_to("/dev/zero")),
        "model_fifo": lambda f: _replace_tensors(f, os.mkfifo),
        "model_nan": _nan_tensors,
        "model_deep_json": lambda f: (f / "model.json").write_text('{"meta": ' + DEEP_JSON + "}"),
        "model_huge_number": lambda f: (f / "model.json").write_text('{"format_version": ' + HUGE_INT + "}"),
        "model_empty_metrics": lambda f: _rehash(f, lambda m: m["meta"]["predictor"].__setitem__("metrics", [])),
    }
    for name, damage in variants.items():
        shutil.copytree(model_dir, work / name, dirs_exist_ok=True)
        damage(work / name)
    return {name: str(work / name) for name in variants}


def _hostile_files(work: Path) -> dict[str, str]:
    """Sidecars, architecture cells, lists and fleet settings that crashed the readers; a file named as --out."""
    good_csv = (work / "good.csv").read_text()
    fbnet = json.dumps({"format": 1, "space": "fbnet", "name": "fb"})
    files = {
        "deep_sidecar.csv": good_csv, "deep_sidecar.json": '{"name": ' + DEEP_JSON + "}",
        "huge_sidecar.csv": good_csv, "huge_sidecar.json": '{"format": ' + HUGE_INT + "}",
        "fbnet_deep_cell.csv": f'arch,latency_ms\n"{DEEP_JSON[:20000]}",1.0\n', "fbnet_deep_cell.json": fbnet,
        "fbnet_huge_cell.csv": f'arch,latency_ms\n"[{HUGE_INT}]",1.0\n', "fbnet_huge_cell.json": fbnet,
        "archs_long_line.txt": "x" * 200_000 + "\n",
        "a_file": "not a folder\n",
        "deep_fleet/fleet.json": DEEP_JSON,
        "foreign_folder/notes.txt": "mine\n",
    }
    for name, content in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(content)
    names = ("deep_sidecar.csv", "huge_sidecar.csv", "fbnet_deep_cell.csv", "fbnet_huge_cell.csv",
             "archs_long_line.txt", "a_file", "deep_fleet", "foreign_folder")
    return {name.split(".")[0]: str(work / name) for name in names}


def build_cases(p: dict[str, str]) -> list[Case]:
    """Every case, with paths from :func:`prepare_workdir`."""
    w = p["work"]
    out = f"{w}/out.csv"
    cases: list[Case] = []

    def add(name: str, category: str, argv: list[str], expect: str, outputs: tuple[str, ...] = (),
            never: str | None = None) -> None:
        cases.append(Case(name, category, tuple(argv), expect, outputs, never))

    # --- predict (both methods) on malformed profiles
    bad_profiles = {
        "empty": "file is empty", "header_only": "no measurements", "wrong_columns": "missing column",
        "missing_latency": "missing column(s) latency_ms", "unknown_arch": "unknown op 'conv_9x9'",
        "malformed_arch": "not-an-architecture", "nan": "latency_ms is nan", "inf": "latency_ms is inf",
        "negative": "latency_ms is negative", "zero": "latency_ms is zero", "text_latency": "is not a number",
        "conflicting_duplicates": "already measured on line 2", "implausible": "plausible range 1e-06 to 1e+07 ms",
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
    # --- plan-profile
    add("plan-profile: more than the candidates hold", "bad argument",
        ["plan-profile", "--data-dir", p["data"], "--n", "50", "--candidates", p["archs_good"], "--out", out],
        "candidates are not measured yet", (out,))
    add("plan-profile: zero architectures", "bad argument",
        ["plan-profile", "--data-dir", p["data"], "--n", "0", "--out", out], "--n", (out,))
    add("plan-profile: candidates outside the space", "unknown architecture",
        ["plan-profile", "--data-dir", p["data"], "--n", "2", "--candidates", p["archs_unknown"], "--out", out],
        "nor_conv_7x7", (out,))
    add("plan-profile: malformed partial profile", "malformed profile",
        ["plan-profile", "--data-dir", p["data"], "--n", "2", "--profile", p["nan"], "--out", out],
        "latency_ms is nan", (out,))
    add("plan-profile: output is the profile", "bad output path",
        ["plan-profile", "--data-dir", p["data"], "--n", "2", "--profile", p["good"], "--out", p["good"]],
        "--out", ())
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
    add("unknown command", "bad argument", ["frobnicate"], "unknown command 'frobnicate'")
    add("misspelt option", "bad argument", ["fit", "--out", f"{w}/m", "--confg", "tiny"],
        "unknown option --confg; did you mean --config?", (f"{w}/m/model.json",))
    _add_audit_cases(add, p)
    _own_space_cases(p, add)
    return cases


def _add_audit_cases(add: Callable[..., None], p: dict[str, str]) -> None:
    """The cases of the reliability audit (issue 15): each was a traceback, a hang or a silent overwrite."""
    w, out = p["work"], f"{p['work']}/out.csv"
    predict = ["predict", "--data-dir", p["data"], "--profile", p["good"], "--archs", p["archs_good"]]
    fleet = ["fleet", "--model", p["model"], "--data-dir", p["data"], "--budget-percentile", "30"]
    recommend = ["recommend", "--profile", p["good"], "--latency-budget-ms", "10"]
    # Hostile model folders, through both commands that load one.
    for variant, expect in (("model_symlink", "symbolic link"), ("model_fifo", "not a regular file"),
                            ("model_nan", "NaN or infinite"), ("model_deep_json", "nested too deeply"),
                            ("model_huge_number", "too many digits"), ("model_empty_metrics", "malformed model")):
        add(f"recommend: {variant}", "hostile model folder", [*recommend, "--model", p[variant]], expect)
        add(f"predict conditioned: {variant}", "hostile model folder",
            [*predict, "--method", "conditioned", "--model", p[variant], "--out", out], expect, (out,))
    # Hostile JSON elsewhere.
    for name, expect in (("deep_sidecar", "nested too deeply"), ("huge_sidecar", "too many digits")):
        add(f"recommend: {name}", "hostile JSON", ["recommend", "--model", p["model"], "--profile", p[name],
                                                   "--latency-budget-ms", "10"], expect)
    for name, expect in (("fbnet_deep_cell", "nested too deeply"), ("fbnet_huge_cell", "too many digits")):
        add(f"predict: {name}", "hostile JSON", ["predict", "--space", "fbnet", "--data-dir", p["data"], "--profile",
                                                 p[name], "--archs", p[name], "--out", out], expect, (out,))
    add("fleet: deep fleet.json", "hostile JSON", [*fleet, "--simulated", "2", "--out", p["deep_fleet"]],
        "nested too deeply", (f"{p['deep_fleet']}/designs.csv",))
    add("predict: architecture list with a 200 KB first line", "hostile JSON",
        [*predict[:-2], "--archs", p["archs_long_line"], "--out", out], "field larger than field limit", (out,))
    # Numbers out of range.
    for value in ("-1", str(2**64)):
        add(f"predict: --seed {value}", "bad argument", [*predict, "--seed", value, "--out", out],
            "integer from 0 to 4294967295", (out,))
    add("fleet: --seed -1", "bad argument", [*fleet, "--simulated", "2", "--seed", "-1", "--out", f"{w}/fs"],
        "integer from 0 to 4294967295", (f"{w}/fs/fleet.json",))
    for value in ("nan", "0"):
        add(f"fleet: --measure-timeout {value}", "bad argument",
            [*fleet, "--simulated", "2", "--measure-timeout", value, "--out", f"{w}/ft"], "positive number",
            (f"{w}/ft/fleet.json",))
    add("recommend: budget 1e308 ms", "implausible value", [*recommend[:-2], "--model", p["model"],
                                                            "--latency-budget-ms", "1e308"], "1e-06 to 1e+07")
    add("recommend: --tradeoff 1e308", "implausible value", [*recommend, "--model", p["model"], "--tradeoff", "1e308"],
        "from 0 to 1e+06")
    add("fleet: budget 1e308 ms", "implausible value",
        ["fleet", "--model", p["model"], "--data-dir", p["data"], "--simulated", "2", "--latency-budget-ms", "1e308",
         "--out", f"{w}/fb"], "1e-06 to 1e+07", (f"{w}/fb/fleet.json",))
    # Sizes that cannot fit in memory, refused before any work.
    add("fleet: --simulated 10**8", "too large for memory", [*fleet, "--simulated", str(10**8), "--out", f"{w}/fm"],
        "of memory", (f"{w}/fm/fleet.json",))
    add("fit: --simulated-devices 10**8", "too large for memory",
        ["fit", "--data-dir", p["data"], "--config", "tiny", "--simulated-devices", str(10**8), "--out", f"{w}/mm"],
        "of memory", (f"{w}/mm/model.json",))
    for option, value in (("--batch", 10**6), ("--resolution", 10**5)):
        add(f"profile: {option} {value}", "too large for memory",
            ["profile", "--archs", "2", option, str(value), "--out", out], "of memory", (out,))
    # Paths: outputs that are inputs, files that are not folders.
    for option in ("--profile", "--archs"):
        target = p["good"] if option == "--profile" else p["archs_good"]
        add(f"predict: --out equal to {option}", "output is an input", [*predict, "--out", target],
            "would overwrite it")
    add("fleet: --out names a file", "bad output path", [*fleet, "--simulated", "2", "--out", p["a_file"]],
        "is a file")
    add("fit: --out is another folder", "bad output path",
        ["fit", "--data-dir", p["data"], "--config", "tiny", "--out", p["foreign_folder"]], "not empty",
        (f"{p['foreign_folder']}/model.json",))
    # Storage URLs: bad hosts and ports, credentials never printed.
    for what, url, expect in (("a bad port", f"postgresql://ann:{SECRET}@db:port/runs", "Port could not be cast"),
                              ("a bad IPv6 host", f"postgresql://ann:{SECRET}@[::1/runs", "Invalid IPv6 URL"),
                              ("?password=", f"mysql://ann@db/runs?password={SECRET}", "password=***")):
        add(f"fleet: --storage with {what}", "bad storage URL",
            [*fleet, "--simulated", "2", "--storage", url, "--out", f"{w}/fp"], expect, (f"{w}/fp/fleet.json",),
            never=SECRET)


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
             and not leftovers and (case.never is None or case.never not in err.getvalue()))
    return {"name": case.name, "category": case.category, "code": code, "stderr": lines, "leftovers": leftovers,
            "clean": clean}
