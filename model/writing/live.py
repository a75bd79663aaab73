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
    source: str  # "llm", "llm-retry", "fallback", "dont_know" or "off_topic" (every sentence dropped)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    first_text_s: float | None = None  # seconds until the first verified text was shown
    seconds: float = 0.0

    def to_log(self) -> dict[str, Any]:
        return {"source": self.source, "attempts": self.attempts, "error": self.error,
                "first_text_s": None if self.first_text_s is None else round(self.first_text_s, 3),
                "seconds": round(self.seconds, 3)}


def _sentences(text: str) -> list[str]:
    """``text`` cut after each sentence end; every piece keeps its stop and the white space before it."""
    pieces, start = [], 0
    for m in _END.finditer(text):
        pieces.append(text[start:m.end()])
        start = m.end()
    if text[start:].strip():
        pieces.append(text[start:])
    return [p for p in pieces if p.strip()]


def _tidy(text: str) -> str:
    """Kept sentences as one text: a sentence after a dropped one may begin in lower case ("...; tell me a
    size") and the last kept one may end in a semicolon."""
    text = text.strip()
    if text[:1].isascii() and text[:1].islower():
        text = text[0].upper() + text[1:]
    if text.endswith(";"):
        text = text[:-1] + "."
    elif text.endswith("；"):
        text = text[:-1] + "。"
    return text


class _Draft:
    """One attempt's text as the model writes it, judged a sentence at a time."""

    def __init__(self, checked: Callable[[str], Verdict], relevant: Callable[[str], str | None] | None) -> None:
        self.checked = checked
        self.relevant = relevant
        self.text = ""  # what the model wrote
        self.judged = 0  # text[:judged] was judged sentence by sentence
        self.kept = ""  # its sentences about the question
        self.dropped: list[dict[str, str]] = []  # the others, each with the reason

    def take(self, upto: int) -> Verdict | None:
        """Judge the sentences of text[judged:upto]: each must pass the claim check (with the sentences kept
        before it), else its verdict is returned; those about the question join ``kept``."""
        for sentence in _sentences(self.text[self.judged:upto]):
            verdict = self.checked(_tidy(self.kept + sentence))
            if not verdict.ok:
                return verdict
            why = self.relevant(sentence) if self.relevant is not None else None
            if why:
                self.dropped.append({"text": sentence.strip(), "why": why})
            else:
                self.kept += sentence
        self.judged = upto
        return None


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
    relevant: Callable[[str], str | None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> LiveResult:
    """Stream ``llm``'s answer to ``messages_for(feedback)`` through ``check`` into ``on_text``.

    ``on_text`` gets the whole verified text so far each time it grows. ``timeout`` bounds the whole
    call, retries included. ``dont_know``: a marker the model writes when the facts hold no answer;
    the result is then ``fallback`` with source "dont_know". ``finish`` turns the verified answer
    into the text sent (e.g. adds the source line). Text that does not read as ``language`` (see
    `readable`) fails like an unsupported claim. ``relevant`` judges each sentence as it is completed
    (``model/writing/relevance.py``): a sentence it gives a reason for is dropped (the attempt's log keeps it
    with the reason) and the model writes on; the claim check sees only the sentences kept. When every
    sentence is dropped the result is ``fallback`` with source "off_topic": the reply stands without it.
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
        # the model's text so far, judged sentence by sentence: its sentences about the question are kept
        draft = _Draft(checked, relevant)
        # shown: what on_text has (before `finish`); whole: the kept text is verified to a sentence end
        tried, shown, whole, ended = 0, "", False, False
        verdict: Verdict | None = None

        stream = llm.stream(messages_for(feedback), max_tokens=max_tokens, temperature=0.0, timeout=left)
        try:
            async for piece in stream:
                draft.text += piece
                text = draft.text
                if dont_know and dont_know in text:
                    break
                if dont_know and dont_know.startswith(text.strip()):
                    continue  # could still become the marker: show nothing yet
                end = sentence_end(text, draft.judged)
                if end > draft.judged:
                    before = draft.kept
                    verdict = draft.take(end)
                    if verdict is not None:
                        break  # a whole sentence that fails: stop the model, write it again
                    if draft.kept == before:
                        continue  # every new sentence was dropped: nothing more to show
                    whole = True
                    candidate = _tidy(draft.kept)
                elif (end := clause_end(text, max(draft.judged, tried))) > tried and end - draft.judged >= MIN_CLAUSE_CHARS:
                    # a clause is shown early only if it passes by itself; if not ("free," before "for
                    # faulty items."), the rest of its sentence decides
                    tried = end
                    clause = text[draft.judged:end]
                    if relevant is not None and relevant(clause):
                        continue
                    candidate = _tidy(draft.kept + clause)
                    if not checked(candidate).ok:
                        continue
                else:
                    continue
                shown = candidate
                if result.first_text_s is None:
                    result.first_text_s = clock() - t0
                on_text(finish(shown))
            else:
                verdict = draft.take(len(draft.text))  # the last sentence, when no stop followed it
                ended = True
        except LLMTimeout as exc:
            attempt["error"] = result.error = f"timeout: {exc}"
            # complete, verified sentences stand; a cut-off answer does not
            if draft.dropped:
                attempt["dropped"] = draft.dropped
            if whole and _tidy(draft.kept):
                result.text, result.source = finish(_tidy(draft.kept)), "llm" if n == 0 else "llm-retry"
                attempt["text"] = draft.text[:draft.judged]
            break
        except LLMError as exc:
            attempt["error"] = result.error = str(exc)
            break
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()  # an abandoned stream stops the model's generation
        text, kept = draft.text, _tidy(draft.kept)
        attempt["text"] = text[:2000]
        if draft.dropped:
            attempt["dropped"] = draft.dropped
        if dont_know and dont_know in text:
            attempt["dont_know"] = True
            result.source = "dont_know"
            break
        if ended and verdict is None:  # the stream ended and every sentence passed the claim check
            if not text.strip():
                attempt["empty"] = True
                feedback = "Your answer was empty."
                continue
            if not kept:
                attempt["off_topic"] = True  # nothing was about the question: no model line at all
                result.source = "off_topic"
                break
            verdict = checked(kept)
        assert verdict is not None
        attempt.update(verdict.to_log())
        if verdict.ok:
            result.text, result.source = finish(kept), "llm" if n == 0 else "llm-retry"
            if kept != shown:  # the last sentence had no stop after it
                if result.first_text_s is None:
                    result.first_text_s = clock() - t0
                on_text(result.text)
            break
        feedback = feedback_for(verdict)
    result.seconds = clock() - t0
    if result.source in {"fallback", "dont_know", "off_topic"}:
        result.text = fallback
    return result
