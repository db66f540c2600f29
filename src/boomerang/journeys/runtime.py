"""Running journeys: customers enter, events reach their instances, due timers fire, commands are carried out.

Every change of an instance happens in one transaction with what its step asked for (messages into
the outbox, conversions, approvals, loyalty entries, profile updates), each keyed by an idempotency
key: a worker killed at any moment leaves either the old state or the new one with all of its effects.
Due instances are claimed with FOR UPDATE SKIP LOCKED on PostgreSQL, so several workers share them.
Work is done in batches: a few queries to read, the pure interpreter in memory, one executemany per
kind of row to write. An event starts a journey once, however often it arrives (a client's retry after
the deduplication window, an import of the same file, a replay, two workers handed the same events):
each instance keeps the message id of its triggering event, unique per journey.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.core.ids import new_id
from boomerang.customers.merge import canonical
from boomerang.customers.models import Customer
from boomerang.db import UnitOfWork, chunked
from boomerang.events.schemas import Logged
from boomerang.journeys import models as m
from boomerang.journeys import service
from boomerang.journeys.definition import Journey, ReplenishmentTrigger
from boomerang.journeys.effects import Batch, Live
from boomerang.journeys.engine import Decided, Evaluated, Input, Start, State, Wake, admits, in_control, step
from boomerang.journeys.service import definition_of
from boomerang.journeys.triggers import happened, matching, replenishment_due, scheduled_rule, started_by
from boomerang.messaging.tracking import EVENT_NAMES
from boomerang.segments.evaluate import Evaluator

MESSAGE_EVENTS = frozenset(EVENT_NAMES.values())
GOAL_HORIZON = timedelta(days=365)  # the longest goal window a definition allows

LIVE_COLUMNS = (
    m.Instance.id,
    m.Instance.journey_id,
    m.Instance.version,
    m.Instance.customer_id,
    m.Instance.control,
    sa.cast(m.Instance.state, sa.Text),  # parsed here by orjson: the driver's JSON parsing cost more
    m.Instance.ended_at,
)
ENTRY_CHUNK = 5000  # customers a scheduled trigger enters per transaction


class Runner:
    """One transaction's worth of journey work: read what is needed, step in memory, write in bulk."""

    def __init__(self, session, now: datetime) -> None:
        self.session, self.now = session, now
        self.batch = Batch(now)
        self.names: dict[int, str] = {}
        self.new: dict[str, tuple[Live, str | None, str | None]] = {}  # id -> (instance, key, trigger event)
        self.changed: dict[str, Live] = {}
        self.running: dict[str, list[Live]] = defaultdict(list)  # customer -> their unfinished instances
        self.finished: dict[str, list[Live]] = defaultdict(list)  # customer -> ended, not converted, recent
        self.entered: dict[tuple[int, str], dict[str | None, datetime]] = defaultdict(dict)  # last, per key
        self.timezones: dict[str, str | None] = {}
        self.used: set[tuple[int, str]] = set()  # (journey, message id) of the events that started an instance
        self.definitions: dict[tuple[int, int], Journey] = {}

    def load(self, where, *, lock: bool = False, limit: int | None = None) -> list[Live]:
        query = sa.select(*LIVE_COLUMNS).where(where)
        if limit:
            query = query.order_by(m.Instance.wake_at).limit(limit)
        if lock and self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return [
            Live(i, j, v, c, ctl, State.from_data(orjson.loads(s)), e)
            for i, j, v, c, ctl, s, e in self.session.execute(query)
        ]

    def know_customers(self, customers: list[str], *, journey_id: int | None = None) -> None:
        """What entering and goals need about these customers: unfinished instances, the recently finished
        ones a goal can still convert, last entries, timezones. `journey_id`: only entering that journey will
        follow, so its own instances are all that is read."""
        customers = [c for c in customers if c not in self.timezones]
        mine = sa.true() if journey_id is None else m.Instance.journey_id == journey_id
        for chunk in chunked(customers):
            for live in self.load(m.Instance.customer_id.in_(chunk) & mine & (m.Instance.status != "done")):
                self.running[live.customer_id].append(live)
            ended = (m.Instance.status == "done") & (m.Instance.outcome != "converted")
            recent = m.Instance.customer_id.in_(chunk) & ended & (m.Instance.ended_at >= self.now - GOAL_HORIZON)
            for live in self.load(recent) if journey_id is None else []:
                self.finished[live.customer_id].append(live)
            for j, c, key, at in self.session.execute(
                sa.select(
                    m.Instance.journey_id, m.Instance.customer_id, m.Instance.key, sa.func.max(m.Instance.entered_at)
                )
                .where(m.Instance.customer_id.in_(chunk), mine, m.Instance.test.is_(False))
                .group_by(m.Instance.journey_id, m.Instance.customer_id, m.Instance.key)
            ):
                self.entered[(j, c)][key] = at
            self.timezones.update(
                self.session.execute(sa.select(Customer.id, Customer.timezone).where(Customer.id.in_(chunk))).all()
            )

    def know_events(self, message_ids: list[str], journey_ids: list[int]) -> None:
        """Which of these events already started which of these journeys."""
        if not journey_ids:
            return
        for chunk in chunked(message_ids):
            self.used.update(
                self.session.execute(
                    sa.select(m.Instance.journey_id, m.Instance.trigger_event_id).where(
                        m.Instance.journey_id.in_(journey_ids),
                        m.Instance.trigger_event_id.in_(chunk),
                        m.Instance.trigger_event_id.is_not(None),
                    )
                ).all()
            )

    def journey(self, journey_id: int, version: int) -> Journey:
        key = (journey_id, version)
        if key not in self.definitions:
            self.definitions[key] = definition_of(self.session, journey_id, version)
        return self.definitions[key]

    def start(
        self,
        row: m.Journey,
        customer_id: str,
        key: str | None = None,
        trigger: dict[str, Any] | None = None,
        *,
        test_speed: float | None = None,
        event_id: str | None = None,
    ) -> Live | None:
        """A new instance, unless its triggering event (`event_id`, its message id) started one already, or
        re-entry, the concurrency limit or a running one for the key say no. A test run (`test_speed`: its waits
        that many times shorter) skips those rules and the control group."""
        if event_id is not None and (row.id, event_id) in self.used:
            return None
        if customer_id not in self.timezones:
            self.know_customers([customer_id])
        journey = self.journey(row.id, row.version)
        test = test_speed is not None
        running = [i.state for i in self.running[customer_id] if i.journey_id == row.id and not i.test]
        if not test and not admits(journey, running, self.entered[(row.id, customer_id)], key, self.now):
            return None
        control = not test and in_control(journey, customer_id)
        instance_id = new_id("jin")
        state, commands = step(
            journey,
            None,
            Start(
                instance_id,
                customer_id,
                key=key,
                control=control,
                timezone=self.timezones.get(customer_id),
                trigger=trigger,
                test=test,
                speed=test_speed or 1,
            ),
            self.now,
        )
        live = Live(instance_id, row.id, row.version, customer_id, control, state)
        self.names[row.id] = row.name
        self.batch.add(row.name, live, commands)
        self.new[instance_id] = (live, key, event_id)
        if event_id is not None:
            self.used.add((row.id, event_id))
        self.running[customer_id].append(live)
        if not test:
            self.entered[(row.id, customer_id)][key] = self.now
        return live

    def feed(self, live: Live, event: Input) -> State:
        """One input to an instance; its commands join the batch."""
        journey = self.journey(live.journey_id, live.version)
        was_done = live.state.status == "done"
        live.state, commands = step(journey, live.state, event, self.now)
        if was_done and not commands:  # a finished instance changes only when its goal converts it
            return live.state
        self.batch.add(journey.name, live, commands)
        if live.id not in self.new:
            self.changed[live.id] = live
        return live.state

    def finish(self) -> int:
        """Write everything; returns how many new instances were left out (another worker's, from the same event)."""
        for live, key, event_id in self.new.values():
            self.batch.started(live, key, event_id)
        for live in self.changed.values():
            self.batch.stepped(live)
        return len(self.batch.write(self.session))


