"""The intent classifier: sentence embeddings -> multinomial logistic regression.

Why this shape: the shop has a few thousand hand-written examples, not a labelled log, so a large
model fine-tuned end to end would overfit them. Frozen sentence encoders already place "where is my
parcel" next to "track my order"; a linear softmax on top needs little data, trains in seconds with
scipy's L-BFGS, and ships as a few hundred kilobytes of weights. Two encoders are concatenated
because neither is enough alone: MiniLM is the stronger English model but knows no Chinese, USE
multilingual covers Chinese. A small hashed character n-gram block helps with typos and with the
keywords ("invoice", "退款") that both encoders blur.

The weights file records which encoders produced its features (names and dimensions); loading it next
to other encoders fails with one sentence instead of returning confident nonsense.

Entry points: :func:`load_training_csv`, :func:`train_intents`, :class:`IntentModel`
(``predict``, ``predict_batch``, ``save``, ``load``), :func:`evaluate_intents`; and
:func:`rebuild_packaged_model` (``shopbot intents rebuild``) to rebuild ``bot/dialogue/nlu/data/intent_model.npz``
from ``bot/dialogue/nlu/data/intents.csv``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
import threading
import time
import unicodedata
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.encoders import Encoder, get_encoder
from retrieval.lexical import has_cjk

__all__ = [
    "CS_INTENTS",
    "DEFAULT_ENCODERS",
    "SHOPPING_INTENTS",
    "IntentDataError",
    "IntentModel",
    "IntentModelError",
    "IntentRow",
    "default_model_path",
    "evaluate_intents",
    "load_default_model",
    "load_training_csv",
    "normalise_text",
    "packaged_rows",
    "rebuild_packaged_model",
    "train_intents",
]

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_ENCODERS = ("minilm", "use-multilingual")
MAX_EMBED_CHARS = 300  # encoders see at most this much; a 10,000-character paste is still one intent
FORMAT_VERSION = 1

# The 27 customer-service intents of the Bitext taxonomy (labels only) and the shopping/dialogue ones.
CS_INTENTS = (
    "cancel_order", "change_order", "change_shipping_address", "check_cancellation_fee", "check_invoice",
    "check_payment_methods", "check_refund_policy", "complaint", "contact_customer_service",
    "contact_human_agent", "create_account", "delete_account", "delivery_options", "delivery_period",
    "edit_account", "get_invoice", "get_refund", "newsletter_subscription", "payment_issue", "place_order",
    "recover_password", "registration_problems", "review", "set_up_shipping_address", "switch_account",
    "track_order", "track_refund",
)
SHOPPING_INTENTS = (
    "search", "refine", "more", "compare", "details", "similar", "recommend", "greet", "thanks", "goodbye",
    "help", "feedback_positive", "feedback_negative", "other",
)
_LABEL = re.compile(r"^[a-z][a-z0-9_]*$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")


class IntentDataError(ValueError):
    """A training/evaluation file that cannot be used; the message names the file and the bad lines."""


class IntentModelError(RuntimeError):
    """A weights file that cannot be used with the encoders at hand; the message says what to do."""


@dataclass(frozen=True)
class IntentRow:
    utterance: str
    intent: str
    language: str = "en"


def normalise_text(text: str | None) -> str:
    """What the encoders see: NFKC, no control or zero-width characters, one space, at most 300 chars.

    Encoders have a token limit anyway; cutting first keeps a 10,000-character paste from costing a
    full forward pass over text that cannot change the intent.
    """
    t = unicodedata.normalize("NFKC", text or "")
    t = _CONTROL.sub(" ", t)
    t = re.sub(r"\s+", " ", t).strip()
    if len(t) > MAX_EMBED_CHARS:
        t = t[:MAX_EMBED_CHARS].rsplit(" ", 1)[0] or t[:MAX_EMBED_CHARS]
    return t


# ------------------------------------------------------------------------------------------- data


def load_training_csv(path: str | Path, *, strict: bool = True, skip_unlabelled: bool = False) -> list[IntentRow]:
    """Rows of a CSV with columns ``utterance,intent[,language]`` (other columns are ignored).

    Every malformed row is reported with its line number: with ``strict`` (training: a typo in a label
    would silently create a new intent) they all end up in one error; otherwise they are logged and
    skipped. A missing language is guessed from the script (CJK -> zh, else en). ``skip_unlabelled``
    passes over rows whose intent is still empty (a file exported for labelling, half filled in).
    """
    p = Path(path)
    if not p.is_file():
        raise IntentDataError(f"{p} does not exist; pass a CSV with columns utterance,intent[,language].")
    rows: list[IntentRow] = []
    problems: list[str] = []
    with p.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise IntentDataError(f"{p} is empty; it needs a header row utterance,intent[,language].") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise IntentDataError(f"{p} is not a readable UTF-8 CSV ({exc}).") from None
        if "utterance" not in header or "intent" not in header:
            raise IntentDataError(
                f"{p} has columns {', '.join(header) or '(none)'}; it needs utterance and intent (and optionally language)."
            )
        iu, ii = header.index("utterance"), header.index("intent")
        il = header.index("language") if "language" in header else None
        while True:
            try:
                rec = next(reader)
            except StopIteration:
                break
            except (csv.Error, UnicodeDecodeError) as exc:
                problems.append(f"line {reader.line_num}: unreadable ({exc})")
                continue
            line = reader.line_num
            if not rec or all(not c.strip() for c in rec):
                continue
            if len(rec) != len(header):
                problems.append(f"line {line}: {len(rec)} fields, expected {len(header)}")
                continue
            utt = rec[iu].strip()
            intent = rec[ii].strip()
            if not utt:
                problems.append(f"line {line}: empty utterance")
                continue
            if not intent and skip_unlabelled:
                continue
            if not _LABEL.match(intent):
                problems.append(f"line {line}: intent {intent!r} is not a lower_snake_case label")
                continue
            lang = (rec[il].strip().lower() if il is not None else "") or ("zh" if has_cjk(utt) else "en")
            rows.append(IntentRow(utt, intent, lang))
    if problems:
        msg = f"{p}: {len(problems)} bad row(s): " + "; ".join(problems[:20]) + ("; ..." if len(problems) > 20 else "")
        if strict:
            raise IntentDataError(msg + ". Fix or delete them.")
        log.warning("%s (skipped)", msg)
    if not rows:
        raise IntentDataError(f"{p} has no usable rows.")
    return rows


def data_version(rows: Iterable[IntentRow]) -> str:
    """A short hash of the training rows, stored in the weights, so logs tell which data a model saw."""
    h = hashlib.sha256()
    for r in rows:
        h.update(f"{r.utterance}\t{r.intent}\t{r.language}\n".encode())
    return h.hexdigest()[:12]


# --------------------------------------------------------------------------------------- features


def _char_ngrams(text: str) -> list[str]:
    """Character 3-4-grams of each Latin word (with boundary marks) and 1-2-grams of CJK runs."""
    t = text.lower()
    grams: list[str] = []
    for tok in re.findall(r"[a-z0-9]+|[\u3400-\u9fff]+", t):
        if tok[0] >= "\u3400":
            grams.extend(tok)
            grams.extend(tok[i : i + 2] for i in range(len(tok) - 1))
        else:
            w = f"<{tok}>"
            grams.extend(w[i : i + n] for n in (3, 4) for i in range(len(w) - n + 1))
    return grams


def ngram_features(texts: Sequence[str], dim: int) -> np.ndarray:
    """Hashed, sublinear-TF, L2-normalised character n-grams (crc32: stable across runs and machines)."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    if dim <= 0:
        return out
    for i, t in enumerate(texts):
        counts = Counter(zlib.crc32(g.encode("utf-8")) % dim for g in _char_ngrams(t))
        for j, c in counts.items():
            out[i, j] = 1.0 + np.log(c)
        n = float(np.linalg.norm(out[i]))
        if n > 0:
            out[i] /= n
    return out


