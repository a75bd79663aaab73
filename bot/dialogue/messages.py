"""Every sentence the assistant says by itself, in English and Chinese.

Kept in one table so a shop can reword the bot (or add a language) without touching the logic, and so
tests can check that every message exists in every language.
"""

from __future__ import annotations

from retrieval.query import color_name

__all__ = ["LANGUAGES", "MESSAGES", "aside", "say"]

LANGUAGES = ("en", "zh")

MESSAGES: dict[str, dict[str, str]] = {
    "greet": {
        "en": "Hi! I'm the shop assistant. Tell me what you're looking for, e.g. {examples}. "
              "I can also answer questions about shipping, returns, refunds and payment.",
        "zh": "您好！我是店铺助手。告诉我您想买什么，例如：{examples}。我也可以回答配送、退货、退款和支付方面的问题。",
    },
    "help": {
        "en": "I can find products ({examples}), narrow them down (\"cheaper\", \"in blue\", \"size 42\", "
              "\"only Nike\"), show more, compare (\"compare 1 and 3\"), describe one (\"tell me about the second "
              "one\"), find similar ones (\"more like the first one\") and answer questions about orders, returns, "
              "refunds, shipping and payment. Say \"talk to a person\" at any time to reach our team.",
        "zh": "我可以帮您找商品（{examples}），继续筛选（“便宜一点的”“要红色的”“42码”），查看更多，比较（“比较第一个和第三个”），"
              "详细介绍（“第二个详细介绍一下”），找相似商品（“类似第一个的”），也可以回答订单、退货、退款、配送和支付问题。"
              "随时说“转人工”即可联系客服。",
    },
    "thanks": {"en": "You're welcome! Anything else I can find for you?", "zh": "不客气！还需要找点什么吗？"},
    "goodbye": {"en": "Bye, and happy shopping!", "zh": "再见，购物愉快！"},
    "empty": {
        "en": "I didn't get any text. Tell me what you're looking for, e.g. {examples}.",
        "zh": "没有收到文字。告诉我您想买什么，例如：{examples}。",
    },
    "too_long": {
        "en": "That's a long message, so I read only its beginning.",
        "zh": "消息太长了，我只读取了开头部分。",
    },
    "other": {
        "en": "Sorry, I didn't understand that. You can ask for products ({examples}) or about orders, returns "
              "and shipping.",
        "zh": "抱歉，我没有理解。您可以找商品（{examples}），或咨询订单、退货和配送问题。",
    },
    "results": {"en": "{total} products match{understood}:", "zh": "找到 {total} 件商品{understood}："},
    "results_more": {"en": "More results ({first}-{last} of {total}):", "zh": "更多结果（第 {first}-{last} 件，共 {total} 件）："},
    "results_top": {"en": "Best matches{understood}:", "zh": "最相关的商品{understood}："},
    "results_more_top": {"en": "More results ({first}-{last}):", "zh": "更多结果（第 {first}-{last} 件）："},
    "no_results": {
        "en": "I couldn't find products for \"{query}\"{understood}. Try other words or fewer filters.",
        "zh": "没有找到“{query}”的相关商品{understood}。请换个说法或减少筛选条件。",
    },
    "no_results_relaxed": {
        "en": "Nothing matches \"{query}\" ({understood}); here is what I have without those filters:",
        "zh": "没有符合“{query}”（{understood}）的商品；去掉这些条件后有这些：",
    },
    "no_more": {"en": "That's all I have for this search.", "zh": "这个搜索没有更多结果了。"},
    "no_search": {
        "en": "Tell me first what you're looking for, e.g. {examples}.",
        "zh": "请先告诉我您想找什么，例如：{examples}。",
    },
    "cheapest_already": {
        "en": "These are already the cheapest matches I have.",
        "zh": "这些已经是最便宜的了。",
    },
    "priciest_already": {
        "en": "These are already the most expensive matches I have.",
        "zh": "这些已经是最贵的了。",
    },
    "which_one": {
        "en": "Which one do you mean? Say for example \"the second one\" (1-{n}).",
        "zh": "您指的是哪一个？例如“第二个”（1-{n}）。",
    },
    "compare_two": {
        "en": "Tell me which two to compare, e.g. \"compare 1 and 3\".",
        "zh": "请告诉我比较哪两个，例如“比较第一个和第三个”。",
    },
    "compare_head": {"en": "Here is how they compare:", "zh": "对比如下："},
    "similar_head": {"en": "Products like {title}:", "zh": "与“{title}”相似的商品："},
    "recommend_head": {"en": "You might like these:", "zh": "为您推荐："},
    "complements_head": {"en": "Goes well with {title}:", "zh": "和「{title}」搭配："},
    "complements_none": {"en": "I have nothing in the shop that goes with {title} yet.",
                         "zh": "店里暂时没有和「{title}」搭配的商品。"},
    "complements_which": {"en": "Which product is it for? Tell me, e.g. \"accessories for my laptop\".",
                          "zh": "是哪件商品的配件呢？比如可以说“笔记本电脑的配件”。"},
    # a gift or occasion request: one sentence that says what was assumed and what would narrow it
    "gift_ideas": {
        "en": "I looked for {occasion}gift ideas for {whom} among kinds of products that often suit ({kinds}){understood}; "
              "tell me {their} interests or a budget to narrow it down:",
        "zh": "我按常见的送礼思路，为{whom}挑了几类{occasion}礼物（{kinds}）{understood}；告诉我{their}的兴趣爱好或预算，可以帮您缩小范围：",
    },
    "gift_ideas_anyone": {
        "en": "I looked for {occasion}gift ideas among kinds of products that often suit ({kinds}){understood}; tell me "
              "who it is for and what they like to narrow it down:",
        "zh": "我按常见的送礼思路挑了几类{occasion}礼物（{kinds}）{understood}；告诉我是送给谁的、对方喜欢什么，可以帮您缩小范围：",
    },
    "gift_interest": {
        "en": "I looked for {occasion}gifts for {whom} who likes {interest}{understood}; tell me a budget or more about "
              "{them} to narrow it down:",
        "zh": "我按“{interest}”为{whom}找了{occasion}礼物{understood}；告诉我预算或{their}的更多喜好，可以帮您缩小范围：",
    },
    "gift_none": {
        "en": "I couldn't find gift ideas for that in the shop; tell me what they like and I'll look for it.",
        "zh": "店里暂时没有找到合适的礼物；告诉我对方喜欢什么，我再帮您找。",
    },
    "details_stock": {"en": "In stock ({stock} left).", "zh": "有货（剩余 {stock} 件）。"},
    "details_in_stock": {"en": "In stock.", "zh": "有货。"},
    "in_stock": {"en": "in stock", "zh": "有货"},
    "details_oos": {"en": "Out of stock at the moment.", "zh": "暂时缺货。"},
    "details_price": {"en": "It costs {price}.", "zh": "价格是 {price}。"},
    "fact_is": {"en": "Its {fact}: {value}.", "zh": "{fact}：{value}。"},
    "fact_missing": {"en": "The catalog doesn't list its {fact}, and I won't guess.",
                     "zh": "商品资料里没有写{fact}，我不想乱猜。"},
    "fact_size_yes": {"en": "Yes, it comes in size {size} (sizes: {sizes}).", "zh": "有 {size} 码（可选尺码：{sizes}）。"},
    "fact_size_no": {"en": "No, it doesn't come in size {size}; its sizes are {sizes}.",
                     "zh": "没有 {size} 码；可选尺码：{sizes}。"},
    "fact_rating": {"en": "It is rated {value} out of 5.", "zh": "评分 {value}/5。"},
    "advice_price_low": {"en": "Of these, the cheapest is {picks}.", "zh": "这几款里最便宜的是 {picks}。"},
    "advice_price_high": {"en": "Of these, the most expensive is {picks}.", "zh": "这几款里最贵的是 {picks}。"},
    "advice_rating_high": {"en": "Of these, the best rated is {picks}.", "zh": "这几款里评分最高的是 {picks}。"},
    "advice_stock_high": {"en": "Of these, the most in stock is {picks}.", "zh": "这几款里库存最多的是 {picks}。"},
    "advice_weight_low": {"en": "Of these, the lightest the catalog gives a weight for is {picks}.",
                          "zh": "写明重量的几款里最轻的是 {picks}。"},
    "advice_weight_high": {"en": "Of these, the heaviest the catalog gives a weight for is {picks}.",
                           "zh": "写明重量的几款里最重的是 {picks}。"},
    "advice_capacity_high": {"en": "Of these, the largest the catalog gives a capacity for is {picks}.",
                             "zh": "写明容量的几款里容量最大的是 {picks}。"},
    "advice_spec_same": {"en": "All of these state the same: {value}.", "zh": "这几款写的都一样：{value}。"},
    "advice_spec_high": {"en": "Of these, going by what their titles state: {picks}.", "zh": "按商品名称里写的，这几款里最高的是 {picks}。"},
    "advice_no_fact": {"en": "The catalog doesn't list the {fact} of any of these, so I can't compare them on it.",
                       "zh": "这几款的商品资料都没有写{fact}，没法据此比较。"},
    "advice_best": {"en": "For {criterion}, going by the catalog: {picks}.",
                    "zh": "就“{criterion}”来说，按商品资料：{picks}。"},
    "advice_none": {"en": "None of these is listed as suited to {criterion} in the catalog.",
                    "zh": "商品资料里没有一款写明适合“{criterion}”。"},
    "advice_best_plain": {"en": "Going by the catalog: {picks}.", "zh": "按商品资料：{picks}。"},
    "advice_none_plain": {"en": "None of these products' catalog facts say anything about that.",
                          "zh": "这几款的商品资料都没有写到这一点。"},
    "advice_in_name": {"en": "\u201c{word}\u201d in its name", "zh": "名称里有“{word}”"},
    "advice_general": {"en": "General advice, not from the catalog: {text}", "zh": "一般建议（不是商品资料）：{text}"},
    "advice_nearest": {"en": "The closest in what the catalog says about them is {pick}; I won't claim more than that.",
                       "zh": "从商品资料的描述看，最接近的是 {pick}；更多的我不乱说。"},
    "advice_closest": {"en": "What the catalog does say: the best rated is {rated}; the cheapest is {cheap}.",
                       "zh": "商品资料里有的是：评分最高的是 {rated}；最便宜的是 {cheap}。"},
    "btn_search_for": {"en": "Search: {query}", "zh": "搜索：{query}"},
    "advice_guidance_head": {"en": "What the catalog lets you compare for these:",
                             "zh": "这几款在商品资料里可以比较的是："},
    "advice_guidance_tail": {"en": "(These are the shop's facts, not general advice; tell me what matters most to "
                                   "you and I'll pick from them.)",
                             "zh": "（以上是店里的商品资料，不是通用建议；告诉我您最看重什么，我帮您从中挑选。）"},
    "suits_facts": {"en": "Going by the catalog: {reasons}.", "zh": "按商品资料：{reasons}。"},
    "suits_unknown": {"en": "The catalog doesn't say whether it is suited to {criterion}, and I won't guess.",
                      "zh": "商品资料里没有写它是否适合{criterion}，我不想乱猜。"},
    "suits_that": {"en": "that", "zh": "这一点"},
    "fact_title": {"en": "The catalog lists it with {value}.", "zh": "商品资料写的是：{value}。"},
    "fact_storage": {"en": "memory and storage", "zh": "内存和存储"},
    # what code could not find in the record: said as a finding, since the card above may say it in other words
    "fact_not_listed": {"en": "I can't find that in this product's catalog facts, and I won't guess.",
                        "zh": "在这件商品的资料里没找到这一点，我不想乱猜。"},
    "each_head": {"en": "For each of these, the catalog says:", "zh": "这几款的商品资料分别是："},
    "each_missing": {"en": "I can't find that in the catalog facts of any of these, and I won't guess.",
                     "zh": "在这几款的商品资料里都没找到这一点，我不想乱猜。"},
    "feedback_up": {"en": "Thanks for the feedback!", "zh": "谢谢您的反馈！"},
    "feedback_down": {
        "en": "Sorry about that. Tell me a bit more about what you need (what it's for, a price range, a "
              "colour), or say \"talk to a person\".",
        "zh": "抱歉。请再多告诉我一些您的需求（用途、价格范围、颜色等），或说“转人工”。",
    },
    "handoff": {
        "en": "I've asked a colleague to take over this conversation; they'll reply here as soon as they can "
              "(Mon-Fri 9:00-18:00 CET). You can also write to support@demo-shop.example.",
        "zh": "已为您转接人工客服，客服会尽快在这里回复您（周一至周五 9:00-18:00 中欧时间）。您也可以发邮件至 support@demo-shop.example。",
    },
    "handoff_offer": {
        "en": "I'm not getting this right. Would you like to talk to a person?",
        "zh": "我好像没能帮上忙。需要转接人工客服吗？",
    },
    "handoff_waiting": {
        "en": "A colleague will reply here shortly.",
        "zh": "人工客服会尽快在这里回复您。",
    },
    "released": {
        "en": "You're back with the shop assistant. What can I find for you?",
        "zh": "您已回到店铺助手。需要找点什么？",
    },
    "support_fallback": {
        "en": "I couldn't find that in our policies. A colleague can help: say \"talk to a person\".",
        "zh": "在我们的政策中没有找到相关内容。需要的话请说“转人工”，客服会帮您。",
    },
    "qa_not_listed": {
        "en": "Our catalog doesn't say that for this product, and I won't guess. A colleague can check: tap \"Talk to a person\".",
        "zh": "商品资料里没有写这一点，我不想乱猜。需要的话请点“转人工”，客服会帮您确认。",
    },
    "order_specific": {
        "en": "I can't see individual orders. For this order a colleague can check it: tap \"Talk to a person\".",
        "zh": "我无法查看具体订单。客服可以帮您查询这个订单：请点“转人工”。",
    },
    "unknown_product": {"en": "I can't find that product any more.", "zh": "找不到这个商品了。"},
    "degraded": {
        "en": "Search is unavailable right now; please try again in a minute.",
        "zh": "搜索暂时不可用，请稍后再试。",
    },
    # buttons
    "btn_more": {"en": "More", "zh": "更多"},
    "btn_cheaper": {"en": "Cheaper", "zh": "便宜一点"},
    "btn_up": {"en": "👍", "zh": "👍"},
    "btn_down": {"en": "👎", "zh": "👎"},
    "btn_handoff": {"en": "Talk to a person", "zh": "转人工"},
    "btn_details": {"en": "Details", "zh": "详情"},
    "btn_similar": {"en": "Similar", "zh": "相似商品"},
    # comparison rows
    "row_price": {"en": "price", "zh": "价格"},
    "row_brand": {"en": "brand", "zh": "品牌"},
    "row_category": {"en": "category", "zh": "类别"},
    "row_stock": {"en": "stock", "zh": "库存"},
    "row_rating": {"en": "rating", "zh": "评分"},
    # watchlists (bot/dialogue/watch.py, bot/watch.py)
    "watch_ask": {
        "en": "What should I watch for? Tell me the product, e.g. \"tell me when a red winter coat under $80 is in "
              "stock\" or \"let me know if you get Nike running shoes in size 42\".",
        "zh": "要我关注什么商品呢？请告诉我商品，例如“有500元以下的蓝牙耳机就通知我”或“红色连衣裙到货提醒”。",
    },
    "watch_added": {
        "en": "OK, I'm watching for \"{what}\" until {until}. When new products like that come in (in stock), I'll "
              "message you once. Say \"my watchlist\" to see or cancel it.",
        "zh": "好的，我会关注“{what}”，直到 {until}。有新的符合条件的商品（有货）时，我会通知您一次。说“我的关注”可查看或取消。",
    },
    "watch_now": {
        "en": "These match already (I won't tell you about them again):",
        "zh": "现在已有这些符合条件的商品（之后不会重复通知）：",
    },
    "watch_limit": {
        "en": "Sorry, you already have {n} active watches, the most I can keep. Cancel one in \"my watchlist\" first.",
        "zh": "抱歉，您已有 {n} 个关注，已达上限。请先在“我的关注”里取消一个。",
    },
    "watch_list_head": {"en": "Your watchlist:", "zh": "您的关注："},
    "watch_list_line": {"en": "{n}. \"{what}\", until {until}", "zh": "{n}. “{what}”，至 {until}"},
    "watch_list_expired": {"en": "{n}. \"{what}\", expired on {until}", "zh": "{n}. “{what}”，已于 {until} 过期"},
    "watch_list_empty": {
        "en": "You're not watching anything. Say e.g. \"tell me when a red winter coat under $80 is in stock\".",
        "zh": "您还没有关注任何商品。可以说，例如“有500元以下的蓝牙耳机就通知我”。",
    },
    "btn_unwatch": {"en": "Cancel {n}", "zh": "取消 {n}"},
    "watch_cancelled": {"en": "Cancelled: I've stopped watching for \"{what}\".", "zh": "已取消：不再关注“{what}”。"},
    "watch_gone": {"en": "That watch is already cancelled or gone.", "zh": "这个关注已取消或不存在。"},
    "watch_down": {
        "en": "Sorry, I can't reach the watchlist right now. Please try again in a moment.",
        "zh": "抱歉，暂时无法访问关注列表，请稍后再试。",
    },
    "watch_found": {
        "en": "Good news: new products for your watch \"{what}\":",
        "zh": "好消息：您关注的“{what}”有新商品：",
    },
}

