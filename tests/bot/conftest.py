"""Fixtures the conversation tests share: the demo catalog's engine (tests/conftest.py) with the packaged
intent model and the demo policy over the same encoders, built once per test module; and the assistant over them
with the test module's own ``settings``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.app import Assistant, build_assistant, nlu_for
from bot.dialogue.nlu.intents import load_default_model
from retrieval.policy import PolicyIndex


@pytest.fixture(scope="module")
def shared(demo_engine):  # type: ignore[no-untyped-def]
    """(engine, NLU, policy) over the demo catalog: what ``build_assistant`` would load, without the loading."""
    nlu = nlu_for(demo_engine, load_default_model())
    policy = PolicyIndex.from_path(None, {k: d.encoder for k, d in demo_engine.dense.items()})
    return demo_engine, nlu, policy


@pytest.fixture
def assistant(shared, settings) -> Iterator[Assistant]:  # type: ignore[no-untyped-def]
    """The assistant over ``shared`` with the module's ``settings`` fixture, closed after the test."""
    engine, nlu, policy = shared
    a = build_assistant(settings, engine=engine, nlu=nlu, policy=policy)
    yield a
    a.close()
