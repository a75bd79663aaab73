"""Catalog exports as shop systems write them: Shopify, WooCommerce, Google Merchant Center feeds (RSS XML and
TSV), Flipkart-style marketplace dumps, and any other CSV through a column map.

An owner should be able to hand `shopbot reindex` the file their shop system exports, unedited. Each format
here is a detect function (on the normalised header of a table, or the root element of an XML feed) and a
reader that turns the file's rows into shopbot records (dicts with shopbot's column names, see the table at the
top of retrieval/catalog.py) numbered with the line each came from. `retrieval.catalog.parse_records` then
validates them exactly as it validates shopbot's own CSV, so a bad row of any format is reported by line.

Detection is by header or structure, never by file name; the known shop formats are tried before shopbot's
own CSV (a Merchant Center TSV also has ``id``, ``title`` and ``price`` columns). A table that is none of
them and lacks a sku, title or price column fails with one sentence naming the columns it has and the
``--map`` that would read it. What maps to what is written in docs/catalog.md ("Exports from shop systems").

This module imports nothing from retrieval.catalog (catalog imports it); catalog passes in how it names its
own columns (``shopbot_column``).
"""

from __future__ import annotations

import ast
import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from xml.parsers import expat

__all__ = [
    "FLIPKART_CURRENCY",
    "IN_STOCK_PLACEHOLDER",
    "MAX_FEED_BYTES",
    "FormatError",
    "Reading",
    "parse_category_tree",
    "parse_column_map",
    "parse_specifications",
    "read_header",
    "read_source",
    "sniff_kind",
]

Row = tuple[int, Mapping[str, Any] | None, str | None]  # (line, record or None, why not when None)
TableRow = tuple[int, dict[str, Any] | None, str | None]
View = dict[str, str]  # one row keyed by normalised column names (see _norm)
ShopbotColumn = Callable[[str], str | None]  # a header name -> shopbot's column it names, or None

_T = TypeVar("_T")

IN_STOCK_PLACEHOLDER = 1
# the attribute that marks a placeholder stock: the shopper reads "in stock", never "1 left"
# (retrieval.catalog.Product.stock_counted)
STOCK_COUNT, UNCOUNTED = "stock_count", "unknown"
"""Stock given to an item whose source says only "in stock" (a Merchant Center feed, WooCommerce without stock
management, an untracked Shopify variant) or lists it for sale with no stock at all (a Shopify export without
Variant Inventory Qty, a Flipkart-style dump): the smallest count that is in stock."""
FLIPKART_CURRENCY = "INR"
MAX_FEED_BYTES = 512 * 1024 * 1024
"""A larger XML feed is refused; export it as TSV, which is read row by row."""

_CORE = ("sku", "title", "price")
_PLACEHOLDER = {"", "na", "n/a", "n.a.", "none", "nil", "null", "-", "--", "not applicable", "nan"}
_ATTR_NAMES = {"colour": "color", "color": "color", "size": "size"}
# attribute names that would only repeat a product field or are not facts for a shopper
_NOT_ATTRIBUTES = {"brand", "price", "sku", "title", "name", "description", "category", "stock", "currency",
                   "image", "image_url", "id"}


class FormatError(ValueError):
    """A file whose layout cannot be read: no sku/title/price columns, a --map naming a missing column, XML that
    is not a product feed. The message is one sentence for the shop owner."""


@dataclass
class Reading:
    """A source being read: its format's name, its numbered shopbot records, and what the reader noticed."""

    name: str  # "Shopify products export", "shopbot CSV", ...
    rows: Iterator[Row] = field(default_factory=lambda: iter(()))
    unit: str = "row"
    count: int = 0  # rows (feed items, JSONL lines) read so far; final once ``rows`` is exhausted
    notes: list[str] = field(default_factory=list)

    def track(self, rows: Iterable[_T]) -> Iterator[_T]:
        """``rows``, counted into ``count`` as they are read."""
        for row in rows:
            self.count += 1
            yield row

    def line(self, products: int) -> str:
        """The first thing `shopbot reindex` says: "Read a Shopify products export: 12 rows -> 9 products (...)."."""
        article = "an" if self.name[:1].lower() in "aeiou" else "a"
        text = f"Read {article} {self.name}: {_plural(self.count, self.unit)} -> {_plural(products, 'product')}"
        notes = [n for n in self.notes if n]
        return text + (f" ({'; '.join(notes)})" if notes else "") + "."


