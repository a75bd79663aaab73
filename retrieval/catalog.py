"""The product catalog: one Product model, CSV/JSONL loaders with row-level validation, the demo catalog.

The catalog is the only source of facts (prices, stock, sizes) in shopbot, so loading is strict about
what a fact is and lenient about layout: a bad row is reported with its line number and why, then
skipped (or the whole load rejected, when the shop asks for that), and nothing else is lost.

Column mapping (CSV header names, JSONL keys; case-insensitive):

=================  ===========================================================================
``sku``            required, unique product id (aliases: ``id``, ``product_id``)
``title``          required (aliases: ``name``, ``product_title``)
``description``    optional free text; HTML is stripped (aliases: ``product_description``)
``category``       optional path, levels separated by ``>`` or ``/`` ("Shoes > Running")
``brand``          optional
``price``          required, a number >= 0; a leading currency symbol is accepted ("$19.99")
``currency``       optional ISO code, default ``USD`` (or the loader's ``default_currency``)
``stock``          optional integer >= 0, default 0 (aliases: ``quantity``, ``inventory``)
``image_url``      optional http(s) URL (aliases: ``image``)
``title_<lang>``   optional localised title, e.g. ``title_zh``
``attributes``     optional JSON object of further attributes (JSONL: a nested object)
any other column   becomes an attribute (``color``, ``size``, ``material`` ...); several values
                   of one attribute are separated by ``|`` ("38|39|40")
=================  ===========================================================================

Shop-system exports (Shopify, WooCommerce, Google Merchant Center XML/TSV feeds, Flipkart-style dumps) and
any other CSV through a column map are turned into these columns by retrieval/formats.py, detected from the
header or the XML root; `load_catalog` names the format it read in ``LoadResult.source_format``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from retrieval.formats import FormatError, Reading, read_source, sniff_kind

__all__ = [
    "CatalogError",
    "LoadResult",
    "Product",
    "RowError",
    "catalog_hash",
    "demo_catalog_path",
    "description_facts_hash",
    "load_catalog",
    "overlay_descriptions",
    "parse_records",
    "policy_path",
    "strip_html",
]

OnError = Literal["skip", "raise"]

_ALIASES: dict[str, str] = {
    "id": "sku",
    "product_id": "sku",
    "name": "title",
    "product_title": "title",
    "product_description": "description",
    "category_path": "category",
    "quantity": "stock",
    "inventory": "stock",
    "image": "image_url",
    "colour": "color",
}
_CORE = {"sku", "title", "description", "category", "brand", "price", "currency", "stock", "image_url"}
_CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "CNY", "￥": "CNY", "₹": "INR"}
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
_MAX_FIELD = 20_000


class CatalogError(ValueError):
    """A catalog that cannot be used at all (missing file, no valid rows, rejected load)."""


@dataclass(frozen=True, slots=True)
class RowError:
    """Why one input row was not loaded; ``line`` is 1-based in the source file."""

    line: int
    reason: str
    sku: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" (sku {self.sku})" if self.sku else "")
        return f"{where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Product:
    """One sellable item. Everything here is a fact the assistant may state to a shopper."""

    sku: str
    title: str
    price: float
    description: str = ""
    category: tuple[str, ...] = ()
    brand: str | None = None
    currency: str = "USD"
    stock: int = 0
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    image_url: str | None = None
    titles: Mapping[str, str] = field(default_factory=dict)

    @property
    def in_stock(self) -> bool:
        return self.stock > 0

    @property
    def stock_counted(self) -> bool:
        """False when the source said only "in stock" (a feed's availability, an export without counts): the
        stock is then a placeholder, shown as "in stock" and never as a count."""
        return "unknown" not in self.attr("stock_count")

    @property
    def category_path(self) -> str:
        return " > ".join(self.category)

    def attr(self, name: str) -> tuple[str, ...]:
        return self.attributes.get(name, ())

    def title_for(self, language: str | None) -> str:
        """The title in the shopper's language when the catalog has one, else the main title."""
        if language and language in self.titles:
            return self.titles[language]
        return self.title

    def to_record(self) -> dict[str, Any]:
        """A plain JSON-able dict; ``Product.from_record`` reads it back unchanged."""
        return {
            "sku": self.sku,
            "title": self.title,
            "description": self.description,
            "category": list(self.category),
            "brand": self.brand,
            "price": self.price,
            "currency": self.currency,
            "stock": self.stock,
            "attributes": {k: list(v) for k, v in sorted(self.attributes.items())},
            "image_url": self.image_url,
            "titles": dict(sorted(self.titles.items())),
        }

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> Product:
        return cls(
            sku=rec["sku"],
            title=rec["title"],
            price=float(rec["price"]),
            description=rec.get("description") or "",
            category=tuple(rec.get("category") or ()),
            brand=rec.get("brand"),
            currency=rec.get("currency") or "USD",
            stock=int(rec.get("stock") or 0),
            attributes={k: tuple(v) for k, v in (rec.get("attributes") or {}).items()},
            image_url=rec.get("image_url"),
            titles=dict(rec.get("titles") or {}),
        )

    @property
    def content_hash(self) -> str:
        """Changes whenever any fact changes; incremental reindexing compares these."""
        blob = json.dumps(self.to_record(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


@dataclass(slots=True)
class LoadResult:
    products: list[Product]
    errors: list[RowError]
    source: str = ""
    source_format: str = ""  # "shopbot CSV", "Shopify products export", ... (retrieval/formats.py)
    read_line: str = ""  # "Read a Shopify products export: 12 rows -> 9 products (...)."

    def summary(self) -> str:
        text = f"Loaded {len(self.products)} products from {self.source or 'the catalog'}"
        if self.errors:
            text += f"; skipped {len(self.errors)} bad rows"
        return text + "."


def strip_html(text: str) -> str:
    """Plain text from catalog HTML: tags dropped, entities decoded, whitespace collapsed."""
    text = _TAG.sub(" ", text)
    text = html.unescape(text)
    return _SPACE.sub(" ", text).strip()


def catalog_hash(products: Iterable[Product]) -> str:
    """Order-independent hash of a whole catalog (stored in index manifests)."""
    h = hashlib.sha256()
    for digest in sorted(p.sku + ":" + p.content_hash for p in products):
        h.update(digest.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()[:32]


def demo_catalog_path() -> Path:
    """The bundled demo catalog, written for this project (see retrieval/data/README.md)."""
    return Path(str(resources.files("retrieval") / "data" / "demo_catalog.csv"))


def policy_path() -> Path:
    """The demo shop's policy document that customer-service answers are grounded in."""
    return Path(str(resources.files("retrieval") / "data" / "policy.md"))


# --------------------------------------------------------------------------------------------- parsing


def _split_values(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        items = [str(v).strip() for v in value]
    else:
        items = [v.strip() for v in str(value).split("|")]
    return tuple(v for v in items if v)


def _parse_price(raw: Any) -> tuple[float, str | None]:
    if isinstance(raw, bool):
        raise ValueError("price must be a number")
    if isinstance(raw, (int, float)):
        value, symbol_currency = float(raw), None
    else:
        text = str(raw or "").strip()
        if not text:
            raise ValueError("price is missing")
        symbol_currency = _CURRENCY_SYMBOLS.get(text[0])
        if symbol_currency:
            text = text[1:].strip()
        text = text.replace(",", "")
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"price {str(raw)[:40]!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("price must be a finite number")
    if value < 0:
        raise ValueError(f"price {value:g} is negative")
    return round(value, 2), symbol_currency


def _parse_stock(raw: Any) -> int:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return 0
    if isinstance(raw, bool):
        raise ValueError("stock must be a whole number")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"stock {str(raw)[:40]!r} is not a whole number") from None
    if value != value or value in (float("inf"), float("-inf")) or value != int(value):  # int(inf) would raise
        raise ValueError(f"stock {str(raw)[:40]!r} is not a whole number")
    if value < 0:
        raise ValueError(f"stock {int(value)} is negative")
    return int(value)


def _parse_category(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, (list, tuple)):
        parts = [str(p) for p in raw]
    else:
        text = str(raw)
        sep = ">" if ">" in text else "/"
        parts = text.split(sep)
    return tuple(p.strip() for p in parts if p.strip())


def _key(name: str) -> str:
    k = str(name).strip().lower().replace(" ", "_")
    return _ALIASES.get(k, k)


def _shopbot_column(name: str) -> str | None:
    """The shopbot column a header names (aliases applied), None for a column that would be an attribute."""
    k = _key(name)
    return k if k in _CORE or k.startswith("title_") else None


def _normalise_keys(rec: Mapping[str, Any]) -> dict[str, Any]:
    return {_key(key): value for key, value in rec.items() if key is not None}


def _text(value: Any, what: str) -> str:
    text = "" if value is None else str(value)
    if len(text) > _MAX_FIELD:
        raise ValueError(f"{what} is longer than {_MAX_FIELD} characters")
    return text.strip()


def parse_record(raw: Mapping[str, Any], default_currency: str = "USD") -> Product:
    """One raw row (CSV dict or JSON object) to a Product; raises ValueError with the reason."""
    rec = _normalise_keys(raw)
    sku = _text(rec.get("sku"), "sku")
    if not sku:
        raise ValueError("sku is missing")
    title = _SPACE.sub(" ", strip_html(_text(rec.get("title"), "title")))
    if not title:
        raise ValueError("title is missing")
    price, symbol_currency = _parse_price(rec.get("price"))
    currency = _text(rec.get("currency"), "currency").upper() or symbol_currency or default_currency
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ValueError(f"currency {currency!r} is not a three-letter ISO code")
    image_url = _text(rec.get("image_url"), "image_url") or None
    if image_url and not re.match(r"https?://", image_url):
        raise ValueError(f"image_url {image_url[:60]!r} is not an http(s) URL")

    attributes: dict[str, tuple[str, ...]] = {}
    extra = rec.get("attributes")
    if isinstance(extra, str) and extra.strip():
        try:
            extra = json.loads(extra)
        except json.JSONDecodeError:
            raise ValueError("attributes is not a JSON object") from None
    if extra:
        if not isinstance(extra, Mapping):
            raise ValueError("attributes is not a JSON object")
        for k, v in extra.items():
            values = _split_values(v)
            if values:
                attributes[str(k).strip().lower()] = values
    titles: dict[str, str] = {}
    for key, value in rec.items():
        if key in _CORE or key == "attributes":
            continue
        if key == "titles" and isinstance(value, Mapping):
            titles.update({str(k): str(v).strip() for k, v in value.items() if v})
        elif key.startswith("title_"):
            if value and str(value).strip():
                titles[key[len("title_") :]] = _text(value, key)
        else:
            values = _split_values(value)
            if values:
                attributes[key] = values

    return Product(
        sku=sku,
        title=title,
        price=price,
        description=strip_html(_text(rec.get("description"), "description")),
        category=_parse_category(rec.get("category")),
        brand=_text(rec.get("brand"), "brand") or None,
        currency=currency,
        stock=_parse_stock(rec.get("stock")),
        attributes=attributes,
        image_url=image_url,
        titles=titles,
    )


def parse_records(
    rows: Iterable[tuple[int, Mapping[str, Any] | None, str | None]],
    *,
    on_error: OnError = "skip",
    default_currency: str = "USD",
    source: str = "",
) -> LoadResult:
    """Validate numbered rows; each row is (line, record or None, reason when None)."""
    products: list[Product] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for line, rec, reason in rows:
        sku_hint = None
        if rec is not None:
            sku_hint = str(_normalise_keys(rec).get("sku") or "").strip() or None
            try:
                product = parse_record(rec, default_currency)
            except ValueError as exc:
                reason = str(exc)
            else:
                if product.sku in seen:
                    reason = f"duplicate sku {product.sku!r} (first seen on line {seen[product.sku]})"
                else:
                    seen[product.sku] = line
                    products.append(product)
                    continue
        errors.append(RowError(line, reason or "unreadable row", sku_hint))
        if on_error == "raise":
            raise CatalogError(f"{source or 'catalog'} {errors[-1]}; fix the row or load with on_error='skip'.")
    return LoadResult(products, errors, source)


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Mapping[str, Any] | None, str | None]]:
    with path.open(encoding="utf-8-sig") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                yield line_no, None, f"is not valid JSON ({exc.msg})"
                continue
            if not isinstance(rec, dict):
                yield line_no, None, "is not a JSON object"
            else:
                yield line_no, rec, None


def load_catalog(
    path: str | Path | None = None,
    *,
    on_error: OnError = "skip",
    default_currency: str = "USD",
    fmt: Literal["csv", "jsonl", "xml"] | None = None,
    column_map: Mapping[str, str] | None = None,
) -> LoadResult:
    """Load a catalog (the bundled demo catalog when ``path`` is None): shopbot's CSV or JSONL, or a shop
    system's export (retrieval/formats.py), told apart by its content; ``column_map`` ({shopbot column: the
    file's column}) reads any other CSV.

    Raises CatalogError for a missing file, an unknown format, a table whose sku/title/price columns cannot be
    told (naming its columns and the map that would read it), a rejected row (``on_error="raise"``) or a file
    with no valid product at all.
    """
    p = Path(path) if path is not None else demo_catalog_path()
    if not p.is_file():
        raise CatalogError(f"Catalog file {p} does not exist; pass the path of a CSV or JSONL file.")
    kind = fmt or sniff_kind(p)
    if kind not in ("csv", "jsonl", "xml"):
        raise CatalogError(f"Unknown catalog format {kind!r}; use csv, jsonl or xml.")
    try:
        if kind == "jsonl":
            if column_map:
                raise FormatError(f"{p.name} is JSONL, whose keys are shopbot's own; a column map is for CSV files.")
            reading = Reading("shopbot JSONL", unit="line")
            reading.rows = reading.track(_jsonl_rows(p))
        else:
            reading = read_source(p, kind, column_map=column_map, shopbot_column=_shopbot_column)
        result = parse_records(reading.rows, on_error=on_error, default_currency=default_currency, source=str(p))
    except FormatError as exc:
        raise CatalogError(str(exc)) from None
    except UnicodeDecodeError:
        raise CatalogError(f"Catalog file {p} is not UTF-8 text; save it as UTF-8 and try again.") from None
    except csv.Error as exc:
        raise CatalogError(f"Catalog file {p} is not readable CSV ({exc}).") from None
    if not result.products:
        detail = f" (first problem: {result.errors[0]})" if result.errors else ""
        raise CatalogError(f"Catalog file {p} has no valid products{detail}.")
    result.source_format, result.read_line = reading.name, reading.line(len(result.products))
    return result


# ------------------------------------------------------------------------------ generated descriptions

_NOT_DESCRIBED = {"rating", "ratings", "reviews", "review_count"}


def description_facts_hash(p: Product) -> str:
    """The facts a generated description is written from: titles, brand, category and attributes.

    Price, stock, image, rating and the description itself are left out, so a price change keeps a
    generated description while a changed colour or material retires it.
    """
    rec = {"title": p.title, "titles": dict(sorted(p.titles.items())), "brand": p.brand, "category": list(p.category),
           "attributes": {k: list(v) for k, v in sorted(p.attributes.items()) if k not in _NOT_DESCRIBED}}
    blob = json.dumps(rec, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def overlay_descriptions(products: Sequence[Product], path: str | Path) -> tuple[list[Product], int]:
    """Fill empty descriptions from generated ones (``shopbot describe --all --missing`` writes ``path``).

    A product gets the latest line for its SKU that was written from its current facts
    (`description_facts_hash`); the catalog's own description always wins, and a damaged line (a
    run killed mid-write) is skipped. Returns the products and how many were filled.
    """
    p = Path(path)
    if not p.is_file():
        return list(products), 0
    latest: dict[tuple[str, str], str] = {}
    with p.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
                key, text = (str(rec["sku"]), str(rec["hash"])), str(rec["text"]).strip()
            except (ValueError, KeyError, TypeError):
                continue
            if text:
                latest[key] = text
    out, filled = [], 0
    for prod in products:
        generated = latest.get((prod.sku, description_facts_hash(prod))) if not prod.description else None
        if generated:
            prod = dataclasses.replace(prod, description=generated)
            filled += 1
        out.append(prod)
    return out, filled
