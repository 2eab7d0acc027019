"""``edgeopt fit``: train the device-conditioned model (approach 2) from benchmark data or your own tables."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeopt_plugins.cli._common import (
    add_data_dir,
    add_quiet,
    add_space,
    add_tables,
    device_list,
    non_negative_int,
    seed,
)
from edgeopt_plugins.data import MetricTable
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.optimizer import FitConfig, fit_from_data
from edgeopt_plugins.predictors import TrainingDevices, check_model_folder
from edgeopt_plugins.spaces import import_object

CONFIGS = {"default": FitConfig, "fast": FitConfig.fast, "tiny": FitConfig.tiny}


DESCRIPTION = """
Train the approach-2 model of a space from the benchmark tables (or, for a space of your own,
from --tables and an --accuracy function): the device-conditioned
latency predictor (on the table's devices, plus simulated ones with --simulated-devices), its
calibrated upper bounds, the accuracy predictor and the learned optimizer; see
docs/approach2.md. The model folder is what recommend, predict --method conditioned, fleet and
the samplers take.
"""

EXAMPLES = """
examples:
  edgeopt fit --space nb201 --out model/
  edgeopt fit --space nb201 --out model-no-pixel3/ --config fast --exclude-devices pixel3
  edgeopt fit --space my_models:SPACE --tables proxy.csv proxy_b2.csv proxy_b4.csv --accuracy my_models:accuracy \
      --out model/
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("fit", help="train the device-conditioned predictor, calibration and learned optimizer",
                            description=DESCRIPTION, epilog=EXAMPLES)
    add_space(parser)
    add_data_dir(parser)
    add_tables(parser, "training devices (added to a built-in space's benchmark table; the only ones for a space "
                       "of your own)")
    parser.add_argument("--accuracy", default=None, metavar="MODULE:FUNCTION",
                        help="accuracy of designs for a space without an accuracy table: a function list of "
                             "architecture strings -> accuracies in percent "
                             "(e.g. edgeopt_plugins.examples.mobilenet:stand_in_accuracy)")
    parser.add_argument("--out", type=Path, required=True, help="model folder to write")
    parser.add_argument("--seed", type=seed, default=0, help="seed of every random choice")
    parser.add_argument("--config", choices=sorted(CONFIGS), default="default",
                        help="training size: default (the best model, minutes), fast (benchmarks, tens of seconds) "
                             "or tiny (tests, seconds)")
    parser.add_argument("--exclude-devices", type=device_list, default=[],
                        help="comma-separated table devices to leave out of training (held-out evaluation)")
    parser.add_argument("--simulated-devices", type=non_negative_int, default=0, metavar="N",
                        help="also train on N devices of a simulated fleet fitted to the table devices "
                             "(adds a simulated-energy model)")
    parser.add_argument("--dataset", default=None,
                        help="accuracy column (default cifar10 for nb201, imagenet for mnasnet)")
    add_quiet(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_model_folder(args.out)  # before training, not after
    extra = None
    if args.tables:
        extra = TrainingDevices.from_tables(MetricTable.from_profiles(args.tables, space=args.space, source="--tables"))
    accuracy_fn = import_object(args.accuracy, "--accuracy") if args.accuracy else None
    if accuracy_fn is not None and not callable(accuracy_fn):
        raise InputError(f"--accuracy {args.accuracy!r} is a {type(accuracy_fn).__name__}, not a function")
    if hasattr(args.space, "progress"):  # layer statistics of a user space's designs
        args.space.progress = not args.quiet
    model = fit_from_data(args.space, data_dir=args.data_dir, exclude_devices=args.exclude_devices,
                          extra_devices=extra, simulated_devices=args.simulated_devices, accuracy_fn=accuracy_fn,
                          dataset=args.dataset, config=CONFIGS[args.config](), seed=args.seed,
                          progress=not args.quiet)
    model.save(args.out)
    pred = model.predictor
    seconds = model.info["fit_seconds"]["total"]
    if not args.quiet:
        print(f"fitted {model.space.name}: {len(pred.info['training_devices'])} training devices, "
              f"rank {pred.metrics['latency_ms'].rank}, accuracy {model.accuracy.dataset}, "
              f"energy {'yes' if model.has_energy else 'no'}, {seconds:.1f} s")
    print(f"wrote {args.out}")
    return 0
