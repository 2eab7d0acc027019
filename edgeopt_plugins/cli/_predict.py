"""``edgeopt predict``: latency predictions for a target device from a profile of it.

``--method`` picks a predictor family from :data:`METHODS`; each entry adds its own
options and turns the common inputs (space, requested architectures, the target's
profile) into a table with ``arch`` and ``latency_ms`` (and any extra columns). Nothing is
written unless every input is valid and every prediction succeeded.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from edgeopt_plugins._io import display_path
from edgeopt_plugins.cli._common import (
    add_data_dir,
    add_quiet,
    add_space,
    add_tables,
    check_distinct,
    check_output_file,
    check_table_source,
    fraction,
    latency_table,
    seed,
    write_csv,
)
from edgeopt_plugins.devices import DeviceProfile, read_arch_list
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.predictors import ADAPT_METHODS, ProxyAdapter, as_measurements
from edgeopt_plugins.spaces import BUILTIN_NAMES, SearchSpace

__all__ = ["METHODS", "PredictMethod"]


@dataclass(frozen=True)
class PredictMethod:
    """One ``--method`` of ``edgeopt predict``: its help, its options and its handler."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    predict: Callable[[argparse.Namespace, SearchSpace, list[str], DeviceProfile], pd.DataFrame]


DESCRIPTION = """
Latencies of any architectures on a target device, from a few measurements of it (its
profile, CSV arch,latency_ms). --method proxy adapts the devices of the benchmark table (or of
--tables: your own profiles, for a space of your own) to the profile (approach 1) and prints its estimated rank correlation; below 0.9 it lists the
architectures worth measuring next. --method conditioned uses a model from `edgeopt fit`
(approach 2) and adds latency_upper_ms, a calibrated upper bound.
"""

EXAMPLES = """
examples:
  edgeopt predict --method proxy --space nb201 --profile target.csv --archs archs.csv --out pred.csv
  edgeopt predict --method conditioned --model model/ --profile target.csv --archs archs.csv --out pred.csv
  edgeopt predict --space my_models:SPACE --tables proxy.csv --profile board.csv --archs archs.csv --out pred.csv
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("predict", help="predict latencies on a target device from a profile of it",
                            description=DESCRIPTION, epilog=EXAMPLES)
    parser.add_argument("--method", choices=tuple(METHODS), default="proxy",
                        help="; ".join(f"{name}: {m.help}" for name, m in METHODS.items()))
    add_space(parser)
    add_data_dir(parser)
    parser.add_argument("--profile", type=Path, required=True,
                        help="the target's measurements: CSV arch,latency_ms (+ optional JSON sidecar)")
    parser.add_argument("--archs", type=Path, required=True,
                        help="architectures to predict: a CSV with an 'arch' column, or one architecture per line")
    parser.add_argument("--out", type=Path, required=True, help="output CSV (arch,latency_ms,...)")
    add_quiet(parser)
    for method in METHODS.values():
        method.add_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_output_file(args.out)
    check_distinct(args.out, profile=args.profile, archs=args.archs)
    space = args.space
    if args.method == "proxy":
        check_table_source(args)
    archs = read_arch_list(args.archs, space, unique=False)
    profile = DeviceProfile.read(args.profile, space=space)
    frame = METHODS[args.method].predict(args, space, archs, profile)
    values = frame.drop(columns="arch").to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise InputError(f"--method {args.method}: {int((~np.isfinite(values)).any(axis=1).sum())} prediction(s) are "
                         "not finite numbers (a damaged model or profile); nothing written")
    write_csv(frame, args.out)
    if not args.quiet:
        print(f"wrote {len(frame)} predictions to {args.out}")
    return 0


# --------------------------------------------------------------------------- method: proxy
def _proxy_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("--method proxy")
    add_tables(group, "the proxy devices")
    group.add_argument("--proxy", default=None,
                       help="force one proxy device (a column of the table); default: all devices of the table")
    group.add_argument("--adapt", choices=ADAPT_METHODS, default="hierarchical",
                       help="adaptation: hierarchical (ours), published (Lu et al. 2021), proxy (one proxy, rescaled)")
    group.add_argument("--seed", type=seed, default=0, help="seed of the adaptation")


def _predict_proxy(args: argparse.Namespace, space: SearchSpace, archs: list[str], profile: DeviceProfile) -> pd.DataFrame:
    """Proxies from --tables (or the benchmark table under --data-dir), adapted to the target's profile."""
    target = as_measurements(profile, space=space)
    table = latency_table(args)
    if args.proxy is not None and args.proxy not in table.devices:
        raise InputError(f"--proxy {args.proxy!r} is not a device of the {space.name} proxy table "
                         f"(known: {', '.join(table.devices)})")
    adapter = ProxyAdapter(table, method=args.adapt, proxy=args.proxy, seed=args.seed)
    model = adapter.fit(target)
    frame = pd.DataFrame({"arch": archs, "latency_ms": model.predict(archs)})
    if not args.quiet:
        lo, hi = model.spearman_interval()
        print(f"{model.method} adaptation from {model.k} measurements of {profile.name}: estimated Spearman "
              f"{model.estimated_spearman:.3f} (90% interval {lo:.3f}-{hi:.3f})")
        if model.needs_more(0.9):
            ask = model.next_archs(5, seed=args.seed)
            print("below 0.9: measuring these next would help most:")
            for arch in ask:
                print(f"  {arch}")
    return frame


# --------------------------------------------------------------------------- method: conditioned
def _conditioned_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("--method conditioned")
    group.add_argument("--model", type=Path, default=None, help="model folder written by `edgeopt fit`")
    group.add_argument("--confidence", type=fraction, default=0.95,
                       help="confidence of latency_upper_ms on unseen devices")


def _predict_conditioned(args: argparse.Namespace, space: SearchSpace, archs: list[str], profile: DeviceProfile
                         ) -> pd.DataFrame:
    """``arch,latency_ms,latency_upper_ms`` from a device-conditioned model (approach 2)."""
    from edgeopt_plugins.optimizer import ConditionedModel

    if args.model is None:
        raise InputError("--method conditioned needs --model (a folder written by `edgeopt fit`)")
    model = ConditionedModel.load(args.model, space=space if space.name not in BUILTIN_NAMES else None)
    if model.space.name != space.name:
        raise InputError(f"{display_path(args.model)}: the model is for space {model.space.name!r}; "
                         f"pass --space {model.space.name}")
    mean, upper = model.predict(archs, profile, confidence=args.confidence)
    return pd.DataFrame({"arch": archs, "latency_ms": mean, "latency_upper_ms": upper})


#: ``--method`` name -> how to predict with it.
METHODS: dict[str, PredictMethod] = {
    "proxy": PredictMethod("proxy devices from the table, adapted to the profile", _proxy_arguments, _predict_proxy),
    "conditioned": PredictMethod("device-conditioned model with calibrated upper bounds (edgeopt fit)",
                                 _conditioned_arguments, _predict_conditioned),
}
