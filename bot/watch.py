"""Watchlist notices after a reindex: re-run every shopper's standing search, message each shopper once about
products they have not been told of.

Every process that reindexes (`shopbot reindex`, Telegram's /reindex, the owner console) finishes in
:func:`bot.services.index_catalog`, which calls :func:`after_reindex` here; so a stock or price change that an
incremental reindex publishes is seen by the next run of every watch. Delivery is by channel:

* Telegram: one ``sendMessage`` through the Bot API (``telegram_api_url`` + the token), the products as lines
  with a Details button each, paced at ``telegram_max_rate`` messages a second, a 429 waited out once. It is a
  small HTTP call of its own rather than the Telegram channel's sender because the layers forbid
  bot.services (and what it imports) from importing a channel, and the CLI or the console that reindexes
  runs no Telegram application to borrow one from.
* Rasa: ``POST {rasa_url}/conversations/{sender}/trigger_intent?output_channel=latest`` with the intent
  ``shopbot_watch_found`` and the products as entities (docs/rasa.md). Without ``rasa_url``, or when Rasa
  does not answer, the notice is kept (``pending_skus``) and the action server shows it at the shopper's
  next turn.
* Other channels (the terminal) keep the notice pending the same way.

A product is marked announced when the notice was sent or kept, so it is never announced twice; a Telegram
send that fails is retried at the next reindex. This module sits beside bot.services (which calls it) and
under nothing: it imports the dialogue's watch service and the store, never a channel.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx

from bot.dialogue.replies import Reply, format_price, stock_text
from bot.dialogue.turn import filters_from_dict
from bot.dialogue.watch import matches, notice
from bot.settings import Settings
from bot.store.database import Store
from bot.store.records import WatchRecord
from retrieval.search import SearchEngine

__all__ = ["MAX_PRODUCTS", "RASA_INTENT", "Outcome", "Sender", "WatchReport", "after_reindex", "rasa_sender",
           "run_watches", "senders_for", "telegram_sender"]

log = logging.getLogger(__name__)

MAX_PRODUCTS = 5  # products named in one notice; the rest wait for the next reindex's notice
PRUNE_AFTER = timedelta(days=7)  # an expired or cancelled watch is listed as such this long, then deleted
RASA_INTENT = "shopbot_watch_found"
TELEGRAM_DATA_LIMIT = 64  # bytes of callback_data

Outcome = Literal["sent", "pending", "failed"]
#: delivers one notice: "sent", "pending" (kept for the shopper's next turn) or "failed" (retried next reindex)
Sender = Callable[[WatchRecord, Reply], Outcome]


@dataclass
class WatchReport:
    """What one run did, for the reindex report."""

    checked: int = 0
    sent: int = 0
    pending: int = 0
    failed: int = 0
    pruned: int = 0

    def line(self) -> str:
        return (f"Watchlists: {self.checked} checked, {self.sent} shoppers notified, {self.pending} notices kept for "
                f"the shopper's next turn, {self.failed} failed (retried next reindex), {self.pruned} old ones pruned.")


def run_watches(store: Store, engine: SearchEngine, senders: Mapping[str, Sender], *,
                now: datetime | None = None) -> WatchReport:
    """Re-run every active watch against ``engine``; one notice per watch with new matches; prune old watches."""
    at = now or datetime.now(UTC)
    report = WatchReport()
    for w in store.due_watches(at):
        report.checked += 1
        told = set(w.notified_skus) | set(w.pending_skus)
        new = [p for p in matches(engine, w.query, filters_from_dict(w.filters)) if p.sku not in told][:MAX_PRODUCTS]
        if not new:
            continue
        send = senders.get(w.channel)
        try:
            outcome: Outcome = send(w, notice(w, new)) if send is not None else "pending"
        except Exception:  # one shopper's failed delivery must not stop the others'
            log.exception("watch %s: the notice could not be delivered", w.id)
            outcome = "failed"
        if outcome == "failed":
            report.failed += 1
            continue
        store.mark_watch_notified(w.id, [p.sku for p in new], pending=outcome == "pending")
        report.sent += outcome == "sent"
        report.pending += outcome == "pending"
    report.pruned = store.prune_watches(at - PRUNE_AFTER)
    return report


# ------------------------------------------------------------------------------------ Telegram


def _telegram_text(reply: Reply) -> str:
    lang = reply.language
    lines = [html.escape(reply.text)]
    for c in reply.cards:
        lines.append(f"{c.rank}. <b>{html.escape(c.title)}</b> — {html.escape(format_price(c.price, c.currency))}, "
                     f"{html.escape(stock_text(c.stock, lang, c.stock_counted))}")
    return "\n".join(lines)


def _telegram_keyboard(reply: Reply) -> list[list[dict[str, str]]]:
    details = "详情" if reply.language == "zh" else "Details"
    rows = [[{"text": f"{details} {c.rank}", "callback_data": f"details:{c.sku}"}] for c in reply.cards]
    rows += [[{"text": b.label, "callback_data": b.payload}] for b in reply.buttons]
    return [r for r in rows if len(r[0]["callback_data"].encode()) <= TELEGRAM_DATA_LIMIT]


def telegram_sender(api_url: str, token: str, *, max_rate: float = 30.0, client: httpx.Client | None = None,
                    sleep: Callable[[float], None] = time.sleep) -> Sender:
    """A sender through the Bot API's ``sendMessage``, at most ``max_rate`` messages a second (0: unpaced)."""
    http = client or httpx.Client(timeout=10.0)
    gap = 1.0 / max_rate if max_rate > 0 else 0.0
    last = [0.0]

    def send(watch: WatchRecord, reply: Reply) -> Outcome:
        body: dict[str, Any] = {"chat_id": watch.chat_id, "text": _telegram_text(reply), "parse_mode": "HTML",
                                "reply_markup": {"inline_keyboard": _telegram_keyboard(reply)}}
        for _attempt in range(2):
            wait = last[0] + gap - time.monotonic()
            if wait > 0:
                sleep(wait)
            last[0] = time.monotonic()
            r = http.post(f"{api_url}{token}/sendMessage", json=body)
            if r.status_code == 429:  # Telegram says how long to wait
                sleep(float((r.json().get("parameters") or {}).get("retry_after", 1)))
                continue
            if r.is_success and r.json().get("ok"):
                return "sent"
            log.warning("watch %s: Telegram answered %s %s", watch.id, r.status_code, r.text[:200])
            return "failed"
        return "failed"

    return send


