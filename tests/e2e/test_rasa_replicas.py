"""Two `shopbot actions` replicas over one PostgreSQL database: one conversation's action calls go to each in turn
and the conversation carries on, because its state lives in the database, not in a replica.

This is how docker/compose.yaml runs the action server (``--scale actions=N`` behind one service name): Rasa may
send a shopper's next action call to any replica. Two real processes (``shopbot actions --port P``), each with its
own data directory and outage buffer like a container, share the index (a link to one built by ``shopbot
reindex``, the compose file's shared volume) and one PostgreSQL schema. The calls are Rasa 3.6's own shape
(the simulator of tests/bot/channels/rasa/test_actions.py). The second replica gets its first call with the
tracker's slots empty, so only the database can tell it which results page 1 showed.

Outside the default run, like the other end-to-end tests: ``pytest -m e2e tests/e2e/test_rasa_replicas.py``
(about a minute: two servers start; the hashing encoder keeps the index build to seconds). Skipped when the
PostgreSQL server on 127.0.0.1:5432 is not reachable.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select

from bot.store.schema import Feedback, Turn
from tests.bot.channels.rasa.test_actions import Rasa, button, text_of
from tests.conftest import _pg_url

SHOPBOT = Path(sys.executable).with_name("shopbot")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"shopbot actions exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"shopbot actions did not answer {url}/health in {timeout:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture
def replicas(pg_schema: str, tmp_path: Path) -> Iterator[tuple[list[str], str]]:
    """Two action servers over one database: ([url_a, url_b], database url)."""
    db = _pg_url(pg_schema)
    env = {**os.environ, "SHOPBOT_DATABASE_URL": db, "SHOPBOT_LLM": "off", "SHOPBOT_ENCODER": "hashing",
           "SHOPBOT_MULTILINGUAL_ENCODER": "hashing", "SHOPBOT_BODY_VIEW": "false", "SHOPBOT_RELOAD_SECONDS": "0"}
    shared = tmp_path / "shared"
    built = subprocess.run([str(SHOPBOT), "reindex"], env={**env, "SHOPBOT_DATA_DIR": str(shared)},
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    urls = []
    try:
        for name in ("a", "b"):
            data = tmp_path / name
            data.mkdir()
            (data / "index").symlink_to(shared / "index", target_is_directory=True)  # the shared volume
            port = free_port()
            log = tmp_path / f"actions-{name}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen([str(SHOPBOT), "actions", "--host", "127.0.0.1", "--port", str(port), "--no-llm"],
                                        env={**env, "SHOPBOT_DATA_DIR": str(data)}, stdout=out, stderr=subprocess.STDOUT)
            procs.append((proc, log))
            urls.append(f"http://127.0.0.1:{port}")
        for url, (proc, log) in zip(urls, procs, strict=True):
            wait_healthy(url, proc, log)
        yield urls, db
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc, _ in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.postgres
def test_one_conversation_alternating_between_two_replicas_carries_on(replicas: tuple[list[str], str]) -> None:
    (a, b), db = replicas
    rasa = Rasa(a)

    def on(url: str) -> Rasa:
        rasa.url = url + "/webhook"
        return rasa

    # replica A: a new search
    body = on(a).say("running shoes", "search_product", "action_search_products", [("product", "running shoes")])
    assert "products match" in text_of(body) or "Best matches" in text_of(body)
    page1 = list(rasa.slots["shown_skus"])
    assert len(page1) == 5 and rasa.slots["page"] == 1.0

    # replica B, which has never seen this shopper, with the tracker's slots lost: "more" is page 2 of A's search
    kept = dict(rasa.slots)
    rasa.slots = dict.fromkeys(rasa.slots)
    body = on(b).say("show me more", "more_results", "action_search_products")
    assert text_of(body).startswith("More results (6-"), text_of(body)
    page2 = list(rasa.slots["shown_skus"])
    assert page2 and not set(page2) & set(page1), "page 2 repeats page 1: B did not read A's state"
    assert rasa.slots["page"] == 2.0 and rasa.slots["product"] == kept["product"]

    # replica A again: a refinement of the search the two of them have been paging through
    body = on(a).say("cheaper", "refine_search", "action_refine_search")
    cheaper = list(rasa.slots["shown_skus"])
    assert cheaper and rasa.slots["product"] == "running shoes" and rasa.slots["max_price"] is not None
    refined_turn = rasa.slots["last_turn_id"]

    # replica B: the thumbs-up button of A's reply, recorded against A's turn
    up = button(body, "up")
    assert up["payload"] == f'/give_feedback{{"button": "up:{refined_turn}"}}'
    assert text_of(on(b).press(up, "action_record_feedback")) == "Thanks for the feedback!"

    # replica A: words of feedback about the last results
    assert "Sorry about that" in text_of(on(a).say("that's not what I meant", "feedback_negative",
                                                   "action_record_feedback"))

    engine = create_engine(db)
    try:
        with engine.connect() as c:
            user = f"rasa:{rasa.sender}"
            turns = c.execute(select(Turn.id, Turn.intent).where(Turn.user_id == user).order_by(Turn.created_at)).all()
            feedback = c.execute(select(Feedback.kind, Feedback.turn_id).where(Feedback.user_id == user)
                                 .order_by(Feedback.created_at)).all()
    finally:
        engine.dispose()
    assert [t.intent for t in turns][:3] == ["search", "more", "refine"], turns
    assert refined_turn in {t.id for t in turns}
    assert [f.kind for f in feedback] == ["thumb_up", "not_what_i_meant"], feedback
    assert feedback[0].turn_id == refined_turn  # B's row points at A's turn
    print(json.dumps({"page1": page1, "page2": page2, "cheaper": cheaper}))
