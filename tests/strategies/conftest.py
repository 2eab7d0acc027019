"""The NNI tests skip without the ``nni`` extra (each module calls ``pytest.importorskip``).

NNI is imported here first through :mod:`edgeopt_plugins.strategies`, which hides the
warnings NNI 3.0 emits about newer torch versions on its first import.
"""

import contextlib

with contextlib.suppress(ImportError):
    import edgeopt_plugins.strategies  # noqa: F401