def enter(session, row: m.Journey, customer_id: str, now: datetime, *, key: str | None = None) -> str | None:
    """Start an instance of the journey's current version for one customer; returns its id (None: kept out)."""
    return enter_many(session, row, [(customer_id, key)], now)[0]


def enter_many(session, row: m.Journey, entries: list[tuple[str, str | None]], now: datetime) -> list[str | None]:
    """Start instances for many customers at once (a few queries per 5,000); ids in the entries' order."""
    runner = Runner(session, now)
    runner.know_customers(sorted({c for c, _ in entries}), journey_id=row.id)
    lives = [runner.start(row, customer_id, key) for customer_id, key in entries]
    runner.finish()
    return [live.id if live else None for live in lives]


def enter_manually(
    session: Session,
    name: str,
    customer_id: str,
    *,
    key: str | None = None,
    test_speed: float | None = None,
    now: datetime,
) -> dict[str, Any]:
    """A manual or API trigger: the customer enters the active journey now, if its rules let them. A test
    run (`test_speed`) enters a draft or paused journey too, whatever the rules, never into the control
    group, with every wait `test_speed` times shorter; its messages go on the real channels (through the
    guards) and nothing of it counts in the journey's results."""
    row = service.get(session, name)
    if row.status != "active" and test_speed is None:
        raise ValidationFailed([{"field": "journey", "reason": f"{name} is {row.status}: activate it first"}])
    customer = canonical(session, customer_id)
    if customer is None:
        raise NotFound(f"no customer {customer_id!r}", field="customer")
    runner = Runner(session, now)
    live = runner.start(row, customer.id, key, test_speed=test_speed)
    runner.finish()
    return {
        "journey": name,
        "customer_id": customer.id,
        "instance": live.id if live else None,
        "reason": None if live else "already inside, or re-entry rules keep them out",
        "test": test_speed is not None,
    }


