"""Streaming text that the shopper may read while it is written, one verified sentence at a time.

`guarded_async` in ``model/grounding.py`` checks a whole answer before anyone sees it; a 0.5B model
on a 2-core CPU needs several seconds for that, and a shopper should not wait at a silent chat. Here
the model's stream is cut at sentence ends and each sentence is shown only after the text so far has
passed the claim check. A sentence that states something the facts do not support stops the stream
at once (the model stops generating) and the answer is written again with feedback; if that fails
too, or the model is slow or down, the grounded template replaces whatever was shown. Nothing
unverified ever reaches ``on_text``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from model.grounding import Verdict, feedback_for
from model.llm_base import LLM, LLMError, LLMTimeout, Message

__all__ = ["LiveResult", "sentence_end", "stream_checked"]

# A sentence ends at ., !, ? or ; followed by white space, at CJK full stops, or at a line break. A
# decimal point ("$4.99") or thousands separator never ends one because no space follows it.
_END = re.compile(r"(?:[.!?;](?=\s)|[。！？；]|\n)")


def sentence_end(text: str, start: int = 0) -> int:
    """The end (exclusive) of the last complete sentence in ``text[start:]``, or ``start`` if none."""
    end = start
    for m in _END.finditer(text, start):
        end = m.end()
    return end


@dataclass
class LiveResult:
    text: str  # what the shopper ends with (possibly the fallback)
    source: str  # "llm", "llm-retry", "fallback" or "dont_know"
    attempts: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    first_text_s: float | None = None  # seconds until the first verified text was shown
    seconds: float = 0.0

    def to_log(self) -> dict[str, Any]:
        return {"source": self.source, "attempts": self.attempts, "error": self.error,
                "first_text_s": None if self.first_text_s is None else round(self.first_text_s, 3),
                "seconds": round(self.seconds, 3)}


async def stream_checked(
    llm: LLM,
    messages_for: Callable[[str | None], Sequence[Message]],
    check: Callable[[str], Verdict],
    on_text: Callable[[str], None],
    *,
    fallback: str,
    timeout: float,
    max_tokens: int = 160,
    retries: int = 1,
    dont_know: str | None = None,
    finish: Callable[[str], str] = str.strip,
    clock: Callable[[], float] = time.perf_counter,
) -> LiveResult:
    """Stream ``llm``'s answer to ``messages_for(feedback)`` through ``check`` into ``on_text``.

    ``on_text`` gets the whole verified text so far each time it grows. ``timeout`` bounds the whole
    call, retries included. ``dont_know``: a marker the model writes when the facts hold no answer;
    the result is then ``fallback`` with source "dont_know". ``finish`` turns the verified answer
    into the text sent (e.g. adds the source line).
    """
    t0 = clock()
    result = LiveResult(fallback, "fallback")
    feedback: str | None = None
    for n in range(retries + 1):
        left = timeout - (clock() - t0)
        if left <= 0.05:
            result.error = result.error or "no time left for another attempt"
            break
        attempt: dict[str, Any] = {"attempt": n + 1}
        result.attempts.append(attempt)
        text, shown, verdict = "", 0, None
        stream = llm.stream(messages_for(feedback), max_tokens=max_tokens, temperature=0.0, timeout=left)
        try:
            async for piece in stream:
                text += piece
                if dont_know and dont_know in text:
                    break
                if dont_know and dont_know.startswith(text.strip()):
                    continue  # could still become the marker: show nothing yet
                end = sentence_end(text, shown)
                if end > shown:
                    verdict = check(text[:end])
                    if not verdict.ok:
                        break
                    shown = end
                    if result.first_text_s is None:
                        result.first_text_s = clock() - t0
                    on_text(finish(text[:end]))
            else:
                verdict = None
        except LLMTimeout as exc:
            attempt["error"] = result.error = f"timeout: {exc}"
            # complete, verified sentences stand; a cut-off answer does not
            if shown and text[:shown].strip():
                result.text, result.source = finish(text[:shown]), "llm" if n == 0 else "llm-retry"
                attempt["text"] = text[:shown]
            break
        except LLMError as exc:
            attempt["error"] = result.error = str(exc)
            break
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()  # an abandoned stream stops the model's generation
        attempt["text"] = text[:2000]
        if dont_know and dont_know in text:
            attempt["dont_know"] = True
            result.source = "dont_know"
            break
        if verdict is None:  # the stream ended: check the whole text, last sentence included
            verdict = check(text) if text.strip() else None
            if verdict is None:
                attempt["empty"] = True
                feedback = "Your answer was empty."
                continue
        attempt.update(verdict.to_log())
        if verdict.ok:
            result.text, result.source = finish(text), "llm" if n == 0 else "llm-retry"
            break
        feedback = feedback_for(verdict)
    result.seconds = clock() - t0
    if result.source in {"fallback", "dont_know"}:
        result.text = fallback
    return result
