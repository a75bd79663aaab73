"""The kind of product a request asks for, and the catalog rows of that kind.

The head of a request names the kind ("jacket" in "waterproof jacket for hiking", 耳机 in 蓝牙耳机); the
modifiers narrow it and must not replace it. A product's own kind is the head word of its category's last
level and of its title ("Phones > Screen Protectors": protector; "... Waterproof Hiking Boot, Black": boot);
the upper levels only name its department ("Phones"). Three matches, the first that finds rows decides:

1. the head is one of a product's own kinds ("case" for "Phones > Cases");
2. the head ends one of them, a compound ("watch" in smartwatch, "phone" in smartphone); where the head
   also names a department, only the compounds filed under it ("phone": smartphones, not headphones);
3. the head names a department ("phone" in a shop whose phones section holds no phone of its own).

A Chinese head is read through its English words (retrieval/lexicon.py); a Chinese compound the dictionary
does not know whole is right-headed, so its last character is the kind (手机壳: 壳, 相机内存卡: 卡, 小白鞋: 鞋).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from retrieval.catalog import Product
from retrieval.lexical import has_cjk, tokenize
from retrieval.lexicon import RELATED, default_lexicon
from retrieval.thesaurus import default_thesaurus

__all__ = ["GENERIC_HEADS", "KindIndex", "category_heads", "query_head", "query_heads", "title_head"]

# where the thing asked for ends: "case for iphone 15", "shoes with laces", "coat under 80", "a watch that
# tracks my runs", "weights to work out at home"
_HEAD_END = re.compile(
    r"\s(?:for|with|without|under|over|below|above|between|from|in|on|like|than|that|which|who|to)\s", re.I)
# category levels that name two kinds ("Coffee & Tea", "Sports and Outdoors")
_KINDS = re.compile(r"\s*(?:&|,|/|\band\b)\s*", re.I)
_ASCII_WORD = re.compile(r"[a-z][a-z'-]*", re.I)
# heads that name no kind of product: what follows them only describes the need ("something to carry my laptop
# in", "a gift for a coffee lover")
GENERIC_HEADS = ("something", "anything", "stuff", "thing", "things", "gift", "gifts", "present", "presents",
                 "idea", "ideas")
# and words whose other names are no kind either ("kit": "case"; "outfit": "attire")
_VAGUE = frozenset(GENERIC_HEADS) | {"kit", "kits", "gear", "outfit", "outfits", "item", "items", "product",
                                     "products", "equipment", "accessory", "accessories", "supplies", "essentials"}
MIN_COMPOUND_PART = 3  # "smart" + "watch"; shorter fronts are suffixes of one word ("i" + "pad")
READ_CACHE = 4096  # texts whose kind is remembered; the memory is emptied when it is full


def query_head(text: str) -> str | None:
    """The head word of a query (its last word before "for", "with", "under", "that", "to" ...), as a BM25
    token: "red winter coat" -> "coat", "case for iphone 15" -> "case", "我想买一款新的手机" -> "手机"; for a
    Chinese request, the head of its first clause (see :func:`query_heads`)."""
    heads = query_heads(text)
    return heads[0] if heads else None


def query_heads(text: str) -> list[str]:
    """The head of each clause of a Chinese request, in order ("孩子快三岁了，想给他买点锻炼动手能力的玩具": 三岁, 玩具):
    one often runs on after the thing it asks for (想买双白色板鞋，百搭那种), or tells the situation first. Words
    that trail a name without naming a thing (那种, 用, 左右, a verb, a price) are passed over. An English
    request has one head."""
    if not has_cjk(text):
        toks = tokenize(_HEAD_END.split(f" {text} ", maxsplit=1)[0])
        return toks[-1:]
    return [head for head, _ in _chinese_heads(text)]


def _chinese_heads(text: str) -> list[tuple[str, str | None]]:
    """Each clause's head (see :func:`query_heads`) and the word just before it, which may narrow it (游戏笔记本:
    笔记本, 游戏); the segmenter's pieces of the head itself (笔记 of 笔记本) are no word before it."""
    heads: list[tuple[str, str | None]] = []
    for clause in _ZH_CLAUSE.split(text):
        # jieba would join 有 or 求 to the name before them (跑步袜有吗, 小白鞋求推荐)
        toks = _unmeasured(tokenize(_ZH_JOINS.sub(" ", clause)))
        # a property after the name is no name either (空气炸锅 大容量, 行李箱 尺寸大): the word before it is the head
        while toks and (_trails(toks[-1]) or (len(toks) > 1 and _names_property(toks[-1]))):
            gone = toks.pop()
            toks = [t for t in toks if t not in gone]
        if toks:
            before = [t for t in toks[:-1] if t not in toks[-1] and has_cjk(t)]
            heads.append((toks[-1], before[-1] if before else None))
    return heads


