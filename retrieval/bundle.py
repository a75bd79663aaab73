"""The index bundle on disk: the build directory layout, the manifest, durable writes and the atomic swap.

A reindex writes a whole bundle (vectors, BM25, catalog snapshot, manifest) into a fresh directory under
``<root>/builds`` and only then swaps the ``<root>/current`` symlink with one ``os.replace``, so a crash
mid-build leaves the bot serving the previous good build; the manifest lets a loader refuse a bundle
built for another encoder. This is kept apart from the FAISS wrapper (``retrieval.index``) because it is
plain files and needs no faiss: code that only asks which build is current does not load faiss, and
``IndexLoadError`` lives here, below the wrapper, so that everything that reads a persisted bundle (the
manifest, the FAISS index file, the indexer) raises the same one-sentence error.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = [
    "KINDS",
    "MANIFEST_FILE",
    "IndexLoadError",
    "Manifest",
    "atomic_write_text",
    "check_manifest",
    "current_dir",
    "fsync_dir",
    "fsync_file",
    "new_build_dir",
    "prune_builds",
    "publish",
    "rebuild_hint",
    "staged_build",
    "utc_now_iso",
]

log = logging.getLogger(__name__)

#: The vector index kinds a manifest may name (``retrieval.index`` builds them).
KINDS: tuple[str, ...] = ("flat", "ivf", "hnsw")
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1
BUILDS_DIR = "builds"
CURRENT_LINK = "current"
PUBLISHED_MARKER = ".published"


class IndexLoadError(Exception):
    """A persisted index cannot be used; ``str()`` is one sentence that names the fix.

    The bot shows this sentence to the shop owner instead of a traceback, so every message ends by
    saying what to run (almost always ``shopbot reindex``).
    """

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


def rebuild_hint(what: str) -> str:
    """End an error sentence with the fix, so every unusable-index message names what to run."""
    return f"{what}; run `shopbot reindex` to rebuild it."


def utc_now_iso() -> str:
    """UTC timestamp for ``Manifest.built_at``; UTC so builds on different servers compare."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------------


