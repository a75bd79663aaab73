"""Private, read-only copies of the served build's memory-mapped files (the ``.npy`` vectors).

The vectors are memory-mapped so that every process serving a build shares one copy of them in the page
cache (docs/capacity.md). A mapping dies with SIGBUS, killing the process, when its file is cut short
under it, and a published build's files are open to anyone who copies onto the live build (``cp`` or
``rsync --inplace`` truncate the file in place). So a serving process never maps a file in ``builds/``:
it maps a copy under ``<index root>/served/`` that nothing else writes. The first process to load a
build makes the copy (under a lock, to a temporary name renamed into place, mode 0444); the others wait
for it and map the same file, so the pages are still shared. Deleting or replacing a build's file
afterwards cannot reach a running process: an unlinked file stays mapped until the process lets go.

A copy is named by its build, its path in the build and the source's size, mtime and inode, so a file
rewritten in place gets a fresh copy at the next load. :func:`prune_served` deletes the copies of every
build but the current one (at each load and each reindex); processes still serving an older build keep
their mapping of the unlinked file, and the disk space comes back when they reload.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from retrieval.bundle import BUILDS_DIR, current_dir, fsync_dir

__all__ = ["SERVED_DIR", "load_served", "prune_served"]

log = logging.getLogger(__name__)

SERVED_DIR = "served"
LOCK_FILE = ".lock"
TMP_PREFIX = ".tmp-"
SEP = "__"
PART = "+"
#: a temporary copy untouched this long belongs to a process killed while copying
STALE_TMP_S = 3600.0
#: Linux ioctl FICLONE (fcntl.FICLONE from Python 3.12): a copy-on-write clone on btrfs and XFS
_FICLONE = 0x40049409


class SourceChanged(ValueError):
    """The build's file was rewritten while it was being copied (someone is writing into the live build)."""


def load_served(root: Path, path: Path) -> np.ndarray:
    """``np.load(path, mmap_mode="r")``, but mapping a private read-only copy of ``path`` (a file in a build
    under ``root``) so that nothing done to ``path`` afterwards can kill this process.

    Raises what ``np.load`` raises for a missing or cut source (OSError, ValueError, EOFError), and
    :class:`SourceChanged` if it changes while copied. If the copy cannot be written (a read-only or full
    disk), the source itself is mapped, as before this module, and the log says why.
    """
    root, path = Path(root), Path(path)
    st = os.stat(path)
    try:
        rel = path.resolve().relative_to((root / BUILDS_DIR).resolve())
    except ValueError:  # not a build's file: nothing can be written into it by a reindex or an operator's copy
        return _load(path)
    name = SEP.join([PART.join(rel.parts), _signature(st)])
    served = root / SERVED_DIR
    try:
        served.mkdir(exist_ok=True)
        with _locked(served / LOCK_FILE):
            final = served / name
            with contextlib.suppress(FileNotFoundError):  # pruned meanwhile, or a copy cut short: copy again
                if os.stat(final).st_size == st.st_size:
                    return _load(final)
            tmp = served / f"{TMP_PREFIX}{name}-{secrets.token_hex(4)}"
            try:
                _copy(path, tmp)
                if _signature(os.stat(path)) != _signature(st):
                    raise SourceChanged(f"{path} changed while it was copied")
                array = _load(tmp)  # a cut source fails here, before it is cached
                os.replace(tmp, final)  # the mapping survives the rename, and a prune right after it
                fsync_dir(served)
                return array
            finally:
                tmp.unlink(missing_ok=True)
    except (ValueError, EOFError):  # the source is bad, not the cache
        raise
    except OSError as exc:
        if not path.is_file():
            raise
        log.warning("Cannot make a private copy of %s under %s (%s); mapping the build's file itself, so "
                    "cutting it in place would kill this process.", path, served, exc)
        return _load(path)


def prune_served(root: Path, *, now: float | None = None) -> list[Path]:
    """Delete the copies no longer served: those of builds other than the current one, those of a current
    file that has since been rewritten, and temporary copies of killed processes. Processes that still
    map a deleted copy keep it until they reload. Returns what was deleted."""
    root = Path(root)
    served = root / SERVED_DIR
    cur = current_dir(root)
    if not served.is_dir():
        return []
    now = time.time() if now is None else now
    doomed: list[Path] = []
    for entry in served.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.name.startswith(TMP_PREFIX):
            try:
                if now - entry.stat().st_mtime > STALE_TMP_S:  # a live copy's mtime moves as it is written
                    doomed.append(entry)
            except FileNotFoundError:
                pass
            continue
        rel, _, sig = entry.name.rpartition(SEP)
        parts = rel.split(PART)
        if cur is None or parts[0] != cur.name:
            doomed.append(entry)
            continue
        try:
            if sig != _signature(os.stat(root / BUILDS_DIR / Path(*parts))):
                doomed.append(entry)
        except FileNotFoundError:
            doomed.append(entry)
    for path in doomed:
        path.unlink(missing_ok=True)
        log.info("deleted served copy %s", path.name)
    return doomed


def _signature(st: os.stat_result) -> str:
    return f"{st.st_size}-{st.st_mtime_ns}-{st.st_ino}"


def _load(path: Path) -> np.ndarray:
    array = np.load(path, mmap_mode="r")
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{path} is not a numpy array file")
    return array


def _copy(src: Path, dst: Path) -> None:
    """A clone where the filesystem can (free, and still private: copy-on-write), a byte copy elsewhere;
    fsynced, so a crash cannot leave a cached copy of the right size with the wrong bytes."""
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
        except OSError:  # ext4, tmpfs, another filesystem: copy the bytes, in the kernel
            offset, size = 0, os.fstat(fin.fileno()).st_size
            while offset < size and (sent := os.sendfile(fout.fileno(), fin.fileno(), offset, size - offset)):
                offset += sent
        fout.flush()
        os.fsync(fout.fileno())
    os.chmod(dst, 0o444)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One process copies a build at a time; the others wait and then map its copy instead of making theirs."""
    with open(path, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
