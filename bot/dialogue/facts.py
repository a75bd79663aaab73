"""What the catalog says about one product, asked in words: "what material is the first one?", "第一个是什么
材质？", "does it come in size 40?", "how heavy is it?", "is it in stock?".

Code reads the answer from the product's record (its attributes, price, stock, and the measures its title or
description states) so that a question the card above already answers is answered from the same facts, never
with "the catalog doesn't say". A fact the record does not hold is said plainly to be missing; only questions
about none of these facts go to the language model (bot/dialogue/products.py).
"""

from __future__ import annotations

import re

from bot.dialogue.messages import attribute_name, attribute_value, say
from bot.dialogue.replies import format_price
from retrieval.catalog import Product
from retrieval.kinds import title_head
from retrieval.lexical import has_cjk, tokenize
from retrieval.lexicon import default_lexicon

__all__ = ["asked_fact", "fact_answer", "fact_reason", "facts_holding", "measures", "phrase_of", "product_facts",
           "question_words", "rule_answer", "searched_words", "stock_line", "title_spec"]

# a message put as a question (its form or its words)
QUESTION = re.compile(
    r"[?？]|吗|是否|有没有|多少|多久|多长|多大|多重|多高|多宽|能不能|可不可以|可以.{0,8}吗|怎么样|什么|哪|"
    r"^\s*(?:is|are|does|do|can|could|will|would|has|have|how|what|whats|what's|which|why|who|tell me)\b", re.I)
