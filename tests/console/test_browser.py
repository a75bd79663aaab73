"""The console in a real headless Chromium (playwright): log in, open every page (with a screenshot each),
check a catalog with a bad row, reindex it, release a handoff, add a synonym from a demand-gap theme.

Screenshots go to a temporary directory, or to ``$SHOPBOT_SCREENSHOTS`` (``docs/images`` refreshes the
pictures of docs/console.md)."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from bot.store.database import Store
from tests.console.conftest import PASSWORD, make_settings

CHROMIUM = Path("/usr/bin/chromium")
# in the default run (about 10 s); CI installs Debian's chromium (.ci/run), so there a missing browser fails
pytestmark = pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("CI"),
                                reason="Chromium is not installed at /usr/bin/chromium (apt-get install chromium)")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_console_in_a_browser(tmp_path: Path) -> None:
    import uvicorn
    from playwright.sync_api import sync_playwright

    from bot.console.app import create_app

    settings = make_settings(tmp_path / "data")
    store = Store(settings.db_url, settings.buffer_dir)
    store.log_turn("telegram:7", "jorts", "Nothing found.", intent="search", query="jorts", language="en", latency_ms=90)
    store.log_turn("telegram:8", "jorts for summer", "Nothing found.", intent="search", query="jorts for summer")
    store.handoff("telegram:7", "asked for a person")
    port = _port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, store=store), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    shots = Path(os.environ.get("SHOPBOT_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    base = f"http://127.0.0.1:{port}"
    bad = tmp_path / "catalog.csv"
    bad.write_text("sku,title,price\nA-1,Denim Shorts,19.99\nA-2,Linen Shirt,not a price\nA-3,Canvas Sneakers,39\n",
                   encoding="utf-8")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(base + "/")
            assert page.url.endswith("/login")
            page.fill("input[name=password]", PASSWORD)
            page.click("text=Log in")
            page.wait_for_url(base + "/")
            for name, path in (("overview", "/"), ("conversations", "/conversations"), ("handoffs", "/handoffs"),
                               ("catalog", "/catalog"), ("models", "/models"), ("gaps", "/gaps")):
                page.goto(base + path)
                page.screenshot(path=str(shots / f"console-{name}.png"), full_page=True)
            # a catalog with a bad row: the error by line, then a reindex that finishes
            page.goto(base + "/catalog")
            page.set_input_files("input[type=file]", str(bad))
            page.click("text=Check file")
            assert "line 3" in page.inner_text("table.errors")
            page.click("text=Index these 2 products")
            page.wait_for_function("document.querySelector('#job-state') && "
                                   "['done','failed'].includes(document.querySelector('#job-state').textContent)",
                                   timeout=120_000)
            assert page.inner_text("#job-state") == "done"
            # a handoff given back to the bot
            page.goto(base + "/handoffs")
            page.click("text=Give back to the bot")
            assert "back with the bot" in page.inner_text(".flash")
            assert not store.is_handed_over("telegram:7")
            # a synonym from the demand-gap theme
            page.goto(base + "/gaps")
            page.fill("input[name=phrase]", "jorts")
            page.fill("input[name=words]", "denim shorts")
            page.click("section.theme >> text=Add")
            assert "search uses it from the next query on" in page.inner_text(".flash")
            browser.close()
        from bot.services import load_engine

        engine = load_engine(settings, build_if_missing=False)
        assert engine.search("jorts", k=1).skus == ["A-1"]
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()
