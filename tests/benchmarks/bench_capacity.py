"""Capacity benchmark: the figures docs/capacity.md computes the size of a deployment from.

    .venv/bin/python tests/benchmarks/bench_capacity.py --out tests/benchmarks/results/capacity.json
    .venv/bin/python tests/benchmarks/bench_capacity.py --parts index --vectors 200000   # one part, smaller

Parts (``--parts``, all by default), each written to the JSON as soon as it is measured:

* **turn**: what one worker spends on a turn without the language model: CPU seconds per turn (process time, every
  thread counted) and wall time, on the demo catalog with the real encoders (the scripts of bench_turn.py), the
  process's memory once everything is loaded, and the SQL each turn sends: statements, rows written per table and
  the time spent inside the database driver, with SQLite and with the PostgreSQL server on 127.0.0.1:5432 (a
  throwaway schema in database ``test``, dropped afterwards).
* **postgres**: the turn's writes alone (``start_turn`` + ``log`` with five impressions and the new state, as the
  dialogue does), from 1 and from 8 threads: turns per second the database takes.
* **redis**: a Redis server started here on a free loopback port (appendonly yes, as docker/compose.yaml runs it):
  ``redis-benchmark`` XADD rate, and one update's round trip through a stream as the queue uses it (XADD, XREADGROUP,
  XACK) from Python.
* **index**: FAISS at --vectors (1M) clustered unit vectors of --dim (384, MiniLM): build time and memory of the
  exact (flat), IVF and HNSW indexes through shopbot's own VectorIndex (its nlist, tuning to 0.95 recall@10, HNSW
  M=32, efConstruction 80), and one query's latency on one thread (as ``query_threads`` 1 serves).

One process on this machine (2 shared cores): treat the figures as this machine's, and the arithmetic in
docs/capacity.md as the way to scale them.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def log(msg: str) -> None:
    print(f"[bench_capacity {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def rss_mib() -> float:
    import psutil

    return round(psutil.Process().memory_info().rss / 2**20, 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def pg_schema(url: str) -> Iterator[str | None]:
    """A throwaway schema on the PostgreSQL server (its URL), or None when the server is not there."""
    from sqlalchemy import create_engine, text

    schema = f"capacity_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as c:
            c.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:
        log(f"PostgreSQL at {url} is not reachable ({type(exc).__name__}); its rows are skipped")
        admin.dispose()
        yield None
        return
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


class SqlMeter:
    """Counts what a store's engine sends: statements, rows written per table, seconds inside the driver."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.statements = 0
        self.seconds = 0.0
        self.rows: Counter[str] = Counter()
        self._started: dict[int, float] = {}
        self._lock = threading.Lock()
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        self._started[id(cursor)] = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        dt = time.perf_counter() - self._started.pop(id(cursor), time.perf_counter())
        words = statement.split()
        verb = words[0].upper() if words else ""
        with self._lock:
            self.statements += 1
            self.seconds += dt
            if verb in {"INSERT", "UPDATE", "DELETE"} and cursor.rowcount and cursor.rowcount > 0:
                table = words[2] if verb in {"INSERT", "DELETE"} else words[1]
                self.rows[table.strip('"').split(".")[-1]] += int(cursor.rowcount)

    def snapshot(self) -> tuple[int, float, Counter[str]]:
        with self._lock:
            return self.statements, self.seconds, Counter(self.rows)


# ------------------------------------------------------------------------------------------------- turn


def demo_engine(data_dir: Path) -> Any:
    from bot.settings import Settings
    from retrieval.bundle import current_dir
    from retrieval.catalog import load_catalog
    from retrieval.indexer import build_bundle, load_engine

    s = Settings(data_dir=data_dir, query_cache_size=0, llm="off")
    enc = {"en": s.encoder, "multi": s.multilingual_encoder}
    if current_dir(s.index_root) is None:
        t = time.perf_counter()
        build_bundle(load_catalog().products, s.index_root, encoders=enc)
        log(f"demo index built in {time.perf_counter() - t:.0f} s")
    return load_engine(s.index_root, encoders=enc, query_cache_size=0)