def run_due(uow: UnitOfWork, now: datetime, *, limit: int = 1000) -> int:
    """Wake the instances whose timer is due (a batch, one transaction); returns how many."""
    with uow.session() as session:
        runner = Runner(session, now)
        due = runner.load((m.Instance.status == "waiting") & (m.Instance.wake_at <= now), lock=True, limit=limit)
        for live in due:
            runner.feed(live, Wake())
        runner.finish()
        return len(due)


def on_events(uow: UnitOfWork, events: list[Logged], now: datetime) -> dict[str, int]:
    """Events that reached the log, in time order: they reach the running instances of their customers
    (goals, waits) and start the journeys they trigger."""
    counts = {"entered": 0, "advanced": 0}
    events = sorted(events, key=lambda e: e.timestamp)
    if not events:
        return counts
    with uow.session() as session:
        runner = Runner(session, now)
        active = list(session.scalars(sa.select(m.Journey).where(m.Journey.status == "active")))
        runner.know_customers(sorted({e.customer_id for e in events}))
        runner.know_events([e.message_id for e in events if e.message_id], [row.id for row in active])
        for event in events:
            # a message's own events (opened, clicked) reach only the instance that sent it
            sender = event.properties.get("instance_id") if event.event in MESSAGE_EVENTS else None
            for live in [*runner.running[event.customer_id], *runner.finished[event.customer_id]]:
                if live.state.outcome == "converted" or (sender and live.id != sender):
                    continue
                arrived = happened(
                    runner.journey(live.journey_id, live.version), event, key=live.state.key if sender else None
                )
                if arrived is not None:
                    runner.feed(live, arrived)
                    counts["advanced"] += 1
            for row in active:
                journey = runner.journey(row.id, row.version)
                found, key = matching(journey, event)
                started = found and runner.start(
                    row, event.customer_id, key, started_by(journey, event), event_id=event.message_id
                )
                if started:
                    counts["entered"] += 1
        counts["entered"] -= runner.finish()
    return counts


