"""Personalised and complementary recommendations over the catalog and the shop's interaction log.

Interactions come in as plain rows ``(user, sku, kind, time)``; kinds are the feedback log's words
(``search-shown``, ``details``, ``click``, ``thumb_up``, ``thumb_down``, ``purchase``). Nothing here reads the
database: the caller (the dialogue, a training command) passes the rows, so the same code serves SQLite,
PostgreSQL and evaluation files.

Signals, each with the one-line reason a shopper sees:
- item-item co-occurrence in shoppers' sessions and co-purchases ("often bought with X"),
- content similarity through the search engine's dense title vectors ("because you looked at X"),
- the sequential next-item model when one is trained (retrieval/recommend/sequential.py),
- complements after a purchase: co-purchase rules learned from the log, then a category table written for
  the demo catalog (laptop -> mouse, bag, charger) ("goes with your X"),
- popularity with at most two products per category for a new shopper ("popular in Y").
Bought products and thumbed-down ones are never recommended; after buying a laptop the shopper is not
offered another laptop.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from retrieval.catalog import Product
from retrieval.recommend.cooccurrence import cooccurrence

if TYPE_CHECKING:
    # type hints only: retrieval.search loads faiss, which recommending never needs
    from retrieval.search import SearchEngine

# How much one interaction says about what the shopper likes.
KIND_WEIGHT: dict[str, float] = {
    "search-shown": 0.0,  # shown is not chosen: used for nothing but counts
    "shown": 0.0,
    "details": 1.0,
    "click": 1.0,
    "thumb_up": 2.0,
    "up": 2.0,
    "purchase": 3.0,
    "thumb_down": -2.0,
    "down": -2.0,
}
NEGATIVE = frozenset({"thumb_down", "down"})
PURCHASE = "purchase"

# Category -> what goes with it, for the demo catalog's categories (most specific key wins). Learned
# co-purchase rules come first; this table fills in for a shop whose log is still empty.
COMPLEMENTS: dict[str, tuple[str, ...]] = {
    "Laptops": ("Computer Accessories > Mice", "Computer Accessories > Laptop Bags", "Computer Accessories > Bags",
                "Phones > Chargers",
                "Computer Accessories > USB Hubs", "Computer Accessories > Keyboards"),
    "Phones > Smartphones": ("Phones > Cases", "Phones > Chargers", "Phones > Screen Protectors",
                             "Electronics > Headphones", "Computer Accessories > Memory Cards"),
    "Electronics > Cameras": ("Computer Accessories > Memory Cards", "Bags > Backpacks"),
    "Electronics > TVs": ("Electronics > Speakers",),
    "Electronics > Smartwatches": ("Phones > Chargers", "Electronics > Headphones"),
    "Electronics > Headphones": ("Phones > Chargers",),
    "Computer Accessories > Keyboards": ("Computer Accessories > Mice",),
    "Computer Accessories > Mice": ("Computer Accessories > Keyboards",),
    "Shoes > Running": ("Sports & Outdoors > Running Accessories", "Apparel > T-Shirts"),
    "Shoes > Hiking": ("Sports & Outdoors > Camping", "Bags > Backpacks"),
    "Shoes > Boots": ("Apparel > Coats",),
    "Apparel > Coats": ("Apparel > Sweaters", "Shoes > Boots"),
    "Apparel > Jackets": ("Apparel > Sweaters", "Apparel > Jeans"),
    "Apparel > Jeans": ("Apparel > T-Shirts", "Shoes > Sneakers"),
    "Apparel > Dresses": ("Bags > Handbags", "Shoes > Sandals"),
    "Kitchen > Coffee": ("Grocery > Coffee & Tea",),
    "Kitchen > Cookware": ("Grocery > Pantry", "Kitchen > Appliances"),
    "Kitchen > Appliances": ("Grocery > Pantry",),
    "Beauty > Makeup": ("Beauty > Skincare",),
    "Beauty > Skincare": ("Beauty > Makeup",),
    "Sports & Outdoors > Cycling": ("Bags > Backpacks", "Sports & Outdoors > Fitness"),
    "Sports & Outdoors > Camping": ("Shoes > Hiking", "Bags > Backpacks"),
    "Bags > Luggage": ("Bags > Backpacks",),
    "Toys > Building Sets": ("Toys > Board Games", "Books > Children's"),
    "Home > Bedding": ("Home > Decor", "Home > Lighting"),
}


class NextItemModel(Protocol):
    """What the recommender needs of a trained next-item model (``retrieval.recommend.sequential`` has one),
    as a Protocol so that neither recommender imports the other."""

    trained: bool

    def score(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """Scores of every model item as the next one after each history: (len(histories), n_items)."""
        ...


@dataclass(frozen=True)
class Interaction:
    user: str
    sku: str
    kind: str
    time: float  # seconds; only the order matters


@dataclass(frozen=True)
class Recommendation:
    product: Product
    score: float
    reason: str
    source: str  # "complement" | "sequence" | "co-occurrence" | "similar" | "popular"

    @property
    def sku(self) -> str:
        return self.product.sku


def as_interactions(rows: Iterable[Any]) -> list[Interaction]:
    """Rows as Interaction objects: accepts Interaction, (user, sku, kind, time) tuples or mappings."""
    out: list[Interaction] = []
    for r in rows:
        if isinstance(r, Interaction):
            out.append(r)
            continue
        if isinstance(r, Mapping):
            user, sku, kind, t = r.get("user"), r.get("sku"), r.get("kind"), r.get("time", 0.0)
        else:
            user, sku, kind, t = r
        if not sku or not kind:
            continue
        out.append(Interaction(str(user), str(sku), str(kind), _seconds(t)))
    return out


def _seconds(t: Any) -> float:
    if isinstance(t, datetime):
        return t.timestamp()
    if isinstance(t, str):
        try:
            return datetime.fromisoformat(t).timestamp()
        except ValueError:
            return 0.0
    return float(t or 0.0)


def category_key(p: Product, depth: int = 2) -> str:
    return " > ".join(p.category[:depth]) if p.category else ""


def complement_categories(p: Product, table: Mapping[str, Sequence[str]] = COMPLEMENTS) -> tuple[str, ...]:
    """The most specific table entry for the product's category path."""
    for depth in range(len(p.category), 0, -1):
        key = " > ".join(p.category[:depth])
        if key in table:
            return tuple(table[key])
    return ()


