"""Product descriptions: verified prose plus code-rendered details, the template when the model invents or
fails, Chinese, coverage, and the Flipkart evaluation's metrics on a hand-made file."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from model.llm.base import LLMError, LLMTimeout
from model.training.describe_eval import (
    evaluate_describe,
    lcs_length,
    parse_category_tree,
    parse_specifications,
    read_flipkart,
    rouge_l,
)
from model.writing.describe import (
    Attribute,
    DescriptionWriter,
    attributes_of,
    clean_prose,
    coverage,
    covered,
    description_messages,
    details_line,
    facts_record,
    template_description,
    tokens,
)
from tests.model.writing.test_support import Scripted

COAT = {
    "sku": "COA-1", "title": "Women's Quilted Winter Coat, Red", "titles": {"zh": "女款红色冬季棉服外套"},
    "brand": "Northwind", "category": ["Apparel", "Coats"], "price": 69.99, "currency": "USD", "stock": 5,
    "description": "", "attributes": {"color": ["red"], "material": ["polyester"], "size": ["S", "M", "L"],
                                      "rating": ["4.1"]},
}
BRANDS = ["Northwind", "Harbor", "Nike"]
GOOD = "This red coat from Northwind keeps you warm in polyester. It comes in sizes S and M."


def write(llm: Scripted | None, record: dict = COAT, language: str = "en", **kw):  # type: ignore[no-untyped-def, type-arg]
    return DescriptionWriter(llm, known_brands=BRANDS, timeout=5).write_sync(record, language, **kw)


def test_attributes_leave_out_rating_and_placeholders() -> None:
    rec = {**COAT, "attributes": {**COAT["attributes"], "lining": ["NA"], "pattern": ["-"]}}
    assert attributes_of(rec) == [Attribute("color", "red"), Attribute("material", "polyester"),
                                  Attribute("size", "S"), Attribute("size", "M"), Attribute("size", "L")]
    assert "price" not in facts_record(COAT) and "stock" not in facts_record(COAT)
    assert "rating" not in facts_record(COAT)["attributes"]


def test_faithful_prose_gets_the_missing_facts_as_a_details_line() -> None:
    llm = Scripted(GOOD)
    d = write(llm)
    assert d.source == "llm" and d.prose == GOOD
    assert d.text == GOOD + "\nDetails: Size: L"
    assert d.prose_coverage == pytest.approx(4 / 5) and d.coverage == 1.0
    assert d.unsupported == [] and d.attributes == 5 and d.seconds >= 0
    assert d.checks["attempts"][0]["ok"] is True and d.model == "scripted@1"
    # the prompt carries the facts and the key ones to mention, never the price or stock
    prompt = llm.prompts[0][-1]["content"]
    assert "- Size: S, M, L" in prompt and "Mention: red; polyester; S, M, L." in prompt
    assert "69.99" not in prompt and "stock" not in prompt.lower()


def test_an_invented_attribute_is_regenerated_with_feedback() -> None:
    llm = Scripted("A red coat in genuine leather for cold days.", GOOD)
    d = write(llm)
    assert d.source == "llm-retry" and "leather" not in d.text
    retry = llm.prompts[1][-1]["content"]
    assert "rejected" in retry and '"genuine leather"' in retry and "polyester" in retry
    log = d.checks["attempts"]
    assert log[0]["ok"] is False and log[0]["unsupported"][0]["value"] == "leather" and "leather" in log[0]["text"]


@pytest.mark.parametrize("invented", [
    "Only $59 today: a red polyester coat!",           # a price (and not even the right one)
    "A red polyester coat with 3 zip pockets.",        # a number the facts do not have
    "A red polyester coat, as warm as anything Nike makes.",  # another brand
    "Only 2 left in stock: a red polyester coat.",     # stock
])
def test_invented_twice_falls_back_to_the_grounded_template(invented: str) -> None:
    d = write(Scripted(invented, invented))
    assert d.source == "template" and d.checks["used_fallback"] is True
    assert d.text == template_description(COAT)
    assert d.text == ("Women's Quilted Winter Coat, Red by Northwind, in Apparel > Coats.\n"
                      "Details: Color: red · Material: polyester · Size: S, M, L")
    assert d.coverage == 1.0 and d.unsupported == []
    assert d.prose_coverage == pytest.approx(1 / 5)  # the template's sentence names the colour (in the title)
    assert len(d.checks["attempts"]) == 2 and all(not a["ok"] for a in d.checks["attempts"])


def test_a_price_the_catalog_has_is_still_refused_in_a_stored_description() -> None:
    d = write(Scripted("A red polyester coat for $69.99.", GOOD))
    assert d.source == "llm-retry" and "$" not in d.text


@pytest.mark.parametrize("failure", [LLMTimeout("no answer within 5 s"), LLMError("server down"),
                                     ConnectionError("refused")])
def test_slow_or_down_model_gives_the_template(failure: Exception) -> None:
    d = write(Scripted(failure))
    assert d.source == "template" and d.text == template_description(COAT)
    assert type(failure).__name__ in d.checks["attempts"][0]["error"]


def test_no_model_at_all_gives_the_template() -> None:
    assert write(None).source == "template"


class Interrupted(Scripted):
    async def complete(self, messages, **kw):  # type: ignore[no-untyped-def, override]
        raise KeyboardInterrupt


def test_interrupt_is_not_swallowed() -> None:
    with pytest.raises(KeyboardInterrupt):
        write(Interrupted())


def test_chinese_description_with_chinese_details() -> None:
    llm = Scripted("这款 Northwind 红色外套采用涤纶面料，保暖又轻便，适合冬天穿着。")
    d = write(llm, language="zh")
    assert d.source == "llm" and d.language == "zh"
    assert d.text.endswith("\n参数：尺码：S、M、L。")  # 红色 covers "red" and 涤纶 "polyester"
    assert d.prose_coverage == pytest.approx(2 / 5)
    prompt = llm.prompts[0]
    assert "只根据给出的信息" in prompt[0]["content"] and "Product: 女款红色冬季棉服外套" in prompt[-1]["content"]
    assert "请用中文写一段" in prompt[-1]["content"]


def test_chinese_asked_english_answered_or_prompt_echoed_is_rejected() -> None:
    d = write(Scripted("A warm red polyester coat for winter days.", "你上一次的描述被退回了。请用中文写通顺的句子。"),
              language="zh")
    assert d.source == "template" and d.text == template_description(COAT, "zh")
    assert d.text.startswith("女款红色冬季棉服外套，品牌：Northwind，类别：Apparel > Coats。")
    assert all(a.get("problems") for a in d.checks["attempts"])


def test_lengths_and_tones_shape_the_request() -> None:
    llm = Scripted(GOOD)
    write(llm, length="short", tone="premium")
    assert "one or two sentences" in llm.prompts[0][-1]["content"] and "premium" in llm.prompts[0][-1]["content"]
    with pytest.raises(ValueError):
        write(Scripted(GOOD), length="huge")
    with pytest.raises(ValueError):
        write(Scripted(GOOD), language="fr")


def test_prompt_leaves_packaging_and_ids_to_the_details_line() -> None:
    rec = {"title": "Dog Shampoo", "attributes": {"Sales Package": ["1 bottle"], "Model Number": ["SH-14"],
                                                  "Quantity": ["500 ml"]}}
    ask = description_messages(rec)[-1]["content"]
    assert "Mention: 500 ml." in ask and "SH-14" not in ask


def test_clean_prose_keeps_whole_sentences_only() -> None:
    assert clean_prose("**Description:** A red coat.\n\nIt is warm. It comes in") == "A red coat. It is warm."
    assert clean_prose('"Here is a description: A red coat."') == "A red coat."
    assert clean_prose("红色外套。保暖") == "红色外套。"


def test_coverage_normalises_units_plurals_remarks_and_yes_no() -> None:
    assert tokens("500ml Shoes, 1.0 inch; 4-18 Years") == ["500", "ml", "shoe", "1", "inch", "4", "18", "year"]
    weight = Attribute("Weight", "200 g (per single Shoe) - Weight of the product may vary depending on size.")
    assert covered("Each shoe weighs 200g.", weight)
    assert covered("It has no lining.", Attribute("Lining", "No")) and not covered("No.", Attribute("Lining", "No"))
    occasion = Attribute("Occasion", "Ethnic, Casual, Party, Formal")
    assert covered("for ethnic, casual and party wear", occasion)  # 3 of 4 words
    assert not covered("for ethnic and casual wear", occasion)  # 2 of 4
    assert not covered("a patent bag", Attribute("Outer Material", "Patent Leather"))  # short values: every word
    assert covered("an aluminum body", Attribute("material", "aluminium"))
    cov, missing = coverage("A red coat in size M.", attributes_of(COAT))
    assert cov == pytest.approx(2 / 5) and [a.value for a in missing] == ["polyester", "S", "L"]
    assert coverage("anything", []) == (1.0, [])
    assert details_line(missing) == "Details: Material: polyester · Size: S, L"


# ------------------------------------------------------------------------------ the real transformers path


def test_tiny_transformers_model_still_gives_a_true_description(tiny_llm) -> None:  # type: ignore[no-untyped-def]
    """The tiny random model writes noise: the result is the template, through the real generation path."""
    for language in ("en", "zh"):
        d = DescriptionWriter(tiny_llm, known_brands=BRANDS, timeout=30, retries=0).write_sync(COAT, language, "short")
        assert d.unsupported == [] and d.coverage == 1.0
        assert d.source == "template" or d.prose
        assert len(d.checks["attempts"]) >= 1


# ------------------------------------------------------------------------------------------ evaluation

HEADER = ["uniq_id", "product_name", "product_category_tree", "pid", "retail_price", "discounted_price",
          "description", "brand", "product_specifications"]
ROWS = [
    ["u1", "rila bellies", "['footwear', 'womens footwear', 'ballerinas', 'rila bellies']", "P1", "999.0", "499.0",
     "red casual bellies for women",
     "rila",
     "[{'key': 'Ideal For', 'value': 'Women'}, {'key': 'Color', 'value': 'Red'}, "
     "{'key': 'Outer Material', 'value': 'Suede Leather'}, {'key': 'Heel Height', 'value': '2 cm'}, "
     "{'value': 'Spare Laces Included'}]"],
    ["u2", "sicons dog shampoo", '["Pet Supplies >> Grooming >> Shampoo"]', "P2", "220", "210",
     "sicons shampoo 500 ml for dogs",
     "sicons",
     '{"product_specification"=>[{"key"=>"Pet Type", "value"=>"Dog"}, {"key"=>"Quantity", "value"=>"500 ml"}, '
     '{"key"=>"Lining", "value"=>"NA"}]}'],
]


def flipkart_csv(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerows(ROWS)
    return path


def test_specifications_are_read_in_every_form() -> None:
    assert parse_specifications(ROWS[0][8])[-1] == ("", "Spare Laces Included")
    assert parse_specifications(ROWS[1][8]) == [("Pet Type", "Dog"), ("Quantity", "500 ml"), ("Lining", "NA")]
    assert parse_specifications("{'key': 'Quantity', 'value': '150 ml'}") == [("Quantity", "150 ml")]
    assert parse_specifications("[]") == [] and parse_specifications("") == []
    broken = '{"product_specification"=>[{"key"=>"Fit", "value"=>"Men"s Slim"}, {"key"=>"Color", "value"=>"Blue"}]'
    assert ("Color", "Blue") in parse_specifications(broken)
    assert parse_category_tree(ROWS[0][2], "rila bellies") == ["footwear", "womens footwear", "ballerinas"]
    assert parse_category_tree(ROWS[1][2]) == ["Pet Supplies", "Grooming", "Shampoo"]


def test_rouge_l_by_hand() -> None:
    assert lcs_length(["a", "b", "c", "d", "e"], ["a", "x", "c", "e"]) == 3
    # candidate 5 tokens, reference 4, LCS 3 ("the", "red", "coat"): P 3/5, R 3/4, F1 = 2/3
    assert rouge_l("The red warm winter coat", "the red coat indeed") == pytest.approx(2 / 3)
    assert rouge_l("", "x") == 0.0 and rouge_l("a", "b") == 0.0


def test_eval_metrics_on_a_hand_made_file(tmp_path: Path) -> None:
    rows = read_flipkart(flipkart_csv(tmp_path / "f.csv"))
    assert [len(r.attributes) for r in rows] == [4, 2]  # keyless notes and "NA" do not count
    assert rows[0].record["price"] == 499.0 and rows[0].reference == "red casual bellies for women"
    llm = Scripted(
        "These red bellies are made for women.",               # covers Women, Red; nothing invented
        "A shampoo for your dog, made in 2016.",               # 2016 invented -> retried
        "Sicons shampoo made for every dog.",                  # covers Dog
    )
    report = evaluate_describe(rows, DescriptionWriter(llm, timeout=5))
    first, second = report.rows
    assert first["text"] == ("These red bellies are made for women.\n"
                             "Details: Outer Material: Suede Leather · Heel Height: 2 cm")
    assert first["prose_coverage"] == 0.5 and first["coverage"] == 1.0 and first["source"] == "llm"
    assert second["source"] == "llm-retry" and second["prose_coverage"] == 0.5 and second["coverage"] == 1.0
    assert first["unsupported"] == [] and second["unsupported"] == []
    # ROUGE-L by hand. Row 1: candidate tokens "these red bellies are made for women details outer material
    # suede leather heel height 2 cm" (16), reference "red casual bellies for women" (5), LCS "red bellies
    # for women" = 4: P 4/16, R 4/5, F1 = 2*0.25*0.8/1.05.
    assert first["rouge_l"] == pytest.approx(2 * 0.25 * 0.8 / 1.05)
    # Row 2: "sicons shampoo made for every dog details quantity 500 ml" (10) vs "sicons shampoo 500 ml for
    # dogs" (6): LCS "sicons shampoo for" or "sicons shampoo 500 ml" = 4: P 0.4, R 4/6.
    assert second["rouge_l"] == pytest.approx(2 * 0.4 * (4 / 6) / (0.4 + 4 / 6))
    out = report.as_dict()
    assert out["attribute_coverage"] == 1.0 and out["prose_attribute_coverage"] == 0.5
    assert out["unsupported_claims_per_description"] == 0.0 and out["n"] == 2
    assert out["rouge_l"] == pytest.approx(round((first["rouge_l"] + second["rouge_l"]) / 2, 4))
    assert out["sources"] == {"llm": 1, "llm-retry": 1}
    # before the guard: one of two first drafts invented a number
    assert out["first_draft_unsupported_claims_per_description"] == 0.5 and out["first_drafts_rejected"] == 0.5
    assert out["prose_attribute_coverage_model_written"] == 0.5
    # the human description never reaches the model
    assert all("casual bellies" not in m["content"] for p in llm.prompts for m in p)


def test_eval_counts_what_gets_through_as_unsupported(tmp_path: Path) -> None:
    """With the checks off (no retries, a lenient writer), an invented brand and number are counted."""
    rows = read_flipkart(flipkart_csv(tmp_path / "f.csv"), limit=1)
    assert len(rows) == 1

    class Lenient(DescriptionWriter):
        async def write(self, record, language="en", length="medium", tone="friendly"):  # type: ignore[no-untyped-def]
            d = await super().write(record, language, length, tone)
            d.text = "Sicons red bellies for women, 3 pairs."
            return d

    report = evaluate_describe(rows, Lenient(Scripted("x")), known_brands=["rila", "sicons"])
    assert report.rows[0]["unsupported"] == ["Sicons", "3"]
    assert report.unsupported_claims_per_description == 2.0


@pytest.mark.slow
def test_packaged_model_writes_a_true_description_in_both_languages() -> None:
    """The packaged Qwen2.5-Coder-0.5B-Instruct (prepared under ~/.shopbot on first use, ~45 s)."""
    from model.llm.factory import default_llm

    llm = default_llm(Path.home() / ".shopbot", progress=False)
    try:
        writer = DescriptionWriter(llm, known_brands=BRANDS, timeout=300)
        for language in ("en", "zh"):
            d = writer.write_sync(COAT, language, "short")
            assert d.unsupported == [] and d.coverage == 1.0 and d.text.strip()
            assert d.source in {"llm", "llm-retry", "template"}
    finally:
        llm.close()
