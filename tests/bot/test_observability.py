"""What an operator sees of a running shopbot: /healthz, /readyz and /metrics served on a real loopback port
(bot/observability/http.py), the metrics a real assistant's turns record (hashing encoder, SQLite, the
packaged intent model), ``shopbot telegram --metrics-port`` against the fake Bot API server, and log lines
in JSON with the turn id and without secrets (bot/observability/logs.py)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

import bot.cli.telegram
from bot.app import Assistant, MeteredLLM, build_assistant
from bot.cli.main import cli
from bot.dialogue.replies import Event, Reply
from bot.observability.http import start_ops_server
from bot.observability.logs import (
    JsonFormatter,
    bind_turn_id,
    configure_logging,
    log_handler,
    new_turn_id,
    secret_values,
    turn_id_var,
)
from bot.observability.ready import Readiness
from bot.settings import Settings
from bot.store.database import Store
from model.llm.base import LLMError, LLMTimeout
from tests.conftest import write_catalog
from tests.fakes.telegram_harness import free_port
from tests.fakes.telegram_server import TOKEN, FakeTelegram

# what a bot token looks like (the bot's number, a colon, 35 characters): never in a log line
BOT_TOKEN = "7212345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"
assert len(BOT_TOKEN.split(":")[1]) == 35


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics as Prometheus reads it: {(sample name, sorted labels): value}."""
    r = httpx.get(url + "/metrics", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: Mapping[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Assistant]:
    """A real assistant over the small test catalog (hashing encoder, SQLite), without a language model."""
    s = Settings(data_dir=tmp_path / "data", catalog=write_catalog(tmp_path / "catalog.csv"), encoder="hashing",
                 multilingual_encoder="hashing", body_view=False, reload_seconds=0)
    a = build_assistant(s, llm=False)
    yield a
    a.close()


# ------------------------------------------------------------------------------------------ the ops server


def test_healthz_is_200_and_readyz_names_the_failing_check_until_all_pass() -> None:
    database = {"up": False}

    def broken() -> bool:
        raise RuntimeError("no such table")

    ready = Readiness({"index": lambda: True, "database": lambda: database["up"]})
    with start_ops_server("127.0.0.1", 0, ready) as ops:
        assert ops.port > 0
        r = httpx.get(ops.url + "/healthz")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        r = httpx.get(ops.url + "/readyz")
        assert r.status_code == 503
        assert r.json() == {"status": "not ready", "checks": {"index": "ok", "database": "failing"}}
        database["up"] = True
        r = httpx.get(ops.url + "/readyz")
        assert r.status_code == 200 and r.json() == {"status": "ready", "checks": {"index": "ok", "database": "ok"}}
        ready.update({"broker": broken})  # a check that raises is a failing check, not a 500
        r = httpx.get(ops.url + "/readyz")
        assert r.status_code == 503 and r.json()["checks"]["broker"] == "failing"
        assert httpx.get(ops.url + "/nothing").status_code == 404
    with pytest.raises(httpx.TransportError):
        httpx.get(ops.url + "/healthz", timeout=2)  # closed


def test_a_hanging_check_is_not_ready_within_the_timeout() -> None:
    release = threading.Event()
    ready = Readiness({"index": lambda: True, "database": lambda: release.wait(30)}, timeout=0.3)
    with start_ops_server("127.0.0.1", 0, ready) as ops:
        t0 = time.monotonic()
        r = httpx.get(ops.url + "/readyz", timeout=10)
        assert r.status_code == 503 and r.json()["checks"] == {"index": "ok", "database": "failing"}
        assert time.monotonic() - t0 < 3
        assert httpx.get(ops.url + "/healthz", timeout=2).status_code == 200  # the server was never blocked
    release.set()


def test_metrics_after_turns_through_a_real_assistant(shop: Assistant) -> None:
    with start_ops_server("127.0.0.1", 0, Readiness(shop.readiness())) as ops:
        before = scrape(ops.url)
        replies = shop.handle(Event(user="u1", channel="metrics-test", text="red winter coat"))
        assert any(r.cards for r in replies)
        shop.handle(Event(user="u1", channel="metrics-test", payload=f"up:{replies[0].turn_id}"))
        shop.handle(Event(user="u1", channel="metrics-test", text="more"))
        after = scrape(ops.url)
        r = httpx.get(ops.url + "/readyz")
        assert r.status_code == 200 and r.json()["checks"] == {"index": "ok", "database": "ok"}

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("shopbot_turns_total", channel="metrics-test", intent="search") == 1
    assert grew("shopbot_turns_total", channel="metrics-test", intent="feedback_positive") == 1
    assert grew("shopbot_turns_total", channel="metrics-test", intent="more") == 1
    assert grew("shopbot_stage_seconds_count", stage="turn") == 3
    assert grew("shopbot_stage_seconds_count", stage="nlu") == 2  # the button press needs no NLU
    assert grew("shopbot_stage_seconds_count", stage="search") == 2
    assert grew("shopbot_stage_seconds_sum", stage="turn") > 0
    assert grew("shopbot_feedback_total", kind="thumb_up") == 1
    assert shop.engine.bundle is not None
    assert value(after, "shopbot_index_version_info", version=shop.engine.bundle.name) == 1
    assert sum(v for (n, _), v in after.items() if n == "shopbot_index_version_info") == 1  # one version served
    # every error kind and update outcome is there from the start (at 0 until it happens)
    for kind in ("database_down", "llm_error", "llm_timeout", "handler_exception", "bad_update", "turn_exception"):
        assert ("shopbot_errors_total", (("kind", kind),)) in after
    for outcome in ("queued", "rejected", "duplicate", "handled", "failed"):
        assert ("shopbot_updates_total", (("outcome", outcome),)) in after
    assert ("shopbot_queue_redeliveries_total", ()) in after
    assert ("shopbot_stage_seconds_bucket", (("le", "0.001"), ("stage", "llm_first_token"))) in after


def test_every_metric_is_listed_with_its_help(shop: Assistant) -> None:
    with start_ops_server("127.0.0.1", 0, Readiness()) as ops:
        families = {f.name: f for f in text_string_to_metric_families(httpx.get(ops.url + "/metrics").text)}
    for name, kind in [("shopbot_turns", "counter"), ("shopbot_stage_seconds", "histogram"),
                       ("shopbot_llm_tokens", "counter"), ("shopbot_feedback", "counter"), ("shopbot_errors", "counter"),
                       ("shopbot_index_version_info", "gauge"), ("shopbot_queue_depth", "gauge"),
                       ("shopbot_queue_redeliveries", "counter"), ("shopbot_updates", "counter")]:
        assert families[name].type == kind and families[name].documentation, name


def test_a_reload_moves_the_index_version(shop: Assistant, tmp_path: Path) -> None:
    from bot.services import reindex
    from tests.conftest import ROWS

    s = shop.settings
    assert s is not None and s.catalog is not None
    old = shop.engine.bundle
    write_catalog(Path(s.catalog), [*ROWS, ("TEN-1", "Wilson Tennis Racket", "", "Graphite racket.", "Sports > Tennis",
                                             "Wilson", "189.00", "7", "black", "", "graphite")])
    reindex(s, Path(s.catalog), full=False)
    assert shop.reload() == ["index"]
    assert shop.engine.bundle is not None and shop.engine.bundle != old and old is not None
    with start_ops_server("127.0.0.1", 0, Readiness()) as ops:
        after = scrape(ops.url)
    assert value(after, "shopbot_index_version_info", version=shop.engine.bundle.name) == 1
    assert ("shopbot_index_version_info", (("version", old.name),)) not in after


def test_an_unreachable_database_is_not_ready_and_each_buffered_write_is_counted(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the database's folder should be")
    s = Settings(data_dir=tmp_path / "data", catalog=write_catalog(tmp_path / "catalog.csv"), encoder="hashing",
                 multilingual_encoder="hashing", body_view=False, reload_seconds=0,
                 database_url=f"sqlite:///{blocker / 'shop.db'}")
    a = build_assistant(s, llm=False)
    try:
        with start_ops_server("127.0.0.1", 0, Readiness(a.readiness())) as ops:
            before = scrape(ops.url)
            replies = a.handle(Event(user="u1", channel="metrics-test", text="running shoes"))
            assert replies  # the shopper is still answered
            r = httpx.get(ops.url + "/readyz")
            assert r.status_code == 503 and r.json()["checks"] == {"index": "ok", "database": "failing"}
            after = scrape(ops.url)
        assert a.store.pending() > 0
        assert value(after, "shopbot_errors_total", kind="database_down") > value(before, "shopbot_errors_total",
                                                                                   kind="database_down")
    finally:
        a.close()


class Scripted:
    """The LLM protocol: streams ``pieces``, then raises ``error`` if given."""

    name, version = "scripted", "1"

    def __init__(self, pieces: list[str], error: Exception | None = None) -> None:
        self.pieces, self.error = pieces, error

    async def stream(self, messages: Any, *, max_tokens: int = 256, temperature: float = 0.2, stop: Any = None,
                     timeout: float | None = None) -> Any:
        for p in self.pieces:
            await asyncio.sleep(0.01)
            yield p
        if self.error is not None:
            raise self.error

    async def complete(self, messages: Any, **kw: Any) -> str:
        return "".join([p async for p in self.stream(messages, **kw)])


def test_the_language_model_is_measured_first_token_pieces_and_failures(tmp_path: Path) -> None:
    from prometheus_client import REGISTRY

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    s = Settings(data_dir=tmp_path / "data", catalog=write_catalog(tmp_path / "catalog.csv"), encoder="hashing",
                 multilingual_encoder="hashing", body_view=False, reload_seconds=0)
    a = build_assistant(s, llm=Scripted([]))  # type: ignore[arg-type]
    try:
        assert isinstance(a.llm, MeteredLLM) and a.llm.name == "scripted"  # what the writers are given
    finally:
        a.close()
    messages = [{"role": "user", "content": "hi"}]
    first, pieces = sample("shopbot_stage_seconds_count", stage="llm_first_token"), sample(
        "shopbot_llm_tokens_total", direction="completion")
    assert asyncio.run(MeteredLLM(Scripted(["Free ", "returns ", "in 30 days."])).complete(messages)) == \
        "Free returns in 30 days."
    assert sample("shopbot_stage_seconds_count", stage="llm_first_token") == first + 1
    assert sample("shopbot_stage_seconds_sum", stage="llm_first_token") > 0
    assert sample("shopbot_llm_tokens_total", direction="completion") == pieces + 3
    for error, kind in [(LLMTimeout("late"), "llm_timeout"), (LLMError("down"), "llm_error")]:
        n = sample("shopbot_errors_total", kind=kind)
        with pytest.raises(LLMError):
            asyncio.run(MeteredLLM(Scripted(["a"], error)).complete(messages))
        assert sample("shopbot_errors_total", kind=kind) == n + 1


# ------------------------------------------------------------------------------------- shopbot telegram


class Stub:
    """A cheap assistant for the CLI's wiring: answers "echo ..." and reads the ops server during a turn."""

    def __init__(self, store: Store, ops_url: str) -> None:
        self.store = store
        self.engine = SimpleNamespace(products=[1, 2, 3])
        self.ops_url = ops_url
        self.stop: Any = None
        self.seen: dict[str, Any] = {}

    def readiness(self) -> dict[str, Callable[[], bool]]:
        return {"index": lambda: True, "database": lambda: True}

    def warm_up(self) -> None:
        pass

    async def watch(self, interval: float) -> None:
        await asyncio.Event().wait()

    async def handle_async(self, event: Event) -> list[Reply]:
        for path in ("healthz", "readyz", "metrics"):
            self.seen[path] = await asyncio.to_thread(httpx.get, f"{self.ops_url}/{path}", timeout=10)
        asyncio.get_running_loop().call_later(0.2, self.stop)
        return [Reply(f"echo {event.text}")]

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()


def test_shopbot_telegram_serves_the_three_paths_on_the_metrics_port(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.channels.telegram.bot import ShopBot

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stub = Stub(Store(f"sqlite:///{tmp_path / 'shop.db'}", tmp_path / "buffer"), url)
    loading: dict[str, Any] = {}

    def assistant_for(settings: Settings) -> Stub:  # while the index loads: alive, not ready
        loading["healthz"] = httpx.get(url + "/healthz", timeout=10)
        loading["readyz"] = httpx.get(url + "/readyz", timeout=10)
        return stub

    original = ShopBot.application

    def capture(self: ShopBot, **kw: Any) -> Any:
        app = original(self, **kw)
        stub.stop = app.stop_running
        return app

    monkeypatch.setattr(bot.cli.telegram, "assistant_for", assistant_for)
    monkeypatch.setattr(ShopBot, "application", capture)
    monkeypatch.setenv("SHOPBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SHOPBOT_LLM", "off")
    monkeypatch.setenv("SHOPBOT_RELOAD_SECONDS", "0")
    monkeypatch.setenv("SHOPBOT_METRICS_PORT", str(port))
    monkeypatch.setenv("SHOPBOT_TELEGRAM_TOKEN", TOKEN)
    loop = asyncio.new_event_loop()
    fake = FakeTelegram()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(fake.start(), loop).result(10)
        monkeypatch.setenv("SHOPBOT_TELEGRAM_API_URL", fake.base_url)

        async def say() -> None:
            fake.message(42, "hello")

        asyncio.run_coroutine_threadsafe(say(), loop).result(10)
        result = CliRunner().invoke(cli, ["telegram", "--listen", "127.0.0.1"], catch_exceptions=False)
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        stub.close()
    assert result.exit_code == 0, result.output
    assert f"/healthz, /readyz and /metrics on 127.0.0.1:{port}" in result.output
    assert loading["healthz"].status_code == 200
    assert loading["readyz"].status_code == 503
    assert loading["readyz"].json()["checks"] == {"index": "failing", "database": "failing"}
    assert stub.seen["healthz"].status_code == 200
    assert stub.seen["readyz"].status_code == 200
    assert stub.seen["readyz"].json() == {"status": "ready", "checks": {"index": "ok", "database": "ok"}}
    assert "shopbot_turns_total" in stub.seen["metrics"].text
    with pytest.raises(httpx.TransportError):  # the ops server stopped with the bot
        httpx.get(url + "/healthz", timeout=2)


# ------------------------------------------------------------------------------------------------- logs


def capture_log(fmt: str, secrets: list[str] | None = None) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    logger = logging.getLogger(f"shopbot.test.{fmt}.{new_turn_id()[:8]}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(log_handler(fmt, stream=out, secrets=secrets or []))
    return logger, out


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_json_lines_carry_the_turn_id_and_extra_fields() -> None:
    logger, out = capture_log("json")
    logger.warning("no turn here")
    tid = new_turn_id()
    with bind_turn_id(tid):
        logger.warning("the search took %d ms", 12, extra={"chat": 42, "stage": "search"})

        async def elsewhere() -> None:  # a worker thread of the same turn (asyncio.to_thread copies the context)
            await asyncio.to_thread(logger.error, "in a thread")

        asyncio.run(elsewhere())
    assert turn_id_var.get() is None
    first, second, third = lines(out)
    assert set(first) == {"ts", "level", "logger", "message"} and first["message"] == "no turn here"
    assert second["turn_id"] == tid and second["message"] == "the search took 12 ms"
    assert second["chat"] == 42 and second["stage"] == "search" and second["level"] == "WARNING"
    assert second["ts"].endswith("+00:00") and second["logger"] == logger.name
    assert third["turn_id"] == tid and third["level"] == "ERROR"


def test_a_turns_log_lines_carry_the_id_the_turn_is_stored_under(shop: Assistant) -> None:
    out = io.StringIO()
    handler = log_handler("json", stream=out)
    manager_log = logging.getLogger("bot.dialogue.manager")
    manager_log.addHandler(handler)

    def broken(text: str, state: Any) -> Any:
        raise RuntimeError("the classifier broke")

    shop.dialogue.understand = broken
    try:
        replies = shop.handle(Event(user="u9", channel="metrics-test", text="red winter coat"))
    finally:
        manager_log.removeHandler(handler)
    failed = [line for line in lines(out) if line["message"] == "turn failed"]
    assert len(failed) == 1 and failed[0]["turn_id"] == replies[0].turn_id
    assert "RuntimeError: the classifier broke" in failed[0]["exception"]
    assert "red winter coat" not in out.getvalue()  # what the shopper wrote is not in the log


def test_tokens_secrets_and_passwords_are_redacted_in_every_format() -> None:
    api_key = "sk-live-0123456789abcdef"
    for fmt in ("json", "text"):
        logger, out = capture_log(fmt, secrets=[api_key])
        logger.warning("HTTP Request: POST https://api.telegram.org/bot%s/getUpdates", BOT_TOKEN)
        logger.warning("calling the model with key %s", api_key, extra={"url": f"https://x/bot{BOT_TOKEN}/getMe"})
        logger.warning("database postgresql+psycopg://shop:hunter2secret@db:5432/shop is down")
        try:
            raise RuntimeError(f"refused: {BOT_TOKEN}")
        except RuntimeError:
            logger.exception("sending failed")
        text = out.getvalue()
        assert BOT_TOKEN not in text and BOT_TOKEN.split(":")[1] not in text, fmt
        assert api_key not in text and "hunter2secret" not in text, fmt
        assert text.count("[REDACTED]") >= (5 if fmt == "json" else 4), text  # text shows no extra fields
        assert "https://api.telegram.org/bot[REDACTED]/getUpdates" in text
        assert "postgresql+psycopg://shop:[REDACTED]@db:5432/shop" in text


def test_the_text_format_is_unchanged() -> None:
    logger, out = capture_log("text")
    with bind_turn_id(new_turn_id()):
        logger.warning("The database is unreachable (%s); rows are buffered.", "refused")
    assert out.getvalue() == f"WARNING {logger.name}: The database is unreachable (refused); rows are buffered.\n"


def test_secret_values_are_read_from_the_settings(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, telegram_token=SecretStr(BOT_TOKEN),
                 telegram_webhook_secret=SecretStr("a-long-webhook-secret"))
    assert set(secret_values(s)) >= {BOT_TOKEN, "a-long-webhook-secret"}


def test_configure_logging_installs_json_on_stderr_and_replaces_itself() -> None:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    for h in saved:
        root.removeHandler(h)
    try:
        configure_logging("json", logging.INFO, secrets=["sk-live-0123456789abcdef"])
        assert len(root.handlers) == 1 and isinstance(root.handlers[0].formatter, JsonFormatter)
        assert root.level == logging.INFO
        configure_logging("text", logging.WARNING)  # called again: replaces its own handler
        assert len(root.handlers) == 1 and not isinstance(root.handlers[0].formatter, JsonFormatter)
        assert root.level == logging.WARNING
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved:
            root.addHandler(h)
        root.setLevel(level)
