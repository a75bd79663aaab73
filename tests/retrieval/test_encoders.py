"""Encoders: the protocol, the lean CPU query path against sentence-transformers, the cache."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.encoders import CachedEncoder, Encoder, EncoderError, HashingEncoder, get_encoder, shared_queries


def test_hashing_encoder_is_normalised_and_deterministic() -> None:
    e = HashingEncoder()
    a = e.encode(["red coat", "red coats", "laptop"])
    assert a.dtype == np.float32 and a.shape == (3, 256)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0)
    assert a[0] @ a[1] > a[0] @ a[2]
    assert np.array_equal(a, e.encode(["red coat", "red coats", "laptop"]))
    assert e.encode([]).shape == (0, 256)
    assert isinstance(e, Encoder)


def test_cache_returns_identical_vectors_and_counts_hits() -> None:
    c = CachedEncoder(HashingEncoder(), size=2)
    first = c.encode(["a b", "c d"])
    again = c.encode(["c d", "a b"])
    assert np.array_equal(first[::-1], again) and c.hits == 2 and c.misses == 2
    c.encode(["e f"])  # evicts the least recently used
    c.encode(["c d"])
    assert c.misses == 4 or c.hits == 3
    c.encode(["x"], kind="passage")
    assert "x" not in c._cache  # passages are never cached


class _Counting(HashingEncoder):
    def __init__(self) -> None:
        super().__init__()
        self.encoded: list[str] = []

    def _vector(self, text: str) -> np.ndarray:
        self.encoded.append(text)
        return super()._vector(text)


def test_shared_queries_encode_a_text_once_per_block_and_only_within_it() -> None:
    e, other = _Counting(), _Counting()
    with shared_queries():
        a = e.encode(["red coat"])
        a *= 3  # a caller scaling its copy changes nothing for the next one
        b = e.encode(["red coat", "laptop"])
        assert np.array_equal(b, HashingEncoder().encode(["red coat", "laptop"]))
        other.encode(["red coat"])  # another encoder has its own vectors
        e.encode(["red coat"], kind="passage")  # passages are never shared
        CachedEncoder(e, size=0).encode(["laptop"])
    assert e.encoded == ["red coat", "laptop", "red coat"] and other.encoded == ["red coat"]
    e.encode(["red coat"])  # outside a block: every call encodes (the query cache is separate and may be off)
    with shared_queries():
        e.encode(["red coat"])
    assert e.encoded == ["red coat", "laptop", "red coat", "red coat", "red coat"]


def test_unknown_encoder_is_one_sentence() -> None:
    with pytest.raises(EncoderError, match="Unknown encoder 'nope'; use one of"):
        get_encoder("nope")


def test_minilm_query_paths_match_sentence_transformers() -> None:
    from retrieval.encoders import minilm_path
    from retrieval.fastbert import NumpyBert

    texts = ["red winter coat under 80", "wireless noise cancelling headphones", "kitchenaid mixer"]
    enc = get_encoder("minilm")
    reference = enc.encode(texts * 4, kind="passage")[:3]  # a batch of 12 goes through sentence-transformers
    exact = NumpyBert(minilm_path()).encode(texts)
    assert np.abs(exact - reference).max() < 1e-4
    fast = np.concatenate([enc.encode([t]) for t in texts])  # one query at a time: the int8 path
    cos = (fast * reference).sum(axis=1)
    assert cos.min() > 0.95
    # the int8 query still ranks the right passage first
    passages = enc.encode(["Women's Quilted Winter Coat, Red", "Sony WH-1000XM5 Headphones", "Stand Mixer 5 Qt"], kind="passage")
    assert list((fast @ passages.T).argmax(axis=1)) == [0, 1, 2]


def test_use_multilingual_puts_chinese_and_english_together() -> None:
    enc = get_encoder("use-multilingual")
    v = enc.encode(["手机", "smartphone", "running shoes", "跑步鞋"])
    assert v.shape == (4, 512)
    assert v[0] @ v[1] > v[0] @ v[2]
    assert v[3] @ v[2] > v[3] @ v[1]
