"""Whether a sentence the model wrote is about what the shopper asked: the relevance check.

The claim verifier (``model/writing/grounding.py``) makes sure that what the model says is true; this module
makes sure each sentence is worth sending. Asked "第一个有货吗？", the 0.5B model added "产品1的价格低于产品2的价格。":
whether true or not, it answers nothing that was asked. So every sentence of a product answer, a search's
closing line or a customer-service answer is judged here before it is shown, by deterministic rules in
English and Chinese (no second model call: a rule costs microseconds, is testable and says why):

- **an unasked comparison**: the sentence speaks of two or more products by number ("产品1 ... 产品2", "the
  first one ... the second"), or compares ("cheaper than", "the cheapest", "低于", "最便宜"), and the question
  did not ask to compare (nor, for a price comparison, ask about price or a budget);
- **another topic**: the sentence is about price, stock, shipping, returns, payment, a warranty, discounts,
  ratings ... and touches nothing the question asked about ("第一个有货吗？" answered with a price);
- **the cards again**: once the shown products' titles, brands, prices, stock and the filler words are taken
  out, nothing is left ("The Northfield coat is $49.99 and in stock."), and the question did not ask for it; a
  closing line that states prices or stock at all (the cards show them);
- **not an answer at all**: it talks about the search or the facts it was given ("根据顾客搜索的内容，……", "Based
  on the product facts provided, ..."), says the question back, or is cut off in the middle.

A sentence that fails is dropped, not rewritten (``model/writing/live.py``); when none is left, the reply goes
out without a model line and the facts rendered by code stand alone. The rules err on the side of keeping a
sentence: one that mentions what was asked is kept whatever else it says. Like the rest of ``model``, this
module imports nothing from ``bot`` or ``retrieval``: the products arrive as plain records.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

__all__ = ["Kind", "Relevance", "asked_topics", "off_topic", "relevance_check", "topics_of"]

Kind = Literal["answer", "closing", "support"]
"""What the sentence belongs to: an answer about one product, a search's closing line, a policy answer."""

# ----------------------------------------------------------------------------------------- topics

