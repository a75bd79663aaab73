"""Relevance evaluation in the CrowdFlower protocol (see ../shared/eval/README.md and docs/search.md).

Protocol: every distinct product in the judgments file becomes a catalog row (title + description with
HTML stripped). Each query retrieves its top 10 from the WHOLE catalog; NDCG@10 uses gain =
median_relevance - 1, unjudged products gain 0, and the ideal DCG comes from that query's judged
products. Recall@10 counts the query's grade-4 products found in the top 10. Grades are read only to
score, never to build or tune the index.
"""

from __future__ import annotations

import csv
import hashlib
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retrieval.catalog import CatalogError, Product, strip_html

__all__ = ["Judgments", "dcg", "evaluate_run", "load_judgments", "ndcg_at_k", "recall_at_k"]

GRADE_MAX = 4


@dataclass
class Judgments:
    products: list[Product]
    # query -> {sku: median_relevance 1..4}
    grades: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def queries(self) -> list[str]:
        return list(self.grades)


def _product_key(title: str, description: str) -> str:
    return hashlib.sha1(f"{title}\x00{description}".encode()).hexdigest()[:16]


def load_judgments(path: str | Path, catalog: Sequence[Product] | None = None) -> Judgments:
    """Read judgments in one of two layouts.

    - CrowdFlower (query, product_title, product_description, median_relevance): the catalog is the
      file's distinct products.
    - Catalog-referencing (query, sku, relevance 1-4): grades for products of ``catalog`` (for example
      the demo catalog and ``retrieval/data/demo_judgments.csv``); the catalog is indexed whole.
    """
    p = Path(path)
    if not p.is_file():
        raise CatalogError(f"Judgments file {p} does not exist; pass a CrowdFlower-format CSV.")
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    products: dict[str, Product] = {}
    grades: dict[str, dict[str, int]] = {}
    with p.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = set(reader.fieldnames or ())
        if {"query", "sku", "relevance"} <= fields:
            if catalog is None:
                raise CatalogError(f"Judgments file {p} refers to SKUs; pass the catalog it judges.")
            known = {prod.sku for prod in catalog}
            for row in reader:
                sku, q = row["sku"].strip(), row["query"].strip()
                if sku in known and q:
                    grades.setdefault(q, {})[sku] = int(float(row["relevance"]))
            return Judgments(list(catalog), grades)
        need = {"query", "product_title", "median_relevance"}
        if not need <= fields:
            raise CatalogError(
                f"Judgments file {p} needs the columns query, product_title, product_description, median_relevance "
                "(or query, sku, relevance)."
            )
        for row in reader:
            title = strip_html(row["product_title"] or "")
            desc = strip_html(row.get("product_description") or "")
            try:
                grade = int(float(row["median_relevance"]))
            except ValueError:
                continue
            if not title or not row["query"].strip():
                continue
            sku = _product_key(title, desc)
            if sku not in products:
                products[sku] = Product(sku=sku, title=title, description=desc, price=0.0, stock=1)
            q = row["query"].strip()
            grades.setdefault(q, {})[sku] = max(grade, grades.get(q, {}).get(sku, 0))
    return Judgments(list(products.values()), grades)


def dcg(gains: Sequence[float]) -> float:
    """Linear-gain DCG: the protocol defines the gain itself as median_relevance - 1."""
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg_at_k(ranked: Sequence[str], grades: Mapping[str, int], k: int = 10) -> float:
    """NDCG@k with gain = grade - 1, unjudged = 0, ideal from the judged products."""
    gains = [max(grades.get(s, 1) - 1, 0) for s in ranked[:k]]
    ideal = sorted((max(g - 1, 0) for g in grades.values()), reverse=True)[:k]
    best = dcg(ideal)
    return dcg(gains) / best if best > 0 else 0.0


def recall_at_k(ranked: Sequence[str], grades: Mapping[str, int], k: int = 10, grade: int = GRADE_MAX) -> float | None:
    relevant = {s for s, g in grades.items() if g >= grade}
    if not relevant:
        return None
    return len(relevant & set(ranked[:k])) / len(relevant)


@dataclass
class RunResult:
    ndcg: float
    recall: float
    p50_ms: float
    p99_ms: float
    queries: int
    products: int
    per_query: dict[str, float]

    def as_dict(self) -> dict[str, float | int]:
        return {
            "ndcg@10": round(self.ndcg, 4),
            "recall@10": round(self.recall, 4),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "queries": self.queries,
            "products": self.products,
        }


def evaluate_run(
    judgments: Judgments,
    search: Callable[[str], Sequence[str]],
    *,
    k: int = 10,
    progress: bool = False,
) -> RunResult:
    """Run ``search`` (query -> ranked skus) over every query and score it."""
    from tqdm import tqdm  # ~45 ms: only for a run; model.training imports this module for dcg

    ndcgs: dict[str, float] = {}
    recalls: list[float] = []
    times: list[float] = []
    for q in tqdm(judgments.queries, desc="queries", disable=not progress, unit="q"):
        start = time.perf_counter()
        ranked = list(search(q))[:k]
        times.append((time.perf_counter() - start) * 1000.0)
        g = judgments.grades[q]
        ndcgs[q] = ndcg_at_k(ranked, g, k)
        r = recall_at_k(ranked, g, k)
        if r is not None:
            recalls.append(r)
    t = np.asarray(times) if times else np.zeros(1)
    return RunResult(
        ndcg=float(np.mean(list(ndcgs.values()))) if ndcgs else 0.0,
        recall=float(np.mean(recalls)) if recalls else 0.0,
        p50_ms=float(np.percentile(t, 50)),
        p99_ms=float(np.percentile(t, 99)),
        queries=len(ndcgs),
        products=len(judgments.products),
        per_query=ndcgs,
    )
