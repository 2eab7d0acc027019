"""PyTorch's intra-op thread count, set for a block of work and restored."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["blas_threads", "torch_threads"]


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


def blas_threads(n: int = 1) -> contextlib.AbstractContextManager[object]:
    """Limit BLAS to ``n`` threads for a block of many small matrix solves.

    Thousands of ``k x k`` solves gain nothing from threads, and on a busy machine the BLAS
    thread hand-offs make them many times slower. Needs ``threadpoolctl`` (installed with
    SciPy's usual companions); without it nothing changes.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")