# What a sentence or a question is about. The first group are the tangents a small model adds unasked
# (facts it was given, or the policy's neighbouring sections); the rest only count as "what was asked".
_TOPICS: dict[str, str] = {
    "price": r"\b(?:prices?|priced|pricing|costs?|costing|cheap(?:er|est|ly)?|expensive|pric(?:ey|ier|iest)|"
             r"afford(?:able)?|budget|value|worth|bargain|deal|good buy|how much|spend)\b|"
             r"[$€£¥]\s?\d|\d\s?(?:dollars?|usd|eur|euros?|rmb|yuan|cny)\b|"
             r"\b(?:under|below|over|above|less than|at most|up to|between)\s*[$€£¥]?\s*\d|"
             r"价格|价钱|价位|多少钱|售价|便宜|贵|划算|性价比|值得买|值不值|预算|\d\s*(?:元|块)|以下|以内|实惠",
    "stock": r"\b(?:in stock|out of stock|stock|sold out|inventory|restock(?:ed)?|any left|\d+\s+left|"
             r"available(?!\s+(?:in|for|on|to|at|with)\b)|availability|units?)\b|"
             r"有货|无货|缺货|库存|现货|剩余|剩下|还剩|卖完|售罄|断货|到货|\d\s*件",
    "shipping": r"\b(?:ship(?:s|ped|ping)?|deliver(?:y|ies|ed|s)?|courier|dispatch(?:ed)?|arriv(?:e|es|al)|"
                r"track(?:ing)?|parcels?|carrier|postage|express|internationally)\b|"
                r"配送|发货|快递|物流|运费|邮费|送达|寄|包裹|派送|加急|国际",
    "returns": r"\b(?:return(?:s|ed|ing)?|refund(?:s|ed|ing)?|exchange[sd]?|money back|send (?:it |them )?back)\b|"
               r"退货|退款|退回|换货|退换|退钱|退",
    "payment": r"\b(?:pay(?:s|ing|ment|ments)?|paypal|visa|mastercard|american express|credit card|debit card|"
               r"alipay|wechat pay|apple pay|instal(?:l)?ments?|checkout|charged)\b|"
               r"支付|付款|支付宝|微信|信用卡|分期|扣款|付钱",
    "warranty": r"\b(?:warrant(?:y|ies)|guarantee[sd]?|repair(?:s|ed)?|defect(?:s|ive)?|faulty|broken)\b|"
                r"保修|质保|维修|故障|坏了|缺陷",
    "discount": r"\b(?:discounts?|coupons?|promo(?:tion)?s?|(?:discount |promo )?codes?|sales?|vouchers?|"
                r"\d+\s?% off|on offer|deals?)\b|折扣|优惠|促销|打折|[一二三四五六七八九]折|满减|券",
    "account": r"\b(?:account|password|log ?in|sign(?:ed)? ?(?:up|in)|regist(?:er|ration)|newsletter|"
               r"unsubscribe|profile)\b|账户|账号|帐号|密码|注册|登录|订阅",
    "order_change": r"\b(?:cancel(?:l?ed|l?ing|lation)?|change (?:my |the |an )?order|modify|amend)\b|取消|修改订单|改订单",
    "contact": r"\b(?:contact|phone|call us|e-?mail us|live chat|agent|a person|human|customer service)\b|"
               r"联系|电话|客服|人工",
    "rating": r"\b(?:ratings?|rated|reviews?|stars?)\b|评分|好评|评价|星级|口碑",
    # asked about, never a tangent
    "size": r"\b(?:sizes?|sizing|fits?|fitting|small|large|xs|xl|xxl|tall|length|width|dimensions?)\b|"
            r"尺码|尺寸|大小|码|偏大|偏小|合身",
    "colour": r"\b(?:colou?rs?|shades?|black|white|red|blue|green|grey|gray|pink|purple|yellow|beige|brown|silver|"
              r"navy|orange|gold)\b|颜色|色",
    "material": r"\b(?:materials?|made (?:of|from)|fabric|cotton|leather|polyester|wool|nylon|plastic|steel|"
                r"metal|glass|wood(?:en)?|mesh|suede|silk|wash(?:able|ing)?|clean(?:ing)?|care|waterproof|"
                r"water-resistant)\b|材质|材料|面料|布料|棉|皮|洗|防水|做的",
    "use": r"\b(?:use[sd]?|using|for (?:running|hiking|work|travel|gaming|school|kids|winter|summer|rain)|"
           r"suitable|suit(?:s|ed)?|good for|work(?:s)? (?:for|with)|compatible)\b|适合|用途|适用|兼容|能用|可以用",
}
_TOPIC_RE = {name: re.compile(rx, re.IGNORECASE) for name, rx in _TOPICS.items()}
TANGENTS = frozenset({"price", "stock", "shipping", "returns", "payment", "warranty", "discount", "account",
                      "order_change", "contact", "rating"})
# Topics that answer one another: whether an order can still be cancelled depends on its dispatch, a warranty
# claim is sent back or goes to a person, a return is shipped back, a discount is a price, prices are in a
# currency one pays in.
_RELATED: dict[str, frozenset[str]] = {
    "order_change": frozenset({"shipping"}),
    "warranty": frozenset({"returns", "contact", "shipping"}),
    "returns": frozenset({"shipping"}),
    "shipping": frozenset({"order_change"}),
    "discount": frozenset({"price"}),
    "price": frozenset({"discount"}),
    "payment": frozenset({"price"}),
}


# A question back to the shopper that narrows what they asked for ("tell me a budget", "您的预算是多少？"): its
# topic words ask, they do not state anything, so they are never a tangent.
_INVITES = re.compile(
    r"\b(?:tell me|let me know|what(?:'s| is| are) your|which (?:\w+ )?(?:do|would) you|do you (?:prefer|want|need|have)|"
    r"would you like|are you looking|if you (?:tell|let|share|give)|share your)\b|"
    r"告诉我|您的预算|您想要|您喜欢|您需要|[?？]\s*$", re.IGNORECASE)


