"""Telegram load test: 100 simulated shoppers x 20 messages through the real bot and a fake Bot API server.

    .venv/bin/python tests/benchmarks/bench_telegram.py --out tests/benchmarks/results/telegram.json

Two processes, as in production (the bot here, Telegram elsewhere): this one runs the real
python-telegram-bot Application of ``shopbot telegram`` (long polling, per-chat ordering, the rate
limiter with Telegram's 30 msg/s cap off because the fake server has no limits, the real assistant over
the demo catalog with templated replies, SQLite); a child process runs the fake Bot API server
(tests/fakes/telegram_server.py) and the shoppers. Each shopper writes a varied English or Chinese
conversation (searches with prices and colours, refinements, next page, details, compare, similar,
customer-service questions, greetings; query caches off, so every message is encoded), at most one
message in flight per shopper, the next one due on a fixed schedule that offers ``--rate`` messages per
second in all.

Measured, from the moment a message is injected into the fake server: latency to the first message of
the reply and to the last (the reply is complete: header, product cards, buttons). A shopper writes
again only when the bot has finished the previous reply, so every reply message is attributed exactly. Checked: every
message answered (a reply arrived) exactly once (each update handed out once, each message handled
once: the turns table holds every shopper's messages in order, no reply message sent twice).

Where the CPU goes: the bot process's CPU per message, split into the dialogue's (CPU time of the
threads while they run ``DialogueManager._prepare``/``_log``) and the adapter's (the rest: python-
telegram-bot, HTTP, rendering), and by thread; the CPU of the other process (shoppers and fake server
share the machine's cores with the bot); Bot API requests per message by method. And how late messages
went out against the schedule (``injection_lag_ms``): a shopper writes only after the previous reply, so
a bot that falls behind lowers the offered rate, and the latencies, measured from injection, do not
show that wait.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

EN_ITEMS = ["running shoes", "winter coat", "wireless headphones", "laptop", "smartphone", "backpack", "t-shirt",
            "jeans", "hiking boots", "coffee maker", "smartwatch", "bluetooth speaker", "sweater", "dress",
            "camping tent", "yoga mat", "gaming laptop", "phone case", "desk lamp", "board game"]
EN_COLOURS = ["black", "white", "blue", "red", "grey", "green", "pink", "navy"]
ZH_SEARCHES = ["我想买一款新的手机", "红色的外套", "500元以下的跑步鞋", "蓝牙耳机", "黑色的背包", "笔记本电脑", "运动手表", "咖啡机",
               "冬天的外套", "登山鞋"]
EN_FOLLOW = ["cheaper", "in {colour}", "next page", "tell me about the second one", "compare 1 and 2",
             "more like the first one", "only the ones in stock", "under {price} dollars"]
ZH_FOLLOW = ["便宜一点的", "要黑色的", "第二个详细介绍一下", "比较第一个和第二个", "类似第一个的", "还有别的吗"]
EN_SERVICE = ["how long does shipping take?", "can I pay with PayPal?", "how do I return shoes?", "where is my order?",
              "do you ship abroad?", "hi", "thanks", "what is your refund policy?"]
ZH_SERVICE = ["怎么退货？", "多久能发货？", "可以用支付宝吗？", "谢谢", "你好", "退款要多久？"]


def script(rng: random.Random, zh: bool, n: int) -> list[str]:
    """One shopper's conversation: searches followed by a few refinements, a service question now and then."""
    out: list[str] = []
    while len(out) < n:
        if zh:
            out.append(rng.choice(ZH_SEARCHES))
            out += rng.sample(ZH_FOLLOW, rng.randint(1, 3))
            if rng.random() < 0.4:
                out.append(rng.choice(ZH_SERVICE))
        else:
            item = rng.choice(EN_ITEMS)
            form = rng.randrange(3)
            price = rng.choice([30, 50, 80, 100, 150, 200, 500, 1000])
            out.append([item, f"{rng.choice(EN_COLOURS)} {item}", f"{item} under {price} dollars"][form])
            for f in rng.sample(EN_FOLLOW, rng.randint(1, 3)):
                out.append(f.format(colour=rng.choice(EN_COLOURS), price=rng.choice([40, 90, 250])))
            if rng.random() < 0.4:
                out.append(rng.choice(EN_SERVICE))
    return out[:n]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, round(q * (len(s) - 1)))], 1) if s else float("nan")


# ------------------------------------------------------------------------ the Telegram side (child)


@dataclass
class Sent:
    user: int
    k: int
    text: str
    injected: float
    due: float = 0.0  # when the schedule wanted it sent (later when the previous reply was late)
    update_id: int = 0
    replies: list[tuple[float, str]] = field(default_factory=list)  # (time, text + buttons)
    first: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)  # the bot has finished with this update


