"""`shopbot describe` and `shopbot eval describe` through click, with a scripted model (no weights)."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

import bot.cli.describe
from bot.cli.main import cli
from tests.conftest import ROWS, write_catalog

NO_DESCRIPTION = {"COA-3", "SHO-3", "KIT-1", "BOO-1"}
REAL_MAKE_LLM = bot.cli.describe._make_llm


class Writer:
    """A model double that describes whatever product it is asked about, and can be 'interrupted'
    (Ctrl-C) after ``stop_after`` descriptions."""

    name = "double"
    version = "1"

    def __init__(self, stop_after: int | None = None) -> None:
        self.stop_after = stop_after
        self.calls = 0
        self.closed = False

    async def stream(self, messages: Sequence[Mapping[str, str]], **kw: object) -> AsyncIterator[str]:
        yield await self.complete(messages)

    async def complete(self, messages: Sequence[Mapping[str, str]], **kw: object) -> str:
        if self.stop_after is not None and self.calls >= self.stop_after:
            raise KeyboardInterrupt
        self.calls += 1
        product = re.search(r"^Product: (.+)$", messages[-1]["content"], re.M)
        assert product is not None
        if "请用中文" in messages[-1]["content"]:
            return f"{product.group(1)}，设计简洁，日常使用很方便，值得拥有。"
        return f"{product.group(1)} is a dependable everyday choice that is easy to like."

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    rows = [(r[0], r[1], r[2], "" if r[0] in NO_DESCRIPTION else r[3], *r[4:]) for r in ROWS]
    return write_catalog(tmp_path / "shop.csv", rows)


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, catalog: Path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SHOPBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SHOPBOT_ENCODER", "hashing")
    monkeypatch.setenv("SHOPBOT_MULTILINGUAL_ENCODER", "hashing")
    monkeypatch.setenv("SHOPBOT_CATALOG", str(catalog))
    monkeypatch.setenv("SHOPBOT_LLM", "auto")
    models: list[Writer] = []

    def use(model: Writer) -> None:
        models.append(model)
        monkeypatch.setattr(bot.cli.describe, "_make_llm", lambda s: model)

    use(Writer())
    runner = CliRunner()

    def _run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    _run.use = use  # type: ignore[attr-defined]
    _run.models = models  # type: ignore[attr-defined]
    _run.store = tmp_path / "data" / "descriptions.jsonl"  # type: ignore[attr-defined]
    return _run


def lines(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def test_describe_one_sku_prints_a_verified_description(run) -> None:  # type: ignore[no-untyped-def]
    r = run("describe", "SHO-3")
    assert r.exit_code == 0, r.output
    assert r.output.startswith("Merrell Moab 3 Hiking Boot, Brown is a dependable everyday choice")
    assert "\nDetails: Material: leather · Size: 41, 42, 44\n" in r.output  # the prose named the colour
    assert "(llm; attribute coverage 1.00, prose alone 0.20" in r.output
    assert not run.store.exists()  # nothing stored without --save

    out = json.loads(run("describe", "COA-1", "--lang", "zh", "--json").output)
    assert out["sku"] == "COA-1" and out["language"] == "zh" and out["source"] == "llm"
    assert out["text"].startswith("女款红色冬季棉服外套，设计简洁") and "参数：" in out["text"]
    assert run.models[0].closed


def test_describe_errors_are_one_sentence(run, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    r = run("describe", "NOPE-1")
    assert r.exit_code == 1 and "No product with SKU 'NOPE-1'" in r.output and "Traceback" not in r.output
    assert "Name one SKU, or use --all" in run("describe").output
    assert "--missing goes with --all" in run("describe", "COA-1", "--missing").output
    monkeypatch.setattr(bot.cli.describe, "_make_llm", REAL_MAKE_LLM)  # with the language model switched off
    monkeypatch.setenv("SHOPBOT_LLM", "off")
    r = run("describe", "COA-1")
    assert r.exit_code == 1 and "SHOPBOT_LLM=off" in r.output and r.output.count("\n") == 1
    monkeypatch.setenv("SHOPBOT_LLM", "auto")
    monkeypatch.setenv("SHOPBOT_LLM_MODEL", "/nonexistent/model")
    r = run("describe", "COA-1")
    assert r.exit_code == 1 and r.output.startswith("Error: The language model could not be prepared: No transformers")


def test_all_missing_resumes_after_an_interruption_and_reindex_shows_them(run) -> None:  # type: ignore[no-untyped-def]
    run.use(Writer(stop_after=2))
    r = run("describe", "--all", "--missing")
    assert r.exit_code == 130, r.output
    assert "4 of 13 products in " in r.output and "0 already done, 4 to write" in r.output
    assert "Interrupted after 2 of 4 descriptions (each is saved in" in r.output and "Run the same command again" in r.output
    first = lines(run.store)
    assert len(first) == 2 and {x["sku"] for x in first} <= NO_DESCRIPTION
    assert {"sku", "hash", "language", "text", "source", "model", "created"} <= set(first[0])
    assert first[0]["model"] == "double@1" and first[0]["source"] == "llm" and first[0]["language"] == "en"

    # a kill in the middle of a write leaves half a line: it is skipped and closed off
    with run.store.open("a", encoding="utf-8") as fh:
        fh.write('{"sku": "BOO-1", "hash": "x", "te')

    run.use(Writer())
    r = run("describe", "--all", "--missing")
    assert r.exit_code == 0, r.output
    assert "2 already done, 2 to write" in r.output and "2 descriptions written" in r.output
    assert run.models[-1].calls == 2
    done = [json.loads(x) for x in _complete_lines(run.store)]
    assert {x["sku"] for x in done} == NO_DESCRIPTION and len(done) == 4

    assert "Nothing to do" in run("describe", "--all", "--missing").output

    # reindex picks them up: search results and the dialogue's details view show the generated text
    r = run("reindex")
    assert r.exit_code == 0 and "4 products without a description use a generated one" in r.output
    hits = json.loads(run("search", "hiking boot", "--json").output)["results"]
    boot = next(h for h in hits if h["sku"] == "SHO-3")
    assert boot["description"].startswith("Merrell Moab 3 Hiking Boot, Brown is a dependable everyday choice")
    coat = json.loads(run("search", "wool coat", "--json").output)["results"]
    assert next(h for h in coat if h["sku"] == "COA-2")["description"] == "Classic wool overcoat."
    chat = run("chat", "--no-llm", input="/details:SHO-3\nquit\n")
    assert "Merrell Moab 3 Hiking Boot, Brown is a dependable everyday choice" in chat.output

    # from the index now: the generated descriptions still count as missing, and are still done
    assert "4 of 13 products in the current index have no description; 4 already done, 0 to write" in \
        run("describe", "--all", "--missing").output


def _complete_lines(path: Path) -> list[str]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            json.loads(line)
        except ValueError:
            continue
        out.append(line)
    return out


def test_changed_facts_retire_a_description_and_price_changes_keep_it(run, catalog: Path) -> None:  # type: ignore[no-untyped-def]
    assert run("describe", "--all", "--missing").exit_code == 0
    rows = list(csv.reader(catalog.open(encoding="utf-8")))
    for row in rows:
        if row[0] == "COA-3":
            row[6] = "35.00"  # price: the description stays
        if row[0] == "SHO-3":
            row[8] = "grey"  # colour: the description was written from other facts
    with catalog.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    r = run("reindex")
    assert "3 products without a description use a generated one" in r.output
    r = run("describe", "--all", "--missing", "--catalog", str(catalog))
    assert "3 already done, 1 to write" in r.output
    assert lines(run.store)[-1]["sku"] == "SHO-3" and "Color: grey" in lines(run.store)[-1]["text"]


def test_save_one_and_chinese_batches_are_separate(run) -> None:  # type: ignore[no-untyped-def]
    r = run("describe", "COA-1", "--save")
    assert "Saved to" in r.output and "catalog's own description still takes precedence" in r.output
    assert lines(run.store)[0]["sku"] == "COA-1"
    r = run("describe", "--all", "--missing", "--lang", "zh", "--limit", "1")
    assert "1 descriptions written" in r.output and lines(run.store)[-1]["language"] == "zh"


# ------------------------------------------------------------------------------------------------ eval

FLIPKART = [
    ["product_name", "product_category_tree", "pid", "retail_price", "discounted_price", "description", "brand",
     "product_specifications"],
    ["aw bellies", "['footwear', 'ballerinas', 'aw bellies']", "P1", "999", "499", "red bellies for women", "aw",
     "[{'key': 'Ideal For', 'value': 'Women'}, {'key': 'Color', 'value': 'Red'}]"],
    ["sicons dog shampoo", "['pet supplies', 'shampoo']", "P2", "220", "210", "sicons shampoo for dogs", "sicons",
     '{"product_specification"=>[{"key"=>"Pet Type", "value"=>"Dog"}]}'],
]


def test_eval_describe_prints_a_summary_and_json_last(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "flipkart.csv"
    with data.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(FLIPKART)
    r = run("eval", "describe", "--data", str(data), "--json", "--out", str(tmp_path / "rows.jsonl"))
    assert r.exit_code == 0, r.output
    out = json.loads(r.output.strip().splitlines()[-1])
    assert {"attribute_coverage", "unsupported_claims_per_description", "rouge_l", "seconds_per_description", "n",
            "prose_attribute_coverage"} <= set(out)
    assert out["n"] == 2 and out["attribute_coverage"] == 1.0 and out["unsupported_claims_per_description"] == 0.0
    assert "attribute coverage 1.000" in r.output
    assert len(lines(tmp_path / "rows.jsonl")) == 2
    r = run("eval", "describe", "--data", str(data), "--limit", "1", "--json")
    assert json.loads(r.output.strip().splitlines()[-1])["n"] == 1
    r = run("eval", "describe", "--data", str(tmp_path / "missing.csv"))
    assert r.exit_code == 1 and "does not exist" in r.output


def test_overlay_fills_only_empty_descriptions_from_current_facts(tmp_path: Path) -> None:
    """retrieval.catalog.overlay_descriptions, the piece `shopbot reindex` uses (tested with its command)."""
    import dataclasses

    from retrieval.catalog import Product, description_facts_hash, overlay_descriptions

    bare = Product("A-1", "Red Mug", 9.0, attributes={"color": ("red",), "rating": ("4.0",)})
    own = Product("A-2", "Blue Mug", 9.0, description="Our own words.")
    path = tmp_path / "descriptions.jsonl"
    rows = [
        {"sku": "A-1", "hash": "stale", "text": "Written from other facts."},
        {"sku": "A-1", "hash": description_facts_hash(bare), "text": "A red mug."},
        {"sku": "A-2", "hash": description_facts_hash(own), "text": "Never shown."},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + '\n{"sku": "A-1", "hash', encoding="utf-8")
    out, filled = overlay_descriptions([bare, own], path)
    assert filled == 1 and [p.description for p in out] == ["A red mug.", "Our own words."]
    # price, stock and rating are not what a description is written from; colour is
    assert description_facts_hash(dataclasses.replace(bare, price=5.0, stock=3, attributes={
        "color": ("red",), "rating": ("3.0",)})) == description_facts_hash(bare)
    assert description_facts_hash(dataclasses.replace(bare, attributes={"color": ("blue",)})) != \
        description_facts_hash(bare)
    assert overlay_descriptions([bare], tmp_path / "none.jsonl") == ([bare], 0)
