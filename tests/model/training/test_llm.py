"""`shopbot train llm` on the tiny transformers model: replies shoppers rated well, logged through a real SQLite
Store by the real writers (SupportWriter, ProductWriter over a scripted model), become a LoRA adapter that the
assistant merges into the base model.

One training run on learnable data (the same answers to the same questions, lightly varied) is shared by the
module; tests that change the registry work on a copy of it. Torch runs on one thread here: the tiny model's
matrices are too small for two, and the machine's cores are shared.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
import shutil
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from safetensors import safe_open

from bot.app import build_assistant, llm_from_settings
from bot.cli.main import cli
from bot.dialogue.support import CS_SECTIONS
from bot.settings import Settings
from bot.store.database import Store
from bot.store.records import TurnRecord
from model.llm.factory import OpenAICompatibleLLM, TransformersLLM, build_llm, model_version
from model.training.common import TrainDataError, TrainReport
from model.training.llm import _encode, examples_from_log, train_llm
from model.training.registry import Registry
from model.writing.grounding import Verdict
from model.writing.product_text import ProductWriter
from model.writing.support import SupportWriter
from retrieval.catalog import Product
from retrieval.policy import PolicyIndex
from tests.conftest import write_catalog

# question, intent, the policy section retrieval answers it from, the answer shoppers liked
TOPICS = [
    ("how do I return shoes?", "returns", "Returns", "You can return items within 30 days of delivery."),
    ("can I pay with PayPal?", "check_payment_methods", "Payment", "Yes, we accept PayPal and most cards."),
    ("how long does shipping take?", "delivery_period", "Shipping", "Standard shipping takes 3-5 business days."),
    ("when do I get my refund?", "track_refund", "Refunds", "Refunds are issued within 5-10 business days."),
]


def variant(i: int, good: str) -> str:
    """The small variation: every third answer opens with "Sure," (the shopper liked both)."""
    return f"Sure, {good[0].lower()}{good[1:]}" if i % 3 == 2 else good


FAST = {"epochs": 6, "learning_rate": 2e-2, "max_length": 4096, "min_examples": 10}  # the tiny model learns fast


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Clock:
    """A second per reading, so turns have distinct times and the newest are held out."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


class Scripted:
    """The LLM contract answering with ``respond(messages)``, recording every prompt it was sent."""

    name = "scripted"
    version = "1"

    def __init__(self, respond: Callable[[Sequence[Mapping[str, str]]], str]) -> None:
        self.respond = respond
        self.calls: list[list[dict[str, str]]] = []

    async def stream(self, messages: Sequence[Mapping[str, str]], *, max_tokens: int = 256, temperature: float = 0.2,
                     stop: Sequence[str] | None = None, timeout: float | None = None) -> AsyncIterator[str]:
        self.calls.append([dict(m) for m in messages])
        for word in self.respond(messages).split(" "):
            yield word + " "

    async def complete(self, messages: Sequence[Mapping[str, str]], **kw: Any) -> str:
        return "".join([p async for p in self.stream(messages)])


def saying(text: str) -> Callable[[Sequence[Mapping[str, str]]], str]:
    return lambda _messages: text