def telegram_side(conn: Any, done: Any, users: int, per_user: int, rate: float, seed: int) -> None:
    asyncio.run(_telegram_side(conn, done, users, per_user, rate, seed))


async def _telegram_side(conn: Any, done: Any, users: int, per_user: int, rate: float, seed: int) -> None:
    from tests.fakes.telegram_server import SEND_METHODS, Call, FakeTelegram

    current: dict[int, Sent] = {}
    by_update: dict[int, Sent] = {}
    loop = asyncio.get_running_loop()

    def mark_done(update_id: int) -> None:
        if update_id in by_update:
            by_update[update_id].done.set()

    def finished() -> None:  # the bot reports each update it has finished with (a thread: the pipe blocks)
        while True:
            try:
                uid = done.recv()
            except EOFError:
                return
            if uid is None:
                return
            loop.call_soon_threadsafe(mark_done, uid)

    listener = loop.run_in_executor(None, finished)

    class Counting(FakeTelegram):
        async def _record(self, call: Call) -> None:
            if call.method in SEND_METHODS and call.status == 200 and call.chat_id in current:
                rec = current[call.chat_id]
                markup = json.dumps(call.params.get("reply_markup") or {}, sort_keys=True)
                rec.replies.append((call.at, call.text + markup))
                rec.first.set()
            await super()._record(call)

    fake = Counting()
    await fake.start()
    conn.send(("port", fake.port))
    await fake.wait_for(lambda: fake.requests("getUpdates"), 600)  # the bot is up
    cpu0 = time.process_time()  # this process (shoppers + fake server) shares the machine's cores with the bot

    rng = random.Random(seed)
    ids = [100_000 + i for i in range(users)]
    zh = {u: rng.random() < 0.25 for u in ids}
    scripts = {u: script(random.Random(seed * 1000 + u), zh[u], per_user) for u in ids}
    log: list[Sent] = []
    t0 = time.monotonic() + 0.5

    deadline = t0 + users * per_user / rate + 300  # an overloaded bot is reported, not waited for forever
    unsent = 0

    async def shopper(n: int, user: int) -> None:
        nonlocal unsent
        prev: Sent | None = None
        for k, text in enumerate(scripts[user]):
            due = t0 + (k * users + n) / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if prev is not None:  # a person reads the whole answer before writing again
                try:
                    await asyncio.wait_for(prev.done.wait(), max(0.0, deadline - time.monotonic()))
                except TimeoutError:
                    unsent += per_user - k
                    return
            rec = Sent(user, k, text, time.monotonic(), due)
            current[user] = rec
            log.append(rec)
            rec.update_id = fake.message(user, text, language_code="zh-hans" if zh[user] else "en")
            by_update[rec.update_id] = rec
            prev = rec

    await asyncio.gather(*(shopper(n, u) for n, u in enumerate(ids)))
    # every message handled (or the deadline passed)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(r.done.wait() for r in log)), max(1.0, deadline - time.monotonic()))
    await asyncio.sleep(0.5)
    first = [(r.replies[0][0] - r.injected) * 1000 for r in log if r.replies]
    lag = [max(0.0, r.injected - r.due) * 1000 for r in log]
    complete = [(r.replies[-1][0] - r.injected) * 1000 for r in log if r.replies]
    start = min(r.injected for r in log)
    end = max(r.replies[-1][0] for r in log if r.replies)
    duplicated_sends = sum(len(r.replies) - len({x for _, x in r.replies}) for r in log)
    load_cpu_ms = (time.process_time() - cpu0) * 1000
    by_method: dict[str, int] = defaultdict(int)
    for c in fake.calls:
        if c.method != "getUpdates":
            by_method[c.method] += 1
    result = {
        "messages": len(log),
        "not_sent_bot_too_slow": unsent,
        "answered": sum(1 for r in log if r.replies),
        "lost": sum(1 for r in log if not r.replies),
        "updates_handed_out_twice": sum(1 for r in log if fake.deliveries.get(r.update_id, 0) > 1),
        "duplicated_reply_messages": duplicated_sends,
        "reply_messages_sent": sum(len(r.replies) for r in log),
        "first_reply_ms": {"p50": pct(first, 0.5), "p90": pct(first, 0.9), "p99": pct(first, 0.99), "max": pct(first, 1.0)},
        "complete_reply_ms": {"p50": pct(complete, 0.5), "p90": pct(complete, 0.9), "p99": pct(complete, 0.99),
                              "max": pct(complete, 1.0), "mean": round(statistics.fmean(complete), 1)},
        # a shopper writes only after the previous reply: when the bot falls behind, messages go out later
        # than scheduled (the offered rate drops) and the latencies above no longer see that wait; this does
        "injection_lag_ms": {"p50": pct(lag, 0.5), "p99": pct(lag, 0.99)},
        "duration_s": round(end - start, 2),
        "messages_per_s": round(len(log) / (end - start), 1),
        "bot_requests": sum(1 for c in fake.calls if c.method != "getUpdates"),
        "bot_requests_per_message": {m: round(n / max(1, len(log)), 2) for m, n in sorted(by_method.items())},
        "get_updates_calls": len(fake.requests("getUpdates")),
        "shoppers_and_fake_server_cpu_ms_per_message": round(load_cpu_ms / max(1, len(log)), 1),
        "sent_per_user": {str(u): [r.text for r in log if r.user == u] for u in ids},
    }
    conn.send(("result", result))
    await loop.run_in_executor(None, conn.recv)  # until the bot has stopped
    await listener
    fake.end_polls()
    await asyncio.sleep(0.2)
    await fake.stop()


