"""Simulated shoppers for demos and tests of the feedback loop: they search, open, rate and buy through the
real dialogue manager, so the log they leave is exactly what real shoppers would leave.

The simulated world hides what real shops also cannot see in their catalog:

* **appeal**: every product has a hidden quality (normal, fixed by the seed). Among products that match a
  need equally well, shoppers open and buy the appealing ones; the catalog text says nothing about it, so
  the hybrid search ranks them by wording alone. A ranker that learns from behaviour can find it.
* **needs and journeys**: a shopper has a persona (a few departments) and moves between product kinds the
  way real shoppers do (a phone, then a case, then a charger; running shoes, then running accessories), by
  a transition table the recommender never sees.
* **personal taste**: a favourite colour and a budget that make some results more tempting.

A need becomes a query in the shopper's words (English, sometimes Chinese; "black running shoes", "coat
under $80"). The graded relevance of a product to a need (0-3) is the ground truth that ``evaluate_search``
uses on held-out needs, never shown to the assistant. Behaviour is a cascade: the shopper reads results top
down, opens a product with a probability that grows with its relevance, rates what they opened, buys the
best, asks for the next page when nothing suits.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from bot.dialogue.replies import Event, Reply
from model.training.common import ndcg_at
from retrieval.catalog import Product
from retrieval.rerank import leaf

__all__ = ["Need", "SimStats", "World", "evaluate_search", "run_shoppers"]

# What shoppers call each kind of product (the leaf of the demo catalog's category path); Chinese where the
# demo catalog has Chinese titles for the kind.
WORDS: dict[str, tuple[list[str], list[str]]] = {
    "apparel > coats": (["coat", "winter coat", "warm coat"], ["外套", "冬天穿的外套"]),
    "apparel > dresses": (["dress", "summer dress"], ["连衣裙"]),
    "apparel > jackets": (["jacket", "light jacket"], ["夹克"]),
    "apparel > jeans": (["jeans", "denim jeans"], ["牛仔裤"]),
    "apparel > sweaters": (["sweater", "knit sweater"], ["毛衣"]),
    "apparel > t-shirts": (["t-shirt", "cotton tee"], ["T恤"]),
    "bags > backpacks": (["backpack", "daypack"], ["双肩背包"]),
    "bags > handbags": (["handbag", "shoulder bag"], ["手提包"]),
    "bags > luggage": (["suitcase", "luggage"], ["行李箱"]),
    "beauty > hair care": (["shampoo", "hair care"], []),
    "beauty > makeup": (["lipstick", "makeup"], ["口红"]),
    "beauty > skincare": (["face cream", "moisturizer"], ["面霜"]),
    "books > children's": (["children's book", "picture book"], ["儿童读物"]),
    "books > fiction": (["novel", "fiction book"], ["小说"]),
    "books > non-fiction": (["non-fiction book", "history book"], []),
    "computer accessories > keyboards": (["keyboard", "mechanical keyboard"], ["键盘"]),
    "computer accessories > laptop bags": (["laptop bag", "laptop sleeve"], ["电脑包"]),
    "computer accessories > memory cards": (["memory card", "sd card"], ["存储卡"]),
    "computer accessories > mice": (["wireless mouse", "mouse"], ["无线鼠标"]),
    "computer accessories > usb hubs": (["usb hub", "usb-c hub"], []),
    "electronics > cameras": (["camera", "digital camera"], ["相机"]),
    "electronics > headphones": (["headphones", "wireless earbuds"], ["耳机"]),
    "electronics > smartwatches": (["smartwatch", "fitness watch"], ["智能手表"]),
    "electronics > speakers": (["bluetooth speaker", "speaker"], ["蓝牙音箱"]),
    "electronics > tvs": (["tv", "4k television"], ["电视"]),
    "grocery > coffee & tea": (["green tea", "coffee beans"], ["绿茶"]),
    "grocery > pantry": (["olive oil", "pasta"], []),
    "grocery > snacks": (["snacks", "chocolate"], ["零食"]),
    "home > bedding": (["duvet", "bedding set"], ["床上用品"]),
    "home > decor": (["vase", "wall decor"], []),
    "home > lighting": (["desk lamp", "floor lamp"], ["台灯"]),
    "kitchen > appliances": (["blender", "air fryer"], []),
    "kitchen > coffee": (["coffee machine", "espresso maker"], ["咖啡机"]),
    "kitchen > cookware": (["frying pan", "cookware set"], ["炒锅"]),
    "laptops > gaming laptops": (["gaming laptop"], ["游戏笔记本"]),
    "laptops > notebooks": (["laptop", "notebook computer"], ["笔记本电脑"]),
    "phones > cases": (["phone case", "iphone case"], ["手机壳"]),
    "phones > chargers": (["phone charger", "fast charger"], ["手机充电器"]),
    "phones > screen protectors": (["screen protector", "tempered glass"], ["钢化膜"]),
    "phones > smartphones": (["smartphone", "new phone"], ["手机", "我想买一款新的手机"]),
    "shoes > boots": (["boots", "leather boots"], ["靴子"]),
    "shoes > hiking": (["hiking boots", "hiking shoes"], ["登山鞋"]),
    "shoes > running": (["running shoes", "trainers"], ["跑步鞋"]),
    "shoes > sandals": (["sandals"], ["凉鞋"]),
    "shoes > sneakers": (["sneakers", "casual sneakers"], ["运动鞋"]),
    "sports & outdoors > camping": (["camping tent", "sleeping bag"], ["帐篷"]),
    "sports & outdoors > cycling": (["bike helmet", "cycling gloves"], []),
    "sports & outdoors > fitness": (["yoga mat", "dumbbells"], ["健身瑜伽垫"]),
    "sports & outdoors > running accessories": (["running belt", "running socks"], []),
    "toys > board games": (["board game"], ["桌游"]),
    "toys > building sets": (["lego building set", "building blocks"], ["乐高积木"]),
    "toys > dolls": (["doll"], ["娃娃"]),
}
#: Where shoppers go next, beyond their own department: the hidden part of the journeys.
NEXT: dict[str, list[str]] = {
    "phones > smartphones": ["phones > cases", "phones > chargers", "phones > screen protectors"],
    "phones > cases": ["phones > chargers", "phones > screen protectors"],
    "laptops > notebooks": ["computer accessories > mice", "computer accessories > laptop bags",
                            "computer accessories > usb hubs"],
    "laptops > gaming laptops": ["computer accessories > keyboards", "computer accessories > mice",
                                 "electronics > headphones"],
    "electronics > cameras": ["computer accessories > memory cards", "bags > backpacks"],
    "shoes > running": ["sports & outdoors > running accessories", "electronics > smartwatches"],
    "shoes > hiking": ["sports & outdoors > camping", "bags > backpacks"],
    "sports & outdoors > camping": ["shoes > hiking", "home > lighting"],
    "kitchen > coffee": ["grocery > coffee & tea"],
    "apparel > coats": ["apparel > sweaters", "shoes > boots"],
    "apparel > dresses": ["shoes > sandals", "bags > handbags"],
}
CLICK = {0: 0.03, 1: 0.12, 2: 0.4, 3: 0.75}  # chance of opening an examined product, by relevance
EXAMINE = 0.85  # chance of reading on to the next result


@dataclass(frozen=True)
class Need:
    kind: str  # category leaf, lower case
    text: str  # what the shopper types
    colour: str | None = None
    max_price: float | None = None


@dataclass
class SimStats:
    shoppers: int = 0
    searches: int = 0
    pages: int = 0
    opened: int = 0
    thumbs_up: int = 0
    thumbs_down: int = 0
    purchases: int = 0
    queries: set[str] = field(default_factory=set)


def _colours(p: Product) -> list[str]:
    return [c.lower() for c in p.attributes.get("color", [])]


class World:
    """Products with hidden appeal, kinds with their queries, and the journey table, all from one seed."""

    def __init__(self, products: Sequence[Product], seed: int = 7) -> None:
        self.products = [p for p in products if leaf(p) in WORDS]
        self.by_sku = {p.sku: p for p in self.products}
        rng = np.random.default_rng(seed)
        self.appeal = {p.sku: float(a) for p, a in zip(self.products, rng.normal(size=len(self.products)), strict=True)}
        self.kinds: dict[str, list[Product]] = {}
        for p in self.products:
            self.kinds.setdefault(leaf(p), []).append(p)
        self.departments: dict[str, list[str]] = {}
        for k in self.kinds:
            self.departments.setdefault(k.split(" > ")[0], []).append(k)
        self.seed = seed

    # ---------------------------------------------------------------------------------- the truth

    def relevance(self, need: Need, p: Product) -> int:
        if leaf(p) != need.kind:
            return 0
        fits = (need.colour is None or need.colour in _colours(p)) and (need.max_price is None or p.price <= need.max_price)
        if not fits:
            return 1
        a = self.appeal.get(p.sku, 0.0)
        return 3 if a > 0.4 else (2 if a > -0.6 else 1)

    # ---------------------------------------------------------------------------------- needs

    def need(self, kind: str, rng: random.Random, colour: str | None = None, zh_share: float = 0.15) -> Need:
        en, zh = WORDS[kind]
        if zh and rng.random() < zh_share:
            return Need(kind, rng.choice(zh))
        noun = rng.choice(en)
        items = self.kinds[kind]
        r = rng.random()
        if r < 0.3:
            colours = sorted({c for p in items for c in _colours(p)})
            c = colour if colour in colours else (rng.choice(colours) if colours else None)
            if c:
                return Need(kind, f"{c} {noun}", colour=c)
        if r < 0.5:
            prices = sorted(p.price for p in items)
            cap = prices[len(prices) // 2]
            cap = float(max(10, math.ceil(cap / 10.0) * 10))
            return Need(kind, f"{noun} under ${cap:.0f}", max_price=cap)
        return Need(kind, noun)

    def next_kind(self, kind: str, persona: Sequence[str], rng: random.Random) -> str:
        if kind in NEXT and rng.random() < 0.7:
            return rng.choice(NEXT[kind])
        dept = rng.choice(list(persona))
        return rng.choice(self.departments[dept])

    def held_out(self, n: int, seed: int) -> list[Need]:
        """Needs to judge search on, drawn with their own seed (every kind appears)."""
        rng = random.Random(seed)
        kinds = sorted(self.kinds)
        out: list[Need] = []
        seen: set[str] = set()
        while len(out) < n:
            need = self.need(kinds[len(out) % len(kinds)], rng, zh_share=0.1)
            if need.text not in seen:
                seen.add(need.text)
                out.append(need)
        return out


def evaluate_search(search: Callable[[str], Sequence[str]], world: World, needs: Sequence[Need], k: int = 10) -> float:
    """Mean NDCG@k of ``search(text) -> SKUs`` over ``needs``, judged by the hidden relevance of every
    product (linear gains 0-3, ideal order over the whole catalog)."""
    scores = []
    for need in needs:
        ranked = list(search(need.text))[:k]
        gains = [world.relevance(need, world.by_sku[s]) if s in world.by_sku else 0 for s in ranked]
        pool = [world.relevance(need, p) for p in world.kinds[need.kind]]
        scores.append(ndcg_at(gains, pool, k=k))
    return float(np.mean(scores)) if scores else 0.0


def _button(replies: Sequence[Reply], prefix: str) -> str | None:
    for r in replies:
        for b in r.buttons:
            if b.payload.startswith(prefix):
                return b.payload
    return None


def run_shoppers(
    handle: Callable[[Event], list[Reply]],
    report_purchase: Callable[[str, str], None],
    world: World,
    *,
    shoppers: int = 100,
    needs_per_shopper: int = 5,
    seed: int = 11,
    avoid: set[str] | None = None,
    progress: bool = False,
    channel: str = "sim",
) -> SimStats:
    """Shoppers chat through ``handle`` (the assistant's dialogue); ``report_purchase(shopper, sku)`` records
    a purchase the way a shop's order system would. Query texts in ``avoid`` (held-out ones) are not typed."""
    rng = random.Random(seed)
    stats = SimStats()
    depts = sorted(world.departments)
    bar = tqdm(total=shoppers, desc="simulated shoppers", unit="shopper", disable=not progress)
    for n in range(shoppers):
        user = f"shopper{seed}-{n}"
        persona = rng.sample(depts, k=min(2, len(depts)))
        colour = rng.choice(["black", "white", "blue", "red", "green", "grey", "pink", None])
        budget = rng.choice([0.7, 1.0, 1.5])  # how far past a typical price they will go
        kind = rng.choice(world.departments[persona[0]])
        stats.shoppers += 1
        for _ in range(needs_per_shopper):
            need = world.need(kind, rng, colour=colour)
            tries = 0
            while avoid and need.text in avoid and tries < 5:
                need, tries = world.need(kind, rng, colour=colour), tries + 1
            if avoid and need.text in avoid:
                kind = world.next_kind(kind, persona, rng)
                continue
            _shop(handle, report_purchase, world, need, user, channel, rng, colour, budget, stats)
            kind = world.next_kind(kind, persona, rng)
        bar.update(1)
    bar.close()
    return stats


def _shop(handle: Callable[[Event], list[Reply]], report_purchase: Callable[[str, str], None], world: World,
          need: Need, user: str, channel: str, rng: random.Random, colour: str | None, budget: float,
          stats: SimStats) -> None:
    stats.searches += 1
    stats.queries.add(need.text)
    replies = handle(Event(user=user, channel=channel, text=need.text))
    typical = float(np.median([p.price for p in world.kinds[need.kind]]))
    for _page in range(2):
        stats.pages += 1
        cards = [c for r in replies for c in r.cards]
        best: tuple[int, str] | None = None
        for c in cards:
            p = world.by_sku.get(c.sku)
            if p is None:
                continue
            rel = world.relevance(need, p)
            chance = CLICK[rel] + (0.1 if colour and colour in _colours(p) else 0.0)
            chance *= 0.6 if p.price > typical * budget * 1.5 else 1.0
            if rng.random() < chance:
                stats.opened += 1
                details = handle(Event(user=user, channel=channel, payload=f"details:{c.sku}"))
                if rel >= 2 and rng.random() < 0.5:
                    up = _button(details, "up:")
                    if up:
                        handle(Event(user=user, channel=channel, payload=up))
                        stats.thumbs_up += 1
                elif rel <= 1 and rng.random() < 0.3:
                    down = _button(details, "down:")
                    if down:
                        handle(Event(user=user, channel=channel, payload=down))
                        stats.thumbs_down += 1
                if best is None or rel > best[0]:
                    best = (rel, c.sku)
            if rng.random() > EXAMINE:
                break
        if best is not None and best[0] >= 3 and rng.random() < 0.6:
            report_purchase(user, best[1])
            stats.purchases += 1
            return
        if best is not None and best[0] >= 2:
            return
        more = _button(replies, "more")
        if more is None:
            return
        replies = handle(Event(user=user, channel=channel, payload=more))


def describe(stats: SimStats) -> dict[str, Any]:
    return {"shoppers": stats.shoppers, "searches": stats.searches, "pages": stats.pages, "opened": stats.opened,
            "thumbs_up": stats.thumbs_up, "thumbs_down": stats.thumbs_down, "purchases": stats.purchases,
            "distinct_queries": len(stats.queries)}
