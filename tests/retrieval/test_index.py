"""Tests for retrieval.index: search correctness, id stability, persistence and GPU selection.

Vectors are random but seeded and L2-normalised; the recall test uses clustered data because uniform
random vectors in 64-d have no neighbourhood structure and say nothing about a real catalog. The manifest,
build directories and the atomic swap are tested in test_bundle.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
import pytest

from retrieval import index as index_module
from retrieval.bundle import IndexLoadError
from retrieval.index import INDEX_FILE, VectorIndex, resolve_use_gpu

FloatArray = npt.NDArray[np.float32]
IdArray = npt.NDArray[np.int64]
KINDS = ["flat", "ivf", "hnsw"]


def unit(rows: int, dim: int = 32, seed: int = 0) -> FloatArray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, dim)).astype(np.float32)
    out: FloatArray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def product_ids(rows: int) -> IdArray:
    """Sparse, non-contiguous ids, so a test cannot pass by confusing ids with row numbers."""
    return np.arange(rows, dtype=np.int64) * 7 + 1000


def clustered(rows: int, dim: int = 64, centres: int = 40, seed: int = 0) -> FloatArray:
    """Gaussian clusters around fixed centres (the same centres for every ``rows``)."""
    rng = np.random.default_rng(seed)
    centre = rng.standard_normal((centres, dim)).astype(np.float32)
    x = centre[rng.integers(0, centres, rows)] + 0.6 * rng.standard_normal((rows, dim)).astype(np.float32)
    out: FloatArray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def exact_top(queries: FloatArray, vectors: FloatArray, ids: IdArray, k: int) -> IdArray:
    scores = queries @ vectors.T
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
    return ids[np.take_along_axis(top, order, axis=1)]


def recall_at(got: IdArray, truth: IdArray) -> float:
    return float(np.mean([len(set(g) & set(t)) / truth.shape[1] for g, t in zip(got, truth, strict=True)]))


@pytest.fixture(scope="module", params=KINDS)
def small(request: pytest.FixtureRequest) -> tuple[VectorIndex, IdArray, FloatArray]:
    ids, vectors = product_ids(3000), unit(3000)
    return VectorIndex.build(ids, vectors, kind=request.param), ids, vectors


def fresh(kind: str, rows: int = 3000) -> tuple[VectorIndex, IdArray, FloatArray]:
    ids, vectors = product_ids(rows), unit(rows)
    return VectorIndex.build(ids, vectors, kind=kind), ids, vectors


# ---- search ----------------------------------------------------------------------------------------


def test_exact_search_finds_own_id_first() -> None:
    ids, vectors = product_ids(500), unit(500)
    index = VectorIndex.build(ids, vectors)
    assert index.kind == "flat" and index.ntotal == 500 and index.dim == 32
    scores, found = index.search(vectors[:50], 5)
    assert found.shape == (50, 5) and scores.dtype == np.float32 and found.dtype == np.int64
    assert (found[:, 0] == ids[:50]).all()
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all(), "scores come best first"


def test_approximate_kinds_find_own_id_first(small: tuple[VectorIndex, IdArray, FloatArray]) -> None:
    index, ids, vectors = small
    _, found = index.search(vectors[:100], 10)
    assert (found[:, 0] == ids[:100]).mean() >= 0.98


def test_auto_switches_to_ivf_above_threshold() -> None:
    ids, vectors = product_ids(2500), unit(2500)
    assert VectorIndex.build(ids, vectors, approx_threshold=5000).kind == "flat"
    ivf = VectorIndex.build(ids, vectors, approx_threshold=2000)
    assert ivf.kind == "ivf" and ivf.nprobe is not None and ivf.ef_search is None


def test_short_results_are_padded() -> None:
    ids, vectors = product_ids(3), unit(3)
    scores, found = VectorIndex.build(ids, vectors).search(vectors[:1], 5)
    assert set(found[0, :3]) == set(ids) and (found[0, 3:] == -1).all()
    assert np.isneginf(scores[0, 3:]).all()


def test_unnormalised_input_is_normalised() -> None:
    ids, vectors = product_ids(100), unit(100)
    index = VectorIndex.build(ids, vectors * 3.0)
    scores, found = index.search(vectors[:1] * 0.5, 1)
    assert found[0, 0] == ids[0]
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_bad_input_is_refused() -> None:
    ids, vectors = product_ids(10), unit(10)
    with pytest.raises(ValueError, match="unique"):
        VectorIndex.build(np.zeros(10, dtype=np.int64), vectors)
    with pytest.raises(ValueError, match="non-negative"):
        VectorIndex.build(ids - 5000, vectors)
    index = VectorIndex.build(ids, vectors)
    with pytest.raises(ValueError, match="32-d"):
        index.search(unit(1, dim=16), 3)
    with pytest.raises(ValueError, match="kind"):
        VectorIndex.build(ids, vectors, kind="annoy")


# ---- ids, add, replace, remove ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_ids_are_stable_after_save_and_load(kind: str, tmp_path: Path) -> None:
    index, ids, vectors = fresh(kind)
    index.save(tmp_path)
    loaded = VectorIndex.load(tmp_path)
    assert loaded.kind == kind and loaded.ntotal == index.ntotal and loaded.dim == index.dim
    assert (loaded.ids() == np.sort(ids)).all()
    assert loaded.nprobe == index.nprobe and loaded.ef_search == index.ef_search
    assert loaded.tuning == index.tuning
    before = index.search(vectors[:20], 5)
    after = loaded.search(vectors[:20], 5)
    assert (before[1] == after[1]).all()
    np.testing.assert_allclose(before[0], after[0], atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_add_replace_and_remove(kind: str) -> None:
    index, ids, vectors = fresh(kind)
    newcomers = unit(5, seed=99)
    new_ids = np.array([1, 2, 3, 4, 5], dtype=np.int64)
    index.add(new_ids, newcomers)
    assert index.ntotal == 3005 and 3 in index
    _, found = index.search(newcomers, 1)
    assert (found[:, 0] == new_ids).all()

    # Replacing an existing id moves it to the new vector and leaves no trace of the old one.
    index.add(ids[:1], newcomers[:1])
    assert index.ntotal == 3005
    _, found = index.search(vectors[:1], 10)
    assert ids[0] not in found[0]
    _, found = index.search(newcomers[:1], 2)
    assert set(found[0]) == {ids[0], new_ids[0]}

    assert index.remove(np.array([ids[5], ids[6], 999_999_999])) == 2
    assert index.remove([ids[5]]) == 0
    assert index.ntotal == 3003 and ids[5] not in index
    _, found = index.search(vectors[5:7], 10)
    assert not np.isin(found, ids[5:7]).any()


# ---- filtered search -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [50, 2500], ids=["direct-scoring", "id-selector"])
def test_allowed_returns_only_the_best_allowed(small: tuple[VectorIndex, IdArray, FloatArray], size: int) -> None:
    index, ids, vectors = small
    rng = np.random.default_rng(size)
    rows = np.sort(rng.choice(ids.size, size, replace=False))
    allowed = ids[rows]
    queries = unit(20, seed=7)
    k = 5
    _, found = index.search(queries, k, allowed=np.concatenate([allowed, [123_456_789]]))
    assert np.isin(found, allowed).all()
    truth = exact_top(queries, vectors[rows], allowed, k)
    if index.kind == "flat" or size <= index_module.BRUTE_FORCE_LIMIT:
        assert (found == truth).all()
    else:
        assert recall_at(found, truth) >= 0.9
    # An allowed product searched by its own vector comes first whatever the index kind.
    _, own = index.search(vectors[rows[:10]], 1, allowed=set(allowed.tolist()))
    assert (own[:, 0] == allowed[:10]).all()


def test_allowed_with_nothing_indexed_gives_empty_rows() -> None:
    index, _, vectors = fresh("flat", rows=100)
    scores, found = index.search(vectors[:2], 3, allowed=np.array([5, 6], dtype=np.int64))
    assert (found == -1).all() and np.isneginf(scores).all()


# ---- approximate index quality ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def ivf_30k() -> tuple[VectorIndex, IdArray, FloatArray, FloatArray]:
    data = clustered(30_500)
    vectors, queries = data[:30_000], data[30_000:]  # held-out queries from the same distribution
    ids = product_ids(30_000)
    return VectorIndex.build(ids, vectors, approx_threshold=10_000), ids, vectors, queries


def test_ivf_recall_at_10_meets_target(ivf_30k: tuple[VectorIndex, IdArray, FloatArray, FloatArray]) -> None:
    index, ids, vectors, queries = ivf_30k
    assert index.kind == "ivf"
    _, found = index.search(queries, 10)
    recall = recall_at(found, exact_top(queries, vectors, ids, 10))
    assert recall >= 0.95, f"recall@10 {recall:.3f} at nprobe={index.nprobe} ({index.info()})"
    assert index.tuning["tuned_recall_at_10"] >= 0.95


def test_ivf_filtered_recall(ivf_30k: tuple[VectorIndex, IdArray, FloatArray, FloatArray]) -> None:
    index, ids, vectors, queries = ivf_30k
    rows = np.arange(0, 30_000, 10)  # a 10% filter: 3000 ids, so the IDSelector path runs
    _, found = index.search(queries, 10, allowed=ids[rows])
    assert np.isin(found, ids[rows]).all()
    assert recall_at(found, exact_top(queries, vectors[rows], ids[rows], 10)) >= 0.95


def test_set_search_effort() -> None:
    index, _, _ = fresh("ivf")
    index.set_search_effort(nprobe=3, ef_search=99)  # ef_search does not apply to IVF: ignored
    assert index.nprobe == 3
    index.set_search_effort(nprobe=10**6)
    assert index.nprobe == index.info()["nlist"]
    hnsw, _, _ = fresh("hnsw", rows=500)
    hnsw.set_search_effort(ef_search=77, nprobe=4)
    assert hnsw.ef_search == 77
    with pytest.raises(ValueError):
        hnsw.set_search_effort(ef_search=0)


# ---- HNSW removal ------------------------------------------------------------------------------------


def test_hnsw_removal_hides_removed_ids(tmp_path: Path) -> None:
    index, ids, vectors = fresh("hnsw")
    gone = ids[:200]
    assert index.remove(gone) == 200
    assert index.ntotal == 2800 and index.info()["tombstones"] == 200
    _, found = index.search(vectors[:200], 10)
    assert not np.isin(found, gone).any()
    assert (found >= 0).all()

    # Deletions are stored in the index file.
    index.save(tmp_path)
    loaded = VectorIndex.load(tmp_path)
    assert loaded.ntotal == 2800
    _, found = loaded.search(vectors[:200], 10)
    assert not np.isin(found, gone).any()

    # A removed id can come back with a new vector; its old vector must not resurface.
    replacement = unit(1, seed=42)
    loaded.add(gone[:1], replacement)
    _, found = loaded.search(replacement, 1)
    assert found[0, 0] == gone[0]
    _, found = loaded.search(vectors[:1], 10)
    assert gone[0] not in found[0]


def test_hnsw_compacts_when_tombstones_dominate() -> None:
    index, ids, vectors = fresh("hnsw", rows=2200)
    index.remove(ids[:1200])
    assert index.ntotal == 1000 and index.info()["tombstones"] == 0
    _, found = index.search(vectors[1200:1300], 1)
    assert (found[:, 0] == ids[1200:1300]).all()


# ---- loading errors ---------------------------------------------------------------------------------


def is_one_sentence(text: str) -> bool:
    return text.endswith(".") and "\n" not in text and text.count("; ") == 1


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing"])
def test_corrupt_index_file_raises_index_load_error(tmp_path: Path, damage: str) -> None:
    index, _, _ = fresh("flat", rows=200)
    index.save(tmp_path)
    path = tmp_path / INDEX_FILE
    if damage == "garbage":
        path.write_bytes(b"\x00not a faiss index at all" * 10)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    else:
        path.unlink()
    with pytest.raises(IndexLoadError) as err:
        VectorIndex.load(tmp_path)
    message = str(err.value)
    assert "`shopbot reindex`" in message and str(path) in message and is_one_sentence(message)


# ---- GPU selection (a stand-in faiss GPU API; nothing here runs on a GPU) -----------------------------


class FakeGpuApi:
    """Stands in for faiss-gpu's StandardGpuResources/index_cpu_to_gpu: the "GPU copy" is a CPU clone,
    so the tests check when copies are made and which copy answers, not GPU arithmetic."""

    def __init__(self) -> None:
        self.copies: list[Any] = []

    def install(self, monkeypatch: pytest.MonkeyPatch, gpus: int = 1) -> FakeGpuApi:
        monkeypatch.setattr(faiss, "StandardGpuResources", lambda: object(), raising=False)
        monkeypatch.setattr(faiss, "get_num_gpus", lambda: gpus)
        monkeypatch.setattr(faiss, "index_cpu_to_gpu", self.index_cpu_to_gpu, raising=False)
        return self

    def index_cpu_to_gpu(self, resources: object, device: int, index: Any) -> Any:
        assert device == 0
        copy = faiss.clone_index(index)
        self.copies.append(copy)
        return copy


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGpuApi]:
    yield FakeGpuApi().install(monkeypatch)


def test_gpu_selection_without_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(faiss, "StandardGpuResources", raising=False)
    assert resolve_use_gpu(None) is False and resolve_use_gpu(False) is False
    with pytest.raises(RuntimeError, match="faiss-gpu"):
        resolve_use_gpu(True)
    FakeGpuApi().install(monkeypatch, gpus=0)  # a GPU build of faiss on a machine without a GPU
    assert resolve_use_gpu(None) is False


def test_gpu_replica_serves_unfiltered_search(fake_gpu: FakeGpuApi, tmp_path: Path) -> None:
    ids, vectors = product_ids(300), unit(300)
    index = VectorIndex.build(ids, vectors)  # use_gpu=None: auto-detects the (fake) GPU
    assert index.on_gpu and fake_gpu.copies == []  # the replica is made on first search
    _, found = index.search(vectors[:3], 1)
    assert (found[:, 0] == ids[:3]).all() and len(fake_gpu.copies) == 1
    index.search(vectors[:3], 1)
    assert len(fake_gpu.copies) == 1, "the replica is reused until the index changes"

    index.search(vectors[:3], 1, allowed=ids[:10])  # filters run on the CPU index
    assert len(fake_gpu.copies) == 1
    index.add(np.array([1], dtype=np.int64), unit(1, seed=5))
    _, found = index.search(unit(1, seed=5), 1)
    assert found[0, 0] == 1 and len(fake_gpu.copies) == 2, "a change makes a fresh replica"

    index.save(tmp_path)
    assert VectorIndex.load(tmp_path, use_gpu=False).ntotal == 301


def test_gpu_trains_ivf_and_keeps_hnsw_on_cpu(fake_gpu: FakeGpuApi) -> None:
    ids, vectors = product_ids(2000), unit(2000)
    ivf = VectorIndex.build(ids, vectors, kind="ivf")
    assert len(fake_gpu.copies) == 1, "k-means assignment ran on the GPU flat index"
    _, found = ivf.search(vectors[:5], 1)
    assert (found[:, 0] == ids[:5]).all() and len(fake_gpu.copies) == 2
    hnsw = VectorIndex.build(ids[:300], vectors[:300], kind="hnsw")
    hnsw.search(vectors[:2], 1)
    assert not hnsw.on_gpu and len(fake_gpu.copies) == 2
