"""Write demo_judgments.csv: graded English and Chinese queries over the demo catalog.

Written for this project to measure the multilingual path (CrowdFlower has no Chinese): each query
names what a shopper wants; products are graded by catalog facts (category, colour), 4 = exactly
that, 3 = that kind with a different colour, 2 = a close kind. Run from the project root:

    .venv/bin/python retrieval/data/make_demo_judgments.py
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from retrieval.catalog import load_catalog  # noqa: E402

# (english query, chinese query, {category path: grade}, colour or None)
NEEDS: list[tuple[str, str, dict[str, int], str | None]] = [
    ("new smartphone", "我想买一款新的手机", {"Phones > Smartphones": 4, "Phones > Cases": 2}, None),
    ("running shoes", "跑步鞋", {"Shoes > Running": 4, "Shoes > Sneakers": 2}, None),
    ("black running shoes", "黑色跑步鞋", {"Shoes > Running": 4, "Shoes > Sneakers": 2}, "black"),
    ("winter coat", "冬天穿的外套", {"Apparel > Coats": 4, "Apparel > Jackets": 3}, None),
    ("red coat", "红色的外套", {"Apparel > Coats": 4, "Apparel > Jackets": 3}, "red"),
    ("laptop", "笔记本电脑", {"Laptops > Notebooks": 4, "Laptops > Gaming Laptops": 4, "Computer Accessories > Laptop Bags": 2}, None),
    ("gaming laptop", "游戏笔记本", {"Laptops > Gaming Laptops": 4, "Laptops > Notebooks": 2}, None),
    ("headphones", "耳机", {"Electronics > Headphones": 4, "Electronics > Speakers": 2}, None),
    ("coffee machine", "咖啡机", {"Kitchen > Coffee": 4, "Kitchen > Appliances": 2}, None),
    ("phone case", "手机壳", {"Phones > Cases": 4, "Phones > Screen Protectors": 2}, None),
    ("phone charger", "手机充电器", {"Phones > Chargers": 4}, None),
    ("wireless mouse", "无线鼠标", {"Computer Accessories > Mice": 4, "Computer Accessories > Keyboards": 2}, None),
    ("backpack", "双肩背包", {"Bags > Backpacks": 4, "Bags > Luggage": 2}, None),
    ("suitcase", "行李箱", {"Bags > Luggage": 4, "Bags > Backpacks": 2}, None),
    ("hiking boots", "登山鞋", {"Shoes > Hiking": 4, "Shoes > Boots": 3}, None),
    ("summer dress", "连衣裙", {"Apparel > Dresses": 4}, None),
    ("jeans", "牛仔裤", {"Apparel > Jeans": 4}, None),
    ("camera", "相机", {"Electronics > Cameras": 4, "Computer Accessories > Memory Cards": 2}, None),
    ("smartwatch", "智能手表", {"Electronics > Smartwatches": 4}, None),
    ("bluetooth speaker", "蓝牙音箱", {"Electronics > Speakers": 4, "Electronics > Headphones": 2}, None),
    ("face cream", "面霜", {"Beauty > Skincare": 4}, None),
    ("lipstick makeup", "口红", {"Beauty > Makeup": 4}, None),
    ("lego building set", "乐高积木", {"Toys > Building Sets": 4}, None),
    ("board game", "桌游", {"Toys > Board Games": 4}, None),
    ("camping tent", "露营帐篷", {"Sports & Outdoors > Camping": 4}, None),
    ("yoga mat fitness", "健身瑜伽垫", {"Sports & Outdoors > Fitness": 4}, None),
    ("novel", "小说", {"Books > Fiction": 4, "Books > Non-fiction": 2}, None),
    ("children's book", "儿童读物", {"Books > Children's": 4, "Books > Fiction": 2}, None),
    ("green tea", "绿茶", {"Grocery > Coffee & Tea": 4}, None),
    ("frying pan cookware", "炒锅", {"Kitchen > Cookware": 4}, None),
    ("bedding duvet", "床上用品", {"Home > Bedding": 4}, None),
    ("desk lamp", "台灯", {"Home > Lighting": 4}, None),
]


def grade(product, cats: dict[str, int], colour: str | None) -> int | None:  # type: ignore[no-untyped-def]
    g = cats.get(product.category_path)
    if g is None:
        return None
    if colour and colour not in {c.lower() for c in product.attr("color")}:
        g = min(g, 3) if g == 4 else 2
    return g


def main() -> None:
    products = load_catalog(HERE / "demo_catalog.csv").products
    out = HERE / "demo_judgments.csv"
    n = 0
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["query", "sku", "relevance"])
        for en, zh, cats, colour in NEEDS:
            judged = [(p.sku, g) for p in products if (g := grade(p, cats, colour)) is not None]
            if not any(g == 4 for _, g in judged):
                print(f"warning: no grade-4 product for {en!r}", file=sys.stderr)
            for q in (en, zh):
                for sku, g in judged:
                    w.writerow([q, sku, g])
                    n += 1
    print(f"wrote {out}: {2 * len(NEEDS)} queries, {n} judgments")


if __name__ == "__main__":
    main()
