"""The catalog's own words in a message: its categories (:class:`CategoryMatcher`) and Chinese brand names.

Separate from the slot patterns because it is built from one catalog (its category tree, its brands)
while the patterns are fixed: the NLU builds a matcher once per catalog and hands it to
:func:`bot.dialogue.nlu.slots.extract_slots` with every message. The synonym tables are kept short on
purpose: a wrong category would hide the right products.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from retrieval.kinds import GENERIC_HEADS

__all__ = ["CATEGORY_SYNONYMS", "ZH_BRANDS", "CategoryMatcher"]

# Surface words -> catalog category names they mean, most specific first; a name is used only when
# the catalog has it. Obvious synonyms only: a wrong category would hide the right products.
CATEGORY_SYNONYMS: dict[str, tuple[str, ...]] = {
    "phone": ("smartphones", "phones"), "smartphone": ("smartphones", "phones"), "mobile phone": ("smartphones", "phones"),
    "cell phone": ("smartphones", "phones"), "手机": ("smartphones", "phones"), "智能手机": ("smartphones", "phones"),
    "laptop": ("laptops", "notebooks"), "notebook computer": ("laptops", "notebooks"), "笔记本": ("laptops", "notebooks"),
    "笔记本电脑": ("laptops", "notebooks"), "电脑": ("laptops",), "gaming laptop": ("gaming laptops",),
    "游戏本": ("gaming laptops",), "游戏笔记本": ("gaming laptops",),
    "earbuds": ("headphones",), "earphones": ("headphones",), "headset": ("headphones",), "耳机": ("headphones",),
    "外套": ("coats",), "大衣": ("coats",), "棉服": ("coats",), "夹克": ("jackets",), "羽绒服": ("jackets", "coats"),
    "tee": ("t-shirts",), "tshirt": ("t-shirts",), "t恤": ("t-shirts",), "牛仔裤": ("jeans",), "连衣裙": ("dresses",),
    "裙子": ("dresses",), "jumper": ("sweaters",), "毛衣": ("sweaters",), "针织衫": ("sweaters",),
    "跑鞋": ("running",), "跑步鞋": ("running",), "运动鞋": ("sneakers",), "trainers": ("sneakers",), "登山鞋": ("hiking",),
    "徒步鞋": ("hiking",), "靴子": ("boots",), "凉鞋": ("sandals",), "鞋": ("shoes",), "鞋子": ("shoes",),
    "背包": ("backpacks",), "双肩包": ("backpacks",), "手提包": ("handbags",), "包包": ("handbags", "bags"),
    "suitcase": ("luggage",), "行李箱": ("luggage",), "护肤": ("skincare",), "护肤品": ("skincare",), "化妆品": ("makeup",),
    "彩妆": ("makeup",), "书": ("books",), "小说": ("fiction",), "音箱": ("speakers",), "智能手表": ("smartwatches",),
    "手表": ("smartwatches",), "相机": ("cameras",), "电视": ("tvs",), "television": ("tvs",), "手机壳": ("cases",),
    "phone case": ("cases",), "充电器": ("chargers",), "screen protector": ("screen protectors",), "贴膜": ("screen protectors",),
    "钢化膜": ("screen protectors",), "鼠标": ("mice",), "mouse": ("mice",), "键盘": ("keyboards",), "咖啡": ("coffee",),
    "茶": ("coffee & tea",), "tea": ("coffee & tea",), "零食": ("snacks",), "床上用品": ("bedding",), "sheets": ("bedding",),
    "lamp": ("lighting",), "灯": ("lighting",), "台灯": ("lighting",), "锅": ("cookware",), "玩具": ("toys",),
    "积木": ("building sets",), "lego": ("building sets",), "桌游": ("board games",), "娃娃": ("dolls",), "露营": ("camping",),
    "帐篷": ("camping",), "tent": ("camping",), "骑行": ("cycling",), "自行车": ("cycling",), "bike": ("cycling",),
    "健身": ("fitness",), "存储卡": ("memory cards",), "内存卡": ("memory cards",), "sd card": ("memory cards",),
    "集线器": ("usb hubs",), "护发": ("hair care",), "洗发水": ("hair care",), "shampoo": ("hair care",),
    "电脑包": ("laptop bags",), "厨房电器": ("appliances",), "家电": ("appliances",),
    "coffee machine": ("coffee",), "coffee maker": ("coffee",), "espresso machine": ("coffee",),
    "咖啡机": ("coffee",), "luggage": ("luggage",), "行李": ("luggage",), "蓝牙耳机": ("headphones",),
    "headphone": ("headphones",), "earbud": ("headphones",),
}


# Chinese names of brands -> the catalog's (English, lower-case) brand; used only when the catalog has it.
# Names that are also everyday words with another meaning (企鹅 penguin, 哥伦比亚 Colombia) are left out.
ZH_BRANDS: dict[str, str] = {
    "耐克": "nike", "阿迪达斯": "adidas", "阿迪": "adidas", "苹果": "apple", "小米": "xiaomi", "华为": "huawei",
    "三星": "samsung", "索尼": "sony", "联想": "lenovo", "戴尔": "dell", "惠普": "hp", "华硕": "asus", "佳能": "canon",
    "飞利浦": "philips", "乐高": "lego", "优衣库": "uniqlo", "李维斯": "levi's", "新百伦": "new balance", "亚瑟士": "asics",
    "北面": "the north face", "巴塔哥尼亚": "patagonia", "宜家": "ikea", "罗技": "logitech", "闪迪": "sandisk",
    "谷歌": "google", "欧莱雅": "l'oreal", "美宝莲": "maybelline", "妮维雅": "nivea", "适乐肤": "cerave",
    "佳明": "garmin", "新秀丽": "samsonite", "安克": "anker", "萨洛蒙": "salomon",
    "孩之宝": "hasbro", "美泰": "mattel", "飒拉": "zara", "拉瓦萨": "lavazza", "凯膳怡": "kitchenaid",
    "哈珀柯林斯": "harpercollins", "斯凯奇": "skechers", "彪马": "puma", "李宁": "li-ning", "安踏": "anta",
}


def _forms(name: str) -> set[str]:
    """Singular/plural spellings of one English category word or phrase."""
    n = name.lower()
    out = {n}
    if n.endswith("ies"):
        out.add(n[:-3] + "y")
    elif n.endswith(("ches", "shes", "sses", "xes")):
        out.add(n[:-2])
    elif n.endswith("s") and not n.endswith("ss"):
        out.add(n[:-1])
    else:
        out.add(n + "s")
    if n == "mice":
        out.add("mouse")
    return out


class CategoryMatcher:
    """Finds the catalog's categories in a message: names as written, plurals, '<child> <parent>'
    compounds ('running shoes' for Shoes > Running), and the synonym table (English and Chinese).

    Built once per catalog (the NLU object keeps it); matching is a longest-first scan, so 'laptop bags'
    is one category, not 'laptops' plus 'bags'.
    """

    def __init__(self, categories: Iterable[str]) -> None:
        self.surface: dict[str, str] = {}  # surface form -> category key ("shoes > running" or "coats")
        self.parent: dict[str, str] = {}
        levels: set[str] = set()
        for cat in categories:
            path = [p.strip().lower() for p in re.split(r"\s*>\s*", str(cat)) if p.strip()]
            for i, name in enumerate(path):
                levels.add(name)
                key = " > ".join(path[: i + 1]) if i and self._ambiguous(name) else name
                if i:
                    self.parent[name] = path[i - 1]
                    for child in _forms(name):
                        for par in _forms(path[i - 1]):
                            self.surface.setdefault(f"{child} {par}", " > ".join(path[: i + 1]))
                if name.endswith("ing") and i:
                    continue  # "running", "camping", "lighting" alone are too often not the category
                for form in _forms(name):
                    self.surface.setdefault(form, key)
                for part in re.split(r"\s*(?:&|\band\b|/|,)\s*", name):
                    if part and part != name:
                        for form in _forms(part):
                            self.surface.setdefault(form, key)
        for word, targets in CATEGORY_SYNONYMS.items():
            for t in targets:
                if t in levels:
                    key = t
                    if t in self.parent and self._ambiguous(t):
                        key = f"{self.parent[t]} > {t}"
                    self.surface[word] = key  # a synonym is more specific than a generated plural
                    break
        forms = sorted(self.surface, key=len, reverse=True)
        en = [re.escape(f) for f in forms if f.isascii()]
        zh = [re.escape(f) for f in forms if not f.isascii()]
        parts = []
        if en:
            parts.append(r"(?<![\w-])(?:" + "|".join(en) + r")(?![\w-])")
        if zh:
            parts.append("(?:" + "|".join(zh) + ")")
        self._rx = re.compile("|".join(parts), re.I) if parts else None

    @staticmethod
    def _ambiguous(name: str) -> bool:
        """Modifier-like sub-category names ('running', 'cases') are reported with their parent."""
        return name.endswith("ing") or name in {"cases", "appliances", "accessories", "coffee", "fiction", "decor"}

    def find(self, text: str) -> tuple[str, ...]:
        """The categories ``text`` asks for. When it names several, the head of the request decides: "an
        android phone with a good camera" wants a phone, "a waterproof jacket for hiking" a jacket, "给手机用
        的充电器" a charger; the other names only describe it. Names joined by "and"/"or"/"和" are all kept."""
        if self._rx is None:
            return ()
        low = text.lower()
        spans: list[tuple[int, int, str]] = []
        for m in self._rx.finditer(low):
            key = self.surface.get(m.group(0).lower())
            if key:
                spans.append((m.start(), m.end(), key))
        if spans:
            spans = _head_and_coordinated(low, spans)
        found: list[str] = []
        for _, _, key in spans:
            if key not in found:
                found.append(key)
        # a parent named next to its child ("shoes" in "running shoes" matched separately) adds nothing
        leaves = [k.split(" > ")[-1] for k in found]
        return tuple(k for k in found if not any(self.parent.get(leaf) == k for leaf in leaves))


