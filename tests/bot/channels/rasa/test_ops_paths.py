"""``shopbot actions`` answers /healthz, /readyz and /metrics on its own port, beside Rasa's /webhook: the real
action server (rasa-sdk's Sanic app, in-process on a free loopback port) over a real assistant (the small
test catalog with the hashing encoder, SQLite), called with the request Rasa 3.6.21 sends."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import build_assistant
from bot.channels.rasa.actions import ActionRuntime
from bot.channels.rasa.server import ActionServer
from bot.settings import Settings
from tests.conftest import write_catalog

CAPTURE = Path(__file__).parents[4] / "tests" / "data" / "rasa_action_request.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ActionServer]]:
    """Start an action server over a fresh assistant: ``serve(**settings)``."""
    started: list[ActionServer] = []

    def start(**settings: object) -> ActionServer:
        s = Settings(data_dir=tmp_path / f"s{len(started)}", catalog=write_catalog(tmp_path / "catalog.csv"),
                     encoder="hashing", multilingual_encoder="hashing", body_view=False, reload_seconds=0,
                     llm="off", **settings)  # type: ignore[arg-type]
        server = ActionServer(ActionRuntime(build_assistant(s, llm=False)), port=free_port()).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
        server.runtime.assistant.close()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_action_server_is_alive_ready_and_counts_its_turns(serve: Callable[..., ActionServer]) -> None:
    server = serve()
    r = httpx.get(server.url + "/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = httpx.get(server.url + "/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready", "checks": {"index": "ok", "database": "ok"}}
    before = samples(httpx.get(server.url + "/metrics").text)

    r = httpx.post(server.url + "/webhook", json=json.loads(CAPTURE.read_text(encoding="utf-8")), timeout=60)
    assert r.status_code == 200, r.text
    assert httpx.post(server.url + "/webhook", content=b"{not json").status_code == 400
    assert httpx.post(server.url + "/webhook", json={"next_action": "action_nobody_serves"}).status_code == 404

    r = httpx.get(server.url + "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    after = samples(r.text)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("shopbot_turns_total", channel="rasa", intent="search") == 1
    assert grew("shopbot_stage_seconds_count", stage="turn") == 1
    assert grew("shopbot_errors_total", kind="bad_update") == 2
    bundle = server.runtime.assistant.engine.bundle
    assert bundle is not None and after[("shopbot_index_version_info", (("version", bundle.name),))] == 1
    # rasa-sdk's own paths are still there
    assert httpx.get(server.url + "/health").json() == {"status": "ok"}


def test_the_action_server_is_not_ready_while_its_database_is_unreachable(serve: Callable[..., ActionServer],
                                                                           tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the database's folder should be")
    server = serve(database_url=f"sqlite:///{blocker / 'shop.db'}")
    r = httpx.get(server.url + "/readyz")
    assert r.status_code == 503
    assert r.json() == {"status": "not ready", "checks": {"index": "ok", "database": "failing"}}
    assert httpx.get(server.url + "/healthz").status_code == 200  # alive: restarting it would not help
