"""A 5,000-row catalog with 1% malformed rows (eight kinds, tests/hostile/bad_catalog.py) loads every good row
and names every bad one by its line: an owner fixing a large export needs the exact lines, and one bad row
must never cost the others. The 100,000-row version with timing and memory is
tests/benchmarks/bench_bad_catalog.py."""

from __future__ import annotations

import time
from pathlib import Path

from retrieval.catalog import load_catalog
from tests.hostile.bad_catalog import KINDS, write_bad_catalog


def test_every_bad_line_is_reported_by_number_and_every_good_row_loads(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    bad_lines, good, kinds = write_bad_catalog(path, 5000)
    assert len(bad_lines) == 50 and all(kinds[k] >= 6 for k in KINDS)
    start = time.perf_counter()
    result = load_catalog(path)
    assert time.perf_counter() - start < 30
    reported = [e.line for e in result.errors]
    assert sorted(reported) == sorted(bad_lines)  # each bad line once, no good line blamed
    assert {p.sku for p in result.products} == good
    reasons = " ".join(e.reason for e in result.errors)
    for said in ("sku is missing", "is not a number", "not a whole number", "longer than", "fields", "duplicate"):
        assert said in reasons


def test_an_infinite_stock_is_a_bad_row_not_a_crash(tmp_path: Path) -> None:
    """int(float("1e400")) raised OverflowError out of load_catalog (shopbot CSV and the shop-system readers)."""
    plain = tmp_path / "plain.csv"
    plain.write_text("sku,title,price,stock\nA,ok,1,1\nB,x,1,1e400\nC,y,1,-inf\nD,z,1,nan\n")
    result = load_catalog(plain)
    assert [p.sku for p in result.products] == ["A"]
    assert [(e.line, "not a whole number" in e.reason) for e in result.errors] == [(3, True), (4, True), (5, True)]
    shopify = tmp_path / "shopify.csv"
    shopify.write_text("Handle,Title,Variant SKU,Variant Price,Variant Inventory Qty\nh,T,S1,1,inf\nh2,T2,S2,1,2\n")
    result = load_catalog(shopify)
    assert [p.sku for p in result.products] == ["S2"] and result.errors[0].line == 2
