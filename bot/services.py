"""What every front end asks of the installation: load the search engine, reindex, find active model versions.

The CLI, the Telegram admin commands, the Rasa action server and the assistant's hot reload all need the same
few operations with the same settings: an index built by `shopbot reindex` must load with the encoders it was
built with, and a reindex started from Telegram must read the same catalog, generated descriptions and active
ranker as one started in a terminal. They live here, once. Nothing here prints: each operation returns a
report (or takes a ``notify`` callback for the one line a first start says) and the caller decides how to show
it, so a channel never has to import the CLI to reindex.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.settings import Settings
from model.training.registry import Registry, RegistryError, Version
from retrieval.bundle import current_dir
from retrieval.catalog import LoadResult, OnError, Product, load_catalog, overlay_descriptions
from retrieval.descriptions import DESCRIPTIONS_FILE
from retrieval.encoders import set_default_device
from retrieval.formats import read_header
from retrieval.indexer import BuildReport, build_bundle
from retrieval.indexer import load_engine as load_bundle
from retrieval.query import set_exchange_rates
from retrieval.search import SearchEngine

__all__ = [
    "CatalogReport",
    "ReindexReport",
    "active_version",
    "build_options",
    "column_map_path",
    "descriptions_path",
    "index_catalog",
    "index_on_gpu",
    "load_engine",
    "load_options",
    "read_catalog",
    "reindex",
    "saved_column_map",
]

log = logging.getLogger(__name__)

SHOWN_ERRORS = 20  # bad rows listed one by one; the rest are counted
COLUMN_MAP_FILE = "catalog_map.json"  # `shopbot reindex --map` maps, one per header (docs/catalog.md)
KEPT_MAPS = 50


def encoders_of(s: Settings) -> dict[str, str]:
    """The query/passage encoders by role: English always, the multilingual one when configured."""
    enc = {"en": s.encoder}
    if s.multilingual_encoder:
        enc["multi"] = s.multilingual_encoder
    return enc


def index_on_gpu(s: Settings) -> bool | None:
    """The FAISS half of the one GPU switch: SHOPBOT_USE_GPU_INDEX when set, else off when SHOPBOT_DEVICE is cpu,
    else None (on the GPU when faiss-gpu sees one; with faiss-cpu the index stays on the CPU)."""
    if s.use_gpu_index is not None:
        return s.use_gpu_index
    return False if s.device == "cpu" else None


def build_options(s: Settings) -> dict[str, Any]:
    """Settings that shape an index build; every build (reindex, first chat, eval) uses the same ones."""
    return {"encoders": encoders_of(s), "index_type": s.index_type, "approx_threshold": s.approx_threshold,
            "use_gpu": index_on_gpu(s), "device": s.device, "body_view": s.body_view}


def load_options(s: Settings) -> dict[str, Any]:
    """Settings that shape how a built index is served."""
    return {"encoders": encoders_of(s), "use_gpu": index_on_gpu(s), "device": s.device,
            "query_threads": s.query_threads}


def descriptions_path(s: Settings) -> Path:
    """Where `shopbot describe --save` keeps generated descriptions (reindex fills empty ones from it)."""
    return s.data_dir / DESCRIPTIONS_FILE


def active_version(settings: Settings, kind: str) -> Version | None:
    """The active trained version of ``kind`` (model/training/registry.py), or None for the built-in default; an
    ACTIVE pointer naming a version that is gone or unreadable is said once in the log."""
    reg = Registry(settings.models_dir)
    try:
        name = reg.active_name(kind)
        return None if name is None else reg.get(kind, name)
    except (RegistryError, OSError) as exc:
        log.warning("The active %s version cannot be read (%s): the built-in one is used.", kind, exc)
        return None


def column_map_path(s: Settings) -> Path:
    """Where `shopbot reindex --map` keeps column maps, keyed by the columns of the file each was given for."""
    return s.data_dir / COLUMN_MAP_FILE


def _signature(header: Sequence[str]) -> list[str]:
    return sorted(h.strip().lower() for h in header)


def _saved_maps(s: Settings) -> list[dict[str, Any]]:
    path = column_map_path(s)
    if not path.is_file():
        return []
    try:
        maps = json.loads(path.read_text(encoding="utf-8"))["maps"]
        return [m for m in maps if isinstance(m.get("columns"), list) and isinstance(m.get("map"), dict)]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("The saved column maps in %s cannot be read (%s); pass --map again.", path, exc)
        return []


def saved_column_map(s: Settings, header: Sequence[str]) -> dict[str, str] | None:
    """The map saved by an earlier `shopbot reindex --map` for a file with these columns (any order, any case)."""
    sig = _signature(header)
    for entry in _saved_maps(s):
        if _signature(entry["columns"]) == sig:
            return {str(k): str(v) for k, v in entry["map"].items()}
    return None


def _save_column_map(s: Settings, header: Sequence[str], column_map: Mapping[str, str], source: Path) -> None:
    """Keep ``column_map`` for files with ``header``'s columns (replacing an older map for them), written atomically."""
    sig = _signature(header)
    maps = [m for m in _saved_maps(s) if _signature(m["columns"]) != sig]
    maps.insert(0, {"columns": list(header), "map": dict(column_map), "file": str(source)})
    path = column_map_path(s)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"maps": maps[:KEPT_MAPS]}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class CatalogReport:
    """A catalog read for indexing: the products (generated descriptions filled in) and what was skipped."""

    load: LoadResult
    products: list[Product]
    generated: int  # products without a description of their own that use a generated one
    map_note: str = ""  # a column map was saved, or a saved one was used

    def lines(self) -> list[str]:
        """What a person is told, in order: the format read ("Read a Shopify products export: ..."), the column
        map used or saved, bad rows by line (the first few), the load summary, the generated count."""
        out = [self.load.read_line] if self.load.read_line else []
        out += [self.map_note] if self.map_note else []
        out += [f"Skipped {err}" for err in self.load.errors[:SHOWN_ERRORS]]
        if len(self.load.errors) > SHOWN_ERRORS:
            out.append(f"... and {len(self.load.errors) - SHOWN_ERRORS} more bad rows.")
        out.append(self.load.summary())
        if self.generated:
            out.append(f"{self.generated} products without a description use a generated one.")
        return out


