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
from retrieval.policy import Handoff, PolicyIndex

__all__ = ["HandoffSample", "PolicyQuestion", "PolicyResult", "best_section_baseline", "cross_validated_handoffs",
           "evaluate_policy", "fit_handoff", "handoff_samples", "load_policy_questions"]

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


@dataclass(frozen=True)
class HandoffSample:
    """What the handoff model reads of one question: its best section and the features of its hits."""

    question: PolicyQuestion
    top: str
    features: tuple[float, float, float]  # Handoff.features: meaning, margin, unknown

    def right(self, hands_over: bool) -> bool:
        """Whether that decision is right: a person for a question no section answers, else the right section."""
        return hands_over if self.question.section is None else (not hands_over and self.top == self.question.section)


def handoff_samples(questions: Sequence[PolicyQuestion], docs_dir: Path,
                    encoders: Mapping[str, Encoder]) -> list[HandoffSample]:
    """Each question asked of its document (indexed on its own), as the handoff model sees it."""
    out: list[HandoffSample] = []
    indexes: dict[str, PolicyIndex] = {}
    for q in questions:
        if q.document not in indexes:
            path = docs_dir / q.document
            if not path.is_file():
                raise CatalogError(f"Document {q.document} (asked of on line {q.line}) is not in {docs_dir}.")
            indexes[q.document] = PolicyIndex.from_path(path, encoders)
        index = indexes[q.document]
        hits = index.search(q.question, k=len(index.passages), language=q.language)
        out.append(HandoffSample(q, hits[0].passage.section, Handoff.features(hits, q.language)))
    return out


def fit_handoff(samples: Sequence[HandoffSample], c: float = 1.0) -> Handoff:
    """The logistic model of "no section answers" (L2-penalised with strength ``1/c``, the intercept free,
    fitted by Newton's method), with the threshold that makes the most decisions right on ``samples``."""
    x = np.asarray([s.features for s in samples], dtype=np.float64)
    y = np.asarray([s.question.section is None for s in samples], dtype=np.float64)
    x1 = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(x1.shape[1])
    reg = np.full(x1.shape[1], 1.0 / c)
    reg[-1] = 0.0
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-x1 @ w))
        grad = x1.T @ (p - y) + reg * w
        hess = (x1 * (p * (1 - p))[:, None]).T @ x1 + np.diag(reg) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    w_meaning, w_margin, w_unknown, bias = (round(float(v), 3) for v in w)
    model = Handoff(w_meaning, w_margin, w_unknown, bias)
    chances = [model.chance(*s.features) for s in samples]
    # the most right decisions; among equals the highest threshold (fewest handoffs)
    best = max((round(float(t), 2) for t in np.linspace(0.05, 0.95, 91)),
               key=lambda t: (sum(s.right(ch >= t) for s, ch in zip(samples, chances, strict=True)), t))
    return Handoff(model.w_meaning, model.w_margin, model.w_unknown, model.bias, best)


def cross_validated_handoffs(samples: Sequence[HandoffSample]) -> dict[str, Handoff]:
    """For each document, the handoff model fitted on the other documents' questions only."""
    docs = sorted({s.question.document for s in samples})
    if len(docs) < 2:
        raise CatalogError("Cross-validating the handoff needs questions of at least two documents.")
    return {d: fit_handoff([s for s in samples if s.question.document != d]) for d in docs}

