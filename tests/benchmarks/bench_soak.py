"""Soak: simulated shoppers through the production stack (one `shopbot receiver`, two `shopbot worker`
processes, a private Redis and a private PostgreSQL, the fake Bot API) for many minutes, with a fault
injected every few minutes, in rotation: SIGKILL a worker and start a new one; restart Redis (SIGTERM,
start on the same AOF); crash PostgreSQL (``pg_ctl stop -m immediate``) and start it again.

Why: the fault tests prove one fault at a time over a minute; a leak (memory per worker) or a reply lost
only after hours of churn shows up only over a long run with the faults repeating.

Each shopper writes the next scripted message (tests/e2e/test_scale.py SCRIPT, rotated) only once the
previous reply arrived, plus a think time of 1-5 s (seeded random): a closed loop, as people chat. So at
most one message per shopper is ever outstanding and the backlog cannot exceed the shoppers (a shopper
that waited ``REPLY_PATIENCE`` for a reply writes its next message anyway, so a stuck update shows up as
a reply timeout). Every 5 s the queue is sampled (XLEN and pending entries per shard, the lease holders,
each worker's handled count from its /metrics), so a backlog (queued behind busy workers, shrinking) can
be told from a stuck shard (pending entries nobody serves). After the load the drain waits while the
queue keeps shrinking (no deadline while answers keep coming; it gives up after ``--stall`` seconds
without progress, or ``--drain`` in all). Every update accepted with a 200 and not answered is then
looked up: still in its stream (queued, or pending at a worker, live or dead), recorded in SQL as
handled without a reply reaching the Bot API, or nowhere (lost).

Reported: messages sent, replies received, unanswered (split as above), doubled, per-chat order breaks,
p50/p99 latency overall and per 5-minute window, each worker's handled updates and rate, its RSS after
warm-up and at the end with a robust slope in MiB per 10 minutes (Theil-Sen, see :func:`slope_per_10min`),
and the faults with their times. Exit code 1 if any accepted update was left unanswered.

The stack is started with the helpers of tests/e2e/test_scale.py and tests/faults/services.py (private
servers: the shared 5432/6379 ones are never stopped); the workers' lease is the production default (5 s,
``--lease``): with a 2 s lease a Redis restart usually outlasts every lease, every shard is taken again and
its pending entries claimed, which hid a stuck-update bug (docs/reliability.md#soak).

Run: ``.venv/bin/python tests/benchmarks/bench_soak.py [--minutes 30] [--shoppers 200] [--fault-every 5]``
-> results/soak.json. To study one fault: ``--faults restart_redis --fault-every 0.4``. tests/e2e/test_soak.py
runs it as a slow test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
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
from aiohttp import ClientError, ClientSession, ClientTimeout  # noqa: E402
from redis.asyncio import Redis  # noqa: E402
from redis.exceptions import RedisError  # noqa: E402

from tests.conftest import write_catalog  # noqa: E402
from tests.e2e.test_scale import (  # noqa: E402
    SCRIPT,
    SHARDS,
    SHOPBOT,
    Cluster,
    Proc,
    base_env,
    learn_answers,
    stack_env,
    text_update,
)
from tests.fakes.telegram_harness import free_port  # noqa: E402
from tests.fakes.telegram_server import FakeTelegram  # noqa: E402
from tests.faults.services import PrivatePostgres, PrivateRedis, private_postgres, private_redis  # noqa: E402
from tests.faults.test_broker_restart import _post_until_accepted  # noqa: E402

OUT = Path(__file__).with_name("results") / "soak.json"
FAULTS = ("kill_worker", "restart_redis", "restart_postgres")
MIB = 1024 * 1024
REPLY_PATIENCE = 120.0  # a shopper gives up waiting for a reply after this long and writes the next message
QUEUE_EVERY = 5.0  # seconds between queue samples
GROUP = "workers"


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
    """Theil-Sen slope of RSS (MiB) over time, in MiB per 10 minutes: the median of the slopes between
    pairs of samples at least a minute apart. Robust: a few samples taken while a fault briefly swelled
    or shrank a worker (a burst of retries, a garbage collection) do not tilt it, as they tilt least squares."""
    pairs = [(t2 - t1, m2 - m1) for i, (t1, m1) in enumerate(samples) for t2, m2 in samples[i + 1:] if t2 - t1 >= 60]
    if len(pairs) < 3:
        return None
    return 600 * statistics.median(dm / dt for dt, dm in pairs)


@dataclass
class Shopper:
    chat: int
    expected: list[str] = field(default_factory=list)  # the answers of every update accepted with 200
    update_ids: list[int] = field(default_factory=list)  # the same updates' ids
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (sent at, seconds to the reply)
    timeouts: int = 0


def missing_updates(s: Shopper, got: list[str]) -> list[int]:
    """The ids of the shopper's accepted updates with no reply: the expected answers matched in order
    against the replies received (a reply matches the first expected one with its text still unmatched)."""
    j, out = 0, []
    for uid, exp in zip(s.update_ids, s.expected, strict=True):
        try:
            j = got.index(exp, j) + 1
        except ValueError:
            out.append(uid)
    return out


def extra_replies(expected: list[str], timed: list[tuple[float, str]]) -> list[tuple[float, float]]:
    """The replies beyond the expected ones (the expected matched in order, as in :func:`missing_updates`), each
    as (when the first copy of its text went out, when this one did); a reply with a text of its own counts
    its own time as the first."""
    got = [text for _, text in timed]
    matched: set[int] = set()
    j = 0
    for exp in expected:
        try:
            j = got.index(exp, j)
        except ValueError:
            continue
        matched.add(j)
        j += 1
    out = []
    for i, (at, text) in enumerate(timed):
        if i not in matched:
            first = next((a for a, t in timed[:i] if t == text), at)
            out.append((first, at))
    return out


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


async def queue_snapshot(r: Redis, prefix: str) -> dict[str, Any]:
    """XLEN, pending entries and the lease holder of every shard (one pipeline: cheap enough every 5 s)."""
    async with r.pipeline(transaction=False) as pipe:
        for i in range(SHARDS):
            pipe.xlen(f"{prefix}:updates:{i}")
        for i in range(SHARDS):
            pipe.xpending(f"{prefix}:updates:{i}", GROUP)
        for i in range(SHARDS):
            pipe.get(f"{prefix}:lease:{i}")
        out = await pipe.execute(raise_on_error=False)
    xlen = [int(v) if isinstance(v, int) else 0 for v in out[:SHARDS]]
    pending = [int(v["pending"]) if isinstance(v, dict) else 0 for v in out[SHARDS:2 * SHARDS]]
    holders = [None if v is None or isinstance(v, Exception) else _text(v) for v in out[2 * SHARDS:]]
    return {"xlen": xlen, "pending": pending, "holders": holders}


async def classify_missing(r: Redis, prefix: str, pg_url: str, missing: list[int],
                           pid_name: dict[int, str], alive: set[str]) -> dict[str, Any]:
    """Where each accepted, unanswered update is: in its stream (queued, or pending at a consumer),
    recorded in SQL as handled (its reply never reached the Bot API), or nowhere (lost)."""
    in_stream: dict[int, tuple[int, str]] = {}
    pend: dict[tuple[int, str], dict[str, Any]] = {}
    for i in range(SHARDS):
        stream = f"{prefix}:updates:{i}"
        entries: Any = await r.xrange(stream, "-", "+")
        for eid, fields in entries:
            f = {_text(k): v for k, v in fields.items()}
            with contextlib.suppress(KeyError, ValueError):
                in_stream[int(_text(f["update_id"]))] = (i, _text(eid))
        with contextlib.suppress(RedisError):
            rows: Any = await r.xpending_range(stream, GROUP, min="-", max="+", count=10_000)
            for row in rows:
                pend[(i, _text(row["message_id"]))] = {"consumer": _text(row["consumer"]),
                                                       "idle_s": round(int(row["time_since_delivered"]) / 1000, 1),
                                                       "deliveries": int(row["times_delivered"])}
    recorded: set[int] = set()
    with contextlib.suppress(Exception):
        import psycopg

        with psycopg.connect(pg_url.replace("postgresql+psycopg", "postgresql"), connect_timeout=5) as conn:
            found = conn.execute("SELECT update_id FROM handled_updates WHERE update_id = ANY(%s)", (missing,))
            recorded = {int(row[0]) for row in found}
    details: list[dict[str, Any]] = []
    kinds: Counter[str] = Counter()
    for uid in missing:
        d: dict[str, Any] = {"update_id": uid, "seen_mark": bool(await r.exists(f"{prefix}:seen:{uid}"))}
        if uid in in_stream:
            shard, eid = in_stream[uid]
            d.update(shard=shard, entry=eid)
            held = pend.get((shard, eid))
            if held is None:
                kind = "queued"
            else:
                pid = str(held["consumer"]).rsplit("-", 1)[-1]
                name = pid_name.get(int(pid), held["consumer"]) if pid.isdigit() else held["consumer"]
                held["worker"] = name
                kind = "pending_live_worker" if name in alive else "pending_dead_worker"
                d.update(held)
        elif uid in recorded:
            kind = "recorded_without_reply"
        else:
            kind = "lost"
        d["where"] = kind
        kinds[kind] += 1
        details.append(d)
    return {"by_where": dict(kinds), "updates": details[:50], "stream_entries_left": len(in_stream),
            "pending_entries_left": len(pend)}


async def scrape(http: ClientSession, port: int) -> dict[str, float] | None:
    """A worker's updates by outcome and redeliveries, from its /metrics."""
    try:
        async with http.get(f"http://127.0.0.1:{port}/metrics", timeout=ClientTimeout(total=3)) as resp:
            body = await resp.text()
    except (ClientError, OSError, TimeoutError):
        return None
    out: dict[str, float] = {}
    for m in re.finditer(r'^shopbot_updates_total\{outcome="(\w+)"\} ([0-9.e+]+)$', body, re.M):
        out[m.group(1)] = float(m.group(2))
    redelivered = re.search(r"^shopbot_queue_redeliveries_total ([0-9.e+]+)$", body, re.M)
    if redelivered:
        out["redelivered"] = float(redelivered.group(1))
    return out


