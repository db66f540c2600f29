"""The win-back at scale for bench/journeys.py (`--winback`): a shop, its event log, the journey, the timed
rounds and the checks. Scale and workload: see journeys.py's docstring."""

from __future__ import annotations

import resource
import time
from datetime import datetime, timedelta

import sqlalchemy as sa

from boomerang.bootstrap import open_workspace
from boomerang.config import Settings
from boomerang.customers.models import Customer
from boomerang.journeys import models as m
from boomerang.journeys import runtime, service
from boomerang.journeys.definition import InactivityTrigger
from boomerang.messaging.models import Message

TODAY = datetime(2025, 6, 1)
INACTIVE_DAYS = 60
WAIT_DAYS = 30
STEPS_PER_CUSTOMER = 4  # send, wait, send, exit
JOURNEY = {
    "name": "winback",
    "trigger": {"inactive_days": INACTIVE_DAYS},
    "goal": {"event": "Order Completed", "within_days": 60},
    "control_share": 0.1,
    "reentry": {"mode": "after", "days": 180},
    "start": "s1",
    "nodes": {
        "s1": {"type": "send", "channel": "email", "template": "winback_1", "next": "w1"},
        "w1": {"type": "wait", "days": WAIT_DAYS, "next": "s2"},
        "s2": {"type": "send", "channel": "email", "template": "winback_2", "next": "end"},
        "end": {"type": "exit"},
    },
}


def customer_id(i: int) -> str:
    return f"cus_{i:07d}"


def peak_mib() -> float:
    """The peak resident memory of this process plus that of its largest finished child (none here but the
    PostgreSQL server's start), MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024


def prepare(settings: Settings, sleeping: int) -> dict[str, float]:
    """Customers 0..sleeping-1 last ordered INACTIVE_DAYS before today; the next tenth ordered 5 days ago too.
    Returns the seconds of each part of the set-up (not measured as the journey's)."""
    total = sleeping + sleeping // 10
    ws = open_workspace(settings)
    took = {}
    started = time.perf_counter()
    with ws.uow.session() as session:
        for start in range(0, total, 50_000):
            session.execute(
                sa.insert(Customer),
                [
                    {"id": customer_id(i), "attributes": {}, "created_at": TODAY, "updated_at": TODAY}
                    for i in range(start, min(total, start + 50_000))
                ],
            )
    took["customers"] = time.perf_counter() - started
    started = time.perf_counter()
    slept = TODAY - timedelta(days=INACTIVE_DAYS)
    with ws.log.connect() as conn:  # two orders each: the first 100 days before the sleeping day, or 5 days ago
        conn.execute(
            f"""
            INSERT INTO events
            SELECT 'o' || o || '-' || i, 'track', 'Order Completed', printf('cus_%07d', i), NULL,
                   printf('u%07d', i), t, t, 'bench', '{{"revenue": 50}}', NULL
            FROM (
                SELECT i, o, CASE
                    WHEN o = 1 THEN TIMESTAMP '{slept}' + to_seconds((i * 7919) % 86400)
                    WHEN i < {sleeping} THEN TIMESTAMP '{slept}' - INTERVAL 100 DAY + to_seconds(i % 86400)
                    ELSE TIMESTAMP '{TODAY}' - INTERVAL 5 DAY + to_seconds(i % 86400)
                END AS t
                FROM range({total}) r(i), range(2) s(o)
            )
            """
        )
    took["event log"] = time.perf_counter() - started
    with ws.uow.session() as session:
        service.save(session, JOURNEY, now=TODAY)
        service.set_status(session, JOURNEY["name"], "active", now=TODAY)
    started = time.perf_counter()
    ws.segments.sync()  # the profile mirror, as the first round after an import copies it
    took["profile mirror"] = time.perf_counter() - started
    ws.engine.dispose()
    return took


def schedule(settings: Settings) -> tuple[float, float, int, float, int]:
    """The trigger's query alone, the scheduled round, the same round again; seconds and entries."""
    ws = open_workspace(settings)
    started = time.perf_counter()
    found = runtime.scheduled_entries(ws.segments, InactivityTrigger(inactive_days=INACTIVE_DAYS), TODAY)
    query = time.perf_counter() - started
    del found
    now = TODAY + timedelta(minutes=5)
    started = time.perf_counter()
    entered = runtime.run_scheduled(ws.segments, now)[JOURNEY["name"]]
    round_ = time.perf_counter() - started
    started = time.perf_counter()
    again = runtime.run_scheduled(ws.segments, now + timedelta(hours=1))[JOURNEY["name"]]
    second = time.perf_counter() - started
    ws.engine.dispose()
    return query, round_, entered, second, again


def run_through(settings: Settings, batch: int) -> tuple[float, int]:
    """Every timer 30 days on, until none is left; seconds and instances woken."""
    ws = open_workspace(settings)
    now = TODAY + timedelta(days=WAIT_DAYS, hours=1)
    started, woken = time.perf_counter(), 0
    while n := runtime.run_due(ws.uow, now, limit=batch):
        woken += n
    ws.engine.dispose()
    return time.perf_counter() - started, woken


def check(settings: Settings, sleeping: int) -> str:
    engine = sa.create_engine(settings.sql_url.replace("postgresql://", "postgresql+psycopg://"))
    i = m.Instance
    with engine.connect() as conn:
        instances, customers, open_, outsiders = conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.count(sa.distinct(i.customer_id)),
                sa.func.count().filter(i.status != "done"),
                sa.func.count().filter(i.customer_id >= customer_id(sleeping)),
            )
        ).one()
        total, keys = conn.execute(sa.select(sa.func.count(), sa.func.count(sa.distinct(Message.key)))).one()
    engine.dispose()
    ok = instances == customers == sleeping and open_ == outsiders == 0 and total == keys == 2 * sleeping
    return (
        "ok"
        if ok
        else f"PROBLEM: {instances} instances for {customers} customers ({sleeping} sleeping), {open_} not done, "
        f"{outsiders} not sleeping, {total} messages, {keys} distinct keys"
    )


