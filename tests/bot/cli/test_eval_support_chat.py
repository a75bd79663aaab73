"""`shopbot eval support --chat`: how a chat reply is scored."""

from __future__ import annotations


def test_the_chat_evaluation_reads_the_section_a_reply_cites() -> None:
    """`eval support --chat` scores a chat reply by the source line it ends with (retrieval.policy.source_line)."""
    from bot.cli.eval import _SOURCE
    from retrieval.policy import source_line

    for label, lang in [("Returns", "en"), ("Can I return a TV?", "en"), ("退货", "zh")]:
        m = _SOURCE.search(f"You can send it back.\n{source_line(label, lang)}")
        assert m is not None and (m.group("faq") or m.group("section") or m.group("zh")) == label
