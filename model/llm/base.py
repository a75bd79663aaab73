"""The contract every language-model backend keeps, and the small pieces the backends share.

The dialogue talks to one `LLM` and never learns whether the words come from a local transformers
model, a vLLM server or a test double. Keeping the contract to `stream` (and `complete` built on it)
is what lets a channel show text as it is generated while the claim verifier reads whole answers
from the very same code path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "LLM",
    "ROLES",
    "BaseLLM",
    "LLMError",
    "LLMTimeout",
    "Message",
    "StopCutter",
    "check_sampling",
    "complete_sync",
    "deadline_for",
    "remaining",
    "validate_messages",
]

Message = Mapping[str, str]
"""One chat message: ``{"role": "system" | "user" | "assistant", "content": str}``."""

ROLES = frozenset({"system", "user", "assistant"})


class LLMError(RuntimeError):
    """A language model could not answer; the message is one sentence that names the fix."""


class LLMTimeout(LLMError):
    """The answer did not arrive within the caller's time budget.

    A subclass of `LLMError` so that code which only wants "no answer, use the template" catches one
    type, while code that retries only on slowness can tell the two apart.
    """


def validate_messages(messages: Sequence[Message]) -> list[dict[str, str]]:
    """Plain dict copies of ``messages``, checked before any work starts.

    A malformed message is a programming error in the caller, so it raises ValueError/TypeError at
    once instead of surfacing as a confusing template or HTTP error halfway through a request.
    """
    if not messages:
        raise ValueError("messages is empty; pass at least one {'role': 'user', 'content': ...} message")
    out: list[dict[str, str]] = []
    for i, m in enumerate(messages):
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise ValueError(f"messages[{i}] has role {role!r}; use one of {sorted(ROLES)}")
        if not isinstance(content, str):
            raise TypeError(f"messages[{i}]['content'] must be a str, not {type(content).__name__}")
        out.append({"role": role, "content": content})
    return out


def deadline_for(timeout: float | None) -> float | None:
    """The `time.monotonic` instant a call with ``timeout`` seconds must finish by (None: no limit).

    Both backends work against one deadline for the whole call (queueing, prompt processing and every
    chunk) rather than a per-read timeout, because what a shopper waiting in a chat feels is the total.
    The monotonic clock, not the loop's, because generation threads check the same deadline.
    """
    if timeout is None:
        return None
    if timeout <= 0:
        raise ValueError(f"timeout must be positive seconds or None, not {timeout!r}")
    return time.monotonic() + timeout


def remaining(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` (never negative), or None for no limit."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class StopCutter:
    """Cuts streamed text at the first stop string, without ever emitting a piece of one.

    Text arrives in arbitrary chunks, so a stop string may straddle two of them. The cutter holds back
    the last ``len(longest stop) - 1`` characters until it knows they do not begin a stop string; any
    match that starts in text already emitted would have ended inside the buffer and been found.
    """

    def __init__(self, stop: Sequence[str] | None) -> None:
        self.stops = [s for s in (stop or ()) if s]
        self._hold = max((len(s) for s in self.stops), default=1) - 1
        self._buf = ""
        self.done = False

    def feed(self, text: str) -> str:
        """The part of ``text`` (plus what was held back) that is now safe to emit."""
        if self.done:
            return ""
        if not self.stops:
            return text
        self._buf += text
        cut = min((i for i in (self._buf.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            out, self._buf, self.done = self._buf[:cut], "", True
            return out
        keep = min(self._hold, len(self._buf))
        out = self._buf[: len(self._buf) - keep]
        self._buf = self._buf[len(out) :]
        return out

    def flush(self) -> str:
        """What was held back, once the text has ended without reaching a stop string."""
        out, self._buf = ("" if self.done else self._buf), ""
        return out


@runtime_checkable
class LLM(Protocol):
    """A chat model that streams text. Subclasses inherit `complete`; structural doubles define their own.

    ``name`` identifies the backend and model in logs and in the feedback rows that retraining reads;
    ``version`` pins the exact weights (or served model) so two answers can be told apart later.
    """

    name: str
    version: str

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 256,
        temperature: float = 0.2,
        stop: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[str]:
        """Yield the answer in pieces as they are generated.

        ``temperature`` 0 means greedy (deterministic) decoding. ``stop`` strings end the answer and
        are not part of it. ``timeout`` is a budget in seconds for the whole call: when it runs out
        `LLMTimeout` is raised; pieces already yielded stay with the caller.
        """
        ...

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 256,
        temperature: float = 0.2,
        stop: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> str:
        """The whole answer at once; on a timeout nothing partial is returned, `LLMTimeout` is raised.

        Built on `stream` so that there is one generation path to test and to trust.
        """
        parts: list[str] = []
        async for piece in self.stream(
            messages, max_tokens=max_tokens, temperature=temperature, stop=stop, timeout=timeout
        ):
            parts.append(piece)
        return "".join(parts)


class BaseLLM(LLM):
    """What the shipped backends share beyond the contract: a synchronous entry point.

    Kept out of `LLM` itself so that a test double only needs ``name``, ``version``, ``stream`` and
    ``complete``.
    """

    def complete_sync(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 256,
        temperature: float = 0.2,
        stop: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> str:
        """`complete` for synchronous callers such as the CLI, which have no event loop of their own."""
        return complete_sync(self, messages, max_tokens=max_tokens, temperature=temperature, stop=stop, timeout=timeout)


def complete_sync(
    llm: LLM,
    messages: Sequence[Message],
    *,
    max_tokens: int = 256,
    temperature: float = 0.2,
    stop: Sequence[str] | None = None,
    timeout: float | None = None,
) -> str:
    """`LLM.complete` for synchronous callers, for any `LLM` (a test double included)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(
            llm.complete(messages, max_tokens=max_tokens, temperature=temperature, stop=stop, timeout=timeout)
        )
    raise RuntimeError("complete_sync() was called inside a running event loop; await complete() there instead")


def check_sampling(max_tokens: int, temperature: float) -> None:
    """Reject impossible sampling settings before a request is queued (programming errors)."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, not {max_tokens!r}")
    if temperature < 0:
        raise ValueError(f"temperature must be 0 (greedy) or more, not {temperature!r}")


def describe(value: Any, limit: int = 200) -> str:
    """A short one-line rendering of ``value`` for inclusion in an error sentence."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