@dataclass
class Featurizer:
    """Texts -> one feature row: each encoder's vector (scaled) then the n-gram block (scaled).

    Text with Chinese characters uses ``cjk_scales`` instead of ``scales``: MiniLM has no Chinese
    vocabulary, so its vector for Chinese is noise (0 switches it off and saves its forward pass), and
    USE gets a larger weight to make up for the missing block (measured: docs/benchmarks.md, intent routing).
    """

    encoders: Sequence[Encoder]
    scales: Sequence[float]
    ngram_dim: int = 0
    ngram_scale: float = 0.0
    cjk_scales: Sequence[float] | None = None

    @property
    def dim(self) -> int:
        return sum(e.dim for e in self.encoders) + self.ngram_dim

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        clean = [normalise_text(t) or "." for t in texts]
        cjk = np.asarray([has_cjk(t) for t in clean], dtype=bool)
        cjk_scales = self.cjk_scales if self.cjk_scales is not None else self.scales
        blocks = []
        for enc, s, sz in zip(self.encoders, self.scales, cjk_scales, strict=True):
            row_scale = np.where(cjk, np.float32(sz), np.float32(s)).astype(np.float32)
            block = np.zeros((len(clean), enc.dim), dtype=np.float32)
            need = np.flatnonzero(row_scale != 0)
            if len(need):
                block[need] = enc.encode([clean[i] for i in need], kind="query") * row_scale[need, None]
            blocks.append(block)
        if self.ngram_dim:
            blocks.append(ngram_features(clean, self.ngram_dim) * np.float32(self.ngram_scale))
        return np.concatenate(blocks, axis=1).astype(np.float32)


