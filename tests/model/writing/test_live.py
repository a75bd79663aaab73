"""Streaming verified text: where sentences end, what counts as readable, and what a shopper keeps
when the model stops half way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence

import pytest

from model.llm.base import LLMTimeout
from model.writing.grounding import Facts, verify
from model.writing.live import readable, sentence_end, stream_checked

FACTS = Facts(passages=("Standard shipping takes 3-5 business days and costs $4.99; orders over $50 ship free.",))


class Pieces:
    name, version = "pieces", "1"

    def __init__(self, pieces: list[str], fail_after: int | None = None) -> None:
        self.pieces, self.fail_after, self.closed = pieces, fail_after, False

    async def stream(self, messages: Sequence[Mapping[str, str]], *, max_tokens: int = 256, temperature: float = 0.2,
                     stop: Sequence[str] | None = None, timeout: float | None = None) -> AsyncIterator[str]:
        try:
            for i, p in enumerate(self.pieces):
                if self.fail_after is not None and i == self.fail_after:
                    raise LLMTimeout("no more within the budget")
                yield p
        finally:
            self.closed = True

    async def complete(self, messages: Sequence[Mapping[str, str]], **kw: object) -> str:
        return "".join(self.pieces)


def run(llm: Pieces, shown: list[str]):  # type: ignore[no-untyped-def]
    return asyncio.run(stream_checked(llm, lambda fb: [{"role": "user", "content": "q"}],
                                      lambda t: verify(t, FACTS), shown.append, fallback="TEMPLATE", timeout=5))


@pytest.mark.parametrize(("text", "end"), [
    ("It costs $4.99. More", 15), ("It costs $4.99", 0), ("3.5 days", 0), ("一共三天。还有", 5), ("Done!\nNext", 6)])
def test_sentences_end_at_stops_but_not_inside_prices(text: str, end: int) -> None:
    assert sentence_end(text) == end


def test_readable_tells_language_from_noise() -> None:
    assert readable("Orders over $50 ship free, usually in 3-5 business days.")
    assert readable("The iPhone 15 has USB-C and a 6.1-inch screen.")
    assert not readable("PayYckG co1k usluaseip a elasepho* Imew3` sx'ecklo+num PaymeL(PalK cPalnnhoKlu.3")
    assert not readable("Yes.") and not readable("")
    assert readable("标准配送需要 3-5 个工作日。", "zh") and not readable("abc def ghi", "zh")


def test_sentences_appear_one_by_one_and_the_stream_is_closed() -> None:
    shown: list[str] = []
    llm = Pieces(["Standard shipping ", "takes 3-5 business days. ", "It costs $4.99 per order", "."])
    r = run(llm, shown)
    assert shown == ["Standard shipping takes 3-5 business days.",
                     "Standard shipping takes 3-5 business days. It costs $4.99 per order."]
    assert r.source == "llm" and r.text == shown[-1] and llm.closed


def test_a_false_sentence_stops_the_model_and_is_never_shown() -> None:
    shown: list[str] = []
    llm = Pieces(["Shipping takes 3-5 business days. ", "It is free over $20. ", "Bye now friend."])
    r = run(llm, shown)
    assert all("$20" not in s for s in shown) and r.source == "fallback" and r.text == "TEMPLATE"
    assert len(r.attempts) == 2 and r.attempts[0]["ok"] is False and llm.closed


def test_on_timeout_complete_verified_sentences_stand_and_a_half_sentence_goes() -> None:
    shown: list[str] = []
    r = run(Pieces(["Shipping takes 3-5 business days. ", "It costs ", "$4.99"], fail_after=2), shown)
    assert r.text == "Shipping takes 3-5 business days." and r.source == "llm" and "timeout" in str(r.error)
    r = run(Pieces(["Shipping takes ", "3-5 days"], fail_after=1), [])
    assert r.text == "TEMPLATE" and r.source == "fallback"


def test_a_true_clause_is_shown_early_and_a_conditional_one_waits_for_its_sentence() -> None:
    shown: list[str] = []
    r = run(Pieces(["Standard shipping takes 3-5 business days, ", "and it costs $4.99. ", "Orders ship free, ",
                    "but only over $50."]), shown)
    assert shown[0] == "Standard shipping takes 3-5 business days,"
    assert "Orders ship free," not in shown  # unconditionally free is not what the policy says
    assert r.source == "llm" and r.text.endswith("Orders ship free, but only over $50.")


def test_on_timeout_a_shown_clause_without_its_sentence_is_withdrawn() -> None:
    r = run(Pieces(["Standard shipping takes 3-5 business days, ", "and it costs ", "$4"], fail_after=2), [])
    assert r.text == "TEMPLATE"


def test_denying_what_the_policy_offers_is_an_unsupported_claim() -> None:
    facts = Facts(passages=("We accept Visa, Mastercard, PayPal and Alipay. We do not offer cash on delivery.",))
    assert not verify("The shop does not accept PayPal.", facts, known_brands=["PayPal", "Visa"]).ok
    assert verify("Yes, you can pay with PayPal.", facts, known_brands=["PayPal", "Visa"]).ok


def test_a_closing_line_is_the_models_first_sentence_only() -> None:
    from model.writing.product_text import _first_sentence

    assert _first_sentence("These run small; order a size up. Also, we have socks! Buy now.") == \
        "These run small; order a size up."
    assert _first_sentence("The jacket is $49.99 today. It is blue.") == "The jacket is $49.99 today."
    assert _first_sentence("no full stop at all") == "no full stop at all"


def test_a_closing_line_that_repeats_the_prompt_is_written_again_or_left_out() -> None:
    """The 0.5B model wrote 'The customer searched for: "xiaomi redmi watch".' under a page of results."""
    from model.writing.product_text import ProductWriter

    recs = [{"sku": "W1", "title": "Xiaomi Redmi Watch 4, Silver", "brand": "Xiaomi", "price": 90.99, "stock": 3},
            {"sku": "W2", "title": "Xiaomi Redmi Watch 4, Black", "brand": "Xiaomi", "price": 89.99, "stock": 5}]
    for said in ('The customer searched for: "xiaomi redmi watch".', "You are looking for a Xiaomi watch that is black."):
        assert asyncio.run(ProductWriter(Pieces([said]), known_brands=["Xiaomi"]).summary("xiaomi redmi watch", recs)).text == ""
    good = Pieces(["Tell me which colour you prefer and I will narrow it down."])
    line = asyncio.run(ProductWriter(good, known_brands=["Xiaomi"]).summary("xiaomi redmi watch", recs)).text
    assert line == "Tell me which colour you prefer and I will narrow it down."
    # prices side by side when nobody asked about prices: the cards already show them (model/writing/relevance.py)
    prices = Pieces(["The black watch costs $89.99, the silver one $90.99."])
    assert asyncio.run(ProductWriter(prices, known_brands=["Xiaomi"]).summary("xiaomi redmi watch", recs)).text == ""
