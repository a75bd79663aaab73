"""The packaged WordNet nouns: other names and broader names of a word a shop does not use (issue 17)."""

from __future__ import annotations

import pytest

from retrieval.catalog import Product
from retrieval.kinds import KindIndex
from retrieval.thesaurus import EnglishThesaurus, default_thesaurus


@pytest.fixture(scope="module")
def thesaurus() -> EnglishThesaurus:
    return default_thesaurus()


def test_other_names_come_before_broader_ones(thesaurus: EnglishThesaurus) -> None:
    # frock's first sense is a cleric's habit; the dress of its second sense is still its nearest other name
    assert thesaurus.names("frock")[0] == "dress"
    assert thesaurus.names("jumpers")[0] == "sweater"  # plural; the athlete senses are no goods
    assert thesaurus.names("telly")[:4] == ["television receiver", "television", "television set", "tv"]
    cagoule = thesaurus.names("Cagoule")
    assert cagoule[0] == "parka" and "jacket" in cagoule  # a parka, which is a kind of jacket


def test_classes_of_goods_and_words_that_are_mostly_other_things_name_nothing(thesaurus: EnglishThesaurus) -> None:
    assert "garment" not in thesaurus.names("sweater")  # 271 kinds of goods under it: a class, not a kind
    assert "machine" not in thesaurus.names("trainer")
    # a rare goods sense is not the word: "go" (a drug), "mate" (a tea), "pink" (a flower)
    assert thesaurus.names("go") == thesaurus.names("mate") == thesaurus.names("pink") == []
    assert thesaurus.names("qwertyuiop") == []


def _shop() -> list[Product]:
    return [Product(sku=f"s{i}", title=t, price=1.0, category=c) for i, (t, c) in enumerate([
        ("Linen Midi Dress", ("Apparel", "Dresses")),
        ("Wool Crew Sweater", ("Apparel", "Sweaters")),
        ("Quilted Winter Coat", ("Apparel", "Coats")),
        ("Samsung 55in QLED TV", ("Electronics", "TVs")),
        ("Classic Lego Set 500 pieces", ("Toys", "Building Sets")),
        ("Wooden Train Set", ("Toys", "Building Sets")),
        ("Fitness Band", ("Sports", "Fitness")),
    ])]


def test_a_kind_named_in_other_words_finds_the_shops_own() -> None:
    kinds = KindIndex(_shop())
    assert kinds.rows("a floaty summer frock for a wedding").tolist() == [0]
    assert kinds.shop_words("a floaty summer frock for a wedding") == ("dress",)
    assert kinds.rows("a warm jumper for winter").tolist() == [1]
    assert kinds.rows("a new telly for the lounge").tolist() == [3]
    assert kinds.shop_words("a new telly for the lounge") == ("tv",)
    # a name of several words counts only where titles hold it whole: the Lego set, not the train set
    assert kinds.rows("lego for a 10 year old").tolist() == [4]
    # the shop's words, not their stems: a socket's broader name "fitting" is no fitness band
    assert kinds.rows("a socket") is None
    assert kinds.shop_words("a dress") == ()  # the shop's own word needs no other
    assert kinds.rows("some gear for the weekend") is None  # vague words name no kind ("gear": a cogwheel)


def test_the_shop_word_is_searched_as_well(demo_engine) -> None:  # type: ignore[no-untyped-def]
    """"telly" is in no title: the TVs were not even candidates before the shop's word was searched too."""
    top = demo_engine.search("a new telly for the lounge", k=3)
    assert [h.product.category_path for h in top.hits] == ["Electronics > TVs"] * 3


def test_a_property_is_told_from_a_thing(thesaurus: EnglishThesaurus) -> None:
    # what a thing has (a Chinese request's 大容量 "high capacity", 尺寸 "size" after its name) is no kind of goods
    assert all(thesaurus.names_property(w) for w in ("capacity", "size", "weight", "volume"))
    # "light" is a phenomenon first (and a lamp after); the goods are no properties
    assert not any(thesaurus.names_property(w) for w in ("light", "headphones", "tent", "notebook", "gift", "unknownword"))
