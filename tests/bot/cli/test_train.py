"""`shopbot simulate`, `shopbot train ranker`, `shopbot reindex` and `shopbot models` end to end: simulated
shoppers fill the log, one retraining round improves search on held-out needs, and the owner can list the
versions and roll back (hashing encoder for the default run; the real encoders in the slow test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli.main import cli


def _last_json(output: str) -> dict:  # type: ignore[type-arg]
    return json.loads(output.strip().splitlines()[-1])


def test_one_round_of_the_loop_improves_search_and_the_owner_can_roll_it_back(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = run("train", "ranker")
    assert r.exit_code == 1
    assert "training the ranker needs at least 30" in r.output and "Traceback" not in r.output

    r = run("simulate", "--shoppers", "200", "--json")
    assert r.exit_code == 0, r.output
    out = _last_json(r.output)
    assert out["traffic"]["searches"] >= 900 and out["traffic"]["purchases"] > 0
    assert out["ranker"]["promoted"] is True
    # measured on needs no simulated shopper typed, judged by the hidden relevance
    assert out["ndcg@10_after"] > out["ndcg@10_before"] * 1.05, out
    version = out["ranker"]["version"]

    r = run("models", "list", "ranker")
    assert r.exit_code == 0
    assert f"active {version}" in r.output and f"* {version}  ndcg@10" in r.output

    r = run("search", "--json", "running shoes")
    assert r.exit_code == 0

    # another round on more traffic: the new version is compared with the active one, not the built-in
    r = run("train", "ranker", "--json")
    assert r.exit_code == 0, r.output
    second = _last_json(r.output)
    assert second["baseline_name"] == version

    r = run("models", "rollback", "ranker")
    assert r.exit_code == 0
    back = "the built-in default is active" if not second["promoted"] else f"version {version} is active"
    assert back in r.output and "shopbot reindex" in r.output
    r = run("reindex")
    assert r.exit_code == 0
    assert ("built-in hybrid search" in r.output) if not second["promoted"] else (version in r.output)

    r = run("models", "activate", "ranker", version)
    assert r.exit_code == 0 and f"version {version} is active" in r.output
    r = run("models", "activate", "ranker", "no-such-version")
    assert r.exit_code == 1 and "There is no ranker version 'no-such-version'" in r.output
    r = run("models", "list", "--json")
    rows = [json.loads(line) for line in r.output.splitlines()]
    ranker_rows = [row for row in rows if row["kind"] == "ranker"]
    assert len(ranker_rows) == 2 and sum(row["active"] for row in ranker_rows) == 1
    # the same round also trained the recommender on the simulated histories (kept or promoted by its figures)
    assert out["recommender"]["version"] in {row["version"] for row in rows if row["kind"] == "recommender"}


@pytest.mark.slow
def test_with_the_packaged_encoders_one_round_gains_at_least_ten_percent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's targets on simulated shoppers: >= 10% NDCG@10 after one round, and a trained next-item
    model above popularity (800 shoppers: with 200 the histories are too short for it, see docs/retraining.md)."""
    monkeypatch.setenv("SHOPBOT_DATA_DIR", str(tmp_path / "data"))
    r = CliRunner().invoke(cli, ["simulate", "--shoppers", "800", "--needs", "6", "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    out = _last_json(r.output)
    assert out["ranker"]["promoted"] is True
    assert out["relative_gain"] >= 0.10, out
    rec = out["recommender"]
    assert rec["model_alone_ndcg@10"] > rec["popularity_ndcg@10"] + 0.1, rec


def test_a_new_index_brings_its_ranker_version_to_every_turn_and_impression(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import copy

    import numpy as np
    from sqlalchemy import select

    from bot.app import build_assistant
    from bot.dialogue.replies import Event
    from bot.settings import Settings
    from bot.store.schema import Impression, Turn
    from retrieval.rerank import FEATURES, BehaviourPriors, LearnedRanker

    a = build_assistant(Settings(data_dir=tmp_path / "d"), engine=engine, llm=False)
    try:
        a.handle(Event(user="u1", text="running shoes"))
        learned = copy.copy(engine)
        w = np.zeros(len(FEATURES))
        w[0] = 1.0
        learned.ranker = LearnedRanker(w, np.zeros(len(FEATURES)), np.ones(len(FEATURES)), BehaviourPriors(),
                                       version="20261129-120000-beef")
        a.use_engine(learned)
        a.handle(Event(user="u1", text="red coat"))
        with a.store.engine.connect() as c:
            stamps = [json.loads(v)["ranker"] for v in c.execute(select(Turn.model_versions).order_by(Turn.created_at)).scalars()]
            shown_by = set(c.execute(select(Impression.model_version)).scalars())
    finally:
        a.close()
    assert stamps == ["hybrid", "20261129-120000-beef"]
    assert shown_by == {"ranker:hybrid", "ranker:20261129-120000-beef"}
