"""Slots of one message: what it says besides its intent, by pattern, English and Chinese.

Prices, colours, sizes, brands, stock and sort come from :func:`retrieval.query.parse_query` (the
search engine's own parser, so the bot and the search box agree); this module adds what only a
conversation has: references to shown results ("the second one", "#2", "第三款", "last"), order
numbers, the catalog's categories (:mod:`bot.dialogue.nlu.categories`), and whether a message is
nothing but a refinement ("cheaper", "in blue"). It is apart from the intent rules
(:mod:`bot.dialogue.nlu.rules`) because the Rasa adapter reads slots without the NLU's intents.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.dialogue.nlu.categories import ZH_BRANDS, CategoryMatcher
from retrieval.lexical import has_cjk
from retrieval.query import Filters, SortOrder, parse_query

__all__ = [
    "MAX_SLOT_CHARS",
    "Slots",
    "cut",
    "extract_slots",
    "find_order_number",
    "find_ordinals",
    "only_refinement",
    "refinement_extra",
]

MAX_SLOT_CHARS = 2000  # patterns run on at most this much of a message (the dialogue keeps 1000)


@dataclass(frozen=True)
class Slots:
    """What the message says besides its intent. ``filters`` is exactly what parse_query found."""

    query: str = ""  # product words left after filters, ordinals and order numbers are taken out
    filters: Filters = field(default_factory=Filters)
    sort: SortOrder = "relevance"
    categories: tuple[str, ...] = ()  # catalog category names (lower case) the message names; words stay in `query`
    ordinals: tuple[int, ...] = ()  # 1-based positions in the shown results; -1 = the last one
    order_number: str | None = None

    def with_categories(self) -> Filters:
        """The filters plus the named categories, for callers that want category as a hard filter."""
        if not self.categories:
            return self.filters
        return self.filters.merged(Filters(categories=frozenset(self.categories)))

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data for logging and for adapters (Rasa slots)."""
        f = self.filters
        return {
            "query": self.query, "min_price": f.min_price, "max_price": f.max_price, "currency": f.currency,
            "colors": sorted(f.colors), "sizes": sorted(f.sizes), "brands": sorted(f.brands), "in_stock": f.in_stock,
            "sort": self.sort, "categories": list(self.categories), "ordinals": list(self.ordinals),
            "order_number": self.order_number,
        }


# -------------------------------------------------------------------------------------- ordinals

_EN_ORD = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5, "6th": 6, "7th": 7, "8th": 8,
    "9th": 9, "10th": 10, "last": -1,
}
_EN_COUNT = {"two": 2, "three": 3, "four": 4, "five": 5, "2": 2, "3": 3, "4": 4, "5": 5}
_ZH_DIGIT = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
# A reference word is a result reference only next to one of these (so "first time", "last month" are not).
_REF_NOUN = r"(?:one|ones|item|items|product|products|option|options|result|results|choice|pick|model|pair|listing)"
_NOT_AFTER = (
    r"(?:time|times|order|orders|purchase|purchases|month|week|year|night|day|days|minute|step|steps|place|thing|"
    r"invoice|invoices|payment|payments|refund|delivery|account|address|name|page|of)\b"
)
_EN_ORD_RX = re.compile(
    r"(?P<pre>\b(?:the|my|at|your|this|that)\s+)?\b(?P<w>" + "|".join(sorted(_EN_ORD, key=len, reverse=True)) + r")\b"
    r"(?P<post>\s+" + _REF_NOUN + r"\b)?",
    re.I,
)
_EN_FIRST_N = re.compile(r"\b(?:the\s+)?(?:first|top)\s+(two|three|four|five|[2-5])\b(?!\s*" + _NOT_AFTER + ")", re.I)
_HASH_NUM = re.compile(r"(?<![\w#])#\s?(\d{1,2})(?![\w-])")
_NUMBER_WORD = re.compile(r"(?<!order )\b(?:number|no\.|num|item|option|product|result|choice)\s*#?\s*(\d{1,2})\b(?![\w.-])", re.I)
_ZH_NUM = "[一二两三四五六七八九十0-9]{1,3}"
_ZH_MEASURE = "[个款件种条双台部本项样位套只把顶张支块瓶盒包口袋罐副]"
_ZH_ORD_RX = re.compile(rf"第\s*({_ZH_NUM})\s*(?:{_ZH_MEASURE}|(?=[和跟与及、，,。？?！!的\s]|$))")
_ZH_LAST = re.compile(rf"最后(?:一{_ZH_MEASURE}|那{_ZH_MEASURE}?|{_ZH_MEASURE})")
_ZH_FIRST_N = re.compile(rf"前\s*([两二三四五2-5])\s*{_ZH_MEASURE}")
_BARE_NUM = re.compile(r"(?<![A-Za-z0-9_.$€£¥#-])(\d{1,2})(?![A-Za-z0-9_.%$€£¥-])")
_BARE_OK = set(
    ["compare", "comparison", "vs", "vs.", "versus", "and", "or", "with", "to", "between", "the", "difference", "differences", "which", "is", "are", "better", "best", "one", "ones", "tell", "me", "more", "about", "info", "information", "on", "of", "details", "detail", "show", "like", "similar", "what", "whats", "what's", "item", "items", "number", "no", "option", "please", "pls", "between", "cheaper", "lighter", "bigger", "smaller", "vs,", "or,", "and,", "see", "open"]
)
_ZH_BARE_CUE = re.compile(r"比较|对比|比一比|比一下|区别|不同|哪个|详情|介绍|详细|类似|相似|差不多|看看|看一下")
_ZH_CONNECT = re.compile(r"^[\s和跟与及、,，还是或者号个款vs]*$")