@dataclass
class ReindexReport:
    """One reindex: the catalog read, the bundle built and published, and the ranking it serves."""

    catalog: CatalogReport
    build: BuildReport
    ranker: Path | None  # the active learned ranker's version folder, None for the built-in hybrid search
    watches: str = ""  # what re-running the shoppers' watchlists did (bot/watch.py), when there were any

    def summary(self) -> str:
        return self.build.summary()

    def ranking_line(self) -> str:
        return (f"Ranking: learned ranker {self.ranker.name} on top of the hybrid search." if self.ranker is not None
                else "Ranking: the built-in hybrid search (no learned ranker is active).")

    def lines(self) -> list[str]:
        """Everything a terminal reindex prints after the build, in order."""
        return [self.build.summary(), self.ranking_line()] + ([self.watches] if self.watches else [])


def read_catalog(s: Settings, path: Path | None, *, on_error: OnError | None = None,
                 column_map: Mapping[str, str] | None = None) -> CatalogReport:
    """Load ``path`` (the demo catalog when None) and fill empty descriptions from the generated ones.

    ``column_map`` ({shopbot column: the file's column}, `shopbot reindex --map`) is saved once the file loads,
    under its columns; a later read of a file with the same columns and no map of its own uses the saved one.
    """
    header = read_header(path) if path is not None else None
    note = ""
    if column_map is None and header:
        column_map = saved_column_map(s, header)
        if column_map:
            note = f"Used the column map saved for these columns in {column_map_path(s)} (--map replaces it)."
    result = load_catalog(path, on_error=on_error or s.on_bad_row,
                          column_map=column_map)
    if column_map and not note and header and path is not None:
        try:
            _save_column_map(s, header, column_map, path)
            note = f"Saved the column map in {column_map_path(s)}: the next reindex of a file with these columns uses it."
        except OSError as exc:
            log.warning("The column map could not be saved in %s (%s).", column_map_path(s), exc)
    products, generated = overlay_descriptions(result.products, descriptions_path(s))
    return CatalogReport(result, products, generated, note)


def index_catalog(s: Settings, catalog: CatalogReport, *, full: bool, progress: bool) -> ReindexReport:
    """Build (re-encoding only what changed unless ``full``) and atomically publish the bundle, with the
    active learned ranker (`shopbot train ranker`) when there is one."""
    ranker = active_version(s, "ranker")
    learned = None if ranker is None else ranker.path
    build = build_bundle(catalog.products, s.index_root, incremental=not full, progress=progress, ranker_dir=learned,
                         **build_options(s))
    return ReindexReport(catalog, build, learned, _rerun_watches(s))


def _rerun_watches(s: Settings) -> str:
    """The shoppers' watchlists re-run against the index just published, each shopper told once of new matches
    (bot/watch.py); here, where every reindex ends, so the CLI, Telegram's /reindex and the console all do it.
    A failure is logged and reported, never fails the reindex: the new index is already serving."""
    from bot.watch import after_reindex  # imported here: start-up speed (httpx, the dialogue) of a plain reindex

    try:
        report = after_reindex(s, lambda: load_bundle(s.index_root, query_cache_size=0, **load_options(s)))
    except Exception as exc:
        log.exception("re-running the watchlists failed")
        return f"Watchlists were not re-run: {exc}"
    return report.line() if report is not None and (report.checked or report.pruned) else ""


def reindex(s: Settings, path: Path | None, *, full: bool, progress: bool = False,
            on_error: OnError | None = None) -> ReindexReport:
    """Read ``path`` and publish its index: what `shopbot reindex`, Telegram's /reindex and a first start do."""
    return index_catalog(s, read_catalog(s, path, on_error=on_error), full=full, progress=progress)


def load_engine(s: Settings, *, build_if_missing: bool = True,
                notify: Callable[[str], None] | None = None) -> SearchEngine:
    """The current index as a search engine; on first use it is built from the configured (or demo) catalog,
    and ``notify`` hears one line before the build and the report's lines after it."""
    set_exchange_rates(s.exchange_rates)
    set_default_device(s.device)  # the intent classifier's and the recommender's models follow SHOPBOT_DEVICE too
    if current_dir(s.index_root) is None and build_if_missing:
        say = notify or log.info
        say("No search index yet: building one from the "
            + ("demo catalog" if s.catalog is None else str(s.catalog)) + " ...")
        catalog = read_catalog(s, s.catalog)
        for line in catalog.lines():
            say(line)
        report = index_catalog(s, catalog, full=False, progress=notify is not None)
        for line in report.lines():
            say(line)
    return load_bundle(s.index_root, query_cache_size=s.query_cache_size, **load_options(s))
