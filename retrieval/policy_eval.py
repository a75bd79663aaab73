"""Customer-service answers measured: does the section that answers a question come back, and does a question
that no section answers get a person?

A questions file (CSV: ``question,language,document,section,split``) names, for each question, the policy
document it is asked of and the exact heading of the section that answers it, or ``NONE`` when no section
does (the right reply is then a handoff). Splits are by document (``tune`` documents may be used to choose
settings, the others never). Each document is indexed on its own, as one shop's policy.

The baseline, run beside every measurement: the single section whose text (heading and body) is nearest
the question by the multilingual encoder's cosine, with no intents, rules or threshold (it never hands
over, so it is always wrong on ``NONE``).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.catalog import CatalogError
from retrieval.encoders import Encoder
from retrieval.policy import PolicyIndex

__all__ = ["PolicyQuestion", "PolicyResult", "best_section_baseline", "evaluate_policy", "load_policy_questions"]

NONE = "NONE"
Answerer = Callable[[PolicyIndex, "PolicyQuestion"], "str | None"]


@dataclass(frozen=True)
class PolicyQuestion:
    question: str
    language: str
    document: str
    section: str | None  # None: no section answers it (a handoff is right)
    split: str
    line: int


def load_policy_questions(path: str | Path) -> list[PolicyQuestion]:
    """The questions of a CSV file; a malformed row is reported by its line."""
    p = Path(path)
    if not p.is_file():
        raise CatalogError(f"Questions file {p} does not exist.")
    out: list[PolicyQuestion] = []
    with p.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"question", "document", "section"} - set(reader.fieldnames or ())
        if missing:
            raise CatalogError(f"Questions file {p} lacks the column(s) {', '.join(sorted(missing))}.")
        for line, row in enumerate(reader, start=2):
            q, doc, sec = (row.get("question") or "").strip(), (row.get("document") or "").strip(), (row.get("section") or "").strip()
            if not q or not doc or not sec:
                raise CatalogError(f"Questions file {p}, line {line}: question, document and section are all needed.")
            out.append(PolicyQuestion(q, (row.get("language") or "en").strip() or "en", doc,
                                      None if sec == NONE else sec, (row.get("split") or "all").strip() or "all", line))
    if not out:
        raise CatalogError(f"Questions file {p} holds no question.")
    return out


def best_section_baseline(index: PolicyIndex, encoder: Encoder) -> Callable[[str], str]:
    """The plain retriever: the section nearest the question (heading + body, one vector each)."""
    names = index.sections()
    texts = [name + "\n" + "\n".join(p.text for p in index.section(name)) for name in names]
    vectors = encoder.encode(texts, kind="passage")

    def best(question: str) -> str:
        qv = encoder.encode([question], kind="query")[0]
        return names[int(np.argmax(vectors @ qv))]

    return best


@dataclass
class PolicyResult:
    rows: list[tuple[PolicyQuestion, str | None, str | None]] = field(default_factory=list)  # (q, system, baseline)

    @staticmethod
    def _right(q: PolicyQuestion, got: str | None) -> bool:
        return got == q.section

    def summary(self, rows: Sequence[tuple[PolicyQuestion, str | None, str | None]] | None = None) -> dict[str, Any]:
        rows = self.rows if rows is None else rows
        n = len(rows)
        if not n:
            return {"questions": 0}
        answerable = [r for r in rows if r[0].section is not None]
        nones = [r for r in rows if r[0].section is None]
        return {
            "questions": n,
            "accuracy": round(sum(self._right(q, s) for q, s, _ in rows) / n, 4),
            "baseline": round(sum(self._right(q, b) for q, _, b in rows) / n, 4),
            "answerable": len(answerable),
            "answerable_accuracy": round(sum(self._right(q, s) for q, s, _ in answerable) / len(answerable), 4) if answerable else None,
            "baseline_answerable": round(sum(self._right(q, b) for q, _, b in answerable) / len(answerable), 4) if answerable else None,
            "unanswerable": len(nones),
            "handed_over": round(sum(s is None for _, s, _ in nones) / len(nones), 4) if nones else None,
            "false_handoffs": sum(s is None for q, s, _ in answerable),
        }

    def part(self, **where: str) -> list[tuple[PolicyQuestion, str | None, str | None]]:
        return [r for r in self.rows if all(getattr(r[0], k) == v for k, v in where.items())]

    def as_dict(self) -> dict[str, Any]:
        splits = sorted({q.split for q, _, _ in self.rows})
        langs = sorted({q.language for q, _, _ in self.rows})
        docs = sorted({q.document for q, _, _ in self.rows})
        return {
            **self.summary(),
            "by_split": {s: self.summary(self.part(split=s)) for s in splits},
            "by_language": {x: self.summary(self.part(language=x)) for x in langs},
            "by_document": {d: self.summary(self.part(document=d)) for d in docs},
            "by_split_language": {s: {x: self.summary(self.part(split=s, language=x)) for x in langs
                                      if self.part(split=s, language=x)} for s in splits},
        }

    def misses(self) -> list[tuple[PolicyQuestion, str | None]]:
        return [(q, s) for q, s, _ in self.rows if not self._right(q, s)]


def evaluate_policy(
    questions: Sequence[PolicyQuestion],
    docs_dir: Path,
    encoders: Mapping[str, Encoder],
    answer: Answerer,
) -> PolicyResult:
    """Index each document once, ask its questions through ``answer`` (None = handed over) and the
    baseline."""
    result = PolicyResult()
    by_doc: dict[str, list[PolicyQuestion]] = {}
    for q in questions:
        by_doc.setdefault(q.document, []).append(q)
    baseline_encoder = encoders.get("multi") or next(iter(encoders.values()))
    for doc, qs in by_doc.items():
        path = docs_dir / doc
        if not path.is_file():
            raise CatalogError(f"Document {doc} (asked of on line {qs[0].line}) is not in {docs_dir}.")
        index = PolicyIndex.from_path(path, encoders)
        base = best_section_baseline(index, baseline_encoder)
        for q in qs:
            result.rows.append((q, answer(index, q), base(q.question)))
    return result