# ---------------------------------------------------------------------------------------- Rasa


def rasa_sender(rasa_url: str | None, *, client: httpx.Client | None = None) -> Sender:
    """A sender through Rasa's HTTP API (``trigger_intent``); without ``rasa_url`` every notice is kept for the
    shopper's next turn, and so is one Rasa refuses or does not answer."""

    def send(watch: WatchRecord, reply: Reply) -> Outcome:
        if not rasa_url:
            return "pending"
        http = client or httpx.Client(timeout=10.0)
        products = [{"sku": c.sku, "title": c.title, "price": c.price, "currency": c.currency, "stock": c.stock}
                    for c in reply.cards]
        body = {"name": RASA_INTENT, "entities": {"watch_text": reply.text, "watch_query": watch.query,
                                                  "watch_products": products}}
        url = f"{rasa_url.rstrip('/')}/conversations/{quote(watch.chat_id, safe='')}/trigger_intent"
        try:
            r = http.post(url, params={"output_channel": "latest"}, json=body)
        except httpx.HTTPError as exc:
            log.warning("watch %s: Rasa at %s cannot be reached (%s); kept for the next turn", watch.id, rasa_url, exc)
            return "pending"
        if r.is_success:
            return "sent"
        log.warning("watch %s: Rasa answered %s; kept for the next turn", watch.id, r.status_code)
        return "pending"

    return send


def senders_for(s: Settings) -> dict[str, Sender]:
    """The senders the settings make possible: Telegram with a token; Rasa always (pending without rasa_url)."""
    out: dict[str, Sender] = {"rasa": rasa_sender(s.rasa_url)}
    if s.telegram_token is not None:
        out["telegram"] = telegram_sender(s.telegram_api_url, s.telegram_token.get_secret_value(),
                                          max_rate=s.telegram_max_rate)
    return out


def after_reindex(s: Settings, load: Callable[[], SearchEngine], *,
                  senders: Mapping[str, Sender] | None = None) -> WatchReport | None:
    """What :func:`bot.services.index_catalog` runs once a new index is published: the watches re-run against it
    (``load`` opens it; only when some watch is due). None when there is no database to read watches from yet."""
    url = s.db_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return None  # no shopper has chatted with this installation: nothing to watch, no database to create
    store = Store(url, s.buffer_dir)
    try:
        if not store.due_watches():
            return WatchReport(pruned=store.prune_watches(datetime.now(UTC) - PRUNE_AFTER))
        return run_watches(store, load(), senders if senders is not None else senders_for(s))
    finally:
        store.close()