def _placeholder_note(n: int) -> str:
    return f"{n} in stock without a count given stock {IN_STOCK_PLACEHOLDER}" if n else ""


def _shop_system_notes(left_out: int, placeholders: int) -> list[str]:
    """What a shop system's export (Shopify, WooCommerce) ends its notes with: the products left out as unpublished
    or drafts, and those in stock without a count."""
    return [f"{_plural(left_out, 'unpublished or draft product')} left out" if left_out else "",
            _placeholder_note(placeholders)]


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" + ("" if n == 1 else "s")


def _norm(name: str) -> str:
    """A column (or XML element) name as formats match it: lower case, ``g:`` dropped, ``_`` and runs of spaces
    as one space ("Variant SKU" -> "variant sku", "g:image_link" and "image link" -> "image link")."""
    text = re.sub(r"[\s_]+", " ", str(name).strip().lower())
    return text.removeprefix("g:").strip()


def _attr_name(name: str) -> str:
    """An option/attribute name as a shopbot attribute: lower case, Colour -> color, WooCommerce's pa_ dropped."""
    text = re.sub(r"\s+", " ", name.strip().lower()).removeprefix("pa_").replace("_", " ")
    return _ATTR_NAMES.get(text, text)


def _view(rec: Mapping[str, Any]) -> View:
    out: View = {}
    for key, value in rec.items():
        if key is not None:
            out.setdefault(_norm(key), "" if value is None else str(value).strip())
    return out


def _whole(text: str) -> int | None:
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        return None
    # inf is no count either (int(inf) raises OverflowError: a stock cell "1e400" stopped the whole load)
    return int(value) if value == value and abs(value) != float("inf") and value == int(value) else None


def _stock(raw: str) -> int | str:
    """A stock cell: a whole number (a negative count, which shop systems allow when overselling, is 0), or the
    text as it is so that the catalog reports it."""
    n = _whole(raw)
    return raw if n is None else max(n, 0)


def _split(text: str, sep: str = ",") -> list[str]:
    """Values separated by ``sep``; WooCommerce writes a separator inside a value as ``\\,``."""
    parts = re.split(rf"(?<!\\){re.escape(sep)}", text)
    return [p.replace("\\" + sep, sep).strip() for p in parts if p.strip()]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _add(attrs: dict[str, list[str]], name: str, values: Iterable[str]) -> None:
    if not name or name in _NOT_ATTRIBUTES:
        return
    have = attrs.setdefault(name, [])
    for v in values:
        if v and v.lower() not in _PLACEHOLDER and v not in have:
            have.append(v)
    if not have:
        del attrs[name]


# ------------------------------------------------------------------------------------------------ tables


def sniff_kind(path: Path) -> str:
    """"xml", "jsonl" or "csv" (any delimited table) from the file's first characters."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    text = head.decode("utf-8-sig", errors="ignore").lstrip()
    if text.startswith("<"):
        return "xml"
    if text.startswith(("{", "[")):
        return "jsonl"
    return "csv"


def _delimiter(line: str) -> str:
    """Comma, tab or semicolon: whichever the header line has most of outside quotes (comma on a tie)."""
    counts = dict.fromkeys(",\t;", 0)
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(",\t;", key=lambda d: counts[d])
    return best if counts[best] else ","


class _Table:
    """A delimited text file (CSV, TSV, semicolons): its header and its numbered records."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open(newline="", encoding="utf-8-sig") as fh:
            first = fh.readline()
            fh.seek(0)
            self.delimiter = _delimiter(first)
            self.header = [h.strip() for h in next(csv.reader(fh, delimiter=self.delimiter), [])]

    def rows(self) -> Iterator[TableRow]:
        with self.path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh, delimiter=self.delimiter)
            if not reader.fieldnames:
                return
            width = len(reader.fieldnames)
            for rec in reader:
                # line_num is the physical line where the record ended; records may span lines.
                line = reader.line_num
                if None in rec:
                    yield line, None, f"has {width + len(rec[None])} fields, the header has {width}"
                else:
                    yield line, dict(rec), None


def read_header(path: Path) -> list[str] | None:
    """The header of a delimited file (what a saved column map is keyed by); None for JSONL, XML, an empty or
    unreadable file."""
    try:
        if not path.is_file() or sniff_kind(path) != "csv":
            return None
        return _Table(path).header or None
    except (OSError, UnicodeDecodeError, csv.Error):
        return None


