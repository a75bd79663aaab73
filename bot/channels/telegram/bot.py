"""The Telegram adapter (python-telegram-bot 22): updates in, Events to the assistant, replies rendered back.

It translates and decides nothing about shopping: what to answer is the dialogue manager's business
(bot/dialogue/manager.py), how a reply looks is bot/channels/telegram/render.py. What lives here is what only Telegram
has:

* one chat's updates run one at a time and in order, different chats concurrently
  (:class:`PerChatProcessor`), so a slow shopper never holds up the others;
* flood control: python-telegram-bot's AIORateLimiter keeps the bot under ``telegram_max_rate``
  messages per second and waits out every 429 ``retry_after`` (retried, never dropped);
* callback data within Telegram's 64 bytes that survives restarts and works on every worker: payloads
  that fit go as they are, longer ones are stored in SQL under a short hash (:class:`PayloadCodec`);
* text the language model is still writing: a typing action at once, then one message edited as
  verified text arrives, at most once per ``telegram_edit_interval``;
* every update fetched by long polling answered after a SIGKILL, and a redelivered one not twice: fetched
  updates are kept in SQL before python-telegram-bot confirms them to Telegram, recorded when answered, and
  replayed on start (:class:`~bot.channels.telegram.inbox.PollingInbox`);
* commands: /start /help /search /recommend /prefs /forget /human for shoppers, /stats /reindex
  /handoffs for the shop's admins (``telegram_admins``); everyone else gets a polite refusal;
* CPU per message, which decides how many shoppers one process serves (tests/benchmarks/bench_telegram.py):
  Bot API calls over a lean keep-alive HTTP backend (bot/channels/telegram/http.py), messages nobody edits
  later sent as plain JSON (:meth:`ShopBot.post`), and dialogue turns computed one (SQLite) or a few
  (a database server) at a time (:class:`TurnGate`) instead of trading the GIL among many.

``shopbot telegram`` (bot/cli/telegram.py) runs it by long polling or behind a webhook.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import inspect
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Sequence
from pathlib import Path
from typing import Any

from telegram import (
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ExtBot,
    MessageHandler,
    filters,
)

from bot.app import Assistant
from bot.channels.telegram.admin import AdminCommands
from bot.channels.telegram.http import telegram_request
from bot.channels.telegram.inbox import PollingInbox
from bot.channels.telegram.render import COMMANDS, OutMessage, escape, plan, split_text, t, utf16_len
from bot.dialogue.replies import Button, Event, Reply
from bot.observability.metrics import count_error
from bot.settings import Settings
from bot.store.records import StoreUnavailable

__all__ = ["CHANNEL", "LeanBot", "PayloadCodec", "PerChatProcessor", "ShopBot", "TurnGate", "webhook_secret"]

log = logging.getLogger(__name__)

CHANNEL = "telegram"
DATA_LIMIT = 64  # bytes of callback_data Telegram accepts
TOAST_LIMIT = 200  # characters an answerCallbackQuery text may have
TYPING_AFTER = 0.4  # seconds a turn may take before the shopper sees "typing…"
TYPING_EVERY = 4.5  # Telegram shows a chat action for about 5 seconds
ALLOWED_UPDATES = ["message", "callback_query"]
CONNECTIONS = 32  # Bot API requests in flight at once (each chat sends its messages one after another)
# dialogue turns computing at once (see TurnGate): one with SQLite, whose turns wait for nothing; with a
# database server a turn waits for several round trips, and other turns can use those waits
TURNS_AT_ONCE = {"sqlite": 1, "server": 4}
TURN_HOLD = 0.2  # seconds a turn may keep its place before it counts as waiting rather than computing
Context = ContextTypes.DEFAULT_TYPE


def webhook_secret(settings: Settings) -> str:
    """The configured secret, else one derived from the bot token: every worker agrees on it unconfigured."""
    if settings.telegram_webhook_secret is not None:
        return settings.telegram_webhook_secret.get_secret_value()
    token = settings.telegram_token.get_secret_value() if settings.telegram_token else ""
    return hashlib.sha256(b"shopbot-webhook:" + token.encode()).hexdigest()[:48]


class PayloadCodec:
    """Button payloads <-> callback_data: short ones as they are, long ones as ``h:`` + a hash kept in SQL.

    The key is a hash of the payload itself, so every worker and every restart derives the same key and
    a stored key never changes meaning; the in-memory map is only a cache in front of the table."""

    PREFIX = "h:"

    def __init__(self, store: Any, cache_size: int = 20_000) -> None:
        self.store = store
        self.cache_size = cache_size
        self._cache: OrderedDict[str, str] = OrderedDict()

    @classmethod
    def key(cls, payload: str) -> str:
        digest = hashlib.sha256(payload.encode()).digest()
        return cls.PREFIX + base64.urlsafe_b64encode(digest).decode()[:24]

    @classmethod
    def fits(cls, payload: str) -> bool:
        return len(payload.encode()) <= DATA_LIMIT and not payload.startswith(cls.PREFIX)

    def encode(self, payload: str) -> str:
        """callback_data for ``payload`` (blocking: may write to the database; call it in a thread)."""
        if self.fits(payload):
            return payload
        key = self.key(payload)
        if key not in self._cache:
            self.store.save_payload(key, payload)
            self._remember(key, payload)
        return key

    def decode(self, data: str) -> str | None:
        """The payload behind callback_data; None when the key is unknown (blocking, like encode)."""
        if not data.startswith(self.PREFIX):
            return data
        payload = self._cache.get(data)
        if payload is None:
            payload = self.store.load_payload(data)
            if payload is not None:
                self._remember(data, payload)
        return payload

    def _remember(self, key: str, payload: str) -> None:
        self._cache[key] = payload
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


class PerChatProcessor(BaseUpdateProcessor):
    """Concurrent updates, except that one chat's updates run one at a time in the order they came.

    A shopper who types two messages quickly gets the answers in order and the second turn sees the
    state the first one saved; other shoppers are served meanwhile. With an ``inbox``, an update answered
    before is skipped and an answered one is recorded (:class:`~bot.channels.telegram.inbox.PollingInbox`)."""

    def __init__(self, max_concurrent_updates: int = 256, inbox: PollingInbox | None = None) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}
        self.inbox = inbox
        self.processed = 0  # updates finished (handled or failed), for tests and the load test

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        inbox = self.inbox if isinstance(update, Update) else None
        if inbox is not None and isinstance(update, Update) and not inbox.take(update.update_id):
            if inspect.iscoroutine(coroutine):
                coroutine.close()  # never started: no "was never awaited" warning
            self.processed += 1
            return
        await self._in_order(update, coroutine)
        if inbox is not None and isinstance(update, Update):
            await inbox.done(update.update_id)  # after the handlers returned (not when cancelled: replayed then)

    async def _in_order(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = _chat_key(update)
        if key is None:
            try:
                await coroutine
            finally:
                self.processed += 1
            return
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                await coroutine
        finally:
            self.processed += 1
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


class TurnGate:
    """At most ``size`` dialogue turns compute at once, all chats together; the others wait in order.

    A turn is Python that holds the GIL (SQL through the ORM, the NLU) around encoder calls that are
    too short to run usefully beside another turn's Python. Turns side by side only trade the GIL back
    and forth: measured on the 2-core load-test machine, the dialogue alone does 70 turns/s one at a
    time at 14 ms of CPU each, and 62 turns/s two at a time at 20 ms each; under the load test, up to
    six at once (the default thread pool, before this gate) cost 21 ms each. A turn that has kept its
    place for ``hold`` seconds gives it up: it is waiting (a database round trip, a timeout), not
    computing, so a slow chat never holds the others up for longer than that."""

    def __init__(self, size: int, hold: float) -> None:
        if size < 1:
            raise ValueError("a turn gate needs at least one place")
        self.size = size
        self.hold = hold
        self._places: asyncio.Semaphore | None = None  # made in the running loop

    def reset(self) -> None:
        self._places = None

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        if self._places is None:
            self._places = asyncio.Semaphore(self.size)
        places = self._places
        await places.acquire()
        freed = False

        def free() -> None:
            nonlocal freed
            if not freed:
                freed = True
                places.release()

        timer = asyncio.get_running_loop().call_later(self.hold, free)
        try:
            yield
        finally:
            timer.cancel()
            free()


def _chat_key(update: object) -> int | None:
    if isinstance(update, Update):
        if update.effective_chat is not None:
            return update.effective_chat.id
        if update.effective_user is not None:
            return update.effective_user.id
    return None


def _lang(update: Update) -> str:
    code = (update.effective_user.language_code if update.effective_user else None) or ""
    return "zh" if code.lower().startswith("zh") else "en"


class LeanBot(ExtBot[Any]):
    """python-telegram-bot's ExtBot plus :meth:`call`: a Bot API method with plain JSON in and out.

    Everything a typed method does on the way out still happens (the rate limiter, 429 retries, errors
    as TelegramError); only the library objects are skipped. The bot uses it where nothing reads
    the answer (see :meth:`ShopBot.post`).

    With an inbox (``_inbox``, set by :meth:`ShopBot.application`), :meth:`get_updates` keeps every fetched
    batch in SQL before returning it: the Updater confirms a batch to Telegram with its next poll, before
    the updates are answered, so this is the last moment at which a kill can still lose nothing."""

    _inbox: PollingInbox | None = None

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        return await self._post(method, params)

    async def get_updates(self, *args: Any, **kwargs: Any) -> tuple[Update, ...]:
        updates = await super().get_updates(*args, **kwargs)
        if updates and self._inbox is not None:
            await self._inbox.keep(updates)
        return updates


class ShopBot:
    """The assistant behind a python-telegram-bot Application; :meth:`application` builds one."""

    def __init__(self, assistant: Assistant, settings: Settings, *, turns_at_once: int | None = None,
                 polling_inbox: bool = True) -> None:
        """``polling_inbox`` False for ``shopbot worker``: its updates come from the queue, which makes them once
        through ``handled_updates``; an inbox there would replay a polling run's leftovers in every worker."""
        self.assistant = assistant
        self.settings = settings
        self.admins = set(settings.telegram_admins)
        self.codec = PayloadCodec(assistant.store)
        self.edit_interval = settings.telegram_edit_interval
        self.turns = 0  # events handed to the assistant (the load test checks none is lost or doubled)
        if turns_at_once is None:
            url = str(getattr(assistant.store, "url", ""))
            turns_at_once = TURNS_AT_ONCE["sqlite" if url.startswith("sqlite") else "server"]
        self.gate = TurnGate(turns_at_once, TURN_HOLD)
        # off for a store without the inbox's methods
        self.inbox = PollingInbox(assistant.store, channel=CHANNEL, enabled=polling_inbox)
        self._watch: asyncio.Task[None] | None = None

    # --------------------------------------------------------------------------- application

    def application(self, *, token: str | None = None, base_url: str | None = None, max_retries: int = 10,
                    concurrency: int = 256) -> Application:  # type: ignore[type-arg]
        """A configured Application (not started): rate limiter, per-chat ordering, every handler."""
        token = token or (self.settings.telegram_token.get_secret_value() if self.settings.telegram_token else "")
        if not token:
            raise ValueError("No Telegram bot token: set SHOPBOT_TELEGRAM_TOKEN to the token @BotFather gave you.")
        base = base_url or self.settings.telegram_api_url
        rate = self.settings.telegram_max_rate
        # a busy machine or API delays a send rather than failing it (a failed send is a lost reply)
        timeouts: dict[str, float] = {"read_timeout": 20, "write_timeout": 20, "connect_timeout": 10, "pool_timeout": 10}
        bot = LeanBot(
            token, base_url=base, base_file_url=_file_url(base),
            # keep-alive HTTP on asyncio streams: a sixth of httpx's CPU per Bot API call (bot/channels/telegram/http.py)
            request=telegram_request(base, connection_pool_size=CONNECTIONS, **timeouts),
            get_updates_request=telegram_request(base, connection_pool_size=1, **timeouts),
            rate_limiter=AIORateLimiter(overall_max_rate=rate, overall_time_period=1 if rate else 0, max_retries=max_retries),
        )
        inbox = self.inbox if self.inbox.enabled else None
        bot._inbox = inbox
        app = (
            Application.builder().bot(bot)
            .concurrent_updates(PerChatProcessor(concurrency, inbox))
            .post_init(self._post_init).post_shutdown(self._post_shutdown)
            .build()
        )
        self.add_handlers(app)
        return app

    def add_handlers(self, app: Application) -> None:  # type: ignore[type-arg]
        admin = AdminCommands(self)
        for name, handler in (("start", self.on_start), ("help", self.on_help), ("search", self.on_search),
                              ("recommend", self.on_recommend), ("prefs", self.on_prefs), ("forget", self.on_forget),
                              ("human", self.on_human), ("watchlist", self.on_watchlist), ("stats", admin.on_stats), ("reindex", admin.on_reindex),
                              ("handoffs", admin.on_handoffs), ("models", admin.on_models)):
            app.add_handler(CommandHandler(name, handler))
        app.add_handler(CallbackQueryHandler(self.on_button))
        app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT, self.on_text))
        app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & ~filters.TEXT, self.on_other))
        app.add_error_handler(self.on_error)
        self._admin = admin

    async def _post_init(self, app: Application) -> None:  # type: ignore[type-arg]
        # before polling begins (run_polling calls this first): what a killed run fetched and never answered
        await self.inbox.replay(app)
        if self.settings.reload_seconds > 0:  # serve what `shopbot reindex` / `train` publish, no restart
            self._watch = asyncio.get_running_loop().create_task(self.assistant.watch(self.settings.reload_seconds))
        for lang, commands in COMMANDS.items():
            with contextlib.suppress(TelegramError):  # a menu is a nicety; never a reason not to start
                await app.bot.set_my_commands([BotCommand(c, d) for c, d in commands],
                                              language_code=None if lang == "en" else lang)

    async def _post_shutdown(self, app: Application) -> None:  # type: ignore[type-arg]
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        self.gate.reset()  # a restarted application runs in a new event loop
        await self.assistant.aclose()

    # ------------------------------------------------------------------------------ shoppers

    def event(self, update: Update, *, text: str | None = None, payload: str | None = None) -> Event:
        user = update.effective_user
        assert user is not None
        return Event(user=str(user.id), channel=CHANNEL, text=text, payload=payload,
                     language=user.language_code, display_name=user.full_name)

    @staticmethod
    def user_id(update: Update) -> str:
        assert update.effective_user is not None
        return f"{CHANNEL}:{update.effective_user.id}"

    async def on_text(self, update: Update, context: Context) -> None:
        assert update.message is not None
        await self.converse(update, context, self.event(update, text=update.message.text or ""))

    async def on_other(self, update: Update, context: Context) -> None:
        """Photos, stickers, voice: the caption if there is one (else the dialogue's "I got no text")."""
        assert update.message is not None
        await self.converse(update, context, self.event(update, text=update.message.caption or ""))

    async def on_start(self, update: Update, context: Context) -> None:
        await self.converse(update, context, self.event(update, text=t("start_text", _lang(update))))

    async def on_help(self, update: Update, context: Context) -> None:
        await self.converse(update, context, self.event(update, text=t("help_text", _lang(update))))

    async def on_search(self, update: Update, context: Context) -> None:
        words = " ".join(context.args or [])
        await self.converse(update, context, self.event(update, text=words or t("help_text", _lang(update))))

    async def on_recommend(self, update: Update, context: Context) -> None:
        await self.converse(update, context, self.event(update, text=t("recommend_text", _lang(update))))

    async def on_watchlist(self, update: Update, context: Context) -> None:
        """/watchlist: the shopper's watches with a Cancel button each (bot/dialogue/watch.py answers the words)."""
        await self.converse(update, context, self.event(update, text="我的关注" if _lang(update) == "zh" else "my watchlist"))

    async def on_human(self, update: Update, context: Context) -> None:
        await self.converse(update, context, self.event(update, payload="handoff"))

    async def on_prefs(self, update: Update, context: Context) -> None:
        assert update.effective_chat is not None
        uid = self.user_id(update)
        store = self.assistant.store
        state, handed = await asyncio.to_thread(lambda: (store.load_state(uid) or {}, store.is_handed_over(uid)))
        lang = state.get("lang") or _lang(update)
        f = state.get("filters") or {}
        parts = [k.replace("_", " ") if v is True else f"{k.replace('_', ' ')} {'/'.join(map(str, v)) if isinstance(v, list) else v}"
                 for k, v in f.items() if v not in (None, [], False, "")]
        text = t("prefs", lang, lang={"zh": "中文"}.get(lang, "English"), query=state.get("query") or t("none", lang),
                 filters=", ".join(map(str, parts)) or t("none", lang), shown=len(state.get("shown") or []),
                 handoff=t("yes" if handed else "no", lang))
        await self.send(context.bot, update.effective_chat.id, OutMessage(escape(text)))

    async def on_forget(self, update: Update, context: Context) -> None:
        assert update.effective_chat is not None
        lang = _lang(update)
        rows = [[Button(t("btn_forget_yes", lang), "tg:forget:yes"), Button(t("btn_forget_no", lang), "tg:forget:no")]]
        await self.send(context.bot, update.effective_chat.id, OutMessage(escape(t("forget_confirm", lang)), rows))

    async def converse(self, update: Update, context: Context, event: Event,
                       query: CallbackQuery | None = None) -> list[Reply]:
        """One turn: the assistant's replies rendered in the chat (a button press may be answered in place); they
        are returned."""
        chat = update.effective_chat
        assert chat is not None
        replies = answered = await self._turn(context.bot, chat.id, event)
        if query is not None:
            toast = None
            if len(replies) == 1 and _plain(replies[0]) and utf16_len(replies[0].text) <= TOAST_LIMIT:
                toast, replies = replies[0].text, []
            await _answer(query, toast)
        for reply in replies:
            await self.deliver(context.bot, chat.id, reply)
            if reply.handoff:
                context.application.create_task(self._admin.notify_handoff(context.bot, update, event))
        return answered

    async def _turn(self, bot: Any, chat_id: int, event: Event) -> list[Reply]:
        self.turns += 1
        task = asyncio.ensure_future(self._handle(event))
        done, _ = await asyncio.wait({task}, timeout=TYPING_AFTER)
        if done:
            return task.result()
        typing = asyncio.create_task(self._keep_typing(bot, chat_id))
        try:
            return await task
        finally:
            typing.cancel()

    async def _handle(self, event: Event) -> list[Reply]:
        async with self.gate.turn():
            return await self.assistant.handle_async(event)

    @staticmethod
    async def _keep_typing(bot: Any, chat_id: int) -> None:
        while True:
            with contextlib.suppress(TelegramError):
                await bot.send_chat_action(chat_id, ChatAction.TYPING)
            await asyncio.sleep(TYPING_EVERY)

    # ------------------------------------------------------------------------------- buttons

    async def on_button(self, update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None
        lang = _lang(update)
        data = query.data or ""
        payload = await asyncio.to_thread(self.codec.decode, data) if data.startswith(PayloadCodec.PREFIX) else data
        if payload is None:
            await _answer(query, t("expired", lang))
            return
        if payload.startswith("tg:"):
            await self._own_button(update, context, query, payload)
            return
        kind = payload.split(":", 1)[0]
        replies = await self.converse(update, context, self.event(update, payload=payload), query)
        # the tick says the vote was counted: not for a thumb on another shopper's reply (in a group), which is refused
        recorded = any(r.intent in {"feedback_positive", "feedback_negative"} for r in replies)
        if kind in {"up", "down"} and recorded and isinstance(query.message, Message):
            await self._mark(query.message, query.data or "")

    async def _own_button(self, update: Update, context: Context, query: CallbackQuery, payload: str) -> None:
        """Buttons this adapter made itself: /forget's confirmation, Compare, an admin's Release."""
        lang = _lang(update)
        _, action, arg = payload.split(":", 2) if payload.count(":") >= 2 else (*payload.split(":", 1), "")
        message = query.message if isinstance(query.message, Message) else None
        if action == "forget":
            if arg == "yes":
                try:
                    await asyncio.to_thread(self.assistant.store.forget_user, self.user_id(update))
                    text = t("forget_done", lang)
                except StoreUnavailable:
                    text = t("forget_down", lang)
            else:
                text = t("forget_cancelled", lang)
            await _answer(query, None)
            if message is not None:
                with contextlib.suppress(BadRequest):
                    await message.edit_text(escape(text), parse_mode=ParseMode.HTML)
            return
        if action == "cmp":
            # "compare 1 and 2" for the list this button was under, if it is still the one on screen
            turn_id, _, ranks = arg.partition(":")
            uid = self.user_id(update)
            state = await asyncio.to_thread(self.assistant.store.load_state, uid) or {}
            a, _, b = ranks.partition(",")
            if state.get("shown_turn") != turn_id:
                await _answer(query, t("stale", state.get("lang") or lang))
                return
            text = t("compare_text", state.get("lang") or lang, a=a, b=b)
            await self.converse(update, context, self.event(update, text=text), query)
            return
        if action == "rel":
            await self._admin.release(update, context, query, arg)
            return
        await _answer(query, t("expired", lang))

    async def _mark(self, message: Message, data: str) -> None:
        """The pressed thumb shows a tick, so the shopper sees the vote was counted."""
        markup = message.reply_markup
        if markup is None:
            return
        rows = [[InlineKeyboardButton(("✅ " + b.text) if b.callback_data == data and not b.text.startswith("✅") else b.text,
                                      callback_data=b.callback_data) for b in row] for row in markup.inline_keyboard]
        with contextlib.suppress(BadRequest):
            await message.edit_reply_markup(InlineKeyboardMarkup(rows))

    # ------------------------------------------------------------------------------ sending

    async def deliver(self, bot: Any, chat_id: int, reply: Reply) -> None:
        if reply.live is not None:
            await self._stream(bot, chat_id, reply)
            return
        for out in plan(reply):
            await self.post(bot, chat_id, out)

    async def send(self, bot: Any, chat_id: int, out: OutMessage) -> Message:
        """One message, returned as a Message to edit later (streamed text, an admin's progress note)."""
        markup = await self.markup(out.rows)
        photo = _photo(out.photo)
        if photo is not None:
            try:
                return await bot.send_photo(chat_id, photo, caption=out.html, parse_mode=ParseMode.HTML, reply_markup=markup)  # type: ignore[no-any-return]
            except BadRequest as exc:  # an image Telegram cannot fetch: the card as text
                log.info("Photo %s refused (%s); sending the card as text.", out.photo, exc.message)
        return await bot.send_message(chat_id, out.html, parse_mode=ParseMode.HTML, reply_markup=markup,  # type: ignore[no-any-return]
                                      link_preview_options=LinkPreviewOptions(is_disabled=True))

    async def post(self, bot: Any, chat_id: int, out: OutMessage) -> None:
        """One message nobody edits later (headings, product cards, answers): :meth:`send` in plain JSON.

        The typed ``send_message`` builds the keyboard as library objects, serialises them back and
        parses Telegram's answer into a Message of a hundred attributes that is then thrown away: a
        third of the adapter's CPU per shopper message under load. Same request, same checks (429s
        waited out by the rate limiter, a refused photo sent as text); local images are uploads and
        go through :meth:`send`."""
        photo = _photo(out.photo)
        if not isinstance(bot, LeanBot) or isinstance(photo, Path):
            await self.send(bot, chat_id, out)
            return
        params: dict[str, Any] = {"chat_id": chat_id, "parse_mode": ParseMode.HTML.value}
        keyboard = await self.keyboard(out.rows)
        if keyboard is not None:
            params["reply_markup"] = keyboard
        if photo is not None:
            try:
                await bot.call("sendPhoto", {**params, "photo": photo, "caption": out.html})
                return
            except BadRequest as exc:  # an image Telegram cannot fetch: the card as text
                log.info("Photo %s refused (%s); sending the card as text.", out.photo, exc.message)
        await bot.call("sendMessage", {**params, "text": out.html, "link_preview_options": {"is_disabled": True}})

    async def markup(self, rows: Sequence[Sequence[Button]]) -> InlineKeyboardMarkup | None:
        keyboard = await self._buttons(rows)
        if not keyboard:
            return None
        return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data) for label, data in row]
                                     for row in keyboard])

    async def keyboard(self, rows: Sequence[Sequence[Button]]) -> dict[str, Any] | None:
        """:meth:`markup` as the Bot API's JSON (``{"inline_keyboard": [[{"text", "callback_data"}]]}``)."""
        keyboard = await self._buttons(rows)
        if not keyboard:
            return None
        return {"inline_keyboard": [[{"text": label, "callback_data": data} for label, data in row] for row in keyboard]}

    async def _buttons(self, rows: Sequence[Sequence[Button]]) -> list[list[tuple[str, str]]]:
        """(label, callback_data) rows; a button whose long payload cannot be stored is left out."""
        if not rows:
            return []
        payloads = [b.payload for row in rows for b in row]
        data: list[str | None]
        if all(PayloadCodec.fits(p) for p in payloads):
            data = list(payloads)
        else:
            data = await asyncio.to_thread(lambda: [self._encode_or_none(p) for p in payloads])
        it = iter(data)
        keyboard = [[(b.label, d) for b in row if (d := next(it)) is not None] for row in rows]
        return [row for row in keyboard if row]

    def _encode_or_none(self, payload: str) -> str | None:
        try:
            return self.codec.encode(payload)
        except Exception as exc:  # no database for a long payload: that one button is left out
            log.warning("A button was left out: its payload could not be stored (%s).", exc)
            return None

    async def _stream(self, bot: Any, chat_id: int, reply: Reply) -> None:
        """Typing at once, then one message edited as verified text arrives; the final text decides."""
        live = reply.live
        assert live is not None
        typing = asyncio.create_task(self._keep_typing(bot, chat_id))
        message: Message | None = None
        shown, last = "", 0.0
        try:
            async for text in live.updates():
                if live.done:
                    break
                preview = split_text(text)[0] if text.strip() else ""
                if not preview or preview == shown or time.monotonic() - last < self.edit_interval:
                    continue
                try:
                    if message is None:
                        message = await self.send(bot, chat_id, OutMessage(escape(preview)))
                        typing.cancel()
                    else:
                        await message.edit_text(escape(preview), parse_mode=ParseMode.HTML,
                                                link_preview_options=LinkPreviewOptions(is_disabled=True))
                    shown, last = preview, time.monotonic()
                except BadRequest as exc:
                    log.info("A streamed edit was refused (%s).", exc.message)
        finally:
            typing.cancel()
        final = await live.final()
        outs = plan(reply, text=final) if final.strip() else []
        if message is None:
            for out in outs:
                await self.send(bot, chat_id, out)
            return
        if not outs:  # the model's text was withdrawn and nothing replaces it
            with contextlib.suppress(BadRequest):
                await message.delete()
            return
        first, rest = outs[0], outs[1:]
        if first.photo is None:
            markup = await self.markup(first.rows)
            try:
                await message.edit_text(first.html, parse_mode=ParseMode.HTML, reply_markup=markup,
                                        link_preview_options=LinkPreviewOptions(is_disabled=True))
            except BadRequest as exc:
                if "not modified" not in exc.message:
                    raise
        else:
            with contextlib.suppress(BadRequest):
                await message.delete()
            rest = outs
        for out in rest:
            await self.send(bot, chat_id, out)

    # -------------------------------------------------------------------------------- errors

    async def on_error(self, update: object, context: Context) -> None:
        log.error("Update %s failed: %s", getattr(update, "update_id", "?"), context.error, exc_info=context.error)
        if isinstance(context.error, Forbidden):
            return  # the user blocked the bot: nothing to tell them
        count_error("handler_exception")
        if isinstance(update, Update) and update.effective_chat is not None and update.callback_query is not None:
            with contextlib.suppress(TelegramError):
                await update.callback_query.answer()


def _plain(reply: Reply) -> bool:
    return not (reply.cards or reply.buttons or reply.table or reply.live is not None or reply.handoff) and bool(reply.text.strip())


async def _answer(query: CallbackQuery, text: str | None) -> None:
    try:
        await query.answer(text[:TOAST_LIMIT] if text else None)
    except BadRequest as exc:  # answered too late (older than ~15 s): the shopper still gets the messages
        log.info("A callback query could not be answered (%s).", exc.message)


def _photo(ref: str | None) -> str | Path | None:
    """A product image as Telegram takes it: a URL it fetches itself, or a local file the bot uploads."""
    if not ref:
        return None
    if ref.startswith(("http://", "https://")):
        return ref
    path = Path(ref.removeprefix("file://"))
    try:
        if path.is_file() and path.stat().st_size <= 10 * 1024 * 1024:
            return path
    except OSError:
        pass
    return None


def _file_url(base_url: str) -> str:
    """``.../bot`` -> ``.../file/bot``: where a (self-hosted) Bot API server serves files."""
    head, sep, _ = base_url.rpartition("/bot")
    return f"{head}/file/bot" if sep else base_url.rstrip("/") + "/file/bot"
