"""Search behaviour over the small fixture catalog with the hashing encoder (fast, deterministic)."""

from __future__ import annotations

from retrieval.query import Filters


def test_keyword_search_finds_the_matching_products_first(engine) -> None:
    r = engine.search("winter coat", k=5)
    assert set(r.skus[:3]) == {"COA-1", "COA-2", "COA-3"}
    assert r.hits[0].rank == 1 and r.hits[0].score >= r.hits[-1].score


def test_price_and_colour_in_the_text_become_filters(engine) -> None:
    r = engine.search("a red winter coat under $80")
    assert r.query.filters.max_price == 80 and r.query.filters.colors == {"red"}
    assert r.skus[:2] == ["COA-1", "COA-3"]  # in stock first
    assert all(h.product.price <= 80 and "red" in h.product.attr("color") for h in r.hits)


def test_explicit_filters_brand_size_stock_and_category(engine) -> None:
    r = engine.search("running shoe", Filters(sizes=frozenset({"42"}), in_stock=True))
    assert set(r.skus[:2]) == {"SHO-1", "SHO-2"}
    assert all("42" in h.product.attr("size") and h.product.stock > 0 for h in r.hits)
    assert engine.search("shoe", Filters(brands=frozenset({"adidas"}))).skus == ["SHO-2"]
    assert engine.search("shoe", Filters(categories=frozenset({"hiking"}))).skus == ["SHO-3"]
    assert engine.search("nike running shoe").query.filters.brands == {"nike"}
    assert engine.search("coat", Filters(max_price=1)).hits == []


def test_sort_by_price_among_relevant_products(engine) -> None:
    asc = engine.search("winter coat", sort="price_asc")
    prices = [h.product.price for h in asc.hits]
    assert prices == sorted(prices) and asc.skus[0] == "COA-3"
    desc = engine.search("most expensive winter coat")
    assert desc.query.sort == "price_desc" and desc.skus[0] == "COA-2"


def test_paging_returns_disjoint_consecutive_pages(engine) -> None:
    first = engine.search("shoe", k=2)
    second = engine.search("shoe", k=2, offset=2)
    assert first.total == second.total >= 3
    assert not set(first.skus) & set(second.skus)
    assert [h.rank for h in second.hits] == [3, 4][: len(second.hits)]


def test_chinese_queries_find_products_by_chinese_title(engine) -> None:
    r = engine.search("我想买一款新的手机")
    assert r.query.text == "手机"
    assert set(r.skus[:3]) >= {"PHO-1", "PHO-2"}
    red = engine.search("红色的外套")
    assert red.query.filters.colors == {"red"} and red.skus[0] == "COA-1"
    assert engine.search("跑步鞋 500元以下").skus[0] == "SHO-2"  # ¥500 is about $70: the $59.99 pair
    assert "SHO-2" not in engine.search("跑步鞋 100元以下").skus  # ¥100 is about $14


def test_filter_only_query_and_no_match(engine) -> None:
    r = engine.search("under $20")
    assert r.hits and all(h.product.price <= 20 for h in r.hits)
    assert engine.search("zzzqqq xxyyzz").hits == [] or engine.search("zzzqqq xxyyzz").hits[0].score < 0.5


def test_exclude_and_similar(engine) -> None:
    r = engine.search("winter coat", exclude=["COA-1"])
    assert "COA-1" not in r.skus
    sim = engine.similar("COA-1", k=3)
    assert sim and all(h.sku != "COA-1" for h in sim)
    assert engine.similar("NOPE") == []


def test_phrase_and_smoothing_signals_are_reported_and_can_be_switched_off(engine) -> None:
    import dataclasses

    r = engine.search("winter coat", k=5)
    assert "phrase" in r.hits[0].signals
    base = engine.config
    try:
        engine.config = dataclasses.replace(base, w_phrase=0.0, smooth_weight=0.0)
        plain = engine.search("winter coat", k=5)
        assert "phrase" not in plain.hits[0].signals
        assert set(plain.skus[:3]) == set(r.skus[:3]) == {"COA-1", "COA-2", "COA-3"}
    finally:
        engine.config = base


def test_term_feedback_favours_titles_that_share_the_best_results_words(tmp_path) -> None:
    """'espresso machine': the first pass's best titles say "brewer" and "frother", so a frother
    that never says "espresso" gets feedback credit and a poster of an espresso machine gets none."""
    import dataclasses

    from retrieval.catalog import load_catalog
    from retrieval.indexer import build_bundle, load_engine
    from tests.conftest import hashing_factory, write_catalog

    brands = ["Breville", "DeLonghi", "Gaggia", "Rancilio", "Smeg", "Krups", "Philips", "Sage", "Bialetti", "Nespresso"]
    rows = [(f"ESP-{i}", f"{b} Espresso Machine Brewer with Milk Frother", "", "Pump espresso machine.",
             "Kitchen > Coffee", b, str(199 + i), "5", "", "", "") for i, b in enumerate(brands)]
    rows += [
        ("FRO-1", "Stainless Milk Frother Brewer Jug", "", "Steam jug.", "Kitchen > Coffee", "Motta", "19.00", "9", "", "", ""),
        ("POS-1", "Vintage Espresso Machine Poster", "", "Wall art print.", "Home > Decor", "Printly", "12.00", "9", "", "", ""),
    ]
    # the rest of the shop, so that words shared by the espresso machines are rare catalog-wide
    others = ["Hiking Boot", "Rain Jacket", "Desk Lamp", "Yoga Mat", "Paperback Novel", "Wool Scarf", "Phone Case",
              "Garden Hose", "Pillow Cover", "Board Game", "Water Bottle", "Tennis Racket"]
    rows += [(f"OTH-{i}", f"{brands[i % 10]} {name}", "", f"A {name.lower()}.", "Misc", "Other", "9.99", "3", "", "", "")
             for i, name in enumerate(others)]

    products = load_catalog(write_catalog(tmp_path / "c.csv", rows=rows)).products
    enc = {"en": "hashing", "multi": "hashing"}
    build_bundle(products, tmp_path / "index", encoders=enc, encoder_factory=hashing_factory)
    engine = load_engine(tmp_path / "index", encoders=enc, encoder_factory=hashing_factory)
    signals = {h.sku: h.signals for h in engine.search("espresso machine", k=20).hits}
    assert signals["FRO-1"]["prf_terms"] > 0.5
    assert signals["POS-1"]["prf_terms"] == 0.0  # its only shared words are the query's own
    assert max(s["prf_terms"] for s in signals.values()) == 1.0
    engine.config = dataclasses.replace(engine.config, w_prf_terms=0.0)
    assert "prf_terms" not in engine.search("espresso machine", k=20).hits[0].signals


def test_warm_up_prepares_what_the_first_query_would_wait_for(engine) -> None:
    title = engine.lexical.fields["title"]
    assert title._by_doc is None
    engine.warm_up()
    assert title._by_doc is not None and title._by_doc.shape == title.matrix.shape
    assert engine.search("winter coat", k=3).skus[0].startswith("COA")
