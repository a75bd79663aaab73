"""bot/services.py: what the CLI, Telegram's /reindex and a first start share. Each operation returns a report
and prints nothing, so a channel can show it in its own words (hashing encoder: seconds per test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.services import load_engine, reindex
from bot.settings import Settings
from retrieval.bundle import current_dir
from retrieval.indexer import BundleError
from tests.conftest import ROWS, write_catalog

BAD = ("BAD-1", "Broken row", "", "", "X", "Y", "not-a-price", "1", "", "", "")


def _settings(tmp_path: Path, catalog: Path | None) -> Settings:
    return Settings(data_dir=tmp_path / "data", catalog=catalog, encoder="hashing", multilingual_encoder="hashing",
                    body_view=False)


def test_reindex_returns_what_a_person_is_told_and_prints_nothing(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    catalog = write_catalog(tmp_path / "shop.csv", [*ROWS, BAD])
    s = _settings(tmp_path, catalog)
    report = reindex(s, catalog, full=False)
    assert capsys.readouterr() == ("", "")
    lines = report.catalog.lines()
    bad_line = len(ROWS) + 2  # after the header and the good rows
    assert len(lines) == 3 and lines[0] == f"Read a shopbot CSV: {len(ROWS) + 1} rows -> {len(ROWS)} products."  # the format it read comes first
    assert lines[1].startswith(f"Skipped line {bad_line} (sku BAD-1)")
    assert lines[2].startswith(f"Loaded {len(ROWS)} products")
    assert report.lines() == [report.build.summary(),
                              "Ranking: the built-in hybrid search (no learned ranker is active)."]
    assert report.build.added == len(ROWS) and current_dir(s.index_root) is not None

    again = reindex(s, catalog, full=False)  # incremental: nothing changed, nothing re-encoded
    assert (again.build.added, again.build.changed, again.build.unchanged) == (0, 0, len(ROWS))


def test_a_first_start_builds_the_index_and_says_so_through_notify(tmp_path: Path) -> None:
    catalog = write_catalog(tmp_path / "shop.csv")
    s = _settings(tmp_path, catalog)
    heard: list[str] = []
    engine = load_engine(s, notify=heard.append)
    assert len(engine.products) == len(ROWS)
    assert heard[0] == f"No search index yet: building one from the {catalog} ..."
    assert heard[1:] == [f"Read a shopbot CSV: {len(ROWS)} rows -> {len(ROWS)} products.",
                         f"Loaded {len(ROWS)} products from {catalog}.", heard[3],
                         "Ranking: the built-in hybrid search (no learned ranker is active)."]
    assert heard[3].startswith(f"Full rebuild: {len(ROWS)} products ({len(ROWS)} added")

    heard.clear()
    assert len(load_engine(s, notify=heard.append).products) == len(ROWS) and heard == []  # built: just loaded
    with pytest.raises(BundleError, match="run `shopbot reindex` to build it"):
        load_engine(_settings(tmp_path / "empty", catalog), build_if_missing=False)
