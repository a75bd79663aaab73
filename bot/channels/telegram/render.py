"""How a channel-neutral Reply looks in Telegram: pure functions, no network, no decisions.

A reply becomes a list of :class:`OutMessage` (text or photo, HTML, inline keyboard rows whose buttons
still carry the dialogue's payloads); ``bot/channels/telegram/bot.py`` sends them. Kept apart so the layout and the
escaping are testable without a server:

* every piece of catalog or model text is HTML-escaped exactly once, so a title such as
  ``Tom & Jerry <Deluxe>`` shows as written and can never break the markup;
* texts are split below Telegram's limits (4096 characters per message, 1024 per caption, counted in
  UTF-16 units as Telegram counts them) at paragraph, line or word boundaries, before escaping, so a
  split never cuts a tag or an entity;
* product lists become one message per product (a photo when the product has an image), each with
  Details / More like this / thumbs buttons, and "Next page" / "Cheaper" / "Compare" under the last.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from bot.dialogue.replies import Button, Card, Reply, format_price, render_table, stock_text

__all__ = [
    "CAPTION_LIMIT",
    "TEXT_LIMIT",
    "OutMessage",
    "card_html",
    "escape",
    "plan",
    "split_text",
    "t",
    "utf16_len",
]

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
PRODUCT_PAGES = {"details", "click"}  # intents whose single card is a product page, not a list

# What only the Telegram adapter says (its buttons, commands and admin answers); the shopping
# conversation's own sentences live in bot/dialogue/messages.py.
TEXTS: dict[str, dict[str, str]] = {
    "btn_details": {"en": "ℹ️ Details", "zh": "ℹ️ 详情"},
    "btn_similar": {"en": "🔁 More like this", "zh": "🔁 相似商品"},
    "btn_next": {"en": "Next page ▶", "zh": "下一页 ▶"},
    "btn_compare": {"en": "⚖️ Compare", "zh": "⚖️ 比较"},
    "btn_forget_yes": {"en": "Yes, delete my data", "zh": "确认删除"},
    "btn_forget_no": {"en": "Cancel", "zh": "取消"},
    "btn_release": {"en": "Give back to the bot", "zh": "交还给机器人"},
    "compare_text": {"en": "compare {a} and {b}", "zh": "比较第{a}个和第{b}个"},
    "start_text": {"en": "hello", "zh": "你好"},
    "help_text": {"en": "help", "zh": "帮助"},
    "recommend_text": {"en": "recommend something for me", "zh": "给我推荐一些商品"},
    "forget_confirm": {
        "en": "This deletes everything this shop assistant has stored about you: your messages, searches, "
              "feedback, preferences and any conversation with our team. Delete it?",
        "zh": "这将删除店铺助手保存的您的所有数据：消息、搜索记录、反馈、偏好以及与客服的对话。确定删除吗？",
    },
    "forget_done": {"en": "Done: everything stored about you is deleted. Write any time to start afresh.",
                    "zh": "已删除您的所有数据。随时发消息即可重新开始。"},
    "forget_cancelled": {"en": "Nothing was deleted.", "zh": "没有删除任何数据。"},
    "forget_down": {"en": "I can't reach our database right now, so nothing was deleted. Please try /forget again in a few minutes.",
                    "zh": "暂时无法连接数据库，没有删除任何数据。请过几分钟再试一次 /forget。"},
    "stale": {"en": "These results are out of date. Search again and use the newest buttons.",
              "zh": "这些结果已过期。请重新搜索，并使用最新的按钮。"},
    "expired": {"en": "This button has expired.", "zh": "这个按钮已失效。"},
    "not_admin": {"en": "Sorry, that command is for the shop's team only.", "zh": "抱歉，这个命令仅限店铺工作人员使用。"},
    "prefs": {
        "en": "What I remember about you:\n• language: {lang}\n• current search: {query}\n• filters: {filters}\n"
              "• products on screen: {shown}\n• talking to our team: {handoff}\n\nSend /forget to delete all of it.",
        "zh": "我记得的关于您的信息：\n• 语言：{lang}\n• 当前搜索：{query}\n• 筛选条件：{filters}\n"
              "• 当前展示的商品：{shown} 件\n• 人工客服处理中：{handoff}\n\n发送 /forget 可全部删除。",
    },
    "none": {"en": "none", "zh": "无"},
    "yes": {"en": "yes", "zh": "是"},
    "no": {"en": "no", "zh": "否"},
    "reindex_started": {"en": "Reindexing the catalog…", "zh": "正在重建商品索引…"},
    "reindex_busy": {"en": "A reindex is already running.", "zh": "索引正在重建中。"},
    "reindex_done": {"en": "Reindexed: {summary}\nNow serving {n} products.", "zh": "索引已重建：{summary}\n当前共 {n} 件商品。"},
    "reindex_failed": {"en": "Reindexing failed, the previous index is still in use: {error}",
                       "zh": "重建索引失败，仍在使用之前的索引：{error}"},
    "handoffs_none": {"en": "No conversations are waiting for a person.", "zh": "没有等待人工处理的对话。"},
    "handoffs_head": {"en": "Waiting for a person ({n}):", "zh": "等待人工处理（{n}）："},
    "handoff_line": {"en": "{user} since {since} UTC ({reason})\nlast message: {last}",
                     "zh": "{user} 自 {since} UTC（{reason}）\n最后一条消息：{last}"},
    "handoff_notice": {"en": "🙋 {user} ({name}) wants to talk to a person: {last}",
                       "zh": "🙋 {user}（{name}）需要人工客服：{last}"},
    "released_admin": {"en": "{user} is back with the bot.", "zh": "{user} 已交还给机器人。"},
    "not_handed_over": {"en": "{user} has no open handoff.", "zh": "{user} 没有待处理的人工对话。"},
    "store_down": {"en": "The database can't be reached right now: {error}", "zh": "暂时无法连接数据库：{error}"},
    "models": {
        "en": "Model versions (shopbot models activate|rollback changes them):\n{versions}\nserving now: {serving}",
        "zh": "模型版本（用 shopbot models activate|rollback 切换）：\n{versions}\n当前使用：{serving}",
    },
    "stats": {
        "en": "turns {turns} · users {users} · sessions {sessions}\nmedian turn {p50} ms · open handoffs {handoffs}\n"
              "thumbs up {up} · down {down} ({ratio} positive)\ntop queries:\n{top}\nzero-result queries:\n{zero}",
        "zh": "对话轮次 {turns} · 用户 {users} · 会话 {sessions}\n中位响应 {p50} 毫秒 · 待人工 {handoffs}\n"
              "👍 {up} · 👎 {down}（好评率 {ratio}）\n热门搜索：\n{top}\n无结果搜索：\n{zero}",
    },
}

COMMANDS: dict[str, list[tuple[str, str]]] = {
    "en": [("start", "Start: what I can do"), ("help", "How to search, refine and compare"),
           ("search", "Search products, e.g. /search running shoes"), ("recommend", "Recommendations for you"),
           ("watchlist", "Products you asked me to watch for"), ("prefs", "What I remember about you"),
           ("forget", "Delete everything stored about you"), ("human", "Talk to a person")],
    "zh": [("start", "开始"), ("help", "使用帮助"), ("search", "搜索商品，例如 /search 跑步鞋"), ("recommend", "为您推荐"),
           ("watchlist", "我关注的商品"), ("prefs", "我记得的关于您的信息"), ("forget", "删除您的所有数据"),
           ("human", "转人工客服")],
}


def t(key: str, language: str = "en", **values: object) -> str:
    table = TEXTS[key]
    text = table.get(language) or table["en"]
    return text.format(**values) if values else text


def escape(text: str) -> str:
    """Text safe inside Telegram HTML (``&``, ``<`` and ``>``; quotes need no escaping outside attributes)."""
    return html.escape(text, quote=False)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """``text`` in pieces of at most ``limit`` UTF-16 units, cut at the last paragraph break, else line
    break, else sentence end, else space before the limit (a hard cut only inside one giant word)."""
    pieces: list[str] = []
    rest = text.strip()
    while rest:
        if utf16_len(rest) <= limit:
            pieces.append(rest)
            break
        # the longest prefix within the limit (code points, measured in UTF-16 units)
        n, units = 0, 0
        for ch in rest:
            units += 2 if ord(ch) > 0xFFFF else 1
            if units > limit:
                break
            n += 1
        head = rest[:n]
        cut = n  # a hard cut only when the piece has no break at all
        for floor in (n // 3, 0):  # a break that leaves a fair-sized piece first, else any break
            found = [(i, sep) for sep in ("\n\n", "\n", ". ", "。", " ") if (i := head.rfind(sep)) > floor]
            if found:
                i, sep = found[0]
                cut = i + (len(sep) if sep in (". ", "。") else 0)
                break
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return [p for p in pieces if p]


@dataclass
class OutMessage:
    """One Telegram message to send: HTML text (or a caption under a photo) and keyboard rows."""

    html: str
    rows: list[list[Button]] = field(default_factory=list)
    photo: str | None = None  # an http(s) URL or a local file path (uploaded as multipart)


def card_html(card: Card, language: str) -> str:
    """A product card: numbered title in bold, price and stock, brand and attributes; all escaped."""
    title = card.title if len(card.title) <= 300 else card.title[:299] + "…"  # a caption holds 1024 characters
    lines = [f"<b>{card.rank}. {escape(title)}</b>",
             f"{escape(format_price(card.price, card.currency))} · {escape(stock_text(card.stock, language, card.stock_counted))}"]
    extra = [card.brand] if card.brand else []
    extra += [card.attributes[a] for a in ("color", "size", "material") if card.attributes.get(a)]
    if extra:
        lines.append(escape(" · ".join(extra)))
    return "\n".join(lines)


def card_rows(card: Card, turn_id: str | None, language: str) -> list[list[Button]]:
    rows = [[Button(t("btn_details", language), f"details:{card.sku}"),
             Button(t("btn_similar", language), f"similar:{card.sku}")]]
    if turn_id:
        rows.append([Button("👍", f"up:{turn_id}:{card.sku}"), Button("👎", f"down:{turn_id}:{card.sku}")])
    return rows


def _label(b: Button, language: str) -> Button:
    return Button(t("btn_next", language), b.payload) if b.payload == "more" else b


def _text_messages(text: str, rows: list[list[Button]], limit: int = TEXT_LIMIT) -> list[OutMessage]:
    parts = split_text(text, limit)
    out = [OutMessage(escape(p)) for p in parts]
    if out:
        out[-1].rows = rows
    return out


def _rows(buttons: list[Button], per_row: int = 3) -> list[list[Button]]:
    return [buttons[i:i + per_row] for i in range(0, len(buttons), per_row)]


def plan(reply: Reply, text: str | None = None) -> list[OutMessage]:
    """The messages that show ``reply`` (``text`` overrides ``reply.text``, e.g. a streamed final text)."""
    lang = reply.language
    body = reply.text if text is None else text
    buttons = [_label(b, lang) for b in reply.buttons]
    if reply.table:
        table = render_table(reply.table, width=24)
        head = escape(body.strip())
        pre = f"<pre>{escape(table)}</pre>"
        rows = _rows(buttons, 2)
        if utf16_len(body) + utf16_len(table) + 2 <= TEXT_LIMIT:
            return [OutMessage(f"{head}\n{pre}" if head else pre, rows)]
        out = _text_messages(body, [])
        out += [OutMessage(f"<pre>{escape(p)}</pre>") for p in split_text(table, TEXT_LIMIT - 16)]
        out[-1].rows = rows
        return out
    if len(reply.cards) == 1 and reply.intent in PRODUCT_PAGES:
        card = reply.cards[0]
        rows = _rows(buttons, 3)
        if not card.image_url:
            return _text_messages(body, rows)
        if utf16_len(body) <= CAPTION_LIMIT:
            return [OutMessage(escape(body.strip()), rows, photo=card.image_url)]
        return [OutMessage(card_html(card, lang), [], photo=card.image_url), *_text_messages(body, rows)]
    if reply.cards:
        # the list's own thumbs stay with its heading; paging and refining go under the last product
        whole = [b for b in buttons if b.payload.split(":")[0] in {"up", "down"}] if body.strip() else []
        nav = [b for b in buttons if b not in whole]
        if len(reply.cards) >= 2 and reply.turn_id:
            a, b = reply.cards[0].rank, reply.cards[1].rank
            nav.append(Button(t("btn_compare", lang), f"tg:cmp:{reply.turn_id}:{a},{b}"))
        out = _text_messages(body, [whole] if whole else []) if body.strip() else []
        for card in reply.cards:
            out.append(OutMessage(card_html(card, lang), card_rows(card, reply.turn_id, lang), photo=card.image_url))
        if nav:
            out[-1].rows = out[-1].rows + _rows(nav, 3)
        return out
    return _text_messages(body, _rows(buttons, 3)) if body.strip() else []
