"""NNI 3.0 strategies, model spaces and profilers driven by edgeopt predictors (extra ``nni``).

Importing this subpackage imports NNI (and with it PyTorch Lightning, about 3 s);
``import edgeopt_plugins`` alone never does.

Example:
    >>> from nni.nas.strategy import RegularizedEvolution
    >>> from edgeopt_plugins.strategies import run_nni_search
    >>> result = run_nni_search("nb201", lambda arch: arch.count("nor_conv"),
    ...                         RegularizedEvolution(population_size=4, sample_size=2, seed=0), max_trials=6)
    >>> len(result.trials)
    6
"""

import warnings

try:
    import nni  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "edgeopt_plugins.strategies needs NNI 3.0, which is not installed: install the nni extra in your clone "
        "of edgeopt-plugins (it is not on PyPI): pip install -c constraints.txt -e '.[nni]'"
    ) from err

with warnings.catch_warnings():
    # NNI 3.0 inspects torch.nn on import and warns about classes newer torch versions added.
    warnings.filterwarnings("ignore", message=r".*is found to be not a nn\.Module", category=RuntimeWarning)
    from edgeopt_plugins.strategies._evaluator import LATENCY_KEY, ArchEvaluator
    from edgeopt_plugins.strategies._profiler import LatencyProfiler, PenaltyMiddleware, sample_filter
    from edgeopt_plugins.strategies._run import NNISearchResult, NNITrial, run_nni_search
    from edgeopt_plugins.strategies._space import (
        NB201_HUB_LABELS,
        NNILabels,
        arch_to_sample,
        nni_space,
        resolve_labels,
        sample_to_arch,
    )
    from edgeopt_plugins.strategies._strategy import GuidedStrategy
    from edgeopt_plugins.strategies._conditioned import DeviceConditionedStrategy  # noqa: I001
    from edgeopt_plugins.strategies._proxy import ProxyStrategy

__all__ = [
    "DeviceConditionedStrategy",
    "ProxyStrategy",
    "GuidedStrategy",
    "run_nni_search",
    "NNISearchResult",
    "NNITrial",
    "ArchEvaluator",
    "LATENCY_KEY",
    "LatencyProfiler",
    "sample_filter",
    "PenaltyMiddleware",
    "nni_space",
    "arch_to_sample",
    "sample_to_arch",
    "resolve_labels",
    "NNILabels",
    "NB201_HUB_LABELS",
]
