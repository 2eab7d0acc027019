"""``edgeopt fleet``: the best designs for many devices at once, resumable, on shared storage."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeopt_plugins.cli._common import (
    add_data_dir,
    add_quiet,
    add_space,
    check_distinct,
    check_output_folder,
    fraction,
    latency_ms,
    non_negative_int,
    positive,
    positive_int,
    print_json,
    seed,
)
from edgeopt_plugins.cli._fit import CONFIGS
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.fleet import FleetSettings, TargetSpec, run_fleet
from edgeopt_plugins.spaces import BUILTIN_NAMES, space_reference


DESCRIPTION = """
The best designs for every device of a fleet at once: your profiles, devices of the
benchmark table and/or simulated devices, under one budget or a per-device percentile.
One-shot recommendations from one fitted model, optionally refined by a short Optuna study per
device that measures with --measure-cmd. Work units are claimed through shared storage, so
several workers (here or on other machines) share a run, and rerunning the same command
resumes it or, when it is finished, reuses its results. Writes designs.csv, results.json,
summary.json and fleet.png into --out; see docs/fleet.md.
"""

EXAMPLES = """
examples:
  edgeopt fleet --simulated 10000 --budget-percentile 30 --out fleet-out/
  edgeopt fleet --model model/ --profiles devices/ --latency-budget-ms 25 --refine 20 \\
      --measure-cmd "python measure.py {arch}" --storage sqlite:///fleet.db --workers 4 --out fleet-out/
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("fleet", help="recommend (and refine) designs for a fleet of devices",
                            description=DESCRIPTION, epilog=EXAMPLES)
    add_space(parser)
    add_data_dir(parser)
    parser.add_argument("--model", type=Path, default=None,
                        help="fitted model folder (default: fit one into OUT/model, or reuse it)")
    parser.add_argument("--fit-config", choices=sorted(CONFIGS), default="fast",
                        help="training size when the fleet fits its own model (default fast)")
    devices = parser.add_argument_group("target devices (any combination)")
    devices.add_argument("--profiles", type=Path, default=None, help="folder of device profiles (CSV + JSON sidecar)")
    devices.add_argument("--table-devices", default=None,
                         help="devices of the benchmark table: comma-separated names, or 'all'")
    devices.add_argument("--simulated", type=non_negative_int, default=0, help="number of simulated devices")
    devices.add_argument("--monotonicity", default="real",
                         help="simulated fleet: target median pairwise Spearman, or 'real' (default)")
    devices.add_argument("--profile-size", type=positive_int, default=10,
                         help="measurements in the profile of a table or simulated device (default 10)")
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--latency-budget-ms", type=latency_ms, default=None,
                        help="one latency budget for every device")
    budget.add_argument("--budget-percentile", type=float, default=None,
                        help="per-device budget: this percentile of the device's latency over the space")
    parser.add_argument("--confidence", type=fraction, default=0.95, help="confidence of the upper bound")
    parser.add_argument("--top-k", type=positive_int, default=3, help="designs recommended per device (default 3)")
    parser.add_argument("--refine", type=non_negative_int, default=0, metavar="TRIALS",
                        help="Optuna trials per device after the one-shot recommendation (default 0)")
    parser.add_argument("--measure-cmd", default=None,
                        help="command measuring a design on a profile device: {arch}, {model} (the design "
                             "exported as a file) and {input_shape} are replaced; it prints the latency in ms "
                             "(contract: docs/devices.md)")
    parser.add_argument("--measure-timeout", type=positive, default=600.0,
                        help="seconds per measurement; the command's whole process group is killed after")
    parser.add_argument("--storage", default=None,
                        help="shared storage: sqlite:///f.db, postgresql://..., or a .journal file "
                             "(default OUT/fleet.journal)")
    parser.add_argument("--workers", type=positive_int, default=1, help="worker processes on this machine")
    parser.add_argument("--chunk-size", type=positive_int, default=500, help="devices per one-shot work unit")
    parser.add_argument("--seed", type=seed, default=0, help="seed of profiles, simulated devices and samplers")
    parser.add_argument("--out", type=Path, required=True, help="output folder (designs.csv, summary.json, fleet.png)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_quiet(parser)
    parser.set_defaults(handler=run)


def _monotonicity(text: str) -> str | float:
    if text == "real":
        return text
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"--monotonicity must be 'real' or a number in (0, 1), got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise InputError(f"--monotonicity must be 'real' or a number in (0, 1), got {text!r}")
    return value


def _model_dir(args: argparse.Namespace) -> Path:
    if args.model is not None:
        return args.model
    folder = args.out / "model"
    if not (folder / "model.json").exists() and args.space.name not in BUILTIN_NAMES:
        raise InputError(f"space {args.space.name!r} has no benchmark data to fit a model from: fit one with "
                         "`edgeopt fit --space ... --tables ... --accuracy ...` and pass --model")
    if (folder / "model.json").exists():
        if not args.quiet:
            print(f"no --model: reusing {folder}, fitted by an earlier run")
    else:
        from edgeopt_plugins.optimizer import fit_from_data
        from edgeopt_plugins.predictors import check_model_folder

        check_model_folder(folder)  # before training, not after

        if not args.quiet:
            print(f"no --model: fitting one ({args.fit_config}) into {folder}")
        model = fit_from_data(args.space, data_dir=args.data_dir, config=CONFIGS[args.fit_config](), seed=args.seed,
                              progress=not args.quiet)
        model.save(folder)
    return folder


def run(args: argparse.Namespace) -> int:
    check_output_folder(args.out)
    check_distinct(args.out, profiles=args.profiles, model=args.model)
    table_devices = tuple(d.strip() for d in args.table_devices.split(",") if d.strip()) if args.table_devices else ()
    spec = TargetSpec(
        space=space_reference(args.space), profiles_dir=str(args.profiles) if args.profiles else None,
        table_devices=table_devices,
        simulated=args.simulated, profile_size=args.profile_size, seed=args.seed,
        monotonicity=_monotonicity(args.monotonicity), data_dir=str(args.data_dir) if args.data_dir else None,
    )
    if not (spec.profiles_dir or spec.table_devices or spec.simulated):
        raise InputError("no target devices: give --profiles DIR, --table-devices NAMES|all or --simulated N")
    settings = FleetSettings(
        targets=spec, model_dir=str(_model_dir(args)), latency_budget_ms=args.latency_budget_ms,
        budget_percentile=args.budget_percentile, confidence=args.confidence, top_k=args.top_k, refine=args.refine,
        measure_cmd=args.measure_cmd, measure_timeout_s=args.measure_timeout, chunk_size=args.chunk_size,
        seed=args.seed,
    )
    report = run_fleet(settings, args.out, storage=args.storage, workers=args.workers, progress=not args.quiet,
                       quiet=args.quiet)
    s = report.summary
    if args.json:
        print_json(s)
        return 0
    rate = s["violation_rate"]
    regret = s["regret"]
    reused = s.get("reused_devices", 0)
    if reused:
        print(f"reused the stored results of {reused} device(s) from an earlier run of these settings "
              f"(storage {s['storage']})" + ("; nothing left to compute" if reused == s["devices"] else ""))
    print(f"{s['devices_done']}/{s['devices']} devices in {s['wall_seconds']:.1f} s "
          f"({s['workers']} worker(s), storage {s['storage']})")
    print(f"  recommended {s['recommended']}, infeasible {s['infeasible']}"
          + (f"; budget violations {s['budget_violations']}/{s['with_true_latency']} ({100 * rate:.1f}%)"
             if rate is not None else ""))
    if regret:
        print(f"  accuracy regret vs true optimum: mean {regret['mean']:.3f}, median {regret['median']:.3f}, "
              f"p90 {regret['p90']:.3f} points")
    if "refine" in s:
        r = s["refine"]
        print(f"  refine: {r['trials']} trials, {r['failed_trials']} failed"
              + (f", refined regret mean {r['regret']['mean']:.3f}" if r["regret"] else ""))
    if s["pending"]:
        print(f"  {len(s['pending'])} work unit(s) still held by other workers; rerun to collect them")
    print(f"wrote {report.paths['designs']}, {report.paths['summary']}, {report.paths['plot']}")
    return 0
