"""Matplotlib set-up shared by every plot the library writes (PNG, no display needed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["new_figure", "save_figure"]


def new_figure(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``plt.subplots`` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Save ``fig`` as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    from edgeopt_plugins._io import atomic_write

    p = Path(path)
    with atomic_write(p, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return p