# ------------------------------------------------------------------------------------------ model


@dataclass
class IntentModel:
    """A trained classifier bound to live encoders; predicts (intent, confidence)."""

    labels: tuple[str, ...]
    weights: np.ndarray  # (features, labels) float32
    bias: np.ndarray  # (labels,)
    featurizer: Featurizer
    version: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def encoder_names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.featurizer.encoders)

    def logits(self, features: np.ndarray) -> np.ndarray:
        return features @ self.weights + self.bias  # type: ignore[no-any-return]

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return _softmax(self.logits(self.featurizer(texts)))

    def predict_batch(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(intent, probability of that intent) per text; empty text is encoded as a lone full stop."""
        p = self.probabilities(texts)
        best = p.argmax(axis=1)
        return [(self.labels[int(j)], float(p[i, j])) for i, j in enumerate(best)]

    def predict(self, text: str) -> tuple[str, float]:
        return self.predict_batch([text])[0]

    def top(self, text: str, k: int = 3) -> list[tuple[str, float]]:
        """The k most likely intents, for rules that need the runner-up (and for debugging)."""
        p = self.probabilities([text])[0]
        order = np.argsort(-p)[:k]
        return [(self.labels[int(j)], float(p[j])) for j in order]

    # ----------------------------------------------------------------------------- persistence

    def save(self, path: str | Path) -> Path:
        """Write the weights (float16: the scores move by <1e-3, the file halves) and what they need."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        f = self.featurizer
        tmp = p.with_name(p.name + ".tmp.npz")
        np.savez_compressed(
            tmp,
            format_version=np.int64(FORMAT_VERSION),
            weights=self.weights.astype(np.float16),
            bias=self.bias.astype(np.float32),
            labels=np.asarray(self.labels, dtype=str),
            encoders=np.asarray([e.name for e in f.encoders], dtype=str),
            encoder_dims=np.asarray([e.dim for e in f.encoders], dtype=np.int64),
            scales=np.asarray(f.scales, dtype=np.float32),
            cjk_scales=np.asarray(f.cjk_scales if f.cjk_scales is not None else f.scales, dtype=np.float32),
            ngram_dim=np.int64(f.ngram_dim),
            ngram_scale=np.float32(f.ngram_scale),
            version=np.asarray(self.version),
            meta=np.asarray(json.dumps(self.meta, sort_keys=True)),
        )
        tmp.replace(p)
        return p

    @classmethod
    def load(
        cls,
        path: str | Path,
        encoders: Sequence[Encoder] | Mapping[str, Encoder] | Callable[[str], Encoder] | None = None,
    ) -> IntentModel:
        """Read a weights file and bind it to encoders with the same names and dimensions.

        ``encoders`` may be a sequence (in the file's order), a name -> encoder mapping, a factory
        (name -> encoder), or None for :func:`retrieval.encoders.get_encoder`.
        """
        p = Path(path)
        if not p.is_file():
            raise IntentModelError(f"Intent model {p} does not exist; run `shopbot intents rebuild` to build it.")
        try:
            with np.load(p, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except Exception as exc:
            raise IntentModelError(f"Intent model {p} is not a readable weights file ({exc}); rebuild it.") from None
        if int(data.get("format_version", -1)) != FORMAT_VERSION:
            raise IntentModelError(f"Intent model {p} has an unknown format; rebuild it with this version of shopbot.")
        names = [str(n) for n in data["encoders"]]
        dims = [int(d) for d in data["encoder_dims"]]
        if encoders is None:
            encs = [get_encoder(n) for n in names]
        elif callable(encoders) and not isinstance(encoders, (Sequence, Mapping)):
            encs = [encoders(n) for n in names]
        elif isinstance(encoders, Mapping):
            missing = [n for n in names if n not in encoders]
            if missing:
                raise IntentModelError(
                    f"Intent model {p} was trained on encoder(s) {', '.join(names)}; {', '.join(missing)} not given."
                )
            encs = [encoders[n] for n in names]
        else:
            encs = list(encoders)
        got = [(e.name, int(e.dim)) for e in encs]
        if got != list(zip(names, dims, strict=True)):
            want = ", ".join(f"{n} ({d})" for n, d in zip(names, dims, strict=True))
            have = ", ".join(f"{n} ({d})" for n, d in got) or "none"
            raise IntentModelError(
                f"Intent model {p} was trained on encoders {want} but got {have}; retrain it or use those encoders."
            )
        feat = Featurizer(
            encs, [float(s) for s in data["scales"]], int(data["ngram_dim"]), float(data["ngram_scale"]),
            [float(s) for s in data["cjk_scales"]],
        )
        w = data["weights"].astype(np.float32)
        if w.shape[0] != feat.dim:
            raise IntentModelError(f"Intent model {p} is damaged (weights do not fit its features); rebuild it.")
        return cls(
            labels=tuple(str(x) for x in data["labels"]),
            weights=w,
            bias=data["bias"].astype(np.float32),
            featurizer=feat,
            version=str(data["version"]),
            meta=json.loads(str(data["meta"])),
        )


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)  # type: ignore[no-any-return]


def fit_softmax(
    x: np.ndarray, y: np.ndarray, n_classes: int, *, c: float = 10.0, balanced: bool = True, max_iter: int = 500,
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression, L2 on the weights (not the bias), class-balanced, by L-BFGS.

    Minimises ``C * sum_i w_i * CE_i + ||W||^2 / 2`` (sklearn's convention), where ``w_i`` makes every
    class weigh the same in total, so an intent with 300 examples does not drown one with 40.
    ``sample_weight`` scales single examples within their class (examples taken from the log count less
    than written ones); with all ones it changes nothing.
    """
    from scipy.optimize import minimize  # here, not at the top: scipy costs start-up time and only training needs it

    n, d = x.shape
    k = n_classes
    base = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    counts = np.bincount(y, weights=base, minlength=k).astype(np.float64)
    sw = base * (n / (k * np.maximum(counts, 1e-9)))[y] if balanced else base
    onehot = np.zeros((n, k))
    onehot[np.arange(n), y] = 1.0
    x64 = x.astype(np.float64)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta[: d * k].reshape(d, k)
        b = theta[d * k :]
        z = x64 @ w + b
        z -= z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=1))
        ll = (sw * (lse - (z * onehot).sum(axis=1))).sum()
        p = np.exp(z - lse[:, None])
        g = (p - onehot) * sw[:, None]
        gw = c * (x64.T @ g) + w
        gb = c * g.sum(axis=0)
        return c * ll + 0.5 * float((w * w).sum()), np.concatenate([gw.ravel(), gb])

    res = minimize(loss, np.zeros(d * k + k), jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    theta = res.x
    return theta[: d * k].reshape(d, k).astype(np.float32), theta[d * k :].astype(np.float32)


# Chosen by measurement (docs/benchmarks.md, intent routing): English text uses every block; Chinese text drops
# MiniLM (no Chinese vocabulary) and doubles USE. Encoders not listed here get 1.0 for both.
CJK_SCALE_BY_ENCODER = {"minilm": 0.0, "use-multilingual": 2.0}
DEFAULT_NGRAM_DIM = 2048
DEFAULT_NGRAM_SCALE = 0.5
DEFAULT_C = 10.0


def train_intents(
    rows: Sequence[IntentRow],
    encoders: Sequence[Encoder],
    *,
    c: float = DEFAULT_C,
    scales: Sequence[float] | None = None,
    cjk_scales: Sequence[float] | None = None,
    ngram_dim: int = DEFAULT_NGRAM_DIM,
    ngram_scale: float = DEFAULT_NGRAM_SCALE,
    features: np.ndarray | None = None,
    weights: Sequence[float] | None = None,
) -> IntentModel:
    """Fit the classifier on ``rows``; ``features`` lets experiments reuse embeddings computed once;
    ``weights`` (one per row, default 1) lets some examples count less."""
    if not rows:
        raise IntentDataError("No training rows; pass a CSV with columns utterance,intent[,language].")
    labels = tuple(sorted({r.intent for r in rows}))
    if len(labels) < 2:
        raise IntentDataError(f"Training needs at least two intents; the data has only {labels[0]!r}.")
    encs = list(encoders)
    if cjk_scales is None:
        cjk_scales = [CJK_SCALE_BY_ENCODER.get(e.name, 1.0) for e in encs]
    feat = Featurizer(encs, list(scales or [1.0] * len(encs)), ngram_dim, ngram_scale, list(cjk_scales))
    t0 = time.perf_counter()
    x = features if features is not None else feat([r.utterance for r in rows])
    index = {lab: i for i, lab in enumerate(labels)}
    y = np.asarray([index[r.intent] for r in rows])
    w, b = fit_softmax(x, y, len(labels), c=c, sample_weight=None if weights is None else np.asarray(weights))
    meta = {
        "rows": len(rows),
        "languages": dict(Counter(r.language for r in rows)),
        "c": c,
        "cjk_scales": list(cjk_scales),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return IntentModel(labels, w, b, feat, version=data_version(rows), meta=meta)


# ------------------------------------------------------------------------------------- evaluation


def evaluate_intents(
    model: IntentModel,
    rows: Sequence[IntentRow],
    *,
    predictions: Sequence[str] | None = None,
    top_confusions: int = 10,
) -> dict[str, Any]:
    """Accuracy, macro-F1 over the gold labels, per-intent P/R/F1 and the most frequent confusions.

    A prediction outside the gold label set (say, a shopping intent on a customer-service test file)
    simply counts as wrong. ``predictions`` lets a caller score a pipeline that post-processes the
    model (rules) on the same rows.
    """
    if not rows:
        raise IntentDataError("Nothing to evaluate: the file has no rows.")
    t0 = time.perf_counter()
    pred = list(predictions) if predictions is not None else [p for p, _ in model.predict_batch([r.utterance for r in rows])]
    elapsed = time.perf_counter() - t0
    gold = [r.intent for r in rows]
    labels = sorted(set(gold))
    per: dict[str, dict[str, float]] = {}
    for lab in labels:
        tp = sum(1 for g, p in zip(gold, pred, strict=True) if g == lab and p == lab)
        fp = sum(1 for g, p in zip(gold, pred, strict=True) if g != lab and p == lab)
        fn = sum(1 for g, p in zip(gold, pred, strict=True) if g == lab and p != lab)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per[lab] = {"precision": round(prec, 4), "recall": round(rec, 4), "f1": round(f1, 4), "support": tp + fn}
    conf = Counter((g, p) for g, p in zip(gold, pred, strict=True) if g != p)
    acc = sum(1 for g, p in zip(gold, pred, strict=True) if g == p) / len(gold)
    return {
        "accuracy": round(acc, 4),
        "macro_f1": round(float(np.mean([v["f1"] for v in per.values()])), 4),
        "n": len(gold),
        "per_intent": per,
        "confusions": [{"gold": g, "predicted": p, "count": n} for (g, p), n in conf.most_common(top_confusions)],
        "model_version": model.version,
        "ms_per_utterance": round(elapsed * 1000 / len(gold), 3) if predictions is None else None,
    }


# ------------------------------------------------------------------------------- packaged model


def default_model_path() -> Path:
    return DATA_DIR / "intent_model.npz"


def packaged_rows() -> list[IntentRow]:
    """The project's own training examples (``bot/dialogue/nlu/data/intents.csv``), English and Chinese, 41 intents.

    ``eval intents --train FILE`` should train on these plus FILE's rows: the shop's intents are
    the packaged ones, and a customer-service-only file would otherwise teach a bot that cannot
    search. Measured on Bitext with colloquial phrasings held out: 0.870 trained on the file alone,
    0.984 with these rows added (docs/benchmarks.md, intent routing).
    """
    return load_training_csv(DATA_DIR / "intents.csv")


_DEFAULT: dict[str, IntentModel] = {}
_DEFAULT_LOCK = threading.Lock()


def load_default_model(path: str | Path | None = None) -> IntentModel:
    """The packaged (or configured) model with the registered encoders, loaded once per process."""
    p = str(path or default_model_path())
    with _DEFAULT_LOCK:
        m = _DEFAULT.get(p)
        if m is None:
            m = _DEFAULT[p] = IntentModel.load(p)
    return m


def rebuild_packaged_model(data: str | Path | None = None, out: str | Path | None = None) -> tuple[IntentModel, int]:
    """Train the packaged classifier anew and save it: the model and how many rows it learned from.

    ``data`` defaults to ``bot/dialogue/nlu/data/intents.csv`` and ``out`` to :func:`default_model_path`;
    the encoders are :data:`DEFAULT_ENCODERS`. Run it after editing the examples (``shopbot intents rebuild``);
    a stale weights file fails ``test_shipped_data_and_weights_are_consistent``.
    """
    rows = load_training_csv(DATA_DIR / "intents.csv" if data is None else data)
    model = train_intents(rows, [get_encoder(n) for n in DEFAULT_ENCODERS])
    model.save(default_model_path() if out is None else out)
    return model, len(rows)
