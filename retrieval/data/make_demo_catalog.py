"""Generate the bundled demo catalog (retrieval/data/demo_catalog.csv), deterministically.

The catalog is synthetic and was written for this project: the product models, prices, stock levels,
descriptions and Chinese titles all come from the spec modules next to this script (_demo_*.py), and
one ``random.Random(42)`` decides the variations. Pure standard library; run from the project root:

    .venv/bin/python retrieval/data/make_demo_catalog.py
"""

from __future__ import annotations

import csv
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import _demo_home  # noqa: E402
import _demo_misc  # noqa: E402
import _demo_tech  # noqa: E402
import _demo_wear  # noqa: E402
from _demo_vocab import APPAREL_SIZES, BRAND_ZH, COLOURS, SHOE_SIZES, M, Sub  # noqa: E402

OUT = HERE / "demo_catalog.csv"
COLUMNS = ["sku", "title", "title_zh", "description", "category", "brand", "price", "currency", "stock",
           "color", "size", "material", "image_url", "rating"]
TOTAL = 1200
PREFIX = {
    "Electronics": "ELE", "Phones": "PHO", "Laptops": "LAP", "Computer Accessories": "CAC", "Apparel": "APP",
    "Shoes": "SHO", "Home": "HOM", "Kitchen": "KIT", "Beauty": "BEA", "Sports & Outdoors": "SPO", "Toys": "TOY",
    "Books": "BOO", "Grocery": "GRO", "Bags": "BAG",
}
SUBS: list[Sub] = [*_demo_tech.SUBS, *_demo_wear.SUBS, *_demo_home.SUBS, *_demo_misc.SUBS]
_SPACES = re.compile(r"\s+")
_CJK_ASCII = re.compile(r"([\u4e00-\u9fff])(?!T恤)([A-Za-z0-9])")
_DOUBLE_THE = re.compile(r"\b([Tt]he) The ")


@dataclass
class Family:
    """One product (model + option) sold in one or more colours; everything but colour is shared."""

    sub: Sub
    model: M
    opt: tuple[str, str, float] | None
    price: float
    colours: list[str | None]
    pool: tuple[str, ...]
    material: str = ""
    sizes: tuple[str, ...] = ()
    zh: bool = False
    desc: str = ""
    rating: float = 4.0


def _price(rng: random.Random, model: M, base: float, mult: float) -> float:
    """A shelf price: the model's base price times the option's multiplier, with a usual ending."""
    if model.lo == model.hi and mult == 1.0:
        return float(model.lo)
    raw = base * mult
    if raw >= 200:
        return round(raw / 10) * 10 - 0.01
    if raw >= 20:
        return int(raw) + rng.choice((0.99, 0.99, 0.99, 0.49, 0.0))
    return int(raw) + rng.choice((0.99, 0.99, 0.49))


def _sizes(rng: random.Random, kind: str | None, opt_en: str, model: M) -> tuple[str, ...]:
    if kind == "apparel":
        start = rng.randint(0, 2)
        length = rng.randint(3, len(APPAREL_SIZES) - start)
        apparel: tuple[str, ...] = APPAREL_SIZES[start : start + length]
        return apparel
    if kind == "socks":
        if "Socks" not in model.model:
            return ()
        return rng.choice((("S", "M", "L"), ("M", "L", "XL"), ("S", "M", "L", "XL")))
    if kind == "shoes":
        if "Women" in opt_en:
            lo, hi = 0, 6  # 36-42
        elif "Men" in opt_en:
            lo, hi = 3, 10  # 39-46
        else:
            lo, hi = 0, 10
        start = rng.randint(lo, hi - 4)
        end = rng.randint(start + 4, hi)
        sizes = list(SHOE_SIZES[start : end + 1])
        if len(sizes) > 5 and rng.random() < 0.3:  # a size sold through at the supplier
            sizes.pop(rng.randrange(1, len(sizes) - 1))
        return tuple(sizes)
    return ()


def _who(opt_en: str) -> str:
    if opt_en.startswith("Women"):
        return "women"
    if opt_en.startswith("Men"):
        return "men"
    if opt_en.startswith("Kids") or opt_en.startswith("Girls") or opt_en.startswith("Boys"):
        return "kids"
    return "everyone"


