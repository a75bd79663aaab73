"""Webhook mode scaled out: messages per second, and latency from the webhook POST to the answer arriving
at the Bot API, with 1, 2 and 4 workers.

    .venv/bin/python tests/benchmarks/bench_scale.py --out tests/benchmarks/results/scale.json

Real processes, as in production: one `shopbot receiver` and N `shopbot worker` over the real Redis
(127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432, a schema of its own), answering through the fake Bot
API server (tests/fakes/telegram_server.py), which runs in this process with the simulated shoppers.
The small test catalog with the hashing encoder and templated answers (LLM off): what is measured is
the queue and the bot around the dialogue, not search quality. Two phases per worker count:

* saturation: 100 chats each send their next message as soon as the previous one is answered (1,000
  messages): messages per second is the system's capacity, and the latency is mostly queueing;
* fixed rate: messages offered at ``--rate`` per second from 100 chats (at most one in flight per chat),
  below capacity: the latency a shopper sees on a healthy system.

Every process shares this machine's cores: on the 2-core test machine the workers, the receiver,
Redis, PostgreSQL and this process (shoppers and the fake Telegram) all compete, so more workers than
cores add no capacity here (they do on a machine with the cores for them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, round(q * (len(s) - 1)))], 1) if s else float("nan")


def figures(latencies: list[float]) -> dict[str, float]:
    return {"p50": pct(latencies, 0.5), "p90": pct(latencies, 0.9), "p99": pct(latencies, 0.99),
            "max": round(max(latencies), 1) if latencies else float("nan"),
            "mean": round(statistics.fmean(latencies), 1) if latencies else float("nan")}


async def one_config(data: Path, db_url: str, workers: int, rate: float, logs: Path) -> dict[str, Any]:
    from aiohttp import ClientSession, ClientTimeout

    from tests.e2e.test_scale import SCRIPT, cluster, learn_answers, text_update

    started = time.monotonic()
    logs.mkdir(parents=True, exist_ok=True)
    async with cluster(data, db_url, logs, receivers=1, workers=workers, lease=5.0) as c, \
            ClientSession(timeout=ClientTimeout(total=30)) as http:
        start_s = time.monotonic() - started
        await learn_answers(c, http, 400_000)  # also warms every process up
        await asyncio.sleep(2 * 5.0)  # the workers settle their fair shares (a few ticks of a third of a lease)
        rng = random.Random(workers)

        async def ask(chat: int, text: str) -> float:
            """POST one message and wait for its answer; ms from the POST to the answer at the fake Bot API."""
            n = len(c.answers(chat))
            t0 = time.monotonic()
            await c.post(http, text_update(chat, text), 0)
            await c.fake.wait_for(lambda: len(c.answers(chat)) > n, 60)
            return (c.answers_at(chat)[n][0] - t0) * 1000

        # saturation: 100 chats, closed loop
        chats = list(range(600_001, 600_101))
        lat: list[float] = []

        async def closed(chat: int) -> None:
            for text in rng.sample(SCRIPT, len(SCRIPT)):
                lat.append(await ask(chat, text))

        t0 = time.monotonic()
        await asyncio.gather(*(closed(ch) for ch in chats))
        elapsed = time.monotonic() - t0
        saturation = {"messages": len(lat), "seconds": round(elapsed, 2),
                      "messages_per_s": round(len(lat) / elapsed, 1), "latency_ms": figures(lat)}

        # fixed rate, below capacity
        n_fixed = int(rate * 20)
        fixed: list[float] = []
        tasks = []
        t0 = time.monotonic()
        for i in range(n_fixed):
            due = t0 + i / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            chat = 700_001 + i % 100
            tasks.append(asyncio.create_task(ask(chat, SCRIPT[(i // 100) % len(SCRIPT)])))
        fixed = list(await asyncio.gather(*tasks))
        at_rate = {"offered_per_s": rate, "messages": len(fixed), "latency_ms": figures(fixed)}
        codes = await c.stop()
        # each worker's last line: answered, duplicates skipped, failed, taken over, not sent twice
        summaries = [line for p in c.workers for line in p.text().splitlines() if "taken over from stopped" in line]
    return {"workers": workers, "start_s": round(start_s, 1), "saturation": saturation, "fixed_rate": at_rate,
            "clean_exit": all(code == 0 for code in codes.values()),
            "worker_summaries": [line.split(" stopped: ", 1)[-1] for line in summaries]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2,4", help="worker counts to measure, comma-separated")
    ap.add_argument("--rate", type=float, default=20.0, help="messages per second offered in the fixed-rate phase")
    ap.add_argument("--out", type=Path, default=Path("tests/benchmarks/results/scale.json"))
    args = ap.parse_args()

    import subprocess

    from sqlalchemy import create_engine, text

    from tests.conftest import PG_URL, _pg_url, write_catalog
    from tests.e2e.test_scale import SHOPBOT, base_env

    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    data = tmp / "data"
    catalog = write_catalog(tmp / "catalog.csv")
    subprocess.run([SHOPBOT, "--data-dir", str(data), "reindex"], env={**base_env(data), "SHOPBOT_CATALOG": str(catalog)},
                   check=True, capture_output=True)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    load_before = [round(x, 2) for x in os.getloadavg()]
    runs = []
    try:
        for n in (int(x) for x in args.workers.split(",")):
            runs.append(asyncio.run(one_config(data, _pg_url(schema), n, args.rate, tmp / f"logs{n}")))
            print(json.dumps(runs[-1]), flush=True)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    out = {
        "what": "shopbot receiver (1) + shopbot worker (N) as processes over Redis Streams and PostgreSQL, answering "
                "through the fake Bot API server in the benchmark process; small test catalog, hashing encoder, "
                "templated answers (LLM off); latency from the webhook POST to the answer at the Bot API",
        "command": "python tests/benchmarks/bench_scale.py " + " ".join(sys.argv[1:]),
        "machine": {"python": platform.python_version(), "cpus": mp.cpu_count(),
                    "load_average_before": load_before, "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out["runs"], indent=2))


if __name__ == "__main__":
    main()
