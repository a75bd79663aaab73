"""Watchlist notices for Rasa shoppers (bot/watch.py): the outbound trigger_intent call against a tiny loopback
server standing in for Rasa's HTTP API, and the pending notice kept for the next turn without ``rasa_url``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from bot.dialogue.watch import pending_replies
from bot.store.database import Store
from bot.watch import RASA_INTENT, rasa_sender, run_watches

RECEIVED: list[tuple[str, dict[str, Any]]] = []


class FakeRasa(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        RECEIVED.append((self.path, body))
        out = json.dumps({"tracker": {}, "messages": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def rasa_url() -> Iterator[str]:
    RECEIVED.clear()
    server = HTTPServer(("127.0.0.1", 0), FakeRasa)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "buffer")
    yield s
    s.close()


def _watch(store: Store, sender: str) -> str:
    return store.add_watch(f"rasa:{sender}", channel="rasa", chat_id=sender, language="en", query="winter coat",
                           filters={"colors": ["red"], "max_price": 80}, expires_at=datetime.now(UTC) + timedelta(days=30)).id


def test_trigger_intent_carries_the_products(engine, store: Store, rasa_url: str) -> None:  # type: ignore[no-untyped-def]
    _watch(store, "ann 1")
    report = run_watches(store, engine, {"rasa": rasa_sender(rasa_url)})
    assert (report.sent, report.pending) == (1, 0)
    [(path, body)] = RECEIVED
    assert path == "/conversations/ann%201/trigger_intent?output_channel=latest"
    assert body["name"] == RASA_INTENT
    assert [p["sku"] for p in body["entities"]["watch_products"]] == ["COA-1"]  # COA-3 is out of stock
    assert "winter coat" in body["entities"]["watch_text"]
    run_watches(store, engine, {"rasa": rasa_sender(rasa_url)})
    assert len(RECEIVED) == 1  # told once
    assert pending_replies(store, engine, "rasa:ann 1") == []


def test_without_rasa_url_the_notice_waits_for_the_next_turn(engine, store: Store) -> None:  # type: ignore[no-untyped-def]
    _watch(store, "bo")
    report = run_watches(store, engine, {"rasa": rasa_sender(None)})
    assert (report.sent, report.pending) == (0, 1)
    [reply] = pending_replies(store, engine, "rasa:bo")
    assert "new products for your watch" in reply.text and [c.sku for c in reply.cards] == ["COA-1"]
    assert pending_replies(store, engine, "rasa:bo") == []  # delivered once
    assert run_watches(store, engine, {"rasa": rasa_sender(None)}).pending == 0


def test_an_unreachable_rasa_keeps_the_notice(engine, store: Store) -> None:  # type: ignore[no-untyped-def]
    _watch(store, "cy")
    report = run_watches(store, engine, {"rasa": rasa_sender("http://127.0.0.1:9")})
    assert report.pending == 1 and len(pending_replies(store, engine, "rasa:cy")) == 1
