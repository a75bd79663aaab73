"""The handoff model's fitting and its cross-validation by document (retrieval/policy_eval.py)."""

from __future__ import annotations

import pytest

from retrieval.catalog import CatalogError
from retrieval.policy_eval import HandoffSample, PolicyQuestion, cross_validated_handoffs, fit_handoff


def _sample(doc: str, i: int, answerable: bool, meaning: float, margin: float, unknown: float) -> HandoffSample:
    q = PolicyQuestion(f"q{i}", "en", doc, "Returns" if answerable else None, "tune", i + 2)
    return HandoffSample(q, "Returns", (meaning, margin, unknown))


def _samples() -> list[HandoffSample]:
    out = []
    for i in range(40):
        doc = "a.md" if i % 2 else "b.md"
        # answerable: close in meaning, ahead of other sections, words the document uses; the others not
        if i % 4:
            out.append(_sample(doc, i, True, 0.5 + 0.01 * (i % 7), 0.2, 0.1 * (i % 3)))
        else:
            out.append(_sample(doc, i, False, 0.2 + 0.01 * (i % 5), 0.02, 0.8))
    return out


def test_the_fitted_model_hands_over_the_questions_no_section_answers() -> None:
    samples = _samples()
    model = fit_handoff(samples)
    assert model.w_meaning < 0 and model.w_margin < 0 and model.w_unknown > 0
    decisions = [model.chance(*s.features) >= model.threshold for s in samples]
    assert all(s.right(d) for s, d in zip(samples, decisions, strict=True))
    # a question close in meaning to a section the document's words cover is answered
    assert model.chance(0.6, 0.3, 0.0) < model.threshold < model.chance(0.15, 0.0, 1.0)


def test_each_document_is_decided_by_a_model_fitted_on_the_others() -> None:
    samples = _samples()
    models = cross_validated_handoffs(samples)
    assert set(models) == {"a.md", "b.md"}
    assert models["a.md"] == fit_handoff([s for s in samples if s.question.document == "b.md"])
    with pytest.raises(CatalogError, match="at least two documents"):
        cross_validated_handoffs([s for s in samples if s.question.document == "a.md"])
