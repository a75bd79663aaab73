"""Known-item search over the bundled demo catalog: does the product a shopper names come first?

    .venv/bin/python tests/benchmarks/bench_known_item.py --out tests/benchmarks/results/known_item.json

Each query is the first three words of a product's title (before any comma): a brand and the start of a
product name ("Casa Verde Chamomile", "Xiaomi Redmi Watch", "Adidas Women's Adilette"). A query counts as
found when the first result's title holds all three words (another colour or pack of the same product
counts). Products are sampled with a fixed seed; titles shorter than four words are skipped. The same
engine is measured with the shipped ranking and with the feedback ablations, in one process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import tempfile
import time
from pathlib import Path

from retrieval.catalog import load_catalog
from retrieval.indexer import build_bundle, load_engine

ABLATIONS = {
    "shipped": {},
    "feedback_counts_every_product_equally": {"feedback_coverage_power": 0.0},
    "no_term_feedback": {"w_prf_terms": 0.0},
    "no_feedback_or_smoothing": {"w_prf_terms": 0.0, "w_prf": 0.0, "smooth_weight": 0.0},
}


def known_item_queries(titles: list[str], n: int, seed: int = 2) -> list[str]:
    out = []
    for title in random.Random(seed).sample(titles, min(n, len(titles))):
        words = title.split(",")[0].split()
        if len(words) >= 4:
            out.append(" ".join(words[:3]))
    return out


def found(engine, query: str) -> bool:  # type: ignore[no-untyped-def]
    hits = engine.search(query, k=1).hits
    top = hits[0].product.title.lower() if hits else ""
    return all(w.lower().strip("'\"") in top for w in query.split())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", type=int, default=400, help="Products sampled for queries (default 400).")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "known_item.json")
    args = ap.parse_args()
    products = load_catalog().products
    queries = known_item_queries([p.title for p in products], args.sample)
    with tempfile.TemporaryDirectory() as tmp:
        build_bundle(products, Path(tmp) / "index", progress=False)
        engine = load_engine(Path(tmp) / "index", query_cache_size=0)
        base = engine.config
        results = {}
        for name, change in ABLATIONS.items():
            engine.config = dataclasses.replace(base, **change)
            misses = [q for q in queries if not found(engine, q)]
            results[name] = {"found": len(queries) - len(misses), "missed": len(misses), "examples": misses[:8]}
            print(f"{name:>40}: {len(queries) - len(misses)}/{len(queries)} found", flush=True)
    out = {"benchmark": "known_item", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "catalog": "bundled demo", "queries": len(queries), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
