"""Catalog -> search bundle (products, BM25, dense vectors, FAISS), full and incremental, and loading.

A bundle is one build directory under ``<data dir>/index/builds/`` made current by an atomic symlink
swap (``retrieval.bundle.publish``), so a crash mid-build leaves the previous bundle serving. Layout::

    bundle.json              catalog hash, counts, encoders, rank config, sku -> stable id
    products.jsonl           the catalog snapshot the bot answers from (facts come from here)
    lexical/                 BM25 per field
    dense/<key>/             index.faiss, vectors.npy (rows aligned with products.jsonl), manifest.json

Incremental reindex compares content hashes with the current bundle: only added or changed products
are encoded (encoding is what a full build spends its time on); unchanged vectors are copied, removed
products leave the FAISS index, and BM25 is rebuilt (cheap) so its statistics stay exact.
"""

from __future__ import annotations

import json
import logging
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from retrieval.bundle import IndexLoadError, Manifest, check_manifest, current_dir, staged_build, utc_now_iso
from retrieval.catalog import Product, catalog_hash
from retrieval.encoders import CachedEncoder, Encoder, get_encoder
from retrieval.index import VectorIndex
from retrieval.lexical import FieldedBM25
from retrieval.rerank import LearnedRanker, RerankError
from retrieval.search import DenseField, RankConfig, SearchEngine
from retrieval.served import load_served, prune_served
from retrieval.threads import compute_threads, set_threads

__all__ = [
    "BuildReport",
    "BundleError",
    "build_bundle",
    "dense_text",
    "lexical_fields",
    "load_engine",
    "read_bundle_info",
]

log = logging.getLogger(__name__)
BUNDLE_FILE = "bundle.json"
PRODUCTS_FILE = "products.jsonl"
RANKER_DIR = "ranker"
DEFAULT_ENCODERS: dict[str, str] = {"en": "minilm", "multi": "use-multilingual"}
FIELD_WEIGHTS = {"title": 1.0, "body": 0.3}
ANN_TUNING_RECALL = 0.97


class BundleError(IndexLoadError):
    """No usable search bundle; the message says which command fixes it."""


# ----------------------------------------------------------------------------------- product texts


def dense_text(p: Product, view: str) -> str:
    """What an encoder sees of a product, per view.

    ``en``/``multi``: the title (with the Chinese title for the multilingual encoder), where the meaning
    is; ``body``: the title and the start of the description, a second, noisier view that helps on
    its own weight in ranking (figures in docs/search.md).
    """
    if view == "multi":
        zh = p.titles.get("zh")
        return f"{zh} / {p.title}" if zh else p.title
    if view == "body":
        return f"{p.title}. {p.description[:300]}" if p.description else p.title
    return p.title


# Dense views stored per encoder key: file name -> text view. Only English gets the body view: it is
# the one measured to help, and each view costs a full encoding pass at indexing time.
VIEWS: dict[str, dict[str, str]] = {"en": {"vectors": "en", "body_vectors": "body"}, "multi": {"vectors": "multi"}}


def lexical_fields(p: Product) -> tuple[str, str]:
    """(title field, body field) for BM25; localised titles and the brand count as title."""
    title = " ".join([p.title, *p.titles.values(), p.brand or ""])
    attrs = " ".join(v for k, vals in sorted(p.attributes.items()) if k in _TEXT_ATTRS for v in vals)
    body = " ".join([p.description[:2000], p.category_path, attrs])
    return title, body


_TEXT_ATTRS = {"color", "material", "style", "pattern", "gender", "type"}


# ------------------------------------------------------------------------------------------ build


@dataclass
class BuildReport:
    build_dir: Path
    products: int
    added: int
    changed: int
    removed: int
    unchanged: int
    seconds: float
    full: bool
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        kind = "Full rebuild" if self.full else "Incremental reindex"
        return (
            f"{kind}: {self.products} products ({self.added} added, {self.changed} changed, "
            f"{self.removed} removed, {self.unchanged} unchanged) in {self.seconds:.1f}s."
        )


@dataclass
class _Previous:
    dir: Path
    ids: dict[str, int]
    hashes: dict[str, str]
    next_id: int
    encoders: dict[str, str]

    @property
    def row_ids(self) -> np.ndarray:
        """Ids in the order of its products.jsonl and vectors (bundles store products sorted by id)."""
        return np.sort(np.fromiter(self.ids.values(), dtype=np.int64, count=len(self.ids)))