# ----------------------------------------------------------------------------------------------- Shopify


def _is_shopify(cols: set[str]) -> bool:
    return {"handle", "title"} <= cols and bool(cols & {"variant price", "variant sku"})


def _shopify_published(parent: View) -> bool:
    if parent.get("status", "").lower() in {"draft", "archived"}:
        return False
    return parent.get("published", "").lower() not in {"false", "no", "0"}


def _shopify_is_variant(v: View) -> bool:
    return any(v.get(k) for k in ("variant sku", "variant price", "option1 value", "variant inventory qty"))


def _shopify_category(parent: View) -> tuple[str, str]:
    """(category path, product type kept as an attribute when the category came from elsewhere)."""
    standard = parent.get("product category") or parent.get("standard product type") or ""
    if standard.startswith("gid://"):
        standard = ""
    kind = parent.get("type") or parent.get("custom product type") or ""
    return (standard, kind) if standard else (kind, "")


def _shopify_record(handle: str, parent: View, v: View, cols: set[str], first_image: str,
                    counts: dict[str, int]) -> dict[str, Any]:
    attrs: dict[str, list[str]] = {}
    values: list[str] = []
    for i in (1, 2, 3):
        name, value = parent.get(f"option{i} name", ""), v.get(f"option{i} value", "")
        if not value or (name.lower() == "title" and value.lower() == "default title"):
            continue
        values.append(value)
        _add(attrs, _attr_name(name or f"option {i}"), [value])
    category, kind = _shopify_category(parent)
    if kind:
        _add(attrs, "type", [kind])
    _add(attrs, "tags", _split(parent.get("tags", "")))
    qty = v.get("variant inventory qty", "")
    if qty:
        stock: int | str = _stock(qty)
    elif "variant inventory qty" not in cols or not v.get("variant inventory tracker"):
        stock = IN_STOCK_PLACEHOLDER  # the export has no count, or Shopify does not track this variant's stock
        _add(attrs, STOCK_COUNT, [UNCOUNTED])
        counts["placeholder"] += 1
    else:
        stock = 0
    return {
        "sku": v.get("variant sku") or "-".join([handle, *(_slug(x) for x in values)]),
        "title": parent.get("title", "") + (" - " + " / ".join(values) if values else ""),
        "description": parent.get("body (html)", ""),
        "category": category,
        "brand": parent.get("vendor", ""),
        "price": v.get("variant price", ""),
        "stock": stock,
        "image_url": v.get("variant image") or first_image,
        "attributes": attrs,
    }


def _shopify(rows: Iterable[TableRow], reading: Reading, cols: set[str]) -> Iterator[Row]:
    groups: dict[str, list[tuple[int, View]]] = {}
    for line, rec, reason in rows:
        if rec is None:
            yield line, None, reason
            continue
        v = _view(rec)
        if not v.get("handle"):
            yield line, None, "has no Handle"
            continue
        groups.setdefault(v["handle"], []).append((line, v))
    grouped = variants = image_rows = left_out = 0
    counts = {"placeholder": 0}
    for handle, members in groups.items():
        parent = next((v for _, v in members if v.get("title")), None)
        if parent is None:
            for line, v in members:
                if _shopify_is_variant(v):
                    yield line, None, f"belongs to handle {handle!r}, which has no row with a Title"
            continue
        if not _shopify_published(parent):
            left_out += 1
            continue
        images = sorted((_whole(v.get("image position", "")) or 10**6, i, v["image src"])
                        for i, (_, v) in enumerate(members) if v.get("image src"))
        first_image = images[0][2] if images else ""
        rows_of = [(line, v) for line, v in members if v is parent or _shopify_is_variant(v)]
        image_rows += len(members) - len(rows_of)
        if len(rows_of) > 1:
            grouped += 1
            variants += len(rows_of)
        for line, v in rows_of:
            yield line, _shopify_record(handle, parent, v, cols, first_image, counts), None
    if grouped:
        reading.notes.append(f"{_plural(variants, 'variant')} of {_plural(grouped, 'product')} grouped by Handle")
    if image_rows:
        reading.notes.append(f"{_plural(image_rows, 'image-only row')}")
    reading.notes.extend(_shop_system_notes(left_out, counts["placeholder"]))


