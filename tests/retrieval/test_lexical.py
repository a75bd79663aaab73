from __future__ import annotations

from pathlib import Path

import numpy as np

from retrieval.lexical import BM25, FieldedBM25, has_cjk, tokenize


def test_english_tokens_are_stemmed_without_stop_words_and_split_alnum() -> None:
    assert tokenize("The Running Shoes for men") == ["run", "shoe", "men"]
    assert tokenize("128GB phone") == ["128gb", "128", "gb", "phone"]


def test_chinese_is_segmented_into_words() -> None:
    toks = tokenize("我想买一款新的手机")
    assert "手机" in toks and "我" not in toks
    assert {"笔记本", "电脑"} <= set(tokenize("笔记本电脑"))
    assert has_cjk("iPhone 手机壳") and not has_cjk("iphone case")


def test_bm25_prefers_rarer_and_repeated_terms() -> None:
    docs = ["red coat", "red red shoe", "blue coat", "green hat"]
    bm = BM25.build(docs)
    s = bm.scores(tokenize("red coat"))
    assert int(np.argmax(s)) == 0  # both terms
    assert s[3] == 0.0
    assert s[1] > s[2]  # "red" twice vs "coat" once with equal document frequency... and shorter docs
    assert bm.scores(tokenize("unknownword")).sum() == 0.0


def test_fielded_bm25_weights_and_roundtrip(tmp_path: Path) -> None:
    f = FieldedBM25.build({"title": ["winter coat", "running shoe"], "body": ["for running in winter", "light shoe"]},
                          {"title": 1.0, "body": 0.1})
    s = f.scores("running")
    assert s[1] > s[0] > 0  # a title match beats a body-only match
    f.save(tmp_path / "lex")
    g = FieldedBM25.load(tmp_path / "lex")
    assert np.allclose(g.scores("running shoe"), f.scores("running shoe"))
    assert g.weights == {"title": 1.0, "body": 0.1}