# the facts a question can ask for, in the order they are tried; each pattern reads English and Chinese
_ASKS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # "how much" asks the price only about the product itself ("how much is it?"), not "how much ram does it have?"
    ("price", re.compile(r"\bhow much(?=\s+(?:is|are|does|do|would|will|for|money)\b(?!.*\bweigh)|\s*[?？]|\s*$)|"
                         r"\b(?:price|cost|costs)\b|多少钱|价格|价钱|几块钱|卖多少|售价|什么价", re.I)),
    ("stock", re.compile(r"\b(?:in stock|available|availability|sold out|out of stock|any left|how many left)\b|"
                         r"有货|有没有货|还有吗|库存|缺货|卖完", re.I)),
    ("material", re.compile(r"\b(?:material|materials|fabric|made (?:of|from|out of)|filled with|filling|stuffed with)\b|"
                            r"材质|材料|面料|什么做的|用什么做|填充|什么填的", re.I)),
    ("color", re.compile(r"\b(?:colou?r|colou?rs)\b|颜色|什么色|几种色", re.I)),
    ("size", re.compile(r"\b(?:size|sizes|sizing)\b|\bcomes? in (?:an? )?(?:xxs|xs|s|m|l|xl|xxl|xxxl)\b|尺码|尺寸|码数|多大码|[哪什]些码|什么码|几码|啥码|"
                        r"[有没]\s*(?:\d+|[xsml]{1,4})\s*码", re.I)),
    ("brand", re.compile(r"\b(?:brand|who makes|made by)\b|品牌|牌子|哪个厂", re.I)),
    ("rating", re.compile(r"\b(?:rating|rated|stars?)\b|评分|几星|几颗星", re.I)),
    ("weight", re.compile(r"\b(?:weigh|weighs|weight|heavy|heaviness)\b|多重|重量|重不重|有多沉", re.I)),
    ("storage", re.compile(r"\b(?:storage|ram|memory|ssd|hard drive|how many (?:gb|gigs))\b|存储|储存|内存|运存|硬盘|"
                           r"多少g\b|几个g\b", re.I)),
    ("screen", re.compile(r"\b(?:screen|display)\b|屏幕|屏|几寸|多少寸|多大寸", re.I)),
    ("capacity", re.compile(r"\b(?:capacity|volume|how (?:big|large) is|how much (?:\w+ )?(?:does|do|will|can) (?:it|they|this|"
                            r"that)(?: one)? (?:hold|take|fit))\b|容量|多大容量|装多少|装得下多少|[烧煮装盛]多少", re.I)),
)
# the measures a title or description states: "12 kg", "750 ml", "5L", "6 qt"
_MEASURES = {
    "weight": re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)?)\s?(kg|g|lbs?|oz)\b", re.I),
    "capacity": re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)?)\s?(ml|l|litres?|liters?|qt|quarts?)\b", re.I),
    "screen": re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s?(\"|”|''|-?inch(?:es)?\b|in\b|英寸|寸)", re.I),
    # "16GB RAM", "1TB SSD", "512GB of storage": the number, its unit and the word after it
    "storage": re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)?)\s?((?:gb|tb)(?:\s+(?:of\s+)?(?:ram|ssd|hdd|storage|memory|"
                          r"unified memory|internal storage))?)\b", re.I),
}
_A_SIZE = re.compile(r"(?:size|尺码|码|comes? in(?: an?)?)\s*([0-9]{1,3}(?:\.5)?|xxs|xs|s|m|l|xl|xxl|xxxl)\b|"
                     r"(?<![0-9a-z])([0-9]{1,3}(?:\.5)?|xxs|xs|s|m|l|xl|xxl|xxxl)\s*(?:码|号)", re.I)


def asked_fact(question: str) -> str | None:
    """The one catalog fact ``question`` asks for ("price", "stock", "material", "color", "size", "brand",
    "rating", "storage", "weight", "capacity"), or None: none of them, or two in one breath (the card shows
    both)."""
    if not question or not QUESTION.search(question):
        return None
    asked = [name for name, pattern in _ASKS if pattern.search(question)]
    if "screen" in asked:  # "what size is the screen?", "how big is the display?"
        asked = [a for a in asked if a not in {"size", "capacity"}]
    return asked[0] if len(asked) == 1 else None


def measures(p: Product, kind: str) -> list[str]:
    """The ``kind`` ("weight", "capacity", "storage" or "screen") measures that ``p``'s title, attributes or description state, as
    written ("12 kg"), first seen first."""
    found: list[str] = []
    texts = [p.title, *(", ".join(v) for v in p.attributes.values()), p.description or ""]
    for m in _MEASURES[kind].finditer(" · ".join(texts)):
        value = f"{m.group(1)}{m.group(2)}" if m.group(2) in {'"', "”", "''"} else f"{m.group(1)} {m.group(2)}"
        # one measure once: "512 GB" of the title and "512 GB of storage" of the description are the same
        same = [f for f in found if f.lower().startswith(value.lower()) or value.lower().startswith(f.lower())]
        if not same:
            found.append(value)
        elif len(value) > len(same[0]):
            found[found.index(same[0])] = value
    return found


def title_spec(question: str, p: Product) -> str | None:
    """The part of ``p``'s title after its name that states what ``question`` asks about with a number ("how
    much ram does it have?": "16GB RAM" of "Dell Latitude 5450 14\" Laptop, 16GB RAM, 1TB SSD, Grey"), or None."""
    if not QUESTION.search(question):
        return None
    words = {w for w in _WORD.findall(question.lower()) if w not in _NOT_SPECS}
    for part in p.title.split(",")[1:]:
        part = part.strip()
        held = words & set(_WORD.findall(part.lower()))
        # a spec with its number ("16GB RAM"), or a short part that is the word asked about ("Paperback")
        if held and (any(c.isdigit() for c in part) or len(part.split()) <= 2):
            return part
    return None


_WORD = re.compile(r"[a-z]{2,}")
# question words that name no spec
_NOT_SPECS = frozenset(["how", "much", "many", "what", "which", "does", "do", "did", "is", "are", "can", "could", "will", "would", "has", "have", "it", "its", "this", "that", "the", "a", "an", "one", "first", "second", "third", "fourth", "fifth", "last", "of", "in", "on", "for", "with", "and", "or", "does", "come", "get", "there", "any"])


def fact_answer(question: str, p: Product, lang: str) -> str | None:
    """The answer to a question about one fact of ``p``, from its record (or that the record does not hold
    it); None for a question about anything else, which the language model answers from the same record."""
    found = _fact_answer(question, p, lang)
    return None if found is None else found[0]


def _fact_answer(question: str, p: Product, lang: str) -> tuple[str, bool] | None:
    """``fact_answer`` and whether the record holds the fact (False: the answer says it does not)."""
    fact = asked_fact(question)
    if fact is None:
        spec = title_spec(question, p)
        return (say("fact_title", lang, value=spec), True) if spec else None
    if fact == "price":
        return say("details_price", lang, price=format_price(p.price, p.currency)), True
    if fact == "stock":
        return stock_line(p, lang), True
    if fact == "storage" and (spec := title_spec(question, p)):  # "how much ram?": "16GB RAM", not the SSD too
        return say("fact_title", lang, value=spec), True
    name = say("fact_storage", lang) if fact == "storage" else attribute_name(fact, lang)
    if fact == "brand":
        values = [p.brand] if p.brand else list(p.attr("brand"))
    elif fact in _MEASURES:  # a shop's own weight column, else what its title or description states
        values = list(p.attr(fact)) or measures(p, fact)
    else:
        values = [attribute_value(fact, v, lang) for v in p.attr(fact)]
    if not values:
        spec = title_spec(question, p)  # "how big is the ssd?": "1TB SSD"
        return (say("fact_title", lang, value=spec), True) if spec else (say("fact_missing", lang, fact=name), False)
    if fact == "size":
        wanted = _A_SIZE.search(question)
        size = (wanted.group(1) or wanted.group(2)) if wanted else None
        if size is not None:
            held = size.lower() in (v.lower() for v in p.attr("size"))
            return say("fact_size_yes" if held else "fact_size_no", lang, size=size.upper(), sizes=", ".join(values)), True
    if fact == "rating":
        return say("fact_rating", lang, value=values[0]), True
    return say("fact_is", lang, fact=name, value=", ".join(values)), True


def stock_line(p: Product, lang: str) -> str:
    """"In stock (12 left).", "In stock." where the shop gave no count, or "Out of stock."."""
    if p.stock <= 0:
        return say("details_oos", lang)
    return say("details_stock", lang, stock=p.stock) if p.stock_counted else say("details_in_stock", lang)


# words of a question that say nothing about what it asks for
_ASKING = frozenset(["which", "one", "ones", "these", "them", "those", "of", "is", "are", "would", "should", "has", "have", "had", "does", "do", "best", "good", "better", "suit", "suits", "suited", "suitable", "fit", "fits", "work", "works", "ok", "okay", "fine", "first", "second", "third", "fourth", "fifth", "last", "can", "will", "use", "for", "a", "an", "the", "my", "me", "i", "we", "our", "you", "it", "its", "to", "in", "on", "with", "and", "or", "most", "more", "really", "really", "any", "all", "either", "none", "what", "recommend", "recommended", "suggest", "choose", "pick", "go", "get", "buy", "one's", "would've"])
# (compared as BM25 tokens: "does" is "doe")
_ASKING_TOKENS = _ASKING | frozenset(t for w in _ASKING for t in tokenize(w)) | frozenset(
    t for w in ("how", "many", "much", "come", "comes", "when", "there", "need", "know", "tell", "about", "long", "take",
                "takes", "get", "gets", "put", "keep", "still", "also", "really", "very", "so", "enough", "well")
    for t in {w, *tokenize(w)})
# "这个", "这口", "第三个", "三个": which product, not what about it
_ZH_WHICH = re.compile(r"^(?:这|那|第)?[一二三四五六七八九十两\d]*[个款件双台支本条只口把顶套瓶盒包部张副]$")
_ZH_ASKING = frozenset(["这几", "几个", "这些", "哪个", "哪款", "哪件", "哪双", "哪台", "哪支", "哪本", "哪条", "哪只",
                        "选哪", "适合", "第一", "第二", "第三", "第四", "第五", "一个", "二个", "能用", "可以", "能", "比较", "推荐", "一点", "更", "最", "好", "的", "吗", "呢", "啊", "用", "买",
                        "多", "大", "多大", "多少", "多久", "一次", "是不是", "有没有", "什么", "怎么", "怎么样", "吧", "了", "是"])


def question_words(text: str, vocabulary: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """The words of a question that say what it asks of a product (BM25 tokens: "running in the rain": run,
    rain), with the English of its Chinese words that ``vocabulary`` holds (防水: "waterproof")."""
    toks = [t for t in tokenize(text) if t not in _ASKING_TOKENS and t not in _ZH_ASKING and not t.isdigit()
            and not _ZH_WHICH.match(t)]
    zh = [t for t in toks if has_cjk(t)]
    # (a dictionary's function words are no fact: 不 "no" found "Spaghetti No. 5")
    english = [t for t in default_lexicon().english_tokens(zh, vocabulary) if len(t) > 2] if zh else []
    return tuple(dict.fromkeys([*toks, *english]))


# "is the second one good for wide feet?", "第一个适合小孩用吗？": does one product suit something
_SUITS = re.compile(r"\b(?:good|ok|okay|suitable|suited|fine|right|great|safe|enough)\s+(?:for|with|on|in|to)\b|"
                    r"\bsuit(?:s|able)?\b|\bcan\s+(?:i|you|it)\s+(?:use|wear|take|put)\b|适合|能用|可以用|能不能用|"
                    r"用得了|玩得了|穿得了", re.I)


def facts_holding(question: str, p: Product, lang: str, known: frozenset[str] = frozenset()) -> str | None:
    """The facts of ``p`` that hold the words ``question`` asks about ("does it have a hood?": "With an
    adjustable hood."), as one "Going by the catalog: ..." line; None when none does. The words that name the
    kind of product it is ("shoe" of a running shoe, 锅 "pan" of a frying pan) and ``known`` words (those the
    shopper searched with) are no answer."""
    facts = product_facts(p)
    words = question_words(question, frozenset(t for _, toks in facts for t in toks))
    kind = searched_words({}, [p]) | known
    reasons = list(dict.fromkeys(fact_reason(fact, w, i == 0 or fact == p.titles.get("zh"), lang)
                                 for w in words if w not in kind for i, (fact, toks) in enumerate(facts) if w in toks))
    return say("suits_facts", lang, reasons="; ".join(r.rstrip(".。 ") for r in reasons[:3])) if reasons else None


def rule_answer(question: str, p: Product, lang: str, known: frozenset[str] = frozenset()) -> tuple[str, bool] | None:
    """The answer code gives to a question about ``p`` from its record alone, and whether the record holds it
    (False: it says plainly that the catalog does not say); None for a message that is no question. ``known``:
    see ``facts_holding``."""
    if not QUESTION.search(question):
        return None
    fact = _fact_answer(question, p, lang)
    if fact is not None:
        return fact
    found = facts_holding(question, p, lang, known)
    if found is not None:
        return found, True
    if not question_words(question):  # "tell me more about the second one": the card is the answer
        return None
    if _SUITS.search(question):
        return say("suits_unknown", lang, criterion=phrase_of(question) or say("suits_that", lang)), False
    return say("fact_not_listed", lang), False


def searched_words(state: dict[str, object], shown: list[Product]) -> frozenset[str]:
    """The words that say nothing about which shown product fits: those of the search, of the kind each shown
    product is (its title's last word before the comma) and of the shelves they are on ("shoes" of five running
    shoes; "bike" of bike helmets and a bike lock)."""
    heads = {h for p in shown if (h := title_head(p.title))}  # "pan" of frying pans
    return frozenset(tokenize(str(state.get("query") or ""))) | heads | {
        t for p in shown for level in p.category for t in tokenize(level)}


def fact_reason(fact: str, word: str, is_name: bool, lang: str) -> str:
    """Why a fact fits, as the shopper reads it: the word of the name that says so ("Waterproof" in its name),
    else the fact itself, a long sentence cut."""
    if is_name:
        surface = next((w for w in re.findall(r"[\w'-]+", fact) if tokenize(w) == [word]), word)
        return say("advice_in_name", lang, word=surface)
    return fact if len(fact) <= 80 else fact[:80].rsplit(" ", 1)[0] + " …"


def product_facts(p: Product) -> list[tuple[str, frozenset[str]]]:
    """``p``'s facts as a shopper would read them ("title: ... Waterproof Hiking Shoe", "material: mesh"), each
    with its BM25 tokens: the title's parts after its name, its attributes, its description's sentences."""
    out: list[tuple[str, frozenset[str]]] = []
    name, *specs = [part.strip() for part in p.title.split(",")]
    out.append((name, frozenset(tokenize(name))))
    out += [(s, frozenset(tokenize(s))) for s in specs if s]
    for a, values in p.attributes.items():
        if a in {"rating", "stock_count"}:
            continue
        # the values answer, not the name: "color: black" says nothing about a light whose colour can be changed
        text = f"{a}: {', '.join(values)}"
        out.append((text, frozenset(tokenize(", ".join(values)))))
    for sentence in re.split(r"(?<=[.!?。！？])\s+", p.description or ""):
        if sentence:
            out.append((sentence.strip(), frozenset(tokenize(sentence))))
    zh = p.titles.get("zh")
    if zh:
        out.append((zh, frozenset(tokenize(zh))))
    return out


def phrase_of(text: str) -> str:
    """What the question asks for, as the shopper put it: the words after "for" / "适合" ("running in the
    rain"), or "" when it does not say it that way."""
    m = re.search(r"\b(?:best|good|better|ideal|suited|suitable|work|works|ok|okay)\s+(?:for|at|in|on)\s+(.+)", text, re.I) \
        or re.search(r"\bfor\s+(.+)", text, re.I) or re.search(r"适合(.+)", text)
    if not m:
        return ""
    phrase = re.sub(r"^(?:the|a|an)\s+", "", re.split(r"[?？!！。,，;；]", m.group(1))[0].strip(), flags=re.I)
    phrase = re.sub(r"(?:用|穿|玩|戴)?(?:吗|呢|嘛|么)$", "", phrase)  # 适合小孩用吗: 小孩
    if re.match(r"(?:and|or|but|it|that|this|them|me|you)\b", phrase, re.I):  # "which should I go for and why"
        return ""
    return phrase if len(phrase) <= 60 else ""
