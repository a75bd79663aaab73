"""The shop's own synonyms: shoppers' words the search should read as the shop's words.

One plain-text file the owner (or the console's demand-gaps page) edits, ``<index root>/synonyms.txt``::

    # shopper words = the shop's words
    jorts = denim shorts
    雨裤 = rain trousers
    the big red mixer = KitchenAid Artisan Stand Mixer

Each rule replaces the phrase on the left, wherever it stands as whole words in a query (case-insensitive;
Chinese, which has no spaces, anywhere in the text), with the words on the right, before the query is
ranked. Replacing rather than adding keeps the rule predictable: the owner says what the phrase means.
Longer phrases are applied first. A product-name alias is the same kind of rule with a product's name on
the right.

The file lives beside the index builds because it belongs to the shop's search, not to one build: it
survives reindexes. :class:`ShopSynonyms` re-reads it when its modification time changes (one ``stat`` per
query), so a running bot uses an edit from the next query on, without a restart or a reindex.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

__all__ = ["SYNONYMS_FILE", "ShopSynonyms", "add_rule", "read_rules", "synonyms_path"]

log = logging.getLogger(__name__)

SYNONYMS_FILE = "synonyms.txt"
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")


def synonyms_path(index_root: Path) -> Path:
    """Where the shop's synonyms live for the index at ``index_root``."""
    return Path(index_root) / SYNONYMS_FILE


def read_rules(path: Path) -> list[tuple[str, str]]:
    """The (phrase, replacement) rules of ``path``, in file order; lines without ``=`` and comments are skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    rules = []
    for line in text.splitlines():
        line = line.split("#", 1)[0] if line.lstrip().startswith("#") else line
        phrase, sep, words = line.partition("=")
        phrase, words = " ".join(phrase.split()), " ".join(words.split())
        if sep and phrase and words:
            rules.append((phrase, words))
    return rules


def add_rule(path: Path, phrase: str, words: str, *, note: str = "") -> None:
    """Append one rule (replacing an earlier rule for the same phrase), written whole and renamed into place
    so that a search never reads half a file."""
    phrase, words = " ".join(phrase.replace("=", " ").split()), " ".join(words.replace("=", " ").split())
    if not phrase or not words:
        raise ValueError("A synonym needs the shopper's words and the shop's words.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = ["# shopper words = the shop's words (docs/console.md); read by the search from the next query on"]
    key = phrase.casefold()
    lines = [ln for ln in lines if ln.lstrip().startswith("#") or " ".join(ln.partition("=")[0].split()).casefold() != key]
    if note:
        lines.append("# " + " ".join(note.split()))
    lines.append(f"{phrase} = {words}")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class ShopSynonyms:
    """The rules of one synonyms file, re-read when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._rules: list[tuple[re.Pattern[str], str]] = []
        self._lock = threading.Lock()

    def _current(self) -> list[tuple[re.Pattern[str], str]]:
        try:
            st = self.path.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    try:
                        rules = read_rules(self.path) if stamp is not None else []
                    except (OSError, UnicodeDecodeError) as exc:  # keep serving the rules read before
                        log.warning("The synonyms file %s cannot be read (%s); using the previous rules.", self.path, exc)
                        return self._rules
                    rules.sort(key=lambda r: -len(r[0]))
                    self._rules = [(_pattern(p), w) for p, w in rules]
                    self._stamp = stamp
        return self._rules

    def expand(self, text: str) -> str:
        """``text`` with every rule's phrase replaced by the shop's words."""
        for pattern, words in self._current():
            text = pattern.sub(lambda _m, w=words: w, text)  # type: ignore[misc]
        return text


def _pattern(phrase: str) -> re.Pattern[str]:
    body = r"\s+".join(re.escape(w) for w in phrase.split())
    if _CJK.search(phrase):
        return re.compile(body, re.IGNORECASE)
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)