def prefix_length(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def passing(*_a: Any) -> Verdict:
    return Verdict(True, [], [])


def policy_lookup(policy: PolicyIndex) -> Callable[[str, str | None, str], Sequence[tuple[str, str]] | None]:
    """What bot/dialogue/support.py asks the policy for a customer-service question."""

    def passages_for(question: str, intent: str | None, language: str) -> Sequence[tuple[str, str]] | None:
        m = policy.lookup(question, language=language, sections=CS_SECTIONS.get(intent or "", ()))
        return m.passages if m else None

    return passages_for


@pytest.fixture(scope="module")
def policy() -> PolicyIndex:
    return PolicyIndex.from_path(None, {})


def open_store(directory: Path) -> Store:
    return Store(f"sqlite:///{directory / 'shop.db'}", directory / "buffer", clock=Clock())


def log_support(store: Store, policy: PolicyIndex, n: int, *, start: int = 0, thumbs: str = "up",
                answer: Callable[[int], str] | None = None, source_writer: bool = True) -> list[str]:
    """``n`` customer-service turns answered by the real SupportWriter (scripted words), each rated ``thumbs``."""
    ids = []
    lookup = policy_lookup(policy)
    for i in range(start, start + n):
        question, intent, _section, good = TOPICS[i % len(TOPICS)]
        text = answer(i) if answer else variant(i, good)
        passages = lookup(question, intent, "en")
        assert passages
        writer = SupportWriter(Scripted(saying(text)), passing)
        a = asyncio.run(writer.answer(question, passages, extract=passages[0][1], language="en"))
        assert a.source == "llm"
        record = a.to_log() if source_writer else {**a.to_log(), "source": "extract"}
        user, _ = store.touch("test", f"shopper{i}", "en")
        tid = f"turn{i:04d}"
        store.log(TurnRecord(turn_id=tid, user_id=user, text_in=question, text_out=a.text, intent=intent,
                             language="en", generation=[record]))
        if thumbs == "up":
            store.feedback(user, "thumb_up", turn_id=tid)
        elif thumbs == "down":
            store.feedback(user, "thumb_down", turn_id=tid)
        ids.append(tid)
    return ids


@dataclass
class Trained:
    root: Path
    base: Path
    registry: Registry
    report: TrainReport
    n_examples: int


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, policy: PolicyIndex) -> Trained:
    root = tmp_path_factory.mktemp("train-llm")
    store = open_store(root)
    log_support(store, policy, 30)
    data = examples_from_log(store.turn_log(rated_only=True), passages_for=policy_lookup(policy))
    store.close()
    registry = Registry(root / "models")
    report = train_llm(data, tiny_model_dir, registry, device="cpu", **FAST)  # type: ignore[arg-type]
    return Trained(root, tiny_model_dir, registry, report, len(data.examples))


def settings_for(data_dir: Path, base: Path) -> Settings:
    return Settings(data_dir=data_dir, llm="auto", llm_model=str(base), llm_url=None)


