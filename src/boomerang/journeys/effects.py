"""What steps change, written in bulk: instance rows, and the rows of what their commands asked for.

A `Batch` collects, for many instances at once, the new instances, the updated ones and every
effect (messages into the outbox, conversions, approval requests, loyalty entries, profile
attributes); `write` sends each kind as one executemany in the caller's transaction. Effects are
keyed by idempotency keys and inserted with ON CONFLICT DO NOTHING, so writing twice writes once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from boomerang.customers import service as customers
from boomerang.customers.models import Customer
from boomerang.db import insert_ignore
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
    loyalty: list[dict[str, Any]] = field(default_factory=list)
    attributes: list[tuple[str, str, Any]] = field(default_factory=list)

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

    def started(self, live: Live, key: str | None) -> None:
        self.new.append(
            {
                "id": live.id,
                "journey_id": live.journey_id,
                "version": live.version,
                "customer_id": live.customer_id,
                "key": key,
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
                self.loyalty.append(row)
            elif isinstance(c, SetAttribute):
                self.attributes.append((live.customer_id, c.attribute, c.value))

    @staticmethod
    def _still_reachable(session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Points and codes pass the same check as the messages that announce them: nothing for a customer who
        has withdrawn every consent (a code issued just after an unsubscribe)."""
        if not rows:
            return rows
        reachable = customers.consenting(session, {r["customer_id"] for r in rows})
        return [r for r in rows if r["customer_id"] in reachable]

    def write(self, session) -> None:
        conn = session.connection()
        if self.new:
            conn.execute(sa.insert(m.Instance.__table__), self.new)
        if self.changed:
            table = m.Instance.__table__
            conn.execute(
                sa.update(table)
                .where(table.c.id == sa.bindparam("b_id"))
                .values({f: sa.bindparam(f) for f in INSTANCE_FIELDS}),
                self.changed,
            )
        outbox.queue(session, self.messages)
        for model, rows in ((m.Conversion, self.conversions), (m.ApprovalRequest, self.approvals)):
            if rows:
                conn.execute(insert_ignore(session, model.__table__), rows)
        loyalty.write(session, self._still_reachable(session, self.loyalty))
        for customer_id, attribute, value in self.attributes:
            customer = session.get(Customer, customer_id)
            if customer is not None:
                customer.attributes = {**(customer.attributes or {}), attribute: value}
                customer.updated_at = self.now
        session.flush()
