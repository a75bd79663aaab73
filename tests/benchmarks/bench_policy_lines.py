"""The packaged language model's customer-service answers on other shops' documents: how often its own words go
out, and what they say (issue 18, part 4).

    .venv/bin/python tests/benchmarks/bench_policy_lines.py --questions 40 --out /tmp/policy_lines.json

Answerable questions of the held-out documents of retrieval/data/policy_eval (a seeded sample), each answered
by `SupportWriter` over the passages the lookup finds. ``source`` says what went out: ``llm`` / ``llm-retry``
(the model's words, past the claim and relevance checks), ``extract`` (its line was dropped: the passage
itself), ``dont_know`` (the passage too). The answers whose model words went out are written to ``--out``
for a person to judge whether each is correct and useful. Greedy decoding, one process, counts only.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bot.app import llm_from_settings  # noqa: E402
from bot.services import encoders_of  # noqa: E402
from bot.settings import Settings  # noqa: E402
from model.writing.support import SupportWriter  # noqa: E402
from retrieval.encoders import get_encoder  # noqa: E402
from retrieval.policy import PolicyIndex  # noqa: E402
from retrieval.policy_eval import load_policy_questions  # noqa: E402

DOCS = ROOT / "retrieval" / "data" / "policy_eval"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--questions", type=int, default=40, help="How many held-out answerable questions (seeded sample).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("policy_lines.json"))
    args = ap.parse_args()
    s = Settings()
    qs = [q for q in load_policy_questions(DOCS / "questions.csv") if q.split == "heldout" and q.section]
    random.Random(args.seed).shuffle(qs)
    qs = qs[: args.questions]
    encoders = {role: get_encoder(name) for role, name in encoders_of(s).items()}
    llm = llm_from_settings(s)
    if llm is None:
        raise SystemExit("No language model (SHOPBOT_LLM=off or none prepared): nothing to measure.")
    writer = SupportWriter(llm)
    indexes = {d: PolicyIndex.from_path(DOCS / d, encoders) for d in sorted({q.document for q in qs})}
    sources: collections.Counter[str] = collections.Counter()
    sent = []
    for q in qs:
        match = indexes[q.document].lookup(q.question, language=q.language)
        if match is None:
            sources["handed over"] += 1
            continue
        a = asyncio.run(writer.answer(q.question, match.passages, match.text, q.language))
        sources[a.source] += 1
        if a.source in {"llm", "llm-retry"}:
            sent.append({"question": q.question, "document": q.document, "right_section": match.passages[0][0] == q.section,
                         "answer": a.text, "verdict": None})
    result = {"questions": len(qs), "sources": dict(sources), "model_words_sent": len(sent), "sent": sent}
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "sent"}))


if __name__ == "__main__":
    main()