def _join(items: tuple[str, ...]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _families(rng: random.Random, sub: Sub) -> list[Family]:
    base = {model: rng.uniform(model.lo, model.hi) for model in sub.models}
    combos = [(model, opt) for model in sub.models for opt in (sub.opts or (None,))]
    rng.shuffle(combos)
    lo, hi = sub.price
    fams: list[Family] = []
    total = 0
    for model, opt in combos:
        if total >= sub.n:
            break
        mult = opt[2] if opt else 1.0
        price = round(_price(rng, model, base[model], mult), 2)
        if not lo <= price <= hi:
            if opt and mult != 1.0:
                continue  # this configuration does not exist at a sensible price
            price = min(max(price, lo), hi)
        pool = model.colors or sub.colors
        if pool:
            k = rng.choices((1, 2, 3), weights=sub.family)[0]
            colours: list[str | None] = list(rng.sample(pool, min(k, len(pool), sub.n - total)))
        else:
            colours = [None]
        opt_en = opt[0] if opt else ""
        fam = Family(sub, model, opt, price, colours, pool)
        fam.material = model.mat or (rng.choice(sub.mats) if sub.mats else "")
        fam.sizes = _sizes(rng, sub.sizes, opt_en, model)
        fam.zh = sub.zfmt is not None and rng.random() < sub.zh_share
        fam.desc = rng.choice(sub.desc)
        fam.rating = round(min(5.0, max(3.0, rng.gauss(4.3, 0.45))), 1)
        fams.append(fam)
        total += len(colours)
    for cap in (3, 4, 6, 14):  # too few models: give existing products more colours
        for fam in fams:
            while total < sub.n and len(fam.colours) < cap:
                spare = [c for c in fam.pool if c not in fam.colours]
                if not spare:
                    break
                fam.colours.append(rng.choice(spare))
                total += 1
    if total != sub.n:
        raise SystemExit(f"{sub.top} > {sub.sub}: only {total} of {sub.n} products; add models or options")
    return fams


def _clean(text: str) -> str:
    text = _DOUBLE_THE.sub(r"\1 ", text)  # "the The North Face ..."
    text = _CJK_ASCII.sub(r"\1 \2", text)  # "女款 Suttle Mountain"
    return _SPACES.sub(" ", text).strip()


def _rows(rng: random.Random) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    counters = dict.fromkeys(PREFIX.values(), 0)
    for sub in SUBS:
        prefix = PREFIX[sub.top]
        for fam in _families(rng, sub):
            opt_en, opt_zh = (fam.opt[0], fam.opt[1]) if fam.opt else ("", "")
            m = fam.model
            core = _clean(sub.fmt.format(brand=m.brand, model=m.model, opt=opt_en,
                                       as_opt=f", {opt_en}" if opt_en else ""))
            zh_core = ""
            if fam.zh and sub.zfmt:
                zh_core = _clean(sub.zfmt.format(bzh=BRAND_ZH.get(m.brand, m.brand), zh=m.zh or m.model, optzh=opt_zh))
            for colour in fam.colours:
                counters[prefix] += rng.randint(1, 3)
                ctx = {
                    "brand": m.brand, "model": m.model, "noun": sub.noun, "opt": opt_en, "who": _who(opt_en),
                    "as_opt": f", {opt_en}" if opt_en else "", "opt_l": opt_en.lower(),
                    "color": colour or "", "in_color": f" in {colour}" if colour else "", "material": fam.material,
                }
                first = _clean(fam.desc.format(**ctx))
                sentences = [first[0].upper() + first[1:]]
                if fam.material and "{material}" not in fam.desc:
                    sentences.append(f"Material: {fam.material}.")
                if fam.sizes:
                    sentences.append(f"Sizes: {_join(fam.sizes)}.")
                r = rng.random()
                stock = 0 if r < 0.09 else rng.randint(100, 500) if r < 0.2 else rng.randint(1, 60)
                sku = f"{prefix}-{counters[prefix]:05d}"
                rows.append({
                    "sku": sku,
                    "title": core + (f", {COLOURS[colour][0]}" if colour else ""),
                    "title_zh": zh_core + (f" {COLOURS[colour][1]}" if colour and zh_core else ""),
                    "description": " ".join(sentences),
                    "category": f"{sub.top} > {sub.sub}",
                    "brand": m.brand,
                    "price": f"{fam.price:.2f}",
                    "currency": "USD",
                    "stock": str(stock),
                    "color": colour or "",
                    "size": "|".join(fam.sizes),
                    "material": fam.material,
                    "image_url": f"https://images.example.com/demo/{sku}.jpg" if rng.random() < 0.5 else "",
                    "rating": f"{fam.rating:.1f}",
                })
    return rows


def main() -> None:
    rows = _rows(random.Random(42))
    skus = [r["sku"] for r in rows]
    titles = [r["title"] for r in rows]
    assert len(rows) == TOTAL, len(rows)
    assert len(set(skus)) == len(skus), "duplicate sku"
    dupes = sorted({t for t in titles if titles.count(t) > 1})
    assert not dupes, dupes[:5]
    with OUT.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} products to {OUT} ({OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
