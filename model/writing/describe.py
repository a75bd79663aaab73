"""Product descriptions from catalog attributes: the model writes the prose, code states the facts.

Why it is built this way: a 0.5B model writes pleasant sentences but drops attributes and invents
others ("durable genuine leather", "available in 3 sizes"). So the prose is checked by the claim
verifier (numbers, sizes, materials, brands, prices, stock, promises) plus a stricter description
rule, *every number in the prose must occur in the product's facts*; a failing text is written again
once with feedback, then replaced by a template written by code (`template_description`). Whatever
wrote the prose, the code then measures which attribute values it mentions (`coverage`) and renders
the ones it missed in a compact "Details:" line after it, so a shopper gets every fact and every fact
shown is true. `Description` reports the prose's own coverage next to the final one, honestly.

What the prose may not say: prices, discounts, stock and delivery. They change daily while a stored
description does not, so the facts the prose is checked against leave them out (a price in the prose
is an unsupported claim), and the hash that says whether a stored description is still current
(`retrieval.catalog.description_facts_hash`) leaves them out too.

Facts arrive as plain records shaped like ``retrieval.catalog.Product.to_record()``; ``model``
imports nothing from ``bot`` or ``retrieval``.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from model.llm.base import LLM
from model.writing.grounding import Check, Claim, Facts, Verdict, feedback_for, verify
from model.writing.live import readable

__all__ = [
    "LENGTHS",
    "TONES",
    "Attribute",
    "Description",
    "DescriptionWriter",
    "attributes_of",
    "check_prose",
    "clean_prose",
    "coverage",
    "covered",
    "description_messages",
    "details_line",
    "facts_record",
    "stray_numbers",
    "template_description",
    "tokens",
]

Source = Literal["llm", "llm-retry", "template"]


@dataclass(frozen=True)
class _Length:
    sentences_en: str
    words: int
    chars_zh: int
    max_tokens: int
    key_facts: int


LENGTHS: dict[str, _Length] = {
    "short": _Length("one or two sentences", 35, 60, 80, 4),
    "medium": _Length("three sentences", 60, 110, 140, 7),
    "long": _Length("four or five sentences", 100, 180, 230, 10),
}
TONES: dict[str, tuple[str, str]] = {
    "friendly": ("a warm, friendly tone for adult shoppers", "亲切友好的语气"),
    "premium": ("an elegant, premium tone: refined and confident, never exaggerated", "高端优雅的语气，精致自信，不夸张"),
    "plain": ("a plain, factual tone without superlatives", "平实客观的语气，不用夸张的形容词"),
}

# Attributes that are not facts of the product itself (they change, or they are the shop's business).
_VOLATILE = {"rating", "ratings", "review", "reviews", "review_count", "stock", "price", "discount", "discounted_price",
             "retail_price", "currency", "image", "image_url", "url", "sku", "id", "popularity", "sales"}
_PLACEHOLDER = {"", "na", "n/a", "n.a.", "none", "nil", "null", "-", "--", "not applicable", "not available", "nan"}
_BOOLEAN = {"yes", "no", "true", "false", "y", "n"}
# Specifications a shopper rarely needs in prose (they go to the details line when the prose skips them).
_BOILERPLATE = re.compile(r"sales package|number of contents|model (?:number|id|no)|pack of|in the box|brand|"
                          r"warranty|service type|covered in|not covered|sku|ean|upc|hsn", re.I)
_KEY_ZH = {
    "color": "颜色", "colour": "颜色", "material": "材质", "size": "尺码", "brand": "品牌", "weight": "重量",
    "ideal for": "适用人群", "occasion": "场合", "pattern": "图案", "fabric": "面料", "type": "类型",
    "capacity": "容量", "quantity": "数量", "style": "款式", "fit": "版型", "sleeve": "袖长", "model name": "型号",
    "outer material": "外层材质", "heel height": "跟高", "dimensions": "尺寸", "width": "宽度", "height": "高度",
    "length": "长度", "pack of": "件数",
}
_STOP = {"the", "of", "a", "an", "and", "for", "in", "with", "to", "per", "on", "by", "or", "is", "at", "as", "from",
         "it", "its", "be", "this", "that"}
# Colour names and their Chinese forms, so a Chinese text that says 红色 covers the value "Red".
_COLOUR_ZH = {
    "red": "红", "black": "黑", "white": "白", "blue": "蓝", "green": "绿", "yellow": "黄", "pink": "粉",
    "purple": "紫", "grey": "灰", "gray": "灰", "brown": "棕", "orange": "橙", "navy": "藏青", "gold": "金",
    "silver": "银", "beige": "米", "maroon": "栗", "multicolor": "多色", "multicolour": "多色",
}
_MATERIAL_ZH = {
    "cotton": "棉", "leather": "皮", "polyester": "涤纶", "wool": "羊毛", "silk": "丝", "nylon": "尼龙",
    "plastic": "塑料", "metal": "金属", "steel": "钢", "stainless steel": "不锈钢", "aluminium": "铝",
    "aluminum": "铝", "glass": "玻璃", "wood": "木", "mesh": "网", "rubber": "橡胶", "silicone": "硅胶",
    "ceramic": "陶瓷", "fabric": "织物", "synthetic": "合成", "linen": "亚麻", "denim": "牛仔", "neoprene": "氯丁橡胶",
    "canvas": "帆布", "foam": "泡沫",
}


# ------------------------------------------------------------------------------------------ facts


@dataclass(frozen=True)
class Attribute:
    """One attribute value a description should carry: ``name`` as the catalog spells it."""

    name: str
    value: str

    def label(self, language: str = "en") -> str:
        if language == "zh":
            return _KEY_ZH.get(self.name.lower().replace("_", " "), self.name)
        text = self.name.replace("_", " ").strip()
        return text[:1].upper() + text[1:]


def _values(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v.strip()] if v.strip() else []
    if isinstance(v, Iterable):
        return [str(x).strip() for x in v if str(x).strip()]
    return [str(v)]


def attributes_of(record: Mapping[str, Any]) -> list[Attribute]:
    """The attribute values a description of ``record`` should mention, in catalog order.

    Every value of every attribute counts once, except placeholders ("NA", "-") and volatile ones
    (rating, stock, price ...). Title, brand and category are not counted: the title is the
    description's subject, and brand and category are stated by the template and the details view.
    """
    out: list[Attribute] = []
    seen: set[tuple[str, str]] = set()
    for name, values in (record.get("attributes") or {}).items():
        key = str(name).strip()
        if key.lower().replace(" ", "_") in _VOLATILE:
            continue
        for v in _values(values):
            if v.lower() in _PLACEHOLDER:
                continue
            ident = (key.lower(), v.lower())
            if ident not in seen:
                seen.add(ident)
                out.append(Attribute(key, v))
    return out


def facts_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """What the prose is checked against: the record without price, stock, image and description.

    A price or stock level in a stored description would be stale the day the catalog changes, and
    the existing description is not an input of a generated one.
    """
    return {
        "sku": record.get("sku") or "",
        "title": record.get("title") or "",
        "titles": dict(record.get("titles") or {}),
        "brand": record.get("brand") or "",
        "category": list(record.get("category") or []) if not isinstance(record.get("category"), str)
        else record.get("category"),
        "attributes": {k: _values(v) for k, v in (record.get("attributes") or {}).items()
                       if str(k).lower().replace(" ", "_") not in _VOLATILE},
    }


def _category(record: Mapping[str, Any]) -> list[str]:
    cat = record.get("category") or []
    if isinstance(cat, str):
        return [c.strip() for c in re.split(r">|/", cat) if c.strip()]
    return [str(c) for c in cat if str(c).strip()]


def _title(record: Mapping[str, Any], language: str) -> str:
    titles = record.get("titles") or {}
    return str(titles.get(language) or record.get("title") or record.get("sku") or "").strip()


# --------------------------------------------------------------------------------------- coverage

_TOKEN = re.compile(r"\d+(?:\.\d+)?|[a-z]+|[\u4e00-\u9fff]+")


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


_SPELLING = {
    "aluminum": "aluminium", "gray": "grey", "colour": "color", "colours": "colors", "multicolour": "multicolor",
    "jewelry": "jewellery",
    # units written out ("170 grams") mean the same as their symbols ("170 g")
    "gram": "g", "grams": "g", "gm": "g", "gms": "g", "kilogram": "kg", "kilograms": "kg", "kgs": "kg",
    "milligram": "mg", "milligrams": "mg", "inches": "inch", "centimeter": "cm", "centimeters": "cm",
    "centimetre": "cm", "centimetres": "cm", "millimeter": "mm", "millimeters": "mm", "millimetre": "mm",
    "millimetres": "mm", "meter": "m", "meters": "m", "metre": "m", "metres": "m", "liter": "l", "liters": "l",
    "litre": "l", "litres": "l", "ltr": "l", "milliliter": "ml", "milliliters": "ml", "millilitre": "ml",
    "millilitres": "ml", "feet": "ft", "foot": "ft", "pounds": "lb", "pound": "lb", "lbs": "lb", "ounce": "oz",
    "ounces": "oz", "watts": "w", "watt": "w", "volts": "v", "volt": "v",
}


def _norm_token(tok: str) -> str:
    tok = _SPELLING.get(tok, tok)
    if tok[0].isdigit():
        try:
            x = float(tok)
        except ValueError:
            return tok
        return str(int(x)) if x == int(x) else f"{x:g}"
    if tok.isascii() and len(tok) > 3:
        if tok.endswith("ies"):
            return tok[:-3] + "y"
        if tok.endswith(("ches", "shes", "sses", "xes")):
            return tok[:-2]
        if tok.endswith("s") and not tok.endswith("ss"):
            return tok[:-1]
    return tok


def tokens(text: str) -> list[str]:
    """Lower-cased words, numbers ("500ml" -> "500", "ml"; "1.0" == "1") and CJK runs, for matching.
    Apostrophes join ("Women's" -> "women"), so a possessive never reads as size S."""
    return [_norm_token(t) for t in _TOKEN.findall(re.sub(r"['’`]", "", _fold(text)))]


def _content(text: str) -> list[str]:
    out: list[str] = []
    for t in tokens(text):
        if t not in _STOP and t not in out:
            out.append(t)
    return out


def _core(value: str) -> str:
    """A value without its remarks: "200 g (per single Shoe) - Weight of the product may vary" -> "200 g"."""
    core = re.sub(r"\([^)]*\)", " ", value)
    core = re.split(r"\s[-–—]\s|;", core)[0]
    return core if core.strip() else value


def _token_in(tok: str, words: set[str], text: str) -> bool:
    if re.fullmatch(r"[\u4e00-\u9fff]+", tok):
        return tok in text
    if tok in words:
        return True
    zh = _COLOUR_ZH.get(tok) or _MATERIAL_ZH.get(tok)
    return bool(zh and zh in text)


def covered(text: str, attr: Attribute, *, _words: set[str] | None = None, _folded: str | None = None) -> bool:
    """Whether ``text`` mentions ``attr``'s value.

    The value's remarks in brackets or after " - " are dropped, then its content words and numbers
    (stopwords out, plurals folded, "500ml" == "500 ml", a few colour and material names also in
    Chinese) must occur in the text: all of them for values of up to three words, three quarters of
    them for longer ones. A yes/no value counts as mentioned when the attribute's name is ("Lining:
    No" -> "lining").
    """
    folded = _folded if _folded is not None else _fold(text)
    words = _words if _words is not None else set(tokens(text))
    value = attr.value.strip()
    want = _content(attr.name) if value.lower() in _BOOLEAN else _content(_core(value))
    if not want:
        want = _content(value)
    if not want:
        return False
    multi = " ".join(t for t in tokens(attr.value) if not t.isdigit())
    if multi in _MATERIAL_ZH and _MATERIAL_ZH[multi] in folded:
        return True
    hits = sum(_token_in(t, words, folded) for t in want)
    need = len(want) if len(want) <= 3 else math.ceil(0.75 * len(want))
    return hits >= need


def coverage(text: str, attrs: Sequence[Attribute]) -> tuple[float, list[Attribute]]:
    """The share of ``attrs`` that ``text`` mentions (1.0 when there is nothing to mention), and the rest."""
    if not attrs:
        return 1.0, []
    folded, words = _fold(text), set(tokens(text))
    missing = [a for a in attrs if not covered(text, a, _words=words, _folded=folded)]
    return (len(attrs) - len(missing)) / len(attrs), missing


# ------------------------------------------------------------------------------------ rendering


def details_line(attrs: Sequence[Attribute], language: str = "en") -> str:
    """The facts the prose left out, rendered by code: "Details: Heel height: 1 inch · Colour: Red"."""
    if not attrs:
        return ""
    grouped: dict[str, list[str]] = {}
    labels: dict[str, str] = {}
    for a in attrs:
        key = a.name.lower()
        grouped.setdefault(key, []).append(a.value)
        labels.setdefault(key, a.label(language))
    if language == "zh":
        return "参数：" + "；".join(f"{labels[k]}：{'、'.join(v)}" for k, v in grouped.items()) + "。"
    return "Details: " + " · ".join(f"{labels[k]}: {', '.join(v)}" for k, v in grouped.items())


def template_description(record: Mapping[str, Any], language: str = "en") -> str:
    """The grounded fallback: one sentence from title, brand and category, then every attribute."""
    title = _title(record, language)
    brand = str(record.get("brand") or "").strip()
    cat = _category(record)
    attrs = attributes_of(record)
    if language == "zh":
        head = title + (f"，品牌：{brand}" if brand and brand.lower() not in title.lower() else "")
        head += (f"，类别：{' > '.join(cat[:3])}" if cat else "") + "。"
    else:
        head = title + (f" by {brand}" if brand and brand.lower() not in title.lower() else "")
        head += (f", in {' > '.join(cat[:3])}" if cat else "") + "."
    details = details_line(attrs, language)
    return head + ("\n" + details if details else "")


def _join(prose: str, details: str) -> str:
    return prose + ("\n" + details if details else "")


# -------------------------------------------------------------------------------------- prompts

_SYSTEM_EN = ("You write product descriptions for an online shop. Describe the product using ONLY the facts given, "
              "and mention the key facts listed with each value exactly as written. Do not add other numbers, "
              "sizes, colours, materials, brands, features, prices, discounts, stock, delivery, warranty or claims "
              "about the shop. Write one paragraph of flowing English prose: no title, no headings, no lists.")
_SYSTEM_ZH = ("你为网店撰写商品描述。只根据给出的信息介绍商品，并提到列出的关键信息，数值、型号和品牌照原样写出。不要添加任何其他"
              "数字、尺寸、颜色、材质、品牌、功能、价格、折扣、库存、配送、保修或关于店铺的说法。用中文写成一段连贯的文字：不要标题、"
              "不要列表。")


def _key_facts(attrs: Sequence[Attribute], n: int) -> list[tuple[str, str]]:
    """(label, values) of the attributes the prose is asked to mention: the first ``n`` that are not
    packaging or ids (those read badly in prose and go to the details line)."""
    grouped: dict[str, tuple[str, list[str]]] = {}
    for a in attrs:
        if _BOILERPLATE.search(a.name):
            continue
        key = a.name.lower()
        if key not in grouped:
            if len(grouped) == n:
                continue
            grouped[key] = (a.label(), [])
        grouped[key][1].append(a.value)
    return [(label, ", ".join(values)) for label, values in grouped.values()]


# One worked example (written for this project) shows a small model the register wanted: every key
# fact, nothing added, no talk about the shop.
_EXAMPLE_RECORD: dict[str, Any] = {
    "title": "Northwind Women's Quilted Winter Coat", "brand": "Northwind", "category": ["Apparel", "Coats"],
    "titles": {"zh": "Northwind 女款绗缝冬季外套"},
    "attributes": {"Ideal For": ["Women"], "Color": ["Red"], "Material": ["Polyester"], "Pattern": ["Quilted"]},
}
_EXAMPLE_TEXT = {
    "en": ("The Northwind Women's Quilted Winter Coat brings a bright touch of red to cold days. Its polyester shell "
           "has a quilted pattern for a neat, cosy look, and the cut is made for women."),
    "zh": ("Northwind 女款绗缝冬季外套以醒目的红色为寒冷的日子增添亮色。外层采用涤纶（Polyester）面料，绗缝图案整洁利落，"
           "专为女士剪裁。"),
}


def _ask(record: Mapping[str, Any], language: str, spec: _Length, tone: str) -> str:
    key = _key_facts(attributes_of(record), spec.key_facts)
    title, brand, cat = _title(record, language), str(record.get("brand") or ""), _category(record)
    lines = [f"Product: {title}"]
    if language == "zh" and title != str(record.get("title") or title):
        lines.append(f"English name: {record.get('title')}")
    if brand:
        lines.append(f"Brand: {brand}")
    if cat:
        lines.append(f"Category: {' > '.join(cat[:4])}")
    if key:
        lines.append("Key facts:")
        lines += [f"- {label}: {value}" for label, value in key]
    facts = "\n".join(lines)
    tone_en, tone_zh = TONES.get(tone, (f"a {tone} tone", f"{tone}的语气"))
    if language == "zh":
        ask = f"\n\n请用中文写一段约 {spec.chars_zh} 字的商品描述，{tone_zh}。"
        if key:
            ask += "请提到：" + "、".join(value for _, value in key) + "。"
    else:
        ask = f"\n\nWrite {spec.sentences_en} (about {spec.words} words) in {tone_en}."
        if key:
            ask += " Mention: " + "; ".join(value for _, value in key) + "."
    return facts + ask


def description_messages(record: Mapping[str, Any], language: str = "en", length: str = "medium",
                         tone: str = "friendly", feedback: str | None = None) -> list[dict[str, str]]:
    """The chat that asks for a description: a worked example, then the facts, the key ones to mention,
    length and tone (and, on a second attempt, why the first was rejected)."""
    spec = LENGTHS.get(length, LENGTHS["medium"])
    user = _ask(record, language, spec, tone)
    if feedback:
        user += ("\n\n你上一次的描述被退回了。" if language == "zh" else "\n\nYour previous description was rejected. ") + feedback
    lang = "zh" if language == "zh" else "en"
    return [{"role": "system", "content": _SYSTEM_ZH if lang == "zh" else _SYSTEM_EN},
            {"role": "user", "content": _ask(_EXAMPLE_RECORD, lang, LENGTHS["medium"], "friendly")},
            {"role": "assistant", "content": _EXAMPLE_TEXT[lang]},
            {"role": "user", "content": user}]


_MARKUP = re.compile(r"\*\*|__|`|^#+\s*|^\s*(?:[-*•]|\d+[.)])\s+", re.M)
_LEAD = re.compile(r"^(?:(?:here is|here's) (?:a|the|your) [^:\n]*:|description\s*:|商品描述[:：])\s*", re.I)


def clean_prose(text: str, language: str = "en") -> str:
    """The model's answer as one paragraph of whole sentences (markup, lead-ins and a cut-off tail removed)."""
    text = _MARKUP.sub("", text.strip()).strip().strip('"“”').strip()
    text = _LEAD.sub("", text).strip()
    text = re.sub(r"\s*\n+\s*", " " if language != "zh" else "", text)
    text = re.sub(r"[ \t]+", " ", text).strip()
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)|[。！？]", text)]
    if ends and ends[-1] < len(text):
        text = text[:ends[-1]]  # the model ran out of tokens mid-sentence
    return text.strip()


