"""Reading what the shop reports happened outside the chat (``shopbot feedback import``).

Purchases and add-to-cart events happen on the shop's website, not in the chat, yet they are the
strongest signal the ranker and the recommender learn from (a purchase after a search, "goes with your
laptop"). The shop exports them as CSV or JSON lines, one action per row:

=========  =========================================================================================
``user``   required: the shopper as the store knows them, ``telegram:12345`` (or ``12345`` with
           ``--channel telegram``)
``sku``    required: a product of the current catalog
``kind``   ``purchase`` (default), ``add_to_cart``, ``click``, ``thumb_up``, ``thumb_down``, ``rating``
``at``     when it happened, ISO 8601 (``2026-11-29T10:15:00Z``; no zone: UTC); default now
``order``  the shop's order number (two identical purchases in two orders count twice)
``value``  a number: the rating for ``rating``, a quantity otherwise
=========  =========================================================================================

JSON lines, or one JSON array of such objects (rows are then numbered by their place in the array). A
bad row is reported with its line number and why, and skipped; the rest are imported.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.store.records import FEEDBACK_KINDS, ReportedAction
from retrieval.catalog import CatalogError

__all__ = ["read_reported_actions"]


def read_reported_actions(
    path: str | Path, *, channel: str | None = None, known_skus: set[str] | None = None,
    now: datetime | None = None,
) -> tuple[list[ReportedAction], list[str]]:
    """The actions in ``path`` and one sentence per skipped row ("line 7: ...")."""
    p = Path(path)
    if not p.is_file():
        raise CatalogError(f"{p} does not exist; pass the shop's export of purchases (CSV or JSON lines).")
    now = now or datetime.now(UTC)
    rows: list[ReportedAction] = []
    errors: list[str] = []
    for line, raw in _records(p):
        try:
            rows.append(_action(raw, channel, known_skus, now))
        except ValueError as exc:
            errors.append(f"line {line}: {exc}")
    return rows, errors


def _records(p: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    if p.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
        text = p.read_text(encoding="utf-8")
        if text.lstrip().startswith("["):  # one JSON array instead of JSON lines
            try:
                records = json.loads(text)
            except ValueError as exc:
                raise CatalogError(f"{p} is not valid JSON ({exc}); write one object per line or one array.") from None
            for n, rec in enumerate(records, 1):
                yield n, rec if isinstance(rec, dict) else {"__bad__": "not a JSON object"}
            return
        with p.open(encoding="utf-8") as fh:
            for n, text in enumerate(fh, 1):
                if not text.strip():
                    continue
                try:
                    rec = json.loads(text)
                except ValueError:
                    rec = None
                yield n, rec if isinstance(rec, dict) else {"__bad__": "not a JSON object"}
        return
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with p.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not {"user", "sku"} <= {(f or "").strip().lower() for f in reader.fieldnames or ()}:
            raise CatalogError(f"{p} needs the columns user and sku (and optionally kind, at, order, value).")
        for rec in reader:
            yield reader.line_num, {(k or "").strip().lower(): v for k, v in rec.items()}


def _action(raw: Mapping[str, Any], channel: str | None, known: set[str] | None, now: datetime) -> ReportedAction:
    if "__bad__" in raw:
        raise ValueError(raw["__bad__"])
    user = str(raw.get("user") or "").strip()
    sku = str(raw.get("sku") or "").strip()
    if not user:
        raise ValueError("no user")
    if not sku:
        raise ValueError("no sku")
    if ":" not in user:
        if not channel:
            raise ValueError(f"user {user!r} has no channel; write it as 'telegram:{user}' or pass --channel")
        user = f"{channel}:{user}"
    if known is not None and sku not in known:
        raise ValueError(f"SKU {sku!r} is not in the catalog")
    kind = str(raw.get("kind") or "purchase").strip().lower()
    if kind not in FEEDBACK_KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(FEEDBACK_KINDS)}")
    at = _time(raw.get("at"), now)
    value = raw.get("value")
    number: float | None = None
    if value not in (None, ""):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"value {value!r} is not a number") from None
    if kind == "rating" and number is None:
        raise ValueError("a rating needs a value")
    order = str(raw.get("order") or "").strip() or None
    return ReportedAction(user, kind, sku, at, number, order)


def _time(value: Any, now: datetime) -> datetime:
    if value in (None, ""):
        return now
    text = str(value).strip()
    try:
        at = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise ValueError(f"time {text!r} is not ISO 8601 (e.g. 2026-11-29T10:15:00Z)") from None
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    if at > now:
        raise ValueError(f"time {text} is in the future")
    return at
