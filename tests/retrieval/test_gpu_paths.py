"""The one GPU switch (SHOPBOT_DEVICE) and the CUDA code paths it turns on.

The first half runs everywhere (default run): how the switch is read and what it decides for the encoders,
the FAISS index and the local LLM. The second half is marked ``gpu`` and skipped without CUDA (and, for the
index, without a faiss build that has GPU support): each CUDA path gives the answers the CPU path gives.
Run them on a GPU machine with ``pytest -m gpu tests/retrieval/test_gpu_paths.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bot.services import build_options, index_on_gpu, load_options
from bot.settings import Settings
from retrieval import encoders as enc_mod
from retrieval.encoders import get_encoder, pick_device, set_default_device
from retrieval.index import VectorIndex, gpu_available


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


needs_cuda = pytest.mark.skipif(not cuda_available(), reason="needs a CUDA GPU (torch sees none)")
needs_faiss_gpu = pytest.mark.skipif(not gpu_available(), reason="faiss has no GPU support here (faiss-gpu, the `gpu` extra)")


@pytest.fixture(autouse=True)
def default_device() -> Iterator[None]:
    """Every test leaves the process-wide default as it found it."""
    before = enc_mod._DEFAULT_DEVICE
    yield
    enc_mod._DEFAULT_DEVICE = before


# ------------------------------------------------------------------------------------------- the switch


@pytest.mark.parametrize(("given", "read"), [("auto", None), ("", None), ("AUTO", None), ("cpu", "cpu"),
                                             ("CUDA", "cuda"), ("cuda:1", "cuda:1")])
def test_shopbot_device_is_auto_cpu_or_cuda(given: str, read: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPBOT_DEVICE", given)
    assert Settings().device == read


def test_a_device_that_is_not_one_of_those_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPBOT_DEVICE", "gpu")
    with pytest.raises(ValueError, match="SHOPBOT_DEVICE='gpu' is not auto, cpu, cuda or cuda:N"):
        Settings()


def test_one_switch_decides_the_index_and_the_encoders_of_every_build_and_load() -> None:
    cpu = Settings(device="cpu")
    assert index_on_gpu(cpu) is False  # faiss-gpu installed or not, a CPU deployment keeps the index on the CPU
    assert build_options(cpu)["device"] == load_options(cpu)["device"] == "cpu"
    assert build_options(cpu)["use_gpu"] is load_options(cpu)["use_gpu"] is False
    auto = Settings(device="auto")
    assert index_on_gpu(auto) is None and build_options(auto)["device"] is None  # decided at run time
    assert index_on_gpu(Settings(device="cuda")) is None  # GPU index when faiss-gpu sees a GPU, else CPU
    # the finer switch still wins where it is set
    assert index_on_gpu(Settings(device="cpu", use_gpu_index=True)) is True
    assert index_on_gpu(Settings(device="cuda", use_gpu_index=False)) is False


def test_the_default_device_reaches_models_created_without_one() -> None:
    set_default_device("cpu")
    assert pick_device() == "cpu" and pick_device("auto") == "cpu"
    assert pick_device("cuda") == "cuda"  # an explicit device still wins
    set_default_device("auto")
    assert pick_device() == ("cuda" if cuda_available() else "cpu")


def test_asking_for_the_default_and_for_the_device_it_resolves_to_share_one_encoder() -> None:
    set_default_device("cpu")
    assert get_encoder("minilm") is get_encoder("minilm", device="cpu")
    assert get_encoder("hashing") is get_encoder("hashing", device="cpu")  # numpy encoders have no device


def test_the_local_llm_follows_the_same_switch() -> None:
    from model.llm.local import pick_device as llm_device

    assert llm_device(None) == ("cuda" if cuda_available() else "cpu")
    assert llm_device("cpu") == "cpu"
    if not cuda_available():
        from model.llm.base import LLMError

        with pytest.raises(LLMError, match="torch sees no CUDA GPU"):
            llm_device("cuda")


def test_without_faiss_gpu_the_auto_index_stays_on_the_cpu() -> None:
    if gpu_available():
        pytest.skip("this faiss has GPU support")
    vecs = np.random.default_rng(0).standard_normal((64, 16)).astype(np.float32)
    index = VectorIndex.build(np.arange(64), vecs, kind="flat", use_gpu=None)
    assert not index.on_gpu
    with pytest.raises(RuntimeError, match="install faiss-gpu"):
        VectorIndex.build(np.arange(64), vecs, kind="flat", use_gpu=True)


# ------------------------------------------------------------------------------------ the CUDA paths


@pytest.mark.gpu
@needs_cuda
def test_minilm_on_cuda_encodes_like_the_cpu() -> None:
    from retrieval.encoders import SentenceTransformerEncoder, minilm_path

    texts = ["red winter coat under $80", "Nike Pegasus 41 running shoe", "how do I return shoes?"] * 30
    cpu = SentenceTransformerEncoder(minilm_path(), name="minilm", device="cpu", quantize_queries=False)
    gpu = SentenceTransformerEncoder(minilm_path(), name="minilm", device="cuda")
    assert gpu.device == "cuda" and gpu.dim == cpu.dim == 384
    a, b = cpu.encode(texts, kind="passage"), gpu.encode(texts, kind="passage")
    assert a.shape == b.shape and float((a * b).sum(axis=1).min()) > 0.999
    q = gpu.encode(["red coat"], kind="query")  # a single query goes through the model on CUDA too
    assert np.isclose(np.linalg.norm(q), 1.0, atol=1e-3)


@pytest.mark.gpu
@needs_cuda
def test_the_switch_puts_the_search_encoders_on_cuda(tmp_path: Path, products) -> None:  # type: ignore[no-untyped-def]
    from retrieval.indexer import build_bundle, load_engine

    s = Settings(device="cuda", multilingual_encoder="", body_view=False)
    build_bundle(products, tmp_path / "index", **build_options(s))
    engine = load_engine(tmp_path / "index", **load_options(s))
    field = engine.dense["en"]
    inner = getattr(field.encoder, "inner", field.encoder)  # behind the query cache
    assert getattr(inner, "device", None) == "cuda"
    assert field.index.on_gpu == gpu_available()
    assert engine.search("red winter coat").skus[0].startswith("COA")


@pytest.mark.gpu
@needs_cuda
@needs_faiss_gpu
@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_the_gpu_index_finds_what_the_cpu_index_finds(kind: str) -> None:
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((30_000, 64)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = np.arange(30_000)
    queries = vecs[rng.choice(30_000, 50, replace=False)]
    gpu = VectorIndex.build(ids, vecs, kind=kind, use_gpu=True)
    cpu = VectorIndex.build(ids, vecs, kind=kind, use_gpu=False)
    assert gpu.on_gpu and not cpu.on_gpu
    got_gpu, got_cpu = gpu.search(queries, 10)[1], cpu.search(queries, 10)[1]
    agree = np.mean([len(set(a.tolist()) & set(b.tolist())) / 10 for a, b in zip(got_gpu, got_cpu, strict=True)])
    assert agree >= (0.999 if kind == "flat" else 0.9)
    if kind == "flat":  # exact search: the best match is the same row
        assert (got_gpu[:, 0] == got_cpu[:, 0]).all()


@pytest.mark.gpu
@needs_cuda
def test_the_local_llm_generates_on_cuda_in_bf16(tmp_path: Path) -> None:
    import torch

    from model.llm.local import TransformersLLM
    from model.llm.tiny import build_tiny_model

    llm = TransformersLLM(build_tiny_model(tmp_path / "tiny"), device=None)  # auto: CUDA is there
    try:
        llm.load()
        assert str(llm.device).startswith("cuda") and llm.dtype in (torch.bfloat16, torch.float16)
        messages = [{"role": "user", "content": "Do you ship to Spain?"}]

        async def both() -> list[str]:
            return list(await asyncio.gather(*(llm.complete(messages, max_tokens=12, temperature=0) for _ in range(2))))

        a, b = asyncio.run(both())
        assert a and a == b  # greedy decoding is deterministic on the GPU too
    finally:
        llm.close()


@pytest.mark.gpu
@needs_cuda
def test_the_next_item_model_trains_and_scores_on_cuda() -> None:
    from retrieval.recommend.sequential import SeqConfig, SequentialRecommender

    set_default_device("cuda")
    model = SequentialRecommender(30, SeqConfig(dim=16, layers=1, heads=1, epochs=2, batch_size=8, threads=1))
    assert str(model.device).startswith("cuda")
    histories = [[i % 30, (i + 1) % 30, (i + 2) % 30] for i in range(120)]
    model.fit(histories)
    scores = model.score(histories[:4])
    assert scores.shape == (4, 30) and np.isfinite(scores).all()
