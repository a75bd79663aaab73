"""Policy documents as shops write them: each format's headings become sections, whatever they are called."""

from __future__ import annotations

from pathlib import Path

from retrieval.policy import PolicyIndex, split_passages
from retrieval.policy_docs import read_blocks, sections_of


def _pairs(text: str, suffix: str) -> list[tuple[str, str]]:
    return list(sections_of(read_blocks(text, suffix), "doc"))


def test_a_qa_faq_page_indexes_each_answer_under_its_question() -> None:
    faq = ("# Help centre\n\n## Orders\n\n**Can I return an opened TV?**\nYes, within 15 days, with a 10% restocking fee.\n\n"
           "Q: Do you ship to the USA?\nA: We ship to the USA and Canada.\n\n"
           "Do you install wall mounts?\nOur technicians mount TVs up to 85 inches for $99.\n")
    assert _pairs(faq, ".md") == [
        ("Can I return an opened TV?", "Yes, within 15 days, with a 10% restocking fee."),
        ("Do you ship to the USA?", "We ship to the USA and Canada."),
        ("Do you install wall mounts?", "Our technicians mount TVs up to 85 inches for $99."),
    ]


def test_underlined_uppercase_and_chinese_numbered_headings() -> None:
    text = ("DELIVERY SLOTS\n==============\n\nWe deliver from 7am to 10pm.\n\nSUBSTITUTIONS\n\nWe pick a similar item.\n\n"
            "Minimum order\n-------------\nThe minimum order is 40 pounds.\n")
    assert [s for s, _ in _pairs(text, ".txt")] == ["DELIVERY SLOTS", "SUBSTITUTIONS", "Minimum order"]
    zh = "购物须知\n\n一、配送说明\n\n全国包邮，偏远地区另计。\n\n【发票】\n\n下单时可申请电子发票。\n\n第三条 退换货\n\n电子书不退不换。\n"
    assert _pairs(zh, ".md") == [("doc", "购物须知"), ("一、配送说明", "全国包邮，偏远地区另计。"), ("发票", "下单时可申请电子发票。"),
                                 ("第三条 退换货", "电子书不退不换。")]


def test_an_html_help_page_with_a_table() -> None:
    html = ("<html><head><style>p{}</style></head><body><h1>Help</h1><h2>Delivery options</h2>"
            "<table><tr><th>Option</th><th>Price</th></tr><tr><td>Standard</td><td>Free over $50</td></tr></table>"
            "<h2>Returns</h2><p>Return within <b>30 days</b> with the free label.</p>"
            "<p><strong>Do you offer a student discount?</strong></p><p>Yes, 10% with a student card.</p></body></html>")
    assert _pairs(html, ".html") == [
        ("Delivery options", "Option | Price"), ("Delivery options", "Standard | Free over $50"),
        ("Returns", "Return within 30 days with the free label."),
        ("Do you offer a student discount?", "Yes, 10% with a student card."),
    ]


def test_a_directory_of_formats_is_one_policy(tmp_path: Path) -> None:
    from retrieval.encoders import HashingEncoder

    (tmp_path / "help.html").write_text("<h2>Opening hours</h2><p>Open 9-17 Monday to Saturday.</p>")
    (tmp_path / "faq.txt").write_text("What is your phone number?\nCall 0800 123 456.\n")
    idx = PolicyIndex.from_path(tmp_path, {"en": HashingEncoder(), "multi": HashingEncoder()})
    assert set(idx.sections()) == {"Opening hours", "What is your phone number?"}


def test_a_paragraph_question_is_not_a_heading() -> None:
    ps = split_passages("## Returns\n\nWhat if it breaks? We repair it for free within a year, and if we cannot, "
                        "we replace it or refund you in full, whichever you prefer.\n", "doc")
    assert [p.section for p in ps] == ["Returns"]
