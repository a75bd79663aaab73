"""Language-model backends behind one small contract, and the factory that picks one.

    LLM                   the contract: `stream` (text as it is generated) and `complete`
    BaseLLM               what the backends add: `complete_sync` for callers without an event loop
    TransformersLLM       a local transformers model directory, CUDA when present (local.py)
    OpenAICompatibleLLM   an OpenAI-compatible server such as vLLM, for scale-out (http.py)
    default_llm           the packaged Qwen2.5-Coder-0.5B-Instruct, prepared on first use (default.py)
    build_tiny_model      a tiny random model for tests of the real transformers path (tiny.py)

Importing this module is cheap: torch and transformers load when a model is first used.
"""

from __future__ import annotations

import logging
from pathlib import Path

from model.llm.base import LLM, BaseLLM, LLMError, LLMTimeout, Message, StopCutter, complete_sync
from model.llm.default import (
    DEFAULT_MODEL_NAME,
    DEFAULT_SHA256,
    convert_gguf_to_bf16,
    default_llm,
    ensure_default_model,
    locate_packaged_part,
    part_package,
)
from model.llm.http import OpenAICompatibleLLM
from model.llm.local import TransformersLLM, cpu_bf16_is_faster, model_version, pick_device, pick_dtype
from model.llm.tiny import build_tiny_model

__all__ = [
    "DEFAULT_MODEL_NAME",
    "DEFAULT_SHA256",
    "LLM",
    "BaseLLM",
    "LLMError",
    "LLMTimeout",
    "Message",
    "OpenAICompatibleLLM",
    "StopCutter",
    "TransformersLLM",
    "build_llm",
    "build_tiny_model",
    "complete_sync",
    "convert_gguf_to_bf16",
    "cpu_bf16_is_faster",
    "default_llm",
    "ensure_default_model",
    "locate_packaged_part",
    "model_version",
    "part_package",
    "pick_device",
    "pick_dtype",
]


log = logging.getLogger(__name__)
_said_http_adapter = False


def build_llm(
    url: str | None,
    model: str | None,
    data_dir: str | Path,
    device: str | None = None,
    *,
    api_key: str | None = None,
    timeout: float = 30,
    progress: bool = True,
    adapter: str | Path | None = None,
    dtype: str | None = None,
) -> BaseLLM:
    """The backend the settings ask for.

    ``url`` set: an OpenAI-compatible server, with ``model`` as the served model's name (None: the
    server's first). Otherwise ``model`` is a local transformers model directory, and with neither
    the packaged default model is prepared under ``data_dir`` and used. ``adapter``: a fine-tuned LoRA
    version (`shopbot train llm`) merged into the local model; a server serves its own weights. ``dtype``:
    the local model's precision ("auto", "float32", "bfloat16", "int8" on a CPU).
    """
    if url:
        global _said_http_adapter
        if adapter is not None and not _said_http_adapter:
            _said_http_adapter = True
            log.warning("The fine-tuned LLM version in %s is not used: %s serves its own weights (load the adapter "
                     "there, e.g. vLLM --lora-modules).", adapter, url)
        return OpenAICompatibleLLM(url, model, api_key=api_key, timeout=timeout)
    if model:
        return TransformersLLM(model, device=device, adapter=adapter, dtype=dtype)
    return default_llm(data_dir, device=device, progress=progress, adapter=adapter, dtype=dtype)