# A sentence about the prompt rather than the products: narration ("根据顾客搜索的内容，……", "For the customer's
# search, the customer is looking for ..."), talk about the facts it was given ("Based on the product facts
# provided", "The description clearly states", "..., which is not a product"), the search's own label copied from
# the prompt ("笔记本电脑（in notebooks）"), or the prompt's instructions said back ("does not compare it with other
# products"). The 0.5B model wrote each of these under search results and product questions.
_META = re.compile(
    r"\bthe customer(?:'s|’s)?\b(?!\s+service)|\bcustomers? (?:is|are) (?:looking|searching)\b|\bfor the customer\b|"
    r"\bproduct facts\b|\bfacts (?:given|provided)\b|\bthe description (?:clearly )?(?:states|says|mentions)\b|"
    r"\bthe category is\b|\bnot a product\b|\bcompare it with other products\b|\bnot comparable\b|"
    r"\bthe policy (?:states|says)\b|\b(?:based on|according to) the (?:product|given|provided)\b|"
    r"[(（]\s*in [a-z][a-z &'’-]*[)）]|"
    r"顾客|客户(?!服务)|搜索的内容|根据(?:给出|提供|所提供|以上|上述|这些)?的?(?:商品)?(?:信息|内容|资料)|的详细信息|"
    r"不是(?:一个|一件|一款)?商品|没有比较", re.IGNORECASE)
# the model ran out of words in the middle of a sentence ("The material is polyester, which is")
_CUT_OFF = re.compile(r"(?:\b(?:is|are|was|were|which|that|and|or|but|the|a|an|of|to|with|for|in|on|at|by|from|their|its|his|"
                      r"her|our|your|my|this|these|those)|[，、：的和与或])\s*$",
                      re.IGNORECASE)


def topics_of(text: str) -> frozenset[str]:
    """The topics ``text`` speaks of (see ``_TOPICS``)."""
    return frozenset(name for name, rx in _TOPIC_RE.items() if rx.search(text))


def asked_topics(question: str) -> frozenset[str]:
    """What a question asks about, with the topics that answer it ("can I cancel my order?" is answered by
    when orders are dispatched)."""
    topics = topics_of(question)
    out = set(topics)
    for t in topics:
        out |= _RELATED.get(t, frozenset())
    return frozenset(out)


# ----------------------------------------------------------------------------------- comparisons

# a product by its number: "product 1", "#2", "[3]", "the second one", "产品1", "第二款"
_ORDINAL_WORDS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "last": 9}
_ZH_NUM = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_REF_EN = re.compile(
    r"\b(?:products?|items?|options?|models?|number|no\.|choice)\s*#?\s*(\d)\b|#\s*(\d)\b|\[(\d)\]|"
    r"\bthe\s+(first|second|third|fourth|fifth|last)\s+(?:one|product|item|option|model|pair|pick)?", re.IGNORECASE)
_REF_ZH = re.compile(r"(?:产品|商品|选项|款式|型号)\s*([1-9一二三四五六七八九])|第\s*([1-9一二三四五六七八九十])\s*(?:个|款|件|种|双|台|部|项)|"
                     r"([1-9])\s*号")
_COMPARE_EN = re.compile(
    r"\b(?:cheaper|cheapest|pricier|priciest|costlier|(?:more|less|most|least)\s+(?:expensive|affordable|costly)|"
    r"(?:lower|higher)[- ]priced|(?:lowest|highest)\s+(?:price[sd]?|priced|cost|rating|rated)|"
    r"(?:top|best|highest|lowest)[- ]rated|best[- ]selling|best value|(?!(?:oth|rath|lat|earli|ord|ev|nev)er\b)"
    r"[a-z]+er\s+than|(?:more|less|fewer)\s+\w+\s+than|compared\s+(?:to|with)|in comparison|whereas|unlike|"
    r"differ(?:s|ence|ent)?\s+from|(?:the\s+)?same\s+price|costs?\s+(?:more|less)|price\s+difference)\b", re.IGNORECASE)
_COMPARE_ZH = re.compile(
    r"低于|高于|少于|多于|不如|相比|比起|相较|对比|更便宜|更贵|更划算|更实惠|最便宜|最贵|最低|最高|最划算|最实惠|价格最|"
    r"性价比最|一样贵|价格相同|同样的价格|差价|比(?!较|如|例|方|赛|率)[^。，,；;！？]{1,12}?(?:更|便宜|贵|高|低|好|差|多|少|大|小|轻|重|长|短)")
_PRICE_COMPARE = re.compile(
    r"cheap|pric|cost|expensive|afford|value|便宜|贵|价|划算|实惠", re.IGNORECASE)
# the question asks to compare or choose
_ASKS_COMPARE = re.compile(
    r"\b(?:compare[sd]?|comparing|comparison|vs\.?|versus|differen(?:ce|ces|t)|differ|which|better|best|"
    r"cheapest|cheaper|most|least|between|or the|prefer|recommend|should i (?:get|buy|choose|pick))\b|"
    r"比较|对比|哪个|哪款|哪一|哪种|区别|不同|差别|差异|更|最|还是|推荐|选哪|怎么选", re.IGNORECASE)


