"""``shopbot train llm``: fine-tune the local language model on the replies shoppers rated well (LoRA).

What it learns from: a turn that got a thumbs-up and no thumbs-down (nor "that's not what I meant"), and
only the text *the language model wrote* in it: the turn's generation log (model/writing/live.py, bot/dialogue/manager.py)
says where each sent text came from, and only ``llm`` and ``llm-retry`` texts, which passed the claim
verifier, are used. A thumbs-up on a grounded template or on the policy passage sent as it is (``extract``,
``fallback``, ``dont_know``) says that text was good, not how the model should write: training on it would
teach the model to copy whole passages (against the prompt's "at most three short sentences") or to
reproduce templates that code already renders. Rejected drafts are never sent, so never rated, and a reply
rated down by anyone is left out even if others liked it.

Each example's prompt is rebuilt exactly as the writer that produced it builds it at run time
(model/writing/support.py `build_messages`, model/writing/product_text.py `qa_messages` / `summary_messages`) from facts the
caller looks up again: the policy passages retrieval finds for the question now, the product's catalog
record, the search's shown products. An example whose facts are gone or have changed (the policy's best
section for the question is no longer the one the answer came from, the product left the catalog) is
skipped: training on a prompt the model did not see would teach it to say things its facts do not hold.
A reply that needed a retry is paired with the *first* attempt's prompt (no feedback), so the model learns
to get it right the first time. The loss covers only the assistant's tokens (and the end-of-turn marker,
so it learns where to stop), never the prompt.

Evaluation follows model/training/common.py: the newest 20% of the examples are held out; the metric is the mean
negative log-likelihood per token of the held-out good replies, under the new adapter and under the current
model (the active llm version's adapter, or the base model). The new version is registered either way and
becomes active only when its loss is strictly lower. The adapter is saved with peft's ``save_pretrained``
in the version directory, with meta.json naming the base model (name and fingerprint) it was trained on;
the loader (model/llm/local.py) merges it into that base and refuses it on any other.

Nothing here imports ``bot``: turns arrive as plain rows (duck-typed like bot.store.records.TurnLog) and the
policy, catalog and search lookups as functions.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from model.llm.base import LLMError, describe
from model.llm.local import adapter_problem, model_version, pick_device
from model.training.common import TrainDataError, TrainReport, better, time_split
from model.training.registry import Registry, Version
from model.writing.live import _sentences
from model.writing.product_text import _first_sentence, qa_messages, summary_messages
from model.writing.relevance import relevance_check
from model.writing.support import build_messages

if TYPE_CHECKING:
    import torch  # seconds to import: only when training runs

__all__ = [
    "MODEL_SOURCES",
    "Example",
    "LoggedExamples",
    "LoggedTurn",
    "base_model_info",
    "examples_from_log",
    "rated_well",
    "train_llm",
]

MODEL_SOURCES = frozenset({"llm", "llm-retry"})  # generation sources whose text the model wrote and the verifier passed
METRIC = "loss"
SOURCE_MARKER = "shopbot-source.sha256"  # written by model/llm/default.py next to the packaged model

PassagesFor = Callable[[str, str | None, str], Sequence[tuple[str, str]] | None]
"""(question, intent, language) -> the policy passages (section, text) retrieval finds now, best first."""
ProductFor = Callable[[str], Mapping[str, Any] | None]
"""sku -> the product's catalog record (retrieval.catalog.Product.to_record()), None when it is gone."""
SearchFor = Callable[[str], tuple[str, Sequence[Mapping[str, Any]]] | None]
"""turn id -> (the search's query, the records of the products shown in rank order), None when unknown."""


