"""The two transformers hooks `TransformersLLM` plugs into `generate()`.

They subclass transformers types, so they live apart from `local.py` and are imported only
when the first generation starts: importing shopbot stays free of torch and transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from transformers import StoppingCriteria, TextStreamer

if TYPE_CHECKING:
    from model.llm.local import _Job

__all__ = ["JobCriteria", "LoopStreamer"]


class LoopStreamer(TextStreamer):
    """transformers' decoding into printable pieces, delivered into the request's event loop.

    `TextStreamer` already knows when text is safe to show (whole words, CJK characters, no half
    UTF-8 sequences); only the delivery differs: ``call_soon_threadsafe`` instead of stdout, so the
    loop never blocks and no thread waits on a queue.
    """

    def __init__(self, tokenizer: Any, job: _Job) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.job = job

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self.job.send(text)


class JobCriteria(StoppingCriteria):
    """Ends generation when the caller left, the deadline passed, or a stop string appeared.

    Checked after every token, so the model is free for the next shopper within one token's time.
    The stop check decodes only the newest tokens; the authoritative cut happens on the text side
    (`StopCutter`), this only stops paying for tokens nobody will read.
    """

    def __init__(self, job: _Job, tokenizer: Any, prompt_len: int) -> None:
        self.job, self.tokenizer, self.prompt_len = job, tokenizer, prompt_len
        # a stop string of n characters spans at most ~4n tokens (byte-level pieces of one character)
        self.window = 4 * max((len(s) for s in job.stop), default=0) + 4

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        done = self.job.should_stop()
        if not done and self.job.stop:
            start = max(self.prompt_len, input_ids.shape[1] - self.window)
            tail = self.tokenizer.decode(input_ids[0, start:].tolist(), skip_special_tokens=True)
            done = any(s in tail for s in self.job.stop)
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]