def _zh_int(s: str) -> int | None:
    s = s.strip()
    if s.isdigit():
        return int(s)
    if s in _ZH_DIGIT:
        return _ZH_DIGIT[s]
    if s == "十":
        return 10
    if len(s) == 2 and s[0] == "十" and s[1] in _ZH_DIGIT:
        return 10 + _ZH_DIGIT[s[1]]
    if len(s) == 2 and s[1] == "十" and s[0] in _ZH_DIGIT:
        return 10 * _ZH_DIGIT[s[0]]
    if len(s) == 3 and s[1] == "十" and s[0] in _ZH_DIGIT and s[2] in _ZH_DIGIT:
        return 10 * _ZH_DIGIT[s[0]] + _ZH_DIGIT[s[2]]
    return None


def _ordinal_spans(text: str) -> list[tuple[int, int, list[int]]]:
    """(start, end, positions) of every result reference, in text order."""
    spans: list[tuple[int, int, list[int]]] = []
    for m in _EN_FIRST_N.finditer(text):
        spans.append((m.start(), m.end(), list(range(1, _EN_COUNT[m.group(1).lower()] + 1))))
    for m in _EN_ORD_RX.finditer(text):
        word = m.group("w").lower()
        after = text[m.end() :]
        pre = (m.group("pre") or "").strip().lower()
        if m.group("post"):
            ok = pre not in {"my", "your"}
        elif re.match(r"\s+" + _NOT_AFTER, after, re.I) or pre in {"at", "my", "your", "this", "that"}:
            ok = False
        elif re.match(r"\s*(?:$|[,.?!;:]|and\b|or\b|vs\b|versus\b|with\b|to\b|&)", after, re.I):
            ok = True
        else:
            ok = pre == "the"  # "is the second waterproof?"
        if ok:
            spans.append((m.start(), m.end(), [_EN_ORD[word]]))
    for rx in (_HASH_NUM, _NUMBER_WORD):
        for m in rx.finditer(text):
            n = int(m.group(1))
            if 1 <= n <= 20:
                spans.append((m.start(), m.end(), [n]))
    for m in _ZH_ORD_RX.finditer(text):
        zn = _zh_int(m.group(1))
        if zn and 1 <= zn <= 20:
            spans.append((m.start(), m.end(), [zn]))
    for m in _ZH_LAST.finditer(text):
        spans.append((m.start(), m.end(), [-1]))
    for m in _ZH_FIRST_N.finditer(text):
        spans.append((m.start(), m.end(), list(range(1, (_zh_int(m.group(1)) or 2) + 1))))
    spans.sort()
    kept: list[tuple[int, int, list[int]]] = []
    for s in spans:  # overlapping matches ("the first two" and "first"): keep the earliest, longest
        if kept and s[0] < kept[-1][1]:
            if s[1] - s[0] > kept[-1][1] - kept[-1][0]:
                kept[-1] = s
            continue
        kept.append(s)
    if not kept:
        kept = _bare_number_spans(text)
    return kept