def play(assistant: Any, rounds: int, tag: str) -> dict[str, Any]:
    from bench_turn import SCRIPTS

    from bot.dialogue.replies import Event

    cpu_ms, wall_ms = [], []
    for r in range(rounds):
        for n, script in enumerate(SCRIPTS):
            user = f"{tag}-{r}-{n}-{uuid.uuid4().hex[:6]}"
            for text in script:
                c, w = time.process_time(), time.perf_counter()
                assistant.handle(Event(user=user, channel="bench", text=text))
                cpu_ms.append((time.process_time() - c) * 1000)
                wall_ms.append((time.perf_counter() - w) * 1000)
    return {"turns": len(cpu_ms), "cpu_ms_p50": round(statistics.median(cpu_ms), 2),
            "cpu_ms_mean": round(statistics.fmean(cpu_ms), 2), "cpu_ms_p99": round(pct(cpu_ms, 0.99), 2),
            "wall_ms_p50": round(statistics.median(wall_ms), 2), "wall_ms_p99": round(pct(wall_ms, 0.99), 2)}


def bench_turn_part(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from bot.app import build_assistant
    from bot.dialogue.replies import Event
    from bot.settings import Settings
    from bot.store.database import Store
    from retrieval.threads import set_threads

    set_threads(1)
    rss0 = rss_mib()
    engine = demo_engine(work / "data")
    out: dict[str, Any] = {"what": "one turn without the language model, demo catalog (1,200 products), 1 thread",
                           "rss_mib_before_load": rss0}
    with pg_schema(args.pg_url) as pg:
        for name, url in (("sqlite", f"sqlite:///{work / 'turns.db'}"), ("postgres", pg)):
            if url is None:
                out[name] = "skipped: PostgreSQL is not reachable"
                continue
            s = Settings(data_dir=work / "data", query_cache_size=0, llm="off", database_url=url)
            store = Store(url, work / f"buffer-{name}")
            assistant = build_assistant(s, engine=engine, store=store, llm=False)
            from bench_turn import SCRIPTS

            for n, script in enumerate(SCRIPTS):  # warm-up, every script once: lazy loads, allocations, connections
                for text in script:
                    assistant.handle(Event(user=f"warm-{name}-{n}", channel="bench", text=text))
            meter = SqlMeter(store.engine)
            row = play(assistant, args.rounds, name)
            statements, seconds, rows = meter.snapshot()
            turns = row["turns"]
            row.update(statements_per_turn=round(statements / turns, 2),
                       db_ms_per_turn=round(1000 * seconds / turns, 3),
                       rows_written_per_turn={t: round(n / turns, 2) for t, n in sorted(rows.items())},
                       rows_written_per_turn_total=round(sum(rows.values()) / turns, 2))
            out[name] = row
            out["rss_mib_loaded"] = rss_mib()
            log(f"turn with {name}: cpu p50 {row['cpu_ms_p50']} ms, {row['statements_per_turn']} statements, "
                f"{row['rows_written_per_turn_total']} rows, {row['db_ms_per_turn']} ms in the driver")
            assistant.close()
    return out


# --------------------------------------------------------------------------------------------- postgres


SKUS = [f"SKU-{i:05d}" for i in range(100)]


def _one_turn_writes(store: Any, user: str, i: int) -> None:
    """What the dialogue writes for one search turn: start_turn reads the user and state, log writes the turn,
    five impressions, the new state and the user's last-seen time in one transaction."""
    from bot.store.records import TurnRecord

    uid, _, state = store.start_turn("bench", user)
    store.log(TurnRecord(uuid.uuid4().hex, uid, "running shoes under 80", "5 products", intent="search",
                         query="running shoes", language="en", latency_ms=12.0,
                         shown=[(SKUS[(i + k) % 100], k + 1, None) for k in range(5)],
                         state={**(state or {}), "page": 1, "shown": SKUS[i % 95: i % 95 + 5]}))


def _pg_writer(url: str, buffer_dir: str, seconds: float, tag: str, results: Any) -> None:
    """One worker process's writes for ``seconds``: (turns, per-turn seconds)."""
    from bot.store.database import Store

    store = Store(url, Path(buffer_dir), migrate=False)
    for i in range(5):
        _one_turn_writes(store, f"{tag}-warm{i}", i)
    times, i = [], 0
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        s0 = time.perf_counter()
        _one_turn_writes(store, f"{tag}-{i % 50}", i)  # 50 shoppers per process, each seen again
        times.append(time.perf_counter() - s0)
        i += 1
    store.close()
    results.put(times)


def table_sizes(url: str) -> dict[str, Any]:
    """Bytes on disk per logged turn (tables with their indexes and TOAST), after the runs."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as c:
            turns = int(c.execute(text("SELECT count(*) FROM turns")).scalar_one())
            rows = c.execute(text("SELECT relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n "
                                  "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'")).all()
    finally:
        engine.dispose()
    total = sum(int(size) for _, size in rows)
    return {"turns_logged": turns, "bytes_per_turn": round(total / max(turns, 1)),
            "by_table_bytes_per_turn": {name: round(int(size) / max(turns, 1)) for name, size in sorted(rows) if size}}


def bench_postgres(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import multiprocessing as mp

    from bot.store.database import Store

    out: dict[str, Any] = {"what": "a turn's writes alone (start_turn + log: turn, 5 impressions, state, last-seen in "
                                   "one transaction), from 1, 2, 4 and 8 processes (a Store serialises the writes "
                                   "of one process, so processes are what add database load)"}
    with pg_schema(args.pg_url) as pg:
        if pg is None:
            return {"skipped": "PostgreSQL is not reachable"}
        Store(pg, work / "buffer-migrate").close()  # migrate once, before the writers start
        ctx = mp.get_context("spawn")
        for procs in (1, 2, 4, 8):
            results = ctx.Queue()
            pool = [ctx.Process(target=_pg_writer, args=(pg, str(work / f"buffer-{procs}-{n}"), args.seconds,
                                                         f"p{procs}-{n}", results)) for n in range(procs)]
            for p in pool:
                p.start()
            times = [t for _ in pool for t in results.get(timeout=args.seconds + 300)]
            for p in pool:
                p.join()
            out[f"processes_{procs}"] = {"turns": len(times), "turns_per_s": round(len(times) / args.seconds, 1),
                                         "ms_p50": round(1000 * statistics.median(times), 2),
                                         "ms_p99": round(1000 * pct(times, 0.99), 2)}
            log(f"postgres turn writes from {procs} processes: {len(times) / args.seconds:.0f} turns/s")
        out["disk"] = table_sizes(pg)
    out["server"] = "PostgreSQL on this machine (its 2 cores shared with the writers), default settings"
    return out


# ------------------------------------------------------------------------------------------------ redis


def bench_redis(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    server, bench = shutil.which("redis-server"), shutil.which("redis-benchmark")
    if not server:
        return {"skipped": "redis-server is not installed"}
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(work), "--save", "",
                             "--appendonly", "yes", "--appendfsync", "everysec"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out: dict[str, Any] = {"server": "redis-server on loopback, appendonly yes, appendfsync everysec"}
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port)
        for _ in range(100):
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    break
            time.sleep(0.05)
        out["redis_version"] = client.info()["redis_version"]
        if bench:
            for clients in (1, 50):
                run = subprocess.run([bench, "-h", "127.0.0.1", "-p", str(port), "-n", str(args.redis_ops), "-c",
                                      str(clients), "-q", "XADD", "bench:stream", "MAXLEN", "~", "100000", "*",
                                      "update", "x" * 400],
                                     capture_output=True, text=True, timeout=300)
                line = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr.strip()
                found = re.search(r"([\d.]+) requests per second(?:, p50=([\d.]+) msec)?", line)
                rate = float(found.group(1)) if found else None
                out[f"redis_benchmark_xadd_c{clients}"] = {
                    "ops_per_s": rate, "p50_ms": float(found.group(2)) if found and found.group(2) else None,
                    "command": f"redis-benchmark -n {args.redis_ops} -c {clients} -q XADD bench:stream MAXLEN ~ 100000 * update <400 bytes>"}
                if rate is None:
                    out[f"redis_benchmark_xadd_c{clients}"]["output"] = line[-200:]
                log(f"redis-benchmark XADD, {clients} clients: {rate} ops/s")
        else:
            out["redis_benchmark"] = "skipped: redis-benchmark is not installed"
        stream, group = "bench:updates", "workers"
        client.xgroup_create(stream, group, id="0", mkstream=True)
        payload = json.dumps({"update_id": 1, "message": {"text": "red winter coat under $80", "chat": {"id": 1}}})
        n, times = args.redis_round_trips, []
        t0 = time.perf_counter()
        for i in range(n):
            s0 = time.perf_counter()
            client.xadd(stream, {"update": payload, "id": str(i)})
            got: Any = client.xreadgroup(group, "w1", {stream: ">"}, count=1)
            client.xack(stream, group, got[0][1][0][0])
            times.append(time.perf_counter() - s0)
        wall = time.perf_counter() - t0
        out["python_round_trip"] = {"what": "XADD + XREADGROUP + XACK of one update, one connection, one after another",
                                    "updates": n, "updates_per_s": round(n / wall, 1),
                                    "ms_p50": round(1000 * statistics.median(times), 3)}
        log(f"redis round trip: {n / wall:.0f} updates/s from one Python client")
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return out


# ------------------------------------------------------------------------------------------------ index


def bench_index(args: argparse.Namespace) -> dict[str, Any]:
    import faiss
    import psutil
    from bench_gpu import unit_vectors

    from retrieval.index import VectorIndex

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    n, d = args.vectors, args.dim
    t = time.perf_counter()
    vecs = unit_vectors(n, d, 0, clusters=max(10, n // 1000))
    ids = np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(5)
    queries = vecs[rng.choice(n, 200, replace=False)] + 0.3 * unit_vectors(200, d, 6)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    out: dict[str, Any] = {"vectors": n, "dim": d, "raw_vectors_mib": round(vecs.nbytes / 2**20, 1),
                           "generate_s": round(time.perf_counter() - t, 1), "threads_build": faiss.omp_get_max_threads(),
                           "data": "clustered unit vectors (n/1000 centres), seeded; queries are stored vectors plus noise"}
    kinds = [k for k in ("flat", "ivf", "hnsw") if k in args.kinds]
    exact = None
    for kind in kinds:
        gc.collect()
        before = psutil.Process().memory_info().rss
        t = time.perf_counter()
        sample = n if kind != "hnsw" else min(n, args.hnsw_vectors)
        index = VectorIndex.build(ids[:sample], vecs[:sample], kind=kind, use_gpu=False)
        build = time.perf_counter() - t
        grown = psutil.Process().memory_info().rss - before
        path = Path(tempfile.mkdtemp(prefix=f"cap-{kind}-"))
        index.save(path)
        size = sum(f.stat().st_size for f in path.iterdir())
        shutil.rmtree(path)
        faiss.omp_set_num_threads(1)  # serving: query_threads 1
        lat = []
        for q in queries[:100]:
            s0 = time.perf_counter()
            index.search(q[None, :], 10)
            lat.append(time.perf_counter() - s0)
        _, found = index.search(queries, 10)
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        row: dict[str, Any] = {"vectors": sample, "build_s": round(build, 1), "file_mib": round(size / 2**20, 1),
                               "bytes_per_vector_on_disk": round(size / sample, 1),
                               "rss_growth_mib": round(grown / 2**20, 1),
                               "query_ms_p50_1_thread": round(1000 * statistics.median(lat), 3),
                               "query_ms_p99_1_thread": round(1000 * pct(lat, 0.99), 3), "info": index.info()}
        if kind == "flat":
            exact = found
        elif exact is not None and sample == n:
            row["recall_at_10_vs_flat"] = round(float(np.mean(
                [len(set(a.tolist()) & set(b.tolist())) / 10 for a, b in zip(found, exact, strict=True)])), 4)
        out[kind] = row
        log(f"{kind}: {sample:,} vectors built in {build:.1f} s, {size / 2**20:,.0f} MiB, "
            f"{row['query_ms_p50_1_thread']} ms/query")
        del index
    return out


# ------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "benchmarks" / "results" / "capacity.json")
    ap.add_argument("--parts", default="turn,postgres,redis,index")
    ap.add_argument("--rounds", type=int, default=4, help="times each bench_turn script is played per database")
    ap.add_argument("--pg-url", default=PG_URL)
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each PostgreSQL write run")
    ap.add_argument("--redis-ops", type=int, default=100_000)
    ap.add_argument("--redis-round-trips", type=int, default=5000)
    ap.add_argument("--vectors", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--kinds", default="flat,ivf,hnsw")
    ap.add_argument("--hnsw-vectors", type=int, default=1_000_000, help="HNSW builds slowly: index this many")
    args = ap.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    result: dict[str, Any] = {}
    if args.out.is_file():  # measuring one part keeps the others' figures
        with contextlib.suppress(ValueError):
            result = json.loads(args.out.read_text(encoding="utf-8"))
    result.update(benchmark="capacity", machine={"python": platform.python_version(), "cpus": os.cpu_count(),
                                                  "cpu": platform.processor() or platform.machine()})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as tmp:
        work = Path(tmp)
        for part in parts:
            fn = {"turn": lambda: bench_turn_part(args, work), "postgres": lambda: bench_postgres(args, work),
                  "redis": lambda: bench_redis(args, work), "index": lambda: bench_index(args)}[part]
            t = time.perf_counter()
            result[part] = fn()
            result[part]["measured"] = time.strftime("%Y-%m-%d")
            result[part]["command"] = ("bench_capacity.py " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
            log(f"{part} done in {time.perf_counter() - t:.0f} s")
            args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
