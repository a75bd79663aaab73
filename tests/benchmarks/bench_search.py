"""Search benchmark over synthetic catalogs: latency, throughput, build time, memory, ANN recall.

    .venv/bin/python tests/benchmarks/bench_search.py --sizes 10000 100000 --out tests/benchmarks/results/search.json

For each catalog size it builds the real bundle (BM25 + MiniLM + USE vectors + FAISS) into a temporary
data dir and measures, in one process:

- full build time and an incremental reindex that changes 1% of the products (ratio reported);
- end-to-end query latency (parse + encode + FAISS + BM25 + fusion) over distinct queries with the
  query cache off (cold), and over a Zipf-distributed stream with the cache on (realistic traffic);
- the same cold queries against an exact (flat) index built in the same process: the baseline;
- recall@10 of the approximate index against exact search, on real MiniLM embeddings of the titles;
- the cost of the term feedback (RankConfig.w_prf_terms) against the same engine without it;
- resident memory after loading and peak memory of the process.

Medians and p99 only; the machine is shared and noisy, so compare ratios within one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from retrieval.bundle import current_dir
from retrieval.catalog import Product
from retrieval.encoders import get_encoder
from retrieval.index import VectorIndex
from retrieval.indexer import build_bundle, load_engine

BRANDS = ["Nike", "Adidas", "Asics", "Puma", "Apple", "Samsung", "Xiaomi", "Sony", "Bose", "Lenovo", "Dell", "HP",
          "Logitech", "Philips", "IKEA", "KitchenAid", "Levi's", "Uniqlo", "Patagonia", "Columbia", "Lego", "Hasbro",
          "Canon", "JBL", "Anker", "Casio", "Fossil", "Samsonite", "Herschel", "Nivea", "CeraVe", "Lavazza"]
TYPES = {
    "Shoes": ["running shoe", "trail running shoe", "hiking boot", "sneaker", "sandal", "ankle boot", "slip-on loafer"],
    "Apparel": ["winter coat", "rain jacket", "down jacket", "t-shirt", "hoodie", "slim jeans", "summer dress",
                "wool sweater", "polo shirt", "yoga pants"],
    "Electronics": ["wireless headphones", "noise cancelling headphones", "bluetooth speaker", "smartwatch",
                    "4K TV", "action camera", "mirrorless camera", "earbuds", "e-reader"],
    "Phones": ["smartphone", "phone case", "screen protector", "USB-C charger", "wireless charger", "power bank"],
    "Computers": ["laptop", "gaming laptop", "wireless mouse", "mechanical keyboard", "laptop sleeve", "USB-C hub",
                  "monitor", "webcam", "memory card"],
    "Kitchen": ["stand mixer", "espresso machine", "coffee grinder", "chef knife", "nonstick frying pan",
                "pressure cooker", "blender", "kettle", "toaster"],
    "Home": ["desk lamp", "duvet cover", "memory foam pillow", "area rug", "wall clock", "storage basket"],
    "Sports": ["yoga mat", "dumbbell set", "camping tent", "sleeping bag", "bike helmet", "water bottle"],
    "Beauty": ["face cream", "shampoo", "lipstick", "sunscreen", "hair dryer", "perfume"],
    "Toys": ["building set", "board game", "doll house", "remote control car", "puzzle"],
}
COLORS = ["black", "white", "red", "blue", "navy", "green", "grey", "pink", "beige", "brown", "silver"]
ADJ = ["lightweight", "waterproof", "classic", "premium", "compact", "portable", "organic", "slim", "durable", "soft",
       "ergonomic", "vintage", "professional", "kids'", "men's", "women's", "unisex", "eco"]
MATERIALS = ["cotton", "wool", "leather", "mesh", "stainless steel", "aluminium", "silicone", "bamboo", "polyester"]


def synthetic_catalog(n: int, seed: int = 7) -> list[Product]:
    rng = random.Random(seed)
    cats = list(TYPES)
    out = []
    for i in range(n):
        cat = rng.choice(cats)
        kind = rng.choice(TYPES[cat])
        brand = rng.choice(BRANDS)
        color = rng.choice(COLORS)
        adj = rng.sample(ADJ, 2)
        model = f"{rng.choice('ABCDEFGHKLMNPRSTVXZ')}{rng.randint(1, 999)}"
        material = rng.choice(MATERIALS)
        title = f"{brand} {adj[0].title()} {kind.title()} {model}, {color.title()}"
        desc = f"A {adj[1]} {kind} made of {material}, in {color}. Model {model} by {brand}."
        out.append(Product(
            sku=f"S{i:07d}", title=title, description=desc, category=(cat, kind.title()), brand=brand,
            price=round(rng.uniform(5, 900), 2), stock=rng.choice([0, 1, 3, 10, 25, 100]),
            attributes={"color": (color,), "material": (material,)},
        ))
    return out


def synthetic_queries(n: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    kinds = [k for ks in TYPES.values() for k in ks]
    qs = set()
    while len(qs) < n:
        r = rng.random()
        kind = rng.choice(kinds)
        if r < 0.3:
            q = kind
        elif r < 0.5:
            q = f"{rng.choice(COLORS)} {kind}"
        elif r < 0.65:
            q = f"{rng.choice(BRANDS).lower()} {kind}"
        elif r < 0.8:
            q = f"{rng.choice(ADJ)} {kind} under ${rng.choice([30, 50, 80, 100, 200])}"
        else:
            q = f"{rng.choice(MATERIALS)} {kind} {rng.choice(COLORS)}"
        qs.add(q)
    return sorted(qs)


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else 0.0


def time_queries(engine, queries: list[str]) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for q in queries:
        t = time.perf_counter()
        engine.search(q, k=10)
        out.append((time.perf_counter() - t) * 1000)
    return out


def bench_size(n: int, n_queries: int, workdir: Path, body_view: bool = True) -> dict[str, object]:
    print(f"\n=== {n} products ===", flush=True)
    products = synthetic_catalog(n)
    queries = synthetic_queries(n_queries)
    root = workdir / f"idx-{n}"
    res: dict[str, object] = {"products": n, "queries": len(queries), "body_view": body_view}

    t = time.perf_counter()
    full = build_bundle(products, root, progress=False, body_view=body_view)
    res["build_full_s"] = round(time.perf_counter() - t, 2)
    res["build_timings_s"] = {k: round(v, 2) for k, v in full.timings.items()}
    print(full.summary(), flush=True)

    # incremental: 1% of products change (half re-titled, half re-priced), 0.1% added, 0.1% removed
    rng = random.Random(3)
    touched = rng.sample(range(n), max(1, n // 100))
    changed = list(products)
    for j, i in enumerate(touched):
        rec = changed[i].to_record()
        if j % 2:
            rec["title"] = rec["title"] + " (2025 edition)"
        else:
            rec["price"] = round(rec["price"] * 0.9, 2)
        changed[i] = Product.from_record(rec)
    t = time.perf_counter()
    inc = build_bundle(changed, root, progress=False, body_view=body_view)
    res["reindex_1pct_s"] = round(time.perf_counter() - t, 2)
    res["reindex_1pct_ratio_vs_full"] = round(float(res["reindex_1pct_s"]) / float(res["build_full_s"]), 4)  # type: ignore[arg-type]
    res["reindex_counts"] = {"changed": inc.changed, "added": inc.added, "removed": inc.removed}
    print(inc.summary(), flush=True)

    before = rss_mb()
    engine = load_engine(root, query_cache_size=0)
    res["rss_after_load_mb"] = round(rss_mb(), 1)
    res["rss_engine_mb"] = round(rss_mb() - before, 1)
    index_kind = engine.dense["en"].index.kind
    res["index_type"] = index_kind

    time_queries(engine, queries[:20])  # warm-up: jieba/tokenizer/BLAS
    cold = time_queries(engine, queries)
    res["latency_cold_ms"] = {"p50": round(pct(cold, 50), 2), "p99": round(pct(cold, 99), 2)}
    res["throughput_qps_single_thread"] = round(1000 / float(np.mean(cold)), 1)

    # stage breakdown (medians)
    stages: dict[str, list[float]] = {}
    for q in queries[:200]:
        for k, v in engine.search(q, k=10).timings_ms.items():
            stages.setdefault(k, []).append(v)
    res["stage_p50_ms"] = {k: round(pct(v, 50), 2) for k, v in stages.items()}
    # what the term feedback adds, measured against the same engine without it, the runs interleaved
    with_fb: list[float] = []
    without_fb: list[float] = []
    base = engine.config
    for q in queries[:200]:
        for cfg, sink in ((base, with_fb), (dataclasses.replace(base, w_prf_terms=0.0), without_fb)):
            engine.config = cfg
            sink.append(engine.search(q, k=10).timings_ms["total"])
    engine.config = base
    res["term_feedback_cost_ms"] = {"with_p50": round(pct(with_fb, 50), 2), "without_p50": round(pct(without_fb, 50), 2),
                                    "p50_ratio": round(pct(with_fb, 50) / pct(without_fb, 50), 3)}

    # realistic traffic: Zipf over the query set with the LRU query cache on
    cached = load_engine(root, query_cache_size=4096)
    zipf = np.random.default_rng(5).zipf(1.2, size=len(queries) * 2)
    stream = [queries[(z - 1) % len(queries)] for z in zipf]
    warm = time_queries(cached, stream)
    res["latency_zipf_cached_ms"] = {"p50": round(pct(warm, 50), 2), "p99": round(pct(warm, 99), 2)}

    # baseline in the same process: the same pipeline over an exact (flat) index
    en = engine.dense["en"]
    exact = VectorIndex.build(engine.row_ids, np.asarray(en.vectors), kind="flat")
    if index_kind != "flat":
        approx = en.index
        qv = get_encoder("minilm").encode(queries, kind="query")
        _, ids_a = approx.search(qv, 10)
        _, ids_e = exact.search(qv, 10)
        recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(ids_a, ids_e, strict=True)])
        res["ann_recall_at_10"] = round(float(recall), 4)
        res["ann_search_effort"] = {"nprobe": approx.nprobe, "tuning": approx.tuning}
        en.index = exact
        flat_cold = time_queries(engine, queries)
        en.index = approx
        res["latency_cold_exact_index_ms"] = {"p50": round(pct(flat_cold, 50), 2), "p99": round(pct(flat_cold, 99), 2)}
        res["p50_ratio_approx_vs_exact"] = round(pct(cold, 50) / pct(flat_cold, 50), 3)
    else:
        res["ann_recall_at_10"] = 1.0

    res["peak_rss_mb"] = round(peak_mb(), 1)
    res["bundle_mb"] = round(sum(f.stat().st_size for f in (current_dir(root) or root).rglob("*") if f.is_file()) / 2**20, 1)
    print(json.dumps(res, indent=1), flush=True)
    shutil.rmtree(root, ignore_errors=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--no-body-view", action="store_true", help="Index titles only (SHOPBOT_BODY_VIEW=false).")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "search.json")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results = {
        "benchmark": "search",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="shopbot-bench-") as tmp:
        for n in args.sizes:
            results["runs"].append(bench_size(n, args.queries, Path(tmp), body_view=not args.no_body_view))  # type: ignore[union-attr]
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
