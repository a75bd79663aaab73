"""The console's one background job: a reindex from an uploaded catalog, watched from the catalog page.

A reindex takes seconds to minutes (every product is encoded), so it runs in a thread and the page polls
:meth:`ReindexJob.status`. Only one runs at a time per console; the bot keeps serving the old index until
the new one is published (atomically, retrieval/bundle.py) and picks it up within SHOPBOT_RELOAD_SECONDS.
The work is ``bot.services.index_catalog``, the same as `shopbot reindex` and Telegram's /reindex.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.services import index_catalog, read_catalog
from bot.settings import Settings

__all__ = ["ReindexJob"]

log = logging.getLogger(__name__)


@dataclass
class ReindexJob:
    """State of the latest reindex started from the console."""

    state: str = "idle"  # idle | reading | indexing | done | failed
    source: str = ""
    started: float = 0.0
    finished: float = 0.0
    lines: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def running(self) -> bool:
        return self.state in ("reading", "indexing")

    def start(self, settings: Settings, path: Path, name: str) -> bool:
        """Start indexing ``path`` in a thread; False when one is already running."""
        with self._lock:
            if self.running:
                return False
            self.state, self.source, self.started, self.finished, self.lines = "reading", name, time.time(), 0.0, []
        threading.Thread(target=self._run, args=(settings, path), name="console-reindex", daemon=True).start()
        return True

    def _run(self, settings: Settings, path: Path) -> None:
        try:
            catalog = read_catalog(settings, path, on_error="skip")
            with self._lock:
                self.lines = list(catalog.lines())
                self.state = "indexing"
            report = index_catalog(settings, catalog, full=False, progress=False)
            with self._lock:
                self.lines += report.lines()
                self.state = "done"
        except Exception as exc:  # a bad catalog or a full disk: the old index keeps serving
            log.exception("console reindex failed")
            with self._lock:
                self.lines.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                self.state = "failed"
        finally:
            self.finished = time.time()
            path.unlink(missing_ok=True)  # indexed (or refused): the index never reads its source again

    def status(self) -> dict[str, Any]:
        """JSON for the progress endpoint and the page."""
        with self._lock:
            end = self.finished or time.time()
            return {"state": self.state, "source": self.source, "lines": list(self.lines),
                    "seconds": round(end - self.started, 1) if self.started else 0.0}