# where a Chinese clause ends (retrieval.query.parse_query keeps a "，" between clauses)
_ZH_CLAUSE = re.compile(r"[，,。；;！!？?\n]+")
_ZH_JOINS = re.compile(r"有没有|有木有|有吗|求推荐|求")
# words that follow a name without naming a thing: "百搭那种", "跑步穿", "办公用", "两百左右"
_ZH_TRAILING = frozenset(["那种", "这种", "那款", "这款", "之类", "类", "款", "用", "穿", "戴", "左右", "以下", "以内",
                          "以上", "上下", "的话", "就行", "就好", "可以", "一点", "好", "好用", "推荐", "吗", "呢", "吧",
                          # how it should be, after what it should be so (尺寸大, 容量大一点, 续航久)
                          "大", "小", "多", "少", "长", "短", "轻", "重", "高", "低", "快", "慢", "强", "久", "便宜", "贵",
                          "好看", "漂亮", "耐用", "结实", "舒服", "舒适"])


def _head_word(text: str, head: str) -> str | None:
    """The word of English ``text`` whose token is ``head`` (its last one), as written: "cagoules", not "cagoul"."""
    words = _ASCII_WORD.findall(_HEAD_END.split(f" {text} ", maxsplit=1)[0])
    return next((w.lower() for w in reversed(words) if tokenize(w) == [head]), None)


def _unmeasured(toks: list[str]) -> list[str]:
    """Tokens less numbers and the one-character unit after each (300 元, 14 寸, 8 米)."""
    out: list[str] = []
    after_number = False
    for t in toks:
        if t.isdigit():
            after_number = True
            continue
        if not (after_number and len(t) == 1):
            out.append(t)
        after_number = False
    return out


def _trails(tok: str) -> bool:
    """Whether a token at the end of a Chinese clause is no name: a trailing word, a number or a price, or a word
    the dictionary gives only verb senses (穿, 放歌)."""
    if tok in _ZH_TRAILING or not any(c.isalpha() for c in tok):
        return True
    if not has_cjk(tok):
        return False
    lex = default_lexicon()
    return lex.knows(tok) and not lex.nouns(tok, rare=True)


def _names_property(tok: str) -> bool:
    """Whether a Chinese word names what a thing has (容量 "capacity", 大容量 "high capacity", 尺寸 "size"): its first
    gloss ends in a word whose commonest WordNet sense is an attribute or a quantity."""
    glosses = default_lexicon().glosses(tok) if has_cjk(tok) else []
    words = glosses[0].split() if glosses else []
    return bool(words) and default_thesaurus().names_property(words[-1])


def title_head(title: str) -> str | None:
    """The head word of a product title: its last word of letters before the colour, size or pack that
    follows a comma, as a BM25 token ("Columbia ... Waterproof Hiking Boot, Black" -> "boot", "Apple iPhone 16
    Smartphone 256GB, Black" -> "smartphon")."""
    word = _title_head_word(title)
    return tokenize(word)[-1] if word else None


