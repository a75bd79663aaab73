"""Natural-language understanding for one shopper message: intent + slots, English and Chinese.

``parse("compare the first and third", state)`` -> ``NLUResult(intent="compare", slots.ordinals=(1, 3))``.

Two layers, on purpose:

- the intent classifier (:mod:`bot.dialogue.manager.nlu.intents`): embeddings -> softmax regression over 41 intents (27
  customer-service, 14 shopping/dialogue). It is good at "what kind of request is this" across
  phrasings and typos, and it is the only place that learns.
- slots and a handful of rules, here, by pattern: prices/colours/sizes/brands/stock/sort come from
  :func:`retrieval.query.parse_query` (the search engine's own parser, so the bot and the search box
  agree); this module adds what only a conversation has: references to shown results ("the second
  one", "#2", "第三款", "last"), order numbers, and the catalog's categories.

Rules override the classifier only where a pattern is certain; each one is listed in ``RULES`` with why,
and ``bot/dialogue/nlu/data/README-intents.md`` records that together they do not lower the Bitext accuracy.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.dialogue.nlu.intents import CS_INTENTS, IntentModel, load_default_model
from retrieval.lexical import has_cjk
from retrieval.query import Filters, SortOrder, parse_query

__all__ = [
    "NLU",
    "RULES",
    "CategoryMatcher",
    "NLUResult",
    "Slots",
    "complement_anchor",
    "find_order_number",
    "find_ordinals",
    "parse",
]

FEEDBACK_MIN_CONFIDENCE = 0.5  # below it, a predicted thumbs-up/down is not recorded (RULES["unsure_feedback"])
MAX_SLOT_CHARS = 2000  # patterns run on at most this much of a message (the dialogue keeps 1000)

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
    "product": "a short message (at most 6 words / 16 characters) naming a catalog category or brand with no "
    "customer-service word ('order', 'refund', '账户' ...) is a product request unless the classifier is "
    "sure (>= 0.9) of something else",
}

# --------------------------------------------------------------------------------------- results


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


@dataclass(frozen=True)
class NLUResult:
    intent: str
    confidence: float
    slots: Slots = field(default_factory=Slots)
    language: str = "en"
    source: str = "model"  # "model" or "rule:<name>" (see RULES)
    model_intent: str | None = None  # what the classifier said, when a rule overrode it


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
_ZH_MEASURE = "[个款件种条双台部本项样位套只把顶张支块瓶盒]"
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


# ------------------------------------------------------------------------------------ categories

# Surface words -> catalog category names they mean, most specific first; a name is used only when
# the catalog has it. Obvious synonyms only: a wrong category would hide the right products.
CATEGORY_SYNONYMS: dict[str, tuple[str, ...]] = {
    "phone": ("smartphones", "phones"), "smartphone": ("smartphones", "phones"), "mobile phone": ("smartphones", "phones"),
    "cell phone": ("smartphones", "phones"), "手机": ("smartphones", "phones"), "智能手机": ("smartphones", "phones"),
    "laptop": ("notebooks", "laptops"), "notebook computer": ("notebooks", "laptops"), "笔记本": ("notebooks", "laptops"),
    "笔记本电脑": ("notebooks", "laptops"), "电脑": ("laptops",), "gaming laptop": ("gaming laptops",),
    "游戏本": ("gaming laptops",), "游戏笔记本": ("gaming laptops",),
    "earbuds": ("headphones",), "earphones": ("headphones",), "headset": ("headphones",), "耳机": ("headphones",),
    "外套": ("coats",), "大衣": ("coats",), "棉服": ("coats",), "夹克": ("jackets",), "羽绒服": ("jackets", "coats"),
    "tee": ("t-shirts",), "tshirt": ("t-shirts",), "t恤": ("t-shirts",), "牛仔裤": ("jeans",), "连衣裙": ("dresses",),
    "裙子": ("dresses",), "jumper": ("sweaters",), "毛衣": ("sweaters",), "针织衫": ("sweaters",),
    "跑鞋": ("running",), "跑步鞋": ("running",), "运动鞋": ("sneakers",), "trainers": ("sneakers",), "登山鞋": ("hiking",),
    "徒步鞋": ("hiking",), "靴子": ("boots",), "凉鞋": ("sandals",), "鞋": ("shoes",), "鞋子": ("shoes",),
    "背包": ("backpacks",), "双肩包": ("backpacks",), "手提包": ("handbags",), "包包": ("handbags", "bags"),
    "suitcase": ("luggage",), "行李箱": ("luggage",), "护肤": ("skincare",), "护肤品": ("skincare",), "化妆品": ("makeup",),
    "彩妆": ("makeup",), "书": ("books",), "小说": ("fiction",), "音箱": ("speakers",), "智能手表": ("smartwatches",),
    "手表": ("smartwatches",), "相机": ("cameras",), "电视": ("tvs",), "television": ("tvs",), "手机壳": ("cases",),
    "phone case": ("cases",), "充电器": ("chargers",), "screen protector": ("screen protectors",), "贴膜": ("screen protectors",),
    "钢化膜": ("screen protectors",), "鼠标": ("mice",), "mouse": ("mice",), "键盘": ("keyboards",), "咖啡": ("coffee",),
    "茶": ("coffee & tea",), "tea": ("coffee & tea",), "零食": ("snacks",), "床上用品": ("bedding",), "sheets": ("bedding",),
    "lamp": ("lighting",), "灯": ("lighting",), "台灯": ("lighting",), "锅": ("cookware",), "玩具": ("toys",),
    "积木": ("building sets",), "lego": ("building sets",), "桌游": ("board games",), "娃娃": ("dolls",), "露营": ("camping",),
    "帐篷": ("camping",), "tent": ("camping",), "骑行": ("cycling",), "自行车": ("cycling",), "bike": ("cycling",),
    "健身": ("fitness",), "存储卡": ("memory cards",), "内存卡": ("memory cards",), "sd card": ("memory cards",),
    "集线器": ("usb hubs",), "护发": ("hair care",), "洗发水": ("hair care",), "shampoo": ("hair care",),
    "电脑包": ("laptop bags",), "厨房电器": ("appliances",), "家电": ("appliances",),
}


# Chinese names of brands -> the catalog's (English, lower-case) brand; used only when the catalog has it.
# Names that are also everyday words with another meaning (企鹅 penguin, 哥伦比亚 Colombia) are left out.
ZH_BRANDS: dict[str, str] = {
    "耐克": "nike", "阿迪达斯": "adidas", "阿迪": "adidas", "苹果": "apple", "小米": "xiaomi", "华为": "huawei",
    "三星": "samsung", "索尼": "sony", "联想": "lenovo", "戴尔": "dell", "惠普": "hp", "华硕": "asus", "佳能": "canon",
    "飞利浦": "philips", "乐高": "lego", "优衣库": "uniqlo", "李维斯": "levi's", "新百伦": "new balance", "亚瑟士": "asics",
    "北面": "the north face", "巴塔哥尼亚": "patagonia", "宜家": "ikea", "罗技": "logitech", "闪迪": "sandisk",
    "谷歌": "google", "欧莱雅": "l'oreal", "美宝莲": "maybelline", "妮维雅": "nivea", "适乐肤": "cerave",
    "佳明": "garmin", "新秀丽": "samsonite", "安克": "anker", "萨洛蒙": "salomon",
    "孩之宝": "hasbro", "美泰": "mattel", "飒拉": "zara", "拉瓦萨": "lavazza", "凯膳怡": "kitchenaid",
    "哈珀柯林斯": "harpercollins", "斯凯奇": "skechers", "彪马": "puma", "李宁": "li-ning", "安踏": "anta",
}


def _forms(name: str) -> set[str]:
    """Singular/plural spellings of one English category word or phrase."""
    n = name.lower()
    out = {n}
    if n.endswith("ies"):
        out.add(n[:-3] + "y")
    elif n.endswith(("ches", "shes", "sses", "xes")):
        out.add(n[:-2])
    elif n.endswith("s") and not n.endswith("ss"):
        out.add(n[:-1])
    else:
        out.add(n + "s")
    if n == "mice":
        out.add("mouse")
    return out


class CategoryMatcher:
    """Finds the catalog's categories in a message: names as written, plurals, '<child> <parent>'
    compounds ('running shoes' for Shoes > Running), and the synonym table (English and Chinese).

    Built once per catalog (the NLU object keeps it); matching is a longest-first scan, so 'laptop bags'
    is one category, not 'laptops' plus 'bags'.
    """

    def __init__(self, categories: Iterable[str]) -> None:
        self.surface: dict[str, str] = {}  # surface form -> category key ("shoes > running" or "coats")
        self.parent: dict[str, str] = {}
        levels: set[str] = set()
        for cat in categories:
            path = [p.strip().lower() for p in re.split(r"\s*>\s*", str(cat)) if p.strip()]
            for i, name in enumerate(path):
                levels.add(name)
                key = " > ".join(path[: i + 1]) if i and self._ambiguous(name) else name
                if i:
                    self.parent[name] = path[i - 1]
                    for child in _forms(name):
                        for par in _forms(path[i - 1]):
                            self.surface.setdefault(f"{child} {par}", " > ".join(path[: i + 1]))
                if name.endswith("ing") and i:
                    continue  # "running", "camping", "lighting" alone are too often not the category
                for form in _forms(name):
                    self.surface.setdefault(form, key)
                for part in re.split(r"\s*(?:&|\band\b|/|,)\s*", name):
                    if part and part != name:
                        for form in _forms(part):
                            self.surface.setdefault(form, key)
        for word, targets in CATEGORY_SYNONYMS.items():
            for t in targets:
                if t in levels:
                    key = t
                    if t in self.parent and self._ambiguous(t):
                        key = f"{self.parent[t]} > {t}"
                    self.surface[word] = key  # a synonym is more specific than a generated plural
                    break
        forms = sorted(self.surface, key=len, reverse=True)
        en = [re.escape(f) for f in forms if f.isascii()]
        zh = [re.escape(f) for f in forms if not f.isascii()]
        parts = []
        if en:
            parts.append(r"(?<![\w-])(?:" + "|".join(en) + r")(?![\w-])")
        if zh:
            parts.append("(?:" + "|".join(zh) + ")")
        self._rx = re.compile("|".join(parts), re.I) if parts else None

    @staticmethod
    def _ambiguous(name: str) -> bool:
        """Modifier-like sub-category names ('running', 'cases') are reported with their parent."""
        return name.endswith("ing") or name in {"cases", "appliances", "accessories", "coffee", "fiction", "decor"}

    def find(self, text: str) -> tuple[str, ...]:
        if self._rx is None:
            return ()
        found: list[str] = []
        for m in self._rx.finditer(text.lower()):
            key = self.surface.get(m.group(0).lower())
            if key and key not in found:
                found.append(key)
        # a parent named next to its child ("shoes" in "running shoes" matched separately) adds nothing
        leaves = [k.split(" > ")[-1] for k in found]
        return tuple(k for k in found if not any(self.parent.get(leaf) == k for leaf in leaves))


# ------------------------------------------------------------------------------------------ rules

_COMPARE_CUE = re.compile(
    r"\b(?:compare|comparison|comparing|vs\.?|versus|difference|differences|differ|better|best|side by side|"
    r"pros and cons|which (?:one|is|should)|or)\b|比较|对比|比一比|比一下|区别|不同|哪个好|哪个更|哪款|还是",
    re.I,
)
_SIMILAR_CUE = re.compile(r"\b(?:similar|alike|alternatives?|more like|anything like|something like)\b|类似|相似|差不多|同款|像", re.I)
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
# policy section (bot/dialogue/manager.py CS_SECTIONS), and the intents that already lead to the same section.
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
_QUESTION_CUE = re.compile(
    r"[?？]|^(?:is|are|do|does|did|can|could|will|would|how|what|when|where|which|who|why)\b|"
    r"吗|么|多少|多长|多久|怎么|怎样|如何|是否|能不能|可不可以|有没有", re.I)
_POSITIVE_EMOJI = re.compile(r"^[\s👍👌❤️♥😊🙂😀😃😄😁😍🥰👏✅🎉💯🙏⭐🌟!]+$")
_NEGATIVE_EMOJI = re.compile(r"[👎😠😡🤬😞😕🙁☹❌]")
_HAS_WORD = re.compile(r"\w", re.UNICODE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")
_SHOPPING_REFS = {"compare", "details", "similar", "more", "refine", "search", "other", "recommend", "feedback_negative"}


def _clean(text: str | None) -> str:
    t = unicodedata.normalize("NFKC", text or "")[: MAX_SLOT_CHARS * 2]
    t = _CONTROL.sub(" ", t)
    return re.sub(r"\s+", " ", t).strip()[:MAX_SLOT_CHARS]


def _has_search(state: Mapping[str, Any] | None) -> bool:
    """Whether the conversation has results on screen that a refinement could narrow."""
    if not state:
        return False
    return bool(state.get("query") or state.get("shown") or state.get("mode") in {"search", "similar", "recommend"})


def _cut(text: str, spans: Sequence[tuple[int, int]]) -> str:
    for s, e in sorted(spans, reverse=True):
        text = text[:s] + " " + text[e:]
    return re.sub(r"\s+", " ", text).strip()


def refinement_extra(text: str) -> str:
    """The content words a refinement adds to the search ("cheaper ones with a hood" -> "hood")."""
    left = _REFINE_WORDS.sub(" ", text)
    return " ".join(re.sub(r"[^\w\s-]", " ", left).split())


def _only_refinement(rest: str) -> bool:
    """True when nothing but refinement vocabulary is left (after the filters were taken out)."""
    return not refinement_extra(rest).strip("-")


def extract_slots(
    text: str, *, brands: Iterable[str] = (), matcher: CategoryMatcher | None = None
) -> tuple[Slots, list[tuple[int, int, list[int]]], bool]:
    """Slots of a cleaned message, the ordinal spans, and whether it is nothing but filters/refinements."""
    ord_spans = _ordinal_spans(text)
    order = _order_span(text)
    spans = [(s, e) for s, e, _ in ord_spans] + ([(order[0], order[1])] if order else [])
    rest = _cut(text, spans)
    pq = parse_query(rest, brands=brands)
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
        refinement_only = _only_refinement(words)
    return slots, ord_spans, refinement_only


# -------------------------------------------------------------------------------------------- NLU


class NLU:
    """Intent + slots for one catalog: holds the classifier, the brand set and the category matcher.

    Build one per engine (brands and categories come from the catalog) and call it per message; it
    is thread-safe (no per-call state).
    """

    def __init__(
        self,
        model: IntentModel | None = None,
        *,
        brands: Iterable[str] = (),
        categories: Iterable[str] = (),
        use_rules: bool = True,
    ) -> None:
        self._model = model
        self.brands = frozenset(b.lower() for b in brands if b)
        self.matcher = CategoryMatcher(categories)
        self.use_rules = use_rules

    @property
    def model(self) -> IntentModel:
        if self._model is None:
            self._model = load_default_model()
        return self._model

    def __call__(self, text: str | None, state: Mapping[str, Any] | None = None) -> NLUResult:
        return self.parse(text, state)

    def parse(self, text: str | None, state: Mapping[str, Any] | None = None) -> NLUResult:
        return self.parse_batch([text], state)[0]

    def parse_batch(self, texts: Sequence[str | None], state: Mapping[str, Any] | None = None) -> list[NLUResult]:
        """Several messages at once (one batched encoder pass): what evaluation uses."""
        cleaned = [_clean(t) for t in texts]
        wordy = [t for t in cleaned if _HAS_WORD.search(t)]
        predicted = iter(self.model.predict_batch(wordy) if wordy else [])
        return [self._parse_one(t, next(predicted) if _HAS_WORD.search(t) else None, state) for t in cleaned]

    def _parse_one(self, t: str, prediction: tuple[str, float] | None, state: Mapping[str, Any] | None) -> NLUResult:
        lang = "zh" if has_cjk(t) else "en"
        if prediction is None:
            if t and _NEGATIVE_EMOJI.search(t):
                return NLUResult("feedback_negative", 1.0, Slots(), lang, "rule:no_words")
            if t and _POSITIVE_EMOJI.match(t):
                return NLUResult("feedback_positive", 1.0, Slots(), lang, "rule:no_words")
            return NLUResult("other", 0.0 if not t else 1.0, Slots(), lang, "rule:no_words")
        slots, ord_spans, refinement_only = extract_slots(t, brands=self.brands, matcher=self.matcher)
        intent, conf = prediction
        if not self.use_rules:
            return NLUResult(intent, conf, slots, lang)
        rule = self._rule(t, intent, conf, slots, ord_spans, refinement_only, state)
        if rule is None:
            return NLUResult(intent, conf, slots, lang)
        name, new_intent = rule
        if new_intent == intent:
            return NLUResult(intent, conf, slots, lang)
        return NLUResult(new_intent, max(conf, 0.9), slots, lang, f"rule:{name}", model_intent=intent)

    def _rule(
        self,
        text: str,
        intent: str,
        conf: float,
        slots: Slots,
        ord_spans: Sequence[tuple[int, int, list[int]]],
        refinement_only: bool,
        state: Mapping[str, Any] | None,
    ) -> tuple[str, str] | None:
        if complement_anchor(text) is not None:
            return "complements", "recommend"
        cs_word = bool(_CS_WORDS.search(text))
        if ord_spans and not slots.order_number and (intent in _SHOPPING_REFS or not cs_word):
            rest = _cut(text, [(s, e) for s, e, _ in ord_spans])
            if _COMPARE_CUE.search(rest) or (len(slots.ordinals) >= 2 and intent not in {"similar"}):
                return "compare", "compare"
            if _SIMILAR_CUE.search(rest):
                return "similar", "similar"
            if not re.sub(r"[\W_]+|\b(?:the|one|ones|please|pls|and|what about|how about|个|款|呢|吧)\b", "", rest, flags=re.I):
                return "ordinal_only", "details"
            if _QUESTION_CUE.search(text) and not _CS_WORDS.search(rest):
                return "ordinal_question", "details"
            if len(slots.ordinals) == 1 and (slots.filters.colors or slots.filters.sizes) and _only_refinement(slots.query):
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
        return None if named and not _QUESTION_CUE.search(text) and topic != "place_order" else topic
    return None


_DEFAULT_NLU: dict[tuple[frozenset[str], tuple[str, ...]], NLU] = {}


def parse(
    text: str | None,
    state: Mapping[str, Any] | None = None,
    brands: Iterable[str] = (),
    categories: Iterable[str] = (),
    *,
    model: IntentModel | None = None,
) -> NLUResult:
    """One message -> intent, confidence and slots (see :class:`NLU`; build one per catalog in servers).

    ``state`` is the dialogue state (a previous search makes bare filters a refinement); ``brands`` and
    ``categories`` are the catalog's vocabularies. Never raises on odd input (empty, emoji-only,
    control characters, a 10,000-character paste).
    """
    if model is not None:
        return NLU(model, brands=brands, categories=categories).parse(text, state)
    key = (frozenset(b.lower() for b in brands), tuple(categories))
    nlu = _DEFAULT_NLU.get(key)
    if nlu is None:
        if len(_DEFAULT_NLU) > 8:
            _DEFAULT_NLU.clear()
        nlu = _DEFAULT_NLU[key] = NLU(brands=key[0], categories=key[1])
    return nlu.parse(text, state)


def _main(argv: Sequence[str] | None = None) -> int:
    """``python -m bot.nlu train`` rebuilds the packaged model; ``python -m bot.nlu "text"`` parses."""
    import json
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["train"] or args[:1] == ["eval"]:
        from bot.dialogue.nlu.intents import _main as intents_main

        return intents_main(args)
    for line in args or sys.stdin.read().splitlines():
        r = parse(line)
        print(json.dumps({"text": line, "intent": r.intent, "confidence": round(r.confidence, 3), "source": r.source,
                          **r.slots.as_dict()}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
