"""End-to-end example on NAS-Bench-201: search a device the model has never seen.

Needs the public benchmark data (``EDGEOPT_DATA_DIR``). It fits a small model
without the target device, gives the sampler 10 measurements of the target, and
lets the study measure designs through the benchmark table.
"""

import os

import numpy as np
import optuna
import optunahub

from edgeopt_plugins.data import load_table
from edgeopt_plugins.devices import DeviceProfile
from edgeopt_plugins.optimizer import FitConfig, fit_from_data
from edgeopt_plugins.spaces import get_space

TARGET = os.environ.get("EDGEOPT_EXAMPLE_DEVICE", "pixel3")
TRIALS = int(os.environ.get("EDGEOPT_EXAMPLE_TRIALS", "20"))

# From the OptunaHub registry, or from a local copy of it (OPTUNAHUB_LOCAL_ROOT=docs/hub).
local_root = os.environ.get("OPTUNAHUB_LOCAL_ROOT")
module = (optunahub.load_local_module("samplers/edgeopt", registry_root=local_root) if local_root
          else optunahub.load_module("samplers/edgeopt"))
space = get_space("nb201")
latency = load_table("nb201", "latency_ms")
accuracy = dict(zip(latency.archs, load_table("nb201", "accuracy").lookup(latency.archs, "cifar10")))
truth = dict(zip(latency.archs, latency.column(TARGET)))
budget = float(np.percentile(latency.column(TARGET), 30))

model = fit_from_data("nb201", exclude_devices=[TARGET], config=FitConfig.tiny(), seed=0)
profile = DeviceProfile.from_table(latency, TARGET, k=10, seed=0)
# The objective below is the benchmark's CIFAR-10 accuracy, so we name it; leave accuracy out to learn it online.
sampler = module.DeviceConditionedSampler(model=model, profile=profile, latency_budget_ms=budget, accuracy="table",
                                          seed=0)


def objective(trial: optuna.Trial) -> float:
    arch = space.suggest(trial)
    trial.set_user_attr("latency_ms", truth[arch])
    trial.set_constraint("latency", truth[arch] - budget)
    return accuracy[arch] if truth[arch] <= budget else accuracy[arch] - 100.0


optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(direction="maximize", sampler=sampler)
study.optimize(objective, n_trials=TRIALS)
best = max((t for t in study.trials if t.user_attrs["latency_ms"] <= budget), key=lambda t: t.value)
optimum = max(a for a, lat in zip(accuracy.values(), truth.values()) if lat <= budget)
print(f"{TARGET}: budget {budget:.2f} ms; best found {best.value:.2f}% at trial {best.number}; "
      f"true optimum {optimum:.2f}%")
