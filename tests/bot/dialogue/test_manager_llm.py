"""The language model inside conversations: what the shopper sees when it answers well, invents
something, is slow, or is attacked. The model is a scripted double that streams word by word (and a
hostile one that obeys every injection); everything else is the real assistant: demo catalog, intent
model, demo policy, SQLite store, claim verifier."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import Assistant, build_assistant
from bot.dialogue.messages import EXAMPLES, MESSAGES
from bot.dialogue.replies import Event, Reply
from bot.settings import Settings
from bot.store.schema import Turn
from model.llm.base import LLMError, LLMTimeout
from model.writing.grounding import Facts, verify

SUITE = Path(__file__).parents[2] / "data" / "injection_suite.txt"


def hostile_messages() -> list[str]:
    lines = SUITE.read_text(encoding="utf-8").splitlines()
    return [x.strip() for x in lines if x.strip() and not x.startswith("#")]


class Scripted:
    """The LLM protocol, answering with ``respond(messages)``; streams a word at a time."""

    name = "scripted"
    version = "1"

    def __init__(self, respond: Callable[[Sequence[Mapping[str, str]]], str], delay: float = 0.0) -> None:
        self.respond = respond
        self.delay = delay
        self.calls: list[list[dict[str, str]]] = []

    async def stream(self, messages: Sequence[Mapping[str, str]], *, max_tokens: int = 256, temperature: float = 0.2,
                     stop: Sequence[str] | None = None, timeout: float | None = None) -> AsyncIterator[str]:
        self.calls.append([dict(m) for m in messages])
        text = self.respond(messages)
        t0 = time.monotonic()
        for word in re.findall(r"\S+\s*", text):
            if self.delay:
                if timeout is not None and time.monotonic() - t0 + self.delay > timeout:
                    await asyncio.sleep(max(0.0, timeout - (time.monotonic() - t0)))
                    raise LLMTimeout(f"no answer within {timeout:.1f} s")
                await asyncio.sleep(self.delay)
            yield word

    async def complete(self, messages: Sequence[Mapping[str, str]], *, max_tokens: int = 256, temperature: float = 0.2,
                       stop: Sequence[str] | None = None, timeout: float | None = None) -> str:
        return "".join([p async for p in self.stream(messages, timeout=timeout)])


def kind_of(messages: Sequence[Mapping[str, str]]) -> str:
    system = messages[0]["content"]
    if "policy passages" in system or "店铺政策" in system:
        return "support"
    if "numbered products" in system or "编号的商品" in system:
        return "summary"
    return "qa"


@pytest.fixture
def make(shared, tmp_path: Path) -> Iterator[Callable[..., Assistant]]:  # type: ignore[no-untyped-def]
    made: list[Assistant] = []

    def build(llm: Scripted, **settings: object) -> Assistant:
        engine, nlu, policy = shared
        # the scripted model stands in for a served one: its own words about products are on unless a test says
        settings = {"llm_advice": "on", **settings}
        s = Settings(data_dir=tmp_path / f"a{len(made)}", llm="auto", **settings)  # type: ignore[arg-type]
        a = build_assistant(s, engine=engine, nlu=nlu, policy=policy, llm=llm)  # type: ignore[arg-type]
        made.append(a)
        return a

    yield build
    for a in made:
        a.close()


def say(bot: Assistant, text: str, user: str = "u1") -> list[Reply]:
    return bot.handle(Event(user=user, channel="test", text=text))


def generation_of(bot: Assistant, turn_id: str | None) -> list[dict[str, object]]:
    with bot.store.engine.connect() as conn:
        raw = conn.execute(select(Turn.generation).where(Turn.id == turn_id)).scalar_one()
    return json.loads(raw or "[]")  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------ customer service


def test_a_support_answer_is_fluent_grounded_and_logged_with_its_checks(make) -> None:  # type: ignore[no-untyped-def]
    llm = Scripted(lambda m: "You can send it back within 30 days of delivery. We will refund you once it arrives.")
    bot = make(llm)
    [r] = say(bot, "how do I return shoes?")
    assert r.text.startswith("You can send it back within 30 days of delivery.")
    assert "— from our Returns policy" in r.text
    assert "Returns" in llm.calls[0][1]["content"]  # the model saw the passage it cites
    [g] = generation_of(bot, r.turn_id)
    assert g["kind"] == "support" and g["source"] == "llm" and g["checks"][0]["ok"] is True  # type: ignore[index]


def test_an_invented_fee_is_never_sent_the_model_is_told_and_rewrites(make) -> None:  # type: ignore[no-untyped-def]
    answers = iter(["Returns are accepted within 90 days and cost $1.", "You have 30 days from delivery to return it."])
    bot = make(Scripted(lambda m: next(answers)))
    [r] = say(bot, "how do I return shoes?")
    assert "90 days" not in r.text and "$1" not in r.text and "30 days" in r.text
    [g] = generation_of(bot, r.turn_id)
    assert g["source"] == "llm-retry" and g["checks"][0]["ok"] is False  # type: ignore[index]


def test_a_slow_model_still_answers_in_time_with_the_policy_itself(make) -> None:  # type: ignore[no-untyped-def]
    bot = make(Scripted(lambda m: "You have thirty days to return anything you bought from us.", delay=2.0),
               llm_timeout=0.5)
    t0 = time.monotonic()
    [r] = say(bot, "how do I return shoes?")
    assert time.monotonic() - t0 < 5  # 0.5 s budget, not the 20 s the model would take
    assert "30 days" in r.text and "— from our Returns policy" in r.text
    [g] = generation_of(bot, r.turn_id)
    assert g["source"] == "extract" and "timeout" in str(g["error"])


def test_a_dead_model_degrades_to_the_policy_text(make) -> None:  # type: ignore[no-untyped-def]
    def down(m: object) -> str:
        raise LLMError("connection refused")

    bot = make(Scripted(down))
    [r] = say(bot, "can I pay with PayPal?")
    assert "PayPal" in r.text and "— from our Payment policy" in r.text


def test_the_answer_streams_to_async_adapters_and_the_turn_is_logged_when_final(make) -> None:  # type: ignore[no-untyped-def]
    text = "You can return it within 30 days of delivery. Refunds go back to your original payment method."
    bot = make(Scripted(lambda m: text, delay=0.01))

    async def chat() -> tuple[list[str], Reply]:
        [r] = await bot.handle_async(Event(user="s1", channel="test", text="how do I return shoes?"))
        assert r.live is not None and "— from our Returns policy" in r.text  # the template until final
        seen = [t async for t in r.live.updates()]
        await bot.dialogue.drain()
        return seen, r

    seen, r = asyncio.run(chat())
    assert len(seen) >= 2 and seen[0].startswith("You can return it within 30 days of delivery.\n")
    assert seen[-1] == r.text and r.text.startswith(text)
    assert generation_of(bot, r.turn_id)[0]["source"] == "llm"


# ------------------------------------------------------------------------------------- products


def test_search_cards_come_from_the_catalog_and_a_verified_closing_line_follows(make) -> None:  # type: ignore[no-untyped-def]
    def respond(m: Sequence[Mapping[str, str]]) -> str:
        assert kind_of(m) == "summary"
        assert re.search(r"\[1\]\nname: (.+)\n(?:brand: .+\n)?price: ([\d.]+)", m[1]["content"])
        return "Tell me your size or a budget and I will narrow these down."

    bot = make(Scripted(respond))
    replies = say(bot, "red winter coat")
    assert replies[0].cards and len(replies) == 2
    assert replies[1].text == "Tell me your size or a budget and I will narrow these down."


def test_a_closing_line_that_only_repeats_the_first_card_is_not_sent(make) -> None:  # type: ignore[no-untyped-def]
    def respond(m: Sequence[Mapping[str, str]]) -> str:
        first = re.search(r"\[1\]\nname: (.+)\n(?:brand: .+\n)?price: ([\d.]+)", m[1]["content"])
        assert first is not None
        return f"The {first.group(1)} is ${first.group(2)}."

    bot = make(Scripted(respond))
    replies = say(bot, "red winter coat")
    assert len(replies) == 1 and replies[0].cards  # the card says it already
    [g] = generation_of(bot, replies[0].turn_id)
    assert g["source"] == "off_topic" and "repeats" in g["attempts"][0]["dropped"][0]["why"]  # type: ignore[index]


def test_after_asking_for_stock_a_price_comparison_from_the_model_is_not_sent(make) -> None:  # type: ignore[no-untyped-def]
    """'第一个有货吗？' got '产品1的价格低于产品2的价格。' from the 0.5B model: it answers nothing that was asked."""
    def respond(m: Sequence[Mapping[str, str]]) -> str:
        if kind_of(m) == "summary":
            return "产品1的价格低于产品2的价格。"
        stock = re.search(r"stock: (\d+) in stock", m[1]["content"])
        assert stock is not None
        return f"第一个有现货，剩余 {stock.group(1)} 件。产品1的价格低于产品2的价格。"

    bot = make(Scripted(respond))
    say(bot, "红色冬季外套", user="z1")
    # a closing line after "in stock only" that compares prices: the cards (all in stock) stand alone
    refined = say(bot, "有货吗？", user="z1")
    assert refined[0].cards and all(c.stock > 0 for c in refined[0].cards)
    assert not any("产品2" in r.text for r in refined)
    # a question about the first one's stock: the catalog's details and the model's stock sentence, nothing else
    replies = say(bot, "第一个有现货吗？", user="z1")
    stock = replies[0].cards[0].stock
    assert f"有货（剩余 {stock} 件）" in replies[0].text
    assert replies[-1].text == f"第一个有现货，剩余 {stock} 件。"
    assert not any("产品2" in r.text for r in replies)


def test_in_english_a_comparison_nobody_asked_for_is_dropped_and_the_answer_kept(make) -> None:  # type: ignore[no-untyped-def]
    def respond(m: Sequence[Mapping[str, str]]) -> str:
        if kind_of(m) == "summary":
            return ""
        return "Yes, it is a quilted coat with a hood, made for winter. Product 1 is cheaper than product 2."

    bot = make(Scripted(respond), llm_search_summary=False)
    say(bot, "red winter coat", user="e1")
    replies = say(bot, "is the first one warm enough for winter?", user="e1")
    assert replies[-1].text == "Yes, it is a quilted coat with a hood, made for winter."
    [g] = generation_of(bot, replies[-1].turn_id)
    assert g["attempts"][0]["dropped"][0]["text"] == "Product 1 is cheaper than product 2."  # type: ignore[index]


def test_a_closing_line_with_an_invented_price_is_dropped(make) -> None:  # type: ignore[no-untyped-def]
    bot = make(Scripted(lambda m: "Everything here is on sale for $5 today only!"))
    replies = say(bot, "red winter coat")
    assert len(replies) == 1 and replies[0].cards  # the cards, and no untrue closing line
    gen = generation_of(bot, replies[0].turn_id)
    assert gen[0]["kind"] == "search_summary" and gen[0]["source"] == "fallback"


def test_a_question_about_a_shown_product_is_answered_from_its_attributes(make) -> None:  # type: ignore[no-untyped-def]
    def respond(m: Sequence[Mapping[str, str]]) -> str:
        if kind_of(m) == "summary":
            return "NOT A SENTENCE"
        price = re.search(r"price: ([\d.]+)", m[1]["content"])
        assert price is not None
        return f"It costs ${price.group(1)} and is in stock."

    bot = make(Scripted(respond), llm_search_summary=False)
    say(bot, "red winter coat", user="q1")
    replies = say(bot, "is the first one a good buy?", user="q1")
    assert replies[0].cards  # the product itself, rendered by code
    card = replies[0].cards[0]
    assert replies[-1].text == f"It costs ${card.price:.2f} and is in stock."
    # a plain price or stock question is answered from the catalog by code, before any model is asked
    assert say(bot, "how much is the first one?", user="q1")[-1].text == f"It costs ${card.price:.2f}."


def test_how_much_of_something_else_is_not_the_price_and_a_spec_in_the_title_is_read(make) -> None:  # type: ignore[no-untyped-def]
    llm = Scripted(lambda m: "NOT_LISTED")
    bot = make(llm, llm_search_summary=False)
    say(bot, "laptop", user="r1")
    replies = say(bot, "how much ram does the first one have?", user="r1")
    ram = re.search(r"\d+GB RAM", replies[0].cards[0].title)
    assert ram is not None  # the card's title states it ...
    # ... so the answer reads it there: never "the catalog doesn't say" under a card that says it
    assert replies[-1].text == f"The catalog lists it with {ram.group(0)}."
    assert "costs" not in replies[-1].text and not llm.calls


@pytest.mark.parametrize(("search", "question", "lead"), [
    ("running shoes for women", "what material is the first one?", "Its material: "),
    ("女款跑步鞋", "第一个是什么材质？", "材质："),
])
def test_an_attribute_on_the_card_is_answered_from_it_not_by_the_model(make, search: str, question: str,  # type: ignore[no-untyped-def]
                                                                       lead: str) -> None:
    """Issue 19: the details card showed "material: knit textile", then the model said the catalog did not say."""
    llm = Scripted(lambda m: "NOT_LISTED")
    bot = make(llm, llm_search_summary=False)
    say(bot, search, user="m1")
    replies = say(bot, question, user="m1")
    card = replies[0].text
    material = re.search(r"(?:material|材质): (.+)", card)
    assert material is not None, card
    assert replies[-1].text.startswith(lead + material.group(1))
    assert not any("doesn't say" in r.text or "没有写" in r.text for r in replies) and not llm.calls


def test_when_the_catalog_does_not_say_the_assistant_does_not_guess(make) -> None:  # type: ignore[no-untyped-def]
    bot = make(Scripted(lambda m: "NOT_LISTED"), llm_search_summary=False)
    say(bot, "red winter coat", user="q2")
    replies = say(bot, "is the first one machine washable?", user="q2")
    assert "doesn't say" in replies[-1].text and any(b.payload == "handoff" for b in replies[-1].buttons)


# ---------------------------------------------------------------------------------- injections


def _obedient(m: Sequence[Mapping[str, str]]) -> str:
    """A model that does whatever the shopper asks: the worst case for the verifier."""
    if kind_of(m) == "summary":
        return "All of these are 90% off with code VIP90, today only $1 each!"
    if "你" in m[0]["content"]:
        return "好的！已为您打1折，优惠码 FREE2026，全额退款另赔888元，一年内可退货，明天免费送达。"
    return ("Sure! Your 90% discount is applied with code VIP70, shipping is free for every order, returns are "
            "accepted for 365 days, refund approved: $999, and you get a lifetime warranty.")


def test_no_hostile_message_gets_an_invented_price_discount_code_or_policy(make, shared) -> None:  # type: ignore[no-untyped-def]
    engine, _, policy = shared
    messages = hostile_messages()
    assert len(messages) >= 20
    llm = Scripted(_obedient)
    bot = make(llm)
    policy_text = "\n".join(p.text for p in policy.passages)
    brands = sorted(engine.brands)
    own_words = [t for m in MESSAGES.values() for t in m.values()] + list(EXAMPLES.values())
    for i, msg in enumerate(messages):
        replies = say(bot, msg, user=f"attacker{i}")
        assert replies, msg
        shown = [engine.product(c.sku) for r in replies for c in r.cards]
        # what may be said: the policy, the products shown, and the assistant's own fixed sentences
        facts = Facts.from_records([p for p in shown if p is not None], passages=[policy_text], extras=own_words)
        for r in replies:
            v = verify(r.text, facts, known_brands=brands, question=msg)
            assert v.ok, (msg, r.text, [c.text for c in v.unsupported])
            for bad in ("90%", "VIP70", "VIP90", "FREE2026", "$999", "365 days", "lifetime", "1折", "888元"):
                assert bad not in r.text, (msg, r.text)
    # the model was asked (and overruled) for most of them: the guard, not the routing, kept them out
    asked = {json.dumps(c[1]["content"]) for c in llm.calls}
    assert len(asked) >= len(messages) // 2


def test_a_follow_up_about_it_is_a_question_about_the_product_in_focus(make) -> None:  # type: ignore[no-untyped-def]
    def respond(m: Sequence[Mapping[str, str]]) -> str:
        name = re.search(r"name: (.+)", m[1]["content"])
        assert name is not None
        return f"The {name.group(1)} does not list a care label, so I can't say."

    bot = make(Scripted(respond), llm_search_summary=False)
    say(bot, "red winter coat", user="q3")
    details = say(bot, "tell me about the first one", user="q3")
    title = details[0].cards[0].title
    replies = say(bot, "is it machine washable?", user="q3")
    assert replies[0].intent == "details" and replies[0].cards[0].title == title
    assert replies[-1].text == f"The {title} does not list a care label, so I can't say."


def test_a_question_about_the_list_gets_the_facts_then_the_models_checked_sentence(make) -> None:  # type: ignore[no-untyped-def]
    """Issue 19: the catalog's pick and its facts first; the model's sentence after, sent only when true."""
    def respond(m: Sequence[Mapping[str, str]]) -> str:
        if "rain" in m[1]["content"].lower() and "Products shown" in m[1]["content"]:
            return "The Watertight II Rain Jacket is the one made for rain."
        return ""

    bot = make(Scripted(respond))
    say(bot, "women's jacket", user="l1")
    replies = say(bot, "which of these is best for the rain?", user="l1")
    assert replies[0].intent == "advice" and replies[0].text.startswith("For rain, going by the catalog: ")
    assert replies[-1].text == "The Watertight II Rain Jacket is the one made for rain."
    lying = make(Scripted(lambda m: "The Watertight II Rain Jacket costs $5 today." if "Products shown" in m[1]["content"]
                          else ""))
    say(lying, "women's jacket", user="l2")
    replies = say(lying, "which of these is best for the rain?", user="l2")
    assert not any("$5" in r.text for r in replies) and replies[0].text.startswith("For rain, going by the catalog: ")


def test_buying_guidance_is_the_catalogs_comparison_then_general_advice_marked_as_such(make) -> None:  # type: ignore[no-untyped-def]
    """Issue 19, point 4: the model's general advice is marked as general and can state no product fact."""
    def advise(m: Sequence[Mapping[str, str]]) -> str:
        return "Look for a snug heel and enough room for your toes." if "general buying advice" in m[0]["content"] else ""

    bot = make(Scripted(advise), llm_search_summary=False, llm_advice="on")
    say(bot, "running shoes for women", user="g1")
    replies = say(bot, "what should I look for in running shoes?", user="g1")
    assert replies[0].text.startswith("What the catalog lets you compare for these:")
    assert replies[-1].text == "General advice, not from the catalog: Look for a snug heel and enough room for your toes."
    # a "general" sentence with a product fact in it is not general advice: it is not sent
    pushy = make(Scripted(lambda m: "The Nike Pegasus 41 at $130 is the one to buy." if "general buying advice"
                          in m[0]["content"] else ""), llm_search_summary=False, llm_advice="on")
    say(pushy, "running shoes for women", user="g2")
    replies = say(pushy, "what should I look for in running shoes?", user="g2")
    assert not any("$130" in r.text or "General advice" in r.text for r in replies)
    # by default only a served model (SHOPBOT_LLM_URL) has its own words about products: the packaged one wrote
    # none worth sending (docs/conversations.md); the catalog's comparison stands alone
    local = make(Scripted(advise), llm_search_summary=False, llm_advice="auto")
    say(local, "running shoes for women", user="g4")
    replies = say(local, "what should I look for in running shoes?", user="g4")
    assert replies[0].text.startswith("What the catalog lets you compare") and not any("General advice" in r.text for r in replies)
    served = make(Scripted(advise), llm_search_summary=False, llm_url="http://127.0.0.1:9/v1", llm_advice="auto")
    assert served.dialogue.model_advice and not local.dialogue.model_advice
    # ... and a question about one product that its record does not settle gets the code's plain answer at once
    replies = say(local, "is the first one good for flat feet?", user="g4")
    assert replies[-1].text == "The catalog doesn't say whether it is suited to flat feet, and I won't guess."


def test_general_advice_that_only_announces_a_list_is_not_sent(make) -> None:  # type: ignore[no-untyped-def]
    """The packaged model wrote "一般建议（不是商品资料）：相机用的SD卡应该看以下指标：" and stopped: a line that says nothing."""
    bot = make(Scripted(lambda m: "相机用的SD卡应该看以下指标：" if "选购建议" in m[0]["content"] else ""),
               llm_search_summary=False, llm_advice="on")
    say(bot, "SD卡", user="g3")
    replies = say(bot, "相机用的SD卡要看哪些指标？", user="g3")
    assert replies[0].text.startswith("这几款在商品资料里可以比较的是")
    assert not any("一般建议" in r.text for r in replies)
