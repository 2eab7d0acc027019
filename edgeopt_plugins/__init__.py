"""edgeopt-plugins: hardware-aware NAS that scales across edge devices.

The public API lives in the subpackages:

- :mod:`edgeopt_plugins.spaces`: search spaces (``get_space("nb201")``).
- :mod:`edgeopt_plugins.data`: benchmark measurement tables.
- :mod:`edgeopt_plugins.devices`: devices, device profiles, simulated fleets.
- :mod:`edgeopt_plugins.predictors`: proxy and device-conditioned predictors.
- :mod:`edgeopt_plugins.optimizer`: the learned device-conditioned optimizer.
- :mod:`edgeopt_plugins.samplers`: Optuna samplers.
- :mod:`edgeopt_plugins.strategies`: NNI strategies (extra ``nni``).
"""

__version__ = "0.1.0"
