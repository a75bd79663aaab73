"""Model versions: every trained model is a directory, one of which is active per kind; owners list and roll back.

Layout under ``<data_dir>/models``::

    <kind>/<version>/            the artefacts a trainer wrote, plus meta.json
    <kind>/ACTIVE                the active version's name (one line; no file = the built-in default)
    <kind>/history.jsonl         one line per promotion or rollback, oldest first

Why directories and a pointer file rather than a database table: the artefacts are files anyway, a shop
owner can copy or inspect them, and switching is one atomic ``os.replace`` of a tiny file, so a crash mid-
switch leaves the old or the new version active, never a half-written one. A trainer writes into a hidden
staging directory and :meth:`Registry.commit` renames it into place, so a failed training run leaves nothing
that could be activated.

Kinds used by the project: ``ranker`` (retrieval/rerank.py), ``recommender`` (retrieval/recommend/sequential.py),
``llm`` (a LoRA adapter over the local model), ``intents`` (bot/dialogue/nlu/intents.py). The registry does not care what
is inside a version; it only keeps names, figures and the active pointer.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["KINDS", "META_FILE", "Registry", "RegistryError", "Version", "version_lines"]

KINDS = ("ranker", "recommender", "llm", "intents")
META_FILE = "meta.json"
_ACTIVE = "ACTIVE"
_HISTORY = "history.jsonl"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


class RegistryError(ValueError):
    """A version that does not exist, a kind the project does not know, or an unreadable registry."""


@dataclass(frozen=True)
class Version:
    kind: str
    name: str
    path: Path
    meta: Mapping[str, Any] = field(default_factory=dict)
    active: bool = False

    @property
    def created_at(self) -> str:
        return str(self.meta.get("created_at", ""))

    @property
    def metrics(self) -> Mapping[str, Any]:
        """The evaluation figures the trainer recorded: ``{"candidate": {...}, "baseline": {...}, ...}``."""
        return self.meta.get("metrics") or {}

    @property
    def tag(self) -> str:
        """What replies and impressions record: ``ranker:20261129-101500-3f2a``."""
        return f"{self.kind}:{self.name}"


def _now() -> datetime:
    return datetime.now(UTC)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Registry:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # ------------------------------------------------------------------------------------ reading

    def _kind_dir(self, kind: str) -> Path:
        if kind not in KINDS:
            raise RegistryError(f"Unknown model kind '{kind}'; the kinds are {', '.join(KINDS)}.")
        return self.root / kind

    def active_name(self, kind: str) -> str | None:
        try:
            name = (self._kind_dir(kind) / _ACTIVE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    def get(self, kind: str, name: str) -> Version:
        if not _NAME.match(name):
            raise RegistryError(f"'{name}' is not a version name.")
        path = self._kind_dir(kind) / name
        meta_path = path / META_FILE
        if not meta_path.is_file():
            raise RegistryError(f"There is no {kind} version '{name}'; `shopbot models list {kind}` shows them.")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise RegistryError(f"The {kind} version '{name}' has an unreadable {META_FILE}.") from None
        return Version(kind, name, path, meta, active=self.active_name(kind) == name)

    def active(self, kind: str) -> Version | None:
        """The active version, or None when the built-in default is in use (nothing trained, or rolled back
        past the first version). An ACTIVE file naming a missing version counts as None, loudly elsewhere."""
        name = self.active_name(kind)
        if name is None:
            return None
        try:
            return self.get(kind, name)
        except RegistryError:
            return None

    def versions(self, kind: str | None = None) -> list[Version]:
        """Every finished version, oldest first (names sort by creation time)."""
        kinds = KINDS if kind is None else (kind,)
        out: list[Version] = []
        for k in kinds:
            d = self._kind_dir(k)
            if not d.is_dir():
                continue
            mine = []
            for p in d.iterdir():
                if p.is_dir() and not p.name.startswith(".") and (p / META_FILE).is_file():
                    try:
                        mine.append(self.get(k, p.name))
                    except RegistryError:
                        continue
            # names sort by the second they were made; two made in the same second sort by the recorded time
            out += sorted(mine, key=lambda v: (v.created_at, v.name))
        return out

    def history(self, kind: str) -> list[dict[str, Any]]:
        path = self._kind_dir(kind) / _HISTORY
        if not path.is_file():
            return []
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
        return rows

    def tags(self) -> dict[str, str]:
        """Active version per kind, for stamping replies: ``{"ranker": "20261129-...", ...}`` (trained kinds only)."""
        out = {}
        for k in KINDS:
            name = self.active_name(k)
            if name:
                out[k] = name
        return out

    # ------------------------------------------------------------------------------------ writing

    @contextmanager
    def stage(self, kind: str) -> Iterator[Path]:
        """A fresh hidden directory to write a candidate into; removed if the block raises."""
        d = self._kind_dir(kind)
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f".staging-{uuid.uuid4().hex[:12]}"
        tmp.mkdir()
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def commit(self, kind: str, staged: Path, meta: Mapping[str, Any], *, promote: bool) -> Version:
        """Turn a staged directory into a version (name from the time and a short id) and optionally activate it.

        ``meta`` should say what it was trained on and its figures next to the baseline's
        (``metrics={"candidate": ..., "baseline": ..., "metric": "ndcg@10"}``); a version that lost is kept
        (promoted: false) so the owner can see why nothing changed, and can still activate it by hand.
        """
        d = self._kind_dir(kind)
        at = _now()
        name = f"{at:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"
        full = {"kind": kind, "version": name, "created_at": at.isoformat(timespec="microseconds"),
                "parent": self.active_name(kind), "promoted": bool(promote), **dict(meta)}
        _write_atomic(staged / META_FILE, json.dumps(full, indent=2, sort_keys=True, default=str) + "\n")
        final = d / name
        os.replace(staged, final)
        if promote:
            self.activate(kind, name, reason="trained")
        return self.get(kind, name)

    def activate(self, kind: str, name: str | None, *, reason: str) -> Version | None:
        """Make ``name`` active (None: back to the built-in default) and record it in the history."""
        d = self._kind_dir(kind)
        d.mkdir(parents=True, exist_ok=True)
        version = None if name is None else self.get(kind, name)  # refuses unknown names before touching anything
        previous = self.active_name(kind)
        if name is None:
            (d / _ACTIVE).unlink(missing_ok=True)
        else:
            _write_atomic(d / _ACTIVE, name + "\n")
        with (d / _HISTORY).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"at": _now().isoformat(timespec="seconds"), "from": previous, "to": name,
                                 "reason": reason}) + "\n")
        return None if version is None else self.get(kind, version.name)

    def rollback(self, kind: str, to: str | None = None) -> Version | None:
        """Back to ``to``, or to the version that was active before the current one (None: the built-in default).

        Walking the history rather than the creation order means a rollback after a manual activation
        returns where the owner was, and two rollbacks in a row go two steps back.
        """
        current = self.active_name(kind)
        if current is None and to is None:
            raise RegistryError(f"No {kind} version is active: the built-in default is already in use.")
        if to is not None:
            return self.activate(kind, to, reason="rollback")
        target = self._before(kind, current)
        return self.activate(kind, target, reason="rollback")

    def _before(self, kind: str, current: str | None) -> str | None:
        """The version active just before ``current`` became active, skipping ones deleted since."""
        seen = [h for h in self.history(kind) if h.get("reason") != "rollback"]
        for h in reversed(seen):
            if h.get("to") == current:
                prev: str | None = h.get("from")
                if prev is None or (self._kind_dir(kind) / str(prev) / META_FILE).is_file():
                    return prev
                return self._before(kind, prev)
        return None


def _metric_line(v: Any) -> str:
    m = v.metrics
    metric = m.get("metric")
    cand = (m.get("candidate") or {}).get(metric)
    base = (m.get("baseline") or {}).get(metric)
    if metric is None or cand is None:
        return ""
    base_txt = "" if base is None else f" vs {base:.4f} before"
    return f"{metric} {cand:.4f}{base_txt}"


def version_lines(reg: Any, kinds: Sequence[str], versions: Sequence[Any] | None = None, *, last: int | None = None) -> list[str]:
    """Per kind: which version is active, then its versions (``*`` the active one) with their figures; the
    ``last`` newest only when given (Telegram's /models keeps a message short)."""
    versions = reg.versions() if versions is None else versions
    out: list[str] = []
    for k in kinds:
        mine = [v for v in versions if v.kind == k]
        active = reg.active_name(k)
        out.append(f"{k}: " + (f"active {active}" if active else "built-in default active")
                   + ("" if mine else " (no trained versions)"))
        if last is not None and len(mine) > last:
            out.append(f"  … {len(mine) - last} older")
            mine = mine[-last:]
        for v in mine:
            flag = "*" if v.active else " "
            promoted = "" if v.meta.get("promoted", False) else "  (not promoted when trained)"
            out.append(f"  {flag} {v.name}  {_metric_line(v)}{promoted}")
    return out
