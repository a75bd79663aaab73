"""`shopbot eval search --needs` and `--cv` end to end (hashing encoder: no models, seconds per test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NEEDS = Path(__file__).resolve().parents[3] / "retrieval" / "data" / "demo_needs.csv"



def test_needs_on_the_demo_catalog_prints_precision_per_language_and_split(run) -> None:  # type: ignore[no-untyped-def]
    r = run("eval", "search", "--needs", str(NEEDS), "--json")
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    head = next(line for line in lines if "hybrid: top-3 category precision " in line)
    assert " en 0." in head and " zh 0." in head
    assert any(line.strip().startswith("tune: ") for line in lines) and any(line.strip().startswith("heldout: ") for line in lines)
    out = json.loads(lines[-1])
    assert out["requests"] == out["by_language"]["en"]["requests"] + out["by_language"]["zh"]["requests"]
    assert out["by_language"]["en"]["requests"] >= 60 and out["by_language"]["zh"]["requests"] >= 60
    assert set(out["by_split"]) == {"tune", "heldout"} and set(out["by_split_language"]["tune"]) == {"en", "zh"}
    assert 0.0 < out["top3_precision"] <= 1.0

    tune = json.loads(run("eval", "search", "--needs", str(NEEDS), "--split", "tune", "--mode", "bm25", "--json")
                      .output.strip().splitlines()[-1])
    assert set(tune["by_split"]) == {"tune"} and tune["requests"] == out["by_split"]["tune"]["requests"]
    assert tune["mode"] == "bm25"


def test_show_misses_lists_the_request_and_what_came_back(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    needs = tmp_path / "needs.csv"
    # a request whose acceptable kind is deliberately not what the words ask for: the top 3 must miss
    needs.write_text("query,language,categories,split\n"
                     "running shoes,en,Books > Fiction,heldout\n"
                     "跑步鞋,zh,Shoes > Running,tune\n", encoding="utf-8")
    r = run("eval", "search", "--needs", str(needs), "--show-misses")
    assert r.exit_code == 0, r.output
    block = r.output.split("Requests whose top 3 hold none of the kind asked for (hybrid):")[1]
    assert "[en heldout] running shoes  (wants Books > Fiction)" in block
    assert "1. " in block and "[Shoes > Running]" in block  # what came back, with its category
    r = run("eval", "search", "--needs", str(tmp_path / "none.csv"))
    assert r.exit_code == 1 and "does not exist" in r.output and "Traceback" not in r.output


def test_cv_reports_the_held_out_fold_figure_beside_the_all_in_one(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    j = tmp_path / "judgments.csv"
    rows = ["id,query,product_title,product_description,median_relevance,relevance_variance"]
    items = ["red winter coat", "blue summer dress", "trail running shoe", "coffee grinder", "wool socks",
             "leather wallet", "yoga mat", "camping tent", "desk lamp", "water bottle"]
    n = 0
    for i, item in enumerate(items):
        # three good products per query: a search that returns one of them cannot score 1.0
        for k, other in enumerate(items):
            for variant, grade in (("", 4), (" deluxe", 3), (" classic", 3)):
                n += 1
                rows.append(f"{n},{item},{other.title()}{variant},a {other}{variant},{grade if k == i else 1},0")
    j.write_text("\n".join(rows) + "\n", encoding="utf-8")
    # candidates=1 keeps one or two products per query: the worse point, never chosen, and the last one searched
    r = run("eval", "search", "--judgments", str(j), "--cv", "5", "--grid", "candidates=100,1", "--json")
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert sum(line.startswith("fold ") and " queries): chose candidates=100 " in line for line in lines) == 5
    assert lines[-2].startswith("cross-validated NDCG@10 ") and "all-in as shipped" in lines[-2] and "held-out/BM25" in lines[-2]
    out = json.loads(lines[-1])
    assert out["cv_folds"] == 5 and out["queries"] == 10 and len(out["grid"]) == 2
    assert sum(f["queries"] for f in out["folds"]) == 10
    assert out["grid"][1]["ndcg@10"] < out["grid"][0]["ndcg@10"]
    # the figures beside it are those of the plain runs (equal folds: the mean over folds is the mean over queries)
    for mode, key in (("bm25", "bm25_ndcg@10"), ("hybrid", "shipped_ndcg@10")):
        plain = json.loads(run("eval", "search", "--judgments", str(j), "--mode", mode, "--json").output.strip().splitlines()[-1])
        assert out[key] == pytest.approx(plain["ndcg@10"], abs=1e-4), mode
    assert out["ratio_cv_to_bm25"] == pytest.approx(out["cv_ndcg@10"] / out["bm25_ndcg@10"], abs=1e-3)

    # no grid: the shipped settings, per fold
    out = json.loads(run("eval", "search", "--judgments", str(j), "--cv", "2", "--json").output.strip().splitlines()[-1])
    assert [f["chosen"] for f in out["folds"]] == [{}, {}]
    assert out["cv_ndcg@10"] == pytest.approx(out["shipped_ndcg@10"], abs=1e-3)


def test_option_mistakes_are_one_sentence(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    j = tmp_path / "j.csv"
    j.write_text("query,product_title,median_relevance\nred coat,Red Coat,4\nshoe,Trail Shoe,4\n", encoding="utf-8")
    cases = [
        ((), "Pass either --judgments or --needs."),
        (("--judgments", str(j), "--needs", str(NEEDS)), "Pass either --judgments or --needs."),
        (("--needs", str(NEEDS), "--cv", "5"), "pass it with --judgments, not --needs"),
        (("--judgments", str(j), "--grid", "prf_terms=30"), "pass --cv too"),
        (("--judgments", str(j), "--cv", "2", "--grid", "w_magic=1"), "'w_magic' is not a search setting"),
        (("--judgments", str(j), "--cv", "3"), "between 2 and 2 folds"),
    ]
    for args, message in cases:
        r = run("eval", "search", *args)
        assert r.exit_code != 0 and message in r.output, (args, r.output)
        assert "Traceback" not in r.output
