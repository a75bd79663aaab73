from __future__ import annotations

import pytest

from retrieval.catalog import Product
from retrieval.query import Filters, parse_query


@pytest.mark.parametrize(
    ("text", "rest", "min_p", "max_p", "currency"),
    [
        ("a red winter coat under $80", "winter coat", None, 80, "USD"),
        ("running shoes below 100 dollars", "running shoes", None, 100, "USD"),
        ("laptop over $1000", "laptop", 1000, None, "USD"),
        ("headphones between 50 and 150 dollars", "headphones", 50, 150, "USD"),
        ("tv $300-$500", "tv", 300, 500, "USD"),
        ("phone under 2k", "phone", None, 2000, None),
        ("外套 500元以下", "外套", None, 500, "CNY"),
        ("不超过300元的耳机", "耳机", None, 300, "CNY"),
        ("手机 1000元以上", "手机", 1000, None, "CNY"),
    ],
)
def test_price_constraints(text: str, rest: str, min_p: float | None, max_p: float | None, currency: str | None) -> None:
    q = parse_query(text)
    assert (q.filters.min_price, q.filters.max_price) == (min_p, max_p)
    assert q.filters.currency == currency
    assert q.text == rest


@pytest.mark.parametrize("text", ["iphone 15 pro", "ps4 controller", "12-14 year old girls dress", "size 9 shoes"])
def test_model_numbers_are_not_prices(text: str) -> None:
    f = parse_query(text).filters
    assert f.min_price is None and f.max_price is None


def test_colours_sizes_stock_and_sort_in_english_and_chinese() -> None:
    q = parse_query("cheapest black running shoes size 42 in stock")
    assert q.filters.colors == {"black"} and q.filters.sizes == {"42"} and q.filters.in_stock
    assert q.sort == "price_asc" and q.text == "running shoes"
    z = parse_query("我想买一款红色的外套")
    assert z.filters.colors == {"red"} and z.text == "外套"
    assert parse_query("我想买一款新的手机").text == "手机"
    assert parse_query("42码的跑步鞋").filters.sizes == {"42"}
    assert parse_query("dress XL").filters.sizes == {"xl"}
    assert parse_query("best rated blender").sort == "rating"


@pytest.mark.parametrize(("text", "colors", "rest"), [
    ("有没有便宜的蓝牙耳机", set(), "蓝牙耳机"), ("红米手机", set(), "红米手机"), ("白酒", set(), "白酒"),
    ("要蓝的", {"blue"}, ""), ("黑耳机", {"black"}, "耳机"), ("红色蓝牙音箱", {"red"}, "蓝牙音箱"), ("海军蓝外套", {"navy"}, "外套"),
])
def test_a_chinese_colour_character_inside_a_longer_word_is_no_colour(text: str, colors: set[str], rest: str) -> None:
    """蓝牙 is Bluetooth and 红米 a phone brand: "any cheap Bluetooth earphones?" is not a search for blue ones."""
    q = parse_query(text)
    assert q.filters.colors == colors and rest in q.text


def test_filters_read_in_chinese_use_the_chinese_colour_names() -> None:
    from retrieval.query import Filters

    assert Filters(colors=frozenset({"grey", "red"}), max_price=80.0).describe("zh") == "灰色/红色，$80 以下"
    assert Filters(colors=frozenset({"grey"}), max_price=80.0).describe() == "grey, under 80"


def test_known_brands_become_filters() -> None:
    q = parse_query("nike running shoes", brands=["nike", "adidas"])
    assert q.filters.brands == {"nike"}
    assert parse_query("running shoes", brands=["nike"]).filters.brands == frozenset()


def test_filters_match_and_merge() -> None:
    p = Product(sku="A", title="Coat", price=50, stock=0, category=("Apparel", "Coats"), brand="Northwind",
                attributes={"color": ("Red",), "size": ("S", "M")})
    assert Filters(max_price=60, colors=frozenset({"red"}), sizes=frozenset({"m"})).matches(p)
    assert not Filters(in_stock=True).matches(p)
    assert not Filters(max_price=40).matches(p)
    assert Filters(categories=frozenset({"coats"})).matches(p)
    assert Filters(categories=frozenset({"apparel > coats"})).matches(p)
    assert not Filters(brands=frozenset({"nike"})).matches(p)
    merged = Filters(max_price=80, colors=frozenset({"red"})).merged(Filters(max_price=50))
    assert merged.max_price == 50 and merged.colors == {"red"}
    assert Filters().is_empty() and not merged.is_empty()
    assert merged.describe() == "red, under 50"


def test_a_budget_in_another_currency_is_converted_for_the_filter() -> None:
    from retrieval.catalog import Product
    from retrieval.query import FilterArrays, set_exchange_rates

    products = [Product(sku=f"S{i}", title="shoe", price=price, currency=cur, stock=1)
                for i, (price, cur) in enumerate([(50.0, "USD"), (90.0, "USD"), (400.0, "CNY"), (60.0, "EUR")])]
    fa = FilterArrays(products)
    allowed = lambda text: [p.sku for p, ok in zip(products, fa.mask(parse_query(text).filters), strict=True) if ok]  # noqa: E731
    f = parse_query("跑步鞋 500元以下").filters
    assert f.currency == "CNY" and f.describe() == "under ¥500"
    assert allowed("跑步鞋 500元以下") == ["S0", "S2", "S3"]  # ¥500 is about $70: not the $90 pair; €60 ~ $65
    assert allowed("shoes under $60") == ["S0", "S2"]  # ¥400 ~ $56, €60 ~ $65
    assert [p.sku for p in products if f.matches(p)] == ["S0", "S2", "S3"]
    set_exchange_rates({"CNY": 0.2})  # the shop's own rate: ¥500 = $100
    try:
        assert allowed("跑步鞋 500元以下") == ["S0", "S1", "S2", "S3"]
    finally:
        set_exchange_rates({})


def test_uk_and_us_shoe_sizes_also_match_the_eu_sizes_shops_list() -> None:
    """"women's UK 5" filtered on size 5, which no EU-sized shoe has: the search came back empty (issue 17)."""
    assert parse_query("white trainers, women's UK 5").filters.sizes == {"5", "38"}
    assert parse_query("running shoes us 9").filters.sizes == {"9", "42"}  # men's unless said
    assert parse_query("women's sneakers US 7").filters.sizes == {"7", "38"}
    assert parse_query("boots eu 42").filters.sizes == {"42"}
    assert parse_query("a jacket, size xl").filters.sizes == {"xl"}
