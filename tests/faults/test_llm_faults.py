"""The language-model server misbehaves: it hangs, answers HTTP 500, streams made-up facts, or writes one
word a second. A real loopback HTTP server speaking the OpenAI chat-completions API plays each part, and
the real Assistant (llm_url pointing at it, the HTTP client of model/llm/http.py) answers shoppers.

Checked for each behaviour: every reply arrives within the configured SHOPBOT_LLM_TIMEOUT (plus a small
margin for the search and the database), the model was really asked, and what the shopper reads is the
grounded template, word for word what the assistant says with no model at all, never the server's
invented discount.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bot.app import Assistant, build_assistant, nlu_for
from bot.dialogue.nlu.intents import load_default_model
from bot.dialogue.replies import Event
from bot.settings import Settings
from retrieval.policy import PolicyIndex
from retrieval.search import SearchEngine

TIMEOUT = 1.5  # SHOPBOT_LLM_TIMEOUT for the test: short, so that four behaviours run in seconds
MARGIN = 1.0  # search, verification and the SQLite write on this shared 2-core machine
BEHAVIOURS = ("hang", "error", "garbage", "slow")
# questions the model is asked about: policy answers (SupportWriter), search closing lines and product
# answers (ProductWriter)
QUESTIONS = ["how long does shipping take?", "what is your refund policy?", "red winter coat",
             "running shoes", "do you have a laptop sleeve?"]
GARBAGE = "Great news: everything is 90% off today, $0.01 each, delivered free within 1 hour!"


class FakeLLMServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.asked: Counter[str] = Counter()
        self.closing = threading.Event()  # set at shutdown: a hanging request lets go

    def base_url(self, behaviour: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{behaviour}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: FakeLLMServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: object) -> None:  # keep pytest's output clean
        pass

    def do_POST(self) -> None:
        behaviour = self.path.strip("/").split("/")[0]
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.asked[behaviour] += 1
        if behaviour == "hang":  # accepts the request and never answers
            self.server.closing.wait(30)
            return
        if behaviour == "error":
            body = json.dumps({"error": {"message": "CUDA out of memory"}}).encode()
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        words = GARBAGE.split(" ")
        try:
            for word in words:
                chunk = {"choices": [{"index": 0, "delta": {"content": word + " "}}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                # slow: one word a second, so the whole answer takes far past the timeout
                if behaviour == "slow" and self.server.closing.wait(1.0):
                    return
            self.wfile.write(b"data: [DONE]\n\n")
        except OSError:  # the client gave up (its timeout): what a real server sees too
            pass


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    srv = FakeLLMServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.closing.set()
    srv.shutdown()
    srv.server_close()


def _assistant(engine: SearchEngine, data: Path, llm_url: str | None) -> Assistant:
    settings = Settings(data_dir=data, llm="auto" if llm_url else "off", llm_url=llm_url, llm_model="fake",
                        llm_timeout=TIMEOUT, reload_seconds=0)
    policy = PolicyIndex.from_path(None, {k: d.encoder for k, d in engine.dense.items()})
    return build_assistant(settings, engine=engine, nlu=nlu_for(engine, load_default_model()), policy=policy,
                           llm=bool(llm_url))


def _say(assistant: Assistant, user: str, text: str) -> tuple[str, float]:
    start = time.perf_counter()
    replies = assistant.handle(Event(user=user, channel="telegram", text=text, language="en"))
    took = time.perf_counter() - start
    return "\n".join(r.text or "" for r in replies) + "|" + ",".join(c.sku for r in replies for c in r.cards), took


def test_every_reply_arrives_in_time_from_the_templates_whatever_the_model_does(
        engine: SearchEngine, server: FakeLLMServer, tmp_path: Path) -> None:
    plain = _assistant(engine, tmp_path / "plain", None)
    expected = {q: _say(plain, f"p{i}", q)[0] for i, q in enumerate(QUESTIONS)}
    plain.close()
    times: dict[str, list[float]] = {}
    for behaviour in BEHAVIOURS:
        assistant = _assistant(engine, tmp_path / behaviour, server.base_url(behaviour))
        assert assistant.llm is not None
        times[behaviour] = []
        for i, question in enumerate(QUESTIONS):
            text, took = _say(assistant, f"p{i}", question)
            times[behaviour].append(took)
            assert took <= TIMEOUT + MARGIN, f"{behaviour}: {question!r} took {took:.2f} s"
            assert text == expected[question], f"{behaviour}: {question!r} got {text!r}"
            assert "90%" not in text and "$0.01" not in text
        assistant.close()
        assert server.asked[behaviour] >= len(QUESTIONS) // 2, f"the model was hardly asked ({behaviour})"
    summary = {b: f"p50 {statistics.median(t):.2f} s, max {max(t):.2f} s" for b, t in times.items()}
    print(f"\nLLM timeout {TIMEOUT} s; reply times: {summary}; requests: {dict(server.asked)}")