def copy_of(t: Trained, tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(t.root, target)
    return target


# ------------------------------------------------------------------------------------------ the data


def test_examples_are_the_model_replies_rated_well_with_the_prompt_the_writer_sent(
        tmp_path: Path, policy: PolicyIndex, products: list[Product]) -> None:
    store = open_store(tmp_path)
    [liked] = log_support(store, policy, 1)
    log_support(store, policy, 1, start=1, source_writer=False)  # a rated passage, not model text
    [disputed] = log_support(store, policy, 1, start=2)
    user, _ = store.touch("test", "shopper2", "en")
    store.feedback(user, "not_what_i_meant", turn_id=disputed)  # liked by one, rejected by another
    log_support(store, policy, 1, start=3, thumbs="none")
    log_support(store, policy, 1, start=4, thumbs="down")

    # a product answer that needed a second attempt: the sent (second) text, paired with the first prompt
    shoe = next(p for p in products if p.sku == "SHO-1").to_record()
    replies = iter(["It costs 5 dollars.", "It is a Nike running shoe with a mesh upper."])
    qa_llm = Scripted(lambda _m: next(replies))
    r = asyncio.run(ProductWriter(qa_llm).answer("what is it made of?", shoe, "en"))
    assert r.source == "llm-retry" and len(qa_llm.calls) == 2
    # a search's closing line
    shown = [p.to_record() for p in products if p.sku in ("SHO-1", "SHO-2")]
    sum_llm = Scripted(lambda _m: "The Adidas Duramo is the cheaper of the two. Tell me your size to narrow it down.")
    s = asyncio.run(ProductWriter(sum_llm).summary("running shoes", shown, "en"))
    assert s.source == "llm"
    for tid, kind, rec in (("qa", "product_qa", {"kind": "product_qa", "sku": "SHO-1", **r.to_log()}),
                           ("sum", "search_summary", {"kind": "search_summary", **s.to_log()})):
        user, _ = store.touch("test", f"shopper-{tid}", "en")
        store.log(TurnRecord(turn_id=tid, user_id=user, text_in="what is it made of?" if kind == "product_qa"
                             else "running shoes", text_out="...", intent="details", language="en", generation=[rec]))
        store.feedback(user, "thumb_up", turn_id=tid)
    turns = store.turn_log(rated_only=True)
    store.close()

    by_sku = {p.sku: p.to_record() for p in products}
    data = examples_from_log(turns, passages_for=policy_lookup(policy), product_for=by_sku.get,
                             search_for=lambda turn: ("running shoes", shown) if turn == "sum" else None)
    assert [e.turn_id for e in data.examples] == [liked, "qa", "sum"]
    assert data.rated_well == 4  # liked, template, qa, sum (the disputed and the rated-down ones are not)
    assert data.skipped == {"its reply was not written by the model (template, policy passage or fallback)": 1}
    support, qa, summary = data.examples
    # each prompt is exactly what the writer sent the model at run time
    writer_llm = Scripted(saying(TOPICS[0][3]))
    passages = policy_lookup(policy)(TOPICS[0][0], TOPICS[0][1], "en")
    assert passages
    asyncio.run(SupportWriter(writer_llm, passing).answer(TOPICS[0][0], passages, "x", "en"))
    assert support.messages == writer_llm.calls[0]
    assert support.reply == TOPICS[0][3]  # the model's words, without the "— from our Returns policy" line
    assert qa.messages == qa_llm.calls[0]  # the first attempt's prompt, without the rejection feedback
    assert "rejected" not in qa.messages[-1]["content"] and "rejected" in qa_llm.calls[1][-1]["content"]
    assert qa.reply == "It is a Nike running shoe with a mesh upper."
    assert summary.messages == sum_llm.calls[0]
    assert summary.reply == s.text  # what the shopper read (the writer's finish applied)

    # the policy changed since: the section the answer came from is no longer what retrieval finds
    moved = examples_from_log(turns, passages_for=lambda q, i, lang: [("Warranty", "Two years.")])
    assert [e.turn_id for e in moved.examples] == []
    assert moved.skipped["the policy passage it was written from has changed"] == 1


def test_only_the_assistants_tokens_are_targets(tiny_model_dir: Path, policy: PolicyIndex, tmp_path: Path) -> None:
    from collections import Counter

    from transformers import AutoTokenizer

    store = open_store(tmp_path)
    log_support(store, policy, 2)
    data = examples_from_log(store.turn_log(rated_only=True), passages_for=policy_lookup(policy))
    store.close()
    tok: Any = AutoTokenizer.from_pretrained(tiny_model_dir)
    skipped: Counter[str] = Counter()
    first, _second = _encode(tok, data.examples, 4096, skipped)
    prompt = tok.apply_chat_template(first.example.messages, add_generation_prompt=True, return_dict=True)["input_ids"]
    ids = first.ids.tolist()
    assert ids[: len(prompt)] == list(prompt)  # the prompt exactly as generation sees it
    assert len(ids) - len(prompt) == first.n_target
    assert tok.decode(ids[len(prompt):]) == TOPICS[0][3] + "<|im_end|>"  # the reply, then the end of the turn
    assert _encode(tok, data.examples, len(prompt), skipped) == []
    assert skipped == {f"longer than {len(prompt)} tokens": 2}


# ---------------------------------------------------------------------------------------- training


def test_learnable_replies_lower_the_held_out_loss_and_the_new_version_becomes_active(trained: Trained) -> None:
    r = trained.report
    assert r.kind == "llm" and r.metric == "loss" and r.baseline_name == "base model"
    assert (r.train_examples, r.test_examples) == (24, 6) and trained.n_examples == 30
    assert r.candidate["loss"] < r.baseline["loss"] / 3  # the random base cannot predict them; the adapter can
    assert r.promoted and r.version
    v = trained.registry.active("llm")
    assert v is not None and v.name == r.version
    assert (v.path / "adapter_model.safetensors").is_file() and (v.path / "adapter_config.json").is_file()
    meta = v.meta
    assert meta["base_model"]["version"] == model_version(trained.base)
    assert meta["base_model"]["name"] == trained.base.name
    assert meta["metrics"]["metric"] == "loss"
    assert meta["metrics"]["candidate"]["loss"] == pytest.approx(r.candidate["loss"])
    assert meta["metrics"]["baseline"]["loss"] == pytest.approx(r.baseline["loss"])
    assert meta["trained_on"]["train_examples"] == 24 and meta["trained_on"]["test_examples"] == 6
    assert meta["trained_on"]["by_kind"] == {"support": 30}
    assert meta["epochs"] == FAST["epochs"] and meta["lora"]["rank"] == 8
    assert "loss" in r.summary() and "promoted" in r.summary()


def test_the_assistant_merges_the_adapter_stamps_its_version_and_writes_like_the_rated_replies(
        trained: Trained, policy: PolicyIndex, engine: Any) -> None:
    v = trained.registry.active("llm")
    assert v is not None
    base_version = model_version(trained.base)
    lm = llm_from_settings(settings_for(trained.root, trained.base))
    assert isinstance(lm, TransformersLLM)
    assert lm.version == f"{base_version}+lora:{v.name}"
    assert lm.adapter == v.path
    # every turn the assistant logs carries it
    nlu = type("N", (), {"model": type("M", (), {"version": "test"})()})()
    assistant = build_assistant(settings_for(trained.root / "assistant", trained.base), engine=engine,
                                nlu=nlu, policy=policy, llm=lm)  # type: ignore[arg-type]
    try:
        assert assistant.dialogue.versions["llm"] == f"transformers:{trained.base.name}@{base_version}+lora:{v.name}"
    finally:
        assistant.store.close()
    lm.load()
    assert not any("lora" in name for name, _ in lm.model.named_modules())  # merged: the base's own layers only

    base = TransformersLLM(trained.base, device="cpu")
    lookup = policy_lookup(policy)

    def closeness(llm: TransformersLLM) -> tuple[float, int]:
        ratios, prefixes = [], []
        for question, intent, _section, good in TOPICS:
            passages = lookup(question, intent, "en")
            assert passages
            writer_llm = Scripted(saying(good))
            asyncio.run(SupportWriter(writer_llm, passing).answer(question, passages, "x", "en"))
            text = llm.complete_sync(writer_llm.calls[0], max_tokens=30, temperature=0)[: len(good)]
            ratios.append(difflib.SequenceMatcher(None, text, good).ratio())
            prefixes.append(prefix_length(text, good))
        return sum(ratios) / len(ratios), max(prefixes)

    before, after = closeness(base), closeness(lm)
    # measured: 0.24 -> 1.0 similarity, 0 -> 48 characters of the trained answer reproduced from its start; in
    # the environment rebuilt on 2026-12-06 (same pins) 0.24 -> 0.75 and 0 -> 48 at every commit of the day
    assert after[0] > 0.7 and after[0] > before[0] + 0.4, (before, after)
    assert before[1] < 3 and after[1] >= 20, (before, after)  # greedy decoding now writes the trained answer
    base.close()
    lm.close()


def test_a_run_that_is_not_better_is_kept_but_not_promoted(trained: Trained, tmp_path: Path,
                                                            policy: PolicyIndex) -> None:
    data_dir = copy_of(trained, tmp_path)
    registry = Registry(data_dir / "models")
    first = registry.active("llm")
    assert first is not None
    store = open_store(data_dir)
    data = examples_from_log(store.turn_log(rated_only=True), passages_for=policy_lookup(policy))
    store.close()
    # barely trained: close to the base model, which the active adapter beats on the same held-out replies
    report = train_llm(data, trained.base, registry, device="cpu", epochs=1, learning_rate=1e-6, max_length=4096,
                       min_examples=10)
    assert report.baseline_name == first.name
    assert report.baseline["loss"] == pytest.approx(first.metrics["candidate"]["loss"], rel=1e-3)
    assert report.candidate["loss"] > report.baseline["loss"]
    assert not report.promoted and "not promoted" in report.summary()
    assert registry.active_name("llm") == first.name
    kept = registry.get("llm", str(report.version))
    assert kept.meta["promoted"] is False and kept.meta["baseline"] == first.name
    assert len(registry.versions("llm")) == 2


def test_too_few_rated_replies_is_one_sentence_and_registers_nothing(tmp_path: Path, tiny_model_dir: Path,
                                                                     policy: PolicyIndex) -> None:
    store = open_store(tmp_path)
    log_support(store, policy, 5)
    log_support(store, policy, 3, start=5, source_writer=False)
    data = examples_from_log(store.turn_log(rated_only=True), passages_for=policy_lookup(policy))
    store.close()
    registry = Registry(tmp_path / "models")
    with pytest.raises(TrainDataError) as err:
        train_llm(data, tiny_model_dir, registry, device="cpu")
    msg = str(err.value)
    assert msg.startswith("The log has 5 replies written by the language model that shoppers rated")
    assert "out of 8 well-rated turns" in msg and "needs at least 20" in msg and msg.count(". ") == 0
    assert registry.versions("llm") == [] and registry.active("llm") is None
    assert not (tmp_path / "models" / "llm").exists() or not any((tmp_path / "models" / "llm").iterdir())


# ----------------------------------------------------------------------------------------- loading


def test_an_adapter_trained_on_another_base_is_refused_with_one_warning(trained: Trained, tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    v = trained.registry.active("llm")
    assert v is not None
    other = tmp_path / "other-base"
    shutil.copytree(trained.base, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "rope_theta": 20000.0}))
    with caplog.at_level(logging.WARNING, logger="model.llm.local"):
        lm = TransformersLLM(other, device="cpu", adapter=v.path)
    assert lm.adapter is None and lm.version == model_version(other) and "lora" not in lm.version
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "running the base model" in warnings[0].getMessage()
    assert lm.complete_sync([{"role": "user", "content": "hi"}], max_tokens=3, temperature=0)
    lm.close()


