"""`shopbot train recommender` and `shopbot train intents` on a real SQLite log, and the assistant using what
they promote (hashing search encoder; the packaged intent model)."""

from __future__ import annotations

import csv
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bot.cli.main import cli
from bot.dialogue.replies import Event
from bot.settings import Settings
from bot.store.database import Store
from bot.store.records import TurnRecord
from model.training.registry import Registry
from tests.fakes.shop_log import Shop, clocked_store, journeys, write_log

Run = Callable[..., Result]


@pytest.fixture(autouse=True)
def _one_blas_thread() -> Iterator[None]:
    """On two busy cores, OpenBLAS threads waiting for each other make the intent classifier's fits many
    times slower (see tests/model/training/test_intents.py); one thread gives the same model."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setenv("SHOPBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SHOPBOT_ENCODER", "hashing")
    monkeypatch.setenv("SHOPBOT_MULTILINGUAL_ENCODER", "hashing")
    monkeypatch.setenv("SHOPBOT_LLM", "off")
    monkeypatch.delenv("SHOPBOT_INTENT_MODEL", raising=False)
    monkeypatch.delenv("SHOPBOT_DATABASE_URL", raising=False)
    runner = CliRunner()

    def _run(*args: str) -> Result:
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return _run


def _last_json(r: Result) -> dict[str, Any]:
    return json.loads(r.output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _shop_with_log(run: Run, tmp_path: Path, shoppers: int) -> tuple[Shop, Settings]:
    shop = Shop()
    r = run("reindex", str(shop.write_catalog(tmp_path / "catalog.csv")))
    assert r.exit_code == 0, r.output
    s = Settings()
    s.data_dir.mkdir(parents=True, exist_ok=True)
    store, clock = clocked_store(s.data_dir / "shopbot.db", s.buffer_dir)
    write_log(store, clock, journeys(shop, shoppers))
    store.close()
    return shop, s


def _first_pick(assistant: Any, user: str, history: list[str]) -> tuple[str, str]:
    """A shopper who clicked ``history`` asks for recommendations: the first card's SKU and the turn id."""
    for sku in history:
        assistant.store.feedback(f"test:{user}", "click", sku=sku)
    [reply] = assistant.handle(Event(user=user, channel="test", text="recommend something for me"))
    assert reply.cards, reply.text
    return reply.cards[0].sku, reply.cards[0].reason or ""


def _stamps(s: Settings, user: str) -> set[str]:
    with sqlite3.connect(s.data_dir / "shopbot.db") as db:
        return {r[0] for r in db.execute("SELECT model_version FROM impressions WHERE user_id = ?", (f"test:{user}",))}


# ------------------------------------------------------------------------------------------- recommender


def test_train_recommender_promotes_the_assistant_recommends_the_learned_next_item_and_rollback_undoes_it(
        run: Run, tmp_path: Path) -> None:
    from bot.app import build_assistant

    shop, s = _shop_with_log(run, tmp_path, 300)
    journeys_ = [(c, i) for c in range(shop.categories) for i in range(shop.m)]

    def right(assistant: Any, tag: str) -> int:
        """How many of the 16 journeys' shoppers get their pick as the first card after start + bestsellers."""
        firsts = [_first_pick(assistant, f"{tag}{c}-{i}", shop.journey(c, i)[:-1]) for c, i in journeys_]
        assert all(reason for _, reason in firsts)
        return sum(sku == shop.journey(c, i)[-1] for (sku, _), (c, i) in zip(firsts, journeys_, strict=True))

    # before training: the built-in scoring cannot tell which of a category's picks follows a starter
    before = build_assistant(s, llm=False)
    assert "recommender" not in before.dialogue.versions and before.dialogue.sequential is None
    builtin_right = right(before, "b")
    before.close()
    assert builtin_right <= 4  # chance: one of four picks
    assert _stamps(s, "b0-0") == {"recommender:built-in"}

    r = run("train", "recommender", "--epochs", "10", "--json")
    assert r.exit_code == 0, r.output
    report = _last_json(r)
    assert report["promoted"] and report["baseline_name"] == "built-in"
    assert report["candidate"]["ndcg@10"] > report["baseline"]["ndcg@10"] + 0.2
    assert "products from the search index" in r.output and "rollback recommender" in r.output
    version = report["version"]
    meta = Registry(s.models_dir).get("recommender", version).meta
    assert meta["trained_on"]["content_vectors"] is True  # the built-in was measured with the index's vectors

    after = build_assistant(s, llm=False)
    assert after.dialogue.versions["recommender"] == version and after.dialogue.sequential is not None
    trained_right = right(after, "a")
    after.close()
    assert trained_right >= 10, (trained_right, builtin_right)  # 13 of 16 when written
    assert _stamps(s, "a0-0") == {f"recommender:{version}"}
    st = Store(s.db_url, s.buffer_dir)
    logged = [t for t in st.turn_log() if t.user_id == "test:a0-0"]
    st.close()
    assert logged and logged[-1].model_versions["recommender"] == version

    r = run("models", "rollback", "recommender")
    assert r.exit_code == 0 and "the built-in default is active" in r.output
    back = build_assistant(s, llm=False)
    assert "recommender" not in back.dialogue.versions and back.dialogue.sequential is None
    _first_pick(back, "c0", shop.journey(2, 0)[:-1])
    back.close()
    assert _stamps(s, "c0") == {"recommender:built-in"}


