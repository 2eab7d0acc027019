"""Refusing work that cannot fit in memory, before it starts (not after minutes of swapping or an OOM kill)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from edgeopt_plugins.exceptions import InputError

__all__ = ["available_memory_bytes", "require_memory"]


def available_memory_bytes() -> int:
    """Memory this process can still take: the system's available memory, or less under a cgroup limit."""
    found: list[int] = []
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    with contextlib.suppress(OSError, ValueError):
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    if not found:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            found.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    return max(0, min(found)) if found else 2**63


def _size(nbytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if nbytes < 1024 or unit == "PB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def require_memory(nbytes: float, what: str, hint: str) -> None:
    """Refuse ``what`` if its estimated ``nbytes`` exceed the memory available now.

    Args:
        nbytes: Estimated peak memory (a lower bound is best: refusing work that would fit is worse).
        what: The request, as the user gave it (``"--simulated 100000000"``).
        hint: What to do instead.

    Raises:
        InputError: saying the estimate and what is available.

    Example:
        >>> require_memory(10**30, "--simulated 10**30", "use fewer devices")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        edgeopt_plugins.exceptions.InputError: --simulated 10**30 needs about 8.88e+14 PB of memory, more than ...
    """
    free = available_memory_bytes()
    if nbytes > free:
        raise InputError(f"{what} needs about {_size(nbytes)} of memory, more than the {_size(free)} available; {hint}")
