"""Watchlist notices end to end in Telegram: shoppers create watches by chatting with the real ShopBot
application (demo catalog, SQLite) against the fake Bot API server; a reindex of a small CSV then re-runs
the watches (bot/services.py -> bot/watch.py) and sends each shopper one message through the Bot API."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.app import Assistant
from bot.channels.telegram.bot import ShopBot
from bot.services import reindex
from bot.settings import Settings
from tests.conftest import ROWS, write_catalog
from tests.fakes.telegram_harness import Running, running
from tests.fakes.telegram_server import TOKEN, Call, FakeTelegram

ANN, BO, CY, DAN = 3001, 3002, 3003, 3004
EAR = ("EAR-1", "Sony WH-CH520 Bluetooth Headphones, Black", "索尼 WH-CH520 蓝牙耳机 黑色", "Wireless on-ear headphones.",
       "Electronics > Headphones", "Sony", "49.99", "10", "black", "", "plastic")
COAT = ("COA-4", "Women's Down Winter Coat, Red", "女款红色羽绒冬季外套", "Long down coat.", "Apparel > Coats",
        "Northwind", "75.00", "3", "red", "S|M", "down")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, llm="off", telegram_max_rate=0, telegram_edit_interval=0,
                    telegram_token=TOKEN)


def notices(fake: FakeTelegram, since: int) -> list[Call]:
    """Messages sent after call ``since`` that are watch notices."""
    return [c for c in fake.calls[since:] if c.method == "sendMessage" and c.status == 200
            and ("new products for your watch" in c.text or "有新商品" in c.text)]


def test_watches_notify_once_per_new_product(assistant: Assistant, settings: Settings, tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeTelegram() as tg, running(ShopBot(assistant, settings), tg) as bot:
            s = settings.model_copy(update={"telegram_api_url": tg.base_url})
            await scenario(bot, tg, s)

    async def scenario(bot: Running, tg: FakeTelegram, s: Settings) -> None:
        ann = await bot.say(ANN, "tell me when a red winter coat under $80 is in stock")
        assert "watching for" in ann[0].text
        bo = await bot.say(BO, "有500元以下的蓝牙耳机就通知我", language_code="zh-hans")
        assert "我会关注" in bo[0].text
        cy = await bot.say(CY, "watch for red winter coats")
        cancel = next(b["callback_data"] for b in cy[0].buttons if b["callback_data"].startswith("unwatch:"))
        await bot.press(CY, cy[0], cancel)
        assert await asyncio.to_thread(assistant.store.watches, f"telegram:{CY}") == []
        days, assistant.dialogue.watch_days = assistant.dialogue.watch_days, 1 / 86400  # DAN's expires in a second
        await bot.say(DAN, "watch for red winter coats")
        assistant.dialogue.watch_days = days
        await asyncio.sleep(1.2)

        listed = await bot.say(ANN, "/watchlist")
        assert "Your watchlist" in listed[0].text and "winter coat" in listed[0].text
        assert any(b["callback_data"].startswith("unwatch:") for b in listed[0].buttons)

        first = write_catalog(tmp_path / "one.csv", [*ROWS, EAR])
        n = len(tg.calls)
        report = await asyncio.to_thread(reindex, s, first, full=False)
        assert "Watchlists: 2 checked, 2 shoppers notified" in "\n".join(report.lines())
        got = notices(tg, n)
        assert sorted(c.chat_id for c in got) == [ANN, BO]
        ann_notice = next(c for c in got if c.chat_id == ANN)
        assert "Women's Quilted Winter Coat, Red" in ann_notice.text and "Kids'" not in ann_notice.text  # COA-3: out of stock
        assert "details:COA-1" in [b["callback_data"] for b in ann_notice.buttons]
        bo_notice = next(c for c in got if c.chat_id == BO)
        assert "蓝牙耳机" in bo_notice.text and "EAR-1" in str(bo_notice.buttons)

        n = len(tg.calls)
        await asyncio.to_thread(reindex, s, first, full=False)
        assert notices(tg, n) == []  # the same products: nothing twice

        second = write_catalog(tmp_path / "two.csv", [*ROWS, EAR, COAT])
        n = len(tg.calls)
        await asyncio.to_thread(reindex, s, second, full=False)
        [again] = notices(tg, n)
        assert again.chat_id == ANN and "Down Winter Coat" in again.text and "Quilted" not in again.text
        assert not [c for c in tg.calls if c.chat_id in (CY, DAN) and "new products for your watch" in c.text]

    asyncio.run(main())