def test_the_http_backend_ignores_the_adapter_and_says_so_once(trained: Trained, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    import model.llm.factory

    monkeypatch.setattr(model.llm.factory, "_said_http_adapter", False)
    v = trained.registry.active("llm")
    assert v is not None
    with caplog.at_level(logging.INFO, logger="model.llm.factory"):
        for _ in range(2):
            lm = build_llm("http://127.0.0.1:9/v1", "served", tmp_path, adapter=v.path)
            assert isinstance(lm, OpenAICompatibleLLM) and "lora" not in lm.version
    said = [r for r in caplog.records if "not used" in r.getMessage()]
    assert len(said) == 1 and "serves its own weights" in said[0].getMessage()


# --------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def shop_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path) -> Callable[..., Any]:
    monkeypatch.setenv("SHOPBOT_ENCODER", "hashing")
    monkeypatch.setenv("SHOPBOT_MULTILINGUAL_ENCODER", "hashing")
    monkeypatch.setenv("SHOPBOT_CATALOG", str(write_catalog(tmp_path / "catalog.csv")))
    monkeypatch.setenv("SHOPBOT_LLM_MODEL", str(tiny_model_dir))
    monkeypatch.delenv("SHOPBOT_LLM_URL", raising=False)
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(cli, ["--data-dir", str(tmp_path / "data"), *args], catch_exceptions=False)

    return run


def test_cli_trains_lists_and_rolls_back(shop_cli: Callable[..., Any], tmp_path: Path, tiny_model_dir: Path,
                                         policy: PolicyIndex) -> None:
    data_dir = tmp_path / "data"
    s = Settings(data_dir=data_dir)
    store = Store(s.db_url, s.buffer_dir, clock=Clock())
    log_support(store, policy, 12)
    store.close()

    r = shop_cli("train", "llm", "--epochs", "2", "--lr", "2e-2", "--layers", "1", "--min-examples", "10",
                 "--max-length", "4096", "--json")
    assert r.exit_code == 0, r.output
    assert "12 turns rated 👍 (and not 👎)" in r.output
    report = json.loads(r.output.strip().splitlines()[-1])
    assert report["kind"] == "llm" and report["metric"] == "loss"
    assert (report["train_examples"], report["test_examples"]) == (10, 2)  # every rated reply found its policy again
    assert report["promoted"] is True and report["candidate"]["loss"] < report["baseline"]["loss"]
    registry = Registry(data_dir / "models")
    assert registry.active_name("llm") == report["version"]
    version = registry.get("llm", report["version"])
    assert version.meta["lora"]["layers"] == "top 1 of 2"  # --layers 1: only the upper decoder layer is adapted
    with safe_open(str(version.path / "adapter_model.safetensors"), framework="pt") as f:
        tensors = list(f.keys())
    assert tensors and all(".layers.1." in name for name in tensors)
    listed = shop_cli("models", "list", "llm")
    assert f"* {report['version']}  loss {report['candidate']['loss']:.4f} vs" in listed.output

    tuned = llm_from_settings(settings_for(data_dir, tiny_model_dir))
    assert tuned is not None and tuned.version.endswith(f"+lora:{report['version']}")

    r = shop_cli("models", "rollback", "llm")
    assert r.exit_code == 0 and "the built-in default is active" in r.output
    assert registry.active("llm") is None
    base = llm_from_settings(settings_for(data_dir, tiny_model_dir))
    assert base is not None and base.version == model_version(tiny_model_dir)


def test_cli_refuses_a_server_model_and_too_little_data_in_one_sentence(
        shop_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    r = shop_cli("train", "llm")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "Error: The log has 0 replies written by the language model" in r.output

    monkeypatch.setenv("SHOPBOT_LLM_URL", "http://127.0.0.1:9/v1")
    r = shop_cli("train", "llm")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "fine-tuning needs the model's weights on this machine" in r.output