# ------------------------------------------------------------------------------------------- WooCommerce


def _is_woocommerce(cols: set[str]) -> bool:
    return {"type", "sku", "name"} <= cols and bool(cols & {"regular price", "sale price"})


def _woo_attributes(v: View) -> list[tuple[str, list[str]]]:
    out = []
    n = 1
    while f"attribute {n} name" in v:
        name = v.get(f"attribute {n} name", "")
        if name:
            out.append((_attr_name(name), _split(v.get(f"attribute {n} value(s)", ""))))
        n += 1
    return out


def _woo_stock(v: View, parent: View | None, attrs: dict[str, list[str]], counts: dict[str, int]) -> int | str:
    raw = v.get("stock", "")
    if raw.lower() == "parent" and parent is not None:  # the variable product manages this variation's stock
        raw = parent.get("stock", "")
    if raw:
        return _stock(raw)
    flag = (v.get("in stock?") or (parent or {}).get("in stock?", "")).lower()
    if flag in {"1", "yes", "true", "instock", "in stock"}:
        counts["placeholder"] += 1
        _add(attrs, STOCK_COUNT, [UNCOUNTED])
        return IN_STOCK_PLACEHOLDER
    if flag in {"backorder", "onbackorder", "on backorder"}:
        _add(attrs, "availability", ["backorder"])
    return 0


def _woo_record(v: View, parent: View | None, counts: dict[str, int]) -> dict[str, Any]:
    p = parent or {}

    def pick(key: str) -> str:
        return v.get(key) or p.get(key, "")

    attrs: dict[str, list[str]] = {}
    inherited = dict(_woo_attributes(p))
    mine = _woo_attributes(v)
    brand = pick("brands") or pick("brand") or ", ".join(dict(mine).get("brand") or inherited.get("brand") or [])
    own: list[str] = []
    for name, values in mine:
        if parent is not None and values:
            own += values
        _add(attrs, name, values or inherited.get(name, []))  # a variation's empty value means "any"
    for name, values in inherited.items():
        if name not in attrs:
            _add(attrs, name, values)
    _add(attrs, "tags", _split(pick("tags")))
    name = v.get("name", "")
    if parent is not None and (not name or name == p.get("name")):
        name = p.get("name", "") + (" - " + ", ".join(own) if own else "")
    categories = _split(pick("categories"))
    images = _split(v.get("images", "")) or _split(p.get("images", ""))
    stock = _woo_stock(v, parent, attrs, counts)
    return {
        "sku": v.get("sku") or v.get("id", ""),
        "title": name,
        "description": pick("description") or pick("short description"),
        "category": categories[0] if categories else "",
        "brand": brand,
        "price": v.get("sale price") or v.get("regular price", ""),
        "stock": stock,
        "image_url": images[0] if images else "",
        "attributes": attrs,
    }


def _woo_published(v: View) -> bool:
    return v.get("published", "1") not in {"0", "-1"}


def _woocommerce(rows: Iterable[TableRow], reading: Reading, cols: set[str]) -> Iterator[Row]:
    items: list[tuple[int, View]] = []
    for line, rec, reason in rows:
        if rec is None:
            yield line, None, reason
        else:
            items.append((line, _view(rec)))
    by_ref: dict[str, View] = {}
    for _, v in items:  # a variation names its parent as "id:NN" or by the parent's SKU
        if v.get("id"):
            by_ref["id:" + v["id"]] = v
        if v.get("sku"):
            by_ref.setdefault(v["sku"], v)
    variable = variations = grouped = left_out = 0
    counts = {"placeholder": 0}
    for line, v in items:
        types = {t.strip().lower() for t in v.get("type", "").split(",")}
        if "variable" in types:
            variable += 1  # sold as its variations
            continue
        if "grouped" in types:
            grouped += 1
            continue
        parent = None
        if "variation" in types:
            ref = v.get("parent", "")
            parent = by_ref.get(ref) or by_ref.get("id:" + ref)
            if parent is None:
                yield line, None, f"is a variation of {ref or 'no parent'!r}, which is not in the file"
                continue
        if not _woo_published(v) or (parent is not None and not _woo_published(parent)):
            left_out += 1
            continue
        variations += parent is not None
        yield line, _woo_record(v, parent, counts), None
    if variable:
        reading.notes.append(f"{_plural(variable, 'variable product')} sold as {_plural(variations, 'variation')}")
    if grouped:
        reading.notes.append(f"{_plural(grouped, 'grouped product')} left out")
    reading.notes.extend(_shop_system_notes(left_out, counts["placeholder"]))


