"""Model versions: staging, promotion, the ACTIVE pointer, rollback through the history."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.training.registry import Registry, RegistryError


def _train(reg: Registry, kind: str, score: float, *, promote: bool = True) -> str:
    with reg.stage(kind) as d:
        (d / "weights.txt").write_text(str(score))
        v = reg.commit(kind, d, {"metrics": {"metric": "ndcg@10", "candidate": {"ndcg@10": score}}}, promote=promote)
    return v.name


def test_a_promoted_version_becomes_active_and_keeps_its_files_and_figures(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    assert reg.active("ranker") is None and reg.tags() == {}
    name = _train(reg, "ranker", 0.71)
    v = reg.active("ranker")
    assert v is not None and v.name == name and v.active
    assert (v.path / "weights.txt").read_text() == "0.71"
    assert v.metrics["candidate"]["ndcg@10"] == 0.71 and v.meta["parent"] is None and v.meta["promoted"] is True
    assert reg.tags() == {"ranker": name}
    assert v.tag == f"ranker:{name}"


def test_a_version_that_lost_is_kept_but_not_activated(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    first = _train(reg, "ranker", 0.7)
    second = _train(reg, "ranker", 0.6, promote=False)
    assert reg.active_name("ranker") == first
    listed = reg.versions("ranker")
    assert [v.name for v in listed] == [first, second]
    assert [v.active for v in listed] == [True, False]
    assert listed[1].meta["promoted"] is False and listed[1].meta["parent"] == first


def test_rollback_walks_back_through_what_was_active(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    a = _train(reg, "recommender", 0.5)
    b = _train(reg, "recommender", 0.6)
    c = _train(reg, "recommender", 0.7)
    assert reg.rollback("recommender").name == b  # type: ignore[union-attr]
    assert reg.rollback("recommender").name == a  # type: ignore[union-attr]
    assert reg.rollback("recommender") is None  # back to the built-in default
    assert reg.active("recommender") is None
    with pytest.raises(RegistryError, match="built-in default is already in use"):
        reg.rollback("recommender")
    # a named version can always be activated again, and the history says who did what
    assert reg.rollback("recommender", to=c).name == c  # type: ignore[union-attr]
    reasons = [h["reason"] for h in reg.history("recommender")]
    assert reasons == ["trained", "trained", "trained", "rollback", "rollback", "rollback", "rollback"]


def test_rollback_after_a_new_training_returns_to_the_version_before_it(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    a = _train(reg, "llm", 2.0)
    b = _train(reg, "llm", 1.5)
    reg.rollback("llm")  # back to a
    c = _train(reg, "llm", 1.2)  # trained while a was active
    assert reg.active_name("llm") == c
    assert reg.rollback("llm").name == a  # type: ignore[union-attr]
    assert b in [v.name for v in reg.versions("llm")]


def test_unknown_kinds_and_versions_are_one_clear_sentence(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    with pytest.raises(RegistryError, match="Unknown model kind 'rankr'"):
        reg.versions("rankr")
    with pytest.raises(RegistryError, match="There is no ranker version 'nope'"):
        reg.activate("ranker", "nope", reason="test")
    with pytest.raises(RegistryError, match="not a version name"):
        reg.get("ranker", "../../etc")


def test_a_failed_training_leaves_nothing_behind(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    with pytest.raises(RuntimeError), reg.stage("ranker") as d:
        (d / "half-written").write_text("x")
        raise RuntimeError("training crashed")
    assert reg.versions("ranker") == []
    assert [p.name for p in (tmp_path / "ranker").iterdir()] == []


def test_an_active_pointer_to_a_deleted_version_means_the_default(tmp_path: Path) -> None:
    import shutil

    reg = Registry(tmp_path)
    name = _train(reg, "intents", 0.9)
    shutil.rmtree(tmp_path / "intents" / name)
    assert reg.active("intents") is None
