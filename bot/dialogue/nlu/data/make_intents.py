"""Generate ``bot/dialogue/nlu/data/intents.csv`` (utterance,intent,language) from the hand-written phrases.

Run from the repository root: ``python bot/dialogue/nlu/data/make_intents.py --exclude
../shared/eval/intents/bitext_8k.csv`` (deterministic: same seed, same file), then ``shopbot intents rebuild`` to
rebuild ``intent_model.npz``. ``--exclude`` names evaluation files (CSV with an ``utterance`` column): a generated
row that is word for word one of their utterances is left out, so the model is never trained on a row it is
measured on ("where is my order?" and 16 more were, by coincidence of short phrasings).

Why a generator rather than a flat file: shoppers ask for the same thing in many shapes ("how do I
cancel my order", "help cancelling order #48213", "cancel pls"). Writing each shape by hand for 41
intents is where coverage gets lost, so the verb and noun phrases of each intent (``intent_phrases.py``)
are put into shared wrappers, a share of the results get a realistic typo, and the hand-written whole
sentences (angry, terse, Chinese) are added as they are. All text is the project's own; no row is an
evaluation set's (see ``--exclude``). Measured figures: docs/benchmarks.md (intent routing).
"""

from __future__ import annotations

import csv
import random
import re
import sys
from pathlib import Path
from typing import TypeVar

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from intent_phrases import (  # noqa: E402
    CS,
    PRODUCT_TEMPLATES,
    PRODUCTS_EN,
    PRODUCTS_ZH,
    SEARCH_EN,
    SEARCH_ZH,
    SHOPPING,
    ZH_PRODUCT_TEMPLATES,
)

T = TypeVar("T")
SEED = 20240611
N_BASE = 40  # composed verb-phrase sentences per customer-service intent
N_GERUND = 10
N_NOUN = 12
N_ZH_COMPOSED = 10

BASE = [
    "{a}", "{a} please", "please {a}", "i want to {a}", "i'd like to {a}", "i would like to {a}", "i need to {a}",
    "need to {a}", "how do i {a}?", "how can i {a}?", "how to {a}", "how would i {a}", "can i {a}?", "could i {a}?",
    "can you help me {a}?", "could you help me {a}", "help me {a}", "i need help to {a}", "is it possible to {a}?",
    "where can i {a}?", "where do i go to {a}", "what do i have to do to {a}?", "what's the way to {a}?",
    "tell me how to {a}", "show me how to {a}", "i'm trying to {a}", "i don't know how to {a}",
    "i can't figure out how to {a}", "is there a way to {a}", "any way to {a}?", "i wanna {a}", "i have to {a}",
    "let me {a}", "would you help me {a}?", "hey, how do i {a}", "hi, i want to {a}", "quick question, can i {a}?",
    "i was hoping to {a}", "what are the steps to {a}", "would it be possible to {a}?", "i'm looking to {a}",
    "urgent: i need to {a}", "i really need to {a} right now", "how am i supposed to {a}??", "can u {a}",
    "pls help me {a}", "i wish to {a}", "where is the option to {a}?", "i want assistance to {a}",
    "Could you please tell me how I can {a}?", "I would appreciate it if you could help me {a}.",
    "Hello, I need to {a}. Thanks", "what should i do to {a}", "need assistance to {a}", "how do we {a}",
]
TROUBLE_BASE = [
    "i've been trying to {a} for ages", "why can't i {a}?", "i can't {a}, help", "i'm unable to {a}",
    "it won't let me {a}", "trying to {a}, help",
]
GERUND = [
    "help {g}", "help with {g}", "assistance {g}", "i need assistance {g}", "i need help {g}", "{g}",
    "questions about {g}", "info on {g}", "can you assist with {g}?", "support for {g}", "i'd appreciate some help {g}",
    "any help {g}?", "i'd like some guidance on {g}", "information about {g}",
]
TROUBLE_GERUND = ["i'm having trouble {g}", "problem {g}", "having issues {g}", "stuck {g}", "error when {g}"]
NOUN = [
    "{n}", "{n}?", "{n} please", "info about {n}", "information on {n}", "i have a question about {n}",
    "question regarding {n}", "tell me about {n}", "can you tell me about {n}?", "what about {n}", "i want to know about {n}",
    "i'd like information about {n}", "help with {n}", "where can i find {n}?", "i'm looking for {n}", "details on {n}",
    "anything on {n}?", "I need some information about {n}", "hi, {n}", "can i get help with {n}",
]
ZH_WRAP = [
    "我想{a}", "怎么{a}", "请帮我{a}", "{a}", "如何{a}？", "我要{a}", "能不能{a}", "可以{a}吗", "在哪里{a}",
    "帮忙{a}一下", "我需要{a}", "你好，我想{a}", "请问怎么{a}", "{a}怎么弄", "麻烦帮我{a}", "急！{a}",
]
ORDER_REFS = [
    "my order", "the order", "my last order", "order {num}", "order #{num}", "my recent purchase", "the order I placed yesterday",
    "purchase {num}", "my purchase", "order number {num}", "my most recent order", "this order",
]
_IRREGULAR = {
    "get": "getting", "set": "setting", "put": "putting", "stop": "stopping", "swap": "swapping", "scrap": "scrapping",
    "be": "being", "see": "seeing", "cancel": "cancelling", "pay": "paying", "undo": "undoing", "submit": "submitting",
    "opt": "opting", "log": "logging", "ship": "shipping", "sign": "signing", "quit": "quitting", "check": "checking",
}


