"""Ingestion throughput and latency on this machine.

Workload (defaults): 100,000 Product Viewed events from 5,000 visitors over 800 products through
POST /v1/batch in batches of 500 from two client threads, against `boomerang serve` started on
loopback in a child process (its background processing and flushing running, as in production),
timed until accepted and until all of them were processed and in DuckDB; then 1,000 single
/v1/track calls one after another for p50/p99 latency, then more for as long as the Online Retail import writes
the same workspace from another process (the quiet p99 its baseline); then each stage alone in this process
without HTTP, the garbage collector tuned as serve tunes its processes (accept, first with Python's
default collector for comparison, then tuned, into the intake; process, flush, then the same batches again: all
duplicates, then the same visitors' next 100,000 events through the pipeline's round: process and move into the
log); then the
Online Retail import. Prints the load before and after, and the peak memory.
Baseline, run in this same process: the same rows written straight into an SQLite table shaped like
the inbox with executemany (no HTTP, no validation, no identity resolution), the floor the
pipeline's overhead is measured against.

    python bench/ingest.py [--events 100000] [--batch 500] [--clients 2] [--dir /dev/shm]
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson
import sqlalchemy as sa

from boomerang.auth.service import create_key
from boomerang.bootstrap import open_workspace
from boomerang.config import Settings
from boomerang.core import collector
from boomerang.core.ids import new_id
from boomerang.events import ingest, schemas
from boomerang.events.flush import flush
from boomerang.events.models import inbox
from boomerang.events.process import process
from boomerang.orchestration import rounds

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _event(i: int) -> dict:
    return {
        "type": "track",
        "event": "Product Viewed",
        "anonymousId": f"visitor-{i % 5000}",
        "messageId": f"bench-{i}",
        "properties": {"sku": f"SKU-{i % 800}", "name": f"Product {i % 800}", "price": 9.99, "category": "Tea > Green"},
        "context": {"page": {"url": "https://shop.example/p"}, "userAgent": "bench"},
    }


def _serve(home: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "BOOMERANG_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "boomerang", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/health")
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def batched(base: str, key: str, total: int, size: int, clients: int) -> float:
    bodies = [
        orjson.dumps({"batch": [_event(i) for i in range(s, min(s + size, total))]}) for s in range(0, total, size)
    ]
    queue = list(enumerate(bodies))
    lock = threading.Lock()

    def work() -> None:
        with httpx.Client(auth=(key, ""), headers={"Content-Type": "application/json"}, timeout=60) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    _, body = queue.pop()
                r = client.post(f"{base}/v1/batch", content=body)
                assert r.status_code == 200, r.text

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return total / (time.perf_counter() - started)


def singles(base: str, key: str, n: int) -> list[float]:
    times = []
    with httpx.Client(auth=(key, ""), timeout=30) as client:
        for i in range(n):
            body = {**_event(10_000_000 + i), "type": "track"}
            t = time.perf_counter()
            assert client.post(f"{base}/v1/track", json=body).status_code == 200
            times.append((time.perf_counter() - t) * 1000)
    return times


def drained(ws, started: float, total: int) -> float:
    """Events per second from the first request until the server had processed and flushed everything: nothing
    in the intake, then nothing in the inbox (a take commits into the inbox before the intake lets go)."""
    while True:
        if not ws.intake.waiting():
            with ws.engine.connect() as conn:
                if not conn.execute(sa.text("SELECT count(*) FROM event_inbox")).scalar():
                    return total / (time.perf_counter() - started)
        time.sleep(0.05)


def beside_import(base: str, key: str, home: Path) -> list[float]:
    """Single /v1/track calls, one after another, for as long as `boomerang import online-retail` writes the same
    workspace from another process (chunk after chunk of customers, orders and events)."""
    retail = SHARED / "uci-online-retail" / "online_retail_to_2011-09-30.csv.gz"
    if not retail.exists():
        return []
    importer = subprocess.Popen(
        [sys.executable, "-m", "boomerang", "import", "online-retail", str(retail)],
        env={**os.environ, "BOOMERANG_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    times = []
    with httpx.Client(auth=(key, ""), timeout=120) as client:
        while importer.poll() is None:
            body = {**_event(20_000_000 + len(times)), "type": "track"}
            t = time.perf_counter()
            assert client.post(f"{base}/v1/track", json=body).status_code == 200
            times.append((time.perf_counter() - t) * 1000)
    assert importer.returncode == 0
    return times


def accept_all(ws, bodies: list[bytes]) -> float:
    """Seconds to accept every body as /v1/batch does, without HTTP: parse, check, deduplicate, store."""
    limits = ws.settings.ingest
    started = time.perf_counter()
    for body in bodies:
        received = ws.now()
        envelope, messages, _ = schemas.read_batch(orjson.loads(body))
        indexed, _ = schemas.normalise_each(
            messages,
            received_at=received,
            limits=limits,
            new_id=lambda: new_id("msg"),
            prefix="batch",
            sent_at=envelope.sentAt,
            batch_context=envelope.context,
        )
        events = [event for index, event in indexed if not ingest.problems(event, f"batch[{index}]")]
        ws.intake.put(events, now=received, source="bench")
    return time.perf_counter() - started


def in_process(home: Path, total: int, size: int) -> dict[str, float]:
    """Each stage alone, without HTTP: accept (validation, message ids, intake), process (identity, products, into
    the inbox), flush;
    then the same batches sent again once flushed (every event a duplicate, as a client's retries are). With the
    garbage collector tuned as in serve and its pipeline, after a first accept with Python's default collector."""
    bodies = [
        orjson.dumps({"batch": [_event(i) for i in range(s, min(s + size, total))]}) for s in range(0, total, size)
    ]
    rates = {
        "accept, default collector": total
        / accept_all(open_workspace(Settings(home=home.with_name("untuned"))), bodies)
    }
    ws = open_workspace(Settings(home=home))
    limits = ws.settings.ingest
    collector.tune()
    rates["accept"] = total / accept_all(ws, bodies)
    started = time.perf_counter()
    done = process(ws.uow, ws.clock, chunk_rows=limits.process_chunk_rows, intake=ws.intake)
    rates["process"] = done / (time.perf_counter() - started)
    with ws.uow.session() as session:  # flush returns the events of known customers: count the inbox rows it moves
        waiting = session.scalar(sa.select(sa.func.count()).select_from(inbox))
    started = time.perf_counter()
    flush(ws.uow, ws.log, chunk_rows=limits.flush_chunk_rows)
    rates["flush"] = waiting / (time.perf_counter() - started)
    rates["again"] = total / accept_all(ws, bodies)
    returning = [  # the same visitors again, new messages: the steady state of a shop
        orjson.dumps({"batch": [_event(i) for i in range(s, min(s + size, 2 * total))]})
        for s in range(total, 2 * total, size)
    ]
    accept_all(ws, returning)
    started = time.perf_counter()
    rounds.move_events(ws)  # what serve's pipeline runs: process, and move what it processed into the log
    rates["round"] = total / (time.perf_counter() - started)
    return rates


def baseline(total: int, where: str | None) -> float:
    """Raw executemany of the same rows into an SQLite table shaped like the inbox."""
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        conn = sqlite3.connect(Path(tmp) / "raw.sqlite")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TABLE inbox (id INTEGER PRIMARY KEY, message_id TEXT UNIQUE, type TEXT, event TEXT, "
            "anonymous_id TEXT, timestamp TEXT, properties TEXT, context TEXT)"
        )
        events = [_event(i) for i in range(total)]
        started = time.perf_counter()
        for s in range(0, total, 500):
            rows = [
                (
                    e["messageId"],
                    e["type"],
                    e["event"],
                    e["anonymousId"],
                    "2026-01-01",
                    orjson.dumps(e["properties"]).decode(),
                    orjson.dumps(e["context"]).decode(),
                )
                for e in events[s : s + 500]
            ]
            conn.executemany(
                "INSERT INTO inbox (message_id, type, event, anonymous_id, timestamp, properties, context) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            conn.commit()
        return total / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--singles", type=int, default=1000)
    parser.add_argument("--dir", default=None, help="where the workspaces go (default: the system's temp folder)")
    args = parser.parse_args()
    print(f"load (1/5/15 min) at the start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        home = Path(tmp) / "ws"
        ws = open_workspace(Settings(home=home))
        with ws.uow.session() as session:
            _, key = create_key(session, kind="write", name="bench", now=ws.now())
        port = _port()
        proc = _serve(home, port)
        base = f"http://127.0.0.1:{port}"
        try:
            started = time.perf_counter()
            rate = batched(base, key, args.events, args.batch, args.clients)
            end_to_end = drained(ws, started, args.events)
            lat = singles(base, key, args.singles)
            busy = beside_import(base, key, home)
        finally:
            proc.terminate()
            proc.wait()
        stages = in_process(Path(tmp) / "direct", args.events, args.batch)
    raw = baseline(args.events, args.dir)
    q = statistics.quantiles(lat, n=100)
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    print(
        f"/v1/batch accepted : {rate:10,.0f} events/s  ({args.events:,} events, batches of {args.batch}, "
        f"{args.clients} clients; the server processing and flushing meanwhile)"
    )
    print(f"end to end         : {end_to_end:10,.0f} events/s  (until every event was processed and in DuckDB)")
    print(f"baseline raw SQLite: {raw:10,.0f} events/s  (same rows, executemany, no HTTP/validation/identity)")
    print(f"ratio accepted/raw : {rate / raw:10.3f}   end to end/raw: {end_to_end / raw:.3f}")
    print(
        f"vs RudderStack 1.7K/s on a 2-core m5.large (published gateway figure): {rate / 1700:.1f}x accepted, "
        f"{end_to_end / 1700:.1f}x end to end"
    )
    print(f"single /v1/track   : p50 {q[49]:.2f} ms, p99 {q[98]:.2f} ms  ({args.singles:,} sequential calls)")
    if busy:
        b = statistics.quantiles(busy, n=100)
        print(
            f"  beside an import : p50 {b[49]:.2f} ms, p99 {b[98]:.2f} ms, slowest {max(busy):.0f} ms ({len(busy):,} "
            f"calls while `boomerang import online-retail` wrote the workspace); p99 {b[98] / q[98]:.1f}x the quiet one"
        )
    print(
        f"stages alone, no HTTP, the collector tuned as in serve: accept {stages['accept']:,.0f}/s "
        f"(with Python's default collector {stages['accept, default collector']:,.0f}/s, "
        f"{stages['accept'] / stages['accept, default collector']:.2f}x), "
        f"process (from the intake into the inbox) {stages['process']:,.0f}/s, "
        f"flush to DuckDB {stages['flush']:,.0f}/s; the same batches again, all duplicates: {stages['again']:,.0f}/s; "
        f"the pipeline's round on returning visitors (process + move into the log): {stages['round']:,.0f}/s"
    )
    peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    print(f"load (1/5/15 min) at the end: {os.getloadavg()}; peak memory of one process: {peak / 1024:,.0f} MiB")
    retail = SHARED / "uci-online-retail" / "online_retail_to_2011-09-30.csv.gz"
    if retail.exists():
        from boomerang.events.importers import online_retail

        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            ws = open_workspace(Settings(home=Path(tmp) / "ws"))
            started = time.perf_counter()
            result = online_retail.run(ws.uow, ws.log, retail, now=ws.now())
            print(
                f"online-retail import: {time.perf_counter() - started:.1f} s  ({result.lines:,} lines, {result.orders:,} orders)"
            )


if __name__ == "__main__":
    main()