# ----------------------------------------------------------------------------------------- checks

_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)?(?![\d])")


def _numbers(text: str) -> set[str]:
    out = set()
    for m in re.finditer(r"\d+(?:[.,]\d+)?", _fold(text)):
        out.add(_norm_token(m.group().replace(",", ".") if re.fullmatch(r"\d+,\d{1,2}", m.group())
                            else m.group().replace(",", "")))
    return out


def stray_numbers(text: str, facts_text: str, *, skip: Sequence[tuple[int, int]] = ()) -> list[Claim]:
    """Numbers in ``text`` that occur nowhere in ``facts_text`` (the description rule: no number is invented).

    The claim verifier deliberately ignores bare numbers in chat ("the second one"); a description has
    no reason to write one that the facts do not contain. ``skip``: spans the verifier already checked.
    """
    have = _numbers(facts_text)
    out = []
    for m in _NUMBER.finditer(text):
        if any(s <= m.start() < e for s, e in skip):
            continue
        raw = m.group()
        value = _norm_token(raw.replace(",", "") if not re.fullmatch(r"\d+,\d{1,2}", raw) else raw.replace(",", "."))
        if value not in have:
            out.append(Claim("quantity", value, m.span(), raw))
    return out


def _facts_text(record: Mapping[str, Any], extras: Sequence[str] = ()) -> str:
    parts = [str(record.get("title") or ""), *[str(v) for v in (record.get("titles") or {}).values()],
             str(record.get("brand") or ""), " ".join(_category(record))]
    for k, v in (record.get("attributes") or {}).items():
        parts.append(f"{k}: {', '.join(_values(v))}")
    for k in ("price", "stock", "description"):
        if record.get(k) not in (None, ""):
            parts.append(str(record[k]))
    return "\n".join([*parts, *extras])


