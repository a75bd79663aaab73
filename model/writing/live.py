"""Streaming text that the shopper may read while it is written, one verified sentence at a time.

`guarded_async` in ``model/writing/grounding.py`` checks a whole answer before anyone sees it; a 0.5B model
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

from model.llm.base import LLM, LLMError, LLMTimeout, Message
from model.writing.grounding import Check, Claim, Verdict, feedback_for

__all__ = ["LiveResult", "clause_end", "readable", "sentence_end", "stream_checked"]

# A sentence ends at ., !, ? or ; followed by white space, at CJK full stops, or at a line break. A
# decimal point ("$4.99") or thousands separator never ends one because no space follows it.
_END = re.compile(r"(?:[.!?;](?=\s)|[。！？；]|\n)")


# A clause ends at a comma, colon or dash followed by white space, or at a CJK comma: the first words
# can be shown there, a clause at a time, but only when they pass the check on their own.
_CLAUSE = re.compile(r"(?:[,:](?=\s)|\s[-–—](?=\s)|[，：、])")
MIN_CLAUSE_CHARS = 12


def clause_end(text: str, start: int = 0) -> int:
    """Like `sentence_end`, for clause ends."""
    end = start
    for m in _CLAUSE.finditer(text, start):
        end = m.end()
    return end


def sentence_end(text: str, start: int = 0) -> int:
    """The end (exclusive) of the last complete sentence in ``text[start:]``, or ``start`` if none."""
    end = start
    for m in _END.finditer(text, start):
        end = m.end()
    return end


_FULL_STOP = re.compile(r"(?:[.!?](?=\s)|[。！？]|\n)")


def first_sentence_end(text: str) -> int:
    """The end (exclusive) of the first full sentence in ``text`` (a semicolon does not end one), or 0."""
    m = _FULL_STOP.search(text)
    return m.end() if m else 0


_WORD = re.compile(r"^[\"'(\[]*(?:[A-Za-z]+(?:['’-][A-Za-z0-9]+)*|[$€£¥]?\d[\d.,:/%-]*[a-zA-Z]{0,5}|[-–—•*&+/])"
                   r"[\"')\].,!?;:]*$")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def readable(text: str, language: str = "en", *, min_words: int = 3) -> bool:
    """Whether ``text`` reads as language at all: a cheap guard against a broken or tiny model's noise
    (which states no claim, so the claim check alone would let it through)."""
    text = text.strip()
    if language == "zh":
        return len(_CJK.findall(text)) >= max(4, len(text) // 3)
    words = text.split()
    if len(words) < min_words:
        return False
    return sum(bool(_WORD.match(w)) for w in words) >= 0.85 * len(words)


def _unreadable(text: str) -> Verdict:
    claim = Claim("promise", "unreadable text", (0, len(text)), text[:80])
    return Verdict(False, [claim], [Check(claim, False, "it is not plain language; write clear, simple sentences")])


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
    language: str = "en",
    clock: Callable[[], float] = time.perf_counter,
) -> LiveResult:
    """Stream ``llm``'s answer to ``messages_for(feedback)`` through ``check`` into ``on_text``.

    ``on_text`` gets the whole verified text so far each time it grows. ``timeout`` bounds the whole
    call, retries included. ``dont_know``: a marker the model writes when the facts hold no answer;
    the result is then ``fallback`` with source "dont_know". ``finish`` turns the verified answer
    into the text sent (e.g. adds the source line). Text that does not read as ``language`` (see
    `readable`) fails like an unsupported claim.
    """

    def checked(text: str) -> Verdict:
        return check(text) if readable(text, language) else _unreadable(text)

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
        text, shown, verdict, tried, whole = "", 0, None, 0, 0  # whole: verified up to a sentence end
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
                    verdict = checked(text[:end])
                    if not verdict.ok:
                        break  # a whole sentence that fails: stop the model, write it again
                    whole = end
                elif (end := clause_end(text, max(shown, tried))) > tried and end - shown >= MIN_CLAUSE_CHARS:
                    # a clause is shown early only if it passes by itself; if not ("free," before "for
                    # faulty items."), the rest of its sentence decides
                    tried = end
                    if not checked(text[:end]).ok:
                        continue
                else:
                    continue
                shown = end
                if result.first_text_s is None:
                    result.first_text_s = clock() - t0
                on_text(finish(text[:end]))
            else:
                verdict = None
        except LLMTimeout as exc:
            attempt["error"] = result.error = f"timeout: {exc}"
            # complete, verified sentences stand; a cut-off answer does not
            if whole and text[:whole].strip():
                result.text, result.source = finish(text[:whole]), "llm" if n == 0 else "llm-retry"
                attempt["text"] = text[:whole]
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
            verdict = checked(text) if text.strip() else None
            if verdict is None:
                attempt["empty"] = True
                feedback = "Your answer was empty."
                continue
        attempt.update(verdict.to_log())
        if verdict.ok:
            result.text, result.source = finish(text), "llm" if n == 0 else "llm-retry"
            if text[shown:].strip():  # the last sentence had no stop after it
                if result.first_text_s is None:
                    result.first_text_s = clock() - t0
                on_text(result.text)
            break
        feedback = feedback_for(verdict)
    result.seconds = clock() - t0
    if result.source in {"fallback", "dont_know"}:
        result.text = fallback
    return result