# --------------------------------------------------------------------------------- the bot (parent)


async def run_bot(settings: Any, assistant: Any, port: int, conn: Any, done: Any,
                  turns_at_once: int | None = None) -> tuple[dict[str, Any], int, int]:
    from bot.channels.telegram.bot import ALLOWED_UPDATES, PerChatProcessor, ShopBot
    from tests.fakes.telegram_server import TOKEN

    shop = ShopBot(assistant, settings, turns_at_once=turns_at_once) if turns_at_once else ShopBot(assistant, settings)
    app = shop.application(token=TOKEN, base_url=f"http://127.0.0.1:{port}/bot")
    turn_ms: list[float] = []
    handle = assistant.handle_async

    async def timed(event: Any) -> Any:  # how much of a reply's time is the dialogue turn itself
        t = time.perf_counter()
        try:
            return await handle(event)
        finally:
            turn_ms.append((time.perf_counter() - t) * 1000)

    assistant.handle_async = timed
    # the dialogue's own CPU (its worker threads' CPU time), to tell it apart from the adapter's
    dialogue_cpu: list[float] = []
    dialogue_threads: set[int] = set()
    dm = assistant.dialogue
    def cpu_timed(f: Any) -> Any:
        def timed_call(*a: Any, **k: Any) -> Any:
            dialogue_threads.add(threading.get_native_id())
            t = time.thread_time()
            try:
                return f(*a, **k)
            finally:
                dialogue_cpu.append(time.thread_time() - t)
        return timed_call

    for name in ("_prepare", "_log"):
        setattr(dm, name, cpu_timed(getattr(dm, name)))
    processor = app.update_processor
    assert isinstance(processor, PerChatProcessor)
    process = processor.do_process_update

    async def report(update: Any, coroutine: Any) -> None:  # tell the shoppers' side when a reply is complete
        try:
            await process(update, coroutine)
        finally:
            done.send(getattr(update, "update_id", None))

    processor.do_process_update = report  # type: ignore[method-assign]
    cpu0 = time.process_time()
    threads0 = thread_cpu()
    updater = app.updater
    assert updater is not None
    async with app:
        await app.start()
        await updater.start_polling(poll_interval=0.0, timeout=10, allowed_updates=ALLOWED_UPDATES)
        loop = asyncio.get_running_loop()
        kind, result = await loop.run_in_executor(None, conn.recv)
        assert kind == "result"
        await updater.stop()
        await app.stop()
        done.send(None)
        result["bot_cpu_ms_per_message"] = round((time.process_time() - cpu0) * 1000 / max(1, result["messages"]), 1)
        result["dialogue_turn_ms"] = {"p50": pct(turn_ms, 0.5), "p99": pct(turn_ms, 0.99)}
        result["dialogue_cpu_ms_per_message"] = round(sum(dialogue_cpu) * 1000 / max(1, result["messages"]), 1)
        # the bot's CPU by thread: the event loop (adapter, python-telegram-bot, HTTP), the threads that ran
        # dialogue turns, and the rest (torch / OpenMP / FAISS pools, SQLite, the benchmark's pipe reader)
        by_thread: dict[str, float] = defaultdict(float)
        for tid, (user, system) in thread_cpu().items():
            kind = "event_loop" if tid == os.getpid() else "dialogue_threads" if tid in dialogue_threads else "other_threads"
            user0, system0 = threads0.get(tid, (0.0, 0.0))
            by_thread[kind] += user - user0 + system - system0
            by_thread[kind + "_system"] += system - system0
        result["bot_cpu_ms_per_message_by_thread"] = {k: round(v * 1000 / max(1, result["messages"]), 1)
                                                      for k, v in sorted(by_thread.items())}
        result["adapter_cpu_ms_per_message"] = round(result["bot_cpu_ms_per_message"] - result["dialogue_cpu_ms_per_message"], 1)
        return result, shop.turns, processor.processed


