"""Load a 100,000-row catalog of which 1% is malformed in eight ways (tests/hostile/bad_catalog.py) and record
whether every good row loaded and every bad line was reported, how long the load took and the peak memory.

Why: an owner's export of a large shop is exactly where a few rows are broken; the load must report each one
by line without giving up, running out of memory or taking minutes.

Run: ``.venv/bin/python tests/benchmarks/bench_bad_catalog.py [--rows 100000]`` -> results/bad_catalog.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).parents[2]
sys.path.insert(0, str(ROOT))

from retrieval.catalog import load_catalog  # noqa: E402
from tests.hostile.bad_catalog import write_bad_catalog  # noqa: E402

OUT = Path(__file__).with_name("results") / "bad_catalog.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bad.csv"
        bad_lines, good, kinds = write_bad_catalog(path, args.rows)
        size = path.stat().st_size
        tracemalloc.start()
        start = time.perf_counter()
        result = load_catalog(path)
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    reported = sorted(e.line for e in result.errors)
    out = {
        "rows": args.rows,
        "file_mb": round(size / 2**20, 2),
        "bad_rows_written": len(bad_lines),
        "bad_kinds": kinds,
        "bad_rows_reported": len(reported),
        "every_bad_line_reported_once": reported == sorted(bad_lines),
        "good_rows": len(good),
        "good_rows_loaded": len(result.products),
        "every_good_row_loaded": {p.sku for p in result.products} == good,
        "load_seconds": round(seconds, 2),
        "tracemalloc_peak_mb": round(peak / 2**20, 1),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "python": platform.python_version(),
        "command": "python tests/benchmarks/bench_bad_catalog.py --rows " + str(args.rows),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
