"""The Flipkart description protocol (../shared/eval/README.md): generate from structured fields only,
then measure attribute coverage, unsupported claims, ROUGE-L against the human text and time.

Definitions (the figures in docs/descriptions.md use exactly these):

- **Input** of a row: product_name, product_category_tree, brand, retail_price, discounted_price and
  product_specifications. The human ``description`` is read only to score ROUGE-L.
- **Specification values that count**: every entry of product_specifications that has a key, once
  per (key, value), except placeholders ("NA", "N/A", "-", "None"). Entries without a key are
  free-text notes of the source ("One Pair Of Shoes") and are not counted.
- **Attribute coverage** of a text: the share of those values it mentions (`model.writing.describe.covered`:
  remarks in brackets or after " - " dropped, content words and numbers all present for values of up
  to three words, three quarters of them for longer ones; "500ml" == "500 ml"; plurals folded; a
  yes/no value counts when its key is mentioned). Averaged over rows; a row with no counted value
  scores 1. Reported for the final description and for its prose alone (the text before the
  code-rendered "Details:" line, or the template's first sentence).
- **Unsupported claims**: the claim verifier (`model.writing.grounding.verify`) on the final text against the
  row's whole input (prices included, as INR), with every brand of the file as a known brand, plus
  every number in the text that the input does not contain (`model.writing.describe.stray_numbers`).
  Averaged per description.
- **ROUGE-L**: F1 of the longest common subsequence of lower-cased word tokens (`rouge_l`), final
  text against the human description.
- **Seconds per description**: wall time of `DescriptionWriter.write`, retries included.
"""

from __future__ import annotations

import csv
import re
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.writing.describe import Attribute, DescriptionWriter, check_prose, coverage

# the marketplace export's cells are read as `shopbot reindex` reads them
from retrieval.formats import parse_category_tree, parse_specifications

__all__ = [
    "DescribeReport",
    "FlipkartRow",
    "evaluate_describe",
    "lcs_length",
    "parse_category_tree",
    "parse_specifications",
    "read_flipkart",
    "rouge_l",
    "rouge_tokens",
]

_PLACEHOLDER = {"", "na", "n/a", "n.a.", "none", "nil", "null", "-", "--", "not applicable", "nan"}


# ------------------------------------------------------------------------------------------ parsing


def _price(raw: str) -> float | None:
    try:
        value = float(str(raw).replace(",", "").strip())
    except ValueError:
        return None
    return value if value == value and value >= 0 else None


@dataclass
class FlipkartRow:
    """One evaluation row: the generation input as a catalog-shaped record, what is counted, the reference."""

    record: dict[str, Any]
    attributes: list[Attribute]
    reference: str
    extras: list[str] = field(default_factory=list)


def _row(rec: Mapping[str, str], index: int) -> FlipkartRow:
    name = re.sub(r"\s+", " ", rec.get("product_name") or "").strip()
    specs = parse_specifications(rec.get("product_specifications") or "")
    attributes: dict[str, list[str]] = {}
    counted: list[Attribute] = []
    seen: set[tuple[str, str]] = set()
    for key, value in specs:
        if not key or value.lower() in _PLACEHOLDER:
            continue
        ident = (key.lower(), value.lower())
        if ident in seen:
            continue
        seen.add(ident)
        attributes.setdefault(key, []).append(value)
        counted.append(Attribute(key, value))
    price = _price(rec.get("discounted_price") or "") or _price(rec.get("retail_price") or "")
    retail = _price(rec.get("retail_price") or "")
    record: dict[str, Any] = {
        "sku": (rec.get("pid") or rec.get("uniq_id") or f"row-{index}").strip(),
        "title": name,
        "brand": (rec.get("brand") or "").strip(),
        "category": parse_category_tree(rec.get("product_category_tree") or "", name),
        "attributes": attributes,
        "price": price,
        "currency": "INR",
    }
    extras = [f"Retail price: Rs. {retail:g} (INR)"] if retail is not None and retail != price else []
    return FlipkartRow(record, counted, (rec.get("description") or "").strip(), extras)


def read_flipkart(path: str | Path, limit: int | None = None) -> list[FlipkartRow]:
    """The rows of a Flipkart CSV (the first ``limit``); raises ValueError naming a missing column."""
    with Path(path).open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        need = {"product_name", "product_specifications", "description"}
        missing = need - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path} has no column {', '.join(sorted(missing))}; pass a Flipkart products CSV.")
        rows: list[FlipkartRow] = []
        for i, rec in enumerate(reader):
            if limit is not None and len(rows) >= limit:
                break
            rows.append(_row(rec, i))
    return rows


# -------------------------------------------------------------------------------------------- ROUGE