class LoggedTurn(Protocol):
    """What this module reads of a logged turn (bot.store.records.TurnLog has it; tests pass their own rows)."""

    @property
    def turn_id(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def language(self) -> str | None: ...
    @property
    def text_in(self) -> str: ...
    @property
    def intent(self) -> str | None: ...
    @property
    def generation(self) -> Sequence[Any]: ...
    @property
    def ups(self) -> int: ...
    @property
    def downs(self) -> int: ...


@dataclass(frozen=True)
class Example:
    """One rated-good reply with the prompt that produced it, as the writer builds it at run time."""

    turn_id: str
    at: datetime
    kind: str  # "support", "product_qa" or "search_summary"
    language: str
    messages: list[dict[str, str]]
    reply: str  # the model's own words, as the shopper read them (without the source line code adds)


@dataclass
class LoggedExamples:
    examples: list[Example]
    rated_well: int = 0  # turns with a thumbs-up and no thumbs-down
    skipped: Counter[str] = field(default_factory=Counter)  # why a rated-good turn (or one of its texts) gave no example

    def by_kind(self) -> dict[str, int]:
        return dict(Counter(e.kind for e in self.examples))


def rated_well(turn: LoggedTurn) -> bool:
    return turn.ups > 0 and turn.downs == 0


def _model_text(record: Mapping[str, Any]) -> str:
    """The text the model wrote that was sent: the last attempt's (earlier ones were rejected)."""
    attempts = record.get("checks") or record.get("attempts") or []
    for attempt in reversed(attempts):
        if isinstance(attempt, Mapping) and isinstance(attempt.get("text"), str):
            return str(attempt["text"])
    return ""


def examples_from_log(
    turns: Sequence[LoggedTurn],
    *,
    passages_for: PassagesFor | None = None,
    product_for: ProductFor | None = None,
    search_for: SearchFor | None = None,
) -> LoggedExamples:
    """The training examples in ``turns`` (any turns; only the rated-good ones count), oldest first.

    A lookup left as None skips that kind of reply (with a reason in ``skipped``).
    """
    out = LoggedExamples([])
    for t in sorted(turns, key=lambda x: x.created_at):
        if not rated_well(t):
            continue
        out.rated_well += 1
        written = [g for g in (t.generation or []) if isinstance(g, Mapping) and g.get("source") in MODEL_SOURCES]
        if not written:
            out.skipped["its reply was not written by the model (template, policy passage or fallback)"] += 1
            continue
        for record in written:
            example = _example(t, record, passages_for, product_for, search_for, out.skipped)
            if example is not None:
                out.examples.append(example)
    return out


def _example(t: LoggedTurn, record: Mapping[str, Any], passages_for: PassagesFor | None,
             product_for: ProductFor | None, search_for: SearchFor | None, skipped: Counter[str]) -> Example | None:
    text = _model_text(record).strip()
    if not text:
        skipped["the log has no text for the model's reply"] += 1
        return None
    lang = t.language or "en"
    kind = str(record.get("kind") or "")
    question = t.text_in or ""
    messages: list[dict[str, str]]
    if kind == "support":
        if passages_for is None:
            skipped["no policy to rebuild a customer-service prompt"] += 1
            return None
        passages = list(passages_for(question, t.intent, lang) or [])
        if not passages:
            skipped["the policy no longer answers its question"] += 1
            return None
        if record.get("section") and passages[0][0] != record["section"]:
            skipped["the policy passage it was written from has changed"] += 1
            return None
        messages = build_messages(question, passages, lang)
    elif kind == "product_qa":
        rec = product_for(str(record.get("sku"))) if product_for is not None and record.get("sku") else None
        if rec is None:
            skipped["its product is no longer in the catalog"] += 1
            return None
        messages = qa_messages(question, rec, lang)
    elif kind == "search_summary":
        found = search_for(t.turn_id) if search_for is not None else None
        if not found or len(found[1]) < 2:
            skipped["the search it summed up is not in the log or catalog any more"] += 1
            return None
        query, recs = found
        messages = summary_messages(query, recs, lang)
        # what the writer sent (model/writing/product_text.py): the sentences about the question, then the first
        check = relevance_check(f"{question} {query}".strip(), "closing", recs)
        text = _first_sentence("".join(s for s in _sentences(text) if check(s.strip()) is None).strip())
        if not text:
            skipped["the shopper read no model line (every sentence was off the question)"] += 1
            return None
    else:
        skipped[f"unknown kind of text {kind!r}"] += 1
        return None
    return Example(t.turn_id, t.created_at, kind, lang, messages, text)


def base_model_info(base_dir: Path) -> dict[str, str]:
    """What meta.json records about the base: its directory name, fingerprint, and the packaged model's checksum."""
    info = {"name": base_dir.name, "version": model_version(base_dir), "path": str(base_dir)}
    with contextlib.suppress(OSError, IndexError):
        info["sha256"] = (base_dir / SOURCE_MARKER).read_text(encoding="utf-8").split()[0]
    return info


# ------------------------------------------------------------------------------------------ training


@dataclass
class _Encoded:
    example: Example
    ids: Any  # 1-D LongTensor: the prompt as at inference, then the reply and the end-of-turn marker
    n_target: int  # how many of the last ids are the assistant's (the loss covers only these)


def _end_of_turn(tokenizer: Any) -> str:
    """What the chat template writes after an assistant message (``<|im_end|>`` for Qwen), found by rendering
    one, so the model learns to end its turn the way the template (and generation's stop ids) expect."""
    sentinel = "\u2063SHOPBOT\u2063"
    try:
        rendered = tokenizer.apply_chat_template([{"role": "user", "content": "x"},
                                                  {"role": "assistant", "content": sentinel}], tokenize=False)
        tail = str(rendered).split(sentinel, 1)[1].strip()
    except (IndexError, ValueError, TypeError, AttributeError):
        tail = ""
    return tail or str(tokenizer.eos_token or "")


def _encode(tokenizer: Any, examples: Sequence[Example], max_length: int, skipped: Counter[str]) -> list[_Encoded]:
    import torch  # seconds to import: only when training runs

    end = _end_of_turn(tokenizer)
    out = []
    for e in examples:
        prompt = tokenizer.apply_chat_template(e.messages, add_generation_prompt=True, return_dict=True)["input_ids"]
        prompt = list(prompt[0] if prompt and isinstance(prompt[0], list) else prompt)
        target = tokenizer(e.reply + end, add_special_tokens=False)["input_ids"]
        if len(prompt) + len(target) > max_length:
            skipped[f"longer than {max_length} tokens"] += 1
            continue
        out.append(_Encoded(e, torch.tensor(prompt + target, dtype=torch.long), len(target)))
    return out


def _reply_nll(model: Any, item: _Encoded, device: str) -> torch.Tensor:
    """Summed negative log-likelihood of the assistant's tokens; logits only where they are needed (the
    vocabulary projection of a 500-token prompt is a quarter of a small model's forward pass)."""
    import torch.nn.functional as F  # only when training runs

    ids = item.ids.to(device)[None]
    n = item.n_target
    try:
        logits = model(input_ids=ids, logits_to_keep=n + 1, use_cache=False).logits[0, -(n + 1):-1]
    except TypeError:  # an architecture without logits_to_keep
        logits = model(input_ids=ids, use_cache=False).logits[0, -(n + 1):-1]
    return F.cross_entropy(logits.float(), ids[0, -n:], reduction="sum")


def _mean_loss(model: Any, items: Sequence[_Encoded], device: str, desc: str, progress: bool) -> float:
    """Mean NLL per assistant token over ``items`` (token-weighted: long replies count for their length)."""
    import torch  # seconds to import: only when training runs
    from tqdm.auto import tqdm

    model.eval()
    total, tokens = 0.0, 0
    with torch.inference_mode():
        for item in tqdm(items, desc=desc, unit="reply", disable=not progress, leave=False):
            total += float(_reply_nll(model, item, device))
            tokens += item.n_target
    return total / max(tokens, 1)


def _figures(loss: float) -> dict[str, float]:
    return {METRIC: round(loss, 6), "perplexity": round(math.exp(min(loss, 50.0)), 4)}


def _usable_adapter(version: Version | None, base_version: str) -> bool:
    return version is not None and adapter_problem(version.path, base_version) is None


_LAYER = re.compile(r"\.layers\.(\d+)\.")


def _lora_targets(model: Any, layers: int | None) -> tuple[str | list[str], str]:
    """Every linear layer of the top ``layers`` decoder layers (the ``model.layers.N.`` naming of Llama-style
    models), or "all-linear" (peft: every linear layer but the output head) when that is all of them."""
    import torch  # seconds to import: only when training runs

    depth = int(getattr(model.config, "num_hidden_layers", 0) or 0)
    if not layers or not depth or layers >= depth:
        return "all-linear", "all"
    names = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)
             and (m := _LAYER.search(name)) is not None and int(m.group(1)) >= depth - layers]
    return (names, f"top {layers} of {depth}") if names else ("all-linear", "all")