# a measure inside a title ("Frying Pan 28 cm", "Tent for 2 Persons", "Stock Pot 8L") is not its head
_MEASURE = re.compile(r"\d[\d.,/]*\s*(?:[^\W\d_]{1,7}\b)?")
# where a title's name ends: "Dome Tent for 2 Persons", "Casserole with Lid", "Matilda by Roald Dahl"
_TITLE_END = re.compile(r"\s(?:for|with|without|by|of|in)\s", re.I)


def _title_head_word(title: str) -> str | None:
    name = re.split(r",|\s[-–(]\s?", title, maxsplit=1)[0]
    name = _MEASURE.sub(" ", _TITLE_END.split(f" {name} ", maxsplit=1)[0])
    words: list[str] = re.findall(r"[\w'-]+", name)
    for w in reversed(words):  # the last word of letters is the head: read from the end
        if w.isascii() and any(c.isalpha() for c in w) and (toks := tokenize(w)) and toks[-1].isalpha():
            return w.lower()
    return None


# a Chinese title's colour and measures ("灰色", "6夸脱", "200克") follow its name
_ZH_TAIL = re.compile(r"(?:\s*(?:[\d.,]+\s*[^\s\d]{0,3}|[\u4e00-\u9fff]{1,3}色))+\s*$")


def _zh_title_head(title: str) -> str | None:
    if not title or not has_cjk(title):
        return None
    # the name's last chunk that holds Chinese: jieba reads a few characters, not the whole title
    chunk = next((c for c in reversed(_ZH_TAIL.sub("", title).split()) if has_cjk(c)), "")
    toks = [t for t in tokenize(chunk) if has_cjk(t)]
    return toks[-1] if toks else None


def category_heads(level: str) -> list[str]:
    """The head word of each kind a category level names: "Coffee & Tea" -> coffee, tea;
    "Laptop Bags" -> bag; "T-Shirts" -> shirt."""
    return [tokenize(w)[-1] for w in _level_head_words(level)]


def _level_head_words(level: str) -> list[str]:
    out = []
    for kind in _KINDS.split(level):
        if tokenize(kind):
            words = _ASCII_WORD.findall(kind)
            out.append(words[-1].lower().removesuffix("'s").rstrip("'") if words else kind)
    return out


_IRREGULAR = {"children": "child", "men": "man", "women": "woman", "knives": "knife", "shelves": "shelf"}


def _singular(word: str) -> str:
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


