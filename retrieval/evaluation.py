"""Relevance evaluation: graded judgments in the CrowdFlower protocol, and category precision on needs.

Graded judgments (see ../shared/eval/README.md and docs/search.md): every distinct product in the
judgments file becomes a catalog row (title + description with HTML stripped). Each query retrieves its
top 10 from the WHOLE catalog; NDCG@10 uses gain = median_relevance - 1, unjudged products gain 0, and
the ideal DCG comes from that query's judged products. Recall@10 counts the query's grade-4 products
found in the top 10. Grades are read only to score, never to build or tune the index.

Needs (``retrieval/data/demo_needs.csv``): everyday requests, each with the categories of the products
that would answer it. Top-3 category precision is the share of the top 3 results filed under one of
them (an empty slot counts as a miss), averaged over requests; it asks "is the right kind of product
first", which graded judgments of a few products per query cannot say for a whole catalog.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.catalog import CatalogError, Product, strip_html

__all__ = [
    "Judgments",
    "Need",
    "NeedOutcome",
    "NeedsResult",
    "category_matches",
    "dcg",
    "evaluate_needs",
    "evaluate_run",
    "load_judgments",
    "load_needs",
    "ndcg_at_k",
    "recall_at_k",
]

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
    return hashlib.sha1(f"{title}\x00{description}".encode(), usedforsecurity=False).hexdigest()[:16]  # a key


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


# ------------------------------------------------------------------------------------ needs: category precision

NEED_LANGUAGES = ("en", "zh")
NEED_SPLITS = ("tune", "heldout", "final")
TOP_K_NEEDS = 3


@dataclass(frozen=True)
class Need:
    """One everyday request and the categories whose products would answer it."""

    query: str
    language: str  # "en" or "zh"
    categories: tuple[str, ...]  # paths ("Shoes > Running"), top levels ("Toys") or leaf names ("Running")
    split: str  # "tune" (may be used to choose settings), "heldout" or "final" (never; "final" is read once, at the end)


def _levels(path: str | Sequence[str]) -> tuple[str, ...]:
    parts = re.split(r"[>/]", path) if isinstance(path, str) else path
    return tuple(x.strip().casefold() for x in parts if x.strip())


def category_matches(category: Sequence[str], accepted: Iterable[str]) -> bool:
    """Whether a product filed under ``category`` (its levels, top first) is of an accepted kind.

    An accepted entry matches when its levels are the first levels of the product's path ("Shoes" and
    "Shoes > Running" both match "Shoes > Running"), or when it is one name equal to the path's last
    level ("Running"); case does not matter.
    """
    levels = _levels(category)
    if not levels:
        return False
    for entry in accepted:
        want = _levels(entry)
        if want and (levels[: len(want)] == want or (len(want) == 1 and levels[-1] == want[0])):
            return True
    return False


def load_needs(path: str | Path, catalog: Sequence[Product] | None = None) -> list[Need]:
    """Read a needs file (columns query, language, categories, split; categories separated by ``|``).

    With ``catalog``, every accepted category must name products of it, so that a typo cannot make a
    request impossible to answer.
    """
    p = Path(path)
    if not p.is_file():
        raise CatalogError(f"Needs file {p} does not exist; pass a CSV with columns query, language, categories, split.")
    needs: list[Need] = []
    paths = {prod.category for prod in catalog} if catalog is not None else set()
    with p.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not {"query", "language", "categories", "split"} <= set(reader.fieldnames or ()):
            raise CatalogError(f"Needs file {p} needs the columns query, language, categories, split.")
        for line, row in enumerate(reader, start=2):
            query = (row["query"] or "").strip()
            language = (row["language"] or "").strip().lower()
            split = (row["split"] or "").strip().lower()
            cats = tuple(c.strip() for c in (row["categories"] or "").split("|") if c.strip())
            if not query or not cats:
                raise CatalogError(f"Needs file {p}, line {line}: a request needs a query and at least one category.")
            if language not in NEED_LANGUAGES or split not in NEED_SPLITS:
                raise CatalogError(
                    f"Needs file {p}, line {line}: language must be one of {', '.join(NEED_LANGUAGES)} "
                    f"and split one of {', '.join(NEED_SPLITS)}."
                )
            if catalog is not None:
                for c in cats:
                    if not any(category_matches(path, [c]) for path in paths):
                        raise CatalogError(f"Needs file {p}, line {line}: no product of the catalog is filed under '{c}'.")
            needs.append(Need(query, language, cats, split))
    if not needs:
        raise CatalogError(f"Needs file {p} holds no request.")
    return needs


@dataclass(frozen=True)
class NeedOutcome:
    need: Need
    top: tuple[Product, ...]  # what came back first (at most TOP_K_NEEDS)
    precision: float
    ms: float


@dataclass
class NeedsResult:
    outcomes: list[NeedOutcome]
    k: int = TOP_K_NEEDS

    @staticmethod
    def _summary(rows: Sequence[NeedOutcome]) -> dict[str, float | int]:
        return {
            f"top{TOP_K_NEEDS}_precision": round(float(np.mean([o.precision for o in rows])), 4) if rows else 0.0,
            "requests": len(rows),
            "missed": sum(1 for o in rows if o.precision == 0.0),
        }

    @property
    def precision(self) -> float:
        return float(np.mean([o.precision for o in self.outcomes])) if self.outcomes else 0.0

    def part(self, language: str | None = None, split: str | None = None) -> list[NeedOutcome]:
        return [
            o for o in self.outcomes
            if (language is None or o.need.language == language) and (split is None or o.need.split == split)
        ]

    def misses(self) -> list[NeedOutcome]:
        """The requests whose top results hold no product of the kind asked for."""
        return [o for o in self.outcomes if o.precision == 0.0]

    def as_dict(self) -> dict[str, Any]:
        langs = [x for x in NEED_LANGUAGES if self.part(language=x)]
        splits = [x for x in NEED_SPLITS if self.part(split=x)]
        times = np.asarray([o.ms for o in self.outcomes]) if self.outcomes else np.zeros(1)
        return {
            **self._summary(self.outcomes),
            "by_language": {x: self._summary(self.part(language=x)) for x in langs},
            "by_split": {x: self._summary(self.part(split=x)) for x in splits},
            "by_split_language": {
                s: {x: self._summary(self.part(x, s)) for x in langs if self.part(x, s)} for s in splits
            },
            "p50_ms": round(float(np.percentile(times, 50)), 2),
            "missed_queries": [o.need.query for o in self.misses()],
        }


def evaluate_needs(
    needs: Sequence[Need],
    search: Callable[[str], Sequence[str]],
    catalog: Sequence[Product],
    *,
    k: int = TOP_K_NEEDS,
) -> NeedsResult:
    """Run ``search`` (the shopper's text -> ranked skus) for every request; score its top ``k`` by category.

    Precision is matching results / ``k``: a search that returns fewer than ``k`` products is charged for
    the empty slots (every request of the packaged file has at least ``k`` products of its kind).
    """
    by_sku = {p.sku: p for p in catalog}
    outcomes: list[NeedOutcome] = []
    for need in needs:
        start = time.perf_counter()
        skus = list(search(need.query))
        ms = (time.perf_counter() - start) * 1000.0
        top = tuple(by_sku[s] for s in skus[:k] if s in by_sku)
        hits = sum(1 for prod in top if category_matches(prod.category, need.categories))
        outcomes.append(NeedOutcome(need, top, hits / k, ms))
    return NeedsResult(outcomes, k)
