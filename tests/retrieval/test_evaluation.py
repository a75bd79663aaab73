from __future__ import annotations

import math
from pathlib import Path

import pytest

from retrieval.catalog import CatalogError, Product, load_catalog
from retrieval.evaluation import (
    Need,
    category_matches,
    evaluate_needs,
    evaluate_run,
    load_judgments,
    load_needs,
    ndcg_at_k,
    recall_at_k,
)

NEEDS_FILE = Path(__file__).resolve().parents[2] / "retrieval" / "data" / "demo_needs.csv"


def test_ndcg_by_hand() -> None:
    grades = {"a": 4, "b": 3, "c": 1, "d": 2}  # gains 3, 2, 0, 1
    ideal = 3 + 2 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(["a", "b", "d"], grades) == pytest.approx(1.0)
    got = 1 / math.log2(2) * 0 + 3 / math.log2(3) + 0 / math.log2(4) + 2 / math.log2(5)  # x(unjudged), a, c, b
    assert ndcg_at_k(["x", "a", "c", "b"], grades) == pytest.approx(got / ideal)
    assert ndcg_at_k([], grades) == 0.0
    assert ndcg_at_k(["a"], {"a": 1}) == 0.0  # nothing relevant: defined as 0


def test_recall_counts_grade_4_only() -> None:
    grades = {"a": 4, "b": 4, "c": 3}
    assert recall_at_k(["a", "c"], grades) == 0.5
    assert recall_at_k(["c"], {"c": 3}) is None


def test_judgments_file_and_run(tmp_path: Path) -> None:
    path = tmp_path / "j.csv"
    path.write_text(
        "id,query,product_title,product_description,median_relevance,relevance_variance\n"
        '1,red coat,Red Coat,<p>warm</p>,4,0\n'
        '2,red coat,Blue Coat,cold,2,0\n'
        '3,shoe,Red Coat,<p>warm</p>,1,0\n'
        '4,shoe,Trail Shoe,,4,0\n',
        encoding="utf-8",
    )
    j = load_judgments(path)
    assert len(j.products) == 3  # the red coat is one product judged for two queries
    assert j.queries == ["red coat", "shoe"]
    red = next(p for p in j.products if p.title == "Red Coat")
    assert red.description == "warm"
    ranking = {"red coat": [red.sku], "shoe": [red.sku]}
    run = evaluate_run(j, lambda q: ranking[q])
    assert run.queries == 2 and run.products == 3
    assert run.per_query["red coat"] == pytest.approx(3 / (3 + 1 / math.log2(3)))
    assert run.per_query["shoe"] == 0.0
    assert set(run.as_dict()) == {"ndcg@10", "recall@10", "p50_ms", "p99_ms", "queries", "products"}


# ------------------------------------------------------------------------------------ needs: top-3 category precision


def _p(sku: str, category: str) -> Product:
    return Product(sku=sku, title=sku, price=1.0, category=tuple(x.strip() for x in category.split(">")))


def test_category_matches_a_path_prefix_or_a_leaf_name_in_any_case() -> None:
    running = ("Shoes", "Running")
    assert category_matches(running, ["Shoes > Running"])
    assert category_matches(running, ["shoes"])  # top level: a prefix of the path
    assert category_matches(running, ["RUNNING"])  # leaf name
    assert category_matches(running, ["Toys", "shoes>running"])  # any of several; spaces around '>' optional
    assert not category_matches(running, ["Shoes > Hiking"])
    assert not category_matches(running, ["Running Accessories"])  # a leaf is matched whole, not by prefix
    assert not category_matches(("Sports & Outdoors", "Running Accessories"), ["Running"])
    assert not category_matches(("Shoes", "Running"), ["Shoes > Running > Trail"])  # longer than the path
    assert not category_matches((), ["Shoes"])