class KindIndex:
    """Catalog rows by kind (own and department), built once per engine; ``rows`` reads a request."""

    def __init__(self, products: Sequence[Product]) -> None:
        own: dict[str, list[int]] = {}
        dept: dict[str, list[int]] = {}
        words: dict[str, str] = {}  # a kind's word, singular and lower case -> its BM25 token
        dept_words: set[str] = set()  # a department's words, singular and lower case
        level_names: set[str] = set()  # every category level's words, singular and lower case
        level_words: dict[str, list[str]] = {}  # a catalog has few distinct levels: each is read once
        for i, p in enumerate(self_products := list(products)):
            if not p.category:
                continue  # a catalog without categories (CrowdFlower) has no kinds
            for level in p.category:
                if level not in level_words:
                    level_words[level] = _level_head_words(level)
                    level_names.update(_singular(w.lower()) for w in level_words[level])
            mine = list(level_words[p.category[-1]])
            head = _title_head_word(p.title)
            if head is not None:
                mine.append(head)
            for w in mine:
                tok = tokenize(w)[-1]
                words.setdefault(_singular(w), tok)
                own.setdefault(tok, []).append(i)
            for level in p.category[:-1]:
                for w in level_words[level]:
                    dept.setdefault(tokenize(w)[-1], []).append(i)
                    dept_words.add(_singular(w.lower()))
        # a Chinese title's head (its last Chinese word before the colour and size): 空气炸锅 -> 炸锅
        zh_own: dict[str, list[int]] = {}
        for i, p in enumerate(self_products):
            head = _zh_title_head(p.titles.get("zh", "")) if p.category else None
            if head is not None:
                zh_own.setdefault(head, []).append(i)
        self._zh_own = {k: np.asarray(v, dtype=np.int64) for k, v in zh_own.items()}
        self.size = len(self_products)
        leaves: dict[tuple[str, ...], int] = {}
        # each row's shelf (its category path; -1 without one): the products beside the kind asked for
        self._shelf = np.asarray([leaves.setdefault(p.category, len(leaves)) if p.category else -1
                                  for p in self_products], dtype=np.int64)
        self._leaves = leaves
        self._own = {k: np.unique(np.asarray(v, dtype=np.int64)) for k, v in own.items()}
        self._dept = {k: np.unique(np.asarray(v, dtype=np.int64)) for k, v in dept.items()}
        self._words = words
        self._names = frozenset(words) | dept_words  # the shop's own words for kinds and departments
        self._level_names = frozenset(level_names)
        self._category_tokens = frozenset(t for w in level_names for t in tokenize(w)[-1:])
        self._centroids: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._read: dict[str, np.ndarray | None] = {}  # text -> rows (see rows)
        self._renamed: dict[str, tuple[str, ...]] = {}  # text -> the shop's word for its kind (see shop_words)
        self._titles = [p.title.lower() for p in self_products] if own else None
        # each row's title and category words, read only to narrow a Chinese compound's kind (电脑包: the bags
        # filed under Computer Accessories), so built on first use
        self._products = self_products
        self._words_cache: list[frozenset[str]] | None = None

    def __bool__(self) -> bool:
        return bool(self._own)

    def vocabulary(self) -> frozenset[str]:
        """Every token that names a kind or a department."""
        return frozenset(self._own) | frozenset(self._dept)

    def rows(self, text: str) -> np.ndarray | None:
        """Rows of the kind of product ``text`` asks for (sorted, not to be changed), or None when its head
        names no kind of this catalog. One chat turn asks for the same text several times (the colour filter,
        the chat's category, the ranking): it is read once."""
        if text in self._read:
            return self._read[text]
        if len(self._read) >= READ_CACHE:
            self._read.clear()
            self._renamed.clear()
        found = self._read[text] = self._rows(text)
        return found

    def shop_words(self, text: str) -> tuple[str, ...]:
        """The shop's own word for the kind ``text`` names in other words, as BM25 tokens ("a new telly": tv;
        "a flask for tea": bottle), for the search to look for as well; empty where the request uses the
        shop's word or names no kind."""
        self.rows(text)
        return self._renamed.get(text, ())

    def _rows(self, text: str) -> np.ndarray | None:
        # a Chinese request's first clause that names a kind of this shop (孩子快三岁了，想给他买点…玩具: the toys)
        if not has_cjk(text):
            return self._rows_for_english(text)
        return next((r for head, before in _chinese_heads(text) if (r := self._rows_for_head(head, before)) is not None),
                    None)

    def _rows_for_english(self, text: str) -> np.ndarray | None:
        heads = query_heads(text)
        if not heads:
            return None
        found = self._narrowed(text, heads[0], self._rows_for(heads))
        if found is not None and heads[0] in self._category_tokens:
            return found
        # a name the shop does not use: what else it is called, or what kind of thing it is (frock: dress;
        # cagoule: a parka, a jacket), read from the word as written, not its stem
        word = _head_word(text, heads[0])
        if word is None or word in _VAGUE:
            return found
        if found is None:
            found, name = self._rows_for_thesaurus(default_thesaurus().names(word))
            if name is not None:
                self._renamed[text] = tuple(tokenize(name))
            return found
        # a name only titles use, for the shelf a word of it names: "suitcase" is one Lego set's title and the
        # luggage shelf's kind
        shelf, _ = self._rows_for_thesaurus(default_thesaurus().names(word), shelves=True)
        return found if shelf is None else np.union1d(found, shelf)

    def _narrowed(self, text: str, head: str, found: np.ndarray | None) -> np.ndarray | None:
        """An English head narrowed by the word just before it, as a Chinese one is: to the products of the kind
        whose title or category holds it ("gaming laptop": the gaming laptops); where none does and the word names
        goods, to those of the kind's department ("bike accessories": the bike helmets, locks and lights of
        Sports & Outdoors, not the running accessories)."""
        if found is None or self._words_of is None:
            return found
        words = _ASCII_WORD.findall(_HEAD_END.split(f" {text} ", maxsplit=1)[0])
        toks = [t for w in words for t in tokenize(w)]
        if len(toks) < 2 or toks[-1] != head or toks[-2] == head:
            return found
        before = toks[-2]
        narrow = found[[before in self._words_of[i] for i in found]]
        if not narrow.size and default_thesaurus().names(words[-2]):
            around = self._around(found)
            narrow = around[[before in self._words_of[i] for i in around]]
        return narrow if narrow.size else found

    def _rows_for_head(self, head: str, before: str | None = None) -> np.ndarray | None:
        if not has_cjk(head):
            return self._rows_for([head])
        if head in self._zh_own:  # the shop's own Chinese titles name the kind
            return self._zh_own[head]
        lex = default_lexicon()
        if lex.knows(head):
            # the word before narrows it, to the products of the kind or its department that hold it (游戏笔记本:
            # "game", the gaming laptops beside the notebooks)
            front = frozenset(t for g in lex.glosses(before) for t in tokenize(g)) if before else frozenset()
            return self._rows_for_glosses(lex.nouns(head), front, department=True)
        # a compound the dictionary does not know whole is right-headed: its last word names the kind (小喇叭:
        # 喇叭, 内存卡: 卡, 电脑包: 包, read past its first senses: "bag") and the words before it narrow it
        # (电脑包: the bags filed under Computer Accessories; 芭比娃娃: the dolls, not the baby things)
        parts = lex.split(head)
        last = parts[-1] if parts and head.endswith(parts[-1]) else head[-1]
        front = frozenset(t for part in parts if part != last for g in lex.glosses(part) for t in tokenize(g))
        found = self._rows_for_glosses(lex.nouns(last), front)
        if found is None:
            found = self._rows_for_glosses(lex.nouns(last, rare=True), front)
        # a last word that names nothing the shop sells leaves the clue to the words before it (儿童读物:
        # "child" ... "reading material")
        return found if found is not None else self._rows_for_glosses(lex.glosses(head))

    def _rows_for_glosses(self, glosses: Sequence[str], front: frozenset[str] = frozenset(),
                          department: bool = False) -> np.ndarray | None:
        """Rows of the kind a Chinese word's ``glosses`` name: the head of its first one that names a kind of
        this shop (the dictionary lists common senses first: 行李箱 "suitcase" before "overhead bin"), with
        the shop's words for it (retrieval.lexicon.RELATED), narrowed to the products whose title holds the
        whole gloss when some do (睡袋 "sleeping bag": sleeping bags, not handbags). With ``front`` (the English
        words of a compound's first part), the first sense whose rows hold one of them in their title or
        category wins (娃娃 is "baby" first, "doll" third: 芭比娃娃 is a doll); else the first sense with rows."""
        first: np.ndarray | None = None
        for gloss in glosses:
            toks = tokenize(gloss)
            if not toks:
                continue
            heads = [toks[-1]] + [t for r in RELATED.get(gloss, ()) for t in tokenize(r)[-1:]]
            found = self._rows_for(heads)
            if found is None:
                continue
            if " " in gloss and self._titles is not None:
                exact = found[[gloss in self._titles[i] for i in found]]
                if exact.size:
                    found = exact
            if not front or self._words_of is None:
                return found
            narrow = found[[bool(front & self._words_of[i]) for i in found]]
            if not narrow.size and department:
                around = self._around(found)
                narrow = around[[bool(front & self._words_of[i]) for i in around]]
            if narrow.size:
                return narrow
            if first is None:
                first = found
        if first is None:  # a longer name for one of the shop's kinds: 喇叭 "loudspeaker" for speakers
            first = next((r for g in glosses if g.split() and (r := self._ends_in_kind(g.split()[-1])) is not None),
                         None)
        return first

    def _rows_for_thesaurus(self, names: Sequence[str], shelves: bool = False) -> tuple[np.ndarray | None, str | None]:
        """Rows of the first of ``names`` (retrieval.thesaurus: other and broader names of a word the shop does
        not use) that the shop uses, and that name: a kind or department of its own (frock: dress; flask:
        bottle); a name of several words only where titles of the kind its last word names hold it whole (lego:
        "lego set"; couch: no "flat coat"). With ``shelves``, only single words that name a category level, the
        narrowest of them (suitcase: "bag" and "luggage", the luggage)."""
        narrowest: tuple[np.ndarray | None, str | None] = (None, None)
        for name in names:
            last = name.split()[-1]
            if _singular(last) not in self._names:
                continue  # the shop's words, not their stems ("fitting" is no "fitness")
            if shelves and (" " in name or _singular(last) not in self._level_names):
                continue
            tok = tokenize(last)[-1:]
            if not tok:
                continue
            found = self._exact(tok[0])
            if found is None:
                found = self._department(tok[0])
            if found is not None and " " in name:
                found = found[[name in self._titles[i] for i in found]] if self._titles is not None else found[:0]
                found = found if found.size else None
            if found is not None and not shelves:
                return found, name
            if found is not None and (narrowest[0] is None or found.size < narrowest[0].size):
                narrowest = found, name
        return narrowest

    def _around(self, rows: np.ndarray) -> np.ndarray:
        """Every row of the departments (category paths less their last level) that ``rows`` are filed in."""
        paths = {sh: path for path, sh in self._leaves.items()}
        depts = {paths[int(sh)][:-1] for sh in np.unique(self._shelf[rows]) if sh >= 0 and len(paths[int(sh)]) > 1}
        shelves = [sh for path, sh in self._leaves.items() if path[:-1] in depts]
        return np.flatnonzero(np.isin(self._shelf, shelves))

    @property
    def _words_of(self) -> list[frozenset[str]] | None:
        if self._words_cache is None and self._titles is not None:
            self._words_cache = [frozenset(tokenize(" ".join((p.title, *p.category)))) for p in self._products]
        return self._words_cache

    def beside(self, kind: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """1.0 for each of ``rows`` (candidates of one search) on a shelf (category path) that holds a row of
        ``kind``, else 0.0: the camping gear beside the only two sleeping bags. Reads the candidates only, not
        the catalog."""
        shelves = np.unique(self._shelf[kind])
        return np.isin(self._shelf[rows], shelves[shelves >= 0]).astype(np.float32)

    def near(self, key: str, vectors: np.ndarray, query: np.ndarray, rows: np.ndarray,
             encode: Callable[[list[str]], np.ndarray] | None = None) -> np.ndarray | None:
        """1.0 for each of ``rows`` on the shelf nearest ``query`` (see :meth:`nearest_shelf`), else 0.0; None
        in a catalog without categories."""
        best = self._nearest(key, vectors, query, encode)
        return None if best is None else (self._shelf[rows] == best).astype(np.float32)

    def nearest_shelf(self, key: str, vectors: np.ndarray, query: np.ndarray,
                      encode: Callable[[list[str]], np.ndarray] | None = None) -> np.ndarray | None:
        """Rows of the shelf nearest ``query``: "moisturiser for dry skin" -> Beauty > Skincare. A shelf is
        known by its products' mean vector (``vectors``: one encoder's title view, rows aligned with the
        catalog; ``key`` names it) and, with ``encode`` (that encoder, for passages), by its name as well
        ("Electronics > Headphones"): requests that describe a situation match a shelf's name a little
        better than its titles. None in a catalog without categories."""
        best = self._nearest(key, vectors, query, encode)
        return None if best is None else np.flatnonzero(self._shelf == best)

    def _nearest(self, key: str, vectors: np.ndarray, query: np.ndarray,
                 encode: Callable[[list[str]], np.ndarray] | None) -> int | None:
        if key not in self._centroids:
            shelves = np.unique(self._shelf[self._shelf >= 0])
            if not shelves.size:
                return None
            v = np.asarray(vectors, dtype=np.float32)
            cents = np.stack([v[self._shelf == sh].mean(axis=0) for sh in shelves])
            cents /= np.maximum(np.linalg.norm(cents, axis=1, keepdims=True), 1e-9)
            if encode is not None:
                paths = {sh: p for p, sh in self._leaves.items()}
                names = np.asarray(encode([" > ".join(paths[int(sh)]) for sh in shelves]), dtype=np.float32)
                names /= np.maximum(np.linalg.norm(names, axis=1, keepdims=True), 1e-9)
                cents = cents + names
            self._centroids[key] = (shelves, cents)
        shelves, cents = self._centroids[key]
        if not shelves.size:
            return None
        return int(shelves[int(np.argmax(cents @ np.asarray(query, dtype=np.float32)))])

    def _rows_for(self, heads: Sequence[str]) -> np.ndarray | None:
        for tier in (self._exact, self._compound, self._department, self._ends_in_kind):
            # (_ends_in_kind reads a token here: "sportswatch"; a Chinese gloss tries it with its own word)
            found = [r for h in heads if (r := tier(h)) is not None]
            if found:
                return found[0] if len(found) == 1 else np.unique(np.concatenate(found))
        return None

    def _exact(self, head: str) -> np.ndarray | None:
        found = self._own.get(head)
        if found is None and head in self._words:  # a word whose plural the catalog uses (child: "Children's")
            found = self._own.get(self._words[head])
        dept = self._dept.get(head)
        if found is not None and dept is not None and np.isin(found, dept).all():
            # the department's own name: every shoe, not only those titled "... Shoe" (boots and sandals too)
            return dept
        return found

    def _department(self, head: str) -> np.ndarray | None:
        return self._dept.get(head)

    def _ends_in_kind(self, head: str) -> np.ndarray | None:
        """A head that is a longer name for one of the shop's kinds: "loudspeaker" for speakers, "sportswatch"."""
        return self._suffix_rows(head, lambda h, w: len(h) - len(w) >= MIN_COMPOUND_PART
                                 and len(w) > MIN_COMPOUND_PART and h.endswith(w))

    def _suffix_rows(self, head: str, matches: Callable[[str, str], bool]) -> np.ndarray | None:
        """The rows of every kind word ``w`` of the shop for which ``matches(head, w)`` (both singular, lower case);
        None for a head that is not one plain word."""
        if not head.isalpha() or not head.isascii():
            return None
        h = _singular(head.lower())
        toks = [tok for w, tok in self._words.items() if matches(h, w)]
        return np.unique(np.concatenate([self._own[t] for t in toks])) if toks else None

    def _compound(self, head: str) -> np.ndarray | None:
        rows = self._suffix_rows(head, lambda h, w: len(w) - len(h) >= MIN_COMPOUND_PART and w.endswith(h))
        if rows is None:
            return None
        dept = self._dept.get(head)
        if dept is None:
            return rows
        # "book" names the books department: a notebook is no book
        inside = np.intersect1d(rows, dept)
        return inside if inside.size else None
