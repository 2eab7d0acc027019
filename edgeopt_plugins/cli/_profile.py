"""``edgeopt profile``: measure a device for real and write a device profile.

Examples::

    edgeopt profile --space nb201 --archs 50 --threads 1 --batch 1 --out device.csv
    edgeopt profile --space my_models:SPACE --archs 300 --out proxy.csv
    edgeopt profile --space my_models:SPACE --archs-file proxy.csv --name board \\
        --measure-cmd "ssh board ./bench {model}" --out board.csv

write ``device.csv`` (``arch,latency_ms``) and ``device.json`` (the settings that
define the device, and how stable the measurement was), readable with
``DeviceProfile.read("device.csv")``. Without ``--measure-cmd`` this machine is
measured with PyTorch; with it, the command measures each design (see
docs/devices.md for its contract).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from edgeopt_plugins._io import display_path
from edgeopt_plugins.cli._common import (
    add_quiet,
    add_space,
    check_distinct,
    check_output_file,
    positive,
    positive_int,
    seed,
)
from edgeopt_plugins.devices import (
    DTYPES,
    EXPORT_FORMATS,
    CommandDevice,
    TorchDevice,
    read_arch_list,
    sidecar_path,
    spread_archs,
)
from edgeopt_plugins.exceptions import EdgeOptWarning, InputError


DESCRIPTION = """
Measure architectures and write a device profile: OUT (arch,latency_ms) plus a JSON sidecar with
the settings. Without --measure-cmd this machine runs them with PyTorch (warm-up, interleaved
repeated runs, median, outliers rejected), and each setting (threads, batch, dtype, resolution,
cpu/cuda) is a different device; the sidecar records the spread of the repeats and the rank
stability, and a noisy profile prints a warning. With --measure-cmd and --name another device
measures each design: the command gets the design exported as a model file and prints its latency
(contract: docs/devices.md).
"""

EXAMPLES = """
examples:
  edgeopt profile --space nb201 --archs 50 --threads 1 --batch 1 --out device.csv
  edgeopt profile --space my_models:SPACE --archs 300 --out proxy.csv
  edgeopt profile --space my_models:SPACE --archs 10 --name board --measure-cmd "ssh board ./bench {model}" --out board.csv
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "profile",
        help="measure architectures (on this machine, or with a command) and write a device profile",
        description=DESCRIPTION, epilog=EXAMPLES,
    )
    add_space(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--archs", type=positive_int, default=50,
                       help="how many architectures, a seeded spread from cheap to expensive (default 50)")
    which.add_argument("--archs-file", type=Path, default=None,
                       help="measure these instead: a CSV with an 'arch' column, or one architecture per line")
    parser.add_argument("--threads", type=positive_int, default=1, help="CPU threads (default 1)")
    parser.add_argument("--batch", type=positive_int, default=1, help="batch size (default 1)")
    parser.add_argument("--dtype", choices=list(DTYPES), default="float32", help="number format (default float32)")
    parser.add_argument("--resolution", type=positive_int, default=None,
                        help="input resolution (default: 32 for nb201, each architecture's own for ofa, the "
                             "space's input_shape for a space of your own)")
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu", help="where to run (default cpu)")
    parser.add_argument("--clock", choices=["auto", "thread", "wall"], default="auto",
                        help="auto (default): CPU time of the model's thread with --threads 1 (stable on a busy "
                             "machine), wall clock otherwise")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per architecture (default 3)")
    parser.add_argument("--repeats", type=positive_int, default=10, help="timed runs per architecture (default 10)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the architecture choice and the weights")
    remote = parser.add_argument_group("another device, measured by a command (see docs/devices.md)")
    remote.add_argument("--measure-cmd", default=None,
                        help="command measuring one design: {arch}, {model} (the exported model file) and "
                             "{input_shape} are replaced; it prints the latency in ms on its last line")
    remote.add_argument("--name", default=None, help="the measured device's name (required with --measure-cmd)")
    remote.add_argument("--export", choices=list(EXPORT_FORMATS), default=None,
                        help="model file format for {model} (default torchscript)")
    remote.add_argument("--measure-timeout", type=positive, default=600.0,
                        help="seconds per measurement; the command's whole process group is killed after (600)")
    parser.add_argument("--out", type=Path, required=True,
                        help="profile CSV to write (its .json sidecar goes next to it)")
    add_quiet(parser)
    parser.set_defaults(handler=run)


def _device(args: argparse.Namespace) -> TorchDevice | CommandDevice:
    if args.measure_cmd is None:
        return TorchDevice(args.space, threads=args.threads, batch_size=args.batch, dtype=args.dtype,
                           resolution=args.resolution, device=args.device, clock=args.clock, warmup=args.warmup,
                           repeats=args.repeats, seed=args.seed)
    if not args.name:
        raise InputError("--measure-cmd needs --name (the measured device's name)")
    return CommandDevice(args.space, args.measure_cmd, name=args.name, timeout_s=args.measure_timeout,
                         export=args.export, batch_size=args.batch, seed=args.seed)


def run(args: argparse.Namespace) -> int:
    out = check_output_file(args.out)
    check_distinct(out, archs_file=args.archs_file)
    check_output_file(sidecar_path(out), ".json")
    device = _device(args)
    if args.archs_file is not None:
        archs = read_arch_list(args.archs_file, device.space)
        selection = {"selection": "file", "archs_file": display_path(args.archs_file)}
    else:
        archs = spread_archs(device.space, args.archs, seed=args.seed)
        selection = {"selection": "spread by FLOPs" if device.space.cost_names else "uniform",
                     "selection_seed": args.seed}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EdgeOptWarning)
        profile = device.profile(archs, progress=not args.quiet, metadata=selection)
    profile.write(out)
    lat = profile.latency_ms
    meta = profile.metadata
    spread = meta.get("median_relative_iqr")
    stability = meta.get("rank_stability")
    quality = "" if spread is None else (
        f"; median relative IQR of repeated runs {spread:.1%}"
        + ("" if stability is None else f", rank stability {stability:.3f}"))
    print(f"{device.name}: {len(profile)} {device.space.name} architectures, latency {lat.min():.3g}-{lat.max():.3g} "
          f"ms (median {np.median(lat):.3g} ms{quality})")
    for warning in caught:
        if issubclass(warning.category, EdgeOptWarning):
            print(f"warning: {warning.message}", file=sys.stderr)
    print(f"wrote {display_path(out)} and {display_path(sidecar_path(out))}")
    return 0
