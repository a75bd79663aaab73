"""Customer-service turns with the packaged language model on this CPU, and the injection suite.

    .venv/bin/python tests/benchmarks/bench_cs_turn.py --out tests/benchmarks/results/cs_turn.json

Plays customer-service questions (English and Chinese) through the real assistant, as the Telegram
adapter does (`handle_async`, streaming): the time until the first verified text reaches the shopper
and until the answer is final, and where each answer came from (the model's text or the policy
extract after a failed check or a timeout). Then every message of tests/data/injection_suite.txt is
played and each final reply is checked against the facts the shopper may be told (policy, products
shown, the assistant's own sentences): the count of invented prices, discounts, codes or promises
must be 0. The demo index and the model are prepared in --data-dir on first use (as `shopbot chat`
does). One process; medians are what to compare: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

QUESTIONS = [
    "how do I return shoes?", "how long does shipping take?", "can I pay with PayPal?", "how do refunds work?",
    "do you ship internationally?", "what is your warranty on electronics?", "can I cancel my order?",
    "are there any promotions right now?", "how much does express delivery cost?", "where is my order?",
    "怎么退货？", "运费多少钱？", "可以用支付宝付款吗？", "退款多久到账？", "保修期多长？",
]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


async def turn(assistant: Any, user: str, text: str) -> dict[str, Any]:
    from bot.dialogue.replies import Event

    t0 = time.perf_counter()
    replies = await assistant.handle_async(Event(user=user, channel="bench", text=text))
    first: float | None = None
    for r in replies:
        if r.live is None:
            first = first if first is not None else time.perf_counter() - t0
            continue
        async for piece in r.live.updates():
            if piece and first is None:
                first = time.perf_counter() - t0
    full = time.perf_counter() - t0
    await assistant.dialogue.drain()
    return {"text": text, "first_s": first, "full_s": full, "replies": replies}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=Path.home() / ".shopbot")
    ap.add_argument("--out", type=Path, default=Path("tests/benchmarks/results/cs_turn.json"))
    ap.add_argument("--skip-injections", action="store_true")
    ap.add_argument("--dtype", default="auto", help="The local model's precision: auto, float32, bfloat16, int8.")
    args = ap.parse_args()

    from sqlalchemy import select

    from bot.app import build_assistant
    from bot.dialogue.messages import EXAMPLES, MESSAGES
    from bot.services import load_engine
    from bot.settings import Settings
    from bot.store.schema import Turn
    from model.writing.grounding import Facts, verify

    s = Settings(data_dir=args.data_dir, llm="auto", llm_dtype=args.dtype,
                 database_url=f"sqlite:///{args.data_dir / 'bench_cs.db'}")
    assistant = build_assistant(s, engine=load_engine(s))
    assert assistant.llm is not None, "no language model: see the log"
    t = time.perf_counter()
    assistant.llm.load()  # type: ignore[attr-defined]
    load_s = time.perf_counter() - t

    async def play() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        await turn(assistant, "warmup", "how do I return shoes?")
        cs = [await turn(assistant, f"cs{i}", q) for i, q in enumerate(QUESTIONS)]
        hostile: list[dict[str, Any]] = []
        if not args.skip_injections:
            suite = Path(__file__).resolve().parents[1] / "data" / "injection_suite.txt"
            msgs = [x.strip() for x in suite.read_text(encoding="utf-8").splitlines() if x.strip() and not x.startswith("#")]
            hostile = [await turn(assistant, f"inj{i}", m) for i, m in enumerate(msgs)]
        return cs, hostile

    cs, hostile = asyncio.run(play())

    def sources(rows: list[dict[str, Any]]) -> dict[str, int]:
        out: dict[str, int] = {}
        with assistant.store.engine.connect() as conn:
            for row in rows:
                tid = row["replies"][0].turn_id if row["replies"] else None
                raw = conn.execute(select(Turn.generation).where(Turn.id == tid)).scalar_one_or_none() if tid else None
                for g in json.loads(raw or "[]"):
                    key = f"{g.get('kind')}:{g.get('source')}"
                    out[key] = out.get(key, 0) + 1
        return out

    policy_text = "\n".join(p.text for p in assistant.policy.passages)
    own = [t for m in MESSAGES.values() for t in m.values()] + list(EXAMPLES.values())
    brands = sorted(assistant.engine.brands)
    invented: list[dict[str, Any]] = []
    for row in hostile:
        shown = [assistant.engine.product(c.sku) for r in row["replies"] for c in r.cards]
        facts = Facts.from_records([p for p in shown if p is not None], passages=[policy_text], extras=own)
        for r in row["replies"]:
            v = verify(r.text, facts, known_brands=brands, question=row["text"])
            if not v.ok:
                invented.append({"message": row["text"], "reply": r.text, "claims": [c.text for c in v.unsupported]})

    firsts = [r["first_s"] for r in cs if r["first_s"] is not None]
    fulls = [r["full_s"] for r in cs]
    result = {
        "what": "customer-service turns with the packaged model (handle_async, streamed), demo policy",
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "llm": f"{assistant.llm.name}@{assistant.llm.version}",
        "dtype": args.dtype, "quantized_int8": bool(getattr(assistant.llm, "quantized", False)),
        "compute_dtype": str(getattr(assistant.llm, "dtype", "")),
        "model_load_s": round(load_s, 2),
        "questions": len(cs),
        "first_text_p50_s": round(statistics.median(firsts), 2) if firsts else None,
        "first_text_p90_s": round(pct(firsts, 0.9), 2) if firsts else None,
        "full_answer_p50_s": round(statistics.median(fulls), 2),
        "full_answer_p90_s": round(pct(fulls, 0.9), 2),
        "sources": sources(cs),
        "answers": [{"q": r["text"], "first_s": None if r["first_s"] is None else round(r["first_s"], 2),
                     "full_s": round(r["full_s"], 2), "a": "\n".join(x.text for x in r["replies"])} for r in cs],
        "injection_messages": len(hostile),
        "injection_sources": sources(hostile),
        "injection_invented_claims": len(invented),
        "injection_failures": invented,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "answers"}, indent=2, ensure_ascii=False))
    assistant.close()


if __name__ == "__main__":
    main()
