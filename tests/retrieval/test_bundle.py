"""Tests for retrieval.bundle: the manifest, loading errors, build directories and the atomic swap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from retrieval.bundle import (
    MANIFEST_FILE,
    IndexLoadError,
    Manifest,
    check_manifest,
    current_dir,
    new_build_dir,
    prune_builds,
    publish,
    staged_build,
)
from retrieval.index import INDEX_FILE, VectorIndex, open_index
from tests.retrieval.test_index import fresh, is_one_sentence, product_ids, unit

ROOT = Path(__file__).resolve().parents[2]


def test_the_bundle_loads_without_faiss() -> None:
    """The CLI and the admin commands find the current build through this module: it must not load faiss."""
    code = "import sys, retrieval.bundle; sys.exit(int('faiss' in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


# ---- manifest and loading errors ---------------------------------------------------------------------


def make_manifest(**changes: Any) -> Manifest:
    fields: dict[str, Any] = dict(
        encoder="minilm",
        dim=384,
        catalog_hash="sha256:abc",
        count=12,
        built_at="2025-01-01T00:00:00Z",
        index_type="flat",
        extra={"nprobe": 8},
    )
    fields.update(changes)
    return Manifest(**fields)


def test_manifest_round_trip(tmp_path: Path) -> None:
    manifest = make_manifest()
    manifest.save(tmp_path / MANIFEST_FILE)
    assert Manifest.load(tmp_path / MANIFEST_FILE) == manifest
    assert json.loads((tmp_path / MANIFEST_FILE).read_text())["format_version"] == 1


@pytest.mark.parametrize(
    "content",
    ["{not json", json.dumps({"encoder": "minilm"}), json.dumps(dict(vars(make_manifest()), dim="384"))],
    ids=["bad-json", "missing-fields", "wrong-type"],
)
def test_bad_manifest_raises_one_sentence(tmp_path: Path, content: str) -> None:
    path = tmp_path / MANIFEST_FILE
    path.write_text(content)
    with pytest.raises(IndexLoadError) as err:
        Manifest.load(path)
    assert "shopbot reindex" in str(err.value) and is_one_sentence(str(err.value))


def test_missing_or_newer_manifest(tmp_path: Path) -> None:
    with pytest.raises(IndexLoadError, match="shopbot reindex"):
        Manifest.load(tmp_path / MANIFEST_FILE)
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(dict(vars(make_manifest()), format_version=99)))
    with pytest.raises(IndexLoadError, match="newer shopbot"):
        Manifest.load(tmp_path / MANIFEST_FILE)


def test_check_manifest_mismatch_messages(tmp_path: Path) -> None:
    manifest = make_manifest(encoder="use-multilingual", dim=512)
    check_manifest(manifest, encoder="use-multilingual", dim=512, where=tmp_path)
    with pytest.raises(IndexLoadError) as err:
        check_manifest(manifest, encoder="minilm", dim=384, where=tmp_path)
    assert str(err.value) == (
        f"The index at {tmp_path} was built with encoder 'use-multilingual' (512-d) but 'minilm' "
        "(384-d) is configured; run `shopbot reindex` to rebuild it."
    )
    with pytest.raises(IndexLoadError, match="512-d vectors but encoder 'use-multilingual' produces 256-d"):
        check_manifest(manifest, encoder="use-multilingual", dim=256, where=tmp_path)


def test_open_index_checks_manifest_and_file(tmp_path: Path) -> None:
    index, _, _ = fresh("flat", rows=50)
    index.save(tmp_path)
    make_manifest(dim=32, count=50).save(tmp_path / MANIFEST_FILE)
    loaded, manifest = open_index(tmp_path, encoder="minilm", dim=32)
    assert loaded.ntotal == 50 and manifest.count == 50
    with pytest.raises(IndexLoadError, match="'minilm' \\(32-d\\) but 'e5-small'"):
        open_index(tmp_path, encoder="e5-small", dim=32)
    make_manifest(dim=16).save(tmp_path / MANIFEST_FILE)
    with pytest.raises(IndexLoadError, match="holds 32-d vectors but its manifest says 16-d"):
        open_index(tmp_path, encoder="minilm", dim=16)


# ---- build directories and the atomic swap -----------------------------------------------------------


def write_bundle(build_dir: Path, seed: int) -> None:
    index = VectorIndex.build(product_ids(20), unit(20, seed=seed))
    index.save(build_dir)
    make_manifest(dim=32, count=20, extra={"seed": seed}).save(build_dir / MANIFEST_FILE)


def test_publish_swaps_current(tmp_path: Path) -> None:
    assert current_dir(tmp_path) is None
    first = new_build_dir(tmp_path)
    write_bundle(first, seed=1)
    publish(tmp_path, first)
    assert current_dir(tmp_path) == first.resolve()
    link = tmp_path / "current"
    assert link.is_symlink() and not os.path.isabs(os.readlink(link))  # survives moving the root

    second = new_build_dir(tmp_path)
    write_bundle(second, seed=2)
    publish(tmp_path, second)
    current = current_dir(tmp_path)
    assert current == second.resolve()
    assert Manifest.load(current / MANIFEST_FILE).extra == {"seed": 2}
    assert not list(tmp_path.glob(".current*.tmp"))
    with pytest.raises(ValueError, match="not a build directory"):
        publish(tmp_path, tmp_path / "elsewhere")


def test_crash_mid_build_keeps_previous_build(tmp_path: Path) -> None:
    with staged_build(tmp_path) as good:
        write_bundle(good, seed=1)
    assert current_dir(tmp_path) == good.resolve()

    with pytest.raises(RuntimeError, match="encoder died"), staged_build(tmp_path) as doomed:
        VectorIndex.build(product_ids(20), unit(20, seed=2)).save(doomed)
        raise RuntimeError("encoder died")
    assert current_dir(tmp_path) == good.resolve()
    assert not doomed.exists(), "a failed build cleans up after itself"
    assert VectorIndex.load(good).ntotal == 20

    # The low-level protocol: a build that never reaches publish() changes nothing either.
    partial = new_build_dir(tmp_path)
    with pytest.raises(KeyError):
        (partial / INDEX_FILE).write_bytes(b"half an ind")
        raise KeyError("crash")
    assert current_dir(tmp_path) == good.resolve()


def test_publish_prunes_old_builds(tmp_path: Path) -> None:
    published = []
    for seed in range(5):
        build = new_build_dir(tmp_path)
        write_bundle(build, seed=seed)
        publish(tmp_path, build)
        published.append(build)
    remaining = sorted(p.name for p in (tmp_path / "builds").iterdir())
    assert remaining == [p.name for p in published[-3:]]  # current + 2 to roll back to

    # An unpublished build older than current: kept while it may still be running, pruned once stale.
    old_stamp = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y%m%dT%H%M%S%fZ")
    stale = tmp_path / "builds" / f"{old_stamp}-deadbeef"
    stale.mkdir()
    recent = tmp_path / "builds" / f"{published[0].name[:-9]}-0000000a"
    recent.mkdir()
    in_progress = new_build_dir(tmp_path)  # newer than current: another reindex may be writing it
    removed = prune_builds(tmp_path)
    assert stale in removed and not stale.exists()
    assert recent.exists() and in_progress.exists() and current_dir(tmp_path) == published[-1].resolve()
