"""British spellings to the catalog's own: a shopper who writes "moisturiser", "colour" or "centre" finds the
"Moisturizer", "Color" and "Center" a shop titles in American English (and the other way round).

Only words the catalog does not hold are rewritten, and only to a variant it does hold, so a shop that
writes British English keeps its own words, and a word like "wise" or "noise" (no "wize" in any catalog)
is never touched. The variants are spelling rules, not a word list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container

__all__ = ["catalog_spelling", "vocabulary_check"]

# (pattern, replacement) on a lower-case word, tried in order; each gives one variant
_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), r) for p, r in (
    (r"is(e|es|ed|er|ers|ing|ation|ations)$", r"iz\1"),  # moisturiser, organiser, personalised
    (r"iz(e|es|ed|er|ers|ing|ation|ations)$", r"is\1"),
    (r"ys(e|es|ed|er|ers|ing)$", r"yz\1"),  # analyser
    (r"our(s|ed|ing|ful|less)?$", r"or\1"),  # colour, flavoured, odourless
    (r"([^aeiou])or(s|ed|ing|ful|less)?$", r"\1our\2"),
    (r"([bt])re(s)?$", r"\1er\2"),  # centre, litre, fibre
    (r"([bt])er(s)?$", r"\1re\2"),
    (r"ogue(s)?$", r"og\1"),  # catalogue
    (r"ellery$", r"elry"),  # jewellery
    (r"elry$", r"ellery"),
    (r"([aeiou])ll(ed|er|ers|ing)$", r"\1l\2"),  # travelling, cancelled
    (r"^aluminium$", "aluminum"),
    (r"^aluminum$", "aluminium"),
))
_WORD = re.compile(r"[a-z]+", re.I)
MIN_LENGTH = 5  # "tour", "four", "pour" are words of their own


def catalog_spelling(text: str, known: Callable[[str], bool]) -> str:
    """``text`` with each English word the catalog lacks (``known(word)`` false) replaced by its first
    spelling variant the catalog has; everything else as written."""

    def swap(m: re.Match[str]) -> str:
        word = m.group()
        low = word.lower()
        if len(low) < MIN_LENGTH or known(low):
            return word
        for rx, repl in _RULES:
            variant = rx.sub(repl, low)
            if variant != low and known(variant):
                return variant
        return word

    return _WORD.sub(swap, text)


def vocabulary_check(vocabulary: Container[str], tokenize: Callable[[str], list[str]]) -> Callable[[str], bool]:
    """``known`` for :func:`catalog_spelling` over a BM25 vocabulary of ``tokenize``'s tokens."""

    def known(word: str) -> bool:
        toks = tokenize(word)
        return bool(toks) and all(t in vocabulary for t in toks)

    return known