# ------------------------------------------------------------------------------ Google Merchant Center


def _is_merchant_feed(cols: set[str]) -> bool:
    return {"id", "title", "price", "availability"} <= cols


_ONE_SIZE = {"one size", "onesize", "os", "one-size", "n/a"}
_MONEY = re.compile(r"^\s*(?:([A-Za-z]{3})\s+)?([0-9][0-9.,]*)\s*(?:([A-Za-z]{3}))?\s*$")


def _money(raw: str) -> tuple[str, str]:
    """("15.00", "USD") from "15.00 USD" (or "USD 15.00"); the text itself and "" when it is not that shape."""
    m = _MONEY.match(raw)
    if not m:
        return raw, ""
    return m.group(2), (m.group(1) or m.group(3) or "").upper()


def _has_word(text: str, word: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word.strip())}(?!\w)", text, re.I) is not None


def _merchant_record(v: View, counts: dict[str, int], groups: set[str]) -> dict[str, Any]:
    price, currency = _money(v.get("sale price") or v.get("price", ""))
    attrs: dict[str, list[str]] = {}
    _add(attrs, "color", [c.strip() for c in v.get("color", "").split("/")])
    for name in ("size", "material", "pattern", "gender", "age group"):
        _add(attrs, name, [v.get(name, "")])
    if v.get("condition", "new").lower() not in {"", "new"}:
        _add(attrs, "condition", [v["condition"]])
    availability = v.get("availability", "").lower().replace("_", " ")
    quantity = v.get("quantity") or v.get("sell on google quantity") or ""
    stock: int | str
    if quantity:
        stock = _stock(quantity)
    elif availability in {"in stock", "available for order"}:
        stock = IN_STOCK_PLACEHOLDER
        _add(attrs, STOCK_COUNT, [UNCOUNTED])
        counts["placeholder"] += 1
    else:
        stock = 0
        if availability in {"preorder", "backorder"}:
            _add(attrs, "availability", [availability])
    category = v.get("product type", "")
    google = v.get("google product category", "")
    if not category and not google.isdigit():
        category = google
    title = v.get("title", "")
    if v.get("item group id"):  # a variant: its colour and size join the title when the title lacks them
        counts["variants"] += 1
        groups.add(v["item group id"])
        extra = [x for x in (v.get("color", ""), v.get("size", "")) if x and x.lower() not in _ONE_SIZE
                 and not any(_has_word(title, part) for part in x.split("/") if part.strip())]
        title += (" - " + " / ".join(extra)) if extra and title else ""
    return {
        "sku": v.get("id", ""),
        "title": title,
        "description": v.get("description", ""),
        "category": category,
        "brand": v.get("brand", ""),
        "price": price,
        "currency": currency,
        "stock": stock,
        "image_url": v.get("image link", ""),
        "attributes": attrs,
    }


def _merchant(rows: Iterable[TableRow], reading: Reading) -> Iterator[Row]:
    counts = {"placeholder": 0, "variants": 0}
    groups: set[str] = set()
    for line, rec, reason in rows:
        if rec is None:
            yield line, None, reason
        else:
            yield line, _merchant_record(_view(rec), counts, groups), None
    if groups:
        reading.notes.append(f"{_plural(counts['variants'], 'variant')} in {_plural(len(groups), 'item group')}")
    reading.notes.append(_placeholder_note(counts["placeholder"]))


def _reject_entities(*_: Any) -> None:
    raise FormatError("The feed declares XML entities, which shopbot does not expand; export it without a DTD.")


