"""`shopbot eval advice`'s rules: what counts as staying on the shown products, answering, and keeping to facts."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from bot.cli.advice import judge
from bot.cli.main import cli
from retrieval.catalog import Product

SHOWN = [Product(sku="A", title="Trail Rain Jacket, Navy", price=80.0, stock=3, attributes={"rating": ("4.1",)}),
         Product(sku="B", title="City Fleece Jacket, Grey", price=45.0, stock=9, attributes={"rating": ("4.6",),
                                                                                                 "material": ("fleece",)})]


def _row(**kw: str) -> dict[str, str]:
    return {"kind": "which", "criterion": "", "attribute": "", "ordinal": "", **kw}


def test_a_superlative_must_name_the_shown_product_with_that_value() -> None:
    right = judge(_row(criterion="min:price"), SHOWN, "Of these, the cheapest is 2. City Fleece Jacket ($45.00).",
                  "advice", [])
    assert right[:3] == (True, True, True)
    wrong = judge(_row(criterion="min:price"), SHOWN, "Of these, the cheapest is 1. Trail Rain Jacket ($80.00).",
                  "advice", [])
    assert wrong[1] is False
    # a new search is no answer about the shown products, and a price of no shown product is no fact
    searched = judge(_row(criterion="min:price"), SHOWN, "Best matches: 1. Other Jacket ($9.99)", "search", ["C"])
    assert searched[0] is False and searched[2] is False


def test_best_for_needs_a_product_whose_facts_say_so_or_none() -> None:
    assert judge(_row(criterion="rain|waterproof"), SHOWN, "For rain: 1. Trail Rain Jacket", "advice", [])[1]
    assert not judge(_row(criterion="rain|waterproof"), SHOWN, "For rain: 2. City Fleece Jacket", "advice", [])[1]
    none = "None of these is listed as suited to snow in the catalog, so I can't pick one for that without guessing."
    assert judge(_row(criterion="gore-tex"), SHOWN, none, "advice", [])[1]


def test_saying_the_catalog_lacks_what_the_card_shows_breaks_the_facts() -> None:
    row = _row(kind="attribute", attribute="material", ordinal="2")
    assert judge(row, SHOWN, "City Fleece Jacket\nIts material: fleece.", "details", [])[1:3] == (True, True)
    assert judge(row, SHOWN, "The catalog doesn't list its material, and I won't guess.", "details", [])[2] is False


def test_a_file_without_the_columns_is_one_sentence(tmp_path: Path) -> None:
    bad = tmp_path / "s.csv"
    bad.write_text("id,question\na1,which one?\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["eval", "advice", "--scenarios", str(bad)])
    assert result.exit_code != 0 and "lacks the columns" in result.output and "Traceback" not in result.output