def _bare_number_spans(text: str) -> list[tuple[int, int, list[int]]]:
    """'compare 1 and 3', '1 vs 2', '比较1和3': bare small numbers count only when every other word is
    comparison/reference vocabulary, so 'iphone 15', 'size 9' and '2 pairs of socks' stay what they are."""
    nums = [(m.start(), m.end(), int(m.group(1))) for m in _BARE_NUM.finditer(text)]
    nums = [n for n in nums if 1 <= n[2] <= 10]
    if not nums:
        return []
    if has_cjk(text):
        rest = _BARE_NUM.sub(" ", text)
        cue = _ZH_BARE_CUE.search(rest)
        if not cue:
            return []
        leftover = _ZH_BARE_CUE.sub("", rest)
        leftover = re.sub(r"[一下吧吗呢啊请帮我给你的这那个款些？?！!。，,\s]", "", leftover)
        if leftover and not _ZH_CONNECT.match(leftover):
            return []
    else:
        words = re.findall(r"[a-z']+|[?,]", _BARE_NUM.sub(" ", text.lower()))
        if any(w not in _BARE_OK and w not in {"?", ","} for w in words):
            return []
        if len(nums) == 1 and not words:
            return []  # a lone "2" is too ambiguous (quantity, size, reply to a question)
    return [(s, e, [n]) for s, e, n in nums]


def find_ordinals(text: str) -> list[int]:
    """1-based positions the message refers to, in order, without repeats; -1 is "the last one"."""
    out: list[int] = []
    for _, _, ps in _ordinal_spans(text[:MAX_SLOT_CHARS]):
        for p in ps:
            if p not in out:
                out.append(p)
    return out


# --------------------------------------------------------------------------------- order numbers

_ORDER_ID = r"([A-Za-z0-9][A-Za-z0-9-]{3,23})"
_ORDER_RX = [
    re.compile(r"\b(?:order|purchase)\s*(?:number|no\.?|num|id|#)?\s*[:#]?\s*(?:is\s+)?#?" + _ORDER_ID + r"\b", re.I),
    re.compile(r"(?:订单号?|单号|订单编号)\s*(?:是|为)?\s*[:：#]?\s*" + _ORDER_ID),
    re.compile(r"(?<![\w#])#\s?([A-Za-z0-9][A-Za-z0-9-]{3,23})\b"),
    re.compile(r"\b([A-Z]{2,5}-\d{3,12})\b"),
]
_CS_CONTEXT = re.compile(
    r"\b(?:order|package|parcel|shipment|delivery|refund|invoice|track|tracking|purchase)\b|订单|包裹|快递|退款|发票|物流",
    re.I,
)
_LONG_NUMBER = re.compile(r"(?<![\w.$€£¥])(\d{5,14})(?![\w.])")


def _order_span(text: str) -> tuple[int, int, str] | None:
    for rx in _ORDER_RX:
        for m in rx.finditer(text):
            value = m.group(1)
            if any(c.isdigit() for c in value):
                return m.start(), m.end(), value.upper()
    if _CS_CONTEXT.search(text):
        long = _LONG_NUMBER.search(text)
        if long and not re.search(r"(?:\$|usd|eur|€|£|¥|元|块|dollars?)\s*$", text[: long.start()], re.I):
            return long.start(), long.end(), long.group(1)
    return None


def find_order_number(text: str) -> str | None:
    """An order reference like 'order 12345', '#A1B2C3', '订单号 12345' (upper-cased, no '#')."""
    span = _order_span(text[:MAX_SLOT_CHARS])
    return span[2] if span else None


