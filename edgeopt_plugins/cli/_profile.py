"""``edgeopt profile``: measure this machine for real and write a device profile.

Example::

    edgeopt profile --space nb201 --archs 50 --threads 1 --batch 1 --out device.csv

writes ``device.csv`` (``arch,latency_ms``) and ``device.json`` (the settings that
define the device), readable with ``DeviceProfile.read("device.csv")``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edgeopt_plugins._io import display_path
from edgeopt_plugins.cli._common import add_quiet, add_space, check_distinct, check_output_file, positive_int, seed
from edgeopt_plugins.devices import DTYPES, TorchDevice, read_arch_list, sidecar_path, spread_archs


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "profile",
        help="measure architectures on this machine with PyTorch and write a device profile",
        description="Measure architectures on this machine (real PyTorch inference) and write a device "
                    "profile: OUT (arch,latency_ms) plus a JSON sidecar with the settings. Each setting "
                    "(threads, batch, dtype, resolution, cpu/cuda) is a different device.",
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
                        help="input resolution (default: 32 for nb201, each architecture's own for ofa)")
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu", help="where to run (default cpu)")
    parser.add_argument("--clock", choices=["auto", "thread", "wall"], default="auto",
                        help="auto (default): CPU time of the model's thread with --threads 1 (stable on a busy "
                             "machine), wall clock otherwise")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per architecture (default 3)")
    parser.add_argument("--repeats", type=positive_int, default=10, help="timed runs per architecture (default 10)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the architecture choice and the weights")
    parser.add_argument("--out", type=Path, required=True,
                        help="profile CSV to write (its .json sidecar goes next to it)")
    add_quiet(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    out = check_output_file(args.out)
    check_distinct(out, archs_file=args.archs_file)
    check_output_file(sidecar_path(out), ".json")
    device = TorchDevice(args.space, threads=args.threads, batch_size=args.batch, dtype=args.dtype,
                         resolution=args.resolution, device=args.device, clock=args.clock, warmup=args.warmup,
                         repeats=args.repeats, seed=args.seed)
    if args.archs_file is not None:
        archs = read_arch_list(args.archs_file, device.space)
        selection = {"selection": "file", "archs_file": display_path(args.archs_file)}
    else:
        archs = spread_archs(device.space, args.archs, seed=args.seed)
        selection = {"selection": "spread by FLOPs", "selection_seed": args.seed}
    profile = device.profile(archs, progress=not args.quiet, metadata=selection)
    profile.write(out)
    lat = profile.latency_ms
    print(f"{device.name}: {len(profile)} {device.space.name} architectures, "
          f"latency {lat.min():.3g}-{lat.max():.3g} ms "
          f"(median {np.median(lat):.3g} ms; median relative IQR of repeated runs "
          f"{profile.metadata['median_relative_iqr']:.1%})")
    print(f"wrote {display_path(out)} and {display_path(sidecar_path(out))}")
    return 0