def check_prose(text: str, record: Mapping[str, Any], *, known_brands: Iterable[str] = (),
                extras: Sequence[str] = ()) -> Verdict:
    """The claim verifier on ``text`` against ``record``, plus the rule that every number is in the facts.

    ``record`` is used as given: pass `facts_record` (no price or stock) to check a description
    before storing it, or the full input to measure what an evaluation protocol calls unsupported.
    """
    facts = Facts.from_records([record], extras=extras)
    verdict = verify(text, facts, known_brands=known_brands)
    spans = [c.claim.span for c in verdict.checked]
    extra = stray_numbers(text, _facts_text(record, extras), skip=spans)
    if not extra:
        return verdict
    checks = [*verdict.checked, *(Check(c, False, "this number is not in the product's facts") for c in extra)]
    unsupported = [*verdict.unsupported, *extra]
    return Verdict(False, unsupported, checks)


# --------------------------------------------------------------------------------------- writing


@dataclass
class Description:
    """A description and how it came about, for the CLI, the stored file and the evaluation."""

    text: str
    language: str
    source: Source
    coverage: float
    prose_coverage: float
    unsupported: list[str]
    seconds: float
    checks: dict[str, Any] = field(default_factory=dict)
    prose: str = ""
    details: str = ""
    attributes: int = 0
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "language": self.language, "source": self.source,
                "coverage": round(self.coverage, 4), "prose_coverage": round(self.prose_coverage, 4),
                "unsupported": list(self.unsupported), "seconds": round(self.seconds, 3), "model": self.model,
                "checks": self.checks}


