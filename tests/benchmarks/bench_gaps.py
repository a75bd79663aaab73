"""How well demand-gap clustering (retrieval/gaps.py) recovers themes: a synthetic log of 2,000 failed searches
over 20 planted themes, in English and Chinese, with varied templates, typos and noise words.

The one distance setting is chosen on the queries of themes 0-9 (the tuning half) and reported on themes
10-19 (the held-out half), so the reported figure is not fitted to what it measures. Metric: adjusted Rand
index (written out in retrieval.gaps). Results: tests/benchmarks/results/gaps.json.

    .venv/bin/python tests/benchmarks/bench_gaps.py [--encoder use-multilingual]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from retrieval.encoders import get_encoder
from retrieval.gaps import DEFAULT_DISTANCE, adjusted_rand_index, cluster_texts

# (English names, Chinese names, English modifiers, Chinese modifiers) per theme
THEMES = [
    (["rain trousers", "waterproof pants", "rain pants"], ["雨裤", "防水裤"], ["hiking", "for men", "lightweight"], ["登山", "男款", "轻便"]),
    (["wireless earbuds", "bluetooth earphones", "earbuds"], ["蓝牙耳机", "无线耳机"], ["noise cancelling", "for running", "cheap"], ["降噪", "跑步用", "便宜"]),
    (["cat litter box", "litter tray", "cat toilet"], ["猫砂盆", "猫厕所"], ["covered", "large", "self cleaning"], ["封闭式", "大号", "自动"]),
    (["yoga mat", "exercise mat", "pilates mat"], ["瑜伽垫", "健身垫"], ["thick", "non slip", "for beginners"], ["加厚", "防滑", "初学者"]),
    (["baby stroller", "pushchair", "pram"], ["婴儿推车", "宝宝推车"], ["foldable", "lightweight", "for twins"], ["可折叠", "轻便", "双胞胎"]),
    (["espresso machine", "coffee maker", "espresso maker"], ["咖啡机", "意式咖啡机"], ["automatic", "for home", "with grinder"], ["全自动", "家用", "带磨豆"]),
    (["gaming chair", "office chair", "desk chair"], ["电竞椅", "办公椅"], ["ergonomic", "with footrest", "leather"], ["人体工学", "带脚托", "皮质"]),
    (["electric toothbrush", "sonic toothbrush"], ["电动牙刷", "声波牙刷"], ["rechargeable", "for kids", "soft"], ["充电", "儿童", "软毛"]),
    (["phone charger", "usb c charger", "fast charger"], ["手机充电器", "快充充电器"], ["65w", "for iphone", "travel"], ["65瓦", "苹果", "旅行"]),
    (["wool socks", "hiking socks", "warm socks"], ["羊毛袜", "保暖袜子"], ["merino", "for winter", "thick"], ["美利奴", "冬天", "加厚"]),
    (["air fryer", "oil free fryer"], ["空气炸锅", "无油炸锅"], ["large", "digital", "5 litre"], ["大容量", "智能", "5升"]),
    (["sunscreen", "sun cream", "sunblock"], ["防晒霜", "防晒乳"], ["spf 50", "for face", "waterproof"], ["50倍", "脸部", "防水"]),
    (["dog leash", "dog lead"], ["狗绳", "牵引绳"], ["retractable", "for big dogs", "reflective"], ["伸缩", "大型犬", "反光"]),
    (["mechanical keyboard", "gaming keyboard"], ["机械键盘", "游戏键盘"], ["rgb", "wireless", "blue switches"], ["背光", "无线", "青轴"]),
    (["rice cooker", "electric rice pot"], ["电饭煲", "电饭锅"], ["small", "japanese", "3 cup"], ["小型", "日式", "迷你"]),
    (["tent", "camping tent"], ["帐篷", "露营帐篷"], ["4 person", "waterproof", "pop up"], ["四人", "防雨", "自动"]),
    (["winter gloves", "touchscreen gloves", "warm gloves"], ["冬季手套", "保暖手套"], ["leather", "for women", "ski"], ["皮手套", "女款", "滑雪"]),
    (["kids bicycle", "children's bike", "balance bike"], ["儿童自行车", "平衡车"], ["16 inch", "with training wheels", "for toddlers"], ["16寸", "带辅助轮", "幼儿"]),
    (["water bottle", "insulated bottle", "thermos flask"], ["保温杯", "水杯"], ["stainless steel", "1 litre", "for school"], ["不锈钢", "大容量", "学生"]),
    (["reading lamp", "desk lamp", "led lamp"], ["台灯", "护眼台灯"], ["dimmable", "for study", "clip on"], ["可调光", "学习", "夹式"]),
]
EN_TEMPLATES = ["{n}", "{m} {n}", "{n} {m}", "best {n}", "cheap {n} {m}", "do you have {n}", "looking for a {n}",
                "{n} under 50", "i need {m} {n}", "{n} please"]
ZH_TEMPLATES = ["{n}", "{m}{n}", "有没有{n}", "想买{m}{n}", "{n} 推荐", "便宜的{n}", "{m}的{n}"]
NOISE = ["asap", "today", "gift", "new", "2024", "sale", "ok", "thx"]


def _typo(text: str, rng: random.Random) -> str:
    if len(text) < 5 or not text.isascii():
        return text
    i = rng.randrange(1, len(text) - 1)
    op = rng.choice(("drop", "swap", "double"))
    if op == "drop":
        return text[:i] + text[i + 1:]
    if op == "swap":
        return text[:i - 1] + text[i] + text[i - 1] + text[i + 1:]
    return text[:i] + text[i] + text[i:]


def make_log(n: int = 2000, seed: int = 7) -> list[tuple[str, int]]:
    """``n`` (query, theme) pairs: about 60 % English, 40 % Chinese, 20 % of English ones with a typo, 10 % with a
    noise word."""
    rng = random.Random(seed)
    out = []
    for k in range(n):
        theme = k % len(THEMES)
        en_names, zh_names, en_mods, zh_mods = THEMES[theme]
        if rng.random() < 0.6:
            q = rng.choice(EN_TEMPLATES).format(n=rng.choice(en_names), m=rng.choice(en_mods))
            if rng.random() < 0.2:
                q = _typo(q, rng)
        else:
            q = rng.choice(ZH_TEMPLATES).format(n=rng.choice(zh_names), m=rng.choice(zh_mods))
        if rng.random() < 0.1:
            q = f"{q} {rng.choice(NOISE)}"
        out.append((q, theme))
    rng.shuffle(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoder", default="use-multilingual")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "gaps.json")
    args = ap.parse_args()
    log = make_log()
    tune = [(q, t) for q, t in log if t < 10]
    held = [(q, t) for q, t in log if t >= 10]
    enc = get_encoder(args.encoder)
    grid = [0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9]
    t0 = time.perf_counter()
    scores = {}
    for d in grid:
        labels = cluster_texts([q for q, _ in tune], enc, d)
        scores[d] = round(adjusted_rand_index([t for _, t in tune], labels), 4)
    best = max(grid, key=lambda d: (scores[d], -abs(d - DEFAULT_DISTANCE)))
    t1 = time.perf_counter()
    labels = cluster_texts([q for q, _ in held], enc, best)
    held_ari = adjusted_rand_index([t for _, t in held], labels)
    default_labels = cluster_texts([q for q, _ in held], enc, DEFAULT_DISTANCE)
    result = {
        "encoder": enc.name, "queries": len(log), "themes": len(THEMES), "tune_queries": len(tune),
        "held_out_queries": len(held), "method": "average-linkage agglomerative, cosine distance cut",
        "tuning_ari_by_distance": {str(k): v for k, v in scores.items()}, "chosen_distance": best,
        "tuning_ari": scores[best], "held_out_ari": round(held_ari, 4),
        "held_out_themes_found": len(set(labels)),
        "default_distance": DEFAULT_DISTANCE,
        "held_out_ari_at_default": round(adjusted_rand_index([t for _, t in held], default_labels), 4),
        "seconds_tuning": round(t1 - t0, 1), "seconds_held_out": round(time.perf_counter() - t1, 1),
        "command": "python tests/benchmarks/bench_gaps.py",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
