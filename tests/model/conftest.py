"""Fixtures for the language-model tests: a tiny real transformers model, built once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from model.llm.factory import TransformersLLM, build_tiny_model


def make_tiny_model(directory: Path) -> Path:
    """A two-layer random Qwen2 chat model in ``directory`` (see `model.llm.tiny`)."""
    return build_tiny_model(directory)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-llm"))


@pytest.fixture(scope="session")
def tiny_llm(tiny_model_dir: Path) -> Iterator[TransformersLLM]:
    llm = TransformersLLM(tiny_model_dir, device="cpu")
    llm.load()
    yield llm
    llm.close()
