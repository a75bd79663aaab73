"""`shopbot chat` keeps the conversation clean: models that load while the shopper types (the language model,
the query encoders) draw no progress bars into it; stdout is the greeting and the replies, in order, and
stderr holds one line saying the language model is loading."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import build_assistant
from bot.channels.terminal import LOADING_LLM, run_chat
from bot.settings import Settings
from tests.conftest import write_catalog

BAR_TEXT = ("it/s", "%|", "Loading weights")
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def bars_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """transformers and huggingface_hub as a fresh process has them (bars on, warnings shown); put back after."""
    from huggingface_hub import utils as hub  # with transformers: the libraries under test
    from transformers.utils import logging as hf_logging

    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    monkeypatch.delenv("TRANSFORMERS_VERBOSITY", raising=False)  # also removes what the warm-up sets
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.enable_progress_bar()
    hf_logging.set_verbosity_warning()
    yield hf_logging
    hf_logging.set_verbosity(verbosity)
    if bars:
        hf_logging.enable_progress_bar()
    else:
        hf_logging.disable_progress_bar()
    assert hub.are_progress_bars_disabled() == (not bars)


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", catalog=write_catalog(tmp_path / "c.csv"), encoder="hashing",
                    multilingual_encoder="hashing", body_view=False, llm_timeout=5)


def _join_warm_up() -> None:
    """Wait for the background loads, so that whatever they print is printed before the test reads it."""
    for t in threading.enumerate():
        if t.name in ("llm-warm-up", "search-warm-up"):
            t.join(timeout=120)


def test_warm_up_turns_off_the_model_libraries_progress_bars(  # type: ignore[no-untyped-def]
        bars_on, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from huggingface_hub.utils import are_progress_bars_disabled

    hf_logging = bars_on
    assistant = build_assistant(_settings(tmp_path), llm=False)
    try:
        assistant.warm_up()
        _join_warm_up()
    finally:
        assistant.close()
    assert not hf_logging.is_progress_bar_enabled() and are_progress_bars_disabled()
    assert hf_logging.get_verbosity() == hf_logging.ERROR
    capfd.readouterr()
    for _ in hf_logging.tqdm(range(3), desc="Loading weights"):  # the bar transformers draws per model it loads
        pass
    assert capfd.readouterr().err == ""


def test_a_model_library_imported_after_the_warm_up_draws_no_bars_either() -> None:
    """The usual case: transformers is first imported by the background thread that loads the language model."""
    code = ("from bot.app import quiet_model_loading; quiet_model_loading()\n"
            "from transformers.utils import logging as hf_logging\n"
            "for _ in hf_logging.tqdm(range(3), desc='Loading weights'): pass\n"
            "print(hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity() == hf_logging.ERROR)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY")}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.split() == ["False", "True"]
    assert not any(b in done.stderr for b in BAR_TEXT), done.stderr


def test_a_chat_prints_the_greeting_and_replies_while_the_language_model_loads_quietly(  # type: ignore[no-untyped-def]
        bars_on, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """The real terminal channel with a real transformers model (the tiny one) loading in the background."""
    from model.llm.local import TransformersLLM
    from model.llm.tiny import build_tiny_model

    llm = TransformersLLM(build_tiny_model(tmp_path / "tiny"))
    assistant = build_assistant(_settings(tmp_path), llm=llm)
    capfd.readouterr()
    run_chat(assistant, "shopper", stdin=io.StringIO("shoes\n/more\n红色的外套\nquit\n"))
    _join_warm_up()
    assert llm.device is not None  # it did load, during the chat
    out, err = capfd.readouterr()

    assert not any(b in out for b in BAR_TEXT) and not any(b in err for b in BAR_TEXT), (out, err)
    assert err.splitlines() == [LOADING_LLM]
    lines = out.splitlines()
    assert lines[0].startswith("shopbot: 13 products. Ask in English or Chinese")
    # every other line is a reply or its continuation, and the replies come in the order of the turns
    assert all(line.startswith(("bot> ", "     ")) for line in lines[1:]), out
    at = [next(i for i, line in enumerate(lines) if marker in line)
          for marker in ("SHO-1", "That's all I have", "COA-1", "Bye! / 再见！")]
    assert at == sorted(at) and at[-1] == len(lines) - 1


@pytest.mark.slow
def test_shopbot_chat_with_the_real_encoders_prints_no_loading_bars(tmp_path: Path) -> None:
    """`shopbot chat` end to end with the default encoders (their weights load at each start): stdout is the
    conversation, stderr only the first start's indexing (its own bars and report), no "Loading weights"."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SHOPBOT_") and k not in ("HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY")}
    env.update(SHOPBOT_CATALOG=str(write_catalog(tmp_path / "c.csv")), SHOPBOT_BODY_VIEW="false")
    for _ in range(2):  # a first start (builds the index), then an ordinary one
        done = subprocess.run([sys.executable, "-m", "bot.cli", "--data-dir", str(tmp_path / "data"), "chat",
                               "--no-llm"], input="running shoes\nquit\n", cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=600, check=True)
        assert "Loading weights" not in done.stderr and not any(b in done.stdout for b in BAR_TEXT), done
        lines = done.stdout.splitlines()
        assert lines[0].startswith("shopbot: 13 products") and lines[-1] == "bot> Bye! / 再见！"
        assert all(line.startswith(("bot> ", "     ")) for line in lines[1:]) and "SHO-1" in done.stdout
    assert done.stderr == "", done.stderr  # an ordinary start says nothing about its models


def test_a_first_start_still_shows_the_minutes_of_preparing_the_language_model(  # type: ignore[no-untyped-def]
        bars_on, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`shopbot chat` quiets the model libraries before it builds the assistant; converting the packaged model
    on a first start (minutes, before the first prompt) shows its bars all the same, and the quiet is back after."""
    import transformers

    from bot.app import quiet_model_loading
    from model.llm.base import LLMError
    from model.llm.default import convert_gguf_to_bf16

    hf_logging = bars_on
    seen: list[bool] = []

    def unreadable(*args: object, **kwargs: object) -> None:
        seen.append(hf_logging.is_progress_bar_enabled())
        raise OSError("not a GGUF file")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", unreadable)
    quiet_model_loading()
    with pytest.raises(LLMError):
        convert_gguf_to_bf16(tmp_path / "model.gguf", tmp_path / "out", progress=True)
    assert seen == [True] and not hf_logging.is_progress_bar_enabled()
