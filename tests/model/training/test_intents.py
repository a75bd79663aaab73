"""Retraining the intent classifier from the packaged examples, the owner's rows and the log
(model/training/intents.py), on a small slice of the packaged data so that it runs in seconds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from bot.dialogue.nlu.intents import DEFAULT_ENCODERS, IntentModel, IntentRow, fit_softmax, packaged_rows, train_intents
from model.training.common import TrainDataError
from model.training.intents import LOG_WEIGHT, MODEL_FILE, assemble, dev_rows, log_examples, retrain_intents
from model.training.registry import Registry


@pytest.fixture(autouse=True)
def _one_blas_thread() -> Iterator[None]:
    """On two busy cores, OpenBLAS threads waiting for each other make the classifier's small fits 20-40x
    slower (8 s against 0.2 s for the slice below); one thread gives the same model."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


SLANG = ["bin my order", "bin the order i just made", "please bin my last order", "scrap my order",
         "scrap the order please", "ditch my order", "ditch that order for me", "can you bin my order",
         "axe my order", "i want to axe that order"]  # the last two are the newest: held out
INTENTS = ("cancel_order", "track_order", "change_order", "get_refund", "place_order", "delete_account", "greet",
           "search")


@dataclass
class Turn:
    turn_id: str
    created_at: datetime
    language: str | None
    text_in: str
    intent: str | None
    confidence: float | None
    downs: int = 0


def _turns(*specs: tuple[str, str, float, int]) -> list[Turn]:
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    return [Turn(f"t{k}", t0 + timedelta(minutes=k), "en", text, intent, conf, downs)
            for k, (text, intent, conf, downs) in enumerate(specs)]


def test_log_examples_are_confident_uncontradicted_known_capped_and_new() -> None:
    turns = _turns(
        ("where is my parcel now", "track_order", 0.99, 0),
        ("where is my parcel now", "track_order", 0.98, 0),  # the same words twice: once
        ("Where IS my parcel  now", "track_order", 0.97, 0),
        ("has my box shipped", "track_order", 0.96, 0),
        ("is it coming today", "track_order", 0.97, 0),  # over the cap of 2 (newest first wins)
        ("bin my order", "track_order", 0.99, 1),  # "not what I meant": never an example
        ("maybe refund", "get_refund", 0.80, 0),  # not sure enough
        ("[button] more", "more", 1.0, 0),  # a button
        ("👍", "feedback_positive", 1.0, 0),  # no words
        ("gift wrap it", "gift_wrap", 0.99, 0),  # an intent nobody labelled: the log cannot invent one
        ("hi there", "greet", 0.99, 0),  # already labelled: not again
    )
    got = log_examples(turns, Counter({"track_order": 2, "get_refund": 5, "greet": 3, "more": 9,
                                       "feedback_positive": 9}), {"hi there"})
    assert [(r.utterance, r.intent) for r in got] == [("is it coming today", "track_order"),
                                                     ("has my box shipped", "track_order")]


def test_assemble_holds_out_the_newest_owner_rows_and_weights_log_examples_low() -> None:
    packaged = [IntentRow("where is my order", "track_order"), IntentRow("cancel it", "cancel_order")]
    owner = [IntentRow(u, "cancel_order") for u in SLANG]
    dev = [IntentRow("cancel it", "cancel_order")]  # also in the packaged rows: kept out of training
    turns = _turns(("track the parcel for me", "track_order", 0.99, 0))
    data = assemble(packaged, owner, turns, dev)
    assert [r.utterance for r in data.owner_test_rows] == SLANG[-2:]
    assert data.test == dev + data.owner_test_rows
    assert "cancel it" not in {r.utterance for r in data.train} and data.packaged == 1
    assert data.owner_train == 8 and data.from_log == 1
    assert data.weights == [1.0] * 9 + [LOG_WEIGHT] and data.train[-1].utterance == "track the parcel for me"
    assert assemble(packaged, owner, turns, dev, use_log=False).from_log == 0


