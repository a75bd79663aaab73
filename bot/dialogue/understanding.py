"""What the shopper meant, in the form the dialogue manager acts on: :class:`Understanding`.

Two producers build it: the dialogue's own NLU (adapted in bot/app.py) and the Rasa adapter, which
translates Rasa's intent and entities (bot/channels/rasa/translate.py) and hands it over on the
:class:`~bot.dialogue.replies.Event`. It lives apart from the manager so that the events, the manager,
its services and the channels can all name it without importing one another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from retrieval.query import Filters

__all__ = ["Understander", "Understanding"]


@dataclass
class Understanding:
    """What the shopper meant, as the dialogue manager needs it (built from the NLU's output)."""

    intent: str
    confidence: float = 1.0
    query: str = ""  # product words left after the filters were taken out
    filters: Filters = field(default_factory=Filters)
    sort: str | None = None
    ordinals: list[int] = field(default_factory=list)  # 1-based; -1 is "the last one"
    order_number: str | None = None


class Understander(Protocol):
    def __call__(self, text: str, state: Mapping[str, Any]) -> Understanding: ...
