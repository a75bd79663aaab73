"""Thread pools: serving single-threaded (BLAS included), builds on every core, restored afterwards."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_info

from retrieval.threads import compute_threads


def _blas_threads() -> set[int]:
    return {int(i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"}


def test_serving_limits_blas_to_one_thread_and_a_build_raises_it_for_its_duration() -> None:
    np.ones((64, 64)) @ np.ones((64, 64))  # numpy's BLAS is loaded
    before = _blas_threads()
    with compute_threads(1):  # as serving sets them (set_threads(1)); the block restores every pool after
        assert _blas_threads() == {1}
        with compute_threads(2):
            assert _blas_threads() == {2}
        assert _blas_threads() == {1}
    assert _blas_threads() == before