def test_sample_weights_of_one_change_nothing_and_low_weights_count_less() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    w0, b0 = fit_softmax(x, y, 2)
    w1, b1 = fit_softmax(x, y, 2, sample_weight=np.ones(40))
    assert np.allclose(w0, w1, atol=1e-5) and np.allclose(b0, b1, atol=1e-5)
    # one mislabelled point: the lower its weight, the less it bends the model towards it
    xf = np.vstack([x, [[3.0, 0, 0, 0, 0]]]).astype(np.float32)
    yf = np.append(y, 0)
    pulls = []
    for wt in (1.0, 0.1):
        w, b = fit_softmax(xf, yf, 2, sample_weight=np.append(np.ones(40), wt))
        z = xf[-1] @ w + b
        pulls.append(z[0] - z[1])
    assert pulls[1] < pulls[0]


@pytest.fixture(scope="module")
def small() -> tuple[list[IntentRow], list[IntentRow], list]:  # type: ignore[type-arg]
    """A slice of the packaged data (8 intents, 14 English rows each), its dev rows, and the real encoders."""
    from retrieval.encoders import get_encoder

    per: Counter[str] = Counter()
    base = []
    for r in packaged_rows():
        if r.intent in INTENTS and r.language == "en" and per[r.intent] < 14:
            per[r.intent] += 1
            base.append(r)
    dev = [r for r in dev_rows() if r.intent in INTENTS]
    return base, dev, [get_encoder(n) for n in DEFAULT_ENCODERS]


def test_owner_rows_teach_a_new_phrasing_the_candidate_is_promoted_and_routes_it(small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base, dev, encoders = small
    current = train_intents(base, encoders)
    held_out = SLANG[-2:]
    assert [current.predict(t)[0] for t in held_out] != ["cancel_order"] * 2  # the current model misroutes them
    reg = Registry(tmp_path / "models")
    report = retrain_intents(packaged=base, owner=[IntentRow(u, "cancel_order") for u in SLANG],
                             turns=_turns(("where is my parcel right now", "track_order", 0.99, 0)), dev=dev,
                             current=current, current_name="packaged", encoders=encoders, registry=reg)
    assert report.promoted and report.candidate["macro_f1"] > report.baseline["macro_f1"]
    assert report.test_examples == len(dev) + 2 and report.train_examples == len(base) + 8 + 1
    v = reg.get("intents", str(report.version))
    assert reg.active_name("intents") == v.name
    assert v.meta["metrics"]["owner_held_out"]["candidate"]["accuracy"] == 1.0
    assert v.meta["metrics"]["owner_held_out"]["baseline"]["accuracy"] < 1.0
    assert v.meta["trained_on"]["from_log"] == 1
    promoted = IntentModel.load(v.path / MODEL_FILE, encoders)
    assert [promoted.predict(t)[0] for t in held_out] == ["cancel_order"] * 2
    assert "On your held-out rows alone" in report.summary()

    # the same data again against the promoted model: a tie keeps the current one
    again = retrain_intents(packaged=base, owner=[IntentRow(u, "cancel_order") for u in SLANG],
                            turns=_turns(("where is my parcel right now", "track_order", 0.99, 0)), dev=dev,
                            current=promoted, current_name=v.name, encoders=encoders, registry=reg)
    assert not again.promoted and again.candidate == again.baseline
    assert reg.active_name("intents") == v.name and len(reg.versions("intents")) == 2


def test_one_intent_is_not_enough_to_train(small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base, dev, encoders = small
    reg = Registry(tmp_path / "models")
    with pytest.raises(TrainDataError, match="at least two intents"):
        retrain_intents(packaged=[], owner=[IntentRow(u, "cancel_order") for u in SLANG], turns=[], dev=dev,
                        current=train_intents(base, encoders), current_name="packaged", encoders=encoders,
                        registry=reg)
    assert reg.versions("intents") == []
