"""How replies look in Telegram, without a server: escaping (checked with the fake server's Telegram HTML
parser), splitting at Telegram's limits, the layout of lists, product pages and tables, callback data."""

from __future__ import annotations

import random
import re

import pytest

from bot.channels.telegram.bot import PayloadCodec, _file_url, webhook_secret
from bot.channels.telegram.render import CAPTION_LIMIT, TEXT_LIMIT, card_html, escape, plan, split_text, utf16_len
from bot.dialogue.replies import Button, Card, Reply
from bot.settings import Settings
from tests.fakes.telegram_server import BadRequest, parse_html

NASTY = [
    "Tom & Jerry <Deluxe>",
    "<b>bold</b> & <i>italic",
    "a < b > c && d ; &amp; &lt;",
    '"quoted" \'single\' `code` *stars* _under_ [link](http://x)',
    "</pre><script>alert(1)</script>",
    "emoji 😀👍🏽 and 中文 标题 《书》",
    "\u200b zero width \ufeff bom",
]


def card(title: str, rank: int = 1, **kw: object) -> Card:
    return Card(sku=f"S{rank}", title=title, price=1234.5, currency="CNY", stock=0, rank=rank, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", NASTY)
def test_escaped_text_parses_back_to_itself(text: str) -> None:
    plain, entities = parse_html(escape(text))
    assert plain == text and entities == []
    plain, entities = parse_html(card_html(card(text, brand="A&B", attributes={"color": "<red>"}), "zh"))
    assert plain.splitlines()[0] == f"1. {text}" and "¥1,234.50 · 缺货" in plain and "A&B · <red>" in plain
    assert [e["type"] for e in entities] == ["bold"]


def test_the_fake_parser_refuses_what_telegram_refuses() -> None:
    for bad in ("Tom & Jerry", "<Deluxe>", "<b>open", "a <b>x</i>", "1 < 2"):
        with pytest.raises(BadRequest, match="can't parse entities"):
            parse_html(bad)


def test_split_text_respects_limits_and_keeps_every_word() -> None:
    rng = random.Random(7)
    words = ["shoe", "靴子", "😀", "a" * 50, "end.", "\n", "\n\n", "price:", "$9.99"]
    for limit in (50, 200, TEXT_LIMIT):
        for _ in range(30):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 3000)))
            parts = split_text(text, limit)
            assert all(0 < utf16_len(p) <= limit for p in parts)
            assert " ".join(parts).split() == text.split()


def test_split_prefers_paragraphs_then_lines_then_words() -> None:
    text = "A" * 30 + "\n\n" + "B" * 30 + "\n" + "C" * 30
    assert split_text(text, 70) == ["A" * 30, "B" * 30 + "\n" + "C" * 30]
    assert split_text("word " * 30, 52)[0] == " ".join(["word"] * 10)
    assert split_text("x" * 130, 50) == ["x" * 50, "x" * 50, "x" * 30]  # one giant word: a hard cut
    assert split_text("😀" * 30, 10) == ["😀" * 5] * 6  # surrogate pairs count twice and are never cut


def test_a_result_list_is_one_message_per_product_with_the_paging_buttons_last() -> None:
    turn = "t" * 32
    reply = Reply("3 products match:", cards=[card("A", 1, image_url="https://x/a.jpg"), card("B", 2), card("C", 3)],
                  buttons=[Button("More", "more"), Button("Cheaper", "cheaper"), Button("👍", f"up:{turn}"),
                           Button("👎", f"down:{turn}")], turn_id=turn)
    out = plan(reply)
    assert [o.photo for o in out] == [None, "https://x/a.jpg", None, None]
    assert [[b.payload for b in row] for row in out[0].rows] == [[f"up:{turn}", f"down:{turn}"]]
    assert [[b.payload for b in row] for row in out[1].rows] == [["details:S1", "similar:S1"], [f"up:{turn}:S1", f"down:{turn}:S1"]]
    assert [[b.label for b in row] for row in out[-1].rows[2:]] == [["Next page ▶", "Cheaper", "⚖️ Compare"]]
    assert out[-1].rows[2][2].payload == f"tg:cmp:{turn}:1,2"
    assert len(out[-1].rows[2][2].payload.encode()) <= 64


def test_a_product_page_is_a_photo_with_the_details_or_a_photo_then_text() -> None:
    short = Reply("Mug\n$5.00\nIn stock (3 left).", cards=[card("Mug", image_url="https://x/m.jpg")],
                  buttons=[Button("Similar", "similar:S1")], intent="details", language="en")
    (only,) = plan(short)
    assert only.photo == "https://x/m.jpg" and only.html.startswith("Mug") and only.rows[0][0].payload == "similar:S1"
    long = Reply("Mug\n" + "A long description. " * 80, cards=[card("Mug", image_url="https://x/m.jpg")],
                 buttons=[Button("Similar", "similar:S1")], intent="details")
    first, *rest = plan(long)
    assert first.photo and utf16_len(parse_html(first.html)[0]) <= CAPTION_LIMIT and not first.rows
    assert rest and rest[-1].rows and all(o.photo is None for o in rest)
    no_image = plan(Reply("Mug details", cards=[card("Mug")], intent="details"))
    assert [o.photo for o in no_image] == [None]


def test_huge_tables_and_empty_replies() -> None:
    rows = [["", *(f"{i}. product" for i in range(4))]] + [[f"attr {n}", *(f"value {n}" * 3 for _ in range(4))] for n in range(200)]
    out = plan(Reply("Here is how they compare:", table=rows, buttons=[Button("Details 1", "details:S1")]))
    assert len(out) > 1 and all(utf16_len(parse_html(o.html)[0]) <= TEXT_LIMIT for o in out)
    assert all(re.fullmatch(r"<pre>.*</pre>", o.html, re.S) for o in out[1:]) and out[-1].rows
    assert plan(Reply("")) == [] and plan(Reply("   ")) == []


def test_callback_keys_are_short_stable_and_never_look_like_payloads() -> None:
    long = "details:" + "X" * 200
    k = PayloadCodec.key(long)
    assert k == PayloadCodec.key(long) and k.startswith("h:") and len(k.encode()) <= 64
    assert PayloadCodec.fits("more") and not PayloadCodec.fits(long) and not PayloadCodec.fits("h:short")
    assert PayloadCodec.fits("up:" + "a" * 32 + ":SKU-1234567") and not PayloadCodec.fits("é" * 33)  # bytes, not characters


def test_settings_and_urls() -> None:
    s = Settings(telegram_token="1:abc", telegram_admins="12, 34")  # type: ignore[arg-type]
    assert s.telegram_admins == [12, 34]
    secret = webhook_secret(s)
    assert re.fullmatch(r"[0-9a-f]{48}", secret) and secret == webhook_secret(Settings(telegram_token="1:abc"))  # type: ignore[arg-type]
    assert secret != webhook_secret(Settings(telegram_token="1:abd"))  # type: ignore[arg-type]
    assert webhook_secret(Settings(telegram_webhook_secret="mine")) == "mine"  # type: ignore[arg-type]
    assert _file_url("https://api.telegram.org/bot") == "https://api.telegram.org/file/bot"
    assert _file_url("http://127.0.0.1:8081/bot") == "http://127.0.0.1:8081/file/bot"