def thread_cpu() -> dict[int, tuple[float, float]]:
    """CPU seconds (user, system) of each of this process's threads, by native thread id (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[float, float]] = {}
    for task in Path("/proc/self/task").glob("*"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            out[int(task.name)] = (int(fields[11]) / tick, int(fields[12]) / tick)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--messages", type=int, default=20, help="messages per user")
    ap.add_argument("--rate", type=float, default=60.0, help="messages per second offered, all users together")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--data-dir", type=Path, default=None, help="reuse an index built by an earlier run")
    ap.add_argument("--query-cache", type=int, default=0, help="query cache size (0: every message is encoded)")
    ap.add_argument("--turns-at-once", type=int, default=None, help="dialogue turns computing at once (the bot's default when omitted)")
    ap.add_argument("--out", type=Path, default=Path("tests/benchmarks/results/telegram.json"))
    args = ap.parse_args()

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from bot.app import build_assistant
    from bot.services import load_engine
    from bot.settings import Settings
    from bot.store.schema import Turn

    data = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-telegram-"))
    data.mkdir(parents=True, exist_ok=True)
    (data / "shopbot.db").unlink(missing_ok=True)
    settings = Settings(data_dir=data, llm="off", telegram_max_rate=0, query_cache_size=args.query_cache)
    t = time.perf_counter()
    engine = load_engine(settings)
    build_s = time.perf_counter() - t
    assistant = build_assistant(settings, engine=engine)
    from bot.dialogue.replies import Event

    for text in ("running shoes under 80 dollars", "in black", "compare 1 and 2", "我想买一款新的手机", "便宜一点的",
                 "how long does shipping take?", "怎么退货？", "hi"):  # models load on first use: not measured
        assistant.handle(Event(user="warm-up", channel="bench", text=text))
    load_before = [round(x, 2) for x in os.getloadavg()]  # other jobs on the machine: the figures depend on it
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    done_out, done_in = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=telegram_side, args=(child, done_out, args.users, args.messages, args.rate, args.seed), daemon=True)
    proc.start()
    kind, port = parent.recv()
    assert kind == "port"
    result, turns, processed = asyncio.run(run_bot(settings, assistant, port, parent, done_in, args.turns_at_once))
    parent.send("stop")
    proc.join(30)
    asyncio.run(assistant.aclose())

    # exactly once: each shopper's messages are in the turns table once each, in the order sent
    with Session(assistant.store.engine) as s:
        rows = s.execute(select(Turn.user_id, Turn.text_in).order_by(Turn.created_at, Turn.id)).all()
    handled: dict[str, list[str]] = defaultdict(list)
    for uid, text in rows:
        handled[uid.split(":", 1)[1]].append(text)
    sent = result.pop("sent_per_user")
    mismatched = sorted(u for u in sent if handled.get(u) != sent[u])
    total = args.users * args.messages
    out = {
        "what": f"{args.users} Telegram users x {args.messages} messages through python-telegram-bot (long polling) "
                "and a fake Bot API server in another process; demo catalog (1,200 products), templated replies "
                "(LLM off), SQLite, query caches off",
        "command": "python tests/benchmarks/bench_telegram.py " + " ".join(sys.argv[1:]),
        "machine": {"python": platform.python_version(), "cpus": mp.cpu_count(),
                    "load_average_before": load_before, "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "index_build_s": round(build_s, 1),
        "offered_rate_per_s": args.rate,
        **result,
        "turns_handled": turns,
        "updates_processed": processed,
        "turn_log_mismatched_users": len(mismatched),
        "exactly_once": result["lost"] == 0 and result["duplicated_reply_messages"] == 0
        and result["updates_handed_out_twice"] == 0 and not mismatched and turns == total == processed
        and result["not_sent_bot_too_slow"] == 0,
    }
    targets = {"lost_or_duplicated": 0, "p50_ms": 100, "p99_ms": 500, "messages_per_s": 50}
    out["targets"] = targets
    out["meets_targets"] = (out["exactly_once"] and out["complete_reply_ms"]["p50"] <= targets["p50_ms"]
                            and out["complete_reply_ms"]["p99"] <= targets["p99_ms"] and out["messages_per_s"] >= targets["messages_per_s"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in out.items() if k not in {"what", "command", "machine"}}, indent=2))


if __name__ == "__main__":
    main()
