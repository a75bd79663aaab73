"""`shopbot db upgrade`: the one-shot migration step of the production stack (docker/compose.yaml's ``migrate``)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, text

from bot.cli.main import cli
from tests.conftest import _pg_url

TABLES = {"users", "conversation_state", "turns", "impressions", "feedback", "handoffs", "button_payloads"}


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    import bot.store

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(bot.store.__file__).parent / "migrations"))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def upgrade(monkeypatch: pytest.MonkeyPatch, data: Path, url: str | None):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SHOPBOT_DATA_DIR", str(data))
    if url is None:
        monkeypatch.delenv("SHOPBOT_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("SHOPBOT_DATABASE_URL", url)
    return CliRunner().invoke(cli, ["db", "upgrade"], catch_exceptions=False)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """None: the SQLite file in the data dir (the default); else a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return None
    return _pg_url(request.getfixturevalue("pg_schema"))


def test_upgrade_creates_the_schema_prints_the_revision_and_is_idempotent(
    db_url: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    head = head_revision()
    first = upgrade(monkeypatch, data, db_url)
    assert first.exit_code == 0, first.output
    assert f"is at revision {head}" in first.output
    url = db_url or f"sqlite:///{data / 'shopbot.db'}"
    engine = create_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) >= TABLES
        with engine.connect() as c:
            assert c.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head
    finally:
        engine.dispose()
    again = upgrade(monkeypatch, data, db_url)  # what every `docker compose up` does: nothing to migrate
    assert again.exit_code == 0 and f"is at revision {head}" in again.output
    if db_url:
        assert "postgresql+psycopg://postgres@127.0.0.1:5432/test" in first.output


def test_an_unreachable_database_is_one_sentence_and_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = upgrade(monkeypatch, tmp_path / "data", f"postgresql+psycopg://postgres@127.0.0.1:{port}/shop")
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: The database at ") and "cannot be reached" in lines[0]
    assert "shopbot db upgrade" in lines[0] and "Traceback" not in r.output
    assert not (tmp_path / "data" / "buffer" / "pending.jsonl").exists()  # a migration buffers nothing