def _feed_items(path: Path) -> Iterator[TableRow]:
    """The ``<item>`` (RSS 2.0) or ``<entry>`` (Atom) elements of a feed as {child name: text}, with the line
    each starts on. Streamed with expat (the parser beneath ElementTree, which gives line numbers); an entity
    declaration is refused, external entities are never fetched, and a feed over MAX_FEED_BYTES is refused."""
    if path.stat().st_size > MAX_FEED_BYTES:
        raise FormatError(f"{path.name} is larger than {MAX_FEED_BYTES // 2**20} MiB; export the feed as TSV instead.")
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True
    parser.EntityDeclHandler = _reject_entities
    ready: list[TableRow] = []
    state: dict[str, Any] = {"depth": 0, "item": None, "item_depth": 0, "line": 0, "key": None, "buf": []}

    def start(tag: str, attrs: dict[str, str]) -> None:
        state["depth"] += 1
        local = tag.rsplit(" ", 1)[-1].lower()
        if state["depth"] == 1 and local not in {"rss", "feed"}:
            raise FormatError(f"{path.name} is XML but not a Google Merchant Center feed (its root element is "
                              f"<{local}>, not <rss> or <feed>); export the feed as RSS 2.0 XML or TSV.")
        if state["item"] is None:
            if local in {"item", "entry"}:
                state.update(item={}, item_depth=state["depth"], line=parser.CurrentLineNumber)
        elif state["depth"] == state["item_depth"] + 1:
            state["key"], state["buf"] = _norm(local), ([attrs["href"]] if "href" in attrs else [])

    def text(data: str) -> None:
        if state["key"] is not None and state["depth"] == state["item_depth"] + 1:
            state["buf"].append(data)

    def end(tag: str) -> None:
        item = state["item"]
        if item is not None:
            if state["depth"] == state["item_depth"] + 1 and state["key"] is not None:
                value = "".join(state["buf"]).strip()
                if value and not item.get(state["key"]):
                    item[state["key"]] = value
                state["key"] = None
            elif state["depth"] == state["item_depth"]:
                ready.append((state["line"], item, None))
                state["item"] = None
        state["depth"] -= 1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(1 << 20)
            try:
                parser.Parse(chunk, not chunk)
            except expat.ExpatError as exc:
                raise FormatError(f"{path.name} is not well-formed XML (line {exc.lineno}: "
                                  f"{expat.ErrorString(exc.code)}).") from None
            yield from ready
            ready.clear()
            if not chunk:
                return


# ------------------------------------------------------------------------------------ Flipkart-style dumps


def _is_flipkart(cols: set[str]) -> bool:
    return ({"uniq id", "product name"} <= cols and bool(cols & {"retail price", "discounted price"})
            and bool(cols & {"pid", "product category tree"}))


def _literal(text: str) -> Any:
    """A JSON/Python/Ruby-hash literal as data, or None when it cannot be read that way."""
    text = text.strip()
    if not text:
        return None
    for candidate in (text, re.sub(r'"\s*=>\s*', '": ', text), text.replace("=>", ":")):
        try:
            return json.loads(candidate)
        except ValueError:
            pass
        try:
            return ast.literal_eval(candidate)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            pass
    return None


_PAIR = re.compile(
    r"""\{\s*(?:(["'])key\1\s*(?:=>|:)\s*(?P<q>["'])(?P<key>.*?)(?P=q)\s*,\s*)?"""
    r"""(["'])value\4\s*(?:=>|:)\s*(?P<q2>["'])(?P<value>.*?)(?P=q2)\s*\}""",
    re.S,
)


def parse_specifications(raw: str) -> list[tuple[str, str]]:
    """(key, value) pairs of a product_specifications cell ('{"product_specification"=>[{"key"=>"Color",
    "value"=>"Red"}, ...]}', a JSON list, one dict); entries without a key get key "". Never raises."""
    data = _literal(raw or "")
    if isinstance(data, Mapping) and "product_specification" in data:
        data = data["product_specification"]
    if isinstance(data, Mapping):
        data = [data]
    if isinstance(data, list):
        return [(str(item.get("key") or "").strip(), str(item["value"]).strip())
                for item in data if isinstance(item, Mapping) and item.get("value") is not None]
    return [((m.group("key") or "").strip(), m.group("value").strip()) for m in _PAIR.finditer(raw or "")]


_WORDS = re.compile(r"[a-z0-9]+|[\u4e00-\u9fff]")  # words and numbers; each Chinese character is one


def parse_category_tree(raw: str, name: str = "") -> list[str]:
    """Levels of '["Clothing >> Women's Clothing >> Dresses"]'; the last level is dropped when it only repeats
    the product's name (marketplace dumps often end the path with it)."""
    data = _literal(raw or "")
    items = [str(x) for x in data] if isinstance(data, list) else [raw or ""]
    levels: list[str] = []
    for item in items:
        levels += [re.sub(r"\s+", " ", x).strip() for x in re.split(r">>|>", item) if x.strip()]
    if len(levels) >= 2 and name:
        last, title = set(_WORDS.findall(levels[-1].lower())), set(_WORDS.findall(name.lower()))
        if last and len(last & title) >= 0.6 * len(last):
            levels = levels[:-1]
    return levels


