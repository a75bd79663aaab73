"""Reply-as-shop: a message a person writes in the console, delivered to the shopper in their channel.

The console sits beside the channels (import-linter: it imports none of them), so Telegram delivery is one
Bot API ``sendMessage`` call made here with the standard library, as plain text (no parse mode: nothing the
owner types can break Telegram's HTML parser). Rasa conversations cannot be written to from outside: Rasa
owns the conversation and only answers when the shopper writes, so the console says so instead of
pretending to deliver.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from bot.settings import Settings

__all__ = ["Delivery", "deliver"]

TELEGRAM_LIMIT = 4096  # characters in one message


@dataclass(frozen=True)
class Delivery:
    """What happened to a reply: sent, or why not (one sentence for the owner)."""

    sent: bool
    note: str


def deliver(settings: Settings, user_id: str, text: str, *, timeout: float = 10.0) -> Delivery:
    """Send ``text`` to ``user_id`` (``<channel>:<id>``) in their channel."""
    channel, _, external = user_id.partition(":")
    if channel != "telegram":
        return Delivery(False, f"{user_id} talks to the shop through {channel or 'an unknown channel'}, which the "
                        "console cannot write to (only Telegram accepts messages the shopper did not ask for); "
                        "answer them there.")
    if not external.lstrip("-").isdigit():
        return Delivery(False, f"{user_id} is not a Telegram chat id.")
    if settings.telegram_token is None:
        return Delivery(False, "SHOPBOT_TELEGRAM_TOKEN is not set, so the console cannot send Telegram messages.")
    if not text.strip() or len(text) > TELEGRAM_LIMIT:
        return Delivery(False, f"A reply must have between 1 and {TELEGRAM_LIMIT} characters.")
    url = f"{settings.telegram_api_url}{settings.telegram_token.get_secret_value()}/sendMessage"
    body = json.dumps({"chat_id": int(external), "text": text}).encode("utf-8")
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        # bandit B310 is a false positive: the configured Bot API URL
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # nosec B310
            answer = json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        try:
            why = json.loads(exc.read().decode("utf-8")).get("description") or str(exc)
        except (ValueError, OSError):
            why = str(exc)
        return Delivery(False, f"Telegram refused the message: {why}.")
    except (urllib.error.URLError, OSError, ValueError) as exc:  # never show the URL: it holds the token
        return Delivery(False, f"The Telegram Bot API could not be reached ({type(exc).__name__}).")
    if not answer.get("ok"):
        return Delivery(False, f"Telegram refused the message: {answer.get('description', 'no reason given')}.")
    return Delivery(True, f"Sent to {user_id} in Telegram.")
