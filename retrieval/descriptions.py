"""The file of generated product descriptions: ``shopbot describe`` appends to it, reindex reads it.

Generated descriptions live in ``<data dir>/descriptions.jsonl``, one JSON line per description, written
(and fsync'ed) the moment it is made, so a batch stopped by Ctrl-C or a kill loses at most the product it
was writing. The file sits beside the catalog code because reindex fills empty catalog descriptions from it
(:func:`retrieval.catalog.overlay_descriptions`); the catalog's own descriptions always win.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["DESCRIPTIONS_FILE", "DescriptionStore"]

DESCRIPTIONS_FILE = "descriptions.jsonl"


class DescriptionStore:
    """The append-only file of generated descriptions (latest line per SKU, language and facts wins)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every complete line; one cut short by a kill, or damaged otherwise, is skipped."""
        if not self.path.is_file():
            return
        with self.path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict) and row.get("sku") and row.get("hash") and row.get("text"):
                    yield row

    def done(self, language: str) -> set[tuple[str, str]]:
        """(sku, facts hash) pairs already described in ``language``."""
        return {(str(r["sku"]), str(r["hash"])) for r in self.rows() if r.get("language") == language}

    def texts(self) -> dict[str, set[str]]:
        """Every generated text per SKU, to recognise a description the overlay put into the index."""
        out: dict[str, set[str]] = {}
        for r in self.rows():
            out.setdefault(str(r["sku"]), set()).add(str(r["text"]).strip())
        return out

    def append(self, row: dict[str, Any]) -> None:
        """Write one line durably; a line left unterminated by a killed run is closed off first."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.seek(0, os.SEEK_END)
                if fh.tell() > 0:
                    fh.seek(-1, os.SEEK_END)
                    if fh.read(1) != b"\n":
                        fh.write(b"\n")
                fh.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
