"""The broker (Redis) restarts while Telegram keeps posting: `shopbot receiver` and two `shopbot worker`
processes over a private redis-server (append-only file, fsync on every write), the real PostgreSQL for the
turns, and the fake Bot API that records what the bot sends.

Thirty chats post ten messages each; a third of the way in, redis-server gets SIGTERM (as a service manager
restarting it would) and starts again on the same directory a second later. The poster retries a 503 or a
refused connection as Telegram retries a failed webhook delivery. Checked: every update that got a 200 is
answered exactly once, with the answer its message has, nothing is left on the queue, and the receiver did
answer 503 while the broker was down (the outage was real). The cluster helpers come from
tests/e2e/test_scale.py.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientError, ClientSession, ClientTimeout

from bot.channels.telegram.receiver import SECRET_HEADER
from tests.e2e.test_scale import (  # noqa: F401 - pg_url and scale_data are fixtures used by name
    SCRIPT,
    SECRET,
    SHARDS,
    Cluster,
    base_env,
    learn_answers,
    pg_url,
    scale_data,
    stack_env,
    text_update,
)
from tests.fakes.telegram_server import FakeTelegram
from tests.faults.services import PrivateRedis, private_redis

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

CHATS = list(range(700_001, 700_031))


async def _post_until_accepted(http: ClientSession, url: str, update: dict[str, Any], statuses: Counter[int],
                               patience: float = 60.0) -> None:
    """POST like Telegram: a 503 or a refused connection is retried with a short back-off until a 200."""
    body = json.dumps(update).encode()
    deadline = time.monotonic() + patience
    delay = 0.05
    while True:
        try:
            async with http.post(url, data=body, headers={SECRET_HEADER: SECRET,
                                                          "Content-Type": "application/json"}) as r:
                statuses[r.status] += 1
                if r.status == 200:
                    return
                assert r.status == 503, r.status
        except (ClientError, OSError):
            statuses[0] += 1
        assert time.monotonic() < deadline, f"update {update['update_id']} was never accepted"
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)


def test_nothing_accepted_is_lost_when_the_broker_restarts_under_load(
        scale_data: Path, pg_url: str, tmp_path: Path) -> None:  # noqa: F811 - the fixtures imported above
    report: dict[str, Any] = {}

    async def main(redis: PrivateRedis) -> None:
        async with FakeTelegram() as fake:
            env = stack_env(scale_data, pg_url, redis.url, fake, 2)
            c = Cluster(fake, env, f"shopbot-fault-{uuid.uuid4().hex[:8]}", tmp_path)
            try:
                c.start_receiver()
                c.start_worker()
                c.start_worker()
                await c.ready()
                async with ClientSession(timeout=ClientTimeout(total=10)) as http:
                    answer_of = await learn_answers(c, http, 600_000, distinct=False)
                    statuses: Counter[int] = Counter()
                    accepted: dict[int, list[str]] = {chat: [] for chat in CHATS}
                    posted = 0

                    async def chat_writes(chat: int, k: int) -> None:
                        nonlocal posted
                        for text in SCRIPT[k:] + SCRIPT[:k]:
                            await _post_until_accepted(http, c.receivers[0].url, text_update(chat, text), statuses)
                            accepted[chat].append(answer_of[text])
                            posted += 1
                            await asyncio.sleep(0.02)

                    writers = asyncio.gather(*(chat_writes(chat, i % len(SCRIPT)) for i, chat in enumerate(CHATS)))
                    total = len(CHATS) * len(SCRIPT)
                    while posted < total // 3:
                        await asyncio.sleep(0.01)
                    down_at = time.monotonic()
                    await asyncio.to_thread(redis.stop)
                    await asyncio.sleep(1.0)  # down for a second: the receiver must say 503 meanwhile
                    await asyncio.to_thread(redis.start)
                    report["broker_down_s"] = round(time.monotonic() - down_at, 2)
                    await writers

                    def answered() -> int:
                        return sum(len(c.answers(chat)) for chat in CHATS)

                    await fake.wait_for(lambda: answered() >= total, 120)
                    report["all_answered_after_restart_s"] = round(time.monotonic() - down_at, 1)
                    await asyncio.sleep(3.0)  # a late double would show up now (lease 2 s)
                    depth = pending = 0
                    from redis.asyncio import Redis  # the private broker, not the shared one

                    r = Redis.from_url(redis.url)
                    for i in range(SHARDS):
                        stream = f"{c.prefix}:updates:{i}"
                        depth += await r.xlen(stream)
                        if await r.exists(stream):
                            pending += int((await r.xpending(stream, "workers"))["pending"])
                    await r.aclose()
                logs = "\n".join(f"--- {p.name}\n{p.text()[-2000:]}" for p in c.receivers + c.workers)
                lost = {ch: (Counter(accepted[ch]) - Counter(c.answers(ch))) for ch in CHATS}
                extra = {ch: (Counter(c.answers(ch)) - Counter(accepted[ch])) for ch in CHATS}
                report.update(updates=total, statuses=dict(statuses), lost=sum(sum(v.values()) for v in lost.values()),
                              doubled=sum(sum(v.values()) for v in extra.values()),
                              out_of_order=sum(c.answers(ch) != accepted[ch] for ch in CHATS), depth=depth,
                              pending=pending)
                print("\nbroker restart:", json.dumps(report))
                assert statuses[503] + statuses[0] > 0, ("the receiver never refused: no outage was seen", logs)
                assert not any(lost.values()), (lost, logs)
                assert not any(extra.values()), (extra, logs)
                assert depth == 0 and pending == 0, logs
                assert all(p.popen.poll() is None for p in c.receivers + c.workers), logs
            finally:
                await c.stop(signal.SIGTERM, timeout=10)

    with private_redis() as redis:
        asyncio.run(main(redis))
