"""`shopbot feedback import`: the shop's own record of purchases reaches the log the models learn from,
bad rows are reported by line and skipped, and the same export imported twice adds nothing (hashing
encoder, SQLite)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.app import build_assistant
from bot.cli.main import cli
from bot.dialogue.replies import Event
from bot.settings import Settings
from tests.conftest import write_catalog

EXPORT = """user,sku,kind,at,order
telegram:501,LAP-1,purchase,2026-11-20T10:00:00Z,A-1
502,PHO-1,purchase,2026-11-21T09:30:00,A-2
telegram:501,NOPE-9,purchase,2026-11-20T10:00:00Z,A-1
telegram:503,SHO-1,teleport,2026-11-20T10:00:00Z,A-3
telegram:504,SHO-2,purchase,yesterday,A-4
telegram:505,,purchase,2026-11-20T10:00:00Z,A-5
telegram:501,LAP-2,add_to_cart,2026-11-20T09:58:00Z,
"""


@pytest.fixture
def shop(tmp_path: Path, hashing_cli_env: Path):  # type: ignore[no-untyped-def]
    catalog = write_catalog(tmp_path / "catalog.csv")
    runner = CliRunner()
    assert runner.invoke(cli, ["reindex", str(catalog)], catch_exceptions=False).exit_code == 0
    export = tmp_path / "orders.csv"
    export.write_text(EXPORT, encoding="utf-8")
    return runner, export, tmp_path


def test_purchases_are_imported_once_and_bad_rows_named_by_line(shop) -> None:  # type: ignore[no-untyped-def]
    runner, export, _ = shop
    r = runner.invoke(cli, ["feedback", "import", str(export), "--channel", "telegram", "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.strip().splitlines()[-1]) == {"added": 3, "already_imported": 0, "skipped": 4}
    assert "line 4: SKU 'NOPE-9' is not in the catalog" in r.output
    assert "line 5: kind 'teleport' is not one of" in r.output
    assert "line 6: time 'yesterday' is not ISO 8601" in r.output
    assert "line 7: no sku" in r.output

    again = runner.invoke(cli, ["feedback", "import", str(export), "--channel", "telegram", "--json"], catch_exceptions=False)
    assert json.loads(again.output.strip().splitlines()[-1]) == {"added": 0, "already_imported": 3, "skipped": 4}

    s = Settings()
    a = build_assistant(s, llm=False)
    try:
        rows = {(u, sku, kind, at.isoformat()) for u, sku, kind, at in a.store.interactions(limit=100)}
        assert rows == {("telegram:501", "LAP-1", "purchase", "2026-11-20T10:00:00+00:00"),
                        ("telegram:502", "PHO-1", "purchase", "2026-11-21T09:30:00+00:00"),
                        ("telegram:501", "LAP-2", "add_to_cart", "2026-11-20T09:58:00+00:00")}
        # what the shopper bought is never recommended back to them
        recs = a.handle(Event(user="501", channel="telegram", text="recommend something for me"))
        shown = {c.sku for r in recs for c in r.cards}
        assert shown and "LAP-1" not in shown
    finally:
        a.close()


def test_an_export_without_the_needed_columns_is_refused_in_one_sentence(shop) -> None:  # type: ignore[no-untyped-def]
    runner, export, _ = shop
    export.write_text("customer,product\n1,LAP-1\n", encoding="utf-8")
    r = runner.invoke(cli, ["feedback", "import", str(export)])
    assert r.exit_code == 1 and "needs the columns user and sku" in r.output and "Traceback" not in r.output


def test_bare_user_ids_need_a_channel(shop) -> None:  # type: ignore[no-untyped-def]
    runner, export, _ = shop
    export.write_text("user,sku\n77,LAP-1\n", encoding="utf-8")
    r = runner.invoke(cli, ["feedback", "import", str(export), "--json"], catch_exceptions=False)
    assert "line 2: user '77' has no channel" in r.output
    assert json.loads(r.output.strip().splitlines()[-1])["added"] == 0


def test_a_json_array_export_is_read_and_a_broken_one_refused(shop) -> None:  # type: ignore[no-untyped-def]
    runner, _, tmp_path = shop
    good = tmp_path / "orders.json"
    good.write_text(json.dumps([{"user": "telegram:9", "sku": "LAP-1", "at": "2026-11-20T10:00:00Z"},
                                {"user": "telegram:9", "sku": "NOPE"}]), encoding="utf-8")
    r = runner.invoke(cli, ["feedback", "import", str(good), "--json"], catch_exceptions=False)
    assert "line 2: SKU 'NOPE' is not in the catalog" in r.output
    assert json.loads(r.output.strip().splitlines()[-1]) == {"added": 1, "already_imported": 0, "skipped": 1}
    good.write_text('[{"user": "telegram:9", "sku": "LAP-1"},', encoding="utf-8")
    r = runner.invoke(cli, ["feedback", "import", str(good)])
    assert r.exit_code == 1 and "is not valid JSON" in r.output and "Traceback" not in r.output
