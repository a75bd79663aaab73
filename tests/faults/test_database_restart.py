"""PostgreSQL crashes (``pg_ctl stop -m immediate``) and comes back while shoppers are talking.

Eight shoppers talk to the real :class:`~bot.app.Assistant` from eight threads, over a private PostgreSQL
cluster this test starts and crashes (never the shared server on 5432). Checked: every turn got a reply,
before, during and after the outage; after the database is back and the outage buffer
(bot/store/outbox.py) has replayed, every turn and every feedback row (thumbs, clicks) is in the database,
each exactly once, and nothing is left in the buffer or set aside as bad.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.app import build_assistant, nlu_for
from bot.dialogue.nlu.intents import load_default_model
from bot.dialogue.replies import Event
from bot.settings import Settings
from retrieval.policy import PolicyIndex
from tests.faults.services import private_postgres

pytestmark = pytest.mark.postgres

SHOPPERS = 8
# a conversation: messages and button presses; the presses write feedback rows (thumb_up, click)
SCRIPT: list[tuple[str, str | None]] = [
    ("text", "hi"), ("text", "red winter coat"), ("payload", "up:"), ("text", "how long does shipping take?"),
    ("payload", "click:SHO-1"), ("text", "running shoes under 100"), ("payload", "up:"),
]
FEEDBACK_PER_ROUND = sum(1 for kind, _ in SCRIPT if kind == "payload")


def test_postgres_crash_mid_load_loses_no_reply_and_no_row(engine, tmp_path: Path) -> None:
    with private_postgres() as pg:
        settings = Settings(data_dir=tmp_path / "data", database_url=pg.url, reload_seconds=0, llm="off")
        policy = PolicyIndex.from_path(None, {k: d.encoder for k, d in engine.dense.items()})
        assistant = build_assistant(settings, engine=engine, nlu=nlu_for(engine, load_default_model()),
                                    policy=policy, llm=False)
        lock = threading.Lock()
        done = 0  # turns answered so far, all shoppers together
        phase = "before"
        by_phase: dict[str, list[float]] = {"before": [], "during": [], "after": []}
        missing: list[str] = []
        errors: list[BaseException] = []
        stop = threading.Event()
        rounds = [0] * SHOPPERS

        def shopper(i: int) -> None:
            nonlocal done
            try:
                while not stop.is_set():
                    for kind, value in SCRIPT:
                        event = Event(user=f"u{i}", channel="telegram", text=value if kind == "text" else None,
                                      payload=value if kind == "payload" else None, language="en")
                        start = time.perf_counter()
                        replies = assistant.handle(event)
                        took = time.perf_counter() - start
                        with lock:
                            if not any(r.text or r.cards for r in replies):
                                missing.append(f"u{i} {value!r} ({phase})")
                            by_phase[phase].append(took)
                            done += 1
                    rounds[i] += 1
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        def wait_for(n: int, timeout: float = 60) -> None:
            deadline = time.monotonic() + timeout
            while done < n and not errors:
                assert time.monotonic() < deadline, f"only {done} turns answered"
                time.sleep(0.01)

        threads = [threading.Thread(target=shopper, args=(i,), daemon=True) for i in range(SHOPPERS)]
        for t in threads:
            t.start()
        wait_for(60)
        pg.stop()  # a crash: pooled connections die mid-use
        with lock:
            phase, at = "during", done
        wait_for(at + 120)  # the shoppers keep talking while it is down
        assert assistant.store.pending() > 0, "nothing was buffered: the outage was not seen"
        pg.start()
        with lock:
            phase, at = "after", done
        back = time.perf_counter()
        while assistant.store.pending() and time.perf_counter() - back < 30:
            time.sleep(0.01)  # the shoppers' next writes replay the buffer
        drained = time.perf_counter() - back
        wait_for(at + 60)
        stop.set()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert not missing, f"turns without a reply: {missing[:5]}"
        assert all(by_phase.values()), by_phase.keys()

        started = time.perf_counter()
        assistant.store.flush()
        replay = time.perf_counter() - started
        assert assistant.store.pending() == 0
        assert not assistant.store.bad_path.exists() or not assistant.store.bad_path.read_text().strip()

        turns_answered = sum(len(v) for v in by_phase.values())
        db = create_engine(pg.url)
        try:
            with db.connect() as c:
                turns = c.execute(text("SELECT count(*) FROM turns")).scalar_one()
                feedback = c.execute(text("SELECT count(*) FROM feedback")).scalar_one()
                dupes = c.execute(text("SELECT count(*) - count(DISTINCT id) FROM turns")).scalar_one()
        finally:
            db.dispose()
        assistant.close()
        assert dupes == 0
        assert turns == turns_answered
        assert feedback == sum(rounds) * FEEDBACK_PER_ROUND + _partial_feedback(turns_answered, rounds)
        slowest = {k: round(max(v) * 1000) for k, v in by_phase.items()}
        print(f"\nturns {turns_answered} (during the outage {len(by_phase['during'])}), feedback rows {feedback}, "
              f"slowest reply by phase (ms) {slowest}, buffer drained {drained * 1000:.0f} ms "
              f"after the restart, final flush {replay * 1000:.0f} ms")


def _partial_feedback(turns: int, rounds: list[int]) -> int:
    """Feedback rows written by the unfinished last rounds: each shopper stops between whole rounds, so none."""
    assert turns == sum(rounds) * len(SCRIPT), "a shopper stopped mid-round"
    return 0