@dataclass
class Manifest:
    """What a build directory holds, so a loader can refuse a bundle that does not fit the config.

    The encoder name and dimension guard against the silent failure of searching 384-d MiniLM
    queries against vectors written by another model; ``catalog_hash`` lets ``shopbot reindex`` skip
    work when the catalog has not changed.
    """

    encoder: str
    dim: int
    catalog_hash: str
    count: int
    built_at: str
    index_type: str
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        """Write JSON atomically, so a reader never sees half a manifest."""
        text = json.dumps(asdict(self), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        atomic_write_text(Path(path), text)

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """Read and validate a manifest; any problem becomes an ``IndexLoadError`` sentence."""
        path = Path(path)
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise IndexLoadError(
                f"No index manifest at {path}; run `shopbot reindex` to build the index.", path=path
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise IndexLoadError(
                rebuild_hint(f"The index manifest {path} is corrupt or unreadable"), path=path
            ) from exc
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("manifest is not a JSON object")
            version = data.get("format_version", FORMAT_VERSION)
            if isinstance(version, int) and version > FORMAT_VERSION:
                raise IndexLoadError(
                    f"The index at {path.parent} was written by a newer shopbot (format {version}, this "
                    f"one reads {FORMAT_VERSION}); upgrade shopbot or run `shopbot reindex` to rebuild it.",
                    path=path,
                )
            known = {f.name for f in fields(cls)}
            manifest = cls(**{key: value for key, value in data.items() if key in known})
            manifest._validate()
        except (ValueError, TypeError) as exc:
            raise IndexLoadError(
                rebuild_hint(f"The index manifest {path} is corrupt or unreadable"), path=path
            ) from exc
        return manifest

    def _validate(self) -> None:
        def is_int(value: object) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        checks = [
            isinstance(self.encoder, str) and bool(self.encoder),
            is_int(self.dim) and self.dim > 0,
            isinstance(self.catalog_hash, str),
            is_int(self.count) and self.count >= 0,
            isinstance(self.built_at, str),
            self.index_type in KINDS,
            is_int(self.format_version),
            isinstance(self.extra, dict),
        ]
        if not all(checks):
            raise ValueError("manifest field has the wrong type or value")


def check_manifest(manifest: Manifest, *, encoder: str, dim: int, where: Path) -> None:
    """Refuse an index built by another encoder before any query is answered with nonsense."""
    if manifest.encoder != encoder:
        raise IndexLoadError(
            f"The index at {where} was built with encoder '{manifest.encoder}' ({manifest.dim}-d) but "
            f"'{encoder}' ({dim}-d) is configured; run `shopbot reindex` to rebuild it.",
            path=Path(where),
        )
    if manifest.dim != dim:
        raise IndexLoadError(
            f"The index at {where} holds {manifest.dim}-d vectors but encoder '{encoder}' produces "
            f"{dim}-d vectors; run `shopbot reindex` to rebuild it.",
            path=Path(where),
        )


# --------------------------------------------------------------------------------------------------
# Build directories and the atomic swap
# --------------------------------------------------------------------------------------------------


def new_build_dir(root: Path) -> Path:
    """Create ``root/builds/<UTC timestamp>-<random>``; names sort by age, so pruning needs no stat."""
    builds = Path(root) / BUILDS_DIR
    builds.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = builds / f"{stamp}-{secrets.token_hex(4)}"
    path.mkdir()
    return path


def current_dir(root: Path) -> Path | None:
    """The build directory ``root/current`` points at, resolved, or ``None`` before the first build."""
    link = Path(root) / CURRENT_LINK
    try:
        resolved = link.resolve(strict=True)
    except (FileNotFoundError, RuntimeError, OSError):
        return None
    return resolved if resolved.is_dir() else None


def publish(root: Path, build_dir: Path) -> None:
    """Point ``root/current`` at ``build_dir`` in one atomic rename, then prune old builds.

    Readers resolve ``current`` once per load, so they see the old bundle or the new one, never a
    mixture. The link is relative (``builds/<name>``) so the whole root can be moved or mounted at
    another path in a container.
    """
    root = Path(root)
    build_dir = Path(build_dir)
    builds = (root / BUILDS_DIR).resolve()
    resolved = build_dir.resolve()
    if resolved.parent != builds or not resolved.is_dir():
        raise ValueError(f"{build_dir} is not a build directory under {builds}; create it with new_build_dir")
    (resolved / PUBLISHED_MARKER).touch()
    fsync_dir(resolved)
    tmp = root / f".{CURRENT_LINK}.{secrets.token_hex(4)}.tmp"
    os.symlink(os.path.join(BUILDS_DIR, resolved.name), tmp)
    try:
        os.replace(tmp, root / CURRENT_LINK)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(root)
    log.info("published index build %s", resolved.name)
    prune_builds(root)


def prune_builds(root: Path, *, keep: int = 2, stale_after: timedelta = timedelta(hours=24)) -> list[Path]:
    """Delete builds older than the current one, keeping ``keep`` published ones to roll back to.

    Builds newer than the current one are never touched: another ``shopbot reindex`` may be writing
    them. An older build that was never published is debris from a killed build and goes once it is
    ``stale_after`` old, which leaves a long-running concurrent build alone.
    """
    root = Path(root)
    current = current_dir(root)
    builds = root / BUILDS_DIR
    if current is None or not builds.is_dir():
        return []
    older = sorted(p for p in builds.iterdir() if p.is_dir() and p.name < current.name)
    published = [p for p in older if (p / PUBLISHED_MARKER).exists()]
    doomed = published[: max(len(published) - keep, 0)]
    cutoff = datetime.now(UTC) - stale_after
    for path in older:
        if path in published:
            continue
        started = _build_started(path.name)
        if started is not None and started < cutoff:
            doomed.append(path)
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
        log.info("pruned old index build %s", path.name)
    return doomed


@contextmanager
def staged_build(root: Path) -> Iterator[Path]:
    """Yield a fresh build directory; publish it if the block succeeds, delete it if it raises.

    ``with staged_build(root) as d: write everything into d`` is the whole reindex protocol: an
    exception anywhere leaves ``current`` on the previous good build and no half-written debris.
    """
    build_dir = new_build_dir(root)
    try:
        yield build_dir
    except BaseException:
        shutil.rmtree(build_dir, ignore_errors=True)
        raise
    publish(root, build_dir)


def _build_started(name: str) -> datetime | None:
    try:
        return datetime.strptime(name.split("-", 1)[0], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None  # not made by new_build_dir: not ours to delete


# --------------------------------------------------------------------------------------------------
# Durable file writes
# --------------------------------------------------------------------------------------------------


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def fsync_file(path: Path) -> None:
    """Flush a file written by another library (faiss) to disk before it is renamed into place."""
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def fsync_dir(path: Path) -> None:
    """Make a rename durable (POSIX); platforms that cannot open directories skip it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
