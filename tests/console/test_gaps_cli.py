"""`shopbot gaps` prints the console's demand-gap digest, and a theme the owner marked handled in the console is
gone from both (issue 21)."""

from __future__ import annotations

import json

from click.testing import CliRunner
from starlette.testclient import TestClient

from bot.cli.main import cli
from bot.settings import Settings
from bot.store.database import Store
from tests.console.conftest import csrf_of


def _gaps(settings: Settings) -> dict:  # type: ignore[type-arg]
    env = {"SHOPBOT_ENCODER": "hashing", "SHOPBOT_MULTILINGUAL_ENCODER": "hashing", "SHOPBOT_DEVICE": "cpu"}
    r = CliRunner().invoke(cli, ["--data-dir", str(settings.data_dir), "gaps", "--since", "7d", "--json"], env=env)
    assert r.exit_code == 0, r.output
    return json.loads(r.output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_the_digest_groups_unserved_searches_and_forgets_a_handled_theme(logged_in: TestClient, store: Store,
                                                                          settings: Settings) -> None:
    for user, q in (("telegram:1", "jorts"), ("telegram:2", "jorts"), ("telegram:3", "jorts"),
                    ("telegram:4", "pickleball paddle")):
        store.log_turn(user, q, "Nothing found.", intent="search", query=q, language="en")
    digest = _gaps(settings)
    assert digest["searches"] == 4
    counts = {t["label"]: t["count"] for t in digest["themes"]}
    assert counts.get("jorts") == 3 and counts.get("pickleball paddle") == 1, digest

    token = csrf_of(logged_in.get("/gaps").text)
    r = logged_in.post("/gaps/handled", data={"csrf_token": token, "label": "jorts", "query": "jorts"})
    assert "handled" in r.text
    assert "jorts" not in logged_in.get("/gaps").text
    assert [t["label"] for t in _gaps(settings)["themes"]] == ["pickleball paddle"]


def test_a_period_that_is_not_one_gets_one_sentence(settings: Settings) -> None:
    r = CliRunner().invoke(cli, ["--data-dir", str(settings.data_dir), "gaps", "--since", "a week"])
    assert r.exit_code != 0 and "is not a period like 7d" in r.output
