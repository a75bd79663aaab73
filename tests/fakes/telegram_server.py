"""A fake Telegram Bot API server for the tests: the real python-telegram-bot Application talks to it
through ``base_url``, exactly as it would talk to Telegram or to a self-hosted ``telegram-bot-api``.

It implements what the shop bot uses, with the Bot API's JSON shapes and error texts: getMe,
getUpdates (offset confirms, long-poll timeout), sendMessage, sendPhoto (URL or multipart upload),
editMessageText, editMessageReplyMarkup, deleteMessage, answerCallbackQuery, sendChatAction,
setWebhook (updates are then POSTed to the webhook with the secret token header, and getUpdates is
refused with 409 as Telegram does), deleteWebhook, getWebhookInfo and the command-menu methods. It
checks what Telegram checks and a wrong adapter would trip on: HTML that does not parse (unescaped
``<``/``&``, unknown or unbalanced tags), texts over 4096 and captions over 1024 characters (UTF-16
units), callback_data over 64 bytes, edits that change nothing.

A test injects what shoppers do (:meth:`FakeTelegram.message`, :meth:`FakeTelegram.press`), can make
the next requests fail with 429 and ``retry_after`` (:meth:`FakeTelegram.flood`), and reads what the
bot did (:attr:`FakeTelegram.calls`, :meth:`FakeTelegram.sent`, :meth:`FakeTelegram.chat`).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import html
import itertools
import json
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

__all__ = ["BadRequest", "Call", "FakeTelegram", "parse_html", "utf16_len"]

TOKEN = "123456:TEST-token_for-the-fake-server"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Demo Shop", "username": "demo_shop_bot",
            "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False,
            "can_connect_to_business": False, "has_main_web_app": False}
SEND_METHODS = {"sendMessage", "sendPhoto"}
NOT_MODIFIED = ("Bad Request: message is not modified: specified new message content and reply markup are exactly "
                "the same as a current content and reply markup of the message")
_TAGS = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
         "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "code": "code", "pre": "pre",
         "a": "text_link", "tg-spoiler": "spoiler", "blockquote": "blockquote"}
_TOKEN = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)([^<>]*)>|&(#[0-9]+|#x[0-9A-Fa-f]+|lt|gt|amp|quot);|[<>&]")


class BadRequest(Exception):
    """A request Telegram would refuse with 400 and this description."""


def utf16_len(text: str) -> int:
    """Telegram measures texts (and entity offsets) in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def parse_html(markup: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's HTML parse mode: the plain text and its entities, or BadRequest as Telegram words it."""
    out: list[str] = []
    entities: list[dict[str, Any]] = []
    stack: list[tuple[str, int, dict[str, Any]]] = []
    pos = 0
    offset = 0

    def add(text: str) -> None:
        nonlocal offset
        out.append(text)
        offset += utf16_len(text)

    for m in _TOKEN.finditer(markup):
        add(markup[pos:m.start()])
        pos = m.end()
        closing, name, attrs, entity = m.group(1), m.group(2), m.group(3), m.group(4)
        byte = len(markup[:m.start()].encode())
        if name is not None:
            tag = name.lower()
            if tag not in _TAGS and not (tag == "span" and "tg-spoiler" in attrs):
                raise BadRequest(f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}" at byte offset {byte}')
            if closing:
                if not stack or stack[-1][0] != tag:
                    raise BadRequest(f'Bad Request: can\'t parse entities: Unmatched end tag at byte offset {byte}, '
                                     f'expected "</{stack[-1][0] if stack else ""}>", found "</{tag}>"')
                _, start, attrs_of = stack.pop()
                if offset > start:
                    entities.append({"type": _TAGS.get(tag, "spoiler"), "offset": start, "length": offset - start, **attrs_of})
            else:
                extra: dict[str, Any] = {}
                if tag == "a":
                    href = re.search(r'href\s*=\s*"([^"]*)"', attrs)
                    if not href:
                        raise BadRequest(f"Bad Request: can't parse entities: Can't find end of href at byte offset {byte}")
                    extra["url"] = html.unescape(href.group(1))
                stack.append((tag, offset, extra))
        elif entity is not None:
            add(html.unescape(f"&{entity};"))
        else:
            raise BadRequest(f"Bad Request: can't parse entities: Unexpected {m.group(0)!r} at byte offset {byte}"
                             if m.group(0) != "&" else
                             f"Bad Request: can't parse entities: Character '&' is reserved and must be escaped at byte offset {byte}")
    add(markup[pos:])
    if stack:
        raise BadRequest(f'Bad Request: can\'t parse entities: Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


@dataclass
class Call:
    """One request the bot made, as the server understood it."""

    method: str
    params: dict[str, Any]
    at: float
    status: int = 200
    result: Any = None
    error: str | None = None

    @property
    def chat_id(self) -> int | None:
        c = self.params.get("chat_id")
        return int(c) if c is not None and str(c).lstrip("-").isdigit() else None

    @property
    def text(self) -> str:
        """The plain text (or caption) the shopper sees, entities parsed."""
        r = self.result if isinstance(self.result, dict) else {}
        return str(r.get("text") or r.get("caption") or "")

    @property
    def buttons(self) -> list[dict[str, Any]]:
        markup = self.params.get("reply_markup") or {}
        return [b for row in markup.get("inline_keyboard", []) for b in row]


@dataclass
class _Pending:
    update: dict[str, Any]
    injected_at: float


@dataclass
class _Webhook:
    url: str
    secret: str | None
    max_connections: int = 40
    errors: list[str] = field(default_factory=list)


class FakeTelegram:
    """The server; ``async with FakeTelegram() as tg:`` starts it on 127.0.0.1 (a free port)."""

    def __init__(self, token: str = TOKEN, *, reject_photo_urls: bool = False) -> None:
        self.token = token
        self.reject_photo_urls = reject_photo_urls
        self.calls: list[Call] = []
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}  # the chat as it looks now
        self.deliveries: dict[int, int] = defaultdict(int)  # update_id -> how often it was handed out
        self.injected_at: dict[int, float] = {}
        self.answers: dict[str, Call] = {}
        self.webhook: _Webhook | None = None
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self._pending: list[_Pending] = []
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = defaultdict(lambda: itertools.count(1))
        self._callback_ids = itertools.count(1)
        self._queries: dict[str, dict[str, Any]] = {}
        self._flood: list[tuple[set[str] | None, float]] = []
        self._changed = asyncio.Condition()
        self._new_update = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._delivery: asyncio.Task[None] | None = None
        self.port = 0
        self.polls_ended = False  # set by end_polls(): long polls return at once (a quick shutdown)

    # ---------------------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def start(self, port: int = 0) -> None:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._delivery is not None:
            self._delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._delivery
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        """python-telegram-bot's ``base_url`` form (the token is appended to it)."""
        return f"http://127.0.0.1:{self.port}/bot"

    # ------------------------------------------------------------------------ what users do

    def message(self, user_id: int, text: str, *, language_code: str | None = "en", first_name: str = "Ann",
                chat_id: int | None = None) -> int:
        """A user writes ``text`` (a leading /command gets its bot_command entity); returns the update id."""
        chat = chat_id if chat_id is not None else user_id
        msg: dict[str, Any] = {
            "message_id": next(self._message_ids[chat]),
            "from": self._user(user_id, first_name, language_code),
            "chat": {"id": chat, "type": "private" if chat == user_id else "group", "first_name": first_name},
            "date": int(time.time()), "text": text,
        }
        command = re.match(r"/[A-Za-z0-9_]+(?:@\w+)?", text)
        if command:
            msg["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(command.group(0))}]
        self.messages[(chat, msg["message_id"])] = msg
        return self._inject({"message": msg})

    def press(self, user_id: int, message: Call | dict[str, Any], data: str, *, language_code: str | None = "en") -> str:
        """A user presses the inline button carrying ``data`` under ``message``; returns the query id."""
        msg = message.result if isinstance(message, Call) else message
        current = self.messages.get((msg["chat"]["id"], msg["message_id"]), msg)
        qid = str(9_000_000 + next(self._callback_ids))
        query = {"id": qid, "from": self._user(user_id, "Ann", language_code), "message": current,
                 "chat_instance": f"ci{msg['chat']['id']}", "data": data}
        self._queries[qid] = query
        self._inject({"callback_query": query})
        return qid

    def end_polls(self) -> None:
        """Answer every waiting and later getUpdates at once, so a bot being stopped need not wait out its poll."""
        self.polls_ended = True
        self._new_update.set()

    def flood(self, count: int, *, retry_after: float = 1, methods: Iterable[str] | None = None) -> None:
        """The next ``count`` matching requests get 429 Too Many Requests with ``retry_after``."""
        for _ in range(count):
            self._flood.append((set(methods) if methods is not None else None, retry_after))

    @staticmethod
    def _user(user_id: int, first_name: str, language_code: str | None) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if language_code:
            user["language_code"] = language_code
        return user

    def _inject(self, body: dict[str, Any]) -> int:
        uid = next(self._update_ids)
        self._pending.append(_Pending({"update_id": uid, **body}, time.monotonic()))
        self.injected_at[uid] = time.monotonic()
        self._new_update.set()
        return uid

    # --------------------------------------------------------------------- what the bot did

    def sent(self, chat_id: int | None = None, *, methods: Iterable[str] = SEND_METHODS) -> list[Call]:
        """Messages the bot sent successfully (to ``chat_id``), oldest first."""
        ms = set(methods)
        return [c for c in self.calls if c.method in ms and c.status == 200 and (chat_id is None or c.chat_id == chat_id)]

    def chat(self, chat_id: int) -> list[dict[str, Any]]:
        """The chat as the user sees it now (edits applied, deleted messages gone), oldest first."""
        return [m for (c, _), m in sorted(self.messages.items()) if c == chat_id]

    def requests(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until ``predicate()`` is truthy (checked after every request, and every 20 ms for what the
        bot does without a request); its value, or TimeoutError."""
        async def until() -> Any:
            async with self._changed:
                while True:
                    value = predicate()
                    if value:
                        return value
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), 0.02)

        return await asyncio.wait_for(until(), timeout)

    async def settle(self, quiet: float = 0.3, timeout: float = 10.0) -> None:
        """Wait until the bot has made no request (other than polling) for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            n = sum(1 for c in self.calls if c.method != "getUpdates")
            await asyncio.sleep(quiet)
            if n == sum(1 for c in self.calls if c.method != "getUpdates") and not self._pending_for_bot():
                return
        raise TimeoutError("the bot kept sending")

    def _pending_for_bot(self) -> bool:
        return bool(self._pending) and self.webhook is None and not any(self.deliveries.get(p.update["update_id"]) for p in self._pending)

    # ------------------------------------------------------------------------------- server

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        params = await self._params(request)
        call = Call(method, params, time.monotonic())
        for i, (methods, retry_after) in enumerate(self._flood):
            if methods is None or method in methods:
                del self._flood[i]
                call.status, call.error = 429, f"Too Many Requests: retry after {retry_after:g}"
                await self._record(call)
                return web.json_response({"ok": False, "error_code": 429, "description": call.error,
                                          "parameters": {"retry_after": retry_after}}, status=429)
        handler = getattr(self, f"_m_{method.lower()}", None)
        if handler is None:
            call.status, call.error = 404, "Not Found"
            await self._record(call)
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        try:
            call.result = copy.deepcopy(await handler(params))  # what was sent then, not the message as edited later
        except BadRequest as exc:
            call.status, call.error = 400, str(exc)
            await self._record(call)
            return web.json_response({"ok": False, "error_code": 400, "description": str(exc)}, status=400)
        except _Conflict as exc:
            call.status, call.error = 409, str(exc)
            await self._record(call)
            return web.json_response({"ok": False, "error_code": 409, "description": str(exc)}, status=409)
        await self._record(call)
        return web.json_response({"ok": True, "result": call.result})

    async def _record(self, call: Call) -> None:
        self.calls.append(call)
        async with self._changed:
            self._changed.notify_all()

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        """Query string, JSON, urlencoded or multipart: Telegram takes all four."""
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            body = await request.json()
            params.update(body if isinstance(body, dict) else {})
        elif request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    params[key] = {"upload": value.filename, "bytes": value.file.read(), "content_type": value.content_type}
                else:
                    params[key] = value
        for key in ("reply_markup", "allowed_updates", "commands", "scope", "link_preview_options", "entities",
                    "caption_entities", "reply_parameters"):
            if isinstance(params.get(key), str):
                with contextlib.suppress(ValueError):
                    params[key] = json.loads(params[key])
        return params

    # --------------------------------------------------------------------------- methods

    async def _m_getme(self, p: dict[str, Any]) -> Any:
        return BOT_USER

    async def _m_logout(self, p: dict[str, Any]) -> Any:
        return True

    async def _m_close(self, p: dict[str, Any]) -> Any:
        return True

    async def _m_getupdates(self, p: dict[str, Any]) -> Any:
        if self.webhook is not None:
            raise _Conflict("Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first")
        offset = int(p.get("offset") or 0)
        limit = max(1, min(100, int(p.get("limit") or 100)))
        timeout = float(p.get("timeout") or 0)
        if offset:
            self._pending = [x for x in self._pending if x.update["update_id"] >= offset]  # confirmed
        deadline = time.monotonic() + timeout
        while not self._pending and not self.polls_ended:
            self._new_update.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), left)
            if self.webhook is not None or self.polls_ended:
                return []
        batch = [x.update for x in self._pending[:limit]]
        for u in batch:
            self.deliveries[u["update_id"]] += 1
        return batch

    def _check_markup(self, p: dict[str, Any]) -> dict[str, Any] | None:
        markup = p.get("reply_markup")
        if not markup:
            return None
        for row in markup.get("inline_keyboard", []):
            for b in row:
                if not b.get("text"):
                    raise BadRequest("Bad Request: text buttons are unallowed in the inline keyboard")
                data = b.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= 64:
                    raise BadRequest("Bad Request: BUTTON_DATA_INVALID")
        return dict(markup)

    @staticmethod
    def _formatted(text: str, parse_mode: str | None, limit: int, what: str) -> tuple[str, list[dict[str, Any]]]:
        if parse_mode and parse_mode.upper() == "HTML":
            plain, entities = parse_html(text)
        elif parse_mode:
            raise BadRequest(f"Bad Request: unsupported parse_mode {parse_mode!r} in this fake")
        else:
            plain, entities = text, []
        if not plain.strip():
            raise BadRequest(f"Bad Request: {what} must be non-empty")
        if utf16_len(plain) > limit:
            raise BadRequest("Bad Request: message is too long" if what == "message text" else "Bad Request: message caption is too long")
        return plain, entities

    def _chat(self, p: dict[str, Any]) -> int:
        try:
            return int(p["chat_id"])
        except (KeyError, ValueError):
            raise BadRequest("Bad Request: chat not found") from None

    def _new_message(self, chat: int, p: dict[str, Any]) -> dict[str, Any]:
        msg: dict[str, Any] = {"message_id": next(self._message_ids[chat]), "from": BOT_USER,
                               "chat": {"id": chat, "type": "private" if chat > 0 else "group", "first_name": "Ann"},
                               "date": int(time.time())}
        markup = self._check_markup(p)
        if markup:
            msg["reply_markup"] = markup
        return msg

    async def _m_sendmessage(self, p: dict[str, Any]) -> Any:
        chat = self._chat(p)
        plain, entities = self._formatted(str(p.get("text") or ""), p.get("parse_mode"), 4096, "message text")
        msg = self._new_message(chat, p)
        msg["text"] = plain
        if entities:
            msg["entities"] = entities
        self.messages[(chat, msg["message_id"])] = msg
        return msg

    async def _m_sendphoto(self, p: dict[str, Any]) -> Any:
        chat = self._chat(p)
        photo = p.get("photo")
        if isinstance(photo, str):
            if photo.startswith("attach://"):
                photo = p.get(photo.removeprefix("attach://"))
            elif self.reject_photo_urls and "://" in photo:
                raise BadRequest("Bad Request: wrong file identifier/HTTP URL specified")
        if not photo:
            raise BadRequest("Bad Request: there is no photo in the request")
        msg = self._new_message(chat, p)
        size = len(photo["bytes"]) if isinstance(photo, dict) else 1024
        fid = f"AgAC{msg['message_id']:06d}{chat}"
        msg["photo"] = [{"file_id": fid, "file_unique_id": f"AQAD{msg['message_id']}", "width": 320, "height": 320,
                         "file_size": size}]
        if p.get("caption"):
            plain, entities = self._formatted(str(p["caption"]), p.get("parse_mode"), 1024, "caption")
            msg["caption"] = plain
            if entities:
                msg["caption_entities"] = entities
        self.messages[(chat, msg["message_id"])] = msg
        return msg

    def _existing(self, p: dict[str, Any]) -> dict[str, Any]:
        key = (self._chat(p), int(p.get("message_id") or 0))
        if key not in self.messages:
            raise BadRequest("Bad Request: message to edit not found")
        return self.messages[key]

    async def _m_editmessagetext(self, p: dict[str, Any]) -> Any:
        msg = self._existing(p)
        if "text" not in msg:
            raise BadRequest("Bad Request: there is no text in the message to edit")
        plain, entities = self._formatted(str(p.get("text") or ""), p.get("parse_mode"), 4096, "message text")
        markup = self._check_markup(p)
        if plain == msg["text"] and entities == msg.get("entities", []) and markup == msg.get("reply_markup"):
            raise BadRequest(NOT_MODIFIED)
        msg.update(text=plain, edit_date=int(time.time()))
        msg.pop("entities", None)
        msg.pop("reply_markup", None)
        if entities:
            msg["entities"] = entities
        if markup:
            msg["reply_markup"] = markup
        return dict(msg)

    async def _m_editmessagereplymarkup(self, p: dict[str, Any]) -> Any:
        msg = self._existing(p)
        markup = self._check_markup(p)
        if markup == msg.get("reply_markup"):
            raise BadRequest(NOT_MODIFIED)
        msg.pop("reply_markup", None)
        if markup:
            msg["reply_markup"] = markup
        msg["edit_date"] = int(time.time())
        return dict(msg)

    async def _m_deletemessage(self, p: dict[str, Any]) -> Any:
        key = (self._chat(p), int(p.get("message_id") or 0))
        if self.messages.pop(key, None) is None:
            raise BadRequest("Bad Request: message to delete not found")
        return True

    async def _m_answercallbackquery(self, p: dict[str, Any]) -> Any:
        qid = str(p.get("callback_query_id"))
        if qid not in self._queries or qid in self.answers:
            raise BadRequest("Bad Request: query is too old and response timeout expired or query ID is invalid")
        if len(str(p.get("text") or "")) > 200:
            raise BadRequest("Bad Request: MESSAGE_TOO_LONG")
        self.answers[qid] = Call("answerCallbackQuery", p, time.monotonic())
        return True

    async def _m_sendchataction(self, p: dict[str, Any]) -> Any:
        self._chat(p)
        return True

    async def _m_setmycommands(self, p: dict[str, Any]) -> Any:
        self.commands[str(p.get("language_code") or "")] = list(p.get("commands") or [])
        return True

    async def _m_deletemycommands(self, p: dict[str, Any]) -> Any:
        self.commands.pop(str(p.get("language_code") or ""), None)
        return True

    async def _m_getmycommands(self, p: dict[str, Any]) -> Any:
        return self.commands.get(str(p.get("language_code") or ""), [])

    async def _m_setwebhook(self, p: dict[str, Any]) -> Any:
        url = str(p.get("url") or "")
        if not url:
            return await self._m_deletewebhook(p)
        secret = p.get("secret_token") or None
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise BadRequest("Bad Request: secret token contains unallowed characters")
        if str(p.get("drop_pending_updates")).lower() == "true":
            self._pending.clear()
        self.webhook = _Webhook(url, secret, int(p.get("max_connections") or 40))
        self._new_update.set()  # a long poll still waiting ends
        if self._delivery is None or self._delivery.done():
            self._delivery = asyncio.create_task(self._deliver())
        return True

    async def _m_deletewebhook(self, p: dict[str, Any]) -> Any:
        if str(p.get("drop_pending_updates")).lower() == "true":
            self._pending.clear()
        self.webhook = None
        return True

    async def _m_getwebhookinfo(self, p: dict[str, Any]) -> Any:
        info: dict[str, Any] = {"url": self.webhook.url if self.webhook else "", "has_custom_certificate": False,
                                "pending_update_count": len(self._pending)}
        if self.webhook and self.webhook.errors:
            info["last_error_message"] = self.webhook.errors[-1]
            info["last_error_date"] = int(time.time())
        return info

    async def _deliver(self) -> None:
        """Telegram's side of a webhook: POST each update in order, with the secret token, until 2xx."""
        async with ClientSession(timeout=ClientTimeout(total=30)) as http:
            while self.webhook is not None:
                if not self._pending:
                    self._new_update.clear()
                    await self._new_update.wait()
                    continue
                hook = self.webhook
                item = self._pending[0]
                headers = {"X-Telegram-Bot-Api-Secret-Token": hook.secret} if hook.secret else {}
                try:
                    async with http.post(hook.url, json=item.update, headers=headers) as resp:
                        ok = 200 <= resp.status < 300
                        if not ok:
                            hook.errors.append(f"Wrong response from the webhook: {resp.status} {resp.reason}")
                except Exception as exc:  # the bot is down: retry, as Telegram does
                    ok = False
                    hook.errors.append(f"Connection failed: {exc}")
                if ok:
                    self.deliveries[item.update["update_id"]] += 1
                    if self._pending and self._pending[0] is item:
                        self._pending.pop(0)
                else:
                    await asyncio.sleep(0.2)


class _Conflict(Exception):
    pass
