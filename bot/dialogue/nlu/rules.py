"""The rules that override the intent classifier where a pattern is certain, each with why (``RULES``).

The classifier (:mod:`bot.dialogue.nlu.intents`) learns "what kind of request is this"; a few messages
are decided by their shape instead: a reference to shown results ("compare 1 and 3"), bare filters with
a search on screen ("cheaper"), a policy the intent set has no intent for ("运费多少钱？"), a request for
what goes with a product. They live apart from the NLU that applies them (:mod:`bot.dialogue.nlu.parser`)
because the dialogue manager asks one of them again (:func:`complement_anchor`) and because each is a
claim that docs/benchmarks.md (intent routing) measures: together they do not lower the Bitext
accuracy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from bot.dialogue.nlu.intents import CS_INTENTS
from bot.dialogue.nlu.slots import Slots, cut, only_refinement
from retrieval.lexical import has_cjk

__all__ = ["FEEDBACK_MIN_CONFIDENCE", "QUESTION_CUE", "RULES", "complement_anchor", "override", "watch_words",
           "wordless"]

FEEDBACK_MIN_CONFIDENCE = 0.5  # below it, a predicted thumbs-up/down is not recorded (RULES["unsure_feedback"])

# Rule name -> why it is safe to override the classifier with it.
RULES: dict[str, str] = {
    "no_words": "a message with no letters or digits (blank, emoji, punctuation) has no intent to classify; "
    "thumbs/hearts are praise, a thumbs-down is a complaint about the results",
    "compare": "a reference to shown results plus a comparison word ('compare', 'vs', 'which is better', '比较') "
    "cannot be anything but a comparison; two or more references alone ('1 and 3') likewise",
    "similar": "a reference to shown results plus 'similar'/'类似'/'more like' asks for neighbours of that product",
    "ordinal_only": "a message that is only a reference ('the second one', '#2', '第二个') asks about that product",
    "ordinal_question": "a question about one shown result ('is the first one in stock?', '第二个有红色的吗？') is "
    "answered with that product's details (price, stock, colours, sizes), not by filtering the list",
    "unsure_feedback": "a thumbs-up or thumbs-down the classifier is unsure of (below 0.5: 'xxxx…', a pasted "
    "log) is not recorded against the last reply: feedback trains the models, a guess would teach them noise",
    "variant": "one shown result and a colour or size ('the second one in blue', '第二个要红色的') asks for products "
    "like it in that colour or size",
    "refinement": "with a search on screen, a message made only of filters or a price nudge ('cheaper', 'in blue', "
    "'size 42', '便宜一点的') narrows that search",
    "policy_topic": "a message naming a policy the intent set has no intent for (warranty, shipping costs, discount "
    "codes: '保修期多长？', '运费多少钱？', 'do you have a coupon?') asks about that policy, unless it also names a product "
    "or the classifier already chose an intent answered by the same policy",
    "complements": "a request for what goes with a product ('I bought a laptop, what else do I need?', 'accessories "
    "for my iphone', 'what goes with the first one', '我买了笔记本电脑，还需要什么配件？') asks for complements of that "
    "product, not for more of it; unless it names a customer-service word ('return', 'order' ...)",
    "watchlist": "'my watchlist', '/watchlist', '我的关注' asks for the shopper's standing searches (bot/dialogue/watch.py)",
    "watch": "a watch phrase ('tell me when', 'let me know if', 'notify me', 'alert me', 'watch for', '通知我', "
    "'到货提醒', '有...就告诉我', '降价了告诉我') asks to be told later, not to search now; it wins over every other rule",
    "product": "a short message (at most 6 words / 16 characters) naming a catalog category or brand with no "
    "customer-service word ('order', 'refund', '账户' ...) is a product request unless the classifier is "
    "sure (>= 0.9) of something else",
}

_COMPARE_CUE = re.compile(
    r"\b(?:compare|comparison|comparing|vs\.?|versus|difference|differences|differ|better|best|side by side|"
    r"pros and cons|which (?:one|is|should)|or)\b|比较|对比|比一比|比一下|区别|不同|哪个好|哪个更|哪款|还是",
    re.I,
)
_SIMILAR_CUE = re.compile(r"\b(?:similar|alike|alternatives?|more like|anything like|something like)\b|类似|相似|差不多|同款|像", re.I)
_CS_WORDS = re.compile(
    r"\b(?:orders?|ordered|refunds?|refunded|invoices?|receipt|accounts?|password|login|log in|sign ?up|register|"
    r"registration|deliver\w*|shipping|ship|shipped|address|payments?|pay|paid|charged?|card|cancel\w*|track\w*|"
    r"complain\w*|complaint|review|feedback|newsletter|subscri\w*|unsubscribe|agent|human|person|customer service|"
    r"support|contact|fee|fees|penalty|status|return|money back|parcel|package|help|assistance|service|"
    r"phone number|number|email|call|talk|speak|website|site|app)\b|"
    r"订单|退款|退钱|发票|收据|账户|账号|密码|登录|注册|配送|快递|发货|物流|送货|地址|付款|支付|扣款|取消|投诉|评价|"
    r"订阅|退订|人工|客服|手续费|违约金|包裹|到货|退货|帮助|手机号|电话|邮箱|修改|个人信息|资料|会员|昵称|头像|评论|"
    r"售后|保修|网站|下单|购买流程|质保|运费|邮费|包邮|优惠码|优惠券|折扣码|"
    r"购物车|结账|\b(?:warrant(?:y|ies)|guarantee|postage|coupons?|vouchers?|discount codes?|promo codes?|cart|"
    r"checkout)\b",
    re.I,
)
# Policies the 27 Bitext intents have no intent for -> the pseudo-intent the dialogue answers from that
# policy section (bot/dialogue/support.py CS_SECTIONS), and the intents that already lead to the same section.
_POLICY_TOPICS: tuple[tuple[re.Pattern[str], str, frozenset[str]], ...] = (
    # the chat has no cart: "add the first one to my cart" asks how to order, whichever product it names
    (re.compile(r"\b(?:add(?: (?:it|this|that|them|these|those|one|(?:the )?\w+ ones?))? to (?:my |the |your )?"
                r"(?:cart|basket|shopping bag)|shopping cart|check ?out)\b|加入购物车|加到购物车|放进购物车|购物车|结账|结算", re.I),
     "place_order", frozenset({"place_order"})),
    (re.compile(r"\b(?:warrant(?:y|ies)|guarantee[ds]?)\b|保修|质保|保固|包修", re.I), "warranty", frozenset()),
    (re.compile(r"\b(?:shipping (?:costs?|fees?|charges?|prices?|rates?)|delivery (?:costs?|fees?|charges?)|postage|"
                r"(?:how much|what) (?:is|does) (?:the )?(?:shipping|delivery)(?: cost)?|free shipping)\b|"
                r"运费|邮费|包邮|免运费|配送费|快递费", re.I),
     "delivery_options", frozenset({"delivery_options", "delivery_period", "place_order", "set_up_shipping_address",
                                    "change_shipping_address"})),
    (re.compile(r"\b(?:discount codes?|promo(?:tion(?:al)?)? codes?|coupons?|vouchers?|promotions?|voucher codes?)\b|"
                r"优惠码|优惠券|折扣码|促销|优惠活动", re.I),
     "promotions", frozenset({"newsletter_subscription"})),
)
# a message put as a question ("can I ...", "...?", "...吗", "怎么...")
QUESTION_CUE = re.compile(
    r"[?？]|^(?:is|are|do|does|did|can|could|will|would|how|what|when|where|which|who|why)\b|"
    r"吗|么|多少|多长|多久|怎么|怎样|如何|是否|能不能|可不可以|有没有", re.I)
_POSITIVE_EMOJI = re.compile(r"^[\s👍👌❤️♥😊🙂😀😃😄😁😍🥰👏✅🎉💯🙏⭐🌟!]+$")
_NEGATIVE_EMOJI = re.compile(r"[👎😠😡🤬😞😕🙁☹❌]")
_SHOPPING_REFS = {"compare", "details", "similar", "more", "refine", "search", "other", "recommend", "feedback_negative"}


def wordless(text: str) -> tuple[str, float]:
    """Intent and confidence of a message with no letters or digits (``RULES["no_words"]``)."""
    if text and _NEGATIVE_EMOJI.search(text):
        return "feedback_negative", 1.0
    if text and _POSITIVE_EMOJI.match(text):
        return "feedback_positive", 1.0
    return "other", 0.0 if not text else 1.0


def _has_search(state: Mapping[str, Any] | None) -> bool:
    """Whether the conversation has results on screen that a refinement could narrow."""
    if not state:
        return False
    return bool(state.get("query") or state.get("shown") or state.get("mode") in {"search", "similar", "recommend"})


def override(
    text: str,
    intent: str,
    conf: float,
    slots: Slots,
    ord_spans: Sequence[tuple[int, int, list[int]]],
    refinement_only: bool,
    state: Mapping[str, Any] | None,
) -> tuple[str, str] | None:
    """The rule that decides this message instead of the classifier's ``intent`` (``conf``), as (rule name,
    intent), or None; ``ord_spans`` and ``refinement_only`` are what :func:`~bot.dialogue.nlu.slots.extract_slots` found."""
    if _WATCHLIST.search(text):
        return "watchlist", "watchlist"
    if watch_words(text) is not None:
        return "watch", "watch"
    if complement_anchor(text) is not None:
        return "complements", "recommend"
    cs_word = bool(_CS_WORDS.search(text))
    if ord_spans and not slots.order_number and (intent in _SHOPPING_REFS or not cs_word):
        rest = cut(text, [(s, e) for s, e, _ in ord_spans])
        if _COMPARE_CUE.search(rest) or (len(slots.ordinals) >= 2 and intent not in {"similar"}):
            return "compare", "compare"
        if _SIMILAR_CUE.search(rest):
            return "similar", "similar"
        if not re.sub(r"[\W_]+|\b(?:the|one|ones|please|pls|and|what about|how about|个|款|呢|吧)\b", "", rest, flags=re.I):
            return "ordinal_only", "details"
        if QUESTION_CUE.search(text) and not _CS_WORDS.search(rest):
            return "ordinal_question", "details"
        if len(slots.ordinals) == 1 and (slots.filters.colors or slots.filters.sizes) and only_refinement(slots.query):
            return "variant", "similar"
    topic = _policy_topic(text, intent, slots)
    if topic is not None:
        return "policy_topic", topic
    if intent in {"feedback_positive", "feedback_negative"} and conf < FEEDBACK_MIN_CONFIDENCE:
        return "unsure_feedback", "other"
    if refinement_only and _has_search(state):
        return "refinement", "refine"
    short = len(text) <= 16 if has_cjk(text) else len(text.split()) <= 6
    if (slots.categories or slots.filters.brands) and short and conf < 0.9 and not cs_word and not ord_spans and (
        intent in CS_INTENTS or intent in {"other", "help", "greet", "goodbye", "thanks"}
    ):
        return "product", "search"
    return None


_COMPLEMENT_CUE = re.compile(
    r"\baccessor(?:y|ies)\b|\bwhat\s+else\s+(?:do|should|would|could|can)\s+(?:i|we)\s+(?:need|buy|get)\b|"
    r"\bgo(?:es)?\s+(?:well\s+)?with\b|\bcomplement|配件|配套|还需要(?:买)?(?:什么|啥|哪些)|还要买什么|还缺什么|搭配什么",
    re.IGNORECASE)
_COMPLEMENT_FILLER = re.compile(
    r"\b(?:i|i've|ive|we|just|recently|bought|buy|got|get|have|ordered|purchased|own|a|an|my|our|the|this|that|it|"
    r"what|else|do|does|should|would|could|need|want|to|go|goes|well|with|for|some|any|accessor(?:y|ies)|"
    r"complements?|complementary|recommend|suggest|please|pls|can|you|me|one)\b|"
    r"刚刚|刚|最近|我|购买了|买了|入手了|一台|一个|一部|一双|一件|一款|还需要|需要|还要|还缺|买|什么|啥|哪些|配件|配套|搭配|"
    r"的|吗|呢|推荐|请", re.IGNORECASE)


def names_service(text: str) -> bool:
    """Whether ``text`` names something of the shop's service (an order, delivery, a refund, a warranty ...)
    rather than only a product: "这个多久能到货" does, "这个充满电能听多久" does not."""
    return bool(_CS_WORDS.search(text))


def complement_anchor(text: str) -> str | None:
    """The product words of a complements request ("I bought a laptop, what else do I need?" -> "laptop"),
    "" when it names no product ("what goes with it?"), None when ``text`` asks for no complements
    (``RULES["complements"]``)."""
    if not _COMPLEMENT_CUE.search(text) or _CS_WORDS.search(text):
        return None
    return " ".join(re.findall(r"\w+", _COMPLEMENT_FILLER.sub(" ", text)))


def _policy_topic(text: str, intent: str, slots: Slots) -> str | None:
    """The policy pseudo-intent a message asks about (``RULES["policy_topic"]``), or None."""
    for pattern, topic, same in _POLICY_TOPICS:
        if not pattern.search(text) or intent == topic or intent in same:
            continue
        named = bool(slots.categories or slots.filters.brands or slots.ordinals)
        # a product named without a question ("laptop with a 2-year warranty") is a search, whatever the
        # classifier thought; "is my laptop under warranty?" asks about the policy
        return None if named and not QUESTION_CUE.search(text) and topic != "place_order" else topic
    return None


# ------------------------------------------------------------------------------------ watchlists

_WATCHLIST = re.compile(
    r"^\s*/watchlist\b|\b(?:(?:show|see|list|view)\s+)?my\s+(?:watch\s?list|watches|alerts)\b|\bwatch\s?list\b\s*$|"
    r"我的关注|我的提醒|关注列表|提醒列表", re.I)
# the phrase that makes a request standing: English at the start ("tell me when ...", "notify me if ..."),
# Chinese anywhere (Chinese puts it last: "有500元以下的蓝牙耳机就通知我")
_WATCH_EN = re.compile(
    r"\b(?:(?:please|pls|can you|could you|would you)\s+)?(?:tell|let)\s+me\s+(?:know\s+)?(?:when|if|once|as soon as)\b|"
    r"\b(?:notify|alert|ping|message|email|text)\s+me\b(?:\s+(?:when|if|once|as soon as|about|of|for))?|"
    r"\bwatch\s+(?:out\s+)?for\b|\bkeep\s+an\s+eye\s+out\s+for\b|\bset\s+(?:up\s+)?an?\s+(?:alert|watch)\s+(?:for|on)\b", re.I)
_WATCH_ZH = re.compile(r"(?:就|请|麻烦)?(?:通知我|提醒我)(?:一声|一下)?|(?:就|了|时)告诉我(?:一声)?|告诉我一声|"
                       r"(?:到货|有货|降价|补货)提醒")
# what is left around the phrase that names no product: "... comes back in stock", "you get", "有", "的话"
_WATCH_FILLER = re.compile(
    r"^\s*(?:(?:you|u)\s+(?:get|have|stock|receive|restock)\s+(?:in\s+)?|there\s+(?:is|are)\s+|"
    r"(?:any|some|a|an|the)\s+)+|"
    r"\s+(?:(?:is|are|comes?|gets?)\s+)?(?:back\s+)?(?:(?:in\s+stock|available|arrives?|restocked|on\s+sale)\s*)+"
    r"(?:again)?\s*$|[,.!?;:，。！？、：；]+|^\s*(?:如果|要是|等|当)|(?:的话|的时候|时|到货了?|有货了?|降价了?|补货了?)\s*$|"
    r"^\s*有", re.I)


def watch_words(text: str) -> str | None:
    """The request behind a watch phrase ("tell me when a red winter coat under $80 is in stock" -> "red winter
    coat under $80"; "有500元以下的蓝牙耳机就通知我" -> "500元以下的蓝牙耳机"), "" when it names nothing
    ("notify me"), None when ``text`` asks to watch nothing (``RULES["watch"]``). The words left are read by
    the same NLU as a search, so a watch's filters are the search's."""
    m = _WATCH_EN.search(text)
    zh = None if m else _WATCH_ZH.search(text)
    if m is None and zh is None:
        return None
    if zh is not None and not has_cjk(text):
        return None
    span = m or zh
    assert span is not None
    rest = _WATCH_ZH.sub(" ", text) if zh is not None else text[span.end():] or text[: span.start()]
    before = None
    while before != rest:
        before = rest
        rest = _WATCH_FILLER.sub(" ", rest).strip()
    return re.sub(r"\s+", " ", rest).strip()
