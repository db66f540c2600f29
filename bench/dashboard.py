"""Dashboard page loads: cold (the first after a log change) and warm, each page read from the daily rollup (now)
and computed from the raw events (the old way, `Analytics(rollups=False)`), side by side in the same run.

Workload (defaults): 40,000 customers and 2,200,000 events over two years (2023-2024): bench/segments_workload.py's
shop (its profiles, consents and traits too), put into a real workspace by segments_live.build (events into the
log, customers into SQLite, the rollups counted from the copied events as migrations e0003 and e0004 fill an
existing workspace's; timed). For the 1M-customer shop: --customers 1000000 --events 50000000; or, lighter, the
events of bench/metrics.py's 1M-customer log alone (--log FILE: nobody in SQLite, so only the analytics pages tell).

Each page is fetched through the real app (FastAPI's TestClient, logged in as an admin). Cold: the dashboard's cache
emptied and one event appended to the log first (not timed); warm: the same page again at once. The best of
--repeat tries is shown. Then the cost the rollup adds to a flush: appends of --batch events (a few customers'
sessions and orders, one merge each), with the time spent in the rollup's upkeep.

    python bench/dashboard.py [--customers 40000] [--events 2200000] [--seed 42] [--dir DIR] [--repeat 3]
                              [--batch 1000] [--pages / /cohorts ...]

Run full-scale figures through the shared lock: flock /tmp/boomerang-bench.lock python bench/dashboard.py ...
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import tempfile
import time
from pathlib import Path

import orjson
import pandas as pd
from fastapi.testclient import TestClient

from boomerang.api.app import create_app
from boomerang.auth import users
from boomerang.bootstrap import open_workspace
from boomerang.config import Settings
from boomerang.dashboard.data import Analytics
from boomerang.events import rollups
from boomerang.events.log import EVENT_COLUMNS
from segments_live import COPY_MEMORY, RunningClock, build
from segments_workload import AS_OF, generate_apart

PAGES = [
    "/",
    "/?interval=week",
    "/?date_from=2024-06-01&date_to=2024-06-30",
    "/cohorts",
    "/funnel",
    "/rfm",
    "/review",
    "/customers",
    "/customers/{customer}",
    "/segments",
    "/experiments",
    "/predictions",
    "/events",
    "/journeys",
    "/recommendations",
]


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024


def _load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _login(client: TestClient, ws) -> None:
    with ws.uow.session() as s:
        users.create_user(s, username="bench", role="admin", password="correct-horse", now=ws.now())
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    done = client.post(
        "/login",
        data={"username": "bench", "password": "correct-horse", "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )
    if done.status_code != 303:
        raise SystemExit(f"login failed: {done.status_code}")


def _event(ws, n: int, customer: str, event: str = "Page Viewed", **props) -> dict:
    return {
        "message_id": f"bench-{n}",
        "type": "track",
        "event": event,
        "customer_id": customer,
        "anonymous_id": None,
        "user_id": None,
        "timestamp": AS_OF - pd.Timedelta(minutes=1),
        "received_at": ws.now(),
        "source": "bench",
        "properties": orjson.dumps(props).decode(),
        "context": "{}",
    }


class Changes:
    """Appends to the log, so that each cold load comes after a log change."""

    def __init__(self, ws, customer: str) -> None:
        self.ws, self.customer, self.n = ws, customer, 0

    def one(self) -> None:
        self.n += 1
        self.ws.log.append(pd.DataFrame([_event(self.ws, self.n, self.customer)])[EVENT_COLUMNS])


def _fetch(client: TestClient, path: str) -> float:
    started = time.perf_counter()
    response = client.get(path)
    spent = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{path}: HTTP {response.status_code}")
    return spent


def pages(client: TestClient, board, ws, changes: Changes, paths: list[str], repeat: int) -> list[dict]:
    rows = []
    for path in paths:
        row = {"page": path}
        for side, use in (("old", False), ("now", True)):
            board.analytics = Analytics(ws, rollups=use)
            cold, warm = [], []
            for _ in range(repeat):
                changes.one()
                board.analytics._cache.clear()
                cold.append(_fetch(client, path))
                warm.append(_fetch(client, path))
            row[f"{side}_cold"], row[f"{side}_warm"] = min(cold), min(warm)
        rows.append(row)
        print(
            f"  {row['page']:<46} cold {row['old_cold'] * 1000:8.0f} ms -> {row['now_cold'] * 1000:7.0f} ms "
            f"({row['old_cold'] / row['now_cold']:5.1f}x)   warm {row['old_warm'] * 1000:6.1f} -> "
            f"{row['now_warm'] * 1000:6.1f} ms",
            flush=True,
        )
    return rows


def flushes(ws, customers: list[str], batch: int, rounds: int) -> tuple[list[float], list[float]]:
    """Append `rounds` batches (sessions ending in an order, one merge each); the seconds of each append and of
    the rollup's upkeep inside it."""
    upkeep: list[float] = []
    timed = {}
    for name in ("add", "move"):
        original = getattr(rollups, name)

        def wrapped(*args, _original=original, **kwargs):
            started = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                upkeep[-1] += time.perf_counter() - started

        timed[name] = original
        setattr(rollups, name, wrapped)
    spent = []
    n = 10_000_000
    try:
        for r in range(rounds):
            rows = []
            for i in range(batch):
                n += 1
                who = customers[(r * batch + i) // 5 % len(customers)]
                if i % 5 == 4:
                    rows.append(_event(ws, n, who, "Order Completed", order_id=f"bench-o{n}", revenue=25.0))
                else:
                    rows.append(_event(ws, n, who, "Product Viewed", sku="SKU-00001", category="Tea > Green"))
            frame = pd.DataFrame(rows)[EVENT_COLUMNS]
            upkeep.append(0.0)
            started = time.perf_counter()
            ws.log.append(frame, merges=[(f"bench-anon-{r}", customers[r % len(customers)])])
            spent.append(time.perf_counter() - started)
    finally:
        for name, original in timed.items():
            setattr(rollups, name, original)
    return spent, upkeep


def events_only(source: Path, home: Path):
    """A workspace whose log holds the events of `source` (bench/metrics_workload.py's file), nobody in SQLite."""
    started = time.perf_counter()
    ws = open_workspace(Settings(home=home), clock=RunningClock(AS_OF))
    with ws.log.connect() as conn:
        conn.execute(f"SET memory_limit = '{COPY_MEMORY}'")
        conn.execute(f"ATTACH '{source}' AS shop (READ_ONLY)")
        conn.execute("INSERT INTO events SELECT * FROM shop.events")
        conn.execute("DETACH shop")
        conn.execute("CHECKPOINT")
    return ws, {f"events of {source.name} into a new workspace's log": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=40_000)
    parser.add_argument("--events", type=int, default=2_200_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dir", default=None, help="keep the generated shop there and reuse it")
    parser.add_argument("--repeat", type=int, default=3, help="tries per page and side; the best is shown")
    parser.add_argument("--batch", type=int, default=1000, help="events per timed flush")
    parser.add_argument("--rounds", type=int, default=5, help="timed flushes")
    parser.add_argument("--pages", nargs="*", default=PAGES)
    parser.add_argument(
        "--log",
        default=None,
        help="an event log generated by bench/metrics.py (its events only: no profiles in SQLite) instead of the shop",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dashboard-bench-") as tmp:
        folder = Path(args.dir) if args.dir else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        source = folder / f"segments-{args.customers}-{args.events}-{args.seed}.duckdb"
        print(f"dashboard bench: {args.customers:,} customers, {args.events:,} events; {_load()}")
        if args.log:
            ws, steps = events_only(Path(args.log), Path(tmp) / "ws")
        elif source.exists():
            print(f"reusing {source} (generation not timed)")
        if not args.log and not source.exists():
            _, _, seconds, peak = generate_apart(source, args.customers, args.events, args.seed)
            print(f"generated in {seconds:.1f} s (peak {peak:,.0f} MB, in a child process)")
        if not args.log:
            ws, steps, _ = build(source, Path(tmp) / "ws", AS_OF, None)
        for step, seconds in steps.items():
            print(f"  {step}: {seconds:.1f} s")
        if args.log:  # build counts the rollups of the events it copies; here they are counted as the migrations would
            started = time.perf_counter()
            with ws.log.connect() as conn:
                rows = rollups.rebuild(conn)
                conn.execute("CHECKPOINT")
            print(
                f"  rollups filled from the log (as migrations e0003 and e0004 do): {rows:,} daily rows in "
                f"{time.perf_counter() - started:.1f} s"
            )
        print(f"  peak so far {_peak_mb():,.0f} MB")

        customer = ws.log.latest("Order Completed")["customer_id"].iloc[0]
        app = create_app(ws, background=False)
        client = TestClient(app)
        _login(client, ws)
        board = app.state.dashboard
        paths = [p.format(customer=customer) for p in args.pages]
        print(f"\npages (best of {args.repeat}; cold = first load after a log change): old way -> rollup; {_load()}")
        rows = pages(client, board, ws, Changes(ws, customer), paths, args.repeat)
        worst = max(rows, key=lambda r: r["now_cold"])
        total_old = sum(r["old_cold"] for r in rows)
        total_now = sum(r["now_cold"] for r in rows)
        print(
            f"  all pages cold: {total_old:.2f} s -> {total_now:.2f} s ({total_old / total_now:.1f}x); slowest now: "
            f"{worst['page']} {worst['now_cold'] * 1000:.0f} ms; {_load()}"
        )

        buyers = ws.log.latest("Order Completed")["customer_id"].tolist()[:500]
        spent, upkeep = flushes(ws, buyers, args.batch, args.rounds)
        print(
            f"\nflushes of {args.batch:,} events with one merge: append median {statistics.median(spent) * 1000:.0f} ms, "
            f"of which the rollup's upkeep {statistics.median(upkeep) * 1000:.0f} ms; {_load()}"
        )
        print(f"peak memory (this process and its children): {_peak_mb():,.0f} MB")


if __name__ == "__main__":
    main()
