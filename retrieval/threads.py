"""CPU thread pools for torch, FAISS (OpenMP) and BLAS, set in one place.

Serving and indexing want opposite things. A query is a handful of tiny operations: spread over two
cores it gains nothing, and worse, FAISS's OpenMP pool and torch's pool busy-wait after each parallel
region, so a FAISS search followed by a torch forward pass fight for the same cores (measured here:
~7 ms encode + 1.6 ms search single-threaded, several times more with both pools at two threads).
Concurrent shoppers are served by concurrent requests, not by threads inside one query. Indexing is
the opposite: big batches that scale with cores. So the engine serves single-threaded by default and
``build_bundle`` raises the pools for the duration of a build.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["compute_threads", "set_threads"]


def _get() -> tuple[int | None, int | None]:
    torch_n = faiss_n = None
    try:
        import torch

        torch_n = torch.get_num_threads()
    except ImportError:
        pass
    try:
        import faiss

        faiss_n = faiss.omp_get_max_threads()
    except ImportError:
        pass
    return torch_n, faiss_n


def set_threads(n: int | None) -> None:
    """Size torch's and FAISS's pools (None or 0: all cores)."""
    n = n or os.cpu_count() or 1
    try:
        import torch

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    except ImportError:
        pass
    try:
        import faiss

        faiss.omp_set_num_threads(n)
    except ImportError:
        pass


@contextmanager
def compute_threads(n: int | None = None) -> Iterator[None]:
    """Use ``n`` threads (default: all cores) inside the block, then restore what was set before."""
    torch_n, faiss_n = _get()
    set_threads(n)
    try:
        yield
    finally:
        try:
            import torch

            if torch_n is not None and torch.get_num_threads() != torch_n:
                torch.set_num_threads(torch_n)
        except ImportError:
            pass
        if faiss_n is not None:
            import faiss

            faiss.omp_set_num_threads(faiss_n)