EXAMPLES = {
    "en": "\"a red winter coat under $80\", \"running shoes size 42\", \"wireless earbuds\"",
    "zh": "“我想买一款新的手机”“红色的外套”“500元以下的跑步鞋”",
}


# Catalog attribute names as a Chinese shopper reads them (the values stay the catalog's own words);
# a name not listed is shown as the catalog spells it.
ATTRIBUTE_NAMES: dict[str, dict[str, str]] = {
    "zh": {"color": "颜色", "colour": "颜色", "size": "尺码", "material": "材质", "rating": "评分", "weight": "重量", "brand": "品牌",
           "capacity": "容量", "storage": "存储", "ram": "内存", "memory": "内存", "screen": "屏幕", "style": "款式",
           "gender": "性别", "pattern": "图案", "fit": "版型", "length": "长度", "width": "宽度", "height": "高度",
           "volume": "容量", "power": "功率", "battery": "电池", "model": "型号", "flavor": "口味", "flavour": "口味",
           "scent": "香型", "age": "适用年龄", "language": "语言", "author": "作者", "format": "版本"},
}


def attribute_name(name: str, language: str = "en") -> str:
    """``name`` of a catalog attribute in ``language`` (as given when there is no translation)."""
    return ATTRIBUTE_NAMES.get(language, {}).get(name.lower(), name)


def attribute_value(name: str, value: str, language: str = "en") -> str:
    """A catalog attribute's value in ``language``: colours the search understands in Chinese ("black" ->
    "黑色", the same table that reads "黑色的" in a query); every other value as the catalog gives it."""
    if name.lower() not in {"color", "colour"}:
        return value
    return color_name(value, language)


def say(key: str, language: str = "en", **values: object) -> str:
    """The message ``key`` in ``language`` (English when that language lacks it), filled in."""
    table = MESSAGES[key]
    text = table.get(language) or table["en"]
    values.setdefault("examples", EXAMPLES.get(language, EXAMPLES["en"]))
    return text.format(**values)


def aside(text: str, lang: str) -> str:
    """What the filters were, in brackets after a sentence's subject: " (red, under 80)" / "（红色，80 以下）"."""
    if not text:
        return ""
    return f"（{text}）" if lang == "zh" else f" ({text})"
