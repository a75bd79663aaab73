"""A question about one fact of a shown product is answered by code from its catalog record (issue 19)."""

from __future__ import annotations

import pytest

from bot.dialogue.facts import asked_fact, fact_answer
from retrieval.catalog import Product

SHOE = Product(sku="S1", title="Adidas Ultraboost 5 Women's Running Shoe, Grey", price=172.99, brand="Adidas",
               stock=3, attributes={"color": ("grey",), "size": ("38", "39", "40"), "material": ("knit textile",),
                                    "rating": ("4.1",)})
LAPTOP = Product(sku="L1", title='Dell Latitude 5450 14" Laptop, 16GB RAM, 1TB SSD, Grey', price=899.0, stock=2)
KETTLEBELL = Product(sku="K1", title="Trailmark Cast Iron Kettlebell 12 kg, Black", price=30.0, stock=0)


@pytest.mark.parametrize(("question", "product", "answer"), [
    ("what material is the first one?", SHOE, "Its material: knit textile."),
    ("第一个是什么材质？", SHOE, "材质：knit textile。"),
    ("what colour is it?", SHOE, "Its color: grey."),
    ("这个是什么颜色", SHOE, "颜色：灰色。"),
    ("does the second one come in size 40?", SHOE, "Yes, it comes in size 40 (sizes: 38, 39, 40)."),
    ("does it come in size 44?", SHOE, "No, it doesn't come in size 44; its sizes are 38, 39, 40."),
    ("有没有42码", SHOE, "没有 42 码；可选尺码：38, 39, 40。"),
    ("第一条有S码吗", Product(sku="D1", title="Wrap Midi Dress, Navy", price=45.0, attributes={"size": ("M", "L")}),
     "没有 S 码；可选尺码：M, L。"),
    ("which brand is it?", SHOE, "Its brand: Adidas."),
    ("what's the rating?", SHOE, "It is rated 4.1 out of 5."),
    ("how heavy is it?", KETTLEBELL, "Its weight: 12 kg."),  # a measure the title states
    ("is it in stock?", KETTLEBELL, "Out of stock at the moment."),
    ("第二个多少钱？", SHOE, "价格是 $172.99。"),
    # a spec the title states after the product's name
    ("how much ram does the first one have?", LAPTOP, "The catalog lists it with 16GB RAM."),
    ("how big is the ssd?", LAPTOP, "The catalog lists it with 1TB SSD."),
])
def test_the_record_answers(question: str, product: Product, answer: str) -> None:
    assert fact_answer(question, product, "zh" if any("\u4e00" <= c <= "\u9fff" for c in question) else "en") == answer


def test_a_fact_the_record_lacks_is_said_to_be_missing_not_guessed() -> None:
    assert fact_answer("how heavy is the first one?", SHOE, "en") == "The catalog doesn't list its weight, and I won't guess."
    assert fact_answer("第一个多重？", SHOE, "zh") == "商品资料里没有写重量，我不想乱猜。"


def test_other_questions_are_left_to_the_model() -> None:
    assert fact_answer("is it good for gaming?", LAPTOP, "en") is None  # "laptop" is its name, not a spec
    assert fact_answer("is it waterproof?", SHOE, "en") is None
    assert fact_answer("the first one", SHOE, "en") is None  # not a question
    assert asked_fact("what colour and size is it?") is None  # two facts at once: the card shows both


def test_whether_one_product_suits_something_is_read_from_its_record() -> None:
    from bot.dialogue.facts import rule_answer

    camera = Product(sku="C1", title="Voltix Kids Instant Print Camera, Pink", price=40.0,
                     category=("Electronics", "Cameras"), description="A fun instant camera for kids aged 6 and up.")
    assert rule_answer("is it good for kids?", camera, "en") == (
        "Going by the catalog: \u201cKids\u201d in its name; A fun instant camera for kids aged 6 and up.", True)
    assert rule_answer("is the second one good for wide feet?", SHOE, "en") == (
        "The catalog doesn't say whether it is suited to wide feet, and I won't guess.", False)
    assert rule_answer("第一个适合小孩用吗？", SHOE, "zh") == ("商品资料里没有写它是否适合小孩，我不想乱猜。", False)
    assert rule_answer("the first one", SHOE, "en") is None  # no question


def test_any_question_is_answered_from_the_record_or_said_to_be_missing() -> None:
    from bot.dialogue.facts import rule_answer

    jacket = Product(sku="J1", title="Trailmark Rain Jacket, Navy", price=80.0, category=("Apparel", "Jackets"),
                     description="A packable rain jacket. With an adjustable hood and taped seams.")
    assert rule_answer("does it have a hood?", jacket, "en") == (
        "Going by the catalog: With an adjustable hood and taped seams.", True)
    # the kind it is and what was searched for answer nothing ("jacket" of a jacket; "rain" of a search for rain)
    assert rule_answer("is this jacket any good?", jacket, "en") == (
        "I can't find that in this product's catalog facts, and I won't guess.", False)
    assert rule_answer("is it good in the rain?", jacket, "en", known=frozenset(["rain"]))[1] is False
    # what no fact holds is said plainly to be missing, in the shopper's language
    assert rule_answer("保质期多久？", jacket, "zh") == ("在这件商品的资料里没找到这一点，我不想乱猜。", False)
