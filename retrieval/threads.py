"""CPU thread pools for torch, FAISS (OpenMP) and BLAS (numpy's and FAISS's OpenBLAS), set in one place.

Serving and indexing want opposite things. A query is a handful of tiny operations: spread over two
cores it gains nothing, and worse, FAISS's OpenMP pool and torch's pool busy-wait after each parallel
region, so a FAISS search followed by a torch forward pass fight for the same cores (measured here:
~7 ms encode + 1.6 ms search single-threaded, several times more with both pools at two threads).
Concurrent shoppers are served by concurrent requests, not by threads inside one query. Indexing is
the opposite: big batches that scale with cores. So the engine serves single-threaded by default and
``build_bundle`` raises the pools for the duration of a build.

numpy's BLAS counts too: a turn's small products (a query against a few hundred candidate vectors, the
intent classifier's logits) are large enough for OpenBLAS to wake its second thread, which then spins
on the other core; one thread saves ~0.5 ms of CPU per turn on the load test and loses no time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["compute_threads", "set_threads"]


def _get() -> tuple[int | None, int | None]:
    torch_n = faiss_n = None
    try:
        import torch  # optional and slow to load: only when threads are sized

        torch_n = torch.get_num_threads()
    except ImportError:
        pass
    try:
        import faiss  # faiss loads slowly: only when threads are sized

        faiss_n = faiss.omp_get_max_threads()
    except ImportError:
        pass
    return torch_n, faiss_n


def _blas_limits(n: int) -> Any:
    """Limit every loaded BLAS library to ``n`` threads; the returned object restores the previous limits
    (``restore_original_limits()``, or as a context manager). None without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a pinned dependency
        return None
    return threadpool_limits(limits=n, user_api="blas")


def set_threads(n: int | None) -> None:
    """Size torch's, FAISS's and the BLAS libraries' pools (None or 0: all cores)."""
    n = n or os.cpu_count() or 1
    try:
        import torch  # optional and slow to load: only when threads are sized

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    except ImportError:
        pass
    try:
        import faiss  # faiss loads slowly: only when threads are sized

        faiss.omp_set_num_threads(n)
    except ImportError:
        pass
    _blas_limits(n)  # after the imports: threadpoolctl sees the libraries loaded by then


@contextmanager
def compute_threads(n: int | None = None) -> Iterator[None]:
    """Use ``n`` threads (default: all cores) inside the block, then restore what was set before."""
    torch_n, faiss_n = _get()
    blas = _blas_limits(n or os.cpu_count() or 1)  # remembers the BLAS limits set before
    set_threads(n)
    try:
        yield
    finally:
        if blas is not None:
            blas.restore_original_limits()
        try:
            import torch  # optional and slow to load: only when threads are sized

            if torch_n is not None and torch.get_num_threads() != torch_n:
                torch.set_num_threads(torch_n)
        except ImportError:
            pass
        if faiss_n is not None:
            import faiss  # loaded already: _get read faiss_n from it

            faiss.omp_set_num_threads(faiss_n)
