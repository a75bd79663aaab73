from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval.catalog import CatalogError, Product, catalog_hash, load_catalog, strip_html
from tests.conftest import HEADER, ROWS, write_catalog


def test_csv_loads_every_good_row_with_facts_and_attributes(catalog_csv: Path) -> None:
    result = load_catalog(catalog_csv)
    assert result.errors == []
    assert len(result.products) == len(ROWS)
    coat = next(p for p in result.products if p.sku == "COA-1")
    assert coat.price == 69.99 and coat.currency == "USD" and coat.stock == 5
    assert coat.category == ("Apparel", "Coats")
    assert coat.attr("size") == ("S", "M", "L")
    assert coat.attr("color") == ("red",)
    assert coat.titles == {"zh": "女款红色冬季棉服外套"}
    assert coat.title_for("zh") == "女款红色冬季棉服外套" and coat.title_for("en") == coat.title
    # a product without a Chinese title has none (not an empty string)
    assert next(p for p in result.products if p.sku == "COA-3").titles == {}


def test_bad_rows_are_reported_with_line_numbers_and_skipped(tmp_path: Path) -> None:
    rows = [
        ROWS[0],
        ("BAD-1", "", "", "no title", "A > B", "X", "10", "1", "", "", ""),
        ("BAD-2", "Negative", "", "", "A", "X", "-5", "1", "", "", ""),
        ("BAD-3", "Price words", "", "", "A", "X", "cheap", "1", "", "", ""),
        ("BAD-4", "Half stock", "", "", "A", "X", "5", "2.5", "", "", ""),
        ("COA-1", "Duplicate sku", "", "", "A", "X", "5", "1", "", "", ""),
        ROWS[1],
    ]
    path = write_catalog(tmp_path / "c.csv", rows)
    result = load_catalog(path)
    assert [p.sku for p in result.products] == ["COA-1", "COA-2"]
    by_line = {e.line: e for e in result.errors}
    assert sorted(by_line) == [3, 4, 5, 6, 7]
    assert "title is missing" in by_line[3].reason
    assert "negative" in by_line[4].reason
    assert "not a number" in by_line[5].reason
    assert "whole number" in by_line[6].reason
    assert "duplicate sku 'COA-1'" in by_line[7].reason and "line 2" in by_line[7].reason
    assert str(by_line[4]).startswith("line 4 (sku BAD-2): ")


def test_on_error_raise_rejects_the_load_naming_the_line(tmp_path: Path) -> None:
    path = write_catalog(tmp_path / "c.csv", [ROWS[0], ("X", "T", "", "", "", "", "abc", "1", "", "", "")])
    with pytest.raises(CatalogError, match=r"line 3 \(sku X\): price 'abc' is not a number"):
        load_catalog(path, on_error="raise")


def test_csv_row_with_too_many_fields_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("sku,title,price\nA,Alpha,1\nB,Beta,2,extra\n", encoding="utf-8")
    result = load_catalog(path)
    assert [p.sku for p in result.products] == ["A"]
    assert result.errors[0].line == 3 and "4 fields" in result.errors[0].reason


def test_jsonl_with_nested_attributes_titles_and_broken_lines(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    lines = [
        json.dumps({"id": "J1", "name": "Trail Shoe", "price": "$49.50", "quantity": 3,
                    "attributes": {"color": "green", "size": ["41", "42"]}, "titles": {"zh": "越野跑鞋"},
                    "category": ["Shoes", "Trail"], "image": "https://img.example.com/j1.jpg"}),
        "{not json",
        json.dumps(["a", "list"]),
        "",
        json.dumps({"sku": "J2", "title": "<b>Bold</b> &amp; Co", "price": 5, "image_url": "ftp://x"}),
        json.dumps({"sku": "J3", "title": "Yen item", "price": "¥1,299"}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = load_catalog(path)
    j1 = result.products[0]
    assert (j1.sku, j1.title, j1.price, j1.stock) == ("J1", "Trail Shoe", 49.5, 3)
    assert j1.attr("size") == ("41", "42") and j1.titles["zh"] == "越野跑鞋"
    assert j1.category == ("Shoes", "Trail") and j1.image_url == "https://img.example.com/j1.jpg"
    j3 = result.products[1]
    assert (j3.price, j3.currency) == (1299.0, "CNY")
    reasons = {e.line: e.reason for e in result.errors}
    assert "not valid JSON" in reasons[2] and "not a JSON object" in reasons[3]
    assert "not an http(s) URL" in reasons[5]


def test_missing_empty_and_non_utf8_files_fail_with_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("sku,title,price\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="no valid products"):
        load_catalog(empty)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("sku,title,price\nA,Caf\xe9,1\n".encode("latin-1"))
    with pytest.raises(CatalogError, match="not UTF-8"):
        load_catalog(latin)


def test_content_hash_changes_with_any_fact_and_catalog_hash_ignores_order(products: list[Product]) -> None:
    p = products[0]
    same = Product.from_record(p.to_record())
    assert same.content_hash == p.content_hash
    cheaper = Product.from_record({**p.to_record(), "price": p.price - 1})
    restocked = Product.from_record({**p.to_record(), "stock": p.stock + 1})
    assert len({p.content_hash, cheaper.content_hash, restocked.content_hash}) == 3
    assert catalog_hash(products) == catalog_hash(list(reversed(products)))
    assert catalog_hash(products) != catalog_hash(products[1:])


def test_strip_html() -> None:
    assert strip_html("<p>Hello&nbsp;<b>world</b></p>\n\n x") == "Hello world x"


def test_header_aliases_are_case_insensitive(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("Product_ID,Name,Price,Inventory,Colour\nA,Alpha,1.5,7,Red\n", encoding="utf-8")
    p = load_catalog(path).products[0]
    assert (p.sku, p.title, p.price, p.stock, p.attr("color")) == ("A", "Alpha", 1.5, 7, ("Red",))


def test_demo_catalog_is_large_varied_and_clean() -> None:
    result = load_catalog()
    assert result.errors == []
    products = result.products
    assert len(products) >= 1000
    assert len({p.category[0] for p in products}) >= 12
    assert len({p.brand for p in products}) >= 40
    assert sum(1 for p in products if "zh" in p.titles) >= len(products) / 3
    assert any(p.stock == 0 for p in products) and any(p.stock > 50 for p in products)
    assert len(HEADER) == 11  # the fixture layout used across tests
