"""PyTorch's intra-op thread count, set for a block of work and restored."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["torch_threads"]


@contextlib.contextmanager
def torch_threads(n: int = 1) -> Iterator[None]:
    """Run PyTorch with ``n`` intra-op threads, then restore the previous setting.

    The networks here are small: one thread is as fast as several on an idle
    machine and many times faster on a busy one (threads spin-waiting for cores
    other processes hold made a 2-thread fit 20x slower on a shared 2-core box).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
