"""LLM benchmark: the packaged model answering a customer-service question, bf16 against fp32.

    .venv/bin/python tests/benchmarks/bench_llm.py --out tests/benchmarks/results/llm.json

Prepares the packaged Qwen2.5-Coder-0.5B-Instruct (ensure_default_model into ~/.shopbot, or
--data-dir; the first time this joins and converts the GGUF, which is timed too), then for each
dtype in the same process: load time, and over --runs greedy answers (after one warm-up) the
median time to first streamed piece, generation rate and whole-answer time. The prompt is what
model/writing/support.py-style answers look like: a system message with a ~150-word policy passage and a
shopper's question. fp32 is the baseline bf16 is compared against. CPU threads: all cores. On a
CUDA machine the model runs on the GPU (device picked as TransformersLLM does).

Tokens are counted by re-tokenising the streamed text (the streamer yields words, not tokens); for
this tokenizer that matches the generated count to within a token or two.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

POLICY = (
    "Returns and refunds. You can return most items within 30 days of delivery, as long as they are unused "
    "and in their original packaging with the tags attached. Shoes must be unworn outdoors; try them on "
    "indoors on a clean surface. To start a return, open your order in your account and choose Return item, "
    "or write to support with your order number. Return shipping costs $5.99, deducted from your refund, "
    "unless the item arrived damaged or we sent the wrong item, in which case we pay it and email you a "
    "prepaid label. Refunds go back to the original payment method within 5 business days after the parcel "
    "reaches our warehouse; your bank may take a few more days to show it. Sale items marked final sale "
    "cannot be returned. Gift cards are not refundable. Exchanges for a different size are free once per "
    "order: choose Exchange instead of Return and we ship the new size as soon as the original is scanned."
)
MESSAGES = [
    {
        "role": "system",
        "content": "You are the customer-service assistant of an online shop. Answer only from this passage; "
        "if it does not say, reply that you do not know. Be brief.\n\nPassage:\n" + POLICY,
    },
    {
        "role": "user",
        "content": "I wore my new running shoes once outside. Can I still return them, and who pays the shipping?",
    },
]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


async def one_answer(llm: Any, max_tokens: int) -> dict[str, Any]:
    started = time.perf_counter()
    first_at: float | None = None
    pieces: list[str] = []
    async for piece in llm.stream(MESSAGES, max_tokens=max_tokens, temperature=0):
        if first_at is None:
            first_at = time.perf_counter()
        pieces.append(piece)
    ended = time.perf_counter()
    text = "".join(pieces)
    tok = llm.tokenizer
    n = len(tok(text, add_special_tokens=False)["input_ids"])
    n_first = len(tok(pieces[0], add_special_tokens=False)["input_ids"]) if pieces else 0
    first_at = first_at or ended
    return {
        "ttft_s": first_at - started,
        "total_s": ended - started,
        "tokens": n,
        # the rate after the first piece: steady-state decoding, without the prompt's prefill
        "decode_tok_s": (n - n_first) / (ended - first_at) if ended > first_at and n > n_first else 0.0,
        "text": text,
    }


def bench_dtype(model_dir: Path, device: str | None, dtype: str, runs: int, max_tokens: int) -> dict[str, Any]:
    from model.llm.factory import TransformersLLM

    llm = TransformersLLM(model_dir, device=device, dtype=dtype, threads=os.cpu_count())
    started = time.perf_counter()
    llm.load()
    load_s = time.perf_counter() - started
    prompt_tokens = len(
        llm.tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, return_dict=True)["input_ids"]
    )
    asyncio.run(one_answer(llm, 8))  # warm-up: first-call allocations, thread pools
    results = [asyncio.run(one_answer(llm, max_tokens)) for _ in range(runs)]
    llm.close()
    del llm
    gc.collect()
    med = {k: statistics.median(r[k] for r in results) for k in ("ttft_s", "total_s", "tokens", "decode_tok_s")}
    return {
        "dtype": dtype,
        "load_s": round(load_s, 2),
        "prompt_tokens": prompt_tokens,
        "ttft_s_median": round(med["ttft_s"], 3),
        "decode_tok_s_median": round(med["decode_tok_s"], 2),
        "answer_s_median": round(med["total_s"], 2),
        "answer_tokens_median": med["tokens"],
        "tok_s_overall_median": round(statistics.median(r["tokens"] / r["total_s"] for r in results), 2),
        "runs": [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items() if k != "text"} for r in results],
        "answer": results[0]["text"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("SHOPBOT_DATA_DIR", Path.home() / ".shopbot")))
    ap.add_argument("--device", default=None, help="cpu, cuda (default: cuda when available)")
    ap.add_argument("--dtypes", default="bfloat16,float32", help="comma-separated; the last is the baseline")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--out", type=Path, default=Path("tests/benchmarks/results/llm.json"))
    args = ap.parse_args()

    import torch

    from model.llm.factory import ensure_default_model, pick_device, pick_dtype

    started = time.perf_counter()
    model_dir = ensure_default_model(args.data_dir, progress=True)
    prepare_s = time.perf_counter() - started
    device = pick_device(args.device)
    runs = [bench_dtype(model_dir, device, d, args.runs, args.max_tokens) for d in args.dtypes.split(",")]
    base = runs[-1]
    result = {
        "what": "packaged Qwen2.5-Coder-0.5B-Instruct (bf16 safetensors cache) answering a customer-service "
        f"question from a ~150-word policy passage, greedy, max {args.max_tokens} new tokens, median of {args.runs}",
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpu": cpu_name(),
            "cpus": os.cpu_count(),
            "device": device,
            "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None,
        },
        "prepare_s": round(prepare_s, 1),
        "prepare_note": "join + checksum + GGUF->bf16 conversion" if prepare_s > 5 else "cached bf16 directory",
        "model_dir_mb": round(sum(f.stat().st_size for f in model_dir.iterdir()) / 1e6),
        "auto_dtype": str(pick_dtype(device, model_dir)).removeprefix("torch."),
        "results": runs,
        "speedup_vs_" + base["dtype"]: {
            r["dtype"]: {
                "decode": round(r["decode_tok_s_median"] / base["decode_tok_s_median"], 2),
                "ttft": round(base["ttft_s_median"] / r["ttft_s_median"], 2),
            }
            for r in runs[:-1]
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
