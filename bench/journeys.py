"""Journey steps per second: customers entering a 5-step journey with waits, driven by a simulated clock.

Workload (defaults): 100,000 customers enter `send -> wait 1 h -> send -> wait 1 day -> send` (10% in
the journey's control group), in chunks of 5,000 as a bulk trigger would bring them; then the clock
jumps 1 hour and the due timers are run until none is left, then 1 day. A step is one node the
interpreter executes (6 per customer: send, wait, send, wait, send, exit). Measured: one worker on
SQLite; one worker and two worker processes on PostgreSQL (a throw-away server on loopback, started
by this script from Debian's postgresql package). Checked after each run: every instance done,
exactly 3 messages per customer, no message key twice, no step lost. Baseline in the same process:
the same journey stepped by the pure interpreter alone (no store), the engine's ceiling.

    python bench/journeys.py [--customers 100000] [--batch 1000] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from boomerang.bootstrap import open_workspace
from boomerang.config import Settings
from boomerang.customers.models import Customer
from boomerang.journeys import models as m
from boomerang.journeys import runtime, service
from boomerang.journeys.definition import parse_journey
from boomerang.journeys.engine import Start, Wake, step
from boomerang.messaging.models import Message
from journeys_winback import peak_mib, winback
from pg_server import database, postgres

T0 = datetime(2025, 1, 1)
STEPS_PER_CUSTOMER = 6
JOURNEY = {
    "name": "five",
    "trigger": {"manual": True},
    "goal": None,
    "start": "s1",
    "nodes": {
        "s1": {"type": "send", "channel": "email", "template": "t1", "next": "w1"},
        "w1": {"type": "wait", "hours": 1, "next": "s2"},
        "s2": {"type": "send", "channel": "email", "template": "t2", "next": "w2"},
        "w2": {"type": "wait", "days": 1, "next": "s3"},
        "s3": {"type": "send", "channel": "email", "template": "t3", "next": "end"},
        "end": {"type": "exit"},
    },
}


def prepare(settings: Settings, customers: int) -> None:
    ws = open_workspace(settings)
    with ws.uow.session() as session:
        for start in range(0, customers, 20_000):
            session.execute(
                sa.insert(Customer),
                [
                    {"id": f"cus_{i:07d}", "attributes": {}, "created_at": T0, "updated_at": T0}
                    for i in range(start, min(customers, start + 20_000))
                ],
            )
    with ws.uow.session() as session:
        service.save(session, JOURNEY, now=ws.now())
        service.set_status(session, "five", "active", now=ws.now())
    ws.engine.dispose()


def enter_all(settings: Settings, customers: int) -> float:
    ws = open_workspace(settings)
    started = time.perf_counter()
    for start in range(0, customers, 5000):
        with ws.uow.session() as session:
            row = service.get(session, "five")
            runtime.enter_many(
                session, row, [(f"cus_{i:07d}", None) for i in range(start, min(customers, start + 5000))], T0
            )
    ws.engine.dispose()
    return time.perf_counter() - started


def drain(settings: Settings, now: datetime, batch: int, counter=None) -> int:
    """Run due timers at `now` until none is left; returns how many instances this process woke."""
    ws = open_workspace(settings)
    woken = 0
    while n := runtime.run_due(ws.uow, now, limit=batch):
        woken += n
    ws.engine.dispose()
    if counter is not None:
        counter.put(woken)
    return woken


def waves(settings: Settings, batch: int, workers: int) -> tuple[float, list[int]]:
    """The two waves of due timers, with `workers` processes each; seconds and instances woken per worker."""
    started, per_worker = time.perf_counter(), [0] * workers
    for now in (T0 + timedelta(hours=1), T0 + timedelta(days=1, hours=1)):
        if workers == 1:
            per_worker[0] += drain(settings, now, batch)
            continue
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        procs = [ctx.Process(target=drain, args=(settings, now, batch, queue)) for _ in range(workers)]
        for p in procs:
            p.start()
        results = [queue.get() for _ in procs]
        for p in procs:
            p.join()
        for i, n in enumerate(sorted(results, reverse=True)):
            per_worker[i] += n
    return time.perf_counter() - started, per_worker


def check(settings: Settings, customers: int) -> str:
    engine = sa.create_engine(settings.sql_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        open_ = conn.execute(
            sa.select(sa.func.count()).select_from(m.Instance).where(m.Instance.status != "done")
        ).scalar_one()
        total, keys = conn.execute(sa.select(sa.func.count(), sa.func.count(sa.distinct(Message.key)))).one()
    engine.dispose()
    ok = open_ == 0 and total == keys == 3 * customers
    return "ok" if ok else f"PROBLEM: {open_} instances not done, {total} messages, {keys} distinct keys"


def run(label: str, settings: Settings, customers: int, batch: int, workers: int) -> None:
    prepare(settings, customers)
    entered = enter_all(settings, customers)
    seconds, per_worker = waves(settings, batch, workers)
    steps = customers * STEPS_PER_CUSTOMER
    total = entered + seconds
    print(
        f"{label:32} enter {customers / entered:8,.0f}/s  timers {2 * customers / seconds:8,.0f} wakes/s  "
        f"steps {steps / total:8,.0f}/s  per worker {steps / total / workers:8,.0f}/s  "
        f"split {'/'.join(f'{n:,}' for n in per_worker)}  {check(settings, customers)}"
    )


def interpreter_only(customers: int) -> float:
    journey = parse_journey(JOURNEY)
    started = time.perf_counter()
    for i in range(customers):
        state, _ = step(journey, None, Start(f"i{i}", f"c{i}"), T0)
        state, _ = step(journey, state, Wake(), T0 + timedelta(hours=1))
        step(journey, state, Wake(), T0 + timedelta(days=1, hours=1))
    return customers * STEPS_PER_CUSTOMER / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, help="default 100,000; 1,000,000 sleeping ones with --winback")
    parser.add_argument("--batch", type=int, help="instances per transaction (default 1,000; 5,000 with --winback)")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--winback", action="store_true", help="the win-back at scale instead (see above)")
    args = parser.parse_args()
    customers = args.customers or (1_000_000 if args.winback else 100_000)
    batch = args.batch or (5000 if args.winback else 1000)
    what = "sleeping customers, win-back" if args.winback else f"customers x {STEPS_PER_CUSTOMER} steps"
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; {customers:,} {what}, batches of {batch:,}")
    if not args.winback:
        print(f"{'pure interpreter (baseline)':32} steps {interpreter_only(min(customers, 50_000)):8,.0f}/s")
    try:
        measure(args.winback, customers, batch, args.skip_postgres)
    finally:
        print(
            f"load after: {os.getloadavg()[0]:.2f}; peak memory {peak_mib():,.0f} MiB (this process + its largest child)"
        )


def measure(winback_: bool, customers: int, batch: int, skip_postgres: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if winback_:
            winback("SQLite", Settings(home=Path(tmp) / "sqlite"), customers, batch)
        else:
            run("SQLite, 1 worker", Settings(home=Path(tmp) / "sqlite"), customers, batch, 1)
        if skip_postgres:
            return
        url, stop = postgres()
        try:
            if winback_:
                settings = Settings(home=Path(tmp) / "pg", database_url=database(url, "winback"))
                winback("PostgreSQL", settings, customers, batch)
                return
            for workers in (1, 2):
                name = f"bench{workers}"
                settings = Settings(home=Path(tmp) / name, database_url=database(url, name))
                run(f"PostgreSQL, {workers} worker{'s' if workers > 1 else ''}", settings, customers, batch, workers)
        finally:
            stop()


if __name__ == "__main__":
    main()
