"""Structured filters and the query understanding that finds them in free text.

"a red winter coat under $80" -> text "winter coat", Filters(colors={red}, max_price=80).
"我想买一款红色的外套，500元以下" -> text "外套", Filters(colors={red}, max_price=500, currency CNY).

Only facts that the catalog can check are turned into filters (price, colour, size, brand, category,
stock); everything else stays in the text for the rankers. Parsing is conservative: a number is a
price only with a price word or currency around it, so "iphone 15" stays a product name.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Literal

import numpy as np

from retrieval.catalog import Product
from retrieval.lexical import has_cjk

__all__ = ["COLORS", "DEFAULT_USD_RATES", "Filters", "ParsedQuery", "SortOrder", "color_name", "convert_price",
           "parse_query", "set_exchange_rates"]

# What one unit of a currency is worth in US dollars, so a budget in one currency filters prices in
# another ("500元以下" in a shop that prices in dollars means about $70, not $500). Approximate and for
# budget filters only: prices shown are always the catalog's own. SHOPBOT_EXCHANGE_RATES overrides them.
DEFAULT_USD_RATES: dict[str, float] = {"USD": 1.0, "CNY": 0.14, "EUR": 1.08, "GBP": 1.27}
_usd_rates: dict[str, float] = dict(DEFAULT_USD_RATES)
_SYMBOL = {"USD": "$", "CNY": "¥", "EUR": "€", "GBP": "£"}


def set_exchange_rates(rates: dict[str, float]) -> None:
    """Use ``rates`` (currency -> US dollars per unit) on top of the defaults, for this process."""
    global _usd_rates
    _usd_rates = {**DEFAULT_USD_RATES, **{k.upper(): float(v) for k, v in rates.items() if float(v) > 0}}


def convert_price(amount: float, src: str, dst: str) -> float | None:
    """``amount`` of ``src`` in ``dst``; None when a rate is unknown."""
    src, dst = src.upper(), dst.upper()
    if src == dst:
        return amount
    a, b = _usd_rates.get(src), _usd_rates.get(dst)
    return None if a is None or b is None else amount * a / b

SortOrder = Literal["relevance", "price_asc", "price_desc", "rating"]

# canonical colour -> words that mean it (English and Chinese)
COLORS: dict[str, tuple[str, ...]] = {
    "black": ("black", "黑色", "黑"),
    "white": ("white", "白色", "白"),
    "red": ("red", "红色", "红"),
    "blue": ("blue", "蓝色", "蓝"),
    "navy": ("navy", "藏青色", "藏青", "海军蓝"),
    "green": ("green", "绿色", "绿"),
    "grey": ("grey", "gray", "灰色", "灰"),
    "pink": ("pink", "粉色", "粉红色", "粉红", "粉"),
    "beige": ("beige", "米色", "米白色"),
    "brown": ("brown", "棕色", "咖啡色", "棕"),
    "yellow": ("yellow", "黄色", "黄"),
    "purple": ("purple", "紫色", "紫"),
    "silver": ("silver", "银色", "银"),
    "gold": ("gold", "golden", "金色"),
    "orange": ("orange", "橙色", "橘色"),
}
_COLOR_WORD = {w: c for c, words in COLORS.items() for w in words}
_EN_COLOR = re.compile(r"\b(" + "|".join(w for w in _COLOR_WORD if w.isascii()) + r")\b", re.I)
_ZH_COLOR = re.compile("(" + "|".join(sorted((w for w in _COLOR_WORD if not w.isascii()), key=len, reverse=True)) + ")的?")


def color_name(color: str, language: str = "en") -> str:
    """A canonical colour as a shopper of ``language`` reads it ("grey" -> "灰色" in Chinese); as given
    otherwise, and for a colour the table does not know."""
    if language != "zh":
        return color
    return next((w for w in COLORS.get(color.lower(), ()) if not w.isascii()), color)


def _zh_colors(text: str) -> list[re.Match[str]]:
    """The Chinese colour words in ``text``. A one-character colour (蓝, 红, 白 ...) counts only when it is a
    word by itself: 蓝牙 is Bluetooth, 红米 a phone brand, 白酒 a liquor, 粉底 a foundation (jieba's words,
    read once per text and only when such a character occurs)."""
    found = list(_ZH_COLOR.finditer(text))
    if all(len(m.group(1)) > 1 for m in found):
        return found
    from retrieval.lexical import cjk_word_ends  # lexical loads scipy (~0.15 s): only for such a character

    ends = cjk_word_ends(text)
    return [m for m in found if len(m.group(1)) > 1 or ends.get(m.start()) == m.start() + 1]


_CUR = r"(?:\$|usd|us\$|dollars?|bucks|€|eur|euros?|£|gbp|pounds?|¥|￥|rmb|cny|yuan|元|块钱?)"
# (?<!\d): a number starts where its digits start; without it a long run of digits ("1" * 5000) is tried
# from every position inside it, and the price patterns take seconds (tests/hostile/test_properties.py)
_NUM = r"(?<!\d)(\d+(?:[.,]\d+)?)\s*(k)?"
_PRICE_UNDER = re.compile(
    rf"(?:under|below|less than|cheaper than|at most|max(?:imum)?|up to|no more than|within|<=?)\s*{_CUR}?\s*{_NUM}\s*{_CUR}?",
    re.I,
)
_PRICE_OVER = re.compile(
    rf"(?:over|above|more than|at least|min(?:imum)?|from|>=?)\s*{_CUR}\s*{_NUM}\s*{_CUR}?|"
    rf"(?:over|above|more than|at least|min(?:imum)?|>=?)\s*{_NUM}\s*{_CUR}",
    re.I,
)
_PRICE_RANGE = re.compile(rf"(?:between\s*)?{_CUR}?\s*{_NUM}\s*{_CUR}?\s*(?:-|–|to|and|~|到|至)\s*{_CUR}?\s*{_NUM}\s*{_CUR}?", re.I)
_ZH_UNDER = re.compile(rf"{_CUR}?\s*{_NUM}\s*{_CUR}?\s*(?:以下|以内|之内|内)|(?:低于|不超过|少于|便宜于)\s*{_CUR}?\s*{_NUM}\s*{_CUR}?")
_ZH_OVER = re.compile(rf"{_CUR}?\s*{_NUM}\s*{_CUR}?\s*以上|(?:高于|超过|多于)\s*{_CUR}?\s*{_NUM}\s*{_CUR}?")
_SIZE = re.compile(
    r"\b(?:size|sz|eu|us|uk)\s*([0-9]{1,2}(?:\.5)?|xxs|xs|s|m|l|xl|xxl|xxxl|2xl|3xl)\b|"
    r"\b(xxs|xs|xl|xxl|xxxl|2xl|3xl)\b|"
    r"([0-9]{2}(?:\.5)?)\s*(?:码|号)|"
    r"(?:尺码|尺寸)\s*([0-9]{2}|xs|s|m|l|xl|xxl)",
    re.I,
)
# UK and US shoe sizes in the EU sizes most shops list (a size in the shop's own system still matches as said):
# UK 5 = EU 38; US women's 7 = EU 38, US men's 9 = EU 42
_SHOE_SYSTEM = re.compile(r"^\s*(uk|us)\b", re.I)
_EU_OFFSET = {"uk": 33.0, "us_women": 31.0, "us": 33.0}


def _eu_shoe_sizes(said: str, value: str, *, women: bool) -> set[str]:
    system = _SHOE_SYSTEM.match(said)
    if system is None or not re.fullmatch(r"[0-9]{1,2}(?:\.5)?", value) or not 2 <= float(value) <= 15:
        return set()
    key = system.group(1).lower()
    eu = float(value) + _EU_OFFSET["us_women" if key == "us" and women else key]
    return {f"{eu:g}", f"{eu - 0.5:g}"} if eu % 1 else {f"{eu:g}"}


_IN_STOCK = re.compile(r"\b(?:in[- ]stock|available now|available)\b|有货|现货", re.I)
# "cheap earbuds", "有没有便宜的蓝牙耳机": the cheapest relevant ones first ("cheaper" / "便宜一点" is a price
# nudge on the results on screen, handled by the dialogue)
_SORT_CHEAP = re.compile(r"\b(?:cheapest|cheap|inexpensive|affordable|budget|lowest price|least expensive|price low to high)\b|"
                         r"最便宜|价格从低到高|(?<![更再比])(?:便宜|实惠)(?!一点|一些|点|些)", re.I)
_SORT_PRICEY = re.compile(r"\b(?:most expensive|highest price|priciest|price high to low)\b|最贵|价格从高到低", re.I)
_SORT_RATING = re.compile(r"\b(?:best rated|top rated|highest rated)\b|评分最高|好评最多", re.I)
_FILLER = re.compile(
    r"\b(?:i(?:'m| am)? (?:want|need|looking for|would like)|show me|find me|looking for|search for|"
    r"i want to buy|do you have|can you find|please|for me)\b|我想买|我想要|我要买|我要|帮我找|^\s*要|给我找|有没有|想买|请问",
    re.I,
)
_CURRENCY_OF = {"$": "USD", "usd": "USD", "us$": "USD", "dollar": "USD", "dollars": "USD", "bucks": "USD",
                "€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR", "£": "GBP", "gbp": "GBP",
                "pound": "GBP", "pounds": "GBP", "¥": "CNY", "￥": "CNY", "rmb": "CNY", "cny": "CNY",
                "yuan": "CNY", "元": "CNY", "块": "CNY", "块钱": "CNY"}
_CUR_FIND = re.compile(_CUR, re.I)


@dataclass(frozen=True)
class Filters:
    """Constraints every result must satisfy. Empty sets mean "any"."""

    min_price: float | None = None
    max_price: float | None = None
    currency: str | None = None
    categories: frozenset[str] = frozenset()
    brands: frozenset[str] = frozenset()
    colors: frozenset[str] = frozenset()
    sizes: frozenset[str] = frozenset()
    in_stock: bool = False

    def is_empty(self) -> bool:
        return self == Filters()

    def merged(self, other: Filters) -> Filters:
        """``other`` refines ``self``: any field it sets wins."""
        out = self
        for name in ("min_price", "max_price", "currency"):
            if getattr(other, name) is not None:
                out = replace(out, **{name: getattr(other, name)})
        for name in ("categories", "brands", "colors", "sizes"):
            if getattr(other, name):
                out = replace(out, **{name: getattr(other, name)})
        if other.in_stock:
            out = replace(out, in_stock=True)
        return out

    def bound(self, value: float, currency: str) -> float:
        """A price bound of these filters (``min_price`` or ``max_price``) in ``currency``; as given when the
        filters name no currency or no rate is known."""
        converted = convert_price(value, self.currency, currency) if self.currency else None
        return value if converted is None else converted

    def matches(self, p: Product) -> bool:
        if self.min_price is not None and p.price < self.bound(self.min_price, p.currency):
            return False
        if self.max_price is not None and p.price > self.bound(self.max_price, p.currency):
            return False
        if self.in_stock and p.stock <= 0:
            return False
        if self.brands and (p.brand or "").lower() not in self.brands:
            return False
        if self.categories:
            path = [c.lower() for c in p.category]
            if not any(c in path or c == " > ".join(path) for c in self.categories):
                return False
        if self.colors and not {c.lower() for c in p.attr("color")} & self.colors:
            return False
        return not (self.sizes and not {s.lower() for s in p.attr("size")} & self.sizes)

    def describe(self, language: str = "en") -> str:
        """The filters as a shopper reads them: "white, in sneakers, under ¥400" / "白色，sneakers，¥400 以下"
        (category and brand names are the catalog's own)."""
        zh = language == "zh"
        parts = []
        if self.colors:
            parts.append("/".join(color_name(c, language) for c in sorted(self.colors)))
        if self.brands:
            parts.append(("品牌 " if zh else "brand ") + "/".join(sorted(self.brands)))
        if self.categories:
            parts.append(("" if zh else "in ") + "/".join(sorted(self.categories)))
        if self.sizes:
            sizes = "/".join(sorted(self.sizes))
            parts.append(f"{sizes} 码" if zh else f"size {sizes}")
        # a budget in another currency than the dollar says which ("under ¥500")
        sym = _SYMBOL.get(self.currency or "", (self.currency or "") + " ") if self.currency not in (None, "USD") else ""
        if self.min_price is not None and self.max_price is not None:
            parts.append(f"{sym}{self.min_price:g}-{sym}{self.max_price:g}")
        elif self.max_price is not None:
            parts.append(f"{sym or '$'}{self.max_price:g} 以下" if zh else f"under {sym}{self.max_price:g}")
        elif self.min_price is not None:
            parts.append(f"{sym or '$'}{self.min_price:g} 以上" if zh else f"over {sym}{self.min_price:g}")
        if self.in_stock:
            parts.append("有货" if zh else "in stock")
        return ("，" if zh else ", ").join(parts)


@dataclass(frozen=True)
class ParsedQuery:
    text: str
    filters: Filters = field(default_factory=Filters)
    sort: SortOrder = "relevance"
    raw: str = ""


def _num(value: str, kilo: str | None) -> float:
    v = float(value.replace(",", "."))
    return v * 1000 if kilo else v


def _currency(text: str) -> str | None:
    m = _CUR_FIND.search(text)
    if not m:
        return None
    return _CURRENCY_OF.get(m.group().lower().rstrip("s") if m.group().lower() not in _CURRENCY_OF else m.group().lower())


def _ngrams(text: str, longest: int = 4) -> set[str]:
    """Word n-grams of ``text`` (lower case), so a brand lookup is a set intersection, not N regexes."""
    words = re.findall(r"[\w'&+.-]+", text)
    return {" ".join(words[i : i + n]) for n in range(1, longest + 1) for i in range(len(words) - n + 1)}


def parse_query(text: str, *, brands: Iterable[str] = (), names: Container[str] = (),
                colours: bool = True) -> ParsedQuery:
    """Pull price/colour/size/stock/sort constraints and known brands out of ``text``.

    ``brands`` is the catalog's own brand vocabulary (lower case); a brand named in the query becomes a
    filter. Category words stay in the text: they are what the rankers match. ``names`` holds the
    catalog's colour-led word pairs ("green tea", "black tea": :func:`colour_phrases` of its titles); a
    colour word that starts one of them in the query is part of the product's name, not a filter. With
    ``colours`` false every colour word stays in the text (the kind asked for comes in no colours).
    """
    raw = text
    t = " " + text.strip() + " "
    min_p = max_p = None
    cur = None
    sort: SortOrder = "relevance"

    def cut(m: re.Match[str]) -> str:
        return " "

    for rx, kind in ((_PRICE_RANGE, "range"), (_PRICE_UNDER, "max"), (_ZH_UNDER, "max"), (_PRICE_OVER, "min"), (_ZH_OVER, "min")):
        m = rx.search(t)
        if not m:
            continue
        nums = [g for g in m.groups()]
        vals: list[float] = []
        i = 0
        while i < len(nums):
            if nums[i] is not None and re.fullmatch(r"\d+(?:[.,]\d+)?", nums[i]):
                vals.append(_num(nums[i], nums[i + 1] if i + 1 < len(nums) else None))
                i += 2
            else:
                i += 1
        if kind == "range":
            # a bare "12-14" is more often a model number than a price: require a currency or "between"
            if not (_CUR_FIND.search(m.group()) or m.group().strip().lower().startswith("between")):
                continue
            if len(vals) >= 2:
                min_p, max_p = min(vals[:2]), max(vals[:2])
        elif kind == "max" and vals:
            max_p = vals[0]
        elif kind == "min" and vals:
            min_p = vals[0]
        cur = cur or _currency(m.group())
        t = t[: m.start()] + " " + t[m.end() :]

    colors: set[str] = set()
    kept: list[str] = []
    last = 0
    for m in _EN_COLOR.finditer(t if colours else ""):
        if _names_a_product(t, m, names):
            continue  # "green tea", "white wine": part of what the shopper wants, not a colour
        colors.add(_COLOR_WORD[m.group(1).lower()])
        kept.append(t[last:m.start()] + " ")
        last = m.end()
    t = "".join(kept) + t[last:]
    for m in reversed(_zh_colors(t) if colours else []):
        if names and t[m.start(1): m.end(1) + _ZH_NAME_TAIL] in names:
            continue  # 黑巧克力 where a Chinese title holds it: dark chocolate, not a black product
        colors.add(_COLOR_WORD[m.group(1)])
        t = t[: m.start()] + " " + t[m.end():]

    sizes: set[str] = set()
    for m in _SIZE.finditer(t):
        value = next(g for g in m.groups() if g)
        sizes.add(value.lower())
        sizes.update(_eu_shoe_sizes(m.group(0), value, women="women" in t.lower() or "女" in t))
    t = _SIZE.sub(" ", t)

    in_stock = bool(_IN_STOCK.search(t))
    t = _IN_STOCK.sub(" ", t)
    for rx, order in ((_SORT_CHEAP, "price_asc"), (_SORT_PRICEY, "price_desc"), (_SORT_RATING, "rating")):
        if rx.search(t):
            sort = order  # type: ignore[assignment]
            t = rx.sub(" ", t)

    grams = _ngrams(t.lower())
    brand_set = brands if isinstance(brands, (set, frozenset)) else set(brands)
    found_brands = grams & brand_set

    t = _FILLER.sub(" ", t)
    t = re.sub(r"\b(?:a|an|the|some|new)\b|一款|一个|一双|一件|新的|的", " ", t, flags=re.I)
    # a Chinese request's clauses stay apart (蓝牙耳机，300元以下): the thing asked for is read clause by clause
    # (retrieval/kinds.py); in English a comma parts nothing the rankers need
    t = re.sub(r"[,.!?，。！？、;；]+", "，" if has_cjk(t) else " ", t)
    t = re.sub(r"\s+", " ", t)
    t = re.sub(r"\s*，[\s，]*", "，", t).strip(" ，")
    filters = Filters(
        min_price=min_p,
        max_price=max_p,
        currency=cur,
        brands=frozenset(found_brands),
        categories=frozenset(),  # category words stay in the text; see docstring
        colors=frozenset(colors),
        sizes=frozenset(sizes),
        in_stock=in_stock,
    )
    return ParsedQuery(text=t, filters=filters, sort=sort, raw=raw)


_NEXT_WORD = re.compile(r"\s*([a-z][a-z'-]*)", re.I)
_TITLE_WORDS = re.compile(r"[a-z][a-z'-]*", re.I)


def _names_a_product(text: str, m: re.Match[str], names: Container[str]) -> bool:
    """Whether the colour word ``m`` and the word after it are a pair the catalog's titles hold."""
    if not names:
        return False
    nxt = _NEXT_WORD.match(text, m.end())
    return nxt is not None and f"{m.group(1).lower()} {nxt.group(1).lower()}" in names


_HAN = re.compile(r"[\u4e00-\u9fff]+")
_ZH_NAME_TAIL = 2  # a Chinese colour-led name is the colour and the two characters after it (黑巧克, 绿茶叶)


def colour_phrases(products: Iterable[Product]) -> frozenset[str]:
    """The "<colour> <word>" pairs that are part of product names, for :func:`parse_query`'s ``names``.

    A pair counts when a title holds it and that product is not of that colour: "Organic Green Tea" and
    "Earl Grey Black Tea" (no colour, or another one) make "green tea" and "black tea" names, while
    "Black Leather Jacket" in black keeps "black" a colour filter for "black leather jacket". Chinese
    titles give the colour word and the two characters after it ("海盐黑巧克力": 黑巧克)."""
    out: set[str] = set()
    for p in products:
        own = {_COLOR_WORD.get(c.lower(), c.lower()) for c in p.attr("color")}
        zh = p.titles.get("zh", "")
        for m in _ZH_COLOR.finditer(zh):
            tail = zh[m.end(1): m.end(1) + _ZH_NAME_TAIL]
            if len(tail) == _ZH_NAME_TAIL and _HAN.fullmatch(tail) and _COLOR_WORD[m.group(1)] not in own:
                    out.add(m.group(1) + tail)
        for part in re.split(r"[,;()|/]", p.title):
            words = [w.lower() for w in _TITLE_WORDS.findall(part)]
            for a, b in pairwise(words):
                if a in _COLOR_WORD and b not in _COLOR_WORD and _COLOR_WORD[a] not in own:
                    out.add(f"{a} {b}")
    return frozenset(out)

class FilterArrays:
    """Column arrays over a product list, so a filter becomes a boolean mask in a few numpy ops."""

    def __init__(self, products: Sequence[Product]) -> None:
        self.price = np.asarray([p.price for p in products], dtype=np.float64)
        self.currency = np.asarray([(p.currency or "USD").upper() for p in products])
        self._currencies = sorted(set(self.currency.tolist()))
        self.stock = np.asarray([p.stock for p in products], dtype=np.int64)
        self.rating = np.asarray([product_rating(p) for p in products], dtype=np.float32)
        self._brand_rows: dict[str, list[int]] = {}
        for i, p in enumerate(products):
            if p.brand:
                self._brand_rows.setdefault(p.brand.lower(), []).append(i)
        self._color_rows = _value_rows(products, "color")
        self.coloured = np.zeros(len(products), dtype=bool)  # rows that state a colour
        for rows in self._color_rows.values():
            self.coloured[rows] = True
        self._size_rows = _value_rows(products, "size")
        self._cat_rows: dict[str, list[int]] = {}
        for i, p in enumerate(products):
            path = [c.lower() for c in p.category]
            for j in range(len(path)):
                self._cat_rows.setdefault(path[j], []).append(i)
                self._cat_rows.setdefault(" > ".join(path[: j + 1]), []).append(i)

    def mask(self, f: Filters) -> np.ndarray | None:
        """Rows allowed by ``f``; None when every row is (no filter)."""
        if f.is_empty():
            return None
        n = len(self.price)
        m = np.ones(n, dtype=bool)
        for value, keep in ((f.min_price, np.greater_equal), (f.max_price, np.less_equal)):
            if value is None:
                continue
            if len(self._currencies) <= 1:  # one catalog currency (the usual case): one bound in it
                m &= keep(self.price, f.bound(value, self._currencies[0]) if self._currencies else value)
                continue
            for cur in self._currencies:  # the bound in each currency the catalog prices in
                m &= (self.currency != cur) | keep(self.price, f.bound(value, cur))
        if f.in_stock:
            m &= self.stock > 0
        for wanted, rows in (
            (f.brands, self._brand_rows),
            (f.colors, self._color_rows),
            (f.sizes, self._size_rows),
            (f.categories, self._cat_rows),
        ):
            if wanted:
                sel = np.zeros(n, dtype=bool)
                for w in wanted:
                    sel[rows.get(w, [])] = True
                m &= sel
        return m


def product_rating(p: Product) -> float:
    try:
        return float(p.attr("rating")[0]) if p.attr("rating") else 0.0
    except ValueError:
        return 0.0


def _value_rows(products: Sequence[Product], attr: str) -> dict[str, list[int]]:
    rows: dict[str, list[int]] = {}
    for i, p in enumerate(products):
        for v in p.attr(attr):
            rows.setdefault(v.lower(), []).append(i)
    return rows
