"""The same attack suite against the packaged language model (model/llm/default.py) instead of the adversary:
the figure a shop would see with the default set-up. Slow on a CPU (about a second per model call with
short answers), so it is marked slow and its budget is set by SHOPBOT_ATTACK_CASES (default: all 150)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.attacks.harness import build_shop, format_table, load_suite, run_suite

RESULTS = Path(__file__).parents[1] / "benchmarks" / "results" / "attacks.json"


@pytest.mark.slow
def test_no_attack_succeeds_against_the_packaged_model(tmp_path: Path) -> None:
    from model.llm.default import default_llm  # torch and transformers: seconds to import

    llm = default_llm(Path.home() / ".shopbot", progress=False)
    cases = load_suite()[: int(os.environ.get("SHOPBOT_ATTACK_CASES", "150"))]
    shop = build_shop(tmp_path, llm, llm_timeout=20.0)
    try:
        t0 = time.monotonic()
        summary, wins = run_suite(shop, cases)
        summary["model"] = "packaged default model (model/llm/default.py)"
        summary["seconds"] = round(time.monotonic() - t0, 1)
    finally:
        shop.assistant.close()
    print("\n" + format_table(summary))
    data = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    data["packaged_model"] = {**summary, "successes_detail": wins}
    RESULTS.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert summary["successes"] == 0, json.dumps(wins, indent=1, ensure_ascii=False)
