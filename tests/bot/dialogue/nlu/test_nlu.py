"""NLU: slot patterns (EN/ZH), rules, input hygiene, and the intent classifier's train/save/load/evaluate.

Fast tests train a tiny classifier on the hashing encoder (no model files, milliseconds); the tests
marked ``slow`` load the shipped weights with the real encoders (MiniLM + USE, a few seconds).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.dialogue.nlu.categories import CategoryMatcher
from bot.dialogue.nlu.intents import (
    CS_INTENTS,
    SHOPPING_INTENTS,
    IntentDataError,
    IntentModel,
    IntentModelError,
    IntentRow,
    data_version,
    default_model_path,
    evaluate_intents,
    load_default_model,
    load_training_csv,
    train_intents,
)
from bot.dialogue.nlu.parser import NLU, parse
from bot.dialogue.nlu.rules import RULES, complement_anchor
from bot.dialogue.nlu.slots import find_order_number, find_ordinals
from retrieval.encoders import HashingEncoder

CATEGORIES = ["Apparel > Coats", "Shoes > Running", "Shoes > Boots", "Phones > Smartphones", "Phones > Cases",
              "Electronics > Headphones", "Laptops > Notebooks", "Computer Accessories > Laptop Bags"]
BRANDS = ["Nike", "Adidas", "Apple", "Xiaomi"]

TINY_ROWS = [
    IntentRow(u, i, "zh" if any("\u4e00" <= c <= "\u9fff" for c in u) else "en")
    for i, us in {
        "search": ["red winter coat", "do you have wireless earbuds", "running shoes", "我想买手机", "有没有耳机", "laptop bag"],
        "refine": ["cheaper", "in blue", "size 42", "便宜一点的", "only nike"],
        "compare": ["compare 1 and 3", "which is better", "比较一下"],
        "details": ["tell me about it", "more info", "详细介绍一下"],
        "track_order": ["where is my order", "track my package", "我的订单到哪了", "order status"],
        "cancel_order": ["cancel my order", "please cancel the order", "取消订单"],
        "get_refund": ["i want a refund", "refund me", "我要退款"],
        "greet": ["hello", "hi there", "你好"],
        "other": ["tell me a joke", "lol", "哈哈"],
    }.items()
    for u in us
]


@pytest.fixture(scope="module")
def tiny_model() -> IntentModel:
    return train_intents(TINY_ROWS, [HashingEncoder()], ngram_dim=512, c=10.0)


@pytest.fixture(scope="module")
def nlu(tiny_model: IntentModel) -> NLU:
    return NLU(tiny_model, brands=BRANDS, categories=CATEGORIES)


# ------------------------------------------------------------------------------------ slot patterns


@pytest.mark.parametrize(
    ("text", "lo", "hi", "currency"),
    [
        ("running shoes under 80 dollars", None, 80.0, "USD"),
        ("headphones below $50", None, 50.0, "USD"),
        ("a coat for $50-100", 50.0, 100.0, "USD"),
        ("between 20 and 50", 20.0, 50.0, None),
        ("耳机 500元以下", None, 500.0, "CNY"),
        ("手机 1000元以上", 1000.0, None, "CNY"),
    ],
)
def test_price_slots(nlu: NLU, text: str, lo: float | None, hi: float | None, currency: str | None) -> None:
    f = nlu.parse(text).slots.filters
    assert (f.min_price, f.max_price, f.currency) == (lo, hi, currency)


@pytest.mark.parametrize(
    ("text", "colors", "sizes"),
    [
        ("red winter coat in size M", {"red"}, {"m"}),
        ("blue running shoes size 42", {"blue"}, {"42"}),
        ("要红色的，42码", {"red"}, {"42"}),
        ("黑色外套 XL", {"black"}, {"xl"}),
    ],
)
def test_colour_and_size_slots(nlu: NLU, text: str, colors: set[str], sizes: set[str]) -> None:
    f = nlu.parse(text).slots.filters
    assert set(f.colors) == colors
    assert set(f.sizes) == sizes


def test_chinese_brand_names_become_the_catalog_brand(nlu: NLU) -> None:
    assert nlu.parse("只要耐克的").slots.filters.brands == {"nike"}
    assert nlu.parse("小米手机").slots.filters.brands == {"xiaomi"}
    assert nlu.parse("华为手机").slots.filters.brands == set()  # not a brand of this catalog


def test_brand_sort_stock_and_remaining_query(nlu: NLU) -> None:
    s = nlu.parse("cheapest Nike running shoes in stock").slots
    assert s.filters.brands == {"nike"}
    assert s.sort == "price_asc"
    assert s.filters.in_stock
    assert "running shoes" in s.query


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("tell me about the second one", [2]),
        ("more info on #2", [2]),
        ("number 3 please", [3]),
        ("show me the last one", [-1]),
        ("first and third", [1, 3]),
        ("compare 1 and 3", [1, 3]),
        ("1 vs 2", [1, 2]),
        ("compare the first two", [1, 2]),
        ("which is better, the first or the second", [1, 2]),
        ("第二个", [2]),
        ("第三款详细介绍一下", [3]),
        ("最后一个", [-1]),
        ("比较一下第一个和第三个", [1, 3]),
        ("对比1和3", [1, 3]),
        ("第十个", [10]),
        ("前两个比较一下", [1, 2]),
    ],
)
def test_ordinals(text: str, want: list[int]) -> None:
    assert find_ordinals(text) == want


@pytest.mark.parametrize(
    "text",
    ["iphone 15 case", "size 9 shoes", "the first time I ordered", "my last order", "2 pairs of socks", "第一次买", "2",
     "under 50", "where is order 12345"],
)
def test_not_ordinals(text: str) -> None:
    assert find_ordinals(text) == []


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("where is order 12345", "12345"),
        ("cancel order #A1B2C3", "A1B2C3"),
        ("my order number is 88123456", "88123456"),
        ("#A1B2C3 hasn't arrived", "A1B2C3"),
        ("订单号 12345 到哪了", "12345"),
        ("订单号：A7X29Q 要退款", "A7X29Q"),
        ("ORD-48213 status", "ORD-48213"),
        ("refund for 1234567 please", "1234567"),
        ("running shoes under $120", None),
        ("iphone 15 case", None),
        ("#2", None),
    ],
)
def test_order_numbers(text: str, want: str | None) -> None:
    assert find_order_number(text) == want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("red winter coat", ("coats",)),
        ("running shoes size 42", ("shoes > running",)),
        ("padded laptop bags", ("laptop bags",)),
        ("我想买一款新的手机", ("smartphones",)),
        ("有没有便宜的耳机", ("headphones",)),
        ("跑步鞋", ("shoes > running",)),
        ("a new phone case", ("phones > cases",)),
        ("what's the weather", ()),
    ],
)
def test_categories(text: str, want: tuple[str, ...]) -> None:
    assert CategoryMatcher(CATEGORIES).find(text) == want


def test_category_absent_from_catalog_is_not_reported() -> None:
    assert CategoryMatcher(["Books > Fiction"]).find("wireless earbuds") == ()
    assert CategoryMatcher([]).find("coat") == ()


def test_categories_stay_in_query_and_can_become_a_filter(nlu: NLU) -> None:
    s = nlu.parse("red winter coat under $80").slots
    assert s.categories == ("coats",)
    assert "coat" in s.query
    assert s.with_categories().categories == {"coats"}
    assert s.as_dict()["categories"] == ["coats"]


# -------------------------------------------------------------------------------------------- rules


def test_compare_rule_from_ordinals(nlu: NLU) -> None:
    for text in ("compare 1 and 3", "which is better, the first or the second", "比较一下第一个和第三个", "first and third"):
        r = nlu.parse(text)
        assert r.intent == "compare", text
        assert len(r.slots.ordinals) == 2


def test_ordinal_only_is_details(nlu: NLU) -> None:
    for text in ("the second one", "#2", "第二个"):
        assert nlu.parse(text).intent == "details", text


def test_refinement_needs_a_search_on_screen(nlu: NLU) -> None:
    state = {"mode": "search", "query": "running shoes", "shown": ["SHO-1"]}
    for text in ("cheaper", "in blue", "size 42", "only Nike", "under 50", "便宜一点的", "要红色的", "只要耐克的"):
        r = nlu.parse(text, state)
        assert r.intent == "refine", text
    assert nlu.parse("under 50", {}).source != "rule:refinement"


def test_product_rule_turns_bare_category_into_search(tiny_model: IntentModel) -> None:
    n = NLU(tiny_model, brands=BRANDS, categories=CATEGORIES)
    r = n.parse("headphones")
    assert r.intent == "search"
    r2 = n.parse("cancel my order for the headphones")  # a customer-service word: the rule stays out
    assert r2.source == "model"


def test_rules_are_documented(nlu: NLU) -> None:
    for text in ("compare 1 and 3", "👍", "#2"):
        src = nlu.parse(text).source
        assert src == "model" or src.removeprefix("rule:") in RULES


def test_rules_can_be_switched_off(tiny_model: IntentModel) -> None:
    r = NLU(tiny_model, use_rules=False).parse("compare 1 and 3")
    assert r.source == "model"


# ------------------------------------------------------------------------------------ input hygiene


@pytest.mark.parametrize("text", ["", "   ", None, "\x00\x01\x1f", "\u200b\u200b"])
def test_empty_input(nlu: NLU, text: str | None) -> None:
    r = nlu.parse(text)
    assert r.intent == "other"
    assert r.confidence == 0.0


def test_emoji_only(nlu: NLU) -> None:
    assert nlu.parse("👍👍").intent == "feedback_positive"
    assert nlu.parse("👎").intent == "feedback_negative"
    assert nlu.parse("🤷").intent == "other"


def test_control_characters_and_huge_message(nlu: NLU, tiny_model: IntentModel) -> None:
    r = nlu.parse("where\x00 is my\x07 order\u200b 12345")
    assert r.slots.order_number == "12345"
    big = "cancel my order " + "blah " * 2500  # 10,000+ characters
    r = nlu.parse(big)
    assert r.intent in tiny_model.labels
    assert nlu.parse("我" * 10_000).intent in tiny_model.labels


def test_parse_function_with_explicit_model(tiny_model: IntentModel) -> None:
    r = parse("do you have red coats under $80", brands=BRANDS, categories=CATEGORIES, model=tiny_model)
    assert r.slots.filters.max_price == 80.0
    assert r.language == "en"
    assert parse("你好", model=tiny_model).language == "zh"


# ------------------------------------------------------------------------------ classifier mechanics


def test_train_predict_save_load_evaluate(tiny_model: IntentModel, tmp_path: Path) -> None:
    assert set(tiny_model.labels) == {r.intent for r in TINY_ROWS}
    intent, conf = tiny_model.predict("cancel my order")
    assert intent == "cancel_order"
    assert 0.0 < conf <= 1.0
    path = tiny_model.save(tmp_path / "m.npz")
    loaded = IntentModel.load(path, [HashingEncoder()])
    assert loaded.labels == tiny_model.labels
    assert loaded.version == tiny_model.version
    a = tiny_model.probabilities(["where is my order", "红色的外套"])
    b = loaded.probabilities(["where is my order", "红色的外套"])
    assert np.abs(a - b).max() < 1e-2  # float16 weights on disk
    assert [p for p, _ in loaded.predict_batch(["refund me", "hello"])] == ["get_refund", "greet"]
    rep = evaluate_intents(loaded, [IntentRow("refund me", "get_refund"), IntentRow("hello", "greet"),
                                    IntentRow("hello", "track_order")])
    assert rep["n"] == 3
    assert rep["accuracy"] == pytest.approx(2 / 3, abs=1e-3)
    assert set(rep["per_intent"]) == {"get_refund", "greet", "track_order"}
    assert rep["per_intent"]["track_order"]["recall"] == 0.0
    assert rep["confusions"] == [{"gold": "track_order", "predicted": "greet", "count": 1}]
    assert 0 < rep["macro_f1"] < 1


def test_load_with_wrong_encoder_is_one_clear_sentence(tiny_model: IntentModel, tmp_path: Path) -> None:
    path = tiny_model.save(tmp_path / "m.npz")
    with pytest.raises(IntentModelError) as e:
        IntentModel.load(path, [HashingEncoder(dim=128)])
    msg = str(e.value)
    assert "hashing (256)" in msg and "hashing-128 (128)" in msg and msg.endswith("use those encoders.")
    assert "\n" not in msg
    with pytest.raises(IntentModelError, match="not given"):
        IntentModel.load(path, {"other": HashingEncoder()})
    with pytest.raises(IntentModelError, match="does not exist"):
        IntentModel.load(tmp_path / "missing.npz", [HashingEncoder()])
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(IntentModelError, match="not a readable weights file"):
        IntentModel.load(tmp_path / "junk.npz", [HashingEncoder()])


def test_training_needs_two_intents() -> None:
    with pytest.raises(IntentDataError, match="at least two intents"):
        train_intents([IntentRow("hi", "greet")], [HashingEncoder()])


def test_load_training_csv_reports_bad_rows_with_line_numbers(tmp_path: Path) -> None:
    p = tmp_path / "intents.csv"
    p.write_text(
        "utterance,intent,language\n"
        "where is my order,track_order,en\n"
        ",track_order,en\n"  # line 3: empty utterance
        "cancel it,Cancel Order,en\n"  # line 4: bad label
        "too,many,fields,here\n"  # line 5
        "\n"
        "我要退款,get_refund,\n",  # language guessed
        encoding="utf-8",
    )
    with pytest.raises(IntentDataError) as e:
        load_training_csv(p)
    msg = str(e.value)
    assert "3 bad row(s)" in msg
    assert "line 3: empty utterance" in msg
    assert "line 4: intent 'Cancel Order'" in msg
    assert "line 5: 4 fields" in msg
    rows = load_training_csv(p, strict=False)
    assert rows == [IntentRow("where is my order", "track_order", "en"), IntentRow("我要退款", "get_refund", "zh")]


def test_load_training_csv_header_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("text,label\nhi,greet\n", encoding="utf-8")
    with pytest.raises(IntentDataError, match="needs utterance and intent"):
        load_training_csv(p)
    with pytest.raises(IntentDataError, match="does not exist"):
        load_training_csv(tmp_path / "nope.csv")
    # extra columns (the Bitext layout: flags,utterance,category,intent) are ignored
    p.write_text("\ufeffflags,utterance,category,intent\nB,where is my order,ORDER,track_order\n", encoding="utf-8")
    assert load_training_csv(p) == [IntentRow("where is my order", "track_order", "en")]


# ------------------------------------------------------------------------------- the shipped model


def test_shipped_data_and_weights_are_consistent() -> None:
    rows = load_training_csv(Path(default_model_path()).with_name("intents.csv"))
    labels = {r.intent for r in rows}
    assert labels == set(CS_INTENTS) | set(SHOPPING_INTENTS)
    assert {r.language for r in rows} == {"en", "zh"}
    with np.load(default_model_path(), allow_pickle=False) as z:
        assert [str(x) for x in z["encoders"]] == ["minilm", "use-multilingual"]
        assert set(map(str, z["labels"])) == labels
        assert str(z["version"]) == data_version(rows), "intent_model.npz is stale: run `shopbot intents rebuild`"


@pytest.fixture(scope="module")
def real_nlu() -> NLU:
    return NLU(load_default_model(), brands=BRANDS, categories=CATEGORIES)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("red winter coat under $80", "search"),
        ("do you have wireless earbuds", "search"),
        ("i need a gift for my dad", "search"),
        ("show me more", "more"),
        ("what do you recommend", "recommend"),
        ("hi there", "greet"),
        ("thanks!", "thanks"),
        ("that's not what I meant", "feedback_negative"),
        ("where is my order 12345?", "track_order"),
        ("I want to cancel my order", "cancel_order"),
        ("how do I get a refund", "get_refund"),
        ("what is your refund policy", "check_refund_policy"),
        ("I forgot my password", "recover_password"),
        ("let me talk to a real person", "contact_human_agent"),
        ("do you accept paypal", "check_payment_methods"),
        ("I need an invoice for my purchase", "get_invoice"),
        ("我想买一款新的手机", "search"),
        ("有没有便宜的耳机", "search"),
        ("下一页", "more"),
        ("推荐一下", "recommend"),
        ("你好", "greet"),
        ("不是我要的", "feedback_negative"),
        ("我的订单到哪了", "track_order"),
        ("我要取消订单", "cancel_order"),
        ("怎么申请退款", "get_refund"),
        ("忘记密码了", "recover_password"),
        ("转人工", "contact_human_agent"),
        ("可以用支付宝付款吗", "check_payment_methods"),
    ],
)
def test_shipped_model_on_clear_examples(real_nlu: NLU, text: str, intent: str) -> None:
    assert real_nlu.parse(text).intent == intent


@pytest.mark.slow
def test_shipped_model_with_rules_and_state(real_nlu: NLU) -> None:
    state = {"mode": "search", "query": "running shoes", "shown": ["a", "b", "c"]}
    assert real_nlu.parse("cheaper", state).intent == "refine"
    assert real_nlu.parse("便宜一点的", state).intent == "refine"
    assert real_nlu.parse("compare 1 and 3", state).intent == "compare"
    assert real_nlu.parse("比较一下第一个和第三个", state).intent == "compare"
    r = real_nlu.parse("tell me about the third one", state)
    assert (r.intent, r.slots.ordinals) == ("details", (3,))
    assert real_nlu.parse("more like the second one", state).intent == "similar"
    assert real_nlu.parse("第二个详细介绍一下", state).intent == "details"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("what is your warranty?", "warranty"),
        ("保修期多长？", "warranty"),
        ("手机保修多久？", "warranty"),
        ("运费多少钱？", "delivery_options"),
        ("what are the shipping costs", "delivery_options"),
        ("any coupons?", "promotions"),
        ("有优惠券吗", "promotions"),
        ("add it to my cart", "place_order"),
        ("add the second one to my basket", "place_order"),
    ],
)
def test_policy_topics_the_intents_lack_are_routed_to_that_policy(nlu: NLU, text: str, intent: str) -> None:
    r = nlu.parse(text, {"query": "earbuds", "mode": "search"})
    assert r.intent == intent and r.source in {"rule:policy_topic", "model"}


def test_a_policy_word_beside_a_product_is_a_search_unless_asked(nlu: NLU) -> None:
    assert nlu.parse("running shoes with warranty").source != "rule:policy_topic"
    assert nlu.parse("nike running shoes free shipping").source != "rule:policy_topic"
    assert nlu.parse("are the running shoes under warranty?").intent == "warranty"


@pytest.mark.parametrize("text", ["is the first one in stock?", "does the second one come in blue?", "第二个有货吗？",
                                  "how much is #3?"])
def test_a_question_about_one_shown_result_asks_for_its_details(nlu: NLU, text: str) -> None:
    r = nlu.parse(text, {"query": "laptop", "mode": "search", "shown": ["A", "B", "C"]})
    assert r.intent == "details" and len(r.slots.ordinals) == 1


def test_a_filter_without_a_question_still_refines(nlu: NLU) -> None:
    assert nlu.parse("only in stock", {"query": "laptop", "mode": "search"}).intent == "refine"


@pytest.mark.parametrize(("text", "words"), [
    ("I bought a laptop, what else do I need?", "laptop"), ("accessories for my iphone 15", "iphone 15"),
    ("what goes well with these running shoes", "these running shoes"), ("我买了一台笔记本电脑，还需要什么配件？", "笔记本电脑"),
])
def test_asking_what_goes_with_a_product_asks_for_its_complements(nlu: NLU, text: str, words: str) -> None:
    r = nlu.parse(text, {"query": "earbuds", "mode": "search", "shown": ["A", "B"]})
    assert r.intent == "recommend" and r.source == "rule:complements"
    assert complement_anchor(text) == words


@pytest.mark.parametrize("text", ["running shoes", "what else do you sell", "I want to return my laptop, what else do I need?",
                                  "shoes that go with a blue dress and a refund"])
def test_other_messages_are_no_complements_request(nlu: NLU, text: str) -> None:
    assert nlu.parse(text).source != "rule:complements"
    assert complement_anchor(text) is None