class Recommender:
    """Recommendations for one shopper from their interactions and everyone's log.

    ``engine`` (optional) gives content similarity through its dense title vectors; ``sequential`` (optional)
    is a trained next-item model whose item ids index ``products``.
    """

    def __init__(
        self,
        products: Sequence[Product],
        interactions: Iterable[Any] = (),
        *,
        engine: SearchEngine | None = None,
        sequential: NextItemModel | None = None,
        complements: Mapping[str, Sequence[str]] | None = None,
        per_category: int = 2,
        min_rule_support: int = 2,
    ) -> None:
        self.products = list(products)
        self.by_sku = {p.sku: i for i, p in enumerate(self.products)}
        self.engine = engine
        self.sequential = sequential
        self.table = dict(COMPLEMENTS if complements is None else complements)
        self.per_category = per_category
        self.min_rule_support = min_rule_support
        self._vectors = self._content_vectors()
        self._seq_rows: np.ndarray | None = None  # model item id -> product row (-1: not in the catalog)
        self.fit(interactions)

    def attach_sequential(self, model: NextItemModel, item_skus: Sequence[str] | None = None) -> None:
        """Use a trained next-item model; ``item_skus[i]`` is the SKU of its item ``i`` (default: the
        catalog order). Items the catalog no longer has are ignored."""
        self.sequential = model
        skus = item_skus if item_skus is not None else [p.sku for p in self.products]
        self._seq_rows = np.asarray([self.by_sku.get(str(s), -1) for s in skus], dtype=np.int64)

    # ------------------------------------------------------------------------------- learning

    def _content_vectors(self) -> np.ndarray | None:
        e = self.engine
        if e is None or not e.dense:
            return None
        d = e.dense.get("en") or next(iter(e.dense.values()))
        vecs = np.zeros((len(self.products), d.vectors.shape[1]), dtype=np.float32)
        for i, p in enumerate(self.products):
            j = e.by_sku.get(p.sku)
            if j is not None:
                vecs[i] = d.vectors[j]
        return vecs

    def fit(self, interactions: Iterable[Any]) -> Recommender:
        """Popularity, session co-occurrence and co-purchase rules from the whole log."""
        rows = sorted(as_interactions(interactions), key=lambda r: r.time)
        n = len(self.products)
        self.popularity = np.zeros(n, dtype=np.float64)
        sessions: dict[str, list[int]] = defaultdict(list)
        purchases: dict[str, list[int]] = defaultdict(list)
        for r in rows:
            i = self.by_sku.get(r.sku)
            w = KIND_WEIGHT.get(r.kind, 0.0)
            if i is None or w <= 0:
                continue
            self.popularity[i] += w
            if not sessions[r.user] or sessions[r.user][-1] != i:
                sessions[r.user].append(i)
            if r.kind == PURCHASE:
                purchases[r.user].append(i)
        self.sessions = dict(sessions)
        self.cooc = cooccurrence(list(sessions.values()), n, window=3)
        # co-purchases: item pairs bought by the same shopper, and category -> category rules
        self.copurchase: dict[int, Counter[int]] = defaultdict(Counter)
        cat_rules: dict[str, Counter[str]] = defaultdict(Counter)
        for items in purchases.values():
            for a_pos, a in enumerate(items):
                for b in items[a_pos + 1 :]:
                    if a == b:
                        continue
                    self.copurchase[a][b] += 1
                    self.copurchase[b][a] += 1
                    ca, cb = category_key(self.products[a]), category_key(self.products[b])
                    if ca != cb:
                        cat_rules[ca][cb] += 1
        self.rules = {
            c: tuple(k for k, v in cnt.most_common() if v >= self.min_rule_support) for c, cnt in cat_rules.items()
        }
        self.rules = {c: r for c, r in self.rules.items() if r}
        return self

    # ------------------------------------------------------------------------------- helpers

    def _ok(self, i: int, banned: set[int]) -> bool:
        return i not in banned and self.products[i].stock > 0

    def _diverse(self, ranked: Iterable[tuple[int, float, str, str]], k: int, banned: set[int]) -> list[Recommendation]:
        out: list[Recommendation] = []
        per_cat: Counter[str] = Counter()
        taken: set[int] = set()
        for i, score, reason, source in ranked:
            if i in taken or not self._ok(i, banned):
                continue
            cat = category_key(self.products[i])
            if per_cat[cat] >= self.per_category:
                continue
            per_cat[cat] += 1
            taken.add(i)
            out.append(Recommendation(self.products[i], float(score), reason, source))
            if len(out) == k:
                break
        return out

    def _popular_order(self) -> np.ndarray:
        rating = np.asarray([float((p.attr("rating") or ("0",))[0] or 0) for p in self.products])
        # logged popularity first, catalog rating breaks ties (and decides alone for a new shop)
        return np.lexsort((-rating, -self.popularity))

    def _similarity(self, anchors: Sequence[int]) -> np.ndarray | None:
        if self._vectors is None or not anchors:
            return None
        return np.asarray(self._vectors[list(anchors)] @ self._vectors.T)  # (A, n)

    def _because(self, anchor: int, bought: Sequence[int]) -> str:
        verb = "bought" if anchor in bought else "looked at"
        return f"because you {verb} {self.products[anchor].title}"

    # -------------------------------------------------------------------------------- public

    def popular(self, k: int = 5, exclude: Iterable[str] = ()) -> list[Recommendation]:
        """Popular products in stock, at most ``per_category`` per category: what a new shopper sees."""
        banned = {self.by_sku[s] for s in exclude if s in self.by_sku}
        return self._diverse(
            ((int(i), float(self.popularity[i]), f"popular in {self.products[i].category[-1] if self.products[i].category else 'the shop'}", "popular")
             for i in self._popular_order()),
            k,
            banned,
        )

    def complements(self, sku: str, k: int = 5, exclude: Iterable[str] = ()) -> list[Recommendation]:
        """What goes with a product the shopper bought: co-purchases, learned rules, then the category table."""
        a = self.by_sku.get(sku)
        if a is None:
            return []
        anchor = self.products[a]
        banned = {self.by_sku[s] for s in exclude if s in self.by_sku} | {a}
        own = category_key(anchor)
        cats = list(self.rules.get(own, ()))
        cats += [c for c in complement_categories(anchor, self.table) if c not in cats]
        sim = self._similarity([a])
        ranked: list[tuple[int, float, str, str]] = []
        for b, cnt in self.copurchase.get(a, Counter()).most_common():
            if category_key(self.products[b]) != own:
                ranked.append((b, 10.0 + cnt, f"often bought with {anchor.title}", "complement"))
        for rank, cat in enumerate(cats):
            members = [i for i, p in enumerate(self.products) if category_key(p) == cat or " > ".join(p.category) == cat]
            def key(i: int) -> float:
                s = float(sim[0, i]) if sim is not None else 0.0
                same_brand = 0.2 if anchor.brand and self.products[i].brand == anchor.brand else 0.0
                return s + same_brand + 0.05 * math.log1p(self.popularity[i])
            members.sort(key=lambda i: -key(i))
            # the best of each complement category first, then the second best of each, ...
            for depth, i in enumerate(members[:3]):
                ranked.append((i, 5.0 - depth - rank * 0.1, f"goes with your {anchor.title}", "complement"))
        ranked.sort(key=lambda t: -t[1])
        return self._diverse(ranked, k, banned)

    def liked(self, rows: Sequence[Interaction]) -> tuple[list[int], dict[int, float]]:
        """The shopper's liked catalog rows, newest first (thumbed-down ones left out), and each one's weight:
        the kind's weight, times 0.85 per step back in the history. ``rows`` oldest first."""
        disliked = {self.by_sku[r.sku] for r in rows if r.kind in NEGATIVE and r.sku in self.by_sku}
        weights: dict[int, float] = defaultdict(float)
        order: list[int] = []
        for age, r in enumerate(reversed(rows)):
            i = self.by_sku.get(r.sku)
            w = KIND_WEIGHT.get(r.kind, 0.0)
            if i is None or w <= 0:
                continue
            weights[i] += w * 0.85**age
            if i not in order:
                order.append(i)  # newest first
        return [i for i in order if i not in disliked], weights

    def for_user(
        self, history: Iterable[Any], k: int = 5, *, exclude: Iterable[str] = (), user: str | None = None
    ) -> list[Recommendation]:
        """Recommendations from one shopper's interactions (their rows of the log, any order)."""
        rows = sorted(as_interactions(history), key=lambda r: r.time)
        if user is not None:
            rows = [r for r in rows if r.user == user]
        banned = {self.by_sku[s] for s in exclude if s in self.by_sku}
        bought = [self.by_sku[r.sku] for r in rows if r.kind == PURCHASE and r.sku in self.by_sku]
        disliked = {self.by_sku[r.sku] for r in rows if r.kind in NEGATIVE and r.sku in self.by_sku}
        banned |= set(bought) | disliked
        # no second laptop: categories the shopper bought in and that have complements are done for now
        done_cats = {category_key(self.products[b]) for b in bought if complement_categories(self.products[b], self.table)
                     or category_key(self.products[b]) in self.rules}
        banned |= {i for i, p in enumerate(self.products) if category_key(p) in done_cats}

        liked, weights = self.liked(rows)
        if not liked:
            return self.popular(k, exclude=[self.products[i].sku for i in banned])

        picks: list[Recommendation] = []
        if bought:
            picks = self.complements(self.products[bought[-1]].sku, k=max(2, k // 2),
                                     exclude=[self.products[i].sku for i in banned])
            banned |= {self.by_sku[r.sku] for r in picks}

        n = len(self.products)
        score = np.zeros(n, dtype=np.float64)
        why: list[str] = [""] * n
        source: list[str] = [""] * n
        # co-occurrence with the shopper's items
        w_vec = np.zeros(n, dtype=np.float32)
        for i in liked:
            w_vec[i] = weights[i]
        co = np.asarray(self.cooc.T @ w_vec).ravel() if self.cooc.nnz else np.zeros(n)
        if co.max() > 0:
            co = co / co.max()
            score += co
        # content similarity with each liked item (newest weighs most)
        sim = self._similarity(liked[:10])
        best_anchor = np.full(n, liked[0], dtype=np.int64)
        if sim is not None:
            wt = np.asarray([weights[i] for i in liked[:10]])[:, None]
            contrib = sim * (wt / wt.max())
            best_anchor = np.asarray(liked[:10])[contrib.argmax(axis=0)]
            score += 0.8 * contrib.max(axis=0)
        elif self.sequential is None:
            # no vectors, no model: the liked items' categories stand in for similarity
            liked_cats = {category_key(self.products[i]) for i in liked}
            score += 0.5 * np.asarray([category_key(p) in liked_cats for p in self.products], dtype=np.float64)
        # the sequential model, when trained on this catalog's ids
        seq = self.sequential
        if seq is not None and seq.trained:
            if self._seq_rows is None:
                self.attach_sequential(seq)
            rows_ = self._seq_rows if self._seq_rows is not None else np.zeros(0, dtype=np.int64)
            model_id = {int(r): m for m, r in enumerate(rows_.tolist()) if r >= 0}
            hist = [model_id[i] for i in reversed(liked) if i in model_id]  # oldest first
            if hist:
                raw = seq.score([hist])[0].astype(np.float64)
                known = rows_ >= 0
                s = np.zeros(n, dtype=np.float64)
                z = (raw[known] - raw[known].mean()) / (raw[known].std() + 1e-9)
                s[rows_[known]] = z
                score += 0.5 * np.clip(s, 0, None)
        score += 0.05 * np.log1p(self.popularity) / (np.log1p(self.popularity.max()) + 1e-9)
        for i in liked:
            banned.add(i)  # already seen: recommend new things
        for j in np.flatnonzero(co > 0.3).tolist():
            anchors = [a for a in liked if self.cooc[a, j] > 0]
            a = anchors[0] if anchors else liked[0]
            why[j] = (f"often bought with {self.products[a].title}" if a in bought
                      else f"shoppers who looked at {self.products[a].title} also looked at it")
            source[j] = "co-occurrence"
        top = np.argsort(-score, kind="stable")[: 20 * k + len(banned)]
        ranked = [
            (int(i), float(score[i]),
             why[i] or self._because(int(best_anchor[i]), bought),
             source[i] or ("similar" if sim is not None else "sequence"))
            for i in top
        ]
        rest = self._diverse(ranked, k - len(picks), banned | {self.by_sku[r_.sku] for r_ in picks})
        return (picks + rest)[:k]