def _refs(sentence: str) -> set[int]:
    """The product numbers a sentence names."""
    out: set[int] = set()
    for m in _REF_EN.finditer(sentence):
        g = next(x for x in m.groups() if x)
        out.add(int(g) if g.isdigit() else _ORDINAL_WORDS[g.lower()])
    for m in _REF_ZH.finditer(sentence):
        g = next(x for x in m.groups() if x)
        out.add(int(g) if g.isdigit() else _ZH_NUM.get(g, 0))
    return out


def _names(sentence: str, products: Sequence[Mapping[str, Any]]) -> int:
    """How many of ``products`` the sentence names by their own title (the part before the first comma)."""
    low = sentence.lower()
    names: set[str] = set()
    for rec in products:
        for title in _titles(rec):
            head = re.split(r"[,，]", title, maxsplit=1)[0].strip().lower()
            if len(head) >= 6 and head in low:
                names.add(head)
    # one title inside another ("Redmi Watch 4" in "Redmi Watch 4 Active") is one name
    return sum(not any(n != o and n in o for o in names) for n in names)


def _comparison(sentence: str, products: Sequence[Mapping[str, Any]]) -> str | None:
    """"price" or "other" when the sentence compares products, else None."""
    m = _COMPARE_EN.search(sentence) or _COMPARE_ZH.search(sentence)
    several = len(_refs(sentence)) >= 2 or _names(sentence, products) >= 2
    if not m and not several:
        return None
    return "price" if _PRICE_COMPARE.search(m.group() if m else sentence) else "other"


# ------------------------------------------------------------------------------- what the cards say

_STOP_EN_WORDS = """
a an the this that these those it its it's itself they them their there here is are was were be been being am
and or but so also too as at by for from in into of on onto to with within without about per than then
i me my we us our you your yours he she his her him one ones product products item items option options pick
picks choice choices model models pair set
has have had having do does did can could will would should may might must shall
just only very really quite all both each every some any more most other another such same own
costs cost costing priced price prices pricing at usd dollars dollar rmb yuan eur euro
stock stocks available availability left unit units remaining currently now today right
great good nice perfect ideal excellent awesome wonderful lovely popular stylish beautiful amazing fantastic
classic solid top quality high affordable comes come offered offers offer sold selling sells features featuring
look looks looking see find found shown show showing listed list here's there's what's which who
brand category color colour colours colors size sizes sizing rating rated stars
two three four five six seven eight nine ten
"""
_STOP_EN = frozenset(_STOP_EN_WORDS.split())
_STOP_ZH = ("这款", "这个", "这件", "这双", "那款", "该款", "此款", "商品", "产品", "价格", "售价", "价钱", "目前", "现在",
            "有货", "库存", "剩余", "还剩", "现货", "美元", "我们", "您", "你", "的", "是", "了", "为", "有", "在", "和",
            "与", "也", "很", "都", "就", "它", "件", "个", "款", "元", "只", "仅", "共", "还", "可", "以", "非常", "一款",
            "品牌", "颜色", "尺码", "评分", "分", "不错", "选择", "推荐", "优秀", "很好", "好", "第", "一", "二", "三", "四",
            "五", "这些", "都是", "其中", "这", "那", "该", "些", "台", "双", "部", "条", "套", "种")
