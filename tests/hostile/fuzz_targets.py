"""Coverage-guided fuzzing (atheris) of the catalog loader and the query parser.

Run: ``python tests/hostile/fuzz_targets.py catalog|query -atheris_runs=N`` (libFuzzer flags pass through).
A harness fails (libFuzzer exits non-zero and writes ``crash-*``) on any exception other than the clean
"bad input" answer: CatalogError for a catalog; parse_query has none, so any exception is a crash. Why
coverage-guided on top of hypothesis: libFuzzer keeps inputs that reach new branches of the CSV readers and
the price patterns, so it finds the odd byte sequences that a grammar of our own would not think of.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from retrieval.catalog import CatalogError, load_catalog
    from retrieval.query import parse_query

SLOW = 1.0  # seconds: one input taking longer is a crash too (catastrophic backtracking)
_DIR = Path(tempfile.mkdtemp(prefix="shopbot-fuzz-"))
HEADERS = [b"sku,title,price,stock,color\n", b"Handle,Title,Variant SKU,Variant Price,Variant Inventory Qty\n",
           b"id\ttitle\tprice\tavailability\n", b"uniq_id,product_name,retail_price,pid\n", b""]


def _check_time(start: float, what: str) -> None:
    took = time.perf_counter() - start
    if took > SLOW:
        raise RuntimeError(f"{what} took {took:.2f} s on one input")


def catalog(data: bytes) -> None:
    """Bytes after one of the known headers (or none), written as a file and loaded."""
    fdp = atheris.FuzzedDataProvider(data)
    head = HEADERS[fdp.ConsumeIntInRange(0, len(HEADERS) - 1)]
    path = _DIR / f"c{os.getpid()}.csv"
    path.write_bytes(head + fdp.ConsumeBytes(fdp.remaining_bytes()))
    start = time.perf_counter()
    with contextlib.suppress(CatalogError):
        load_catalog(path)
    _check_time(start, "load_catalog")


def query(data: bytes) -> None:
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(4096)
    start = time.perf_counter()
    parse_query(text, brands=["nike", "apple"])
    _check_time(start, "parse_query")


TARGETS = {"catalog": catalog, "query": query}


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: {argv[0]} {'|'.join(TARGETS)} [libFuzzer flags, e.g. -atheris_runs=10000]")
    target = TARGETS[argv[1]]
    parse_query("紫")  # a one-character colour imports the segmenter (scipy): outside the fuzzed, timed inputs
    atheris.Setup([argv[0], *argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
