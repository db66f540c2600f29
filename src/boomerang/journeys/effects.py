"""What steps change, written in bulk: instance rows, and the rows of what their commands asked for.

A `Batch` collects, for many instances at once, the new instances, the updated ones and every
effect (messages into the outbox, conversions, approval requests, loyalty entries, profile
attributes); `write` sends each kind as one executemany in the caller's transaction. Effects are
keyed by idempotency keys and inserted with ON CONFLICT DO NOTHING, so writing twice writes once. So
are new instances started by an event: where another worker started one from the same event first,
this batch's instance and everything it asked for are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from boomerang.customers import service as customers
from boomerang.customers.models import Customer
from boomerang.db import executemany, insert_ignore, insert_new
from boomerang.journeys import models as m
from boomerang.journeys.engine import (
    AskApproval,
    CallWebhook,
    Command,
    Converted,
    LoyaltyAction,
    SendMessage,
    SetAttribute,
    State,
)
from boomerang.loyalty import service as loyalty
from boomerang.messaging import outbox

INSTANCE_FIELDS = ("status", "node", "wake_at", "waiting_for", "outcome", "state", "updated_at", "ended_at", "test")
_TABLE = m.Instance.__table__
STEPPED = (
    sa.update(_TABLE).where(_TABLE.c.id == sa.bindparam("b_id")).values({f: sa.bindparam(f) for f in INSTANCE_FIELDS})
)


def source_of(journey_name: str, *, test: bool = False) -> str:
    """What a journey's messages and codes say they came from; a test run's are kept apart from its results."""
    return f"{'journey-test' if test else 'journey'}:{journey_name}"


@dataclass
class Live:
    """An instance as the runtime holds it between reading and writing."""

    id: str
    journey_id: int
    version: int
    customer_id: str
    control: bool
    state: State
    ended_at: datetime | None = None

    @property
    def test(self) -> bool:
        return self.state.test


@dataclass
class Batch:
    now: datetime
    new: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    conversions: list[dict[str, Any]] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    loyalty: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (instance, entry)
    attributes: list[tuple[str, str, str, Any]] = field(default_factory=list)  # (instance, customer, name, value)

    def instance_row(self, live: Live) -> dict[str, Any]:
        s = live.state
        if s.status == "done" and live.ended_at is None:
            live.ended_at = self.now
        return {
            "status": s.status,
            "node": s.node,
            "wake_at": s.wake_at,
            "waiting_for": s.waiting_for,
            "outcome": s.outcome,
            "state": s.to_data(),
            "updated_at": self.now,
            "ended_at": live.ended_at,
            "test": s.test,
        }

    def started(self, live: Live, key: str | None, event_id: str | None = None) -> None:
        self.new.append(
            {
                "id": live.id,
                "journey_id": live.journey_id,
                "version": live.version,
                "customer_id": live.customer_id,
                "key": key,
                "trigger_event_id": event_id,
                "control": live.control,
                "entered_at": self.now,
                **self.instance_row(live),
            }
        )

    def stepped(self, live: Live) -> None:
        self.changed.append({"b_id": live.id, **self.instance_row(live)})

    def add(self, journey_name: str, live: Live, commands: list[Command]) -> None:
        """The rows of the commands (branches are answered later, see runtime.resolve_branches)."""
        source, now = source_of(journey_name, test=live.test), self.now
        for c in commands:
            if isinstance(c, SendMessage | CallWebhook):
                webhook = isinstance(c, CallWebhook)
                self.messages.append(
                    outbox.message(
                        key=c.key,
                        source=source,
                        customer_id=live.customer_id,
                        channels=["webhook"] if webhook else c.channels,
                        template=c.url if webhook else c.template,
                        category="transactional" if webhook else c.category,
                        when_capped="defer" if webhook else c.when_capped,
                        now=now,
                        instance_id=live.id,
                        node=c.node,
                        subject=live.state.key,
                        trigger=live.state.trigger,
                        held_out="journey control group" if c.held_out else None,
                    )
                )
            elif isinstance(c, Converted) and not live.test:
                self.conversions.append(
                    {
                        "instance_id": live.id,
                        "journey_id": live.journey_id,
                        "customer_id": live.customer_id,
                        "node": c.node,
                        "message_key": c.last_message,
                        "control": live.control,
                        "revenue": c.revenue,
                        "at": now,
                    }
                )
            elif isinstance(c, AskApproval):
                self.approvals.append(
                    {
                        "key": c.key,
                        "instance_id": live.id,
                        "journey_id": live.journey_id,
                        "node": c.node,
                        "customer_id": live.customer_id,
                        "note": c.note,
                        "status": "pending",
                        "created_at": now,
                    }
                )
            elif isinstance(c, LoyaltyAction) and not c.held_out:
                if c.action == "promo_code":
                    row = loyalty.code_row(
                        c.key, live.customer_id, c.discount_percent, c.valid_days, source=source, now=now
                    )
                else:
                    row = loyalty.points_row(c.key, live.customer_id, c.points, source=source, now=now)
                self.loyalty.append((live.id, row))
            elif isinstance(c, SetAttribute):
                self.attributes.append((live.id, live.customer_id, c.attribute, c.value))

    @staticmethod
    def _still_reachable(session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Points and codes pass the same check as the messages that announce them: nothing for a customer who
        has withdrawn every consent (a code issued just after an unsubscribe)."""
        if not rows:
            return rows
        reachable = customers.consenting(session, {r["customer_id"] for r in rows})
        return [r for r in rows if r["customer_id"] in reachable]

    def write(self, session) -> set[str]:
        """Everything, in the caller's transaction; returns the new instances left out, their triggering event
        having started the journey already (in another worker)."""
        conn = session.connection()
        lost = self._insert_new(session)
        if lost:
            self._leave_out(lost)
        executemany(session, STEPPED, _plain_state(session, self.changed))
        outbox.queue(session, self.messages)
        for model, rows in ((m.Conversion, self.conversions), (m.ApprovalRequest, self.approvals)):
            if rows:
                conn.execute(insert_ignore(session, model.__table__), rows)
        loyalty.write(session, self._still_reachable(session, [row for _, row in self.loyalty]))
        for _, customer_id, attribute, value in self.attributes:
            customer = session.get(Customer, customer_id)
            if customer is not None:
                customer.attributes = {**(customer.attributes or {}), attribute: value}
                customer.updated_at = self.now
        session.flush()
        return lost

    def _insert_new(self, session) -> set[str]:
        """Insert the new instances but those whose (journey, triggering event) is taken; returns the ids of those.
        On PostgreSQL a worker inserting the same pair waits for this transaction, then finds it taken; both
        insert in the same order, so that they never deadlock."""
        if not self.new:
            return set()
        rows = sorted(self.new, key=lambda r: (r["trigger_event_id"] or "", r["journey_id"]))
        inserted = insert_new(session, _TABLE, "id", _plain_state(session, rows))
        return {row["id"] for row in self.new} - inserted

    def _leave_out(self, lost: set[str]) -> None:
        """Forget what instances that were not inserted asked for."""
        self.new = [r for r in self.new if r["id"] not in lost]
        self.changed = [r for r in self.changed if r["b_id"] not in lost]
        self.messages = [r for r in self.messages if r["instance_id"] not in lost]
        self.conversions = [r for r in self.conversions if r["instance_id"] not in lost]
        self.approvals = [r for r in self.approvals if r["instance_id"] not in lost]
        self.loyalty = [(i, r) for i, r in self.loyalty if i not in lost]
        self.attributes = [a for a in self.attributes if a[0] not in lost]


def _plain_state(session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Instance rows as the SQLite fast path takes them (db.executemany, db.insert_new): the state as JSON text,
    written once with orjson. PostgreSQL's rows go through SQLAlchemy as they are."""
    if not rows or session.get_bind().dialect.name != "sqlite":
        return rows
    return [{**row, "state": orjson.dumps(row["state"]).decode()} for row in rows]
