"""``edgeopt predict``: latency of architectures on a target device described by a profile.

Each prediction method is one function taking the parsed arguments; ``METHODS``
maps ``--method`` to it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from edgeopt_plugins.cli._archlist import read_arch_list
from edgeopt_plugins.cli._common import fraction, write_csv
from edgeopt_plugins.devices import DeviceProfile
from edgeopt_plugins.exceptions import InputError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("predict", help="predict latency of architectures on a device from its profile")
    parser.add_argument("--method", choices=sorted(METHODS), required=True, help="prediction method")
    parser.add_argument("--profile", type=Path, required=True, help="target device profile CSV (arch,latency_ms)")
    parser.add_argument("--archs", type=Path, required=True, help="CSV with an 'arch' column: what to predict")
    parser.add_argument("--out", type=Path, required=True, help="output CSV")
    # --method conditioned
    parser.add_argument("--model", type=Path, default=None, help="[conditioned] model folder from `edgeopt fit`")
    parser.add_argument("--confidence", type=fraction, default=0.95,
                        help="[conditioned] confidence of latency_upper_ms (default 0.95)")
    parser.set_defaults(handler=run)


def _conditioned(args: argparse.Namespace) -> pd.DataFrame:
    """``arch,latency_ms,latency_upper_ms`` from a :class:`ConditionedModel`."""
    from edgeopt_plugins.optimizer import ConditionedModel

    if args.model is None:
        raise InputError("--method conditioned needs --model (a folder written by `edgeopt fit`)")
    model = ConditionedModel.load(args.model)
    profile = DeviceProfile.read(args.profile, space=model.space)
    archs = read_arch_list(args.archs, model.space)
    mean, upper = model.predict(archs, profile, confidence=args.confidence)
    return pd.DataFrame({"arch": archs, "latency_ms": mean, "latency_upper_ms": upper})


METHODS: dict[str, Callable[[argparse.Namespace], pd.DataFrame]] = {
    "conditioned": _conditioned,
}


def run(args: argparse.Namespace) -> int:
    frame = METHODS[args.method](args)
    write_csv(frame, args.out)
    print(f"wrote {len(frame)} predictions to {args.out}")
    return 0
