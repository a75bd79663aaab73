"""British spellings find the catalog's American ones, and nothing else is rewritten."""

from __future__ import annotations

import pytest

from retrieval.spelling import catalog_spelling

CATALOG = {"moisturizer", "color", "center", "jewelry", "traveling", "organizer", "wise", "noise", "tour"}


@pytest.mark.parametrize(("typed", "searched"), [
    ("moisturiser for dry skin", "moisturizer for dry skin"),
    ("colour", "color"),
    ("jewellery box", "jewelry box"),
    ("travelling bag", "traveling bag"),
    ("a desk organiser", "a desk organizer"),
])
def test_a_british_spelling_becomes_the_catalogs(typed: str, searched: str) -> None:
    assert catalog_spelling(typed, CATALOG.__contains__) == searched


@pytest.mark.parametrize("typed", ["wise noise", "four tour", "theatre", "tumbler"])
def test_words_the_catalog_holds_or_has_no_variant_of_stay(typed: str) -> None:
    # "theatre": the catalog has no "theater" either; "tumbler" is not "tumblre"
    assert catalog_spelling(typed, CATALOG.__contains__) == typed


def test_the_demo_shop_finds_moisturiser(demo_engine) -> None:  # type: ignore[no-untyped-def]
    hits = demo_engine.search("moisturiser for dry skin", k=3).hits
    assert all(h.product.category_path == "Beauty > Skincare" for h in hits), [h.product.title for h in hits]
