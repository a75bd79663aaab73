"""`shopbot reindex` with a shop system's export: the first line names the format, and a --map is typed once
(the sample files are tests/data/catalogs/, read in detail by tests/retrieval/test_formats.py)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from bot.cli.main import cli

DATA = Path(__file__).resolve().parents[2] / "data" / "catalogs"
GERMAN_MAP = "sku=Artikelnummer,title=Bezeichnung,price=Preis,currency=EUR,color=Farbe,stock=Lagerbestand,category=Warengruppe"


def test_reindex_names_the_format_and_keeps_the_column_map(hashing_cli_env: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(cli, ["reindex", str(DATA / "shopify_products.csv")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].startswith("Read a Shopify products export: 9 rows -> 6 products")
    assert "Skipped line 10 (sku BEANIE-MUSTARD): price 'twelve' is not a number" in r.output

    german = tmp_path / "Artikel-Export.csv"
    german.write_bytes((DATA / "unknown_columns.csv").read_bytes())
    r = runner.invoke(cli, ["reindex", str(german)], catch_exceptions=False)
    assert r.exit_code == 1 and "Tell me with --map sku=Artikelnummer,title=Bezeichnung,price=Preis" in r.output
    assert "Traceback" not in r.output

    r = runner.invoke(cli, ["reindex", str(german), "--map", GERMAN_MAP], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0].startswith("Read a CSV with a column map: 4 rows -> 3 products")
    saved = hashing_cli_env / "catalog_map.json"
    assert saved.is_file() and f"Saved the column map in {saved}" in r.output

    # the owner typed it once: the next export with the same columns is read with it
    r = runner.invoke(cli, ["reindex", str(german)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0].startswith("Read a CSV with a column map: 4 rows -> 3 products")
    assert f"Used the column map saved for these columns in {saved}" in r.output
    assert "0 added, 0 changed, 0 removed" in r.output

    r = runner.invoke(cli, ["reindex", str(german), "--map", "sku"], catch_exceptions=False)
    assert r.exit_code == 2 and "Invalid value for '--map'" in r.output