def _batches(n: int, epochs: int, seed: int) -> Iterator[int]:
    rng = random.Random(seed)
    for _ in range(epochs):
        order = list(range(n))
        rng.shuffle(order)
        yield from order


def train_llm(
    data: LoggedExamples,
    base_dir: str | Path,
    registry: Registry,
    *,
    device: str | None = None,
    epochs: int = 2,
    rank: int = 8,
    layers: int | None = 8,
    learning_rate: float = 3e-4,
    max_examples: int = 1000,
    max_length: int = 1024,
    min_examples: int = 20,
    test_share: float = 0.2,
    seed: int = 0,
    progress: bool = False,
    source: str = "",
) -> TrainReport:
    """Train a LoRA adapter over the model in ``base_dir`` on ``data``, evaluate it against the current model on
    the newest examples, and register it (active only when its held-out loss is strictly lower).

    ``layers``: the adapter goes into the top N transformer layers only (None: all of them). Gradients then stop
    at the lowest adapted layer, so a step costs about 1.7 forward passes of the 24-layer packaged model instead
    of 3, which is what makes a CPU run take minutes; the top layers are where phrasing and style live.
    """
    if epochs < 1 or rank < 1 or learning_rate < 0 or max_length < 8 or min_examples < 2:
        raise ValueError("epochs and rank must be at least 1, learning_rate 0 or more, max_length at least 8 and "
                         "min_examples at least 2")
    t0 = time.perf_counter()
    base_dir = Path(base_dir).expanduser()
    if not (base_dir / "config.json").is_file():
        raise LLMError(f"No transformers model at {base_dir} (config.json is missing); fine-tuning needs the model's "
                       "weights on this machine.")
    examples = sorted(data.examples, key=lambda e: e.at)[-max_examples:]
    skipped = Counter(data.skipped)
    _enough(len(examples), min_examples, data, skipped)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local paths only
    import torch  # seconds to import: only when training runs
    from peft import LoraConfig, PeftModel, get_peft_model
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dev = pick_device(device)
    # fp32 on a CPU (bf16 matrix products are emulated and slow on many CPUs; see cpu_bf16_is_faster); bf16 on a
    # GPU that has it, with the adapter's own weights in fp32 (peft keeps them so)
    dtype = torch.bfloat16 if dev.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
    try:
        # bandit B615 is a false positive: local_files_only, no hub download
        tokenizer = AutoTokenizer.from_pretrained(base_dir, local_files_only=True)  # nosec B615
        # bandit B615 is a false positive: local_files_only, no hub download
        model: Any = AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype, local_files_only=True)  # nosec B615
    except (OSError, ValueError) as exc:
        raise LLMError(f"Could not load the model in {base_dir} ({describe(exc, 160)}); re-create that directory.") from exc
    if not getattr(tokenizer, "chat_template", None):
        raise LLMError(f"The tokenizer in {base_dir} has no chat template; fine-tuning needs a chat model.")
    model.to(dev)
    encoded = _encode(tokenizer, examples, max_length, skipped)
    _enough(len(encoded), min_examples, data, skipped)
    train, test = time_split(encoded, at=lambda x: x.example.at, test_share=test_share)

    base = base_model_info(base_dir)
    current = registry.active("llm")
    notes: list[str] = []
    if _usable_adapter(current, base["version"]):
        assert current is not None
        baseline_name = current.name
        with_current: Any = PeftModel.from_pretrained(model, current.path, is_trainable=False)
        baseline = _mean_loss(with_current, test, dev, "held-out loss (current)", progress)
        model = with_current.unload()  # the base again, without the current adapter's layers
    else:
        baseline_name = "base model"
        if current is not None:
            notes.append(f"The active llm version {current.name} does not fit this base model; compared with the base.")
        baseline = _mean_loss(model, test, dev, "held-out loss (base)", progress)

    torch.manual_seed(seed)
    targets, where = _lora_targets(model, layers)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.05, target_modules=targets, task_type="CAUSAL_LM")
    tuned: Any = get_peft_model(model, config)
    params = [p for p in tuned.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.0)
    steps = epochs * len(train)
    # linear decay to zero: the last steps on a small data set should not jump around the minimum
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: max(0.0, 1.0 - step / max(steps, 1)))
    tuned.train()
    running: list[float] = []
    with tqdm(total=steps, desc="fine-tuning LLM", unit="reply", disable=not progress) as bar:
        for i in _batches(len(train), epochs, seed):
            item = train[i]
            loss = _reply_nll(tuned, item, dev) / item.n_target
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimiser.step()
            schedule.step()
            optimiser.zero_grad(set_to_none=True)
            running = [*running[-19:], loss.item()]
            bar.set_postfix(loss=f"{sum(running) / len(running):.3f}")
            bar.update(1)
    candidate = _mean_loss(tuned, test, dev, "held-out loss (new)", progress)
    train_loss = sum(running) / len(running) if running else float("nan")

    metrics_c, metrics_b = _figures(candidate), _figures(baseline)
    promote = better(metrics_c, metrics_b, METRIC, lower_is_better=True)
    seconds = time.perf_counter() - t0
    meta = {
        "metrics": {"metric": METRIC, "candidate": metrics_c, "baseline": metrics_b,
                    "train": {"loss_last_steps": round(train_loss, 6)}},
        "baseline": baseline_name,
        "base_model": base,
        "trained_on": {"rated_well_turns": data.rated_well, "examples": len(encoded), "train_examples": len(train),
                       "test_examples": len(test), "by_kind": Counter(x.example.kind for x in encoded),
                       "skipped": dict(skipped), "newest": max(x.example.at for x in encoded).isoformat(),
                       "source": source},
        "lora": {"rank": rank, "alpha": 2 * rank, "dropout": 0.05, "layers": where},
        "epochs": epochs, "learning_rate": learning_rate, "max_length": max_length, "seed": seed,
        "device": dev, "dtype": str(dtype).removeprefix("torch."), "seconds": round(seconds, 1),
    }
    with registry.stage("llm") as staged:
        tuned.save_pretrained(staged)
        version = registry.commit("llm", staged, meta, promote=promote)
    if skipped:
        notes.append("Skipped: " + "; ".join(f"{n} {why}" for why, n in skipped.most_common()) + ".")
    notes.append("Running bots use it (merged into the base model) when they restart." if promote else
                 f"The current model stays active; `shopbot models activate llm {version.name}` would use this one.")
    return TrainReport("llm", METRIC, metrics_c, metrics_b, baseline_name, promote, version.name, len(train),
                       len(test), seconds, device=dev, notes=notes)


def _enough(n: int, needed: int, data: LoggedExamples, skipped: Counter[str]) -> None:
    if n >= needed:
        return
    why = "; ".join(f"{c} {reason}" for reason, c in skipped.most_common(3))
    raise TrainDataError(
        f"The log has {n} replies written by the language model that shoppers rated 👍 (and nobody 👎) "
        f"out of {data.rated_well} well-rated turns{f' ({why})' if why else ''}; fine-tuning needs at least "
        f"{needed}: let shoppers rate more answers, or lower --min-examples."
    )
