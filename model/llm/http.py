"""An OpenAI-compatible chat-completions server (vLLM, llama.cpp server, TGI...) behind the `LLM` contract.

This is the scale-out path: many bot replicas share one GPU server that batches their requests.
Only streaming is implemented, because every caller here either shows text as it comes or reads it
through `complete`, which is built on the stream anyway.

A fresh `httpx.AsyncClient` is opened per request. Reusing one would save a TCP handshake, but a
client belongs to the event loop that created it, and `complete_sync` (the CLI) runs each call in a
new loop; next to generation times of hundreds of milliseconds the handshake does not show.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from model.llm.base import (
    BaseLLM,
    LLMError,
    LLMTimeout,
    Message,
    StopCutter,
    check_sampling,
    deadline_for,
    describe,
    remaining,
    validate_messages,
)

__all__ = ["OpenAICompatibleLLM"]


def _api_base(base_url: str) -> str:
    """``http://host:8000`` and ``http://host:8000/v1`` both mean the server's ``/v1`` API."""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise LLMError(f"LLM server URL {base_url!r} is not an http(s) URL; set it like http://127.0.0.1:8000/v1.")
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class OpenAICompatibleLLM(BaseLLM):
    """Streams chat completions from ``{base_url}/chat/completions`` with server-sent events.

    ``model`` is the name the server serves; left out, the first model the server lists
    (``GET /models``) is used, which is what a single-model vLLM deployment wants.
    ``timeout`` is the default budget per call in seconds, overridable per call.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 30,
    ) -> None:
        self.base_url = _api_base(base_url)
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.name = f"openai:{model or '?'}@{self.base_url}"
        self.version = model or "?"

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _client(self, deadline: float | None) -> httpx.AsyncClient:
        # httpx's own timeouts are per operation; the call's overall deadline is enforced around each
        # await below. These only bound a single connect/read so nothing can hang without a deadline.
        per_op = remaining(deadline) or self.timeout
        return httpx.AsyncClient(timeout=httpx.Timeout(per_op), headers=self._headers())

    async def _resolve_model(self, client: httpx.AsyncClient, deadline: float | None) -> str:
        if self.model:
            return self.model
        url = f"{self.base_url}/models"
        async with asyncio.timeout(remaining(deadline)):
            response = await client.get(url)
        if response.status_code >= 400:
            raise LLMError(
                f"The LLM server at {url} answered HTTP {response.status_code} when asked for its models; set the model name explicitly."
            )
        try:
            self.model = str(response.json()["data"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise LLMError(f"The LLM server at {url} listed no models; set the model name explicitly.") from e
        self.name, self.version = f"openai:{self.model}@{self.base_url}", self.model
        return self.model

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 256,
        temperature: float = 0.2,
        stop: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[str]:
        chat = validate_messages(messages)
        check_sampling(max_tokens, temperature)
        budget = self.timeout if timeout is None else timeout
        deadline = deadline_for(budget)
        url = f"{self.base_url}/chat/completions"
        cutter = StopCutter(stop)
        try:
            async with self._client(deadline) as client:
                body: dict[str, Any] = {
                    "model": await self._resolve_model(client, deadline),
                    "messages": chat,
                    "max_tokens": max_tokens,
                    "temperature": temperature,
                    "stream": True,
                }
                if stop:
                    body["stop"] = list(stop)
                request = client.build_request("POST", url, json=body)
                async with asyncio.timeout(remaining(deadline)):
                    response = await client.send(request, stream=True)
                try:
                    if response.status_code >= 300:
                        async with asyncio.timeout(remaining(deadline)):
                            detail = (await response.aread()).decode("utf-8", "replace")
                        raise LLMError(
                            f"The LLM server at {url} answered HTTP {response.status_code} ({describe(detail, 160)}); "
                            "check the server's log and the model name."
                        )
                    lines = response.aiter_lines()
                    while not cutter.done:
                        async with asyncio.timeout(remaining(deadline)):
                            line = await anext(lines, None)
                        if line is None:
                            break
                        piece = _parse_event(line, url)
                        if piece is None:
                            break
                        out = cutter.feed(piece)
                        if out:
                            yield out
                    tail = cutter.flush()
                    if tail:
                        yield tail
                finally:
                    await response.aclose()  # an early exit closes the connection; vLLM then aborts the request
        except TimeoutError as e:
            raise LLMTimeout(
                f"The LLM server at {url} did not finish within {budget:g} s; raise the timeout or lower max_tokens."
            ) from e
        except httpx.TimeoutException as e:
            raise LLMTimeout(
                f"The LLM server at {url} did not answer within {budget:g} s; raise the timeout or check the server's load."
            ) from e
        except httpx.ConnectError as e:
            raise LLMError(
                f"Cannot reach the LLM server at {url} ({describe(e, 120)}); start it or fix the LLM URL setting."
            ) from e
        except httpx.HTTPError as e:
            raise LLMError(
                f"The connection to the LLM server at {url} failed ({type(e).__name__}: {describe(e, 120)}); check that the server is up."
            ) from e


def _parse_event(line: str, url: str) -> str | None:
    """The text in one server-sent-events line: "" for lines without any, None at ``[DONE]``."""
    if not line.startswith("data:"):
        return ""  # blank separators, comments (":"), "event:"/"id:" fields
    data = line[5:].strip()
    if data == "[DONE]":
        return None
    try:
        event = json.loads(data)
    except ValueError as e:
        raise LLMError(
            f"The LLM server at {url} sent a malformed event ({describe(data, 80)}); is it OpenAI-compatible?"
        ) from e
    if not isinstance(event, dict):
        return ""
    if "error" in event:
        error = event["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise LLMError(f"The LLM server at {url} reported an error ({describe(message, 160)}); check the server's log.")
    text = ""
    for choice in event.get("choices") or ():
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if isinstance(content, str):
            text += content
    return text