# where the thing asked for ends in English: "phone with a good camera", "jacket for hiking", "bag under $50"
_HEAD_END = re.compile(r"\s(?:for|with|without|under|over|below|above|that|which|from|in|on)\s", re.I)
# a head that is no kind of product: what follows it only describes the need ("something to carry my laptop in")
_GENERIC_HEAD = re.compile(rf"\b(?:{'|'.join(GENERIC_HEADS)})\b", re.I)
# between two names of things wanted together: "phones and cases", "耳机和音箱"
_COORDINATED = re.compile(r"^[\s,&/+]*(?:and|or|plus|和|或|或者|还有|跟|与|以及)?[\s,&/+]*$", re.I)


def _head_and_coordinated(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """The match that names the thing asked for, with the matches coordinated with it; the rest describe it.

    English puts the head last in the phrase before "for", "with", "under" ...; Chinese puts it last.
    """
    cjk = any("\u4e00" <= ch <= "\u9fff" for ch in text)
    end = len(text)
    if cjk:
        # "装电脑的包" (a bag to hold a computer): what comes after the last 的 is the thing itself
        de = text.rfind("的")
        if de >= 0 and re.search(r"[\u4e00-\u9fff]", text[de + 1:]) and not any(s[0] > de for s in spans):
            return []
    else:
        m = _HEAD_END.search(f" {text} ")
        if m is not None:
            end = max(m.start() - 1, 0)
    first = min(s[0] for s in spans)
    if not cjk and _GENERIC_HEAD.search(text[:first]):
        # the thing asked for is "something", "a gift": every name is in what describes it ("something to
        # carry my laptop in", "a gift for a coffee lover"), so none is a filter and search goes by meaning
        return []
    inside = [s for s in spans if s[0] < end] or spans
    head = max(inside, key=lambda s: s[0])
    keep = [head]
    for s in sorted(spans, key=lambda s: -s[0]):  # right to left from the head: coordinated neighbours
        if s is head:
            continue
        left, right = (s, keep[-1]) if s[0] < keep[-1][0] else (keep[-1], s)
        if _COORDINATED.match(text[left[1]:right[0]]):
            keep.append(s)
    return sorted(keep)
