"""A tiny, random, real transformers chat model, for tests that must run the true generation path.

A test double that fakes `stream` proves nothing about the transformers path (chat templates,
streaming, stopping criteria, threads); the packaged 0.5B model takes a minute to prepare and seconds
per answer. This builds a two-layer Qwen2 model with a 400-token byte-level BPE vocabulary in a second,
saved with `save_pretrained` like any other model directory, so `TransformersLLM` loads it unchanged.

Its answers are nonsense but deterministic under greedy decoding (fixed seed), and it never ends a
turn by itself (the end-of-turn and other special tokens are suppressed in its generation config),
so ``max_tokens`` and timeouts can be tested exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["SPECIAL_TOKENS", "build_tiny_model"]

_CORPUS = """
Hello! How can I help you with your order today?
We ship to most countries; delivery takes three to five business days.
Returns are free within 30 days, and the refund goes back to your card or PayPal.
These red running shoes come in sizes 38 to 45 and cost 59.99 euro.
The blue winter coat is in stock in small, medium and large.
Thanks for shopping with us. Is there anything else I can do for you?
Sorry, that phone is sold out, but a similar model is available for less.
Please send me your order number and I will check the shipping status.
"""

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_model(directory: str | Path, *, seed: int = 0) -> Path:
    """Write the tiny model (config, fp32 safetensors weights, tokenizer, chat template) to ``directory``."""
    # torch, tokenizers and transformers: only when a test builds the tiny model
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import GenerationConfig, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)

    # The same byte-level BPE pipeline as Qwen2's tokenizer (AutoTokenizer rebuilds a Qwen2 model's
    # tokenizer from its vocabulary and merges), trained here on a few sentences.
    core = Tokenizer(models.BPE())
    core.normalizer = normalizers.NFC()
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(_CORPUS.strip().splitlines(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]  # unannotated in transformers
        tokenizer_object=core,
        # bandit B106 is a false positive: a tokenizer's unknown-token marker
        unk_token="<|endoftext|>",  # nosec B106
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        additional_special_tokens=["<|im_start|>"],
    )
    tokenizer.chat_template = _CHAT_TEMPLATE

    vocab = core.get_vocab()
    # Never generated: the special tokens (so a turn never ends by itself) and tokens that are not
    # printable ASCII (so the nonsense is at least readable and every piece is valid UTF-8).
    suppressed = sorted(
        i
        for t, i in vocab.items()
        if t in SPECIAL_TOKENS or not core.decode([i]).isascii() or not core.decode([i]).isprintable()
    )
    config = Qwen2Config(
        vocab_size=len(vocab),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        initializer_range=0.5,  # large random weights: varied text instead of one repeated piece
        bos_token_id=None,
        eos_token_id=vocab["<|im_end|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )
    torch.manual_seed(seed)
    model: Any = Qwen2ForCausalLM(config)
    model.eval()
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]  # unannotated in transformers
        eos_token_id=vocab["<|im_end|>"], pad_token_id=vocab["<|endoftext|>"], suppress_tokens=suppressed
    )
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out
