"""The shop team's commands in Telegram: /stats, /reindex, /models (trained versions and what is served),
/handoffs (with a button that gives a conversation back to the bot), and a notice to every admin when a
shopper asks for a person.

Only the Telegram user ids in ``telegram_admins`` may use them; anyone else gets a polite refusal.
The work itself is the store's, the indexer's and the registry's, the same as ``shopbot stats`` /
``reindex`` / ``models list`` / ``handoffs``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from telegram import CallbackQuery, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot.channels.telegram.render import OutMessage, escape, t
from bot.dialogue.messages import say
from bot.dialogue.replies import Button, Event
from bot.services import reindex
from bot.store.records import StoreUnavailable
from model.training.registry import KINDS, Registry, version_lines
from retrieval.bundle import current_dir

if TYPE_CHECKING:
    from bot.channels.telegram.bot import ShopBot

__all__ = ["AdminCommands"]

log = logging.getLogger(__name__)
Context = ContextTypes.DEFAULT_TYPE
LIST_AT_MOST = 20


def _lang(update: Update) -> str:
    code = (update.effective_user.language_code if update.effective_user else None) or ""
    return "zh" if code.lower().startswith("zh") else "en"


class AdminCommands:
    def __init__(self, shop: ShopBot) -> None:
        self.shop = shop
        self._reindexing = False

    def allowed(self, update: Update) -> bool:
        return update.effective_user is not None and update.effective_user.id in self.shop.admins

    async def _refuse(self, update: Update, context: Context) -> bool:
        if self.allowed(update):
            return False
        assert update.effective_chat is not None
        await self.shop.send(context.bot, update.effective_chat.id, OutMessage(escape(t("not_admin", _lang(update)))))
        return True

    async def _say(self, update: Update, context: Context, text: str, rows: list[list[Button]] | None = None) -> Message:
        assert update.effective_chat is not None
        return await self.shop.send(context.bot, update.effective_chat.id, OutMessage(escape(text), rows or []))

    async def on_stats(self, update: Update, context: Context) -> None:
        if await self._refuse(update, context):
            return
        lang = _lang(update)
        try:
            st = await asyncio.to_thread(self.shop.assistant.store.stats)
        except StoreUnavailable as exc:
            await self._say(update, context, t("store_down", lang, error=str(exc)))
            return

        def lines(pairs: list[tuple[str, int]]) -> str:
            return "\n".join(f"  {n:>4}  {q}" for q, n in pairs[:10]) or f"  {t('none', lang)}"

        ratio = "-" if st["thumbs_ratio"] is None else f"{st['thumbs_ratio']:.0%}"
        await self._say(update, context, t(
            "stats", lang, turns=st["turns"], users=st["users"], sessions=st["sessions"], p50=st["latency_ms_p50"],
            handoffs=st["open_handoffs"], up=st["thumbs_up"], down=st["thumbs_down"], ratio=ratio,
            top=lines(st["top_queries"]), zero=lines(st["zero_result_queries"])))

    async def on_models(self, update: Update, context: Context) -> None:
        """The trained versions of each model, which one is active, and what this bot serves right now (it
        picks up a newly activated version within SHOPBOT_RELOAD_SECONDS); `shopbot models` changes them."""
        if await self._refuse(update, context):
            return
        lang = _lang(update)
        lines = await asyncio.to_thread(version_lines, Registry(self.shop.settings.models_dir), KINDS, last=3)
        serving = ", ".join(f"{k} {v}" for k, v in sorted(self.shop.assistant.dialogue.versions.items()))
        await self._say(update, context, t("models", lang, versions="\n".join(lines), serving=serving))

    async def on_reindex(self, update: Update, context: Context) -> None:
        """Rebuild the index from the configured catalog in the background and swap it in when ready."""
        if await self._refuse(update, context):
            return
        lang = _lang(update)
        if self._reindexing:
            await self._say(update, context, t("reindex_busy", lang))
            return
        self._reindexing = True
        note = await self._say(update, context, t("reindex_started", lang))
        full = "full" in (context.args or [])
        context.application.create_task(self._reindex(note, lang, full))

    async def _reindex(self, note: Message, lang: str, full: bool) -> None:
        try:
            summary, n = await asyncio.to_thread(self._rebuild, full)
            text = t("reindex_done", lang, summary=summary, n=n)
        except Exception as exc:  # a bad catalog: the old index keeps serving
            log.exception("reindex failed")
            text = t("reindex_failed", lang, error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        finally:
            self._reindexing = False
        with contextlib.suppress(TelegramError):
            await note.edit_text(escape(text), parse_mode=ParseMode.HTML)

    def _rebuild(self, full: bool) -> tuple[str, int]:
        s = self.shop.settings
        report = reindex(s, s.catalog, full=full)
        assistant = self.shop.assistant
        assistant.reload()  # the index, its vocabulary and its ranker version together
        if assistant.engine.bundle != current_dir(s.index_root):
            raise RuntimeError("the new index was built but cannot be loaded; the previous one keeps serving")
        return str(report.summary()), len(assistant.engine.products)

    async def on_handoffs(self, update: Update, context: Context) -> None:
        if await self._refuse(update, context):
            return
        lang = _lang(update)
        try:
            rows = await asyncio.to_thread(self.shop.assistant.store.open_handoffs)
        except StoreUnavailable as exc:
            await self._say(update, context, t("store_down", lang, error=str(exc)))
            return
        if not rows:
            await self._say(update, context, t("handoffs_none", lang))
            return
        await self._say(update, context, t("handoffs_head", lang, n=len(rows)))
        for h in rows[:LIST_AT_MOST]:
            text = t("handoff_line", lang, user=h["user_id"], since=f"{h['since']:%Y-%m-%d %H:%M}",
                     reason=h["reason"] or "-", last=(h["last_message"] or "-")[:300])
            await self._say(update, context, text, [[Button(t("btn_release", lang), f"tg:rel:{h['user_id']}")]])

    async def release(self, update: Update, context: Context, query: CallbackQuery, user_id: str) -> None:
        lang = _lang(update)
        if not self.allowed(update):
            await query.answer(t("not_admin", lang))
            return
        store = self.shop.assistant.store
        assert update.effective_user is not None
        by = f"telegram:{update.effective_user.id}"
        ok = await asyncio.to_thread(store.release, user_id, by)
        text = t("released_admin" if ok else "not_handed_over", lang, user=user_id)
        await query.answer(text[:200])
        if isinstance(query.message, Message):
            with contextlib.suppress(BadRequest):
                await query.message.edit_text(escape(text), parse_mode=ParseMode.HTML)
        channel, _, external = user_id.partition(":")
        if ok and channel == "telegram" and external.lstrip("-").isdigit():
            state = await asyncio.to_thread(store.load_state, user_id) or {}
            with contextlib.suppress(TelegramError):  # the shopper may have blocked the bot meanwhile
                await self.shop.send(context.bot, int(external), OutMessage(escape(say("released", state.get("lang") or "en"))))

    async def notify_handoff(self, bot: Any, update: Update, event: Event) -> None:
        """Tell every admin that a shopper wants a person, with a button that gives the chat back later."""
        user = update.effective_user
        if user is None:
            return
        uid = f"telegram:{user.id}"
        last = event.text or "-"
        for admin in sorted(self.shop.admins):
            if admin == user.id:
                continue
            text = t("handoff_notice", "en", user=uid, name=user.full_name, last=last[:300])
            try:
                await self.shop.send(bot, admin, OutMessage(escape(text), [[Button(t("btn_release", "en"), f"tg:rel:{uid}")]]))
            except TelegramError as exc:  # an admin who never started the bot cannot be written to
                log.warning("Could not tell admin %s about a handoff (%s).", admin, exc)
