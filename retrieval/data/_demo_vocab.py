"""Shared vocabulary and spec types for the demo catalog generator (make_demo_catalog.py).

Everything here was written for this project; the catalog is synthetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# canonical colour -> (English title word, Chinese)
COLOURS: dict[str, tuple[str, str]] = {
    "black": ("Black", "黑色"),
    "white": ("White", "白色"),
    "red": ("Red", "红色"),
    "blue": ("Blue", "蓝色"),
    "navy": ("Navy", "藏青色"),
    "green": ("Green", "绿色"),
    "grey": ("Grey", "灰色"),
    "pink": ("Pink", "粉色"),
    "beige": ("Beige", "米色"),
    "brown": ("Brown", "棕色"),
    "yellow": ("Yellow", "黄色"),
    "purple": ("Purple", "紫色"),
    "silver": ("Silver", "银色"),
    "gold": ("Gold", "金色"),
}

# brand -> the name used in Chinese titles (the brand itself where no Chinese name is usual)
BRAND_ZH: dict[str, str] = {
    "Nike": "耐克",
    "Adidas": "阿迪达斯",
    "Asics": "亚瑟士",
    "New Balance": "新百伦",
    "Apple": "苹果",
    "Samsung": "三星",
    "Xiaomi": "小米",
    "Huawei": "华为",
    "Google": "谷歌",
    "Lenovo": "联想",
    "Dell": "戴尔",
    "HP": "惠普",
    "Asus": "华硕",
    "Logitech": "罗技",
    "Sony": "索尼",
    "Bose": "Bose",
    "JBL": "JBL",
    "Canon": "佳能",
    "Uniqlo": "优衣库",
    "Levi's": "李维斯",
    "The North Face": "北面",
    "Patagonia": "巴塔哥尼亚",
    "Columbia": "哥伦比亚",
    "Zara": "Zara",
    "IKEA": "宜家",
    "Philips": "飞利浦",
    "KitchenAid": "凯膳怡",
    "Instant Pot": "Instant Pot",
    "Nespresso": "Nespresso",
    "L'Oreal": "欧莱雅",
    "Nivea": "妮维雅",
    "CeraVe": "适乐肤",
    "Lego": "乐高",
    "Hasbro": "孩之宝",
    "Mattel": "美泰",
    "Penguin": "企鹅",
    "HarperCollins": "哈珀柯林斯",
    "Lavazza": "拉瓦萨",
    "Samsonite": "新秀丽",
    "Herschel": "Herschel",
    "SanDisk": "闪迪",
    "Anker": "安克",
    "Garmin": "佳明",
    "Salomon": "萨洛蒙",
    "Maybelline": "美宝莲",
    # house brands of the demo store (fictional)
    "Northfield": "Northfield",
    "Voltix": "Voltix",
    "Casa Verde": "Casa Verde",
    "Trailmark": "Trailmark",
}

APPAREL_SIZES = ("XS", "S", "M", "L", "XL", "XXL")
SHOE_SIZES = ("36", "37", "38", "39", "40", "41", "42", "43", "44", "45", "46")


@dataclass(frozen=True)
class M:
    """One product model: brand, English model text, price range, optional Chinese text and overrides."""

    brand: str
    model: str
    lo: float
    hi: float
    zh: str | None = None
    mat: str | None = None
    colors: tuple[str, ...] | None = None


def m(brand: str, model: str, lo: float, hi: float, zh: str | None = None, mat: str | None = None,
      colors: str | None = None) -> M:
    return M(brand, model, lo, hi, zh, mat, tuple(colors.split()) if colors else None)


@dataclass(frozen=True)
class Sub:
    """A subcategory: its models and how titles, descriptions, sizes and prices are built.

    fmt/zfmt placeholders: {brand} {model} {opt} / {bzh} {zh} {optzh}. Options are
    (English, Chinese, price multiplier). Descriptions use {brand} {model} {noun} {opt} {in_color}
    {color} {material} {who}; a material and a sizes sentence are added when the template lacks them.
    """

    top: str
    sub: str
    n: int
    models: tuple[M, ...]
    noun: str
    desc: tuple[str, ...]
    fmt: str = "{brand} {model}"
    zfmt: str | None = "{bzh} {zh}"
    zh_share: float = 0.4
    opts: tuple[tuple[str, str, float], ...] = ()
    colors: tuple[str, ...] = ()
    mats: tuple[str, ...] = ()
    sizes: str | None = None  # "apparel" | "shoes" | "socks"
    price: tuple[float, float] = (0.0, 100000.0)
    family: tuple[int, int, int] = (40, 35, 25)  # weights of 1, 2 and 3 colour variants


def sub(top: str, name: str, n: int, models: list[M], noun: str, desc: str | list[str], *,
        colors: str = "", mats: str = "", opts: list[tuple[str, str, float]] | None = None, **kw: Any) -> Sub:
    """Compact constructor: colour and material pools as space- or comma-separated strings."""
    mat_pool = tuple(x.strip() for x in mats.split(",") if x.strip()) if mats else ()
    return Sub(
        top, name, n, tuple(models), noun, (desc,) if isinstance(desc, str) else tuple(desc),
        colors=tuple(colors.split()), mats=mat_pool, opts=tuple(opts or ()), **kw,
    )


GENDER = [("Men's", "男款", 1.0), ("Women's", "女款", 1.0)]
