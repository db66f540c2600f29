"""The segment bench's live half: a real workspace holding the generated shop, and the time from an
event's arrival to the membership change it causes (see segments.py).

The workspace is made by boomerang.bootstrap.open_workspace: the generated events are copied into its
event log (events.duckdb, `events`), the profiles, user identities and current consents into its
operational store (SQLite, bulk inserts with SQLAlchemy Core), the trait tables beside the log, and the
rollups every append keeps (events.rollups) counted once over the copied events. Every
ready-made segment is installed and refreshed once (the first refresh copies every profile beside the
log), and the Segment Entered events of that refresh are flushed. Its clock starts at the end of the
generated period and runs on with real time.

Then, one customer at a time, an event that must bring them into a segment is recorded through
boomerang.events.ingest.record, and move_events(ws) and membership.update_customers(ws.segments,
touched_by(moved)) run as the pipeline's round does (rounds.react updates segments first, then
journeys), until the customer's SegmentMember row is there:
- Product Added, for a customer with no order in the last 2 days: enters cart_abandoners;
- Product Viewed of a category they viewed twice this week, for one with no order this week: enters
  category_viewers;
- Order Completed, for a customer who never ordered: enters new_customers; an order re-evaluates
  every segment whose rule mentions orders (six of the ten).
Then one round with a batch of such events from many customers at once, as one second of traffic.

Last, the scheduled recompute of the expiring segments as the pipeline runs it (membership.Refresher, a
thread of its own) while single-event rounds go on: how many rounds ran during it and their latency,
beside the recompute run inline (membership.refresh, as it ran before: events wait for all of it).
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import sqlalchemy as sa

from boomerang.bootstrap import Workspace, open_workspace
from boomerang.config import Settings
from boomerang.core.clock import naive_utc
from boomerang.customers.models import Consent, Customer, Identity
from boomerang.events import rollups
from boomerang.events.ingest import record
from boomerang.orchestration.rounds import move_events
from boomerang.segments import library, membership, profiles
from boomerang.segments.models import Segment, SegmentMember

CHUNK = 50_000
COPY_MEMORY = "8GB"  # DuckDB's limit while copying the log (it spills beyond): the machine may be shared
KINDS = {"Product Added": "cart_abandoners", "Product Viewed": "category_viewers", "Order Completed": "new_customers"}


class RunningClock:
    """Starts at `at` and runs on with real time (the workspace's now is the end of the generated log)."""

    def __init__(self, at: datetime) -> None:
        self.at = at.replace(tzinfo=UTC)
        self.started = time.monotonic()

    def now(self) -> datetime:
        return self.at + timedelta(seconds=time.monotonic() - self.started)


def build(source: Path, home: Path, as_of: datetime, customers: int | None) -> tuple[Workspace, dict[str, float], int]:
    """A workspace with the generated shop (the first `customers` profiles, or all); returns it, the
    seconds of each step and how many customers it holds."""
    steps: dict[str, float] = {}
    clock = [time.perf_counter()]

    def done(step: str) -> None:
        now = time.perf_counter()
        steps[step] = now - clock[0]
        clock[0] = now

    ws = open_workspace(Settings(home=home), clock=RunningClock(as_of))
    done("open_workspace (migrations)")
    src = duckdb.connect(str(source), read_only=True)
    total = src.execute("SELECT count(*) FROM profiles").fetchone()[0]
    keep = total if customers is None or customers >= total else customers
    src.execute(f"CREATE TEMP TABLE kept AS SELECT customer_id FROM profiles ORDER BY customer_id LIMIT {keep}")
    _copy_store(ws, src, as_of)
    done(f"{keep:,} customers, identities and consents into SQLite")
    src.close()
    with ws.log.connect() as conn:
        conn.execute(f"SET memory_limit = '{COPY_MEMORY}'")
        conn.execute(f"ATTACH '{source}' AS shop (READ_ONLY)")
        only = (
            ""
            if keep == total
            else (
                f" WHERE customer_id IS NULL OR customer_id IN (SELECT customer_id FROM shop.profiles ORDER BY customer_id LIMIT {keep})"
            )
        )
        conn.execute(f"INSERT INTO events SELECT * FROM shop.events{only}")
        for table in ("trait_lifecycle", "trait_predictions"):
            conn.execute(f"CREATE TABLE {table} AS SELECT * FROM shop.{table}")
        conn.execute("DETACH shop")
        conn.execute("CHECKPOINT")
    done("events and traits into the event log")
    with ws.log.connect() as conn:  # what each append keeps beside the log, counted once for the copied events
        conn.execute(f"SET memory_limit = '{COPY_MEMORY}'")
        rollups.rebuild(conn)
        conn.execute("CHECKPOINT")
    done("the log's rollups counted (the daily rollup, the customers' totals)")
    return ws, steps, keep


def _copy_store(ws: Workspace, src: duckdb.DuckDBPyConnection, as_of: datetime) -> None:
    fields = [
        "external_id",
        "email",
        "phone",
        "telegram_chat_id",
        "first_name",
        "last_name",
        "birthday",
        "city",
        "country",
        "timezone",
        "locale",
    ]
    people = src.execute(f"""SELECT customer_id, {", ".join(fields)}, CAST(attributes AS VARCHAR), first_seen_at,
        last_seen_at, created_at FROM profiles WHERE customer_id IN (SELECT customer_id FROM kept) ORDER BY created_at""")
    with ws.engine.begin() as conn:
        while rows := people.fetchmany(CHUNK):
            conn.execute(
                sa.insert(Customer),
                [
                    {
                        "id": r[0],
                        **dict(zip(fields, r[1:12])),
                        "attributes": orjson.loads(r[12]),
                        "merged_into_id": None,
                        "first_seen_at": r[13],
                        "last_seen_at": r[14],
                        "created_at": r[15],
                        "updated_at": r[15],
                    }
                    for r in rows
                ],
            )
            conn.execute(
                sa.insert(Identity),
                [{"kind": "user", "value": r[1], "customer_id": r[0], "created_at": r[15]} for r in rows],
            )
        consents = src.execute("""SELECT customer_id, channel, granted FROM profile_consents
            WHERE customer_id IN (SELECT customer_id FROM kept)""")
        at = naive_utc(as_of) - timedelta(days=1)
        while rows := consents.fetchmany(CHUNK):
            conn.execute(
                sa.insert(Consent),
                [
                    {"customer_id": c, "channel": ch, "granted": g, "source": "bench", "updated_at": at}
                    for c, ch, g in rows
                ],
            )


def prepare(ws: Workspace) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Install and refresh every ready-made segment, then flush their Segment Entered events."""
    steps: dict[str, float] = {}
    started = time.perf_counter()
    with ws.uow.session() as session:
        library.install(session, now=ws.now())
    steps["install the ready-made segments"] = time.perf_counter() - started
    started = time.perf_counter()
    ws.segments.sync()
    steps["first profile sync (every profile beside the log)"] = time.perf_counter() - started
    started = time.perf_counter()
    refreshed = membership.refresh(ws.segments)
    steps["refresh every segment"] = time.perf_counter() - started
    started = time.perf_counter()
    moved = len(move_events(ws))
    steps[f"flush the {moved:,} Segment Entered events"] = time.perf_counter() - started
    return refreshed, steps


@dataclass
class Sample:
    kind: str
    customers: int
    record: float
    flush: float
    update: float
    sync: float  # of update: the profile syncs
    entered: bool
    changes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def latency(self) -> float:
        return self.record + self.flush + self.update


def _timed_syncs(spent: list[float]) -> Callable[[], None]:
    """Count the time update_customers spends in profiles.sync (through ws.segments.sync); returns the
    function that undoes the wrapping."""
    original = profiles.sync

    @functools.wraps(original)
    def sync(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - started)

    profiles.sync = sync
    return lambda: setattr(profiles, "sync", original)


def _candidates(ws: Workspace, n: int, seed: int) -> dict[str, list[tuple[str, str, str | None]]]:
    """(customer id, external id, category) for each kind of event, n each, none a member of its segment yet."""
    now = ws.now()
    with ws.uow.session() as session:
        ids = dict(session.execute(sa.select(Segment.name, Segment.id)).all())
        members = {
            name: set(session.scalars(sa.select(SegmentMember.customer_id).where(SegmentMember.segment_id == i)))
            for name, i in ids.items()
            if name in KINDS.values()
        }
    ts = f"TIMESTAMP '{now.isoformat(sep=' ')}'"
    with ws.log.connect() as conn:
        no_order_2 = conn.execute(f"""SELECT customer_id, external_id, NULL FROM profiles WHERE customer_id NOT IN (
            SELECT customer_id FROM events WHERE event = 'Order Completed' AND customer_id IS NOT NULL
              AND timestamp >= {ts} - INTERVAL 2 DAY) ORDER BY hash(customer_id, {seed}) LIMIT {n * 20}""").fetchall()
        twice = conn.execute(f"""WITH v AS (
              SELECT customer_id, properties->>'category' AS category, count(*) AS n FROM events
              WHERE event = 'Product Viewed' AND customer_id IS NOT NULL AND timestamp >= {ts} - INTERVAL 6 DAY
                AND properties->>'category' IS NOT NULL GROUP BY 1, 2)
            SELECT v.customer_id, p.external_id, min(category) FILTER (WHERE n = 2) FROM v JOIN profiles p USING (customer_id)
            WHERE v.customer_id NOT IN (SELECT customer_id FROM events WHERE event = 'Order Completed'
                                         AND customer_id IS NOT NULL AND timestamp >= {ts} - INTERVAL 8 DAY)
            GROUP BY 1, 2 HAVING max(n) = 2 ORDER BY hash(v.customer_id, {seed}) LIMIT {n * 20}""").fetchall()
        never = conn.execute(f"""SELECT customer_id, external_id, NULL FROM profiles WHERE customer_id NOT IN (
            SELECT customer_id FROM events WHERE event = 'Order Completed' AND customer_id IS NOT NULL)
            ORDER BY hash(customer_id, {seed}) LIMIT {n * 20}""").fetchall()
    found = {"Product Added": no_order_2, "Product Viewed": twice, "Order Completed": never}
    rng = random.Random(seed)
    out, used = {}, set()
    for kind, rows in found.items():  # each customer does one thing only
        rows = [r for r in rows if r[0] not in members[KINDS[kind]] and r[0] not in used]
        rng.shuffle(rows)
        out[kind] = rows[:n]
        used |= {r[0] for r in out[kind]}
    return out


def _message(kind: str, external_id: str, category: str | None, at: datetime, i: int) -> dict[str, Any]:
    stamp = at.isoformat() + "Z"
    if kind == "Product Added":
        props = {"sku": "SKU-00042", "price": 12.5, "quantity": 1}
    elif kind == "Product Viewed":
        props = {"sku": "SKU-00007", "category": category, "price": 9.9}
    else:
        props = {"order_id": f"bench-{i}", "revenue": 42.0, "currency": "USD"}
    return {"type": "track", "userId": external_id, "event": kind, "timestamp": stamp, "properties": props}


def _round(ws: Workspace, batch: list[tuple[str, str, str, str | None]], serial: int) -> Sample:
    """Record the events, flush, update the live segments; whether every customer is now in its segment."""
    spent: list[float] = []
    undo = _timed_syncs(spent)
    try:
        started = time.perf_counter()
        now = ws.now()
        with ws.uow.session() as session:
            record(
                session,
                [_message(k, ext, cat, now, serial + j) for j, (k, _, ext, cat) in enumerate(batch)],
                now=now,
                limits=ws.settings.ingest,
                source="bench",
            )
        recorded = time.perf_counter()
        moved = move_events(ws)  # as the pipeline's round does, then rounds.react: segments, then journeys
        flushed = time.perf_counter()
        changes = membership.update_customers(ws.segments, membership.touched_by(moved))
        updated = time.perf_counter()
    finally:
        undo()
    with ws.uow.session() as session:
        ids = dict(session.execute(sa.select(Segment.name, Segment.id)).all())
        found = {
            (r.segment_id, r.customer_id)
            for r in session.execute(
                sa.select(SegmentMember.segment_id, SegmentMember.customer_id).where(
                    SegmentMember.customer_id.in_([cid for _, cid, _, _ in batch])
                )
            )
        }
    entered = all((ids[KINDS[k]], cid) in found for k, cid, _, _ in batch)
    kind = batch[0][0] if len({k for k, *_ in batch}) == 1 else "batch"
    return Sample(
        kind, len(batch), recorded - started, flushed - recorded, updated - flushed, sum(spent), entered, changes
    )


def measure(ws: Workspace, n: int, batch: int, seed: int) -> tuple[list[Sample], Sample | None]:
    """n single events (the three kinds in turn), then one round of `batch` customers at once."""
    per_kind = -(-n // len(KINDS))
    pool = _candidates(ws, per_kind + -(-batch // len(KINDS)), seed)
    singles = []
    for i in range(n):
        kind = list(KINDS)[i % len(KINDS)]
        if not pool[kind]:
            continue
        cid, ext, cat = pool[kind].pop()
        singles.append(_round(ws, [(kind, cid, ext, cat)], serial=i))
    rows = [(k, cid, ext, cat) for k in KINDS for cid, ext, cat in pool[k]][:batch]
    together = _round(ws, rows, serial=n) if rows else None
    return singles, together


def during_refresh(ws: Workspace, n: int, seed: int) -> tuple[list[Sample], float]:
    """Single-event rounds (the three kinds in turn, at most n) while the pipeline's scheduled recompute runs
    in its thread; returns them and the recompute's seconds."""
    pool = _candidates(ws, -(-n // len(KINDS)), seed)
    refresher = membership.refresher(ws.segments)
    started = time.perf_counter()
    assert refresher.start(ws.segments)
    samples: list[Sample] = []
    i = 0
    while refresher.running() and i < n:
        kind = list(KINDS)[i % len(KINDS)]
        if pool[kind]:
            cid, ext, cat = pool[kind].pop()
            samples.append(_round(ws, [(kind, cid, ext, cat)], serial=10_000 + i))
        i += 1
    refresher.wait()
    return samples, time.perf_counter() - started