def test_top3_precision_is_the_share_of_the_first_three_of_the_kind_per_language_and_split() -> None:
    catalog = [
        _p("J1", "Apparel > Jackets"), _p("J2", "Apparel > Jackets"), _p("C1", "Apparel > Coats"),
        _p("B1", "Shoes > Hiking"), _p("B2", "Shoes > Hiking"), _p("L1", "Bags > Luggage"),
    ]
    needs = [
        Need("waterproof jacket for hiking", "en", ("Apparel > Jackets", "Coats"), "tune"),  # J1, B1, C1 -> 2/3
        Need("hiking shoes", "en", ("Shoes",), "heldout"),  # B1, B2, J1 -> 2/3
        Need("行李箱", "zh", ("Luggage",), "heldout"),  # L1 alone -> 1/3: empty slots are misses
        Need("徒步鞋", "zh", ("Shoes > Hiking",), "tune"),  # J1, J2, C1 -> 0: a miss
    ]
    ranked = {
        "waterproof jacket for hiking": ["J1", "B1", "C1", "J2"],  # the 4th is not read
        "hiking shoes": ["B1", "B2", "J1"],
        "行李箱": ["L1"],
        "徒步鞋": ["J1", "J2", "C1", "B1"],
    }
    res = evaluate_needs(needs, lambda q: ranked[q], catalog)
    assert [o.precision for o in res.outcomes] == pytest.approx([2 / 3, 2 / 3, 1 / 3, 0.0])
    assert res.precision == pytest.approx((2 / 3 + 2 / 3 + 1 / 3) / 4)
    d = res.as_dict()
    assert d["top3_precision"] == pytest.approx(round(5 / 12, 4))
    assert d["by_language"]["en"]["top3_precision"] == pytest.approx(round(2 / 3, 4))
    assert d["by_language"]["zh"] == {"top3_precision": pytest.approx(round(1 / 6, 4)), "requests": 2, "missed": 1}
    assert d["by_split"]["tune"]["top3_precision"] == pytest.approx(round(1 / 3, 4))
    assert d["by_split_language"]["heldout"]["zh"]["top3_precision"] == pytest.approx(round(1 / 3, 4))
    assert d["missed_queries"] == ["徒步鞋"]
    assert [p.sku for p in res.misses()[0].top] == ["J1", "J2", "C1"]  # what came back, for --show-misses


def test_needs_file_errors_are_one_sentence(tmp_path: Path) -> None:
    catalog = [_p("J1", "Apparel > Jackets")]
    bad_cat = tmp_path / "n.csv"
    bad_cat.write_text("query,language,categories,split\nrain jacket,en,Apparel > Jackets|Apparel > Jakets,tune\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="line 2: no product of the catalog is filed under 'Apparel > Jakets'"):
        load_needs(bad_cat, catalog=catalog)
    assert load_needs(bad_cat)[0].categories == ("Apparel > Jackets", "Apparel > Jakets")  # no catalog: not checked
    bad_lang = tmp_path / "l.csv"
    bad_lang.write_text("query,language,categories,split\nrain jacket,fr,Apparel,tune\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="language must be one of en, zh"):
        load_needs(bad_lang)
    with pytest.raises(CatalogError, match="does not exist"):
        load_needs(tmp_path / "missing.csv")


def test_the_packaged_needs_file_is_bilingual_split_and_answerable_from_the_demo_catalog() -> None:
    products = load_catalog().products
    needs = load_needs(NEEDS_FILE, catalog=products)  # every category names demo products
    by_lang = {lang: [n for n in needs if n.language == lang] for lang in ("en", "zh")}
    assert len(by_lang["en"]) >= 60 and len(by_lang["zh"]) >= 60
    assert len({n.query for n in needs}) == len(needs)
    for lang, rows in by_lang.items():
        share = sum(n.split == "tune" for n in rows) / len(rows)
        assert 0.35 <= share <= 0.45, (lang, share)
    for n in needs:  # a perfect search can fill the top 3 with the kind asked for
        assert sum(category_matches(p.category, n.categories) for p in products) >= 3, n.query
    # Chinese requests for kinds whose demo titles are mostly English only (a Chinese title on under a third)
    zh_share: dict[tuple[str, ...], list[bool]] = {}
    for p in products:
        zh_share.setdefault(p.category, []).append("zh" in p.titles)
    english_mostly = {c for c, has in zh_share.items() if sum(has) < len(has) / 3}
    asked = [n for n in by_lang["zh"] if any(category_matches(c, n.categories) for c in english_mostly)]
    assert len(asked) >= 10