def gerund(phrase: str) -> str:
    verb, _, rest = phrase.partition(" ")
    if verb in _IRREGULAR:
        g = _IRREGULAR[verb]
    elif verb.endswith("e") and not verb.endswith("ee"):
        g = verb[:-1] + "ing"
    else:
        g = verb + "ing"
    return f"{g} {rest}".strip()


def order_number(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.55:
        return str(rng.randint(10_000, 99_999_999))
    if kind < 0.8:
        return "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(rng.randint(6, 8)))
    return f"ORD-{rng.randint(1000, 999_999)}"


def fill(text: str, rng: random.Random) -> str:
    while "{ord}" in text:
        text = text.replace("{ord}", rng.choice(ORDER_REFS), 1)
    while "{num}" in text:
        text = text.replace("{num}", order_number(rng), 1)
    return text


_KEYS = "qwertyuiopasdfghjklzxcvbnm"


def typo(text: str, rng: random.Random) -> str:
    """One realistic slip in one longer word: swapped, dropped, doubled or neighbouring letter."""
    words = text.split(" ")
    idx = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not idx:
        return text
    i = rng.choice(idx)
    w = words[i]
    j = rng.randint(1, len(w) - 2)
    op = rng.randrange(4)
    if op == 0:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    elif op == 1:
        w = w[:j] + w[j + 1 :]
    elif op == 2:
        w = w[:j] + w[j] + w[j:]
    else:
        k = _KEYS.find(w[j].lower())
        w = w[:j] + (_KEYS[(k + 1) % len(_KEYS)] if k >= 0 else w[j]) + w[j + 1 :]
    words[i] = w
    return " ".join(words)


def style(text: str, rng: random.Random) -> str:
    """Casing and punctuation the way people type in a chat window."""
    r = rng.random()
    if r < 0.45:
        text = text.lower()
    elif r < 0.9:
        text = text[:1].upper() + text[1:]
    elif r < 0.93:
        text = text.upper()
    if rng.random() < 0.3:
        text = text.rstrip("?.!")
    if rng.random() < 0.12:
        text = rng.choice(["hi, ", "hello, ", "hey ", "excuse me, ", "good morning, "]) + text
    if rng.random() < 0.08:
        text += rng.choice([" thanks", " thank you", " asap", " pls", "!!"])
    return re.sub(r"\s+", " ", text).strip()


def sample(pool: list[T], n: int, rng: random.Random) -> list[T]:
    return rng.sample(pool, min(n, len(pool)))


def build(seed: int = SEED) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    rows: list[tuple[str, str, str]] = []
    for intent, spec in CS.items():
        acts: list[str] = spec["acts"]
        trouble = spec.get("trouble", True)
        base = BASE + (TROUBLE_BASE if trouble else [])
        ger = GERUND + (TROUBLE_GERUND if trouble else [])
        composed = [w.format(a=a) for a, w in sample([(a, w) for a in acts for w in base], N_BASE, rng)]
        composed += [w.format(g=gerund(a)) for a, w in sample([(a, w) for a in acts for w in ger], N_GERUND, rng)]
        composed += [w.format(n=n) for n, w in sample([(n, w) for n in spec["nouns"] for w in NOUN], N_NOUN, rng)]
        seen: set[str] = set()
        for text in composed:
            t = style(fill(text, rng), rng)
            if rng.random() < 0.15:
                t = typo(t, rng)
            if t.lower() not in seen:
                seen.add(t.lower())
                rows.append((t, intent, "en"))
        for text in spec["en"]:
            rows.append((fill(text, rng), intent, "en"))
        zh_pool = [w.format(a=a) for a in spec.get("zh_acts", []) for w in ZH_WRAP]
        for text in sample(zh_pool, N_ZH_COMPOSED, rng) + spec["zh"]:
            rows.append((fill(text, rng), intent, "zh"))
    # shopping: product requests in many shapes, plus the dialogue intents as written
    pairs = [(p, t) for p in PRODUCTS_EN for t in PRODUCT_TEMPLATES]
    for p, t in sample(pairs, 160, rng):
        rows.append((style(t.format(p=p), rng), "search", "en"))
    rows += [(t, "search", "en") for t in SEARCH_EN]
    zh_pairs = [(p, t) for p in PRODUCTS_ZH for t in ZH_PRODUCT_TEMPLATES]
    rows += [(t.format(p=p), "search", "zh") for p, t in sample(zh_pairs, 60, rng)]
    rows += [(t, "search", "zh") for t in SEARCH_ZH]
    for intent, spec2 in SHOPPING.items():
        rows += [(t, intent, "en") for t in spec2["en"]]
        rows += [(t, intent, "zh") for t in spec2["zh"]]
    out: list[tuple[str, str, str]] = []
    seen_all: set[tuple[str, str]] = set()
    for u, i, lang in rows:
        key = (u.strip().lower(), i)
        if key not in seen_all and u.strip():
            seen_all.add(key)
            out.append((u.strip(), i, lang))
    return out


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Write intents.csv from the hand-written phrases.")
    ap.add_argument("--exclude", type=Path, nargs="*", default=[],
                    help="evaluation CSVs (an 'utterance' column) whose utterances no training row may equal")
    args = ap.parse_args()
    held_out: set[str] = set()
    for f in args.exclude:
        with f.open(encoding="utf-8-sig", newline="") as fh:
            held_out |= {r["utterance"].strip().lower() for r in csv.DictReader(fh) if r.get("utterance")}
    rows = [r for r in build() if r[0].lower() not in held_out]
    path = HERE / "intents.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["utterance", "intent", "language"])
        w.writerows(rows)
    print(f"{len(rows)} rows -> {path}")


if __name__ == "__main__":
    main()