async def soak(args: argparse.Namespace, redis: PrivateRedis, pg: PrivatePostgres, data: Path, logs: Path,
               report: dict[str, Any]) -> None:
    rng = random.Random(args.seed)
    metrics_port: dict[str, int] = {}
    pid_name: dict[int, str] = {}

    def start_worker(c: Cluster) -> Proc:
        port = free_port()
        p = c._spawn(f"worker{len(c.workers)}", ["worker", "--key-prefix", c.prefix, "--concurrency", "8",
                                                 "--metrics-port", str(port)])
        c.workers.append(p)
        metrics_port[p.name] = port
        pid_name[p.popen.pid] = p.name
        return p

    r = Redis.from_url(redis.url, socket_timeout=5, socket_connect_timeout=2)
    async with FakeTelegram() as fake:
        c = Cluster(fake, stack_env(data, pg.url, redis.url, fake, args.lease), f"shopbot-soak-{uuid.uuid4().hex[:8]}",
                    logs)
        try:
            c.start_receiver()
            start_worker(c)
            start_worker(c)
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
                queue_samples: list[dict[str, Any]] = []
                handled: dict[str, dict[str, float]] = {}  # worker -> its last scraped counts
                handled_t: dict[str, list[tuple[float, float]]] = {}  # worker -> (t, handled) samples

                def answered() -> int:
                    return sum(len(c.answers(s.chat)) for s in shoppers)

                def sent() -> int:
                    return sum(len(s.expected) for s in shoppers)

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
                        sent_at = time.monotonic()
                        u = text_update(s.chat, text)
                        await _post_until_accepted(http, c.receivers[0].url, u, statuses, patience=300)
                        s.expected.append(answer_of[text])
                        s.update_ids.append(u["update_id"])
                        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
                        waiting[s.chat] = (n, sent_at, fut)
                        try:
                            at = await asyncio.wait_for(fut, REPLY_PATIENCE)
                            s.latencies.append((sent_at - t0, at - sent_at))
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
                                if mem < 1:  # torn down by a SIGKILL a moment ago, not yet a zombie
                                    continue
                                rss.setdefault(p.name, []).append((now, mem))
                        await asyncio.sleep(10)

                async def sample_queue() -> None:
                    """The queue every QUEUE_EVERY s; a line every 30 s (what a stuck shard looks like: pending
                    entries that stay while its holder is alive, and shoppers waiting longer and longer)."""
                    k = 0
                    while True:
                        now = time.monotonic()
                        entry: dict[str, Any] = {"t": round(now - t0, 1), "sent": sent(), "answered": answered(),
                                                 "waiting": len(waiting),
                                                 "oldest_wait_s": round(max((now - w[1] for w in waiting.values()),
                                                                            default=0.0), 1)}
                        try:
                            q = await queue_snapshot(r, c.prefix)
                            entry.update(xlen=sum(q["xlen"]), pending=sum(q["pending"]),
                                         xlen_by_shard=q["xlen"], pending_by_shard=q["pending"],
                                         holders=[None if h is None else
                                                  pid_name.get(int(h.rsplit("-", 1)[-1]), h)
                                                  if h.rsplit("-", 1)[-1].isdigit() else h for h in q["holders"]])
                        except (RedisError, OSError) as exc:
                            entry["redis_error"] = type(exc).__name__
                        for p in c.workers:
                            if p.popen.poll() is None:
                                scraped = await scrape(http, metrics_port[p.name])
                                if scraped is not None:
                                    handled[p.name] = scraped
                                    handled_t.setdefault(p.name, []).append((now - t0, scraped.get("handled", 0.0)))
                        entry["handled"] = {n: int(v.get("handled", 0)) for n, v in handled.items()}
                        queue_samples.append(entry)
                        if k % 6 == 0:
                            hs = " ".join(f"{n}={v}" for n, v in entry["handled"].items())
                            print(f"[{entry['t']:7.1f}s] sent {entry['sent']} answered {entry['answered']} waiting "
                                  f"{entry['waiting']} (oldest {entry['oldest_wait_s']} s) xlen {entry.get('xlen')} "
                                  f"pending {entry.get('pending')} handled {hs}", flush=True)
                        k += 1
                        await asyncio.sleep(QUEUE_EVERY)

                async def inject() -> None:
                    k = 0
                    while True:
                        await asyncio.sleep(t0 + (k + 1) * args.fault_every * 60 - time.monotonic())
                        if time.monotonic() >= stop_at - 1:
                            return
                        kind = args.faults[k % len(args.faults)]
                        at = time.monotonic() - t0
                        entry: dict[str, Any] = {"fault": kind, "at_s": round(at, 1)}
                        if kind == "kill_worker":
                            live = [p for p in c.workers if p.popen.poll() is None]
                            victim = live[k // len(args.faults) % len(live)]
                            victim.popen.send_signal(signal.SIGKILL)
                            new: Proc = start_worker(c)
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

                helpers = [asyncio.create_task(f()) for f in (watch_replies, sample_rss, sample_queue, inject)]
                await asyncio.gather(*(shop(s, i % len(SCRIPT)) for i, s in enumerate(shoppers)))
                helpers[3].cancel()
                load_s = time.monotonic() - t0
                # drain: wait while the answers keep coming; give up after --stall s without one (or --drain s)
                total = sent()
                hard = time.monotonic() + args.drain
                last_progress, last_answered = time.monotonic(), answered()
                drain_reason = "every accepted update answered"
                while answered() < total or not all(len(c.answers(s.chat)) >= len(s.expected) for s in shoppers):
                    await asyncio.sleep(1.0)
                    now_answered = answered()
                    if now_answered > last_answered:
                        last_progress, last_answered = time.monotonic(), now_answered
                    if time.monotonic() - last_progress > args.stall:
                        drain_reason = f"no reply for {args.stall:g} s"
                        break
                    if time.monotonic() > hard:
                        drain_reason = f"--drain {args.drain:g} s spent"
                        break
                print(f"drain: {drain_reason} after {time.monotonic() - t0 - load_s:.1f} s", flush=True)
                await asyncio.sleep(5.0)  # a late double shows up now (lease 2 s)
                for h in helpers:
                    h.cancel()
                drain_s = time.monotonic() - t0 - load_s
                final_handled = {}
                for p in c.workers:
                    if p.popen.poll() is None:
                        last = await scrape(http, metrics_port[p.name])
                        if last is not None:
                            handled[p.name] = last
                            handled_t.setdefault(p.name, []).append((time.monotonic() - t0, last.get("handled", 0.0)))
                    final_handled[p.name] = handled.get(p.name, {})
                missing = [uid for s in shoppers for uid in missing_updates(s, c.answers(s.chat))]
                alive = {p.name for p in c.workers if p.popen.poll() is None}
                where = await classify_missing(r, c.prefix, pg.url, missing, pid_name, alive) if missing else \
                    {"by_where": {}, "updates": []}
                with contextlib.suppress(RedisError, OSError):
                    q = await queue_snapshot(r, c.prefix)
                    where.update(xlen_at_end=sum(q["xlen"]), pending_at_end=sum(q["pending"]))
        finally:
            codes = await c.stop(signal.SIGTERM, timeout=20)
            await r.aclose()
    unanswered = doubled = order_breaks = 0
    doubles: list[dict[str, Any]] = []  # each doubled reply: when its first copy went out, after which fault
    for s in shoppers:
        got = c.answers(s.chat)
        unanswered += sum((Counter(s.expected) - Counter(got)).values())
        doubled += sum((Counter(got) - Counter(s.expected)).values())
        collapsed = [a for i, a in enumerate(got) if i == 0 or a != got[i - 1]]
        order_breaks += int(collapsed != s.expected and len(collapsed) >= len(s.expected))
        for first, again in extra_replies(s.expected, c.answers_at(s.chat)):
            at = first - t0
            before = [f for f in faults if f["at_s"] <= at]
            doubles.append({"chat": s.chat, "at_s": round(at, 2), "again_at_s": round(again - t0, 2),
                            "after_fault": before[-1]["fault"] if before else None,
                            "s_after_fault": round(at - before[-1]["at_s"], 2) if before else None})
    lat = [(at, d) for s in shoppers for at, d in s.latencies]
    windows = []
    for w in range(int(args.minutes // 5) + (args.minutes % 5 > 0)):
        ds = [d for at, d in lat if w * 300 <= at < (w + 1) * 300]
        windows.append({"window_min": f"{w * 5}-{min((w + 1) * 5, args.minutes):g}", "replies": len(ds),
                        "p50_ms": ms(percentile(ds, 50)), "p99_ms": ms(percentile(ds, 99))})
    workers = {}
    for name, samples in rss.items():
        warm = [(t, m) for t, m in samples if t >= started_at.get(name, 0.0) + args.warmup]
        ht = handled_t.get(name, [])
        counts = final_handled.get(name, {})
        workers[name] = {"started_s": round(started_at.get(name, 0.0), 1), "samples": len(samples),
                         "rss_start_mib": round(warm[0][1], 1) if warm else None,
                         "rss_end_mib": round(samples[-1][1], 1), "rss_max_mib": round(max(m for _, m in samples), 1),
                         "slope_mib_per_10min": rnd(slope_per_10min(warm)),
                         "warm_span_s": round(warm[-1][0] - warm[0][0]) if len(warm) > 1 else 0,
                         "handled": int(counts.get("handled", ht[-1][1] if ht else 0)),
                         "duplicates": int(counts.get("duplicate", 0)), "failed": int(counts.get("failed", 0)),
                         "redelivered": int(counts.get("redelivered", 0)),
                         "handled_per_s": round((ht[-1][1] - ht[0][1]) / (ht[-1][0] - ht[0][0]), 2)
                         if len(ht) > 1 and ht[-1][0] > ht[0][0] else None,
                         "exit_code": codes.get(name),
                         "rss_samples": [[round(t), round(m, 1)] for t, m in samples]}
    ds = [d for _, d in lat]
    by_where = where["by_where"]
    report.update(
        messages_sent=sum(len(s.expected) for s in shoppers),
        replies_received=sum(len(c.answers(s.chat)) for s in shoppers),
        unanswered=unanswered, lost=by_where.get("lost", 0) + by_where.get("recorded_without_reply", 0),
        still_queued=sum(v for k, v in by_where.items() if k == "queued" or k.startswith("pending")),
        unanswered_where=where, doubled=doubled, doubles=doubles, order_breaks=order_breaks,
        reply_timeouts=sum(s.timeouts for s in shoppers), post_statuses=dict(statuses),
        throughput_per_s=round(sum(len(s.latencies) for s in shoppers) / load_s, 1),
        p50_ms=ms(percentile(ds, 50)), p99_ms=ms(percentile(ds, 99)), windows=windows, workers=workers,
        faults=faults, load_s=round(load_s, 1), drain_s=round(drain_s, 1), drain_end=drain_reason,
        exit_codes=codes, queue_samples=queue_samples)
    if unanswered:
        report["logs_tail"] = {p.name: [ln for ln in p.text().splitlines() if "WARNING" in ln or "ERROR" in ln][-40:]
                               for p in c.receivers + c.workers}


def ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000, 1)


def rnd(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def table(r: dict[str, Any]) -> str:
    lines = [f"soak: {r['command']}",
             f"{'sent':>8} {'replies':>8} {'unanswered':>10} {'lost':>5} {'queued':>6} {'doubled':>7} {'order':>5} "
             f"{'p50 ms':>8} {'p99 ms':>8} {'msg/s':>6}",
             f"{r['messages_sent']:>8} {r['replies_received']:>8} {r['unanswered']:>10} {r['lost']:>5} "
             f"{r['still_queued']:>6} {r['doubled']:>7} {r['order_breaks']:>5} {r['p50_ms']!s:>8} {r['p99_ms']!s:>8} "
             f"{r['throughput_per_s']:>6}", f"drain: {r['drain_end']} ({r['drain_s']} s); reply timeouts "
             f"{r['reply_timeouts']}; unanswered by place: {r['unanswered_where']['by_where']}", "",
             f"{'window min':>10} {'replies':>8} {'p50 ms':>8} {'p99 ms':>8}"]
    lines += [f"{w['window_min']:>10} {w['replies']:>8} {w['p50_ms']!s:>8} {w['p99_ms']!s:>8}" for w in r["windows"]]
    lines += ["", f"{'worker':>8} {'from s':>7} {'handled':>8} {'/s':>6} {'RSS start':>9} {'RSS end':>8} "
              f"{'MiB/10min':>9} {'exit':>5}"]
    lines += [f"{n:>8} {w['started_s']:>7} {w['handled']:>8} {w['handled_per_s']!s:>6} {w['rss_start_mib']!s:>9} "
              f"{w['rss_end_mib']!s:>8} {w['slope_mib_per_10min']!s:>9} {w['exit_code']!s:>5}"
              for n, w in r["workers"].items()]
    lines += ["", "faults: " + ", ".join(f"{f['fault']}@{f['at_s']}s" for f in r["faults"])]
    if r["doubles"]:
        lines.append("doubled: " + ", ".join(f"chat {d['chat']} at {d['at_s']} s ({d['s_after_fault']} s after "
                                             f"{d['after_fault']}), again at {d['again_at_s']} s"
                                             for d in r["doubles"]))
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--shoppers", type=int, default=200)
    ap.add_argument("--fault-every", type=float, default=5, help="minutes between faults")
    ap.add_argument("--faults", type=lambda v: tuple(v.split(",")), default=FAULTS,
                    help=f"the faults in rotation, comma-separated (default {','.join(FAULTS)})")
    ap.add_argument("--lease", type=float, default=5.0,
                    help="SHOPBOT_QUEUE_LEASE_SECONDS of the workers (default 5, the production default)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--seed", type=int, default=22)
    ap.add_argument("--warmup", type=float, default=120, help="seconds after a worker's start before RSS counts")
    ap.add_argument("--stall", type=float, default=60, help="the drain gives up after this long without a reply")
    ap.add_argument("--drain", type=float, default=1800, help="the drain gives up after this long in all")
    return ap


def run(args: argparse.Namespace, command: str | None = None) -> dict[str, Any]:
    """One soak; the report (also written to ``args.out`` when it is set). ``command``: how it was started."""
    report: dict[str, Any] = {
        "command": command or (f".venv/bin/python tests/benchmarks/bench_soak.py --minutes {args.minutes:g} "
                               f"--shoppers {args.shoppers} --fault-every {args.fault_every:g}"),
        "run": "full soak" if args.minutes >= 30 else "short run, not the full 30-minute soak",
        "minutes": args.minutes, "shoppers": args.shoppers, "fault_every_min": args.fault_every,
        "faults_in_rotation": list(args.faults), "lease_s": args.lease,
        "seed": args.seed, "think_s": [1, 5], "receivers": 1, "workers_running": 2,
        "machine": f"{platform.node()} {psutil.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_before": [round(x, 2) for x in os.getloadavg()],
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
    report["load_after"] = [round(x, 2) for x in os.getloadavg()]
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return report


def main() -> int:
    args = parser().parse_args()
    report = run(args, ".venv/bin/python tests/benchmarks/bench_soak.py " + " ".join(sys.argv[1:]))
    print(table(report))
    print(f"written to {args.out}")
    return 1 if report["unanswered"] else 0


if __name__ == "__main__":
    sys.exit(main())