def rouge_tokens(text: str) -> list[str]:
    """Lower-cased word and number tokens; each CJK character is a token."""
    return re.findall(r"[a-z0-9]+|[\u4e00-\u9fff]", text.lower())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (dynamic programming, one row of memory)."""
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 (precision and recall of the LCS weighted equally); 0 when either text is empty."""
    c, r = rouge_tokens(candidate), rouge_tokens(reference)
    if not c or not r:
        return 0.0
    lcs = lcs_length(c, r)
    if lcs == 0:
        return 0.0
    p, rec = lcs / len(c), lcs / len(r)
    return 2 * p * rec / (p + rec)


# ------------------------------------------------------------------------------------------ running


@dataclass
class DescribeReport:
    n: int
    attribute_coverage: float
    prose_coverage: float
    unsupported_claims_per_description: float
    rouge_l: float
    seconds_per_description: float
    sources: dict[str, int]
    draft_unsupported: float = 0.0
    drafts_rejected: float = 0.0
    prose_coverage_model: float | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "attribute_coverage": round(self.attribute_coverage, 4),
            "prose_attribute_coverage": round(self.prose_coverage, 4),
            "unsupported_claims_per_description": round(self.unsupported_claims_per_description, 4),
            "rouge_l": round(self.rouge_l, 4),
            "seconds_per_description": round(self.seconds_per_description, 2),
            "n": self.n,
            "sources": self.sources,
            "prose_attribute_coverage_model_written": None if self.prose_coverage_model is None
            else round(self.prose_coverage_model, 4),
            "first_draft_unsupported_claims_per_description": round(self.draft_unsupported, 4),
            "first_drafts_rejected": round(self.drafts_rejected, 4),
        }


def _prose_part(text: str, details: str) -> str:
    return text[: len(text) - len(details)].rstrip() if details and text.endswith(details) else text


def evaluate_describe(
    rows: Sequence[FlipkartRow],
    writer: DescriptionWriter,
    *,
    length: str = "medium",
    tone: str = "friendly",
    on_row: Callable[[int, dict[str, Any]], None] | None = None,
    known_brands: Iterable[str] | None = None,
) -> DescribeReport:
    """Describe every row (English) and score it; ``on_row(i, row_report)`` after each, for progress.

    ``known_brands``: every brand of the file (default: those of ``rows``). They are matched only when
    written capitalised, because Flipkart's brands are lowercase and often plain words ("slim", "pearl",
    "regular"); the writer checks its prose against the same list.
    """
    brands = known_brands if known_brands is not None else {r.record["brand"] for r in rows if r.record.get("brand")}
    known = sorted({b.title() for b in brands if b})
    writer.known_brands = known
    per: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        d = writer.write_sync(row.record, "en", length, tone)
        cov, missing = coverage(d.text, row.attributes)
        prose_cov, _ = coverage(_prose_part(d.text, d.details), row.attributes)
        verdict = check_prose(d.text, row.record, known_brands=known, extras=row.extras)
        item = {
            "sku": row.record["sku"], "source": d.source, "coverage": cov, "prose_coverage": prose_cov,
            "attributes": len(row.attributes), "missing": [f"{a.name}: {a.value}" for a in missing],
            "unsupported": [c.text for c in verdict.unsupported], "rouge_l": rouge_l(d.text, row.reference),
            "seconds": d.seconds, "text": d.text, "checks": d.checks,
        }
        per.append(item)
        if on_row is not None:
            on_row(i, item)
    return _report(per)


def _report(per: Sequence[dict[str, Any]]) -> DescribeReport:
    n = len(per)

    def mean(key: str) -> float:
        return statistics.fmean(float(r[key]) for r in per) if per else 0.0

    sources: dict[str, int] = {}
    for r in per:
        sources[r["source"]] = sources.get(r["source"], 0) + 1
    # what the model's first draft got wrong, before the guard: the honest picture of the model itself
    drafts = [(r.get("checks") or {}).get("attempts", [{}])[0] for r in per]
    draft_bad = [len(a.get("unsupported") or []) for a in drafts]
    rejected = [bool(a.get("unsupported") or a.get("problems")) for a in drafts]
    model_rows = [float(r["prose_coverage"]) for r in per if r["source"] != "template"]
    return DescribeReport(
        n=n, attribute_coverage=mean("coverage"), prose_coverage=mean("prose_coverage"),
        unsupported_claims_per_description=(sum(len(r["unsupported"]) for r in per) / n) if n else 0.0,
        rouge_l=mean("rouge_l"), seconds_per_description=mean("seconds"), sources=sources,
        draft_unsupported=sum(draft_bad) / n if n else 0.0, drafts_rejected=sum(rejected) / n if n else 0.0,
        prose_coverage_model=statistics.fmean(model_rows) if model_rows else None, rows=list(per))