def _first_url(raw: str) -> str:
    data = _literal(raw)
    items = [str(x) for x in data] if isinstance(data, list) else _split(raw)
    return next((x.strip() for x in items if x.strip()), "")


def _flipkart(rows: Iterable[TableRow], reading: Reading) -> Iterator[Row]:
    for line, rec, reason in rows:
        if rec is None:
            yield line, None, reason
            continue
        v = _view(rec)
        name = v.get("product name", "")
        attrs: dict[str, list[str]] = {}
        for key, value in parse_specifications(v.get("product specifications", "")):
            if key:
                _add(attrs, _attr_name(key), [value])
        rating = v.get("product rating") or ""
        if re.fullmatch(r"\d+(\.\d+)?", rating):
            attrs["rating"] = [rating]
        _add(attrs, STOCK_COUNT, [UNCOUNTED])
        yield line, {
            "sku": v.get("pid") or v.get("uniq id", ""),
            "title": name,
            "description": v.get("description", ""),
            "category": parse_category_tree(v.get("product category tree", ""), name),
            "brand": v.get("brand", ""),
            "price": v.get("discounted price") or v.get("retail price", ""),
            "currency": FLIPKART_CURRENCY,
            "stock": IN_STOCK_PLACEHOLDER,  # a listing with no stock column: on sale, count unknown
            "image_url": _first_url(v.get("image", "")),
            "attributes": attrs,
        }, None
    reading.notes.append(f"prices in {FLIPKART_CURRENCY}; no stock column, every product counted as stock "
                         f"{IN_STOCK_PLACEHOLDER}")


# ------------------------------------------------------------------------------------------- column maps


def parse_column_map(text: str) -> dict[str, str]:
    """``sku=uniq_id,title=product_name,price=discounted_price`` as {shopbot column: the file's column}."""
    out: dict[str, str] = {}
    example = "e.g. sku=uniq_id,title=product_name,price=discounted_price"
    for pair in (p.strip() for p in text.split(",")):
        if not pair:
            continue
        target, sep, source = pair.partition("=")
        target, source = target.strip().lower().replace(" ", "_"), source.strip()
        if not sep or not source or not re.fullmatch(r"[a-z][a-z0-9_]*", target):
            raise FormatError(f"A column map is shopbot=column pairs separated by commas ({example}); {pair!r} is not.")
        if target in out:
            raise FormatError(f"The column map names {target!r} twice.")
        out[target] = source
    if not out:
        raise FormatError(f"The column map is empty; give shopbot=column pairs ({example}).")
    return out


_GUESS = {
    "sku": re.compile(r"sku|(^|[\s_])(id|code|no|nr|number)$|artikel|item ?no|part ?no", re.I),
    "title": re.compile(r"title|name|bezeichnung|titel|designation|nombre", re.I),
    "price": re.compile(r"price|preis|prix|precio|prezzo", re.I),
}


def _map_text(pairs: Mapping[str, str]) -> str:
    text = ",".join(f"{k}={v}" for k, v in pairs.items())
    return f'"{text}"' if re.search(r"[\s\"'()]", text) else text


def _cannot_place(path: Path, header: Sequence[str], missing: Sequence[str], given: Mapping[str, str]) -> FormatError:
    used = set(given.values())
    hint = dict(given)
    for col in missing:
        guess = next((h for h in header if h not in used and _GUESS[col].search(h)), None)
        hint[col] = guess or "COLUMN"
        used.add(hint[col])
    what = ", ".join(f"the {c}" for c in missing[:-1]) + (" and " if len(missing) > 1 else "") + f"the {missing[-1]}"
    which = "columns hold" if len(missing) > 1 else "column holds"
    return FormatError(f"Could not tell which {which} {what} in {path.name}; columns seen: {', '.join(header)}. "
                       f"Tell me with --map {_map_text(hint)}")


