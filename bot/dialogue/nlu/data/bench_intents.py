"""Measure the intent classifier: the figures in docs/benchmarks.md (intent routing) come from this script.

    python bot/dialogue/nlu/data/bench_intents.py --bitext ../shared/eval/intents/bitext_8k.csv [--grid]

Reports, for the model trained on ``intents.csv`` only (what ships):
  1. accuracy / macro-F1 on the Bitext file (its 27 customer-service intents; a shopping prediction is wrong);
  2. a held-out check of the Chinese side: 5-fold cross-validation over the hand-written Chinese rows;
and, for the protocol "train on part of Bitext, test on the rest" (the ``--train`` mode of ``eval intents``):
  3. a stratified random 80/20 split;
  4. harder splits: leave-one-flag-out (train without every row carrying a Bitext phrasing flag such as
     Z = typos, L = colloquial, K = keywords, test on those rows) and a phrasing-family split (rows keyed
     by their first two words; whole families held out across all intents); each also with the packaged
     rows added to the training side (what ``eval intents --train`` does).

Embeddings are cached under ``~/.cache/shopbot-intents`` so a grid over settings costs seconds. Nothing
from the Bitext file is written into the project.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))

from bot.dialogue.nlu.intents import (  # noqa: E402
    CJK_SCALE_BY_ENCODER,
    DEFAULT_C,
    DEFAULT_ENCODERS,
    DEFAULT_NGRAM_DIM,
    DEFAULT_NGRAM_SCALE,
    Featurizer,
    IntentModel,
    IntentRow,
    evaluate_intents,
    fit_softmax,
    load_training_csv,
    ngram_features,
    normalise_text,
)
from retrieval.encoders import get_encoder  # noqa: E402
from retrieval.lexical import has_cjk  # noqa: E402

CACHE = Path.home() / ".cache" / "shopbot-intents"


def embed(name: str, texts: Sequence[str]) -> np.ndarray:
    """Encoder vectors for texts (normalised as the model does), cached by content hash."""
    clean = [normalise_text(t) or "." for t in texts]
    key = hashlib.sha256(("\n".join(clean) + name).encode()).hexdigest()[:16]
    path = CACHE / f"{name}-{key}.npy"
    if path.is_file():
        return np.load(path)  # type: ignore[no-any-return]
    CACHE.mkdir(parents=True, exist_ok=True)
    v = get_encoder(name).encode(clean, kind="query")
    np.save(path, v)
    return v


def features(texts: Sequence[str], cfg: dict[str, Any]) -> np.ndarray:
    """The model's feature rows (same scaling as bot.dialogue.nlu.intents.Featurizer), from cached embeddings."""
    ngram_dim, ngram_scale = cfg["ngram_dim"], cfg["ngram_scale"]
    cjk = np.asarray([has_cjk(normalise_text(t)) for t in texts])[:, None]
    cjk_scales = cfg.get("cjk_scales") or [CJK_SCALE_BY_ENCODER.get(n, 1.0) for n in cfg["encoders"]]
    blocks = [embed(n, texts) * np.where(cjk, z, s)
              for n, s, z in zip(cfg["encoders"], cfg["scales"], cjk_scales, strict=True)]
    if ngram_dim:
        blocks.append(ngram_features([normalise_text(t) or "." for t in texts], ngram_dim) * ngram_scale)
    return np.concatenate(blocks, axis=1).astype(np.float32)


def fit_eval(train: Sequence[IntentRow], test: Sequence[IntentRow], cfg: dict[str, Any]) -> dict[str, Any]:
    xtr = features([r.utterance for r in train], cfg)
    xte = features([r.utterance for r in test], cfg)
    labels = sorted({r.intent for r in train})
    idx = {lab: i for i, lab in enumerate(labels)}
    w, b = fit_softmax(xtr, np.asarray([idx[r.intent] for r in train]), len(labels), c=cfg["c"])
    pred = [labels[j] for j in (xte @ w + b).argmax(axis=1)]
    dummy = IntentModel(tuple(labels), w, b, Featurizer([], []))
    return evaluate_intents(dummy, test, predictions=pred)


def family_split(rows: Sequence[IntentRow], frac: float, seed: int) -> tuple[list[IntentRow], list[IntentRow]]:
    """Hold out whole phrasing families: rows are keyed by their first two words ("i need", "can you",
    "where do", "cancel order" ...), and a random set of keys covering ``frac`` of the rows goes to the
    test side for every intent at once, so no test opening was seen in training."""
    def key(r: IntentRow) -> str:
        return " ".join(re.findall(r"[a-z']+", r.utterance.lower())[:2])

    sizes = Counter(key(r) for r in rows)
    keys = sorted(sizes)
    random.Random(seed).shuffle(keys)
    held: set[str] = set()
    total = 0
    for k in keys:
        if total >= frac * len(rows):
            break
        held.add(k)
        total += sizes[k]
    return [r for r in rows if key(r) not in held], [r for r in rows if key(r) in held]