class DescriptionWriter:
    """Writes verified descriptions with one model; ``known_brands``: the catalog's brands (a brand of
    another product in the prose is an invented one)."""

    def __init__(self, llm: LLM | None, *, known_brands: Iterable[str] = (), timeout: float = 60.0,
                 retries: int = 1, temperature: float = 0.0) -> None:
        self.llm = llm
        self.known_brands = list(known_brands)
        self.timeout = timeout
        self.retries = retries
        self.temperature = temperature

    @property
    def model(self) -> str:
        return f"{self.llm.name}@{self.llm.version}" if self.llm is not None else "template"

    async def write(self, record: Mapping[str, Any], language: str = "en", length: str = "medium",
                    tone: str = "friendly") -> Description:
        """A description of ``record``: verified model prose plus code-rendered details, else the template.

        Model errors and timeouts end in the template (a description is always produced); a
        KeyboardInterrupt or cancellation is not caught, so a batch can stop between products.
        """
        if language not in ("en", "zh"):
            raise ValueError(f"language must be 'en' or 'zh', not {language!r}")
        if length not in LENGTHS:
            raise ValueError(f"length must be one of {sorted(LENGTHS)}, not {length!r}")
        t0 = time.perf_counter()
        facts = facts_record(record)
        attrs = attributes_of(record)
        spec = LENGTHS[length]
        attempts: list[dict[str, Any]] = []
        feedback: str | None = None
        prose, source = "", "template"
        for i in range(self.retries + 1):
            if self.llm is None:
                attempts.append({"attempt": i + 1, "error": "no language model"})
                break
            try:
                raw = await self.llm.complete(description_messages(record, language, length, tone, feedback),
                                              max_tokens=spec.max_tokens, temperature=self.temperature,
                                              timeout=self.timeout)
            except Exception as exc:  # down, slow or broken: the template answers (Ctrl-C still stops)
                attempts.append({"attempt": i + 1, "error": f"{type(exc).__name__}: {exc}"})
                break
            text = clean_prose(raw, language)
            verdict = check_prose(text, facts, known_brands=self.known_brands)
            problems = _style_problems(text, language)
            row: dict[str, Any] = {"attempt": i + 1, **verdict.to_log()}
            if problems:
                row["problems"] = problems
            if not verdict.ok or problems:
                row["text"] = raw[:500]
            attempts.append(row)
            if verdict.ok and not problems:
                prose, source = text, ("llm" if i == 0 else "llm-retry")
                break
            feedback = " ".join(x for x in [feedback_for(verdict) if not verdict.ok else "", *problems] if x)
        if source == "template":
            text = template_description(record, language)
            head, _, details = text.partition("\n")
            prose_cov, _ = coverage(head, attrs)
        else:
            prose_cov, missing = coverage(prose, attrs)
            details = details_line(missing, language)
            text = _join(prose, details)
        final_cov, _ = coverage(text, attrs)
        final = check_prose(text, facts, known_brands=self.known_brands)
        return Description(
            text=text, language=language, source=source,  # type: ignore[arg-type]
            coverage=final_cov, prose_coverage=prose_cov, unsupported=[c.text for c in final.unsupported],
            seconds=time.perf_counter() - t0, checks={"used_fallback": source == "template", "attempts": attempts},
            prose=prose if source != "template" else "", details=details, attributes=len(attrs), model=self.model)

    def write_sync(self, record: Mapping[str, Any], language: str = "en", length: str = "medium",
                   tone: str = "friendly") -> Description:
        """`write` for callers without an event loop (the CLI)."""
        return asyncio.run(self.write(record, language, length, tone))


_ECHO = re.compile(r"rejected|previous description|key facts|被退回|上一次的描述|请提到|关键信息", re.I)


def _style_problems(text: str, language: str) -> list[str]:
    """Why a text that passed the claim check is still not a description (empty, noise, the wrong
    language, or the prompt repeated back)."""
    if not text.strip():
        return ["The description was empty; write whole sentences."]
    if _ECHO.search(text):
        return ["请只写商品描述本身。" if language == "zh" else "Write only the description itself."]
    if language == "zh":
        cjk = len(re.findall(r"[\u4e00-\u9fff]", text))
        latin_words = len(re.findall(r"[A-Za-z]+", text))
        if cjk < 8 or cjk < latin_words:  # product names and values stay in English; the sentences must not
            return ["请用中文写通顺的句子。"]
    elif not readable(text, language):
        return ["Write clear, simple English sentences."]
    return []
