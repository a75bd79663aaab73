"""BM25 over product fields, for English and Chinese text.

A small sparse-matrix BM25 rather than a general library: the search path needs per-field scores
(title and body are weighted separately), scores for an explicit candidate set (re-ranking dense
hits), and a persisted form that loads in milliseconds. Scoring a query is a sum of a few precomputed
sparse columns, about 1 ms over 100k products.

Tokenisation: NFKC, lower case; Latin words are split on non-alphanumerics, stop words dropped and
Snowball-stemmed ("running shoes" -> run, shoe), and letter/digit runs are also split ("128gb" ->
128gb, 128, gb). Chinese runs are segmented with jieba in search mode (手机壳 -> 手机, 壳, 手机壳),
loaded only when a text contains CJK characters.

Phrases: ``PhraseIndex`` records which adjacent token pairs (bigrams) each title contains, so the ranker
can tell "dress shirt" in a title from "dress" and "shirt" far apart ("Long Sleeve Shift Dress" for
"long prom dress"). Bigrams are hashed to 64 bits (no vocabulary to store) and kept as a sorted
inverted index: a query's few bigrams are a binary search each.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.sparse as sp

__all__ = ["BM25", "FieldedBM25", "PhraseIndex", "bigram_keys", "has_cjk", "tokenize"]

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_ALNUM_SPLIT = re.compile(r"[a-z]+|[0-9]+")
_STOP = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have", "i", "if", "in", "into", "is", "it", "its", "me", "my", "of", "on", "or", "our", "so", "than", "that", "the", "their", "them", "these", "they", "this", "to", "was", "we", "were", "what", "which", "who", "will", "with", "you", "your", "want", "need", "looking", "show", "find", "some", "any", "please", "buy", "get"]
)
_ZH_STOP = frozenset(["的", "了", "我", "想", "买", "要", "一款", "一个", "一下", "吗", "呢", "吧", "和", "与", "给", "有", "在", "是", "个", "款", "请", "帮", "找", "看看", "推荐"])
_jieba_lock = threading.Lock()
_jieba = None


def has_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


def _jieba_cut(text: str) -> list[str]:
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                import jieba  # jieba loads its dictionary slowly: only for the first Chinese text

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return [t for t in _jieba.lcut_for_search(text) if t.strip()]


def zh_words(text: str) -> list[str]:
    """jieba's dictionary words of ``text``, with no guessing of unknown ones (its HMM joins "能寄到", "发顺丰"):
    what the dictionary does not hold stays one character a word."""
    _jieba_cut("")  # loads the dictionary once
    assert _jieba is not None
    return [w for w in _jieba.lcut(text, HMM=False) if w.strip()]


def cjk_word_ends(text: str) -> dict[int, int]:
    """Where each of jieba's words in ``text`` starts -> where it ends: whether a character is a word by
    itself (蓝 in 要蓝的) or part of a longer one (蓝 in 蓝牙, Bluetooth)."""
    _jieba_cut("")  # loads the dictionary once
    assert _jieba is not None
    return {start: end for _word, start, end in _jieba.tokenize(text)}


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    try:  # optional in effect: without PyStemmer, BM25 matches unstemmed words
        import Stemmer

        return Stemmer.Stemmer("english")
    except ImportError:  # pragma: no cover - PyStemmer is a pinned dependency
        return None


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    s = _stemmer()
    return s.stemWord(word) if s is not None else word


def tokenize(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).lower()
    out: list[str] = []
    pos = 0
    for m in _CJK.finditer(text):
        out.extend(_latin_tokens(text[pos : m.start()]))
        out.extend(t for t in _jieba_cut(m.group()) if t not in _ZH_STOP)
        pos = m.end()
    out.extend(_latin_tokens(text[pos:]))
    return out


def _latin_tokens(text: str) -> list[str]:
    out: list[str] = []
    for w in _WORD.findall(text):
        w = w.replace("'", "")
        if w in _STOP:
            continue
        out.append(_stem(w))
        parts = _ALNUM_SPLIT.findall(w)
        if len(parts) > 1:
            out.extend(_stem(p) for p in parts if p not in _STOP)
    return out


class BM25:
    """Okapi BM25 over one field. Rows are documents in insertion order; ``vocab`` maps token -> column."""

    def __init__(self, matrix: sp.csc_matrix, vocab: dict[str, int], k1: float, b: float) -> None:
        self.matrix = matrix
        self.vocab = vocab
        self.k1 = k1
        self.b = b
        self._by_doc: sp.csr_matrix | None = None

    @classmethod
    def build(
        cls,
        docs: Iterable[str] | Iterable[list[str]],
        *,
        k1: float = 1.2,
        b: float = 0.75,
        vocab: dict[str, int] | None = None,
    ) -> BM25:
        vocab = {} if vocab is None else vocab
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        lengths: list[int] = []
        for i, doc in enumerate(docs):
            toks = tokenize(doc) if isinstance(doc, str) else doc
            lengths.append(len(toks))
            counts: dict[int, int] = {}
            for t in toks:
                j = vocab.setdefault(t, len(vocab))
                counts[j] = counts.get(j, 0) + 1
            rows.extend([i] * len(counts))
            cols.extend(counts.keys())
            vals.extend(counts.values())
        n = len(lengths)
        tf = sp.csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=(n, len(vocab)))
        dl = np.asarray(lengths, dtype=np.float32)
        avgdl = float(dl.mean()) if n and dl.mean() > 0 else 1.0
        df = np.bincount(np.asarray(cols, dtype=np.int64), minlength=len(vocab)).astype(np.float32)
        idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        # Precompute the full BM25 term weight per (doc, term) so a query is a column sum.
        tf = tf.tocoo()
        norm = k1 * (1.0 - b + b * dl[tf.row] / avgdl)
        weights = idf[tf.col] * tf.data * (k1 + 1.0) / (tf.data + norm)
        matrix = sp.csc_matrix((weights.astype(np.float32), (tf.row, tf.col)), shape=(n, len(vocab)))
        return cls(matrix, vocab, k1, b)

    @property
    def n_docs(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def by_doc(self) -> sp.csr_matrix:
        """The same term weights row by row (document -> its terms), made on first use: reading a few
        documents' terms out of the column-major matrix would scan every column."""
        if self._by_doc is None or self._by_doc.shape != self.matrix.shape:
            self._by_doc = self.matrix.tocsr()
        return self._by_doc

    def term_ids(self, tokens: Sequence[str]) -> list[int]:
        return [self.vocab[t] for t in tokens if t in self.vocab]

    def scores(self, tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every document (dense float32 vector of length n_docs)."""
        ids = self.term_ids(tokens)
        out = np.zeros(self.n_docs, dtype=np.float32)
        for j in ids:  # repeated query terms count again, as in BM25's query-term frequency
            start, end = self.matrix.indptr[j], self.matrix.indptr[j + 1]
            out[self.matrix.indices[start:end]] += self.matrix.data[start:end]  # unique rows per column
        return out

    def save(self, directory: Path, name: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        sp.save_npz(directory / f"{name}.npz", self.matrix.tocsc(), compressed=False)
        (directory / f"{name}.json").write_text(
            json.dumps({"k1": self.k1, "b": self.b}), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path, name: str, vocab: dict[str, int]) -> BM25:
        matrix = sp.load_npz(directory / f"{name}.npz").tocsc()
        params = json.loads((directory / f"{name}.json").read_text(encoding="utf-8"))
        return cls(matrix, vocab, float(params["k1"]), float(params["b"]))


class FieldedBM25:
    """BM25 per field (title, body) over one shared vocabulary, combined with field weights."""

    def __init__(
        self,
        fields: dict[str, BM25],
        weights: dict[str, float],
        vocab: dict[str, int],
        phrases: PhraseIndex | None = None,
    ) -> None:
        self.fields = fields
        self.weights = weights
        self.vocab = vocab
        # bigrams of the title field; None for bundles built before phrases existed
        self.phrases = phrases

    @classmethod
    def build(
        cls,
        field_docs: dict[str, Sequence[str]],
        weights: dict[str, float],
        *,
        k1: float = 1.2,
        b: float = 0.75,
    ) -> FieldedBM25:
        vocab: dict[str, int] = {}
        tokens = {name: [tokenize(d) if isinstance(d, str) else list(d) for d in docs] for name, docs in field_docs.items()}
        fields = {name: BM25.build(toks, k1=k1, b=b, vocab=vocab) for name, toks in tokens.items()}
        # bigrams of the title field (of the first field when there is no "title")
        phrase_field = "title" if "title" in tokens else next(iter(tokens), None)
        phrases = PhraseIndex.build(tokens[phrase_field]) if phrase_field is not None else None
        # Columns added by later fields must exist in earlier matrices too.
        for f in fields.values():
            if f.matrix.shape[1] < len(vocab):
                f.matrix = sp.csc_matrix(
                    (f.matrix.data, f.matrix.indices, np.concatenate(
                        [f.matrix.indptr, np.full(len(vocab) - f.matrix.shape[1], f.matrix.indptr[-1])]
                    )),
                    shape=(f.matrix.shape[0], len(vocab)),
                )
        return cls(fields, dict(weights), vocab, phrases)

    @property
    def n_docs(self) -> int:
        return next(iter(self.fields.values())).n_docs

    def field_scores(self, query: str | Sequence[str]) -> dict[str, np.ndarray]:
        tokens = tokenize(query) if isinstance(query, str) else list(query)
        return {name: f.scores(tokens) for name, f in self.fields.items()}

    def scores(self, query: str | Sequence[str]) -> np.ndarray:
        per = self.field_scores(query)
        out = np.zeros(self.n_docs, dtype=np.float32)
        for name, s in per.items():
            out += self.weights.get(name, 1.0) * s
        return out

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name, f in self.fields.items():
            f.save(directory, name)
        meta = {"weights": self.weights, "fields": list(self.fields), "vocab": self.vocab}
        (directory / "lexical.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        if self.phrases is not None:
            self.phrases.save(directory / PHRASES_FILE)

    @classmethod
    def load(cls, directory: Path) -> FieldedBM25:
        meta = json.loads((directory / "lexical.json").read_text(encoding="utf-8"))
        vocab = {str(k): int(v) for k, v in meta["vocab"].items()}
        fields = {name: BM25.load(directory, name, vocab) for name in meta["fields"]}
        path = directory / PHRASES_FILE
        phrases = PhraseIndex.load(path) if path.is_file() else None
        return cls(fields, {k: float(v) for k, v in meta["weights"].items()}, vocab, phrases)


PHRASES_FILE = "phrases.npz"


def bigram_keys(tokens: Sequence[str]) -> np.ndarray:
    """64-bit keys of the distinct adjacent token pairs of ``tokens`` (stable across processes)."""
    pairs = {f"{a}\x00{b}" for a, b in itertools.pairwise(tokens)}
    return np.asarray(
        sorted(int.from_bytes(hashlib.blake2b(p.encode(), digest_size=8).digest(), "little") for p in pairs),
        dtype=np.uint64,
    )


class PhraseIndex:
    """Inverted index from bigram key to the documents that contain that bigram.

    ``keys`` are sorted unique bigram keys; documents of ``keys[i]`` are ``docs[indptr[i]:indptr[i + 1]]``.
    """

    def __init__(self, keys: np.ndarray, indptr: np.ndarray, docs: np.ndarray, n_docs: int) -> None:
        self.keys = keys
        self.indptr = indptr
        self.docs = docs
        self.n_docs = n_docs

    @classmethod
    def build(cls, docs: Sequence[Sequence[str]]) -> PhraseIndex:
        per_doc = [bigram_keys(list(toks)) for toks in docs]
        counts = np.fromiter((k.size for k in per_doc), dtype=np.int64, count=len(per_doc))
        all_keys = np.concatenate(per_doc) if per_doc else np.zeros(0, dtype=np.uint64)
        all_docs = np.repeat(np.arange(len(per_doc), dtype=np.int32), counts)
        order = np.lexsort((all_docs, all_keys))
        all_keys, all_docs = all_keys[order], all_docs[order]
        keys, starts = np.unique(all_keys, return_index=True)
        indptr = np.append(starts, all_keys.size).astype(np.int64)
        return cls(keys, indptr, all_docs, len(per_doc))

    def match_share(self, tokens: Sequence[str], rows: np.ndarray) -> np.ndarray:
        """For each of ``rows``: the share of the query's bigrams found in that document (0 without bigrams)."""
        out = np.zeros(rows.size, dtype=np.float32)
        qkeys = bigram_keys(tokens)
        if not qkeys.size or not rows.size or not self.keys.size:
            return out
        pos = np.full(self.n_docs, -1, dtype=np.int64)
        pos[rows] = np.arange(rows.size)
        at = np.searchsorted(self.keys, qkeys)
        for i, k in zip(at, qkeys, strict=True):
            if i < self.keys.size and self.keys[i] == k:
                p = pos[self.docs[self.indptr[i] : self.indptr[i + 1]]]
                out[p[p >= 0]] += 1.0
        return out / qkeys.size

    def save(self, path: Path) -> None:
        np.savez(path, keys=self.keys, indptr=self.indptr, docs=self.docs, n_docs=np.asarray(self.n_docs))

    @classmethod
    def load(cls, path: Path) -> PhraseIndex:
        with np.load(path) as z:
            return cls(z["keys"], z["indptr"], z["docs"], int(z["n_docs"]))