def plain_insert(settings: Settings, chunk: int = 20_000) -> float:
    """The baseline: the instance and message rows the run wrote, inserted again into empty copies of their
    tables through the driver's executemany, a chunk per statement (the reading is not counted)."""
    engine = sa.create_engine(settings.sql_url.replace("postgresql://", "postgresql+psycopg://"))
    sqlite = engine.dialect.name == "sqlite"
    took = 0.0
    with engine.begin() as conn:
        for table in (m.Instance.__tablename__, Message.__tablename__):
            columns = [c["name"] for c in sa.inspect(conn).get_columns(table)]
            copy = f"plain_{table}"
            conn.exec_driver_sql(f"CREATE TABLE {copy} AS SELECT * FROM {table} WHERE 1 = 0")
            marks = ", ".join(["?" if sqlite else "%s"] * len(columns))
            insert = f"INSERT INTO {copy} ({', '.join(columns)}) VALUES ({marks})"
            cursor = conn.connection.driver_connection.cursor()
            cursor.execute(f"SELECT {', '.join(columns)} FROM {table}")
            while rows := cursor.fetchmany(chunk):
                started = time.perf_counter()
                conn.connection.driver_connection.cursor().executemany(insert, rows)
                took += time.perf_counter() - started
            conn.exec_driver_sql(f"DROP TABLE {copy}")
    engine.dispose()
    return took


def winback(label: str, settings: Settings, sleeping: int, batch: int) -> None:
    took = prepare(settings, sleeping)
    print(f"{label}: set-up (not timed as the journey's) " + ", ".join(f"{k} {v:.1f} s" for k, v in took.items()))
    query, round_, entered, second, again = schedule(settings)
    after_schedule = peak_mib()
    ran, woken = run_through(settings, batch)
    result = check(settings, sleeping)
    floor = plain_insert(settings)
    total = round_ + ran
    print(
        f"  scheduled round {round_:7.1f} s ({entered:,} entered, {entered / round_:,.0f}/s; the trigger's query "
        f"{query:.1f} s of it); again the same day {second:.1f} s ({again} entered)\n"
        f"  run through     {ran:7.1f} s ({woken:,} woken, {woken / ran:,.0f}/s)\n"
        f"  scheduled and run through {total:.1f} s, {entered * STEPS_PER_CUSTOMER / total:,.0f} steps/s; "
        f"plain insert of the same rows (baseline) {floor:.1f} s: {total / floor:.1f}x the floor\n"
        f"  peak memory {after_schedule:,.0f} MiB after scheduling, {peak_mib():,.0f} MiB in all; {result}"
    )
