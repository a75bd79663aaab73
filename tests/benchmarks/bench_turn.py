"""Dialogue turn benchmark: the cost of one turn without the LLM, on the demo catalog.

    .venv/bin/python tests/benchmarks/bench_turn.py --out tests/benchmarks/results/turn.json

Builds the demo index (real MiniLM + USE encoders, titles and descriptions as `shopbot chat` does)
in a temporary data dir, then plays scripted conversations (English and Chinese: search, refine,
more, compare, details, similar, customer-service questions, thanks) through the real
DialogueManager with the packaged intent model and a SQLite store, several rounds with fresh users,
and reports median and p99 latency per turn, overall and per intent. The query caches are off, so
every turn encodes its text. One process, one thread: medians are what to compare; the machine is
shared and noisy. Parts are also timed in the same process (intent model alone, search alone, store
writes alone) as a baseline for the whole.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

SCRIPTS = [
    ["show me running shoes under 80 dollars", "in black", "cheaper", "next page", "compare 1 and 2",
     "tell me about the second one", "more like the first one", "thanks"],
    ["wireless earbuds", "only Sony", "tell me about the first one", "how long does shipping take?",
     "can I pay with PayPal?", "how do I return shoes?"],
    ["我想买一款新的手机", "便宜一点的", "第二个详细介绍一下", "要红色的", "怎么退货？", "谢谢"],
    ["a red winter coat under $80", "size M", "compare 1 and 3", "where is my order?", "I want a refund"],
]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8, help="times each script is played (fresh users)")
    ap.add_argument("--out", type=Path, default=Path("tests/benchmarks/results/turn.json"))
    args = ap.parse_args()

    from bot.app import build_assistant
    from bot.dialogue.replies import Event
    from bot.settings import Settings
    from bot.store.database import Store
    from bot.store.records import TurnRecord
    from retrieval.catalog import load_catalog
    from retrieval.indexer import build_bundle, load_engine
    from retrieval.threads import set_threads

    set_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench-turn-"))
    s = Settings(data_dir=tmp, query_cache_size=0, llm="off")
    t = time.perf_counter()
    build_bundle(load_catalog().products, s.index_root, encoders={"en": s.encoder, "multi": s.multilingual_encoder})
    build_s = time.perf_counter() - t
    engine = load_engine(s.index_root, encoders={"en": s.encoder, "multi": s.multilingual_encoder}, query_cache_size=0)
    assistant = build_assistant(s, engine=engine)

    # warm-up: first calls load weights and allocate
    for text in ("hello", "running shoes", "怎么退货？"):
        assistant.handle(Event(user="warmup", channel="bench", text=text))

    per_intent: dict[str, list[float]] = defaultdict(list)
    all_ms: list[float] = []
    for r in range(args.rounds):
        for n, script in enumerate(SCRIPTS):
            user = f"u{r}-{n}"
            for text in script:
                t = time.perf_counter()
                replies = assistant.handle(Event(user=user, channel="bench", text=text))
                ms = (time.perf_counter() - t) * 1000
                all_ms.append(ms)
                per_intent[replies[0].intent or "?"].append(ms)

    # baselines measured in the same process
    texts = [t for sc in SCRIPTS for t in sc]
    nlu_ms, search_ms = [], []
    for _ in range(args.rounds):
        for text in texts:
            t = time.perf_counter()
            assistant.nlu.parse(text, {})
            nlu_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            engine.search(text, k=5)
            search_ms.append((time.perf_counter() - t) * 1000)
    store = Store(s.db_url, s.buffer_dir)
    store_ms = []
    for i in range(200):
        t = time.perf_counter()
        uid, _ = store.touch("bench", f"store{i % 20}")
        state = store.load_state(uid) or {}
        store.log(TurnRecord(f"bench{i:05d}", uid, "running shoes", "5 products", intent="search", query="running shoes",
                             shown=[(p.sku, k + 1, None) for k, p in enumerate(engine.products[:5])]))
        store.save_state(uid, {**state, "n": i})
        store_ms.append((time.perf_counter() - t) * 1000)

    result = {
        "what": "one dialogue turn without the LLM, demo catalog (1,200 products), SQLite store, 1 thread",
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "index_build_s": round(build_s, 1),
        "turns": len(all_ms),
        "turn_p50_ms": round(statistics.median(all_ms), 2),
        "turn_p99_ms": round(pct(all_ms, 0.99), 2),
        "turn_max_ms": round(max(all_ms), 2),
        "per_intent": {k: {"n": len(v), "p50_ms": round(statistics.median(v), 2), "p99_ms": round(pct(v, 0.99), 2)}
                       for k, v in sorted(per_intent.items())},
        "parts_p50_ms": {"nlu": round(statistics.median(nlu_ms), 2), "search": round(statistics.median(search_ms), 2),
                         "store_turn_writes": round(statistics.median(store_ms), 2)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    assistant.close()
    store.close()


if __name__ == "__main__":
    main()