def stratified_split(rows: Sequence[IntentRow], frac: float, seed: int) -> tuple[list[IntentRow], list[IntentRow]]:
    rng = random.Random(seed)
    by: dict[str, list[IntentRow]] = defaultdict(list)
    for r in rows:
        by[r.intent].append(r)
    train: list[IntentRow] = []
    test: list[IntentRow] = []
    for group in by.values():
        g = list(group)
        rng.shuffle(g)
        k = round(frac * len(g))
        test += g[:k]
        train += g[k:]
    return train, test


def read_bitext(path: Path) -> tuple[list[IntentRow], list[str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        recs = list(csv.DictReader(fh))
    return [IntentRow(r["utterance"], r["intent"], "en") for r in recs], [r.get("flags", "") for r in recs]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bitext", default=str(ROOT.parent / "shared/eval/intents/bitext_8k.csv"))
    ap.add_argument("--data", default=str(ROOT / "bot/dialogue/nlu/data/intents.csv"))
    ap.add_argument("--grid", action="store_true", help="compare feature sets and C")
    ap.add_argument("--splits", action="store_true", help="also run the train-on-Bitext splits")
    ap.add_argument("--confusions", type=int, default=12)
    args = ap.parse_args()
    own = load_training_csv(args.data)
    bitext, flags = read_bitext(Path(args.bitext))
    base = {"encoders": list(DEFAULT_ENCODERS), "scales": [1.0, 1.0], "ngram_dim": DEFAULT_NGRAM_DIM,
            "ngram_scale": DEFAULT_NGRAM_SCALE, "c": DEFAULT_C}
    configs = [base]
    if args.grid:
        configs = [
            {**base, "encoders": ["minilm"], "scales": [1.0], "cjk_scales": [1.0], "ngram_dim": 0},
            {**base, "encoders": ["use-multilingual"], "scales": [1.0], "cjk_scales": [1.0], "ngram_dim": 0},
            {**base, "cjk_scales": [1.0, 1.0], "ngram_dim": 0},
            {**base, "cjk_scales": [1.0, 1.0]},
            {**base, "ngram_dim": 0},
            base,
            *({**base, "ngram_scale": s} for s in (0.25, 1.0)),
            *({**base, "cjk_scales": [0.0, z]} for z in (1.0, 1.5)),
            *({**base, "c": c} for c in (1.0, 3.0, 30.0)),
        ]
    zh = [r for r in own if r.language == "zh"]
    for cfg in configs:
        t0 = time.time()
        rep = fit_eval(own, bitext, cfg)
        # Chinese: 5-fold CV, test only on the Chinese rows of each fold (train on everything else)
        rng = random.Random(0)
        zh_sh = list(zh)
        rng.shuffle(zh_sh)
        correct = 0
        for f in range(5):
            test = zh_sh[f::5]
            ts = set(id(r) for r in test)
            train = [r for r in own if id(r) not in ts]
            pr = fit_eval(train, test, cfg)
            correct += round(pr["accuracy"] * pr["n"])
        label = json.dumps({k: cfg.get(k) for k in ("encoders", "cjk_scales", "ngram_dim", "ngram_scale", "c")})
        print(f"{label}\n  bitext acc {rep['accuracy']:.4f} macro-F1 {rep['macro_f1']:.4f} | zh 5-fold acc "
              f"{correct / len(zh):.4f} (n={len(zh)}) [{time.time() - t0:.0f}s]")
        if not args.grid:
            for c in rep["confusions"][: args.confusions]:
                print(f"    {c['gold']} -> {c['predicted']}: {c['count']}")
            worst = sorted(rep["per_intent"].items(), key=lambda kv: kv[1]["f1"])[:8]
            print("   weakest:", ", ".join(f"{k} {v['f1']:.2f}" for k, v in worst))
    if args.splits:
        cfg = base
        tr, te = stratified_split(bitext, 0.2, 0)
        r1 = fit_eval(tr, te, cfg)
        print(f"bitext random 80/20: acc {r1['accuracy']:.4f} macro-F1 {r1['macro_f1']:.4f} (n={r1['n']})")
        tr, te = family_split(bitext, 0.3, 0)
        r2 = fit_eval(tr, te, cfg)
        r2b = fit_eval([*own, *tr], te, cfg)
        print(f"bitext phrasing-family 70/30: acc {r2['accuracy']:.4f} macro-F1 {r2['macro_f1']:.4f} (n={r2['n']}); "
              f"with the packaged rows added: acc {r2b['accuracy']:.4f} macro-F1 {r2b['macro_f1']:.4f}")
        for fl in "ZLKQPEWCM":
            te = [r for r, f in zip(bitext, flags, strict=True) if fl in f]
            tr = [r for r, f in zip(bitext, flags, strict=True) if fl not in f]
            if len(te) < 50:
                continue
            r3 = fit_eval(tr, te, cfg)
            r4 = fit_eval([*own, *tr], te, cfg)
            print(f"bitext leave-flag-{fl}-out: acc {r3['accuracy']:.4f} macro-F1 {r3['macro_f1']:.4f} (n={r3['n']}); "
                  f"with the packaged rows added: acc {r4['accuracy']:.4f} macro-F1 {r4['macro_f1']:.4f}")


if __name__ == "__main__":
    main()
