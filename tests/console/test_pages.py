"""Every console page over a real SQLite store written through the store's own API."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from starlette.testclient import TestClient

from bot.console.app import UPLOAD_DIR, UPLOAD_KEEP_S
from bot.settings import Settings
from bot.store.database import Store
from bot.store.records import ShownItem
from model.training.registry import Registry
from tests.conftest import HEADER, ROWS
from tests.console.conftest import csrf_of
from tests.fakes.telegram_server import TOKEN, FakeTelegram

EVIL = "<script>alert(1)</script>"


def _shown(*skus: str) -> list[ShownItem]:
    return [(s, i + 1, 1.0) for i, s in enumerate(skus)]


def _fill(store: Store) -> None:
    store.log_turn("telegram:1", "red coat", "Here are coats.", intent="search", query="red coat", language="en",
                   latency_ms=100, shown=_shown("COA-1", "COA-3"))
    store.log_feedback("telegram:1", "thumb_up", sku="COA-1")
    store.log_turn("telegram:1", EVIL, "Nothing found.", intent="search", query=EVIL, language="en", latency_ms=300)
    store.log_turn("rasa:2", "雨裤", "没有找到。", intent="search", query="雨裤", language="zh", latency_ms=200)
    store.log_feedback("rasa:2", "thumb_down")
    store.handoff("telegram:1", "asked for a person")


def test_every_page_renders_and_escapes(logged_in: TestClient, store: Store) -> None:
    _fill(store)
    for path in ("/", "/?days=30&channel=telegram", "/conversations", "/conversations?q=coat", "/handoffs",
                 "/catalog", "/models", "/gaps", "/conversations/telegram:1"):
        r = logged_in.get(path)
        assert r.status_code == 200, path
        assert EVIL not in r.text, path
    page = logged_in.get("/conversations/telegram:1").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "COA-1" in page and "thumb_up" in page
    assert "&lt;script&gt;" in logged_in.get("/handoffs").text


def test_overview_numbers_equal_the_store(logged_in: TestClient, store: Store) -> None:
    _fill(store)
    data = logged_in.get("/api/overview?days=7").json()
    st = store.stats()
    assert data["turns"] == st["turns"] == 3
    assert data["conversations"] == st["sessions"] == 2
    assert data["thumbs_up"] == 1 and data["thumbs_down"] == 1 and data["thumbs_share"] == 0.5
    assert data["searches"] == 3 and data["zero_results"] == 2 and data["zero_result_rate"] == round(2 / 3, 3)
    assert data["latency_ms_p50"] == st["latency_ms_p50"] == 200 and data["latency_ms_p95"] == 300
    assert data["handoffs"] == 1 and data["handoff_rate"] == 0.5
    only = logged_in.get("/api/overview?days=7&channel=rasa").json()
    assert only["turns"] == 1 and only["thumbs_down"] == 1 and only["thumbs_up"] == 0
    html = logged_in.get("/?days=7").text
    assert '<b id="turns">3</b>' in html and "<svg" in html and "<script" not in html.split("<main>")[1]


def _upload(client: TestClient, name: str, body: bytes) -> object:
    token = csrf_of(client.get("/catalog").text)
    return client.post("/catalog/upload", data={"csrf_token": token}, files={"file": (name, body, "text/csv")})


def _csv(rows: list[list[str]]) -> bytes:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(HEADER)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def test_upload_lists_bad_rows_by_line_and_shows_formulas_as_text(logged_in: TestClient, settings: Settings) -> None:
    rows = [list(r) for r in ROWS]
    rows[2][6] = "not a price"  # line 4 of the file (header is line 1)
    rows[0][1] = '=HYPERLINK("http://evil.example","click")'
    r = _upload(logged_in, "catalog.csv", _csv(rows))
    assert r.status_code == 200  # type: ignore[attr-defined]
    text = r.text  # type: ignore[attr-defined]
    assert "line 4" in text and "COA-3" in text
    assert "=HYPERLINK(&#34;http://evil.example&#34;,&#34;click&#34;)" in text and "shown as text" in text
    assert "<a href=\"http://evil.example\"" not in text
    # the reindex of the checked file runs in the background and finishes
    token = csrf_of(logged_in.get("/catalog").text)
    assert logged_in.post("/catalog/reindex", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    deadline = time.time() + 120
    while logged_in.get("/api/reindex").json()["state"] not in ("done", "failed") and time.time() < deadline:
        time.sleep(0.2)
    status = logged_in.get("/api/reindex").json()
    assert status["state"] == "done", status
    page = logged_in.get("/catalog").text
    assert 'id="index-version"' in page and "Loaded 12 products" in page
    # the indexed upload is removed: the index never reads it again
    assert list((settings.data_dir / UPLOAD_DIR).iterdir()) == []


def test_a_checked_upload_never_reindexed_is_removed_a_day_later(logged_in: TestClient, settings: Settings) -> None:
    assert _upload(logged_in, "catalog.csv", _csv([list(r) for r in ROWS])).status_code == 200  # type: ignore[attr-defined]
    uploads = settings.data_dir / UPLOAD_DIR
    [abandoned] = list(uploads.iterdir())
    day_ago = time.time() - UPLOAD_KEEP_S - 60
    os.utime(abandoned, (day_ago, day_ago))
    assert _upload(logged_in, "catalog.csv", _csv([list(r) for r in ROWS])).status_code == 200  # type: ignore[attr-defined]
    left = list(uploads.iterdir())
    assert abandoned not in left and len(left) == 1  # the new one is kept for its reindex


def test_oversized_and_non_utf8_uploads_are_refused(logged_in: TestClient, settings: Settings) -> None:
    big = b"x" * int(settings.console_upload_mb * 2**20 + 200 * 1024)
    r = _upload(logged_in, "big.csv", big)
    assert r.status_code == 413 and "SHOPBOT_CONSOLE_UPLOAD_MB" in r.text  # type: ignore[attr-defined]
    r = _upload(logged_in, "latin1.csv", _csv([list(ROWS[0])]).replace(b"Women", "Wömen".encode("latin-1")))
    assert r.status_code == 400 and "not UTF-8" in r.text  # type: ignore[attr-defined]


def _version(reg: Registry, kind: str, name: str, ndcg: float) -> None:
    d = reg.root / kind / name  # type: ignore[attr-defined]
    d.mkdir(parents=True)
    (d / "meta.json").write_text(json.dumps({"created_at": "2026-12-01T00:00:00", "promoted": True,
                                             "metrics": {"metric": "ndcg@10", "candidate": {"ndcg@10": ndcg}}}))


def test_promote_and_rollback(logged_in: TestClient, settings: Settings) -> None:
    reg = Registry(settings.models_dir)
    _version(reg, "ranker", "v1", 0.71)
    _version(reg, "ranker", "v2", 0.74)
    page = logged_in.get("/models").text
    assert "ndcg@10: 0.74" in page and 'id="active-ranker">built-in default' in page
    token = csrf_of(page)
    for name in ("v1", "v2"):
        logged_in.post("/models/promote", data={"csrf_token": token, "kind": "ranker", "name": name})
    assert reg.active_name("ranker") == "v2"
    r = logged_in.post("/models/rollback", data={"csrf_token": token, "kind": "ranker"})
    assert reg.active_name("ranker") == "v1" and "rolled back to v1" in r.text
    r = logged_in.post("/models/promote", data={"csrf_token": token, "kind": "ranker", "name": "nope"})
    assert reg.active_name("ranker") == "v1" and r.status_code == 200


def test_release_gives_the_conversation_back(logged_in: TestClient, store: Store) -> None:
    _fill(store)
    token = csrf_of(logged_in.get("/handoffs").text)
    r = logged_in.post("/handoffs/release", data={"csrf_token": token, "user_id": "telegram:1"})
    assert "back with the bot" in r.text and not store.is_handed_over("telegram:1")
    assert "No open handoffs" in logged_in.get("/handoffs").text


def test_reply_as_shop_goes_through_the_bot_api_and_is_logged(tmp_path: Path, store: Store,
                                                              fake_telegram: FakeTelegram) -> None:
    from bot.console.app import create_app
    from tests.console.conftest import log_in, make_settings

    s = make_settings(tmp_path / "d2", telegram_token=TOKEN, telegram_api_url=fake_telegram.base_url)
    _fill(store)
    with TestClient(create_app(s, store=store, secret_key="k"), base_url="http://127.0.0.1") as c:
        log_in(c)
        token = csrf_of(c.get("/handoffs").text)
        r = c.post("/handoffs/reply", data={"csrf_token": token, "user_id": "telegram:1", "text": "Hi <b>Ann</b> & co"})
        assert "Sent to telegram:1" in r.text
        sent = fake_telegram.sent(1)
        assert sent and sent[-1].text == "Hi <b>Ann</b> & co"
        turns = store.conversation("telegram:1")
        assert turns[-1].intent == "shop_reply" and turns[-1].text_out == "Hi <b>Ann</b> & co"
        assert "Shop (a person):</b> Hi &lt;b&gt;Ann&lt;/b&gt; &amp; co" in c.get("/conversations/telegram:1").text
        r = c.post("/handoffs/reply", data={"csrf_token": token, "user_id": "rasa:2", "text": "hello"})
        assert "cannot write to" in r.text and store.conversation("rasa:2")[-1].intent == "search"