def _map_plan(path: Path, header: Sequence[str], column_map: Mapping[str, str],
              shopbot_column: ShopbotColumn) -> dict[str, str]:
    """{shopbot column: the file's column}: the map's pairs, plus the file's columns that already carry one of
    shopbot's own names (sku, title, price, ... and their aliases); every other column is left out."""
    by_norm: dict[str, str] = {}
    for h in header:
        by_norm.setdefault(_norm(h), h)
    plan: dict[str, str] = {}
    for target, source in column_map.items():
        col = source if source in header else by_norm.get(_norm(source))
        if col is None and target == "currency" and re.fullmatch(r"[A-Za-z]{3}", source):
            plan["currency"] = "=" + source.upper()  # currency=EUR: every row's currency, when no column has that name
            continue
        if col is None:
            raise FormatError(f"The column map names {source!r}, which {path.name} does not have; "
                              f"columns seen: {', '.join(header)}.")
        plan[shopbot_column(target) or target] = col
    mapped = set(plan.values())  # a column the map names is read once, under the map's name
    for h in header:
        key = shopbot_column(h)
        if key and key not in plan and h not in mapped:
            plan[key] = h
    missing = [c for c in _CORE if c not in plan]
    if missing:
        raise _cannot_place(path, header, missing, column_map)
    return plan


_DECIMAL_COMMA = re.compile(r"(\d{1,3}(?:\.\d{3})+|\d+),(\d{1,2})")


def _decimal(value: Any) -> Any:
    """"24,90" and "1.299,00" (a decimal comma, as European spreadsheets write prices) as "24.90", "1299.00";
    "1,299" (a thousands comma) and everything else as it is."""
    m = _DECIMAL_COMMA.fullmatch(value.strip()) if isinstance(value, str) else None
    return f"{m.group(1).replace('.', '')}.{m.group(2)}" if m else value


def _mapped(rows: Iterable[TableRow], plan: Mapping[str, str]) -> Iterator[Row]:
    for line, rec, reason in rows:
        if rec is None:
            yield line, None, reason
            continue
        out = {key: col[1:] if col.startswith("=") else rec.get(col) for key, col in plan.items()}
        out["price"] = _decimal(out.get("price"))
        yield line, out, None


# ---------------------------------------------------------------------------------------------- dispatch

_TableReader = Callable[[Iterable[TableRow], Reading, set[str]], Iterator[Row]]
_TABLE_FORMATS: list[tuple[str, Callable[[set[str]], bool], _TableReader]] = [
    ("Shopify products export", _is_shopify, _shopify),
    ("WooCommerce products export", _is_woocommerce, _woocommerce),
    ("Flipkart-style marketplace export", _is_flipkart, lambda rows, reading, cols: _flipkart(rows, reading)),
    ("Google Merchant Center feed", _is_merchant_feed, lambda rows, reading, cols: _merchant(rows, reading)),
]
_SEPARATED = {",": "", "\t": " (TSV)", ";": " (semicolon-separated)"}


def read_source(path: Path, kind: str, *, column_map: Mapping[str, str] | None,
                shopbot_column: ShopbotColumn) -> Reading:
    """Place the file (``kind`` "csv" for any delimited table, or "xml") and return its reading; rows are read
    lazily. Raises FormatError, at once, for a table it cannot place and for a --map naming a missing column."""
    if kind == "xml":
        if column_map:
            raise FormatError(f"{path.name} is an XML feed; a column map is for CSV and TSV files.")
        reading = Reading("Google Merchant Center feed (XML)", unit="item")
        reading.rows = _merchant(reading.track(_feed_items(path)), reading)
        return reading
    table = _Table(path)
    if column_map:
        plan = _map_plan(path, table.header, column_map, shopbot_column)
        reading = Reading("CSV with a column map")
        reading.rows = _mapped(reading.track(table.rows()), plan)
        reading.notes.append(", ".join(f"{k}={v.removeprefix('=')}" for k, v in plan.items()))
        return reading
    cols = {_norm(h) for h in table.header}
    for name, detect, reader in _TABLE_FORMATS:
        if detect(cols):
            reading = Reading(name + (_SEPARATED[table.delimiter] if name.startswith("Google") else ""))
            reading.rows = reader(reading.track(table.rows()), reading, cols)
            return reading
    reading = Reading("shopbot CSV" + _SEPARATED[table.delimiter])
    if table.header:  # an empty file has no products, which the catalog says
        found = {shopbot_column(h) for h in table.header}
        missing = [c for c in _CORE if c not in found]
        if missing:
            raise _cannot_place(path, table.header, missing, {})
    reading.rows = reading.track(table.rows())
    return reading
