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


def test_phrase_index_counts_adjacent_word_pairs(tmp_path: Path) -> None:
    from retrieval.lexical import PhraseIndex, bigram_keys

    titles = ["Men's Blue Dress Shirt", "Long Sleeve Shift Dress", "Shirt dress for summer", "garden hose"]
    idx = PhraseIndex.build([tokenize(t) for t in titles])
    rows = np.arange(4)
    share = idx.match_share(tokenize("blue dress shirt"), rows)
    assert share.tolist() == [1.0, 0.0, 0.0, 0.0]  # both pairs, in order, only in the first title
    assert idx.match_share(tokenize("long sleeve dress"), rows)[1] == 0.5  # "long sleeve", not "sleeve dress"
    assert idx.match_share(tokenize("shirt"), rows).sum() == 0.0  # one word has no pairs
    assert idx.match_share(tokenize("dress shirt"), np.asarray([2, 0])).tolist() == [0.0, 1.0]  # rows as given
    assert bigram_keys(["a", "b", "a", "b"]).size == 2 and bigram_keys(["a"]).size == 0
    idx.save(tmp_path / "p.npz")
    again = PhraseIndex.load(tmp_path / "p.npz")
    assert np.array_equal(again.match_share(tokenize("blue dress shirt"), rows), share)


def test_fielded_bm25_keeps_title_phrases_and_loads_bundles_without_them(tmp_path: Path) -> None:
    f = FieldedBM25.build({"title": ["dress shirt", "shirt dress"], "body": ["x", "y"]}, {"title": 1.0, "body": 0.3})
    assert f.phrases is not None
    assert f.phrases.match_share(tokenize("dress shirt"), np.arange(2)).tolist() == [1.0, 0.0]
    f.save(tmp_path / "lex")
    assert FieldedBM25.load(tmp_path / "lex").phrases is not None
    (tmp_path / "lex" / "phrases.npz").unlink()  # a bundle written before phrases existed
    assert FieldedBM25.load(tmp_path / "lex").phrases is None