# ------------------------------------------------------------------------------------ refinements

_REFINE_WORDS = re.compile(
    r"\b(?:cheaper|less expensive|more affordable|lower price[sd]?|more expensive|pricier|higher[- ]end|premium|"
    r"better quality|too expensive|too pricey|only|just|in|the|ones?|please|pls|any|some|something|what about|how about|"
    r"show me|do you have|it|them|those|these|same but|but|instead|sort by|sorted by|price|rating|ratings|with|"
    r"better|first|from|brand|make it|a bit|bit|not so expensive|filter by|of|do they come|come|is there|are there|"
    r"available|size|colou?r|i want|i'd like|prefer|and|or|also|too|budget|lower|fancier|show|me|do|you|have|a|an|"
    r"by|want|i|need|would|like|rather|maybe|one|same|thing|again)\b|"
    r"便宜一点|便宜点|便宜一些|再便宜|更便宜|便宜|贵一点|贵点|太贵|实惠|换成|换个|只要|只看|要|的|吗|呢|吧|有没有|有|"
    r"一点|一些|颜色|尺码|码|也行|按|排序|价格|从低到高|从高到低|评分最高|大一号|小一号|再|还|呢|低点|请|给我|看看|那个|这个|些|点",
    re.I,
)
_PRICE_NUDGE = re.compile(
    r"\b(?:cheaper|less expensive|more affordable|lower price|more expensive|pricier|too expensive|too pricey|"
    r"higher[- ]end|premium|better quality)\b|便宜|贵|实惠",
    re.I,
)


def cut(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """``text`` without the spans (result references, an order number), one space where each was."""
    for s, e in sorted(spans, reverse=True):
        text = text[:s] + " " + text[e:]
    return re.sub(r"\s+", " ", text).strip()


def refinement_extra(text: str) -> str:
    """The content words a refinement adds to the search ("cheaper ones with a hood" -> "hood")."""
    left = _REFINE_WORDS.sub(" ", text)
    return " ".join(re.sub(r"[^\w\s-]", " ", left).split())


def only_refinement(rest: str) -> bool:
    """True when nothing but refinement vocabulary is left (after the filters were taken out)."""
    return not refinement_extra(rest).strip("-")


def extract_slots(
    text: str, *, brands: Iterable[str] = (), matcher: CategoryMatcher | None = None, names: Container[str] = ()
) -> tuple[Slots, list[tuple[int, int, list[int]]], bool]:
    """Slots of a cleaned message, the ordinal spans, and whether it is nothing but filters/refinements."""
    ord_spans = _ordinal_spans(text)
    order = _order_span(text)
    spans = [(s, e) for s, e, _ in ord_spans] + ([(order[0], order[1])] if order else [])
    rest = cut(text, spans)
    pq = parse_query(rest, brands=brands, names=names)
    positions: list[int] = []
    for _, _, ps in ord_spans:
        positions += [p for p in ps if p not in positions]
    cats = matcher.find(rest) if matcher else ()
    filters = pq.filters
    brand_set = brands if isinstance(brands, (set, frozenset)) else {b.lower() for b in brands}
    zh_brands = {en for zh, en in ZH_BRANDS.items() if zh in rest and en in brand_set}
    if zh_brands:
        filters = filters.merged(Filters(brands=frozenset(filters.brands | zh_brands)))
    slots = Slots(
        query=pq.text, filters=filters, sort=pq.sort, categories=cats, ordinals=tuple(positions),
        order_number=order[2] if order else None,
    )
    has_constraint = not filters.is_empty() or pq.sort != "relevance" or bool(_PRICE_NUDGE.search(rest))
    refinement_only = False
    if has_constraint and not ord_spans and not order:
        words = pq.text
        for b in filters.brands:  # a brand is a filter even though its name stays in the query text
            words = re.sub(r"(?<!\w)" + re.escape(b) + r"(?!\w)", " ", words, flags=re.I)
        for zh, en in ZH_BRANDS.items():
            if en in filters.brands:
                words = words.replace(zh, " ")
        refinement_only = only_refinement(words)
    return slots, ord_spans, refinement_only
