"""A catalog CSV in which a known share of the rows is malformed, each in one of eight ways, and the line
number of every bad row: shared by tests/hostile/test_bad_rows.py (5,000 rows, default run) and
tests/benchmarks/bench_bad_catalog.py (100,000 rows). Every bad row is damaged within its own line, as a
spreadsheet or a hand edit damages one, so the loader must name exactly that line and load every other."""

from __future__ import annotations

from pathlib import Path

HEADER = "sku,title,price,stock"
KINDS = ("missing sku", "bad price", "unparseable stock", "broken quoting", "control characters",
         "over-long cell", "wrong column count", "duplicated sku")


def _bad(kind: str, i: int) -> str:
    return {
        "missing sku": f",Orphan product {i},9.99,3",
        "bad price": f"B{i},Bad price {i},twelve dollars,3",
        "unparseable stock": f"B{i},Bad stock {i},9.99,lots",
        "broken quoting": f'B{i},Broken quote {i},"12.50"USD,3',  # text after the closing quote joins the price
        "control characters": f"B{i},Control {i},9\x0b.9\x07,3",
        "over-long cell": f"B{i},{'x' * 25_000},9.99,3",  # past retrieval.catalog's 20,000-character field
        "wrong column count": f"B{i},Extra {i},9.99,3,surplus",
        "duplicated sku": "G0,Same sku as line 2,9.99,3",
    }[kind]


def write_bad_catalog(path: Path, rows: int, bad_every: int = 100) -> tuple[set[int], set[str], dict[str, int]]:
    """Write ``rows`` data rows, every ``bad_every``-th one malformed (cycling through KINDS). Returns the bad
    lines (1-based, the header is line 1), the good skus and how many rows of each kind were written."""
    bad_lines: set[int] = set()
    good: set[str] = set()
    kinds = dict.fromkeys(KINDS, 0)
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(HEADER + "\n")
        for i in range(rows):
            line = i + 2
            if i % bad_every == bad_every - 1:
                kind = KINDS[(i // bad_every) % len(KINDS)]
                kinds[kind] += 1
                bad_lines.add(line)
                fh.write(_bad(kind, i) + "\n")
            else:
                good.add(f"G{i}")
                fh.write(f"G{i},Product {i} cotton shirt,{(i % 500) + 0.99},{i % 40}\n")
    return bad_lines, good, kinds
