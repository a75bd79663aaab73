"""Logging for every command: the terminal's plain lines or one JSON object per line, a turn id that
follows a message from the webhook receiver through the queue to the worker, and a filter that keeps
secrets out of every line.

The turn id lives in a context variable, so code that logs need not pass it along: a receiver makes one
(:func:`new_turn_id`) and puts it in the queued message, the worker binds it while it handles that
message (:func:`bind_turn_id`), and every line logged meanwhile, in threads started with
``asyncio.to_thread`` too, carries it. What a shopper wrote is never logged at INFO or below the
warnings; bot tokens, API keys and database passwords are replaced by ``[REDACTED]`` wherever they
appear (a library logging a Bot API URL carries the token in it), and, unless ``SHOPBOT_REDACT_PII`` is off,
e-mail addresses, phone and card numbers and street addresses a shopper wrote are replaced by tags
(bot/observability/pii.py) in lines that carry message text (DEBUG, errors with the text in them).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from bot.observability.pii import redact_pii

__all__ = [
    "REDACTED",
    "TEXT_FORMAT",
    "JsonFormatter",
    "RedactSecrets",
    "TurnIdFilter",
    "bind_turn_id",
    "configure_logging",
    "log_handler",
    "new_turn_id",
    "redact",
    "secret_values",
    "turn_id_var",
]

TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"
REDACTED = "[REDACTED]"

turn_id_var: ContextVar[str | None] = ContextVar("shopbot_turn_id", default=None)

# a Telegram bot token: the bot's number, a colon, 35 characters (also inside ".../bot<token>/getMe")
_BOT_TOKEN = re.compile(r"(?<![0-9])[0-9]{5,12}:[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])")
# the password of a database or broker URL: scheme://user:password@host
_URL_PASSWORD = re.compile(r"(?<=[a-z0-9+.-]://)([^:/@\s]*):([^@/\s]+)@", re.I)
# the attributes every LogRecord has; anything else on a record came in through ``extra=``
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "turn_id"}
_OURS = "_shopbot_handler"


def new_turn_id() -> str:
    """A fresh turn id (32 hex digits, the form the store's turn ids have)."""
    return uuid.uuid4().hex


@contextmanager
def bind_turn_id(turn_id: str | None) -> Iterator[str | None]:
    """Every line logged inside the block (and in tasks and threads it starts) carries ``turn_id``."""
    token = turn_id_var.set(turn_id)
    try:
        yield turn_id
    finally:
        turn_id_var.reset(token)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without bot tokens, URL passwords and the given secret values."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    text = _BOT_TOKEN.sub(REDACTED, text)
    return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{REDACTED}@", text)


def secret_values(settings: object) -> list[str]:
    """The values of ``settings``' secret fields (pydantic's SecretStr: the bot token, the webhook secret,
    the LLM API key), read without importing the settings or pydantic. Values shorter than 6 characters
    are left out: replacing "abc" in every line would garble the log and hide nothing."""
    out: list[str] = []
    fields = getattr(type(settings), "model_fields", None) or {}
    for name in fields:
        reveal = getattr(getattr(settings, name, None), "get_secret_value", None)
        if callable(reveal):
            value = reveal()
            if isinstance(value, str) and len(value.strip()) >= 6:
                out.append(value)
    return out


class RedactSecrets(logging.Filter):
    """Rewrites a record before any handler writes it: message, arguments, traceback and extra fields."""

    def __init__(self, secrets: Iterable[str] = (), *, pii: bool = False) -> None:
        """``pii``: also replace a shopper's personal data (e-mail, phone, card, street address) by tags."""
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)  # a longer secret first
        self.pii = pii

    def _clean(self, text: str) -> str:
        text = redact(text, self.secrets)
        return redact_pii(text) if self.pii else text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self._clean(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        if record.stack_info:
            record.stack_info = self._clean(record.stack_info)
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, self._clean(value))
        return True


class TurnIdFilter(logging.Filter):
    """Stamps the bound turn id on the record when it is made (an ``extra={"turn_id": ...}`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "turn_id", None) is None:
            record.turn_id = turn_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC, ISO 8601), level, logger, message, turn_id when one is bound,
    the record's ``extra`` fields, and exception / stack when present."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        turn_id = getattr(record, "turn_id", None) or turn_id_var.get()
        if turn_id:
            out["turn_id"] = turn_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                out[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def log_handler(fmt: str, *, stream: IO[str] | None = None, secrets: Iterable[str] = (),
                redact_personal: bool = True) -> logging.Handler:
    """A handler writing ``fmt`` ("text": ``LEVEL logger: message`` as always; "json") to ``stream``
    (stderr), with the turn id and the secret filter on it (``redact_personal``: personal data too)."""
    if fmt not in ("text", "json"):
        raise ValueError(f"log format must be 'text' or 'json', not {fmt!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(TurnIdFilter())
    handler.addFilter(RedactSecrets(secrets, pii=redact_personal))
    setattr(handler, _OURS, True)
    return handler


def configure_logging(fmt: str, level: int, *, secrets: Iterable[str] = (), redact_personal: bool = True) -> None:
    """Log to stderr in ``fmt`` at ``level`` (the ``shopbot`` command calls this once it has its settings).

    Like ``logging.basicConfig`` it leaves a logging set-up it did not make alone (an embedding
    application's, a test runner's); a handler it made itself is replaced, so calling it again with
    another format or level takes effect."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, _OURS, False):
            root.removeHandler(h)
            h.close()
    if root.handlers:
        return
    root.addHandler(log_handler(fmt, secrets=secrets, redact_personal=redact_personal))
    root.setLevel(level)
