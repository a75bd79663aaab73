"""`shopbot eval support` end to end on two small documents (hashing encoders: no models load)."""

from __future__ import annotations

import json
from pathlib import Path

DOC_A = """# Returns

You can return anything within 30 days of delivery for a full refund.

# Shipping

We ship to every US state. Delivery takes 3 to 5 business days and is free over $50.
"""
DOC_B = """**How do I pay?**
We take Visa, Mastercard and PayPal.

**When do you open?**
Our store opens at 9 am, Monday to Saturday.
"""
QUESTIONS = """question,language,document,section,split
can I return my jacket,en,a.md,Returns,tune
how long is delivery,en,a.md,Shipping,tune
do you sell gift cards,en,a.md,NONE,tune
can I pay with paypal,en,b.md,How do I pay?,heldout
what time do you open,en,b.md,When do you open?,heldout
is there parking at the store,en,b.md,NONE,heldout
"""


def _files(tmp_path: Path) -> tuple[Path, Path]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(DOC_A, encoding="utf-8")
    (docs / "b.md").write_text(DOC_B, encoding="utf-8")
    questions = tmp_path / "questions.csv"
    questions.write_text(QUESTIONS, encoding="utf-8")
    return docs, questions


def test_support_prints_the_share_right_beside_the_plain_retriever(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    docs, questions = _files(tmp_path)
    r = run("eval", "support", "--docs", str(docs), "--questions", str(questions), "--json")
    assert r.exit_code == 0, r.output
    first = r.output.splitlines()[0]
    assert first.strip().startswith("all:") and "baseline" in first and "of 2 unanswerable" in first
    d = json.loads(r.output.strip().splitlines()[-1])
    assert d["questions"] == 6 and set(d["by_split"]) == {"tune", "heldout"}


def test_cv_decides_each_document_by_the_handoff_fitted_on_the_other(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    docs, questions = _files(tmp_path)
    r = run("eval", "support", "--docs", str(docs), "--questions", str(questions), "--cv")
    assert r.exit_code == 0, r.output
    assert r.output.startswith("Each document's questions decided by the handoff fitted on the other documents:")
    assert "Fitted on all 6 questions: Handoff(w_meaning=" in r.output


def test_a_missing_document_is_one_sentence(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    docs, questions = _files(tmp_path)
    (docs / "b.md").unlink()
    r = run("eval", "support", "--docs", str(docs), "--questions", str(questions), "--cv")
    assert r.exit_code != 0 and "Document b.md (asked of on line 5) is not in" in r.output
    assert "Traceback" not in r.output
