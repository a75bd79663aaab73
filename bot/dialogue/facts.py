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

__all__ = ["asked_fact", "fact_answer", "measures", "stock_line", "title_spec"]

# a message put as a question (its form or its words)
QUESTION = re.compile(
    r"[?？]|吗|是否|有没有|多少|能不能|可不可以|可以.{0,8}吗|怎么样|什么|哪|"
    r"^\s*(?:is|are|does|do|can|could|will|would|has|have|how|what|which|why|who|tell me)\b", re.I)
# the facts a question can ask for, in the order they are tried; each pattern reads English and Chinese
_ASKS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # "how much" asks the price only about the product itself ("how much is it?"), not "how much ram does it have?"
    ("price", re.compile(r"\bhow much(?=\s+(?:is|are|does|do|would|will|for|money)\b(?!.*\bweigh)|\s*[?？]|\s*$)|"
                         r"\b(?:price|cost|costs)\b|多少钱|价格|价钱|几块钱", re.I)),
    ("stock", re.compile(r"\b(?:in stock|available|availability|sold out|out of stock|any left|how many left)\b|"
                         r"有货|有没有货|还有吗|库存|缺货|卖完", re.I)),
    ("material", re.compile(r"\b(?:material|materials|fabric|made (?:of|from|out of))\b|材质|材料|面料|什么做的|"
                            r"用什么做", re.I)),
    ("color", re.compile(r"\b(?:colou?r|colou?rs)\b|颜色|什么色|几种色", re.I)),
    ("size", re.compile(r"\b(?:size|sizes|sizing)\b|尺码|尺寸|码数|多大码|[有没]\s*\d+\s*码", re.I)),
    ("brand", re.compile(r"\b(?:brand|who makes|made by)\b|品牌|牌子|哪个厂", re.I)),
    ("rating", re.compile(r"\b(?:rating|rated|stars?)\b|评分|几星|几颗星", re.I)),
    ("weight", re.compile(r"\b(?:weigh|weighs|weight|heavy|heaviness)\b|多重|重量|重不重|有多沉", re.I)),
    ("capacity", re.compile(r"\b(?:capacity|volume|how (?:big|large) is)\b|容量|多大容量|装多少", re.I)),
)
# the measures a title or description states: "12 kg", "750 ml", "5L", "6 qt"
_MEASURES = {
    "weight": re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)?)\s?(kg|g|lbs?|oz)\b", re.I),
    "capacity": re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)?)\s?(ml|l|litres?|liters?|qt|quarts?)\b", re.I),
}
_A_SIZE = re.compile(r"(?:size|尺码|码)\s*([0-9]{1,3}(?:\.5)?|xxs|xs|s|m|l|xl|xxl|xxxl)\b|"
                     r"(?<![0-9a-z])([0-9]{1,3}(?:\.5)?|xxs|xs|xl|xxl|xxxl)\s*(?:码|号)", re.I)


def asked_fact(question: str) -> str | None:
    """The one catalog fact ``question`` asks for ("price", "stock", "material", "color", "size", "brand",
    "rating", "weight", "capacity"), or None: none of them, or two in one breath (the card shows both)."""
    if not question or not QUESTION.search(question):
        return None
    asked = [name for name, pattern in _ASKS if pattern.search(question)]
    return asked[0] if len(asked) == 1 else None


def measures(p: Product, kind: str) -> list[str]:
    """The ``kind`` ("weight" or "capacity") measures that ``p``'s title, attributes or description state, as
    written ("12 kg"), first seen first."""
    found: list[str] = []
    texts = [p.title, *(", ".join(v) for v in p.attributes.values()), p.description or ""]
    for m in _MEASURES[kind].finditer(" · ".join(texts)):
        value = f"{m.group(1)} {m.group(2)}"
        if value.lower() not in (f.lower() for f in found):
            found.append(value)
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
    fact = asked_fact(question)
    if fact is None:
        spec = title_spec(question, p)
        return say("fact_title", lang, value=spec) if spec else None
    if fact == "price":
        return say("details_price", lang, price=format_price(p.price, p.currency))
    if fact == "stock":
        return stock_line(p, lang)
    name = attribute_name(fact, lang)
    if fact == "brand":
        values = [p.brand] if p.brand else list(p.attr("brand"))
    elif fact in _MEASURES:  # a shop's own weight column, else what its title or description states
        values = list(p.attr(fact)) or measures(p, fact)
    else:
        values = [attribute_value(fact, v, lang) for v in p.attr(fact)]
    if not values:
        spec = title_spec(question, p)  # "how big is the ssd?": "1TB SSD"
        return say("fact_title", lang, value=spec) if spec else say("fact_missing", lang, fact=name)
    if fact == "size":
        wanted = _A_SIZE.search(question)
        size = (wanted.group(1) or wanted.group(2)) if wanted else None
        if size is not None:
            held = size.lower() in (v.lower() for v in p.attr("size"))
            return say("fact_size_yes" if held else "fact_size_no", lang, size=size.upper(), sizes=", ".join(values))
    if fact == "rating":
        return say("fact_rating", lang, value=values[0])
    return say("fact_is", lang, fact=name, value=", ".join(values))


def stock_line(p: Product, lang: str) -> str:
    """"In stock (12 left).", "In stock." where the shop gave no count, or "Out of stock."."""
    if p.stock <= 0:
        return say("details_oos", lang)
    return say("details_stock", lang, stock=p.stock) if p.stock_counted else say("details_in_stock", lang)
