"""The inbox in a privacy request: a customer's events accepted but not yet in the log (those still in the intake
are taken into the inbox first), and the bad messages set aside that name them.

On erasure inbox rows are stripped as the log's events are (events.log.EventLog.erase_customers) and, if not
processed yet, marked processed under the pseudonym (processing would bring the person back from their user
id); set-aside messages that carry one of their ids or addresses are deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.privacy import analytics_properties
from boomerang.customers.models import Customer, Identity
from boomerang.customers.privacy import hooks as privacy
from boomerang.events import intake
from boomerang.events.models import InboxEvent, SetAsideMessage


@dataclass
class _Ids:
    """What the customers are known by in events: user ids, anonymous ids, and every id or address."""

    users: set[str]
    visitors: set[str]
    all: set[str]

    @classmethod
    def of(cls, session: Session, customer_ids: list[str]) -> _Ids:
        profiles = session.execute(
            sa.select(Customer.external_id, Customer.email, Customer.phone).where(Customer.id.in_(customer_ids))
        ).all()
        identities = session.execute(
            sa.select(Identity.kind, Identity.value).where(Identity.customer_id.in_(customer_ids))
        ).all()
        users = {p.external_id for p in profiles if p.external_id} | {v for k, v in identities if k == "user"}
        visitors = {v for k, v in identities if k == "anonymous"}
        addresses = {a for p in profiles for a in (p.email, p.phone) if a} | {v for _, v in identities}
        return cls(users, visitors, users | visitors | addresses)

    def inbox(self, customer_ids: list[str]) -> sa.ColumnElement[bool]:
        """Inbox rows resolved to the customers, or waiting to be: with their user id, or with their anonymous id
        and no user id (someone else who signs in on their device is someone else)."""
        visiting = InboxEvent.anonymous_id.in_(sorted(self.visitors)) & InboxEvent.user_id.is_(None)
        waiting = InboxEvent.processed_at.is_(None) & (InboxEvent.user_id.in_(sorted(self.users)) | visiting)
        return InboxEvent.customer_id.in_(customer_ids) | waiting

    def set_aside(self) -> sa.ColumnElement[bool]:
        """Set-aside messages whose payload (JSON text) has one of the ids or addresses as a value."""
        quoted = [orjson.dumps(value).decode() for value in sorted(self.all)]
        return sa.or_(sa.false(), *(SetAsideMessage.payload.contains(q, autoescape=True) for q in quoted))


def export_customer(session: Session, customer_ids: list[str]) -> dict[str, Any]:
    """The customers' events still in the inbox, and the bad messages set aside that name them (a privacy
    export's sections)."""
    intake.take_into(session)
    ids = _Ids.of(session, customer_ids)
    pending = []
    for row in session.scalars(sa.select(InboxEvent).where(ids.inbox(customer_ids)).order_by(InboxEvent.id)):
        event = privacy.as_dict(row, leave=("id",))
        event["properties"], event["context"] = orjson.loads(row.properties), orjson.loads(row.context)
        pending.append(event)
    set_aside = session.scalars(sa.select(SetAsideMessage).where(ids.set_aside()).order_by(SetAsideMessage.id))
    return {"pending_events": pending, "set_aside_events": [privacy.as_dict(row) for row in set_aside]}


def erase_customer(session: Session, customer_id: str, pseudonym: str, now: datetime) -> privacy.Tally:
    """The customer's inbox rows keep what the log would keep of them, under the pseudonym; the set-aside
    messages naming them go."""
    intake.take_into(session)
    ids = _Ids.of(session, [customer_id])
    rows = session.scalars(sa.select(InboxEvent).where(ids.inbox([customer_id]))).all()
    for row in rows:
        row.customer_id, row.user_id, row.anonymous_id = pseudonym, None, None
        row.message_id = row.message_id.replace(customer_id, pseudonym)
        row.properties = orjson.dumps(analytics_properties(orjson.loads(row.properties or "{}"))).decode()
        row.context = "{}"
        row.processed_at = row.processed_at or now
    session.flush()
    set_aside = session.execute(
        sa.delete(SetAsideMessage).where(ids.set_aside()), execution_options={"synchronize_session": False}
    ).rowcount
    return {"pseudonymised": {"pending_events": len(rows)}, "deleted": {"set_aside_events": set_aside}}
