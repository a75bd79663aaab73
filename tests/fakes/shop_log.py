"""A synthetic shop whose shoppers browse in an order that only a sequence model can learn.

Every category has ``m`` *starter* products (what a shopper comes for), ``hubs`` *bestsellers* that almost
every shopper of the category looks at next, in order, and ``m`` *picks*. A shopper who started with
starter ``i`` ends with pick ``i``, four steps later. So the next product is decided by something said four
steps back: item co-occurrence (a window of three positions, as the built-in recommender counts it) sees
every pick of the category next to the bestsellers equally, popularity sees only the bestsellers, and a
model of the whole history can tell which pick comes. Titles do not give the pairing away (numbers are
shuffled), so content similarity cannot either.

The log is written through a real :class:`bot.store.database.Store` with a fake clock: clicks, details views,
add-to-cart and purchases, plus thumbs down on random products (not positives), spread over 60 days.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.store.database import Store
from bot.store.records import TurnRecord
from tests.conftest import HEADER, write_catalog

START = datetime(2026, 6, 1, tzinfo=UTC)


@dataclass
class Shop:
    categories: int = 4
    m: int = 4
    hubs: int = 3
    seed: int = 0
    skus: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.skus = [self.sku(c, k, i) for c in range(self.categories)
                     for k, n in (("start", self.m), ("hub", self.hubs), ("pick", self.m)) for i in range(n)]

    @staticmethod
    def sku(c: int, kind: str, i: int) -> str:
        return f"C{c}-{kind.upper()}{i}"

    def journey(self, c: int, i: int) -> list[str]:
        return [self.sku(c, "start", i), *(self.sku(c, "hub", h) for h in range(self.hubs)), self.sku(c, "pick", i)]

    def catalog_rows(self) -> list[tuple[str, ...]]:
        rng = random.Random(self.seed)
        numbers = list(range(100, 100 + len(self.skus)))
        rng.shuffle(numbers)
        names = ["Lantern", "Kettle", "Backpack", "Blanket", "Stove", "Compass", "Tent", "Mug"]
        rows: list[tuple[str, ...]] = []
        for sku, n in zip(self.skus, numbers, strict=True):
            c = int(sku[1:].split("-")[0])
            rows.append((sku, f"{names[c % len(names)]} model {n}", "", "Synthetic product.",
                         f"Outdoor > {names[c % len(names)]}s", "Acme", "25.00", "10", "", "", ""))
        return rows

    def write_catalog(self, path: Path) -> Path:
        return write_catalog(path, self.catalog_rows(), HEADER)


class Clock:
    def __init__(self, at: datetime = START) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def clocked_store(db: Path, buffer: Path) -> tuple[Store, Clock]:
    clock = Clock()
    return Store(f"sqlite:///{db}", buffer, clock=clock, retry_interval=0), clock


def journeys(shop: Shop, shoppers: int, *, seed: int = 1, days: int = 60, noise: float = 0.05
             ) -> Iterator[tuple[datetime, str, str, str]]:
    """(time, user, sku, kind) of every shopper's journey, in time order."""
    rng = random.Random(seed)
    events: list[tuple[datetime, str, str, str]] = []
    for u in range(shoppers):
        c, i = rng.randrange(shop.categories), rng.randrange(shop.m)
        t = START + timedelta(seconds=rng.uniform(0, days * 86400))
        path = shop.journey(c, i)
        for k, sku in enumerate(path):
            if 0 < k < len(path) - 1 and rng.random() < noise:
                sku = shop.sku(rng.randrange(shop.categories), "hub", rng.randrange(shop.hubs))
            last = k == len(path) - 1
            kind = rng.choice(["purchase", "add_to_cart"]) if last else rng.choice(["click", "details", "click"])
            events.append((t, f"shopper{u}", sku, kind))
            if rng.random() < 0.1:  # a thumbs down on something else: never a positive
                events.append((t + timedelta(seconds=20), f"shopper{u}", rng.choice(shop.skus), "thumb_down"))
            t += timedelta(minutes=rng.uniform(1, 5))
    events.sort()
    yield from events


def write_log(store: Store, clock: Clock, events: Iterator[tuple[datetime, str, str, str]],
              on_event: Callable[[str, str, str], None] | None = None) -> int:
    """Write the events through the store's public methods (a details view is a logged details turn)."""
    n = 0
    for t, user, sku, kind in events:
        n += 1
        clock.at = t
        if kind == "details":
            store.log(TurnRecord(uuid.uuid4().hex, user, f"tell me about {sku}", "...", intent="details",
                                 shown=[(sku, 1, None)]))
        else:
            store.feedback(user, kind, sku=sku)
        if on_event is not None:
            on_event(user, sku, kind)
    return n


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.fakes.shop_log DATA_DIR``: the catalog (DATA_DIR/catalog.csv) and the log
    (DATA_DIR/shopbot.db) of the synthetic shop, for ``shopbot --data-dir DATA_DIR train recommender``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m tests.fakes.shop_log", description=main.__doc__)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--shoppers", type=int, default=300)
    ap.add_argument("--categories", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    shop = Shop(categories=args.categories)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    catalog = shop.write_catalog(args.data_dir / "catalog.csv")
    store, clock = clocked_store(args.data_dir / "shopbot.db", args.data_dir / "buffer")
    n = write_log(store, clock, journeys(shop, args.shoppers, seed=args.seed))
    store.close()
    print(f"{len(shop.skus)} products in {catalog}, {n} events from {args.shoppers} shoppers in "
          f"{args.data_dir / 'shopbot.db'}; now: SHOPBOT_CATALOG={catalog} shopbot --data-dir {args.data_dir} "
          "train recommender")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
