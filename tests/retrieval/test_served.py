"""Served copies: the vectors a process maps are private read-only copies, shared by the processes serving
one build, made again when a build's file is rewritten, and deleted when their build is replaced."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from retrieval.bundle import current_dir
from retrieval.catalog import Product
from retrieval.encoders import HashingEncoder
from retrieval.indexer import BundleError, build_bundle, load_engine
from retrieval.served import SERVED_DIR, STALE_TMP_S, load_served, prune_served

ENC = {"en": "hashing", "multi": "hashing"}


def _build(products: list[Product], root: Path) -> Path:
    build_bundle(products, root, encoders=ENC, encoder_factory=lambda _n: HashingEncoder())
    cur = current_dir(root)
    assert cur is not None
    return cur


def _load(root: Path):  # type: ignore[no-untyped-def]
    return load_engine(root, encoders=ENC, encoder_factory=lambda _n: HashingEncoder())


def _copies(root: Path) -> list[str]:
    return sorted(p.name for p in (root / SERVED_DIR).iterdir() if not p.name.startswith("."))


def _mapped(path: str) -> list[str]:
    """This process's mappings of ``path`` as /proc/self/maps lists them (a replaced file shows "(deleted)")."""
    with open("/proc/self/maps", encoding="utf-8") as fh:
        return [line.split(None, 5)[-1].strip() for line in fh if path in line]


def test_the_engine_maps_read_only_copies_outside_the_build_and_a_second_load_reuses_them(
        products: list[Product], tmp_path: Path) -> None:
    root = tmp_path / "idx"
    build = _build(products, root)
    first, second = _load(root), _load(root)
    copies = _copies(root)
    assert len(copies) == 3 and all(n.startswith(build.name) for n in copies)  # en title, en body, multi title
    assert all((root / SERVED_DIR / n).stat().st_mode & 0o777 == 0o444 for n in copies)
    assert sorted({Path(m).name for m in _mapped(str((root / SERVED_DIR).resolve()))}) == copies  # both share them
    assert _mapped(str(build)) == []  # nothing of the build is mapped: cutting its files cannot reach us
    assert np.array_equal(second.dense["en"].vectors, first.dense["en"].vectors)
    on_disk = np.load(build / "dense" / "en" / "vectors.npy")
    assert np.array_equal(first.dense["en"].vectors, on_disk)


def test_concurrent_loads_make_one_copy_and_map_the_same_file(products: list[Product], tmp_path: Path) -> None:
    root = tmp_path / "idx"
    src = _build(products, root) / "dense" / "en" / "vectors.npy"
    out: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: out.append(load_served(root, src))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 4 and len(_copies(root)) == 1
    maps = _mapped(str((root / SERVED_DIR).resolve()))
    assert maps and not any(m.endswith("(deleted)") for m in maps), maps  # nobody mapped a copy replaced later


def test_a_file_rewritten_in_place_is_copied_again_and_its_old_copy_deleted(
        products: list[Product], tmp_path: Path) -> None:
    root = tmp_path / "idx"
    src = _build(products, root) / "dense" / "en" / "vectors.npy"
    before = load_served(root, src)
    old, (first_copy,) = np.array(before), _copies(root)
    np.save(src, old[::-1].copy())  # same size, other bytes: what `cp other.npy` onto the live build does
    os.utime(src, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    after = load_served(root, src)
    assert np.array_equal(np.asarray(after), old[::-1]) and np.array_equal(np.asarray(before), old)
    assert len(_copies(root)) == 2
    prune_served(root)
    assert len(_copies(root)) == 1 and first_copy not in _copies(root)
    assert np.array_equal(np.asarray(before), old)  # still mapped, though deleted


def test_a_reindex_deletes_the_copies_of_the_build_it_replaces_and_stale_temporaries(
        products: list[Product], tmp_path: Path) -> None:
    root = tmp_path / "idx"
    first = _build(products, root)
    engine = _load(root)
    served = root / SERVED_DIR
    stale, fresh = served / ".tmp-killed-copy", served / ".tmp-copying-now"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(stale, (time.time() - STALE_TMP_S - 60,) * 2)
    second = _build(products[:-1], root)
    assert second != first
    assert _copies(root) == [] and not stale.exists() and fresh.exists()
    assert engine.search("red winter coat").skus  # the old engine still maps its deleted copies
    _load(root)
    assert len(_copies(root)) == 3 and all(n.startswith(second.name) for n in _copies(root))


def test_a_cut_vectors_file_is_refused_and_not_cached(products: list[Product], tmp_path: Path) -> None:
    root = tmp_path / "idx"
    src = _build(products, root) / "dense" / "en" / "vectors.npy"
    os.truncate(src, src.stat().st_size // 2)
    with pytest.raises(BundleError, match="corrupt; run `shopbot reindex`"):
        _load(root)
    assert _copies(root) == []
    os.truncate(src, 0)
    with pytest.raises(BundleError, match="corrupt; run `shopbot reindex`"):
        _load(root)


def test_without_a_writable_cache_the_build_file_itself_is_mapped(
        products: list[Product], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "idx"
    src = _build(products, root) / "dense" / "en" / "vectors.npy"
    (root / SERVED_DIR).write_text("not a directory")
    with caplog.at_level(logging.WARNING, logger="retrieval.served"):
        array = load_served(root, src)
    assert Path(str(array.filename)) == src.resolve() or Path(str(array.filename)) == src  # type: ignore[attr-defined]
    assert "Cannot make a private copy" in caplog.text
