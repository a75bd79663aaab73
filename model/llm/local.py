"""A local transformers causal LM behind the `LLM` contract (CUDA when present, CPU otherwise).

One model instance serves every conversation. Requests queue on a small thread pool whose size is
``max_concurrency`` (default 1): on a CPU one `generate` at a time with all cores is the fastest way
through a queue, because two concurrent generations split the same cores and memory bandwidth and
each finishes later than if they had taken turns. On a GPU a few concurrent generations can overlap,
so the knob exists, but batching many shoppers is what vLLM (`OpenAICompatibleLLM`) is for.

Generation runs in that pool's thread; its text reaches the event loop through
``loop.call_soon_threadsafe`` (a `TextStreamer` subclass, like transformers' own
`AsyncTextIteratorStreamer`), so the loop never blocks on the model and no extra thread sits waiting
on a queue. Stop strings, timeouts and callers who walk away all end generation through one
`StoppingCriteria` that is checked after every token.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import os
import threading
import time
import warnings
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    import torch

__all__ = ["INT8_ON_CPU", "TransformersLLM", "adapter_problem", "cpu_bf16_is_faster", "model_version", "pick_device", "pick_dtype",
           "quantize_int8", "wants_int8"]

log = logging.getLogger(__name__)

_DTYPES = {
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
}
# Chat models mark the end of a turn with one of these; generation stops at any that the vocabulary has.
_END_OF_TURN = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>")


def model_version(model_dir: Path) -> str:
    """A short fingerprint of a model directory for logs and feedback rows.

    The config plus the names and sizes of the weight files: cheap enough for startup (no hashing of
    gigabytes) and it changes whenever the model is replaced or re-converted.
    """
    h = hashlib.sha256()
    config = model_dir / "config.json"
    h.update(config.read_bytes() if config.is_file() else b"")
    for f in sorted(model_dir.iterdir()):
        if f.suffix in {".safetensors", ".bin", ".pt", ".gguf"} and f.is_file():
            h.update(f"{f.name}:{f.stat().st_size}\n".encode())
    return h.hexdigest()[:12]


def adapter_problem(adapter: Path, base_version: str) -> str | None:
    """Why the LoRA adapter in ``adapter`` (a `shopbot train llm` version) cannot run on the base model whose
    `model_version` is ``base_version``; None when it can. Its meta.json names the base it was trained on."""
    if not all((adapter / f).is_file() for f in ("adapter_config.json", "adapter_model.safetensors")):
        return f"{adapter} holds no LoRA adapter (adapter_config.json and adapter_model.safetensors)"
    try:
        base = json.loads((adapter / "meta.json").read_text(encoding="utf-8")).get("base_model") or {}
    except (OSError, ValueError, AttributeError):
        base = {}
    if base.get("version") != base_version:
        return f"it was trained on {base.get('name', 'another model')}@{base.get('version', '?')}, not on this model"
    return None


def _merge_adapter(model: Any, adapter: Path) -> Any:
    """The model with the LoRA weights added into its own (merged: inference runs at the base model's speed)."""
    try:  # peft is needed only for a fine-tuned version (`shopbot train llm`)
        from peft import PeftModel
    except ImportError as e:
        raise LLMError("The active llm version is a LoRA adapter and the peft package is missing; reinstall shopbot "
                       "(pip install -e .) or run `shopbot models rollback llm`.") from e
    try:
        return PeftModel.from_pretrained(model, adapter, is_trainable=False).merge_and_unload()
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        raise LLMError(f"Could not apply the fine-tuned adapter in {adapter} ({describe(e, 160)}); "
                       "`shopbot models rollback llm` returns to the base model.") from e


def pick_device(device: str | None) -> str:
    """The device to run on, chosen once: CUDA when torch sees one, else the CPU, unless overridden."""
    import torch  # imported on first use: importing shopbot must not cost torch's load time

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LLMError(
            f"device={device!r} was asked for but torch sees no CUDA GPU; install a CUDA build of torch or use device='cpu'."
        )
    return device


@functools.lru_cache(maxsize=1)
def cpu_bf16_is_faster() -> bool:
    """Whether bfloat16 matrix products beat float32 on this CPU, measured once per process.

    CPUs with AVX512-BF16/AMX run bf16 about 2-3x faster than fp32 (fewer bytes to stream, native
    dot products; measured here: a 896x4864 gemv 0.19 ms vs 0.66 ms); CPUs without them emulate bf16
    and can be several times slower. The flags do not tell the whole story (oneDNN, memory
    bandwidth), so time the two shapes that dominate a 0.5B model, weighted as in a typical turn: a
    decode gemv and a prompt gemm (an AVX2-only EPYC here runs bf16 decode faster but a 263-token
    prompt 4.5x slower: 11.4 s vs 2.5 s to the first token).
    """
    import torch  # seconds to import: only once a model is used

    functional = torch.nn.functional
    try:
        gen = torch.Generator().manual_seed(0)
        w = torch.randn(4864, 896, generator=gen)
        times: dict[Any, float] = {}
        for dt in (torch.float32, torch.bfloat16):
            ww = w.to(dt)
            total = 0.0
            # a typical turn: a ~400-token prompt (one gemm of 256 rows counts 1.6 times) and ~40
            # generated tokens (40 gemvs); on CPUs that emulate bf16 the prompt is what suffers most
            for rows, weight in ((1, 40.0), (256, 1.6)):
                x = torch.randn(rows, 896, generator=gen).to(dt)
                with torch.inference_mode():
                    for _ in range(2):
                        functional.linear(x, ww)
                    samples = []
                    for _ in range(9):
                        t = time.perf_counter()
                        functional.linear(x, ww)
                        samples.append(time.perf_counter() - t)
                total += weight * sorted(samples)[len(samples) // 2]
            times[dt] = total
    except RuntimeError:  # no bf16 kernels at all
        return False
    return bool(times[torch.bfloat16] < times[torch.float32])


def _weights_dtype(model_dir: Path) -> str | None:
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = config.get("dtype") or config.get("torch_dtype")
    return value if isinstance(value, str) else None


#: dtype value meaning "int8 on a CPU, the automatic choice elsewhere" (the packaged model's default).
INT8_ON_CPU = "int8-on-cpu"


def wants_int8(device: str, dtype: str | torch.dtype | None) -> bool:
    """int8 weights on request (``dtype="int8"``), on the CPU only: CUDA runs bf16, which is faster there."""
    if dtype == INT8_ON_CPU:
        return device.startswith("cpu")
    if not (isinstance(dtype, str) and dtype.lower() == "int8"):
        return False
    if not device.startswith("cpu"):
        log.warning("dtype int8 is for CPUs; running %s in its default precision instead.", device)
        return False
    return True


def torch_float32() -> torch.dtype:
    import torch  # seconds to import: only once a model is used

    return torch.float32


def quantize_int8(model: Any) -> Any:
    """Dynamic int8 quantization of every linear layer (weights int8, activations quantized on the fly).

    Decoding a small model on a CPU is bound by memory bandwidth: every token streams all weights once, so
    a quarter of the bytes is most of the win. Measured with the packaged 0.5B model on this 2-core AVX2 CPU
    (tests/benchmarks/bench_llm.py): about 6x the fp32 decode rate and a fifth of its prompt time; answers
    differ in wording from fp32, and the claim verifier checks them the same way.
    """
    import torch  # seconds to import: only once a model is used

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's move to torchao is announced on every call
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)  # type: ignore[no-untyped-call]  # unannotated in torch


def pick_dtype(device: str, model_dir: Path, dtype: str | torch.dtype | None = None) -> torch.dtype:
    """The compute dtype: bf16 on CUDA (fp16 where bf16 is unsupported); on CPU bf16 only when the
    weights are already half precision *and* bf16 measures faster here, else fp32.

    Full-precision weights stay fp32 on a CPU: rounding them to bf16 would change the model's answers
    for a speed-up the caller did not ask for (they can, with ``dtype="bfloat16"``).
    """
    import torch  # seconds to import: only once a model is used

    if dtype is not None and dtype not in ("auto", INT8_ON_CPU):
        if isinstance(dtype, torch.dtype):
            return dtype
        name = _DTYPES.get(str(dtype).lower().removeprefix("torch."))
        if name is None:
            raise ValueError(f"dtype {dtype!r} is not one of {sorted(_DTYPES)} or 'auto'")
        chosen: torch.dtype = getattr(torch, name)
        return chosen
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "cpu" and _weights_dtype(model_dir) in {"bfloat16", "float16"} and cpu_bf16_is_faster():
        return torch.bfloat16
    return torch.float32


class _Job:
    """One request's state, shared between the event loop and the generation thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, deadline: float | None, stop: Sequence[str]) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.deadline = deadline
        self.stop = list(stop)
        self.cancelled = threading.Event()
        self.timed_out = False

    def send(self, item: object) -> None:
        """Hand ``item`` to the event loop; if the loop is gone, nobody is listening, so stop."""
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:
            self.cancelled.set()

    def should_stop(self) -> bool:
        if self.cancelled.is_set():
            return True
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.timed_out = True
            return True
        return False


_END = object()


class TransformersLLM(BaseLLM):
    """A transformers model directory on this machine, loaded on first use.

    Loading waits for the first request (and happens in the generation thread) so that building the
    assistant inside an event loop never freezes it for the seconds a load takes; call `load()` to
    pay that cost up front.
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        max_concurrency: int = 1,
        threads: int | None = None,
        adapter: str | Path | None = None,
    ) -> None:
        """``adapter``: a LoRA adapter directory trained on this model (`shopbot train llm`), merged in at load;
        one trained on another model is refused with a warning and the base model runs."""
        self.model_dir = Path(model_dir).expanduser()
        if not (self.model_dir / "config.json").is_file():
            raise LLMError(
                f"No transformers model at {self.model_dir} (config.json is missing); point the model setting at a "
                "directory written by save_pretrained, or leave it unset to use the packaged default model."
            )
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, not {max_concurrency!r}")
        self.name = f"transformers:{self.model_dir.name}"
        self.version = model_version(self.model_dir)
        self.adapter: Path | None = None
        if adapter is not None:
            problem = adapter_problem(Path(adapter), self.version)
            if problem:
                log.warning("Not using the fine-tuned LLM version in %s: %s; running the base model.", adapter, problem)
            else:
                self.adapter = Path(adapter)
                self.version = f"{self.version}+lora:{self.adapter.name}"
        self.max_concurrency = max_concurrency
        # Threads per generation: all cores split between concurrent generations. Set inside the
        # generation thread, where torch's OpenMP setting is per thread, so the serving threads keep theirs.
        self.threads = threads or max(1, (os.cpu_count() or 1) // max_concurrency)
        self._device_arg, self._dtype_arg = device, dtype
        self.device: str | None = None
        self.dtype: torch.dtype | None = None
        self.quantized = False  # int8 weights (CPU), see quantize_int8
        self._model: Any = None
        self._tokenizer: Any = None
        self._end_ids: list[int] = []
        self._load_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="shopbot-llm")
        self._closed = False
        self._active: set[_Job] = set()  # running or queued, so that close() can end them

    # -- loading -----------------------------------------------------------------------------------

    def load(self) -> None:
        """Load tokenizer and weights now (idempotent, thread-safe)."""
        if self._model is not None:
            return
        with self._load_lock:
            if self._model is not None:
                return
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local paths only: never reach for a hub
            from transformers import AutoModelForCausalLM, AutoTokenizer  # seconds: only when loading

            device = pick_device(self._device_arg)
            int8 = wants_int8(device, self._dtype_arg)
            dtype = torch_float32() if int8 else pick_dtype(device, self.model_dir, self._dtype_arg)
            try:
                # bandit B615 is a false positive: local_files_only, no hub download
                tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)  # nosec B615
                # bandit B615 is a false positive: local_files_only, no hub download
                model: Any = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=dtype, local_files_only=True)  # nosec B615
            except (OSError, ValueError) as e:
                raise LLMError(
                    f"Could not load the model in {self.model_dir} ({describe(e, 160)}); re-create or re-download that directory."
                ) from e
            if not getattr(tokenizer, "chat_template", None):
                raise LLMError(
                    f"The tokenizer in {self.model_dir} has no chat template; use an instruction-tuned (chat) model directory."
                )
            if self.adapter is not None:
                model = _merge_adapter(model, self.adapter)
            model.to(device).eval()
            if int8:
                model = quantize_int8(model)
            ends: set[int] = set()
            for source in (model.generation_config.eos_token_id, tokenizer.eos_token_id):
                if isinstance(source, int):
                    ends.add(source)
                elif source:
                    ends.update(int(i) for i in source)
            vocab = tokenizer.get_vocab()
            ends.update(vocab[t] for t in _END_OF_TURN if t in vocab)
            self._end_ids = sorted(ends)
            self._tokenizer, self.device, self.dtype = tokenizer, device, dtype
            self.quantized = int8
            self._model = model

    @property
    def tokenizer(self) -> Any:
        """The loaded tokenizer (loads the model if needed); for counting tokens."""
        self.load()
        return self._tokenizer

    @property
    def model(self) -> Any:
        """The loaded transformers model (loads it if needed); for tools such as fine-tuning and benchmarks."""
        self.load()
        return self._model

    def close(self) -> None:
        """Stop accepting requests; generations under way end at their next token, queued ones at once."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        for job in list(self._active):
            job.cancelled.set()
            job.send(
                LLMError(f"{self.name} was closed while this request waited or ran; retry with a new model object.")
            )

    # -- generation --------------------------------------------------------------------------------

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
        deadline = deadline_for(timeout)
        job = _Job(asyncio.get_running_loop(), deadline, stop or ())
        try:
            if self._closed:
                raise RuntimeError("closed")
            self._executor.submit(self._generate, job, chat, max_tokens, temperature)
        except RuntimeError as e:  # the pool refuses work once shut down
            raise LLMError(f"{self.name} has been closed; build a new model object to generate again.") from e
        self._active.add(job)
        cutter = StopCutter(stop)
        try:
            while True:
                try:
                    async with asyncio.timeout(remaining(deadline)):
                        item = await job.queue.get()
                except TimeoutError:
                    job.timed_out = True
                    item = _END
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    if isinstance(item, LLMError):
                        raise item
                    raise LLMError(
                        f"{self.name} failed while generating ({type(item).__name__}: {describe(item, 160)}); "
                        "shorten the conversation or lower max_tokens, and see the log if it persists."
                    ) from item
                piece = cutter.feed(str(item))
                if piece:
                    yield piece
                if cutter.done:
                    break
            if job.timed_out:
                raise LLMTimeout(
                    f"{self.name} did not finish within {timeout:g} s; raise the timeout or lower max_tokens."
                )
            tail = cutter.flush()
            if tail:
                yield tail
        finally:
            job.cancelled.set()  # a caller who stops reading (or times out) frees the model at the next token
            self._active.discard(job)

    def _generate(self, job: _Job, chat: list[dict[str, str]], max_tokens: int, temperature: float) -> None:
        """Runs in the pool thread: load if needed, generate, and hand every piece to the loop."""
        try:
            if job.should_stop():  # timed out or abandoned while waiting its turn
                job.send(_END)
                return
            self.load()
            # torch and transformers (and hf.py, which subclasses their types): only when generation starts
            import torch
            from transformers import StoppingCriteriaList

            from model.llm.hf import JobCriteria, LoopStreamer

            if self.device == "cpu":
                torch.set_num_threads(self.threads)
            tok, model = self._tokenizer, self._model
            inputs = tok.apply_chat_template(chat, add_generation_prompt=True, return_dict=True, return_tensors="pt")
            inputs = {k: v.to(self.device) for k, v in inputs.items()}
            prompt_len = int(inputs["input_ids"].shape[1])
            limit = getattr(model.config, "max_position_embeddings", None)
            if limit and prompt_len >= limit:
                raise LLMError(
                    f"The conversation is {prompt_len} tokens, more than the {limit} the model can read; shorten it."
                )
            sampling: dict[str, Any] = (
                {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
            )
            with torch.inference_mode():
                model.generate(
                    **inputs,
                    max_new_tokens=max_tokens if not limit else min(max_tokens, limit - prompt_len),
                    streamer=LoopStreamer(tok, job),
                    stopping_criteria=StoppingCriteriaList([JobCriteria(job, tok, prompt_len)]),
                    eos_token_id=self._end_ids or None,
                    pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else next(iter(self._end_ids), None),
                    **sampling,
                )
            job.send(_END)
        except BaseException as e:  # handed to the caller, who raises it as an LLMError
            job.send(e)
