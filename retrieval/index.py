"""FAISS vector index over product vectors: build, search, mutate, save and load one index file.

The manifest, the build directories and the atomic swap that publish an index live in ``retrieval.bundle``,
which needs no faiss, so code that only looks for the current build never loads it.

Why it looks like this:

- Product ids are the catalog's own stable integers, not FAISS row numbers, so an incremental reindex
  can add, replace and remove products without renumbering anything the logs or the SQL store refer to.
  Flat and HNSW indexes are wrapped in ``IndexIDMap2`` (which can also reconstruct a vector by id);
  IVF stores ids natively and keeps a hashtable direct map for the same reason.
- Every vector is L2-normalised float32, so inner product is cosine similarity, the same score the
  re-ranker and the recommender use.
- Small catalogs get an exact ``IndexFlatIP``; above ``approx_threshold`` an IVF index whose ``nprobe``
  is measured at build time to reach a recall target against exact search, so "approximate" is a number
  we checked rather than a hope. HNSW is available on request.
- The CPU index is the single source of truth. When a GPU is present a replica of it is copied to the
  GPU for unfiltered searches; adding, removing, reconstructing, filtered search and saving always use
  the CPU index, because GPU indexes cannot remove ids, look vectors up by id or take an ``IDSelector``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import threading
from collections.abc import Callable, Set
from pathlib import Path
from typing import Any, Literal, cast

import faiss as _faiss
import numpy as np
import numpy.typing as npt

from retrieval.bundle import (
    KINDS,
    MANIFEST_FILE,
    IndexLoadError,
    Manifest,
    atomic_write_text,
    check_manifest,
    fsync_dir,
    fsync_file,
    rebuild_hint,
)

# faiss ships an incomplete __init__.pyi (no SearchParametersHNSW or DirectMap, no keyword arguments on
# search parameters), so it is used untyped here rather than papered over with ignores on every line.
faiss: Any = _faiss

__all__ = [
    "BRUTE_FORCE_LIMIT",
    "INDEX_FILE",
    "INDEX_INFO_FILE",
    "IndexKind",
    "VectorIndex",
    "gpu_available",
    "open_index",
    "resolve_use_gpu",
]

log = logging.getLogger(__name__)

IndexKind = Literal["flat", "ivf", "hnsw"]
FloatArray = npt.NDArray[np.float32]
IdArray = npt.NDArray[np.int64]

INDEX_FILE = "index.faiss"
#: Build-time facts FAISS does not store (measured recall), so an incremental reindex keeps them.
INDEX_INFO_FILE = "index.json"

#: Below this many allowed ids a filtered search scores the allowed vectors directly: exact, and
#: cheaper than walking an IVF/HNSW structure that mostly skips what it visits.
BRUTE_FORCE_LIMIT = 2000
#: FAISS GPU search cannot return more than this many neighbours; larger k runs on the CPU.
GPU_MAX_K = 2048
#: HNSW graph degree. 32 is FAISS's recommended trade-off for 100-1000-d embeddings.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH_DEFAULT = 64
#: Filtered HNSW search widens efSearch by 1/selectivity, up to this cap.
HNSW_EF_FILTER_CAP = 4096
#: Rows added per FAISS call, so a progress bar can move and memory stays bounded.
ADD_CHUNK = 50_000
RECALL_K = 10
TUNING_QUERIES = 512
_INT64_MAX = np.iinfo(np.int64).max


# --------------------------------------------------------------------------------------------------
# GPU selection
# --------------------------------------------------------------------------------------------------


def gpu_available() -> bool:
    """True when this faiss build has GPU support and sees at least one GPU (faiss-gpu on CUDA)."""
    if not hasattr(faiss, "StandardGpuResources"):
        return False
    num_gpus = getattr(faiss, "get_num_gpus", None)
    try:
        return num_gpus is not None and int(num_gpus()) > 0
    except Exception:  # a broken CUDA driver must degrade to CPU, not crash the bot
        log.warning("faiss.get_num_gpus() failed; using the CPU index", exc_info=True)
        return False


def resolve_use_gpu(use_gpu: bool | None) -> bool:
    """Decide once: ``None`` means GPU when present; ``True`` without a GPU fails loudly."""
    available = gpu_available()
    if use_gpu is None:
        return available
    if use_gpu and not available:
        raise RuntimeError(
            "A GPU vector index was requested but faiss has no GPU support here or sees no GPU; "
            "install faiss-gpu (the `gpu` extra) on a CUDA machine or leave use_gpu unset."
        )
    return bool(use_gpu)


# --------------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------------


def _as_ids(ids: npt.ArrayLike, *, unique: bool = True) -> IdArray:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"ids must be a 1-d array, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"ids must be integers, got {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if arr.size and int(arr.min()) < 0:
        # -1 means "no result" in search output and negative ids mark removed HNSW entries.
        raise ValueError("ids must be non-negative")
    if unique and np.unique(arr).size != arr.size:
        raise ValueError("ids must be unique within one call")
    return arr


def _normalised(arr: FloatArray) -> FloatArray:
    """Rows scaled to unit length, copying only when some row is not already unit length."""
    norms = np.linalg.norm(arr, axis=1)
    if arr.shape[0] and bool(np.any(np.abs(norms - 1.0) > 1e-3)):
        arr = arr / np.where(norms > 0, norms, 1.0).astype(np.float32)[:, None]
    return np.ascontiguousarray(arr, dtype=np.float32)


def _as_vectors(vectors: npt.ArrayLike, dim: int | None, *, what: str = "vectors") -> FloatArray:
    arr = np.asarray(vectors, dtype=np.float32)
    if what == "queries" and arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 2-d array, got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{what} have {arr.shape[1]} dimensions but the index holds {dim}-d vectors")
    if not bool(np.isfinite(arr).all()):
        raise ValueError(f"{what} contain NaN or infinity")
    return _normalised(arr)


# --------------------------------------------------------------------------------------------------
# The index
# --------------------------------------------------------------------------------------------------


class VectorIndex:
    """Inner-product search over L2-normalised float32 vectors (cosine), keyed by product id.

    Kinds:

    - ``flat``: exact ``IndexFlatIP`` in ``IndexIDMap2``.
    - ``ivf``: ``IndexIVFFlat`` (inner product) with native ids and a hashtable direct map, so it can
      add, remove and reconstruct by id; ``nprobe`` is tuned at build time to a recall target.
    - ``hnsw``: ``IndexHNSWFlat`` (inner product, M=32) in ``IndexIDMap2``. HNSW graphs cannot delete
      nodes, so ``remove`` relabels the entry with a negative tombstone id (unique per row) and every
      search excludes negative ids with an ``IDSelectorRange``. The tombstones are stored in the index
      file and survive save/load; when they outnumber the live entries the graph is rebuilt from the
      live vectors. A tombstone id rather than a set of deleted product ids lets a removed product be
      added again without the old vector resurfacing.

    Searches may run concurrently; mutations (``add``, ``remove``, ``set_search_effort``) must not run
    at the same time as searches. The serving bot never mutates: reindex builds a new instance.
    """

    def __init__(
        self,
        index: Any,
        kind: IndexKind,
        ids: IdArray,
        *,
        use_gpu: bool = False,
        gpu_resources: Any = None,
        tuning: dict[str, float] | None = None,
    ) -> None:
        """Wrap an existing CPU faiss index; use ``build`` or ``load`` instead of calling this."""
        self._index = index
        self._kind: IndexKind = kind
        self._ids: IdArray = ids  # sorted, unique, live ids only
        self._lock = threading.Lock()
        self.tuning: dict[str, float] = dict(tuning or {})
        # HNSW has no GPU implementation in faiss, so an HNSW index always stays on the CPU.
        self._use_gpu = bool(use_gpu) and kind != "hnsw"
        if use_gpu and kind == "hnsw":
            log.info("HNSW has no faiss GPU implementation; searching it on the CPU")
        self._gpu_res: Any = None
        if self._use_gpu:
            # Kept on the instance: the GPU replica uses this memory pool for as long as it lives.
            self._gpu_res = gpu_resources if gpu_resources is not None else faiss.StandardGpuResources()
        self._gpu_index: Any = None

    # ---- construction ---------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        ids: npt.ArrayLike,
        vectors: npt.ArrayLike,
        *,
        kind: str = "auto",
        approx_threshold: int = 20_000,
        use_gpu: bool | None = None,
        progress: bool = False,
        target_recall: float = 0.95,
        tuning_queries: npt.ArrayLike | None = None,
        seed: int = 1234,
    ) -> VectorIndex:
        """Index ``vectors`` under ``ids``; approximate kinds are tuned to ``target_recall``@10.

        ``kind="auto"`` is exact below ``approx_threshold`` vectors and IVF above, because IVF (unlike
        HNSW) removes entries for real, which an incremental reindex needs. ``tuning_queries`` (encoded
        real shopper queries, when the logs have some) join the built-in stand-ins for tuning, because
        queries are phrased unlike product titles and can need a higher nprobe.
        """
        id_arr = _as_ids(ids)
        vecs = _as_vectors(vectors, None)
        if id_arr.size != vecs.shape[0]:
            raise ValueError(f"{id_arr.size} ids for {vecs.shape[0]} vectors")
        n, d = vecs.shape
        if d == 0:
            raise ValueError("vectors must have at least one dimension")
        if kind == "auto":
            chosen: IndexKind = "ivf" if n >= approx_threshold else "flat"
        elif kind in KINDS:
            chosen = cast(IndexKind, kind)
        else:
            raise ValueError(f"unknown index kind {kind!r}; use 'auto', 'flat', 'ivf' or 'hnsw'")

        gpu = resolve_use_gpu(use_gpu)
        res = faiss.StandardGpuResources() if gpu and chosen != "hnsw" else None
        if chosen == "flat":
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(d))
        elif chosen == "ivf":
            index = _train_ivf(vecs, gpu_resources=res, seed=seed)
        else:
            index = faiss.IndexIDMap2(_new_hnsw(d))

        self = cls(index, chosen, np.empty(0, dtype=np.int64), use_gpu=gpu, gpu_resources=res)
        self._add_new(id_arr, vecs, progress=progress)
        if chosen != "flat" and n > 0:
            extra = None if tuning_queries is None else _as_vectors(tuning_queries, d, what="queries")
            self.tuning = self._tune(id_arr, vecs, target_recall=target_recall, seed=seed, extra=extra)
        log.info("built %s vector index: %d vectors, %d-d, %s", chosen, n, d, self.info())
        return self

    # ---- properties -----------------------------------------------------------------------------

    @property
    def ntotal(self) -> int:
        """Live vectors (removed HNSW entries are not counted)."""
        return int(self._ids.size)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def kind(self) -> IndexKind:
        return self._kind

    @property
    def nprobe(self) -> int | None:
        """IVF lists scanned per query, or ``None`` for other kinds."""
        return int(self._index.nprobe) if self._kind == "ivf" else None

    @property
    def ef_search(self) -> int | None:
        """HNSW candidate-list size per query, or ``None`` for other kinds."""
        return int(self._hnsw().hnsw.efSearch) if self._kind == "hnsw" else None

    @property
    def on_gpu(self) -> bool:
        """Whether unfiltered searches go to a GPU replica."""
        return self._use_gpu

    def ids(self) -> IdArray:
        """Sorted live ids, a copy; reindex diffs the catalog against it."""
        return self._ids.copy()

    def __contains__(self, product_id: object) -> bool:
        if not isinstance(product_id, (int, np.integer)):
            return False
        pos = int(np.searchsorted(self._ids, product_id))
        return pos < self._ids.size and int(self._ids[pos]) == int(product_id)

    def __len__(self) -> int:
        return self.ntotal

    def info(self) -> dict[str, Any]:
        """Plain facts for ``Manifest.extra`` and logs."""
        out: dict[str, Any] = {"kind": self._kind, "ntotal": self.ntotal, "dim": self.dim}
        if self._kind == "ivf":
            out.update(nlist=int(self._index.nlist), nprobe=self.nprobe)
        if self._kind == "hnsw":
            out.update(m=HNSW_M, ef_search=self.ef_search, tombstones=self._tombstones())
        out.update(self.tuning)
        return out

    def set_search_effort(self, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Trade speed for recall at run time. A setting that does not apply to this kind is ignored,
        so one configuration works whatever kind ``auto`` picked."""
        if nprobe is not None:
            if nprobe < 1:
                raise ValueError("nprobe must be at least 1")
            if self._kind == "ivf":
                self._index.nprobe = min(int(nprobe), int(self._index.nlist))
                self._drop_gpu_replica()  # the replica copies nprobe when it is made
            else:
                log.debug("nprobe ignored for a %s index", self._kind)
        if ef_search is not None:
            if ef_search < 1:
                raise ValueError("ef_search must be at least 1")
            if self._kind == "hnsw":
                self._hnsw().hnsw.efSearch = int(ef_search)
            else:
                log.debug("ef_search ignored for a %s index", self._kind)

    # ---- mutation -------------------------------------------------------------------------------

    def add(self, ids: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        """Add products; an id already present is replaced (removed first), so re-adding is safe."""
        id_arr = _as_ids(ids)
        vecs = _as_vectors(vectors, self.dim)
        if id_arr.size != vecs.shape[0]:
            raise ValueError(f"{id_arr.size} ids for {vecs.shape[0]} vectors")
        present = id_arr[np.isin(id_arr, self._ids)]
        if present.size:
            self._remove_present(present)
        self._add_new(id_arr, vecs)

    def remove(self, ids: npt.ArrayLike) -> int:
        """Remove products by id and return how many were present; unknown ids are ignored."""
        id_arr = np.unique(_as_ids(ids, unique=False))
        present = id_arr[np.isin(id_arr, self._ids)]
        if present.size:
            self._remove_present(present)
        return int(present.size)

    def _add_new(self, ids: IdArray, vecs: FloatArray, *, progress: bool = False) -> None:
        n = ids.size
        bar: Any = None
        if progress and n:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # progress is a nicety; indexing must not depend on it
                tqdm = None
            if tqdm is not None:
                bar = tqdm(total=n, desc=f"indexing vectors ({self._kind})", unit="vec")
        try:
            for start in range(0, n, ADD_CHUNK):
                stop = min(start + ADD_CHUNK, n)
                self._index.add_with_ids(vecs[start:stop], ids[start:stop])
                if bar is not None:
                    bar.update(stop - start)
        finally:
            if bar is not None:
                bar.close()
        self._ids = np.union1d(self._ids, ids).astype(np.int64, copy=False)
        self._drop_gpu_replica()

    def _remove_present(self, present: IdArray) -> None:
        present = np.ascontiguousarray(present, dtype=np.int64)
        if self._kind == "flat":
            removed = int(self._index.remove_ids(faiss.IDSelectorBatch(present)))
        elif self._kind == "ivf":
            # The hashtable direct map only accepts an IDSelectorArray for removal.
            removed = int(self._index.remove_ids(faiss.IDSelectorArray(present)))
        else:
            removed = self._tombstone(present)
        if removed != present.size:
            raise RuntimeError(f"faiss removed {removed} of {present.size} ids; the index is inconsistent")
        self._ids = np.setdiff1d(self._ids, present, assume_unique=True)
        self._drop_gpu_replica()
        if self._kind == "hnsw" and self._tombstones() > max(self.ntotal, 1024):
            self._compact_hnsw()

    def _tombstone(self, present: IdArray) -> int:
        id_map = faiss.vector_to_array(self._index.id_map)
        rows = np.flatnonzero(np.isin(id_map, present))
        id_map[rows] = -2 - rows  # unique per row, never -1 (which means "no result")
        faiss.copy_array_to_vector(id_map, self._index.id_map)
        self._index.construct_rev_map()
        return int(rows.size)

    def _tombstones(self) -> int:
        return int(self._index.ntotal) - self.ntotal if self._kind == "hnsw" else 0

    def _compact_hnsw(self) -> None:
        """Rebuild the graph from live vectors once tombstones dominate and slow every search."""
        ef = self.ef_search or HNSW_EF_SEARCH_DEFAULT
        live = self._ids
        vecs = self._reconstruct(live)
        fresh = faiss.IndexIDMap2(_new_hnsw(self.dim))
        fresh.add_with_ids(vecs, live)
        self._index = fresh
        self._hnsw().hnsw.efSearch = ef
        log.info("compacted HNSW index to %d live vectors", live.size)

    # ---- search ---------------------------------------------------------------------------------

    def search(
        self, queries: npt.ArrayLike, k: int, *, allowed: npt.ArrayLike | Set[int] | None = None
    ) -> tuple[FloatArray, IdArray]:
        """Top-``k`` ids by cosine for each query row: ``(scores m x k, ids m x k)``.

        Missing slots (fewer than ``k`` candidates) have id ``-1`` and score ``-inf``. ``allowed``
        restricts results to those ids (the structured filters: category, price, stock); it is
        answered exactly by direct scoring when small, and with a FAISS ``IDSelector`` otherwise.
        """
        if k < 1:
            raise ValueError("k must be at least 1")
        q = _as_vectors(queries, self.dim, what="queries")
        if allowed is None:
            scores, labels = self._search_all(q, k)
            live = None
            wanted = min(k, self.ntotal)
        else:
            if isinstance(allowed, Set):  # filters are often built as Python sets of product ids
                allowed = np.fromiter(allowed, dtype=np.int64, count=len(allowed))
            live = np.unique(_as_ids(allowed, unique=False))
            live = live[np.isin(live, self._ids, assume_unique=True)]
            if live.size == 0 or q.shape[0] == 0:
                return _empty_result(q.shape[0], k)
            if live.size <= BRUTE_FORCE_LIMIT:
                return self._brute_force(q, k, live)
            scores, labels = self._search_selected(q, k, live)
            wanted = min(k, int(live.size))
        # An approximate search can come back short (a filter emptied the probed lists, tombstones
        # crowded the HNSW beam). Those rows are answered again exhaustively rather than left short.
        short = (labels >= 0).sum(axis=1) < wanted
        if bool(short.any()):
            rows = np.flatnonzero(short)
            fix_scores, fix_labels = self._search_exhaustive(q[rows], k, live)
            scores[rows] = fix_scores
            labels[rows] = fix_labels
        return _clean(scores, labels)

    def _search_all(self, q: FloatArray, k: int) -> tuple[FloatArray, IdArray]:
        if self._use_gpu and k <= GPU_MAX_K:
            replica = self._gpu_replica()
            if replica is not None:
                scores, labels = replica.search(q, k)
                return scores, labels
        if self._kind == "hnsw" and self._tombstones():
            params = faiss.SearchParametersHNSW(sel=faiss.IDSelectorRange(0, int(_INT64_MAX)), efSearch=self.ef_search)
            return cast(tuple[FloatArray, IdArray], self._index.search(q, k, params=params))
        return cast(tuple[FloatArray, IdArray], self._index.search(q, k))

    def _search_selected(self, q: FloatArray, k: int, live: IdArray) -> tuple[FloatArray, IdArray]:
        sel = faiss.IDSelectorBatch(live)
        selectivity = live.size / max(int(self._index.ntotal), 1)
        if self._kind == "flat":
            params = faiss.SearchParameters(sel=sel)
        elif self._kind == "ivf":
            # Only a fraction of every probed list passes the filter, so probe proportionally more
            # lists to see about as many allowed vectors as an unfiltered search sees vectors.
            nlist = int(self._index.nlist)
            nprobe = min(nlist, math.ceil(int(self._index.nprobe) / selectivity))
            params = faiss.SearchParametersIVF(sel=sel, nprobe=nprobe)
        else:
            ef = max(self.ef_search or HNSW_EF_SEARCH_DEFAULT, k)
            ef = max(ef, min(HNSW_EF_FILTER_CAP, math.ceil(ef / selectivity)))
            params = faiss.SearchParametersHNSW(sel=sel, efSearch=ef)
        scores, labels = self._index.search(q, k, params=params)
        return scores, labels

    def _search_exhaustive(self, q: FloatArray, k: int, live: IdArray | None) -> tuple[FloatArray, IdArray]:
        if self._kind == "ivf":
            nlist = int(self._index.nlist)
            if live is None:
                params = faiss.SearchParametersIVF(nprobe=nlist)
            else:
                params = faiss.SearchParametersIVF(sel=faiss.IDSelectorBatch(live), nprobe=nlist)
            scores, labels = self._index.search(q, k, params=params)
            return scores, labels
        return self._brute_force(q, k, self._ids if live is None else live)

    def _brute_force(self, q: FloatArray, k: int, subset: IdArray) -> tuple[FloatArray, IdArray]:
        vecs = self._reconstruct(subset)
        return _top_k(q @ vecs.T, subset, k)

    def _reconstruct(self, ids: IdArray) -> FloatArray:
        if ids.size == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        out = self._index.reconstruct_batch(np.ascontiguousarray(ids, dtype=np.int64))
        return np.ascontiguousarray(out, dtype=np.float32)

    # ---- GPU replica ----------------------------------------------------------------------------

    def _gpu_replica(self) -> Any:
        """The GPU copy of the CPU index, made on first use after any change.

        Copying lazily means a batch of ``add``/``remove`` calls costs one transfer, not one each.
        A copy that fails (out of GPU memory, an index type the GPU lacks) turns the GPU off for this
        instance with a warning; searching on the CPU is slower but correct.
        """
        with self._lock:
            if self._gpu_index is None and self._use_gpu:
                try:
                    self._gpu_index = faiss.index_cpu_to_gpu(self._gpu_res, 0, self._index)
                except Exception:
                    log.warning(
                        "could not copy the %s index to the GPU; searching on the CPU", self._kind, exc_info=True
                    )
                    self._use_gpu = False
            return self._gpu_index

    def _drop_gpu_replica(self) -> None:
        with self._lock:
            self._gpu_index = None

    def _hnsw(self) -> Any:
        return faiss.downcast_index(self._index.index)

    # ---- tuning ---------------------------------------------------------------------------------

    def _tune(
        self,
        ids: IdArray,
        vecs: FloatArray,
        *,
        target_recall: float,
        seed: int,
        extra: FloatArray | None = None,
    ) -> dict[str, float]:
        """Pick the smallest nprobe / efSearch whose recall@10 against exact search meets the target.

        Real queries do not exist at build time, so two stand-ins are used: indexed vectors searched
        leave-one-out (their own entry is dropped from both answers, so they behave like unseen
        products from the same distribution) and midpoints of random pairs, which fall between
        clusters where approximate indexes do worst.
        """
        rng = np.random.default_rng(seed)
        n = vecs.shape[0]
        k = min(RECALL_K, n - 1)
        if k < 1:
            return {}
        queries, own = _tuning_queries(ids, vecs, rng)
        if extra is not None and extra.shape[0]:
            queries = np.ascontiguousarray(np.concatenate([queries, extra]))
            own = np.concatenate([own, np.full(extra.shape[0], -1, dtype=np.int64)])
        exact = faiss.IndexFlatIP(vecs.shape[1])
        exact.add(vecs)
        _, truth_rows = exact.search(queries, k + 1)
        truth = _drop_own(ids[truth_rows], own, k)

        def measure(params: Any) -> float:
            _, got = self._index.search(queries, k + 1, params=params)
            return _recall(_drop_own(got, own, k), truth)

        if self._kind == "ivf":
            nlist = int(self._index.nlist)

            def recall_ivf(nprobe: int) -> float:
                return measure(faiss.SearchParametersIVF(nprobe=nprobe))

            effort, recall = _smallest_effort(recall_ivf, 1, nlist, target_recall)
            self._index.nprobe = effort
            name = "nprobe"
        else:

            def recall_hnsw(ef: int) -> float:
                return measure(faiss.SearchParametersHNSW(efSearch=ef))

            effort, recall = _smallest_effort(recall_hnsw, 16, 2048, target_recall)
            self._hnsw().hnsw.efSearch = effort
            name = "ef_search"
        if recall < target_recall:
            log.warning(
                "%s index reaches recall@%d %.3f < target %.2f even at %s=%d",
                self._kind,
                k,
                recall,
                target_recall,
                name,
                effort,
            )
        self._drop_gpu_replica()
        return {"tuned_recall_at_10": round(recall, 4), "target_recall": target_recall}

    # ---- persistence ----------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write ``index.faiss`` (always the CPU index) and ``index.json`` (tuning facts) atomically and
        durably into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / INDEX_FILE
        tmp = directory / f".{INDEX_FILE}.{secrets.token_hex(4)}.tmp"
        try:
            # The CPU index is the source of truth, so no faiss.index_gpu_to_cpu is needed here.
            faiss.write_index(self._index, str(tmp))
            fsync_file(tmp)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(directory)
        atomic_write_text(directory / INDEX_INFO_FILE, json.dumps({"kind": self._kind, "tuning": self.tuning}) + "\n")

    @classmethod
    def load(cls, directory: Path, *, use_gpu: bool | None = None) -> VectorIndex:
        """Read ``index.faiss``; a missing, corrupt or foreign file raises ``IndexLoadError``."""
        path = Path(directory) / INDEX_FILE
        if not path.is_file():
            raise IndexLoadError(f"No vector index at {path}; run `shopbot reindex` to build it.", path=path)
        try:
            index = faiss.read_index(str(path))
        except Exception as exc:  # faiss raises RuntimeError; a garbage header can raise MemoryError
            raise IndexLoadError(rebuild_hint(f"The index file {path} is corrupt or unreadable"), path=path) from exc
        kind, ids = _inspect(index)
        if kind is None:
            raise IndexLoadError(
                rebuild_hint(
                    f"The index file {path} holds an index type shopbot does not use ({type(index).__name__})"
                ),
                path=path,
            )
        return cls(index, kind, ids, use_gpu=resolve_use_gpu(use_gpu), tuning=_read_tuning(Path(directory)))


def _read_tuning(directory: Path) -> dict[str, float]:
    """Recorded tuning facts; optional, so a missing or damaged file only loses the numbers."""
    try:
        tuning = json.loads((directory / INDEX_INFO_FILE).read_text(encoding="utf-8")).get("tuning", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(k): float(v) for k, v in tuning.items()} if isinstance(tuning, dict) else {}


def open_index(directory: Path, *, encoder: str, dim: int, use_gpu: bool | None = None) -> tuple[VectorIndex, Manifest]:
    """Load a build directory's manifest and index, refusing any mismatch with the configuration."""
    directory = Path(directory)
    manifest = Manifest.load(directory / MANIFEST_FILE)
    check_manifest(manifest, encoder=encoder, dim=dim, where=directory)
    index = VectorIndex.load(directory, use_gpu=use_gpu)
    if index.dim != manifest.dim:
        raise IndexLoadError(
            rebuild_hint(
                f"The index file in {directory} holds {index.dim}-d vectors but its manifest says {manifest.dim}-d"
            ),
            path=directory,
        )
    return index, manifest


# --------------------------------------------------------------------------------------------------
# Index helpers
# --------------------------------------------------------------------------------------------------


def _new_hnsw(d: int) -> Any:
    hnsw = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    hnsw.hnsw.efSearch = HNSW_EF_SEARCH_DEFAULT
    return hnsw


def _ivf_nlist(n: int) -> int:
    """About 4*sqrt(n) lists, but never fewer than 39 training points per list (FAISS's minimum)."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def _train_ivf(vecs: FloatArray, *, gpu_resources: Any, seed: int) -> Any:
    n, d = vecs.shape
    if n == 0:
        raise ValueError("an IVF index needs vectors to train on; use kind='flat' for an empty catalog")
    nlist = _ivf_nlist(n)
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.cp.niter = 10  # IVF recall barely moves past 10 k-means iterations; build time does
    index.cp.spherical = True  # centroids on the unit sphere, as the data is
    rng = np.random.default_rng(seed)
    sample_size = min(n, 64 * nlist)
    sample = vecs if sample_size == n else vecs[np.sort(rng.choice(n, sample_size, replace=False))]
    gpu_flat = None
    if gpu_resources is not None:
        # k-means is the slow part of an IVF build; FAISS can run its assignment step on the GPU
        # while the IVF index itself stays on the CPU.
        gpu_flat = faiss.index_cpu_to_gpu(gpu_resources, 0, faiss.IndexFlatIP(d))
        index.clustering_index = gpu_flat
    log.info("training IVF index: %d lists on %d of %d vectors", nlist, sample.shape[0], n)
    try:
        index.train(np.ascontiguousarray(sample))
    finally:
        if gpu_flat is not None:
            index.clustering_index = None
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    index.nprobe = min(nlist, 8)
    return index


def _inspect(index: Any) -> tuple[IndexKind | None, IdArray]:
    """Recognise a loaded index and list its live ids; ``None`` kind for anything we do not build."""
    ip = faiss.METRIC_INNER_PRODUCT
    if isinstance(index, faiss.IndexIDMap2):
        inner = faiss.downcast_index(index.index)
        id_map = faiss.vector_to_array(index.id_map).astype(np.int64, copy=False)
        ids = np.sort(id_map[id_map >= 0])
        if isinstance(inner, faiss.IndexHNSWFlat) and inner.metric_type == ip:
            return "hnsw", ids
        if isinstance(inner, faiss.IndexFlat) and inner.metric_type == ip:
            return "flat", ids
        return None, ids
    if isinstance(index, faiss.IndexIVFFlat) and index.metric_type == ip:
        if index.direct_map.type != faiss.DirectMap.Hashtable:
            index.set_direct_map_type(faiss.DirectMap.Hashtable)
        invlists = index.invlists
        parts = [np.empty(0, dtype=np.int64)]
        for lst in range(int(index.nlist)):
            size = int(invlists.list_size(lst))
            if size:
                parts.append(faiss.rev_swig_ptr(invlists.get_ids(lst), size).copy())
        return "ivf", np.sort(np.concatenate(parts).astype(np.int64, copy=False))
    return None, np.empty(0, dtype=np.int64)


def _tuning_queries(ids: IdArray, vecs: FloatArray, rng: np.random.Generator) -> tuple[FloatArray, IdArray]:
    """Tuning queries and, per query, the id to leave out of both answers (-1 for midpoints)."""
    n = vecs.shape[0]
    count = min(TUNING_QUERIES, n)
    rows = rng.choice(n, count, replace=False)
    half = max(1, count // 2)
    between = _normalised(vecs[rng.integers(0, n, half)] + vecs[rng.integers(0, n, half)])
    queries = np.concatenate([vecs[rows], between]).astype(np.float32)
    own = np.concatenate([ids[rows], np.full(half, -1, dtype=np.int64)])
    return np.ascontiguousarray(queries), own


def _drop_own(labels: IdArray, own: IdArray, k: int) -> IdArray:
    """First ``k`` labels of each row without the query's own id (leave-one-out)."""
    keep = labels != own[:, None]
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(labels, order, axis=1)


def _recall(got: IdArray, truth: IdArray) -> float:
    hits = (got[:, :, None] == truth[:, None, :]).any(axis=2).sum(axis=1)
    return float(hits.mean() / truth.shape[1])


def _smallest_effort(recall_at: Callable[[int], float], low: int, high: int, target: float) -> tuple[int, float]:
    """Smallest effort in [low, high] reaching ``target``: doubling, then bisection (recall rises
    with effort, so this needs about 2*log2(high) probes)."""
    effort, recall = low, recall_at(low)
    previous = low
    while recall < target and effort < high:
        previous, effort = effort, min(effort * 2, high)
        recall = recall_at(effort)
    if recall < target:
        return effort, recall
    lo, hi, best = previous + 1, effort - 1, (effort, recall)
    while lo <= hi:
        mid = (lo + hi) // 2
        r = recall_at(mid)
        if r >= target:
            best, hi = (mid, r), mid - 1
        else:
            lo = mid + 1
    return best


def _top_k(scores: FloatArray, ids: IdArray, k: int) -> tuple[FloatArray, IdArray]:
    m, n = scores.shape
    kk = min(k, n)
    # argpartition needs kk < n; otherwise every column is already a candidate
    everything = np.broadcast_to(np.arange(n), (m, n))
    cols = np.argpartition(-scores, kk - 1, axis=1)[:, :kk] if kk < n else everything
    part = np.take_along_axis(scores, cols, axis=1)
    order = np.argsort(-part, axis=1, kind="stable")
    cols = np.take_along_axis(cols, order, axis=1)
    out_scores, out_ids = _empty_result(m, k)
    out_scores[:, :kk] = np.take_along_axis(scores, cols, axis=1)
    out_ids[:, :kk] = ids[cols]
    return out_scores, out_ids


def _empty_result(m: int, k: int) -> tuple[FloatArray, IdArray]:
    return np.full((m, k), -np.inf, dtype=np.float32), np.full((m, k), -1, dtype=np.int64)


def _clean(scores: FloatArray, labels: IdArray) -> tuple[FloatArray, IdArray]:
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.array(scores, dtype=np.float32)
    scores[labels < 0] = -np.inf
    labels = np.where(labels < 0, -1, labels)  # tombstones never escape, even via a faiss corner
    return scores, labels