def _load_previous(root: Path) -> _Previous | None:
    cur = current_dir(root)
    if cur is None:
        return None
    try:
        info = json.loads((cur / BUNDLE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("current bundle at %s is unreadable; doing a full rebuild", cur)
        return None
    return _Previous(
        dir=cur,
        ids={k: int(v) for k, v in info.get("ids", {}).items()},
        hashes=dict(info.get("hashes", {})),
        next_id=int(info.get("next_id", 0)),
        encoders=dict(info.get("encoders", {})),
    )


def build_bundle(
    products: Sequence[Product],
    root: Path,
    *,
    encoders: Mapping[str, str] | None = None,
    encoder_factory: Callable[[str], Encoder] | None = None,
    index_type: str = "auto",
    approx_threshold: int = 20_000,
    use_gpu: bool | None = None,
    device: str | None = None,
    incremental: bool = True,
    rank_config: RankConfig | None = None,
    progress: bool = False,
    body_view: bool = True,
    ranker_dir: Path | None = None,
) -> BuildReport:
    """Index ``products`` into a new bundle under ``root`` and publish it atomically.

    With ``incremental`` (the default) and a compatible current bundle, only new or changed products
    are encoded. ``encoders`` maps a dense key ("en", "multi") to an encoder name. ``body_view=False``
    skips the English title+description vectors: about +0.006 NDCG, but descriptions are long, so
    they cost several times the encoding time of titles. ``ranker_dir``: a learned re-ranker
    (retrieval/rerank.py, the active ``shopbot train ranker`` version) the bundle carries and the search
    applies; None builds a bundle that ranks with the hybrid scores alone. ``device``: where torch encoders
    run (cpu, cuda; None: :func:`retrieval.encoders.pick_device` decides).
    """
    t0 = time.perf_counter()
    encoders = dict(DEFAULT_ENCODERS if encoders is None else encoders)
    factory = encoder_factory or (lambda name: get_encoder(name, device=device))
    root = Path(root)
    prev = _load_previous(root) if incremental else None
    by_sku = {p.sku: p for p in products}
    if len(by_sku) != len(products):
        raise ValueError("duplicate SKUs in the catalog; load it with retrieval.catalog.load_catalog")

    # Stable ids: a SKU keeps its id for as long as it stays in the catalog.
    ids: dict[str, int] = {}
    next_id = prev.next_id if prev else 0
    for sku in sorted(by_sku):
        if prev and sku in prev.ids:
            ids[sku] = prev.ids[sku]
        else:
            ids[sku] = next_id
            next_id += 1
    hashes = {sku: by_sku[sku].content_hash for sku in by_sku}
    old_hashes = prev.hashes if prev else {}
    added = [s for s in by_sku if s not in old_hashes]
    changed = [s for s in by_sku if s in old_hashes and old_hashes[s] != hashes[s]]
    removed = [s for s in old_hashes if s not in by_sku]
    unchanged = len(by_sku) - len(added) - len(changed)

    ordered = sorted(by_sku.values(), key=lambda p: ids[p.sku])
    row_ids = np.asarray([ids[p.sku] for p in ordered], dtype=np.int64)
    timings: dict[str, float] = {}

    with compute_threads(), staged_build(root) as out:
        t = time.perf_counter()
        with (out / PRODUCTS_FILE).open("w", encoding="utf-8") as fh:
            for p, pid in zip(ordered, row_ids, strict=True):
                fh.write(json.dumps({"id": int(pid), **p.to_record()}, ensure_ascii=False) + "\n")
        fields = [lexical_fields(p) for p in tqdm(ordered, desc="BM25", disable=not progress, unit="product")]
        lex = FieldedBM25.build({"title": [f[0] for f in fields], "body": [f[1] for f in fields]}, FIELD_WEIGHTS)
        lex.save(out / "lexical")
        timings["lexical_s"] = time.perf_counter() - t

        for key, enc_name in encoders.items():
            t = time.perf_counter()
            enc = factory(enc_name)
            reuse = prev is not None and prev.encoders.get(key) == enc.name
            ddir = out / "dense" / key
            ddir.mkdir(parents=True)
            views = {f: v for f, v in VIEWS.get(key, {"vectors": key}).items() if body_view or v != "body"}
            for fname, view in views.items():
                arr = _dense_vectors(
                    ordered, row_ids, view, fname, key, enc, prev if reuse else None, set(added) | set(changed), progress
                )
                np.save(ddir / f"{fname}.npy", arr)
                if fname == "vectors":
                    vectors = arr
            index = None
            if reuse and prev is not None:
                index = _incremental_index(prev.dir / "dense" / key, ids, row_ids, vectors, added, changed, removed,
                                           prev.ids, use_gpu)
            if index is None:
                # Tuned above the 0.95 goal: the build tunes on stand-in queries (indexed vectors), and
                # real shopper queries measured 0.949 at a 0.95 tuning target on 100k products.
                index = VectorIndex.build(row_ids, vectors, kind=index_type, approx_threshold=approx_threshold,
                                          use_gpu=use_gpu, progress=progress, target_recall=ANN_TUNING_RECALL)
            index.save(ddir)
            Manifest(
                encoder=enc.name, dim=enc.dim, catalog_hash=catalog_hash(products), count=len(ordered),
                built_at=utc_now_iso(), index_type=index.kind, extra={"key": key, "tuning": index.tuning},
            ).save(ddir / "manifest.json")
            timings[f"dense_{key}_s"] = time.perf_counter() - t

        info: dict[str, Any] = {
            "format_version": 1,
            "built_at": utc_now_iso(),
            "catalog_hash": catalog_hash(products),
            "count": len(ordered),
            "encoders": {key: factory(name).name for key, name in encoders.items()},
            "rank_config": (rank_config or RankConfig()).to_dict(),
            "ids": ids,
            "next_id": next_id,
            "hashes": hashes,
        }
        if ranker_dir is not None:
            ranker = LearnedRanker.load(ranker_dir)  # refuses a broken one before publishing
            ranker.save(out / RANKER_DIR)
            info["ranker"] = ranker.version
        (out / BUNDLE_FILE).write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")
        build_dir = out

    _prune_served(root)  # the copies of the build just replaced: processes serving it keep theirs until they reload
    return BuildReport(
        build_dir=build_dir,
        products=len(ordered),
        added=len(added),
        changed=len(changed),
        removed=len(removed),
        unchanged=unchanged,
        seconds=time.perf_counter() - t0,
        full=prev is None,
        timings=timings,
    )


def _dense_vectors(
    ordered: Sequence[Product],
    row_ids: np.ndarray,
    view: str,
    fname: str,
    key: str,
    enc: Encoder,
    prev: _Previous | None,
    dirty: set[str],
    progress: bool,
) -> np.ndarray:
    """Vectors of one view; with ``prev``, unchanged products reuse its vectors instead of re-encoding."""
    vectors = np.zeros((len(ordered), enc.dim), dtype=np.float32)
    todo = list(range(len(ordered)))
    if prev is not None:
        try:
            # the served copy (made by the serving processes already, or here): a previous build's file cut in place
            # while this reads it would end the reindex with SIGBUS (builds/<name> -> the index root)
            old_vecs = load_served(prev.dir.parents[1], prev.dir / "dense" / key / f"{fname}.npy")
            old_ids = prev.row_ids
            pos = np.searchsorted(old_ids, row_ids)
            pos = np.clip(pos, 0, max(len(old_ids) - 1, 0))
            present = (old_ids[pos] == row_ids) if len(old_ids) else np.zeros(len(row_ids), dtype=bool)
            if old_vecs.shape[1] == enc.dim:
                todo = []
                for i, p in enumerate(ordered):
                    if present[i] and p.sku not in dirty:
                        vectors[i] = old_vecs[pos[i]]
                    else:
                        todo.append(i)
        except (OSError, ValueError, EOFError):  # a cut or emptied file (EOFError): encode them all again
            todo = list(range(len(ordered)))
    batch = 256
    bar = tqdm(total=len(todo), desc=f"encode {key}/{view}", disable=not progress or not todo, unit="product")
    for start in range(0, len(todo), batch):
        chunk = todo[start : start + batch]
        vectors[chunk] = enc.encode([dense_text(ordered[i], view) for i in chunk], kind="passage")
        bar.update(len(chunk))
    bar.close()
    return vectors


def _incremental_index(
    prev_dense: Path,
    ids: Mapping[str, int],
    row_ids: np.ndarray,
    vectors: np.ndarray,
    added: Sequence[str],
    changed: Sequence[str],
    removed: Sequence[str],
    prev_ids: Mapping[str, int],
    use_gpu: bool | None,
) -> VectorIndex | None:
    """Update the previous FAISS index in place of a rebuild; None when it cannot be reused."""
    try:
        index = VectorIndex.load(prev_dense, use_gpu=use_gpu)
    except IndexLoadError:
        return None
    if index.dim != vectors.shape[1]:
        return None
    gone = np.asarray([prev_ids[s] for s in removed], dtype=np.int64)
    if gone.size:
        index.remove(gone)
    dirty = np.asarray(sorted(ids[s] for s in [*added, *changed]), dtype=np.int64)
    if dirty.size:
        rows = np.searchsorted(row_ids, dirty)
        index.add(dirty, vectors[rows])
    return index


# ------------------------------------------------------------------------------------------- load


def _prune_served(root: Path) -> None:
    """Served copies of replaced builds go at every load and reindex, so they never pile up; failing to
    delete them costs disk space, never an answer."""
    try:
        prune_served(root)
    except OSError as exc:
        log.warning("Could not delete old served copies under %s (%s).", root, exc)


def read_bundle_info(root: Path) -> tuple[Path, dict[str, Any]]:
    cur = current_dir(Path(root))
    if cur is None:
        raise BundleError(f"There is no search index under {root}; run `shopbot reindex` to build it.")
    try:
        info = json.loads((cur / BUNDLE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise BundleError(f"The search index at {cur} is corrupt or unreadable; run `shopbot reindex` to rebuild it.") from None
    return cur, info


def bundle_products(root: Path) -> list[Product] | None:
    """The catalog snapshot of the current bundle (what search and chat answer from); None before the first
    build. A corrupt snapshot is refused in one sentence."""
    if current_dir(Path(root)) is None:
        return None
    cur, _ = read_bundle_info(root)
    try:
        with (cur / PRODUCTS_FILE).open(encoding="utf-8") as fh:
            return [Product.from_record({k: v for k, v in json.loads(line).items() if k != "id"})
                    for line in fh if line.strip()]
    except (OSError, ValueError, KeyError):
        raise BundleError(f"The search index at {cur} is corrupt or unreadable; run `shopbot reindex` to rebuild it.") from None


def load_engine(
    root: Path,
    *,
    encoders: Mapping[str, str] | None = None,
    encoder_factory: Callable[[str], Encoder] | None = None,
    use_gpu: bool | None = None,
    device: str | None = None,
    query_cache_size: int = 4096,
    rank_config: RankConfig | None = None,
    query_threads: int | None = 1,
) -> SearchEngine:
    """Open the current bundle; refuses (one sentence) a bundle built with other encoders or corrupt files.

    ``query_threads`` sizes the torch/FAISS pools for serving (see ``retrieval.threads``); None leaves
    them alone. ``device``: where torch query encoders run (None: :func:`retrieval.encoders.pick_device`).
    """
    if query_threads is not None:
        set_threads(query_threads)
    cur, info = read_bundle_info(root)
    encoders = dict(DEFAULT_ENCODERS if encoders is None else encoders)
    factory = encoder_factory or (lambda name: get_encoder(name, device=device))
    products: list[Product] = []
    row_ids: list[int] = []
    try:
        with (cur / PRODUCTS_FILE).open(encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                row_ids.append(int(rec.pop("id")))
                products.append(Product.from_record(rec))
        lexical = FieldedBM25.load(cur / "lexical")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # a cut .npz is a BadZipFile
        raise BundleError(f"The search index at {cur} is corrupt or unreadable; run `shopbot reindex` to rebuild it.") from None
    dense: list[DenseField] = []
    for key, name in encoders.items():
        ddir = cur / "dense" / key
        enc = factory(name)
        if not ddir.is_dir():
            raise BundleError(
                f"The search index at {cur} has no '{key}' vectors for encoder '{enc.name}'; run `shopbot reindex` to rebuild it."
            )
        check_manifest(Manifest.load(ddir / "manifest.json"), encoder=enc.name, dim=enc.dim, where=cur)
        index = VectorIndex.load(ddir, use_gpu=use_gpu)
        try:  # the body view too: a cut file is a one-sentence refusal, not numpy's mmap error
            # mapped from private copies, shared by the processes serving this build: a file of the build cut
            # in place under a mapping would kill the process with SIGBUS (retrieval/served.py)
            vectors = load_served(root, ddir / "vectors.npy")
            body = load_served(root, ddir / "body_vectors.npy") if (ddir / "body_vectors.npy").is_file() else None
        except (OSError, ValueError, EOFError):
            raise BundleError(f"The vectors in {ddir} are corrupt; run `shopbot reindex` to rebuild them.") from None
        if vectors.shape != (len(products), enc.dim) or (body is not None and body.shape != vectors.shape):
            raise BundleError(f"The vectors in {ddir} do not match the catalog snapshot; run `shopbot reindex` to rebuild them.")
        wrapped: Encoder = CachedEncoder(enc, query_cache_size) if query_cache_size else enc
        dense.append(DenseField(key, wrapped, index, np.asarray(vectors), None if body is None else np.asarray(body)))
    config = rank_config or RankConfig.from_dict(info.get("rank_config", {}))
    engine = SearchEngine(products, lexical, dense, config=config, row_ids=np.asarray(row_ids, dtype=np.int64))
    engine.bundle = cur
    _prune_served(root)
    if (cur / RANKER_DIR).is_dir():
        try:
            engine.ranker = LearnedRanker.load(cur / RANKER_DIR)
        except RerankError as exc:  # search still works on the hybrid scores
            log.warning("%s Searching without it.", exc)
    return engine