_EN_WORD = re.compile(r"[a-z][a-z'’-]*")
_CJK = re.compile(r"[\u4e00-\u9fff]+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def _titles(rec: Mapping[str, Any]) -> list[str]:
    titles = [str(t) for t in (rec.get("titles") or {}).values() if t]
    if rec.get("title"):
        titles.append(str(rec["title"]))
    return titles


def _stem(word: str) -> str:
    word = word.strip("'’-")
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("es") and word[-3] in "sxz":
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _values(value: Any) -> str:
    """Every value of a record, nested ones too, as one text."""
    if isinstance(value, Mapping):
        return " ".join(_values(v) for v in value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return " ".join(_values(v) for v in value)
    return "" if value is None else str(value)


def _card_text(products: Iterable[Mapping[str, Any]]) -> str:
    """What a product card shows: title(s), brand, category, colour and size, sku."""
    parts: list[str] = []
    for rec in products:
        parts += _titles(rec)
        parts += [str(rec.get("brand") or ""), str(rec.get("sku") or "")]
        cat = rec.get("category") or ()
        parts += [str(c) for c in (cat if isinstance(cat, list | tuple) else [cat])]
        attrs = rec.get("attributes") or {}
        for name in ("color", "colour", "size"):
            vals = attrs.get(name) or ()
            parts += [str(v) for v in (vals if isinstance(vals, list | tuple) else [vals])]
    return " ".join(parts)


def _content_en(text: str, known: frozenset[str]) -> set[str]:
    words = {_stem(w) for w in _EN_WORD.findall(text.lower())}
    return {w for w in words if len(w) > 2 and w not in _STOP_EN and w not in known}


def _content_zh(text: str, card: str) -> str:
    """The Chinese characters of ``text`` that neither the card nor the filler words account for."""
    left = []
    for run in _CJK.findall(text):
        i = 0
        while i < len(run):
            # the longest stretch here (2+ characters) that the card or a filler word holds
            for j in range(len(run), i + 1, -1):
                piece = run[i:j]
                if piece in card or piece in _STOP_ZH:
                    i = j
                    break
            else:
                if run[i] not in _STOP_ZH:
                    left.append(run[i])
                i += 1
    return "".join(left)


def _repeats_cards(sentence: str, card: str, known: frozenset[str]) -> bool:
    """Nothing is left of ``sentence`` once what the cards show and filler words are taken out."""
    en = _content_en(sentence, known)
    zh = _content_zh(sentence, card)
    return not en and len(zh) < 2


# question words too common to say what a question is about ("order" in "how do I cancel an order?")
_GENERIC_WORDS = "order orders item items product products shop store thing things way time buy get want need know help please tell"
_GENERIC = frozenset(_GENERIC_WORDS.split())


def _shares_words(sentence: str, question: str, known: frozenset[str] = frozenset(), card: str = "") -> bool:
    """The sentence takes up a word of the question that the cards do not already show ("hood" in "does it
    have a hood?" is taken up by "it has a hood", not by the card's title "... Coat with Hood")."""
    skip = known | _GENERIC
    q = _content_en(question, skip)
    if q & _content_en(sentence, skip):
        return True
    qz = "".join(_CJK.findall(question))
    sz = "".join(_CJK.findall(sentence))
    bigrams = {qz[i:i + 2] for i in range(len(qz) - 1)}
    return any(b in sz for b in bigrams if b not in card and not any(c in "的是了吗呢吧么个这那有" for c in b))


# ------------------------------------------------------------------------------------------ the check


# a shopper's own words as the model quotes them back: "my parcel" becomes "your parcel"
_TURNED = {"i": "(?:i|you)", "me": "(?:me|you)", "my": "(?:my|your)", "mine": "(?:mine|yours)",
           "we": "(?:we|you)", "us": "(?:us|you)", "our": "(?:our|your)", "am": "(?:am|are)"}


def _speaker_free(text: str) -> str:
    """``text`` as a regular expression that also matches it with the speaker turned round."""
    pattern = "".join(_TURNED.get(part.lower(), re.escape(part)) for part in re.split(r"(\W+)", text))
    return pattern.replace("我", "(?:我|你|您)")


class Relevance:
    """The question and the products shown, read once; calling it judges one sentence of the model's text."""

    def __init__(self, question: str, kind: Kind, products: Sequence[Mapping[str, Any]] = ()) -> None:
        self.question = question
        self.kind = kind
        self.products = tuple(products)
        # a closing line that restates the search ("these are all bluetooth earbuds") repeats what is on screen too
        self.card = _card_text(self.products) + (f" {question}" if kind == "closing" else "")
        self.known = frozenset(_stem(w) for w in _EN_WORD.findall(self.card.lower()))
        # everything the records hold (price, stock, description, every attribute), for an answer's figures and words
        held = " ".join(_values(rec) for rec in self.products)
        self.record_numbers = frozenset(_NUMBER.findall(held))
        self.record_words = frozenset(_stem(w) for w in _EN_WORD.findall(held.lower()))
        self.asked = asked_topics(question)
        self.question_words = frozenset(_content_en(question, frozenset()))
        self.asks_to_compare = bool(_ASKS_COMPARE.search(question))
        # the question copied into the answer, in quotes or with its question mark ('No mention: "I want to ..."')
        # with the speaker turned round ('"Your parcel has not moved for a week" is a question.')
        q = _speaker_free(question.strip().rstrip("?？ "))
        self.quoted = re.compile(rf"[\"“「'‘]\s*{q}|{q}\s*[?？]", re.IGNORECASE) if len(q) >= 4 else None

    def _restates(self, s: str) -> bool:
        """An answer sentence with nothing the question did not say ("You can use my student code on sale
        items."), or the question asked back ("Is there a restocking fee if I return an opened TV?"). A figure
        the question did not hold is something said ("Return shipping costs $5.99.")."""
        s = s.strip().strip("\"'“”‘’「」『』 ")
        if set(_NUMBER.findall(s)) - set(_NUMBER.findall(self.question)):
            return False
        if _repeats_cards(s, self.question, self.question_words):
            return True
        if not re.search(r"[?？]\s*$", s):
            return False
        words = _content_en(s, frozenset())
        return bool(words) and 2 * len(words & self.question_words) >= len(words)

    def __call__(self, sentence: str) -> str | None:
        """Why ``sentence`` should not be sent, or None when it is about the question."""
        s = sentence.strip()
        if not re.search(r"\w", s):
            return None
        if _META.search(s):
            return "it talks about the search or the facts it was given instead of answering"
        if not re.search(r"[.!?。！？;；:：)）\"”'’]\s*$", s) and _CUT_OFF.search(s):
            return "it is cut off"
        if self.kind != "closing" and self.quoted is not None and self.quoted.search(s):
            return "it repeats the question"
        if self.kind == "support" and self._restates(s):
            return "it restates the question"
        said = topics_of(s)
        compared = _comparison(s, self.products) if self.kind != "support" else None
        if compared is not None and not self.asks_to_compare and not (compared == "price" and "price" in self.asked):
            return "it compares products the shopper did not ask to compare"
        if self.kind == "support" and len(_refs(s)) >= 2:
            return "it compares products the shopper did not ask about"
        if self.kind == "answer" and self.products:
            # an answer about one product says what its record holds: a figure neither the question nor the record
            # has ("1.00 pieces come in the first set."), or the question turned into a yes with no word of the
            # record in it ("The first one would be ok for flat feet."), is no answer from the catalog
            figures = set(_NUMBER.findall(s))
            if figures - set(_NUMBER.findall(self.question)) - self.record_numbers:
                return "it states a figure that neither the question nor the catalog holds"
            words = _content_en(s, frozenset())
            if words and words <= self.question_words and not words & self.record_words and not figures & self.record_numbers:
                return "it only turns the question into an answer, with nothing from the catalog"
        # an asked-for comparison ("the cheapest is ...") says more than the cards, whatever words it uses
        repeats = self.kind != "support" and compared is None and _repeats_cards(s, self.card, self.known)
        if repeats and self.kind == "closing":
            return "it only repeats what the product cards already show"
        if self.kind == "closing" and compared is None and said & {"price", "stock"} and not _INVITES.search(s):
            return "it repeats the prices or stock the cards already show"
        # a word of the question counts as taken up only when the cards do not show it anyway ("running" in
        # "The Nike ... Running Shoe costs $159.99" comes from the title, not from the question)
        tangents = said & TANGENTS if not _INVITES.search(s) else frozenset()
        if self.asked and tangents and not (said & self.asked) and not _shares_words(s, self.question, self.known,
                                                                                     self.card):
            return f"it is about {'/'.join(sorted(tangents))}, which the shopper did not ask about"
        if repeats and not (said & self.asked or _shares_words(s, self.question)):
            return "it only repeats what the product cards already show"
        return None


def off_topic(sentence: str, question: str, *, kind: Kind, products: Sequence[Mapping[str, Any]] = ()) -> str | None:
    """Why ``sentence`` (one sentence of the model's text) is not about ``question``, or None when it is.

    ``products``: the records the shopper sees (their cards), for closing lines and product answers.
    """
    return Relevance(question, kind, products)(sentence)


def relevance_check(question: str, kind: Kind, products: Sequence[Mapping[str, Any]] = ()) -> Callable[[str], str | None]:
    """A per-sentence judge for ``model/writing/live.py``: the sentence -> why it is dropped, or None."""
    return Relevance(question, kind, products)