def decide(
    session: Session, approval_key: str, *, approved: bool, by: str, template: str | None = None, now: datetime
) -> dict[str, Any]:
    """A person's answer to an approval request; the instance goes on at once. Flushes."""
    request = session.get(m.ApprovalRequest, approval_key)
    if request is None:
        raise NotFound(f"no approval request {approval_key!r}", field="approval")
    if request.status != "pending":
        raise ValidationFailed([{"field": "approval", "reason": f"already {request.status} by {request.decided_by}"}])
    request.status = "approved" if approved else "rejected"
    request.decided_by, request.decided_at, request.template = by, now, template
    runner = Runner(session, now)
    live = runner.load(m.Instance.id == request.instance_id)[0]
    state = runner.feed(live, Decided(approved, template=template, by=by))
    runner.finish()
    return {
        "approval": approval_key,
        "status": request.status,
        "instance": live.id,
        "node": state.node,
        "instance_status": state.status,
    }


def resolve_branches(segments: Evaluator, now: datetime, *, limit: int = 1000) -> int:
    """Answer the branches instances wait at: one segment query per journey version and node, for all
    the customers there, outside the store's transaction (it reads the event log); then each instance
    goes on, if nothing else moved it meanwhile."""
    with segments.uow.session() as session:
        pending = session.execute(
            sa.select(m.Instance.id, m.Instance.customer_id, m.Instance.journey_id, m.Instance.version, m.Instance.node)
            .where(m.Instance.status == "evaluating")
            .limit(limit)
        ).all()
        groups: dict[tuple[int, int, str], list[tuple[str, str]]] = defaultdict(list)
        for instance_id, customer_id, journey_id, version, node in pending:
            groups[(journey_id, version, node)].append((instance_id, customer_id))
        rules = {g: definition_of(session, g[0], g[1]).nodes[g[2]].rule for g in groups}
    if not pending:
        return 0
    segments.sync(sorted({c for _, c, *_ in pending}))
    answers: dict[str, tuple[str, bool]] = {}
    for group, members in groups.items():
        customers = sorted({c for _, c in members})
        found = set(
            segments.members({"name": "branch", "rule": rules[group]}, only=customers, sync=False)["customer_id"]
        )
        answers.update({i: (group[2], c in found) for i, c in members})
    with segments.uow.session() as session:
        runner = Runner(session, now)
        for live in runner.load(m.Instance.id.in_(list(answers)) & (m.Instance.status == "evaluating"), lock=True):
            node, answer = answers[live.id]
            if live.state.node == node:
                runner.feed(live, Evaluated(answer))
        runner.finish()
    return len(pending)


def scheduled_entries(segments: Evaluator, trigger, today: datetime) -> list[tuple[str, str | None]] | None:
    """(customer, key) of everyone a scheduled trigger starts today; None for a trigger that is not scheduled."""
    if isinstance(trigger, ReplenishmentTrigger):
        with segments.log.reader() as r:
            found = replenishment_due(r.events, trigger, today).execute()
        return list(zip(found["customer_id"], found["sku"]))
    plan = scheduled_rule(trigger, today)
    if plan is None:
        return None
    rule, moment = plan
    found = segments.members({"name": "trigger", "rule": rule}, as_of=moment)
    return [(cid, None) for cid in found["customer_id"]]


def run_scheduled(segments: Evaluator, now: datetime, *, chunk: int = ENTRY_CHUNK) -> dict[str, int]:
    """Start today's instances of every active journey with a scheduled trigger, `chunk` customers per
    transaction (a round stopped half-way is finished by the next: the entry rules keep out those already
    in); returns entries per journey."""
    today = datetime.combine(now.date(), datetime.min.time())
    out: dict[str, int] = {}
    with segments.uow.session() as session:
        rows = list(session.scalars(sa.select(m.Journey).where(m.Journey.status == "active")))
        triggers = [(row.id, row.name, definition_of(session, row.id, row.version).trigger) for row in rows]
    for journey_id, name, trigger in triggers:
        entries = scheduled_entries(segments, trigger, today)
        if entries is None:
            continue
        out[name] = 0
        for start in range(0, len(entries), chunk):
            with segments.uow.session() as session:
                entered = enter_many(session, session.get(m.Journey, journey_id), entries[start : start + chunk], now)
            out[name] += sum(1 for i in entered if i)
    return out
