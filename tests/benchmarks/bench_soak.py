"""Soak: simulated shoppers through the production stack (one `shopbot receiver`, two `shopbot worker`
processes, a private Redis and a private PostgreSQL, the fake Bot API) for many minutes, with a fault
injected every few minutes, in rotation: SIGKILL a worker and start a new one; restart Redis (SIGTERM,
start on the same AOF); crash PostgreSQL (``pg_ctl stop -m immediate``) and start it again.

Why: the fault tests prove one fault at a time over a minute; a leak (memory per worker) or a reply lost
only after hours of churn shows up only over a long run with the faults repeating.

Each shopper writes the next scripted message (tests/e2e/test_scale.py SCRIPT, rotated) only once the
previous reply arrived, plus a think time of 1-5 s (seeded random): a closed loop, as people chat. Reported:
messages sent, replies received, lost (accepted with 200 and never answered), doubled, per-chat order
breaks, p50/p99 latency overall and per 5-minute window, each worker's RSS after warm-up and at the end
with its slope in MiB per 10 minutes, and the faults with their times. Exit code 1 if anything was lost.

The stack is started with the helpers of tests/e2e/test_scale.py and tests/faults/services.py (private
servers: the shared 5432/6379 ones are never stopped).

Run: ``.venv/bin/python tests/benchmarks/bench_soak.py [--minutes 30] [--shoppers 200] [--fault-every 5]``
-> results/soak.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from aiohttp import ClientSession, ClientTimeout  # noqa: E402

from tests.conftest import write_catalog  # noqa: E402
from tests.e2e.test_scale import (  # noqa: E402
    SCRIPT,
    SHOPBOT,
    Cluster,
    Proc,
    base_env,
    learn_answers,
    stack_env,
    text_update,
)
from tests.fakes.telegram_server import FakeTelegram  # noqa: E402
from tests.faults.services import PrivatePostgres, PrivateRedis, private_postgres, private_redis  # noqa: E402
from tests.faults.test_broker_restart import _post_until_accepted  # noqa: E402

OUT = Path(__file__).with_name("results") / "soak.json"
FAULTS = ("kill_worker", "restart_redis", "restart_postgres")
MIB = 1024 * 1024
REPLY_PATIENCE = 120.0  # a shopper gives up waiting for a reply after this long (counted lost if it never comes)


def build_index(data: Path) -> None:
    """The small test catalog indexed once with hashing encoders (as test_scale's ``scale_data`` does)."""
    catalog = write_catalog(data.parent / "catalog.csv")
    env = {**base_env(data), "SHOPBOT_CATALOG": str(catalog)}
    subprocess.run([SHOPBOT, "--data-dir", str(data), "reindex"], env=env, check=True, capture_output=True,
                   timeout=300)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


def slope_per_10min(samples: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of RSS (MiB) over time, in MiB per 10 minutes."""
    if len(samples) < 3:
        return None
    xs, ys = [t for t, _ in samples], [m for _, m in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 600 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else None


@dataclass
class Shopper:
    chat: int
    expected: list[str] = field(default_factory=list)  # the answers of every update accepted with 200
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (sent at, seconds to the reply)
    timeouts: int = 0


async def soak(args: argparse.Namespace, redis: PrivateRedis, pg: PrivatePostgres, data: Path, logs: Path,
               report: dict[str, Any]) -> None:
    rng = random.Random(args.seed)
    async with FakeTelegram() as fake:
        c = Cluster(fake, stack_env(data, pg.url, redis.url, fake, 2), f"shopbot-soak-{uuid.uuid4().hex[:8]}", logs)
        try:
            c.start_receiver()
            c.start_worker()
            c.start_worker()
            await c.ready()
            async with ClientSession(timeout=ClientTimeout(total=10)) as http:
                answer_of = await learn_answers(c, http, 800_000, distinct=False)
                shoppers = [Shopper(800_001 + i) for i in range(args.shoppers)]
                statuses: Counter[int] = Counter()
                t0 = time.monotonic()
                stop_at = t0 + args.minutes * 60
                waiting: dict[int, tuple[int, float, asyncio.Future[float]]] = {}
                rss: dict[str, list[tuple[float, float]]] = {}
                started_at: dict[str, float] = {p.name: 0.0 for p in c.workers}
                faults: list[dict[str, Any]] = []

                async def watch_replies() -> None:
                    """Resolves each waiting shopper when its chat got one more reply (time: the fake's)."""
                    while True:
                        c.answers(0)  # indexes the new calls
                        for chat, (n, _sent, fut) in list(waiting.items()):
                            got = c.answers_at(chat)
                            if len(got) > n and not fut.done():
                                fut.set_result(got[n][0])
                        await asyncio.sleep(0.02)

                async def shop(s: Shopper, k: int) -> None:
                    srng = random.Random(rng.random())
                    await asyncio.sleep(srng.uniform(0, 5))  # not all at once
                    i = k
                    while time.monotonic() < stop_at:
                        text = SCRIPT[i % len(SCRIPT)]
                        i += 1
                        n = len(c.answers(s.chat))
                        sent = time.monotonic()
                        await _post_until_accepted(http, c.receivers[0].url, text_update(s.chat, text), statuses,
                                                   patience=300)
                        s.expected.append(answer_of[text])
                        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
                        waiting[s.chat] = (n, sent, fut)
                        try:
                            at = await asyncio.wait_for(fut, REPLY_PATIENCE)
                            s.latencies.append((sent - t0, at - sent))
                        except TimeoutError:
                            s.timeouts += 1
                        finally:
                            waiting.pop(s.chat, None)
                        await asyncio.sleep(srng.uniform(1, 5))

                async def sample_rss() -> None:
                    while True:
                        now = time.monotonic() - t0
                        for p in c.workers:
                            if p.popen.poll() is None:
                                try:
                                    proc = psutil.Process(p.popen.pid)
                                    if proc.status() == psutil.STATUS_ZOMBIE:
                                        continue  # SIGKILLed, not yet reaped: its RSS reads 0
                                    mem = proc.memory_info().rss / MIB
                                except psutil.Error:
                                    continue
                                rss.setdefault(p.name, []).append((now, mem))
                        await asyncio.sleep(10)

                async def inject() -> None:
                    k = 0
                    while True:
                        await asyncio.sleep(t0 + (k + 1) * args.fault_every * 60 - time.monotonic())
                        if time.monotonic() >= stop_at - 1:
                            return
                        kind = FAULTS[k % len(FAULTS)]
                        at = time.monotonic() - t0
                        entry: dict[str, Any] = {"fault": kind, "at_s": round(at, 1)}
                        if kind == "kill_worker":
                            live = [p for p in c.workers if p.popen.poll() is None]
                            victim = live[k // len(FAULTS) % len(live)]
                            victim.popen.send_signal(signal.SIGKILL)
                            new: Proc = c.start_worker()
                            started_at[new.name] = time.monotonic() - t0
                            entry.update(killed=victim.name, started=new.name)
                        elif kind == "restart_redis":
                            await asyncio.to_thread(redis.stop)
                            await asyncio.sleep(1.0)
                            await asyncio.to_thread(redis.start)
                        else:
                            await asyncio.to_thread(pg.stop)
                            await asyncio.sleep(1.0)
                            await asyncio.to_thread(pg.start)
                        entry["down_s"] = round(time.monotonic() - t0 - at, 2)
                        faults.append(entry)
                        print(f"[{at:7.1f}s] fault {kind} {entry}", flush=True)
                        k += 1

                helpers = [asyncio.create_task(f()) for f in (watch_replies, sample_rss, inject)]
                await asyncio.gather(*(shop(s, i % len(SCRIPT)) for i, s in enumerate(shoppers)))
                helpers[2].cancel()
                load_s = time.monotonic() - t0
                # drain: every accepted update answered (or the patience spent), then a late double shows up
                try:
                    await fake.wait_for(lambda: all(len(c.answers(s.chat)) >= len(s.expected) for s in shoppers),
                                        args.drain)
                except TimeoutError:  # patience spent: what is still unanswered is counted as lost below
                    print(f"drain: not every accepted update was answered within {args.drain:g} s", flush=True)
                await asyncio.sleep(5.0)
                for h in helpers:
                    h.cancel()
                drain_s = time.monotonic() - t0 - load_s
        finally:
            codes = await c.stop(signal.SIGTERM, timeout=20)
    lost = doubled = order_breaks = 0
    for s in shoppers:
        got = c.answers(s.chat)
        lost += sum((Counter(s.expected) - Counter(got)).values())
        doubled += sum((Counter(got) - Counter(s.expected)).values())
        collapsed = [a for i, a in enumerate(got) if i == 0 or a != got[i - 1]]
        order_breaks += int(collapsed != s.expected and len(collapsed) >= len(s.expected))
    lat = [(at, d) for s in shoppers for at, d in s.latencies]
    windows = []
    for w in range(int(args.minutes // 5) + (args.minutes % 5 > 0)):
        ds = [d for at, d in lat if w * 300 <= at < (w + 1) * 300]
        windows.append({"window_min": f"{w * 5}-{min((w + 1) * 5, args.minutes):g}", "replies": len(ds),
                        "p50_ms": ms(percentile(ds, 50)), "p99_ms": ms(percentile(ds, 99))})
    workers = {}
    for name, samples in rss.items():
        warm = [(t, m) for t, m in samples if t >= started_at.get(name, 0.0) + args.warmup]
        workers[name] = {"started_s": round(started_at.get(name, 0.0), 1), "samples": len(samples),
                         "rss_start_mib": round(warm[0][1], 1) if warm else None,
                         "rss_end_mib": round(samples[-1][1], 1),
                         "slope_mib_per_10min": rnd(slope_per_10min(warm)), "exit_code": codes.get(name),
                         "rss_samples": [[round(t), round(m, 1)] for t, m in samples]}
    ds = [d for _, d in lat]
    report.update(
        messages_sent=sum(len(s.expected) for s in shoppers), replies_received=sum(len(c.answers(s.chat))
                                                                                   for s in shoppers),
        lost=lost, doubled=doubled, order_breaks=order_breaks,
        reply_timeouts=sum(s.timeouts for s in shoppers), post_statuses=dict(statuses),
        p50_ms=ms(percentile(ds, 50)), p99_ms=ms(percentile(ds, 99)), windows=windows, workers=workers,
        faults=faults, load_s=round(load_s, 1), drain_s=round(drain_s, 1), exit_codes=codes)
    if lost:
        report["logs_tail"] = {p.name: p.text()[-1500:] for p in c.receivers + c.workers}


def ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000, 1)


def rnd(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def table(r: dict[str, Any]) -> str:
    lines = [f"soak: {r['command']}",
             f"{'sent':>8} {'replies':>8} {'lost':>5} {'doubled':>7} {'order':>5} {'p50 ms':>8} {'p99 ms':>8}",
             f"{r['messages_sent']:>8} {r['replies_received']:>8} {r['lost']:>5} {r['doubled']:>7} "
             f"{r['order_breaks']:>5} {r['p50_ms']!s:>8} {r['p99_ms']!s:>8}", "",
             f"{'window min':>10} {'replies':>8} {'p50 ms':>8} {'p99 ms':>8}"]
    lines += [f"{w['window_min']:>10} {w['replies']:>8} {w['p50_ms']!s:>8} {w['p99_ms']!s:>8}" for w in r["windows"]]
    lines += ["", f"{'worker':>8} {'from s':>7} {'RSS start':>9} {'RSS end':>8} {'MiB/10min':>9} {'exit':>5}"]
    lines += [f"{n:>8} {w['started_s']:>7} {w['rss_start_mib']!s:>9} {w['rss_end_mib']!s:>8} "
              f"{w['slope_mib_per_10min']!s:>9} {w['exit_code']!s:>5}" for n, w in r["workers"].items()]
    lines += ["", "faults: " + ", ".join(f"{f['fault']}@{f['at_s']}s" for f in r["faults"])]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--shoppers", type=int, default=200)
    ap.add_argument("--fault-every", type=float, default=5, help="minutes between faults")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--seed", type=int, default=22)
    ap.add_argument("--warmup", type=float, default=30, help="seconds after a worker's start before RSS counts")
    ap.add_argument("--drain", type=float, default=180, help="seconds to wait for the last replies")
    args = ap.parse_args()
    report: dict[str, Any] = {
        "command": ".venv/bin/python tests/benchmarks/bench_soak.py " + " ".join(sys.argv[1:]),
        "run": "full soak" if args.minutes >= 30 else "short validation run, not the full 30-minute soak",
        "minutes": args.minutes, "shoppers": args.shoppers, "fault_every_min": args.fault_every,
        "seed": args.seed, "think_s": [1, 5], "receivers": 1, "workers_running": 2,
        "machine": f"{platform.node()} {psutil.cpu_count()} CPUs, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    with tempfile.TemporaryDirectory(prefix="shopbot-soak-") as tmp, ExitStack() as stack:
        data = Path(tmp) / "scale" / "data"
        data.parent.mkdir(parents=True)
        build_index(data)
        logs = Path(tmp) / "logs"
        logs.mkdir()
        redis = stack.enter_context(private_redis())
        pg = stack.enter_context(private_postgres())
        asyncio.run(soak(args, redis, pg, data, logs, report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(table(report))
    print(f"written to {args.out}")
    return 1 if report["lost"] else 0


if __name__ == "__main__":
    sys.exit(main())