def test_train_recommender_with_too_little_data_says_one_sentence_and_registers_nothing(run: Run, tmp_path: Path) -> None:
    _shop_with_log(run, tmp_path, 8)
    r = run("train", "recommender")
    assert r.exit_code == 1
    err = [ln for ln in r.output.splitlines() if ln.startswith("Error: ")]
    assert len(err) == 1 and "needs at least 20 shoppers" in err[0] and "Traceback" not in r.output
    listing = run("models", "list", "recommender").output
    assert "built-in default active (no trained versions)" in listing


def test_a_damaged_active_recommender_logs_one_warning_and_the_builtin_recommends(
        run: Run, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from bot.app import build_assistant

    shop, s = _shop_with_log(run, tmp_path, 300)
    reg = Registry(s.models_dir)
    with reg.stage("recommender") as staged:
        (staged / "manifest.json").write_text("{not json", encoding="utf-8")
        v = reg.commit("recommender", staged, {"metrics": {}}, promote=True)
    with caplog.at_level(logging.WARNING, logger="bot.app"):
        a = build_assistant(s, llm=False)
    warnings = [rec for rec in caplog.records if rec.levelno == logging.WARNING and "recommender" in rec.getMessage()]
    assert len(warnings) == 1 and v.name in warnings[0].getMessage()
    assert "recommender" not in a.dialogue.versions and a.dialogue.sequential is None
    sku, _ = _first_pick(a, "d0", shop.journey(1, 0)[:-1])
    a.close()
    assert sku.startswith("C") and _stamps(s, "d0") == {"recommender:built-in"}


# ------------------------------------------------------------------------------------------------ intents


def _log_turn(store: Store, user: str, text: str, intent: str, confidence: float) -> str:
    import uuid

    tid = uuid.uuid4().hex
    store.log(TurnRecord(tid, user, text, "...", intent=intent, confidence=confidence, language="en"))
    return tid


def test_export_for_labelling_writes_not_what_i_meant_turns_first_then_the_unsure_ones(run: Run, tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path / "data")
    s.data_dir.mkdir(parents=True)
    store = Store(s.db_url, s.buffer_dir)
    missed = _log_turn(store, "test:ann", "bin my order", "track_order", 0.76)
    store.feedback("test:ann", "not_what_i_meant", turn_id=missed)
    _log_turn(store, "test:ann", "that's not what I meant", "feedback_negative", 0.99)
    thumbed = _log_turn(store, "test:bob", "axe my order pls", "track_order", 0.62)
    store.feedback("test:bob", "thumb_down", turn_id=thumbed)
    _log_turn(store, "test:bob", "hmm the thing for the stuff", "other", 0.31)
    _log_turn(store, "test:bob", "  HMM the thing for the stuff ", "other", 0.33)  # the same words: once
    _log_turn(store, "test:cy", "where is my parcel", "track_order", 0.97)  # sure and not contradicted: not exported
    _log_turn(store, "test:cy", "[button] more", "more", 0.2)  # a button, not words
    store.close()

    out = tmp_path / "label.csv"
    r = run("train", "intents", "--export-for-labelling", str(out))
    assert r.exit_code == 0, r.output
    assert "2 utterances marked \"not what I meant\" and 1 the assistant was unsure about" in r.output
    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [(x["utterance"], x["reason"]) for x in rows] == [
        ("axe my order pls", "not what I meant"), ("bin my order", "not what I meant"),
        ("hmm the thing for the stuff", "unsure")]
    assert all(x["intent"] == "" for x in rows) and rows[1]["predicted"] == "track_order"
    assert rows[1]["turn_id"] == missed and rows[1]["confidence"] == "0.760"

    # passed back before anyone filled it in: one sentence, nothing trained
    r = run("train", "intents", "--data", str(out))
    assert r.exit_code == 1 and "none of its 3 rows has an intent yet" in r.output


def test_train_intents_reports_bad_rows_with_their_line_numbers(run: Run, tmp_path: Path) -> None:
    data = tmp_path / "mine.csv"
    data.write_text("utterance,intent\nbin my order,cancel_order\n,cancel_order\naxe my order,Cancel Order\n"
                    "ditch the order,cancel_order,extra\nscrap it,\n", encoding="utf-8")
    r = run("train", "intents", "--data", str(data))
    assert r.exit_code == 1 and r.output.count("Error: ") == 1
    for problem in ("line 3: empty utterance", "line 4: intent 'Cancel Order'", "line 5: 3 fields"):
        assert problem in r.output
    assert "line 6" not in r.output  # no intent yet: skipped, not an error
    assert Registry(tmp_path / "data" / "models").versions("intents") == []


def test_train_intents_on_a_file_alone_is_registered_but_not_promoted(run: Run, tmp_path: Path) -> None:
    data = tmp_path / "mine.csv"
    data.write_text("utterance,intent\n" + "".join(
        f"{u},{i}\n" for i, us in {"cancel_order": ["bin my order", "axe my order", "scrap my order", "ditch my order"],
                                    "track_order": ["where's my box", "is my parcel close", "box arriving when"]}.items()
        for u in us), encoding="utf-8")
    r = run("train", "intents", "--data", str(data), "--only-data", "--no-log", "--json")
    assert r.exit_code == 0, r.output
    report = _last_json(r)
    # two intents cannot route the assistant's 41: the development set says so
    assert report["baseline_name"] == "packaged" and not report["promoted"]
    assert report["candidate"]["macro_f1"] < report["baseline"]["macro_f1"]
    reg = Registry(tmp_path / "data" / "models")
    [v] = reg.versions("intents")
    assert v.name == report["version"] and reg.active("intents") is None and v.meta["promoted"] is False
    assert v.meta["trained_on"]["owner"] == 6 and v.meta["trained_on"]["test_owner"] == 1
    assert (v.path / "intent_model.npz").is_file()


@pytest.mark.slow
def test_train_intents_learns_a_new_phrasing_is_promoted_and_the_assistant_routes_it(run: Run, tmp_path: Path) -> None:
    """The whole loop with the packaged examples (about a minute: 3,500 utterances encoded and fitted)."""
    from bot.app import build_assistant
    from bot.dialogue.nlu.intents import load_default_model

    slang = ["bin my order", "bin the order i just made", "please bin my last order", "axe my order",
             "axe that order", "scrap my order", "scrap the order please", "ditch my order",
             "axe the order", "bin it the order i mean"]  # the newest two are held out
    packaged = load_default_model()
    assert [packaged.predict(t)[0] for t in slang[-2:]] == ["change_order", "track_order"]
    data = tmp_path / "mine.csv"
    data.write_text("utterance,intent\n" + "".join(f"{u},cancel_order\n" for u in slang), encoding="utf-8")
    r = run("reindex")
    assert r.exit_code == 0, r.output
    r = run("train", "intents", "--data", str(data), "--json")
    assert r.exit_code == 0, r.output
    report = _last_json(r)
    assert report["promoted"] and report["candidate"]["macro_f1"] > report["baseline"]["macro_f1"]
    assert "On your held-out rows alone: accuracy 1.0000 (new) vs 0.0000 (packaged)" in r.output
    s = Settings()
    a = build_assistant(s, llm=False)
    assert a.dialogue.versions["intent"] == report["version"]
    assert [a.nlu.parse(t).intent for t in slang[-2:]] == ["cancel_order"] * 2
    a.close()
    r = run("models", "rollback", "intents")
    assert r.exit_code == 0
    back = build_assistant(s, llm=False)
    assert back.dialogue.versions["intent"] == packaged.version
    back.close()
