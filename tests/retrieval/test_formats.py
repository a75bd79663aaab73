"""Shop-system exports read as they come (retrieval/formats.py through load_catalog), on small sample files written
for these tests (tests/data/catalogs/); `shopbot reindex` with them is in tests/bot/cli/test_reindex_formats.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.catalog import CatalogError, Product, load_catalog
from retrieval.formats import FormatError, parse_column_map

DATA = Path(__file__).resolve().parents[1] / "data" / "catalogs"
GERMAN_MAP = "sku=Artikelnummer,title=Bezeichnung,price=Preis,currency=EUR,color=Farbe,stock=Lagerbestand,category=Warengruppe"


def by_sku(products: list[Product]) -> dict[str, Product]:
    return {p.sku: p for p in products}


def test_shopify_variants_are_grouped_under_their_handle() -> None:
    result = load_catalog(DATA / "shopify_products.csv")
    assert result.source_format == "Shopify products export"
    assert result.read_line.startswith("Read a Shopify products export: 9 rows -> 6 products (")
    assert "6 variants of 2 products grouped by Handle" in result.read_line
    assert "1 image-only row" in result.read_line and "1 unpublished or draft product left out" in result.read_line
    p = by_sku(result.products)
    assert "TT-LINEN-3" not in p  # the draft product
    forest = p["HH-FOREST-M"]
    assert forest.title == "Harbour Organic Cotton Hoodie - Forest Green / M"
    assert (forest.price, forest.currency, forest.stock) == (62.0, "USD", 3)
    assert forest.attr("color") == ("Forest Green",) and forest.attr("size") == ("M",)
    assert forest.category == ("Apparel & Accessories", "Clothing", "Activewear", "Hoodies")
    assert forest.brand == "Saltmarsh" and forest.attr("type") == ("Hoodies",)
    assert forest.attr("tags") == ("organic", "unisex", "winter")
    assert forest.description == "Heavyweight organic cotton hoodie with a brushed fleece lining & a kangaroo pocket."
    assert forest.image_url is not None and forest.image_url.endswith("harbour-hoodie-forest.jpg")  # the variant's image
    navy = p["HH-NAVY-L"].image_url
    assert navy == p["HH-NAVY-S"].image_url and navy is not None and navy.endswith("-navy.jpg")  # the product's first image
    assert p["HH-NAVY-M"].stock == 0  # oversold (-2) is out of stock, not a bad row
    # a single-variant product: no " - Default Title", the handle as its sku, the category from Type
    mug = p["enamel-camp-mug"]
    assert (mug.title, mug.price, mug.stock, mug.category) == ("Enamel Camp Mug 350 ml", 14.5, 25, ("Camping Mugs",))
    assert mug.description == "Speckled enamel on steel. Holds 350 ml Safe on a camp stove"
    assert p["BEANIE-GREY"].attr("color") == ("Grey",)  # "Color" and "Colour" both name the colour
    [err] = result.errors
    assert (err.line, err.sku) == (10, "BEANIE-MUSTARD") and "price 'twelve' is not a number" in err.reason


def test_shopify_variants_without_a_sku_get_the_handle_and_their_options(tmp_path: Path) -> None:
    path = tmp_path / "products_export_1.csv"
    path.write_text(
        "Handle,Title,Body (HTML),Vendor,Type,Tags,Published,Option1 Name,Option1 Value,Variant SKU,Variant Price,Image Src\n"
        "socks,Trail Socks,<p>Merino</p>,Fjell,Socks,,TRUE,Size,S/M,,12.00,https://cdn.example/socks.jpg\n"
        "socks,,,,,,,,L/XL,,12.00,\n", encoding="utf-8")
    result = load_catalog(path)
    assert [p.sku for p in result.products] == ["socks-s-m", "socks-l-xl"]
    assert result.products[1].title == "Trail Socks - L/XL" and result.products[1].image_url == "https://cdn.example/socks.jpg"
    # no Variant Inventory Qty column: Shopify does not count these, so they are in stock
    assert result.products[0].stock == 1


def test_woocommerce_variations_inherit_from_their_variable_parent() -> None:
    result = load_catalog(DATA / "woocommerce_products.csv")
    assert result.source_format == "WooCommerce products export"
    assert result.read_line.startswith("Read a WooCommerce products export: 9 rows -> 4 products (")
    assert "1 variable product sold as 2 variations" in result.read_line
    p = by_sku(result.products)
    assert set(p) == {"NF-BEANIE", "NF-TOTE", "NF-ZIPHOOD-BLUE-M", "NF-ZIPHOOD-GREY-L"}  # no parent, group, drafts
    blue = p["NF-ZIPHOOD-BLUE-M"]
    assert (blue.title, blue.price, blue.stock) == ("Zip Hoodie - Blue, M", 45.0, 5)
    assert blue.attr("color") == ("Blue",) and blue.attr("size") == ("M",)
    assert blue.category == ("Clothing", "Hoodies")  # the parent's first category
    assert blue.description == "Brushed-back jersey, YKK zip, two side pockets."
    assert blue.image_url is not None and blue.image_url.endswith("zip-hoodie-blue.jpg")  # the parent's first image
    grey = p["NF-ZIPHOOD-GREY-L"]  # named by the parent's SKU, no name of its own, on sale, sold out
    assert (grey.title, grey.price, grey.stock) == ("Zip Hoodie - Grey, L", 39.0, 0)
    beanie = p["NF-BEANIE"]
    assert beanie.description == "Knitted from 100% merino wool – itch-free and warm."
    assert beanie.category == ("Accessories", "Hats") and beanie.attr("tags") == ("wool", "winter")
    tote = p["NF-TOTE"]
    assert (tote.price, tote.stock) == (12.0, 1)  # sale price; "In stock?" 1 without a count
    assert tote.description == "Heavy canvas tote with an inner pocket."  # the short description when there is no other
    [err] = result.errors
    assert err.line == 10 and "variation of 'id:999', which is not in the file" in err.reason


@pytest.mark.parametrize("name", ["gmc_feed.xml", "gmc_feed.tsv"])
def test_merchant_center_feeds_price_currency_and_availability(name: str) -> None:
    result = load_catalog(DATA / name)
    assert result.source_format == "Google Merchant Center feed (" + ("XML)" if name.endswith("xml") else "TSV)")
    assert "2 variants in 1 item group" in result.read_line
    p = by_sku(result.products)
    if name.endswith("xml"):
        assert result.read_line.startswith("Read a Google Merchant Center feed (XML): 5 items -> 4 products")
        skillet = p["CC-SKILLET-24"]
        assert (skillet.price, skillet.currency, skillet.stock) == (32.5, "USD", 1)  # sale price; in stock -> 1
        assert skillet.category == ("Home", "Kitchen", "Cookware") and skillet.brand == "Copper & Clay"
        assert skillet.description.startswith("Pre-seasoned cast iron for induction") and "<" not in skillet.description
        # nested <g:shipping><g:price> is not the price, gtin and "new" are not shown; "in stock" has no count
        assert skillet.attributes == {"stock_count": ("unknown",)} and not skillet.stock_counted
        assert p["CC-APRON-RED"].stock == 0 and p["CC-APRON-NAVY"].attr("color") == ("Navy", "White")
        teapot = p["CC-TEAPOT"]  # preorder: not in stock, and said so; category from google_product_category
        assert teapot.stock == 0 and teapot.attr("availability") == ("preorder",)
        assert teapot.category[-1] == "Coffee & Tea Pots"
        [err] = result.errors
        assert (err.line, err.sku) == (70, "CC-GIFTCARD") and "price 'any amount' is not a number" in err.reason
    else:
        assert result.read_line.startswith("Read a Google Merchant Center feed (TSV): 4 rows -> 4 products")
        jacket = p["FJ-JKT-W-L"]
        assert jacket.title == "Women's Rain Shell Jacket - Yellow / L"  # a variant's size and colour join its title
        assert (jacket.price, jacket.currency, jacket.stock) == (149.95, "EUR", 0)
        assert jacket.attr("size") == ("L",) and jacket.attr("gender") == ("female",)
        assert p["FJ-TENT-2"].category == ("Outdoor", "Tents") and p["FJ-TENT-2"].price == 249.0
        assert p["FJ-STOVE"].category == ()  # a numeric google_product_category is not a path
        assert p["FJ-STOVE"].attr("availability") == ("backorder",) and p["FJ-STOVE"].attr("condition") == ("refurbished",)


def test_feed_xml_with_entities_or_another_root_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "feed.xml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
                    '<rss><channel><item><title>&b;</title></item></channel></rss>', encoding="utf-8")
    with pytest.raises(CatalogError, match="declares XML entities"):
        load_catalog(bomb)
    other = tmp_path / "products.xml"
    other.write_text("<catalog><product sku='A'/></catalog>", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"not a Google Merchant Center feed \(its root element is <catalog>"):
        load_catalog(other)


def test_flipkart_export_prices_in_inr_categories_specifications_and_images() -> None:
    result = load_catalog(DATA / "flipkart_sample.csv")
    assert result.source_format == "Flipkart-style marketplace export"
    assert result.read_line == ("Read a Flipkart-style marketplace export: 4 rows -> 3 products "
                                "(prices in INR; no stock column, every product counted as stock 1).")
    p = by_sku(result.products)
    dress = p["DRSEG7HFZQ8WCKBN"]
    assert (dress.title, dress.price, dress.currency, dress.brand) == ("Ruhani Georgette A-line Dress", 899.0, "INR", "Ruhani")
    assert dress.stock == 1  # listed for sale, no count: the in-stock placeholder
    # the path without its last level, which only repeats the product's name
    assert dress.category == ("Clothing", "Women's Clothing", "Western Wear", "Dresses & Skirts", "Dresses")
    assert dress.attr("color") == ("Maroon",) and dress.attr("fabric") == ("Georgette",)
    assert dress.attr("ideal for") == ("Women's",) and "rating" not in dress.attributes  # "No rating available"
    assert dress.image_url == "http://img5a.flixcart.com/image/dress/k/b/n/ruhani-a-line-maroon-1000x1000-imaeg7hfzqcxwkxt.jpeg"
    bottle = p["BTLEBTL4GK9ZPQ3Y"]
    assert bottle.price == 549.0  # no discounted price: the retail price
    assert bottle.attr("rating") == ("4.3",) and bottle.attr("capacity") == ("1000 ml",) and "brand" not in bottle.attributes
    assert "size" not in p["SNDEWF7Q2KZ8MNBV"].attributes  # "NA" is no size
    [err] = result.errors
    assert (err.line, err.sku) == (5, "WATEORB2K4M6N8PQ") and err.reason == "price is missing"


def test_unknown_columns_get_one_sentence_naming_them_and_the_map() -> None:
    with pytest.raises(CatalogError) as info:
        load_catalog(DATA / "unknown_columns.csv")
    message = str(info.value)
    assert message.startswith("Could not tell which columns hold the sku, the title and the price in unknown_columns.csv")
    assert "columns seen: Artikelnummer, Bezeichnung, Beschreibung, Warengruppe, Hersteller, Preis, Farbe, Lagerbestand, " \
           "Einkaufspreis." in message
    assert message.endswith("Tell me with --map sku=Artikelnummer,title=Bezeichnung,price=Preis")
    # a map naming a column the file lacks says so
    with pytest.raises(CatalogError, match=r"names 'Price', which unknown_columns\.csv does not have; columns seen: Artikelnummer"):
        load_catalog(DATA / "unknown_columns.csv", column_map={"sku": "Artikelnummer", "title": "Bezeichnung", "price": "Price"})


def test_a_column_map_reads_only_the_columns_it_names() -> None:
    result = load_catalog(DATA / "unknown_columns.csv", column_map=parse_column_map(GERMAN_MAP))
    assert result.source_format == "CSV with a column map"
    assert result.read_line.startswith("Read a CSV with a column map: 4 rows -> 3 products (sku=Artikelnummer, ")
    p = by_sku(result.products)
    mug = p["KB-1001"]
    assert (mug.title, mug.price, mug.currency, mug.stock) == ("Kaffeebecher Steingut 300 ml", 14.9, "EUR", 36)
    assert mug.attr("color") == ("Salbeigrün",) and mug.category == ("Küche", "Tassen & Becher")
    assert mug.description == "" and "einkaufspreis" not in mug.attributes  # columns the map leaves out are not read
    assert p["ET-2040"].price == 1249.0  # "1.249,00": decimal comma, thousands dot
    [err] = result.errors
    assert (err.line, err.sku) == (5, "TK-3007")


def test_shopbot_csv_and_jsonl_name_themselves(catalog_csv: Path, tmp_path: Path) -> None:
    result = load_catalog(catalog_csv)
    assert result.source_format == "shopbot CSV" and result.read_line.startswith("Read a shopbot CSV: 13 rows -> 13 products")
    jsonl = tmp_path / "catalog.txt"  # detected from the content, not the name
    jsonl.write_text('{"sku": "A", "title": "Alpha", "price": 1}\n', encoding="utf-8")
    assert load_catalog(jsonl).read_line == "Read a shopbot JSONL: 1 line -> 1 product."


def test_parse_column_map_errors_are_one_sentence() -> None:
    assert parse_column_map(" sku = uniq_id , Title=product_name,price=discounted_price") == {
        "sku": "uniq_id", "title": "product_name", "price": "discounted_price"}
    for bad in ("sku", "sku=a,sku=b", "", "=x"):
        with pytest.raises(FormatError):
            parse_column_map(bad)
