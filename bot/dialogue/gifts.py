"""Gift and occasion requests: "a gift for my girlfriend's birthday", "送给妈妈的生日礼物".

Such a request names who it is for and the occasion, rarely a product. Searched as words it lands on
whatever the words resemble ("gift" is closest to toys, "girlfriend" to dolls), and "recommend a gift" was
answered from the shopper's unrelated history. Here the request is read for what it means: who it is for
(her, him, a child, anyone), the occasion, and an interest when the shopper names one ("a coffee lover",
"她喜欢拍照"). With an interest the gift is a search for it; without one, a page mixes the best match of a
few kinds of products that suit the person (bags, skincare, candles ... for her), searched in the shop's
own catalog, and the reply says in one sentence what it assumed and asks for her interests or a budget. The
search service (bot/dialogue/search.py) shows the pages; this module reads requests and picks the products.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from bot.dialogue.turn import DialogueContext
from retrieval.query import Filters, ParsedQuery
from retrieval.search import Hit

__all__ = ["GiftRequest", "Kind", "gift_hits", "interest_of", "kind_of", "pronouns", "read_gift", "search_words"]

# ------------------------------------------------------------------------------------------ reading


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# A gift word makes a request a gift request; an occasion alone does not ("birthday candles" is a product).
_GIFT_EN = re.compile(r"\b(?:gifts?|presents?|stocking stuffers?|something (?:nice |special )?for (?:my|her|him|a|an)\b|"
                      r"(?:what|something) (?:should|can|could) i (?:get|buy|give)\b|(?:get|buy) (?:my|for my)\b)", re.I)
# ... unless it is about the shop's service for a gift: gift cards and wrapping, returning or sending one
_NOT_GIFT_EN = re.compile(r"\bgift ?(?:cards?|wrap(?:ping|ped)?|receipts?|vouchers?|certificates?|boxe?s?|bags?|messages?)\b|"
                          r"\b(?:return(?:ing|ed)?|refund|exchange|ship(?:ping)?|deliver(?:y|ed)?|send (?:it|a gift) to|"
                          r"address|invoice|track(?:ing)?|received|got)\b", re.I)
_GIFT_ZH = re.compile(r"礼物|礼品|送给|送(?:我|她|他|TA)?(?:的)?(?:妈妈|爸爸|老婆|老公|女朋友|男朋友|朋友|孩子|同事|老师)|"
                      r"给.{1,6}买(?:个|点|份|什么)|买.{0,4}送(?:人|给)")
_NOT_GIFT_ZH = re.compile(r"礼品卡|礼品袋|礼品盒|礼品包装|礼物包装|包装|退|换货|发货|配送|快递|地址|发票|收到")

# who it is for: word -> group (her, him, child, anyone); a group picks the kinds of products
_FOR_EN: dict[str, str] = {}
for _group, _names in {
    "her": "girlfriend wife mom mum mother mommy sister grandma grandmother granny aunt fiancee fiancée her woman lady "
           "daughter-in-law mother-in-law bride wifey",
    "him": "boyfriend husband dad daddy father brother grandpa grandfather uncle fiance fiancé him man guy "
           "father-in-law groom hubby",
    "child": "son daughter kid kids child children baby toddler boy girl nephew niece grandson granddaughter "
             "grandchild teen teenager",
    "anyone": "friend friends coworker co-worker colleague colleagues boss teacher neighbor neighbour host hostess "
              "partner someone somebody parents family client",
}.items():
    for _w in _names.split():
        _FOR_EN[_w] = _group
_FOR_ZH: dict[str, str] = {}
for _group, _names in {
    "her": "女朋友 女友 老婆 妻子 太太 媳妇 妈妈 母亲 老妈 姐姐 妹妹 奶奶 外婆 姥姥 阿姨 婆婆 岳母 闺蜜 她",
    "him": "男朋友 男友 老公 丈夫 爸爸 父亲 老爸 哥哥 弟弟 爷爷 外公 姥爷 叔叔 舅舅 公公 岳父 他",
    "child": "孩子 小孩 儿子 女儿 宝宝 侄子 侄女 外甥 外甥女 孙子 孙女 小朋友 学生",
    "anyone": "朋友 同事 老师 领导 老板 客户 父母 家人 长辈 TA",
}.items():
    for _w in _names.split():
        _FOR_ZH[_w] = _group
_FOR_EN_RE = re.compile(r"\b(?:(my|our|a|an|for)\s+)?(" + "|".join(sorted(map(re.escape, _FOR_EN), key=len, reverse=True))
                        + r")(?:'s|’s|s')?\b", re.I)
_FOR_ZH_RE = re.compile("|".join(sorted(map(re.escape, _FOR_ZH), key=len, reverse=True)))

_OCCASIONS: tuple[tuple[str, str, str], ...] = (  # (pattern, English, Chinese)
    (r"\bbirthday\b|生日", "birthday", "生日"),
    (r"\b(?:christmas|xmas)\b|圣诞", "Christmas", "圣诞"),
    (r"\banniversary\b|纪念日", "anniversary", "纪念日"),
    (r"\bvalentine'?s?\b|情人节|七夕", "Valentine's", "情人节"),
    (r"\bmother'?s day\b|母亲节", "Mother's Day", "母亲节"),
    (r"\bfather'?s day\b|父亲节", "Father's Day", "父亲节"),
    (r"\bwedding\b|婚礼|结婚", "wedding", "结婚"),
    (r"\bgraduation\b|毕业", "graduation", "毕业"),
    (r"\bhousewarming\b|乔迁|新居", "housewarming", "乔迁"),
    (r"\bnew year'?s?\b|新年|春节|过年", "New Year", "新年"),
    (r"\bretirement\b|退休", "retirement", "退休"),
    (r"\bbaby shower\b|满月", "baby shower", "满月"),
)
# the words of a gift request that are not an interest
_FILLER_EN = _words("""
a an the for my our to of on in at with and or from this that these next upcoming coming special nice great good
perfect best cool unique thoughtful cheap little small some any something anything what which who whom should could
would can i we me us you get buy give find pick choose recommend suggest suggestion suggestions idea ideas help please
need want looking look gift gifts present presents stocking stuffer stuffers day days year years old is are she he
they her him his their them likes like loves love enjoys enjoy into fan fans lover lovers enthusiast enthusiasts
obsessed crazy about really very much who's she's he's also but just one ones thing things birthday christmas xmas
anniversary valentine valentines valentine's wedding graduation housewarming new retirement baby shower mother's
father's mothers fathers mother father
""")
_INTEREST_EN = re.compile(r"\b(?:who|that)?\s*(?:likes?|loves?|enjoys?|is into|are into|is a fan of|is crazy about|"
                          r"is obsessed with)\s+(.+)$|\b([a-z][a-z -]{1,30}?)\s+(?:lovers?|fans?|enthusiasts?|addicts?|nerds?|geeks?)\b",
                          re.I)
_INTEREST_ZH = re.compile(r"(?:喜欢|爱好是?|热爱|爱|迷)([\u4e00-\u9fffA-Za-z]{1,8}?)(?:的|，|,|。|！|？|$)")
_FILLER_ZH = re.compile(r"送给|送|给|买|挑|选|推荐|一个|一份|一件|个|份|件|的|什么|好|呢|吗|吧|啊|帮我|我想|想|要|请|礼物|礼品|"
                        r"有没有|适合|合适|可以|能|找|我|您|你|一些|点|新|一下")


@dataclass(frozen=True)
class GiftRequest:
    """What a gift request means: whom it is for, the occasion, an interest (the words to search) if named."""

    group: str = "anyone"  # "her", "him", "child" or "anyone": which kinds of products suit
    recipient: str = ""  # as the shopper named them, without "my": "girlfriend", "妈妈"; "" when not said
    occasion: str = ""  # "birthday" / "生日"; "" when not said
    interest: str = ""  # "coffee", "拍照"; "" when not said

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> GiftRequest | None:
        if not d:
            return None
        return cls(**{k: str(d.get(k) or "") for k in ("group", "recipient", "occasion", "interest")})


def read_gift(text: str, words: str | None = None) -> GiftRequest | None:
    """The gift request in ``text``, or None when it is not one. ``words``: the search words the NLU left
    after taking out a budget or colour ("a gift for mom under $50" -> "gift for mom"); the interest is read
    from them."""
    zh = bool(re.search(r"[\u4e00-\u9fff]", text))
    if zh:
        if not _GIFT_ZH.search(text) or _NOT_GIFT_ZH.search(text):
            return None
    elif not _GIFT_EN.search(text) or _NOT_GIFT_EN.search(text):
        return None
    group, recipient = _recipient(text, zh)
    if group == "" and not re.search(r"\b(?:gifts?|presents?)\b|礼物|礼品", text, re.I):
        return None  # "get my order" is not a gift request; a gift word or a person makes one
    occasion = next(((zh_name if zh else en) for rx, en, zh_name in _OCCASIONS if re.search(rx, text, re.I)), "")
    return GiftRequest(group or "anyone", recipient, occasion, _interest(words if words else text, zh))


def interest_of(text: str) -> str:
    """The interest in a follow-up to gift ideas ("she likes hiking", "他喜欢咖啡"), or ""."""
    zh = bool(re.search(r"[\u4e00-\u9fff]", text))
    if zh:
        m = _INTEREST_ZH.search(text)
        return m.group(1) if m else ""
    m = re.match(r"\s*(?:she|he|they|my \w+|her|his|both)\s*(?:'s|’s|is|are|really|also)?\s*(?:really\s+)?"
                 r"(?:likes?|loves?|enjoys?|into|a fan of|crazy about|obsessed with|plays?|does)\s+(.+)", text, re.I)
    return _interest(m.group(1), zh=False) if m else ""


def _recipient(text: str, zh: bool) -> tuple[str, str]:
    if zh:
        m = _FOR_ZH_RE.search(text)
        return (_FOR_ZH[m.group()], m.group()) if m else ("", "")
    m = _FOR_EN_RE.search(text)
    if m is None:
        return "", ""
    word = m.group(2).lower()
    return _FOR_EN[word], ("my " + word if (m.group(1) or "").lower() in {"my", "our"} else word)


_FAMILY = _words("girlfriend wife mom mum mother sister grandma grandmother aunt boyfriend husband dad father brother "
                    "grandpa grandfather uncle son daughter kids nephew niece grandson granddaughter parents family "
                    "partner fiance fiancé fiancee fiancée boss")
_HE = _words("son boy nephew grandson")
_SHE = _words("daughter girl niece granddaughter")


def pronouns(gift: GiftRequest, language: str) -> tuple[str, str, str]:
    """(whom, possessive, object) for the sentence that says what was assumed: ("your girlfriend", "her",
    "her"), ("", "their", "them") when the shopper did not say; in Chinese ("您的妈妈", "她", "她")."""
    word = gift.recipient.removeprefix("my ")
    if language == "zh":
        whom = "" if not word else word if word in {"她", "他", "TA"} else f"您的{word}"
        pron = {"her": "她", "him": "他"}.get(gift.group, "孩子" if gift.group == "child" else "对方")
        return whom, pron, pron
    if not word:
        return "", "their", "them"
    if word in {"her", "him"}:
        whom = word
    elif word in {"someone", "somebody"}:
        whom = "someone"
    elif gift.recipient.startswith("my ") or word in _FAMILY:
        whom = f"your {word}"
    else:
        whom = f"a {word}"
    if gift.group == "her" or word in _SHE:
        return whom, "her", "her"
    if gift.group == "him" or word in _HE:
        return whom, "his", "him"
    return whom, "their", "them"


def _interest(text: str, zh: bool) -> str:
    if zh:
        m = _INTEREST_ZH.search(text)
        if m:
            return m.group(1)
        left = _FOR_ZH_RE.sub(" ", text)
        for rx, _en, _zh in _OCCASIONS:
            left = re.sub(rx, " ", left, flags=re.I)
        left = _FILLER_ZH.sub(" ", left)
        words = [w for w in re.findall(r"[\u4e00-\u9fff]{2,}|[A-Za-z]{3,}", left)]
        return " ".join(words)
    m = _INTEREST_EN.search(text)
    if m:
        text = m.group(1) or m.group(2)
    text = re.sub(r"\b\d+\b|[$€£¥]\s*\d+", " ", text)
    words = re.findall(r"[A-Za-z][A-Za-z'’-]*", text)
    kept = [w for w in words if w.lower() not in _FILLER_EN and w.lower().rstrip("'s’") not in _FOR_EN
            and w.lower() not in _FOR_EN]
    return " ".join(kept[:4])


# --------------------------------------------------------------------------------- kinds of products


@dataclass(frozen=True)
class Kind:
    """A kind of product that suits as a gift: the words to search, which titles or categories count as
    that kind, and its name in each language (for the sentence that says what was assumed)."""

    query: str
    match: str  # a regular expression over a product's titles and category, any language
    en: str
    zh: str


# ideas for more than one recipient
_SMARTWATCH = Kind("smartwatch", r"smartwatch|smart watch|apple watch|智能手表", "smartwatches", "智能手表")
_SPEAKER = Kind("bluetooth speaker", r"speaker|音箱", "speakers", "音箱")
_CANDLE = Kind("scented candle", r"candle|蜡烛", "candles", "香薰蜡烛")
_KINDS: dict[str, tuple[Kind, ...]] = {
    "her": (Kind("handbag", r"handbag|tote|shoulder bag|crossbody|手提包|托特|单肩包|斜挎包", "bags", "包袋"),
            Kind("skincare", r"skincare|moisturi[sz]|serum|face cream|护肤|面霜|精华", "skincare", "护肤品"),
            _CANDLE,
            _SMARTWATCH,
            Kind("wireless earbuds", r"earbud|headphone|耳机", "headphones", "耳机")),
    "him": (_SMARTWATCH,
            Kind("wireless headphones", r"headphone|earbud|耳机", "headphones", "耳机"),
            _SPEAKER,
            Kind("backpack", r"backpack|双肩包|背包", "backpacks", "双肩包"),
            Kind("coffee grinder", r"coffee|espresso|咖啡", "coffee gear", "咖啡器具")),
    "child": (Kind("building set", r"building set|lego|积木|乐高", "building sets", "积木"),
              Kind("board game", r"board game|game|桌游|游戏", "board games", "桌游"),
              Kind("children's book", r"children|儿童|童书", "children's books", "童书"),
              Kind("plush toy", r"plush|soft toy|毛绒|玩偶", "soft toys", "毛绒玩具")),
    "anyone": (_SPEAKER,
               _CANDLE,
               Kind("board game", r"board game|桌游", "board games", "桌游"),
               Kind("coffee", r"coffee|咖啡", "coffee", "咖啡"),
               Kind("novel", r"fiction|novel|小说", "books", "图书")),
}


# products made for the other sex are not ideas for her (him); a search for her interest prefers hers
_NOT_FOR = {"her": re.compile(r"\bmen'?s\b|\bfor men\b|男士|男款|男式", re.I),
            "him": re.compile(r"\bwomen'?s\b|\bfor women\b|女士|女款|女式", re.I)}
_FOR_WORD = {"her": "women's", "him": "men's"}


def _is_kind(hit: Hit, kind: Kind, group: str = "anyone") -> bool:
    p = hit.product
    text = " ".join([p.title, *p.titles.values(), " > ".join(p.category)])
    other = _NOT_FOR.get(group)
    return re.search(kind.match, text, re.I) is not None and not (other is not None and other.search(text))


def search_words(gift: GiftRequest) -> str:
    """The words to search for a gift with an interest: the interest, for women or men when the gift is for
    her or him ("hiking" for a girlfriend finds women's hiking shoes first; words no title has change nothing)."""
    word = _FOR_WORD.get(gift.group)
    return f"{word} {gift.interest}" if word and not re.search(r"[\u4e00-\u9fff]", gift.interest) else gift.interest


def gift_hits(ctx: DialogueContext, gift: GiftRequest, filters: Filters, offset: int, page: int
              ) -> tuple[list[Hit], int, list[Kind]]:
    """A page of gift ideas for ``gift`` (no interest named): the best products of each kind that suits,
    in turns (the best of each kind first), only products in stock. Returns the page, how many ideas the
    pool holds (more than the page when there is a next one) and the kinds found."""
    f = replace(filters, in_stock=True)
    per_kind: list[tuple[Kind, list[Hit]]] = []
    depth = offset + page + 1
    for kind in _KINDS.get(gift.group, _KINDS["anyone"]):
        hits = ctx.engine.search(ParsedQuery(text=kind.query, filters=f, raw=kind.query), k=depth + 4).hits
        ok = [h for h in hits if _is_kind(h, kind, gift.group)][:depth]
        if ok:
            per_kind.append((kind, ok))
    merged: list[Hit] = []
    seen: set[str] = set()
    for i in range(max((len(h) for _, h in per_kind), default=0)):
        for _kind, hits in per_kind:
            if i < len(hits) and hits[i].sku not in seen:
                seen.add(hits[i].sku)
                merged.append(hits[i])
    shown = merged[offset: offset + page]
    return ([Hit(h.product, h.score, offset + i + 1, h.signals) for i, h in enumerate(shown)], len(merged),
            [k for k, _ in per_kind])


def kind_of(hit: Hit, kinds: Sequence[Kind]) -> Kind | None:
    """The kind ``hit`` was picked as."""
    return next((k for k in kinds if _is_kind(hit, k)), None)
