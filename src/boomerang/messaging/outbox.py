"""The one way a message is queued: a row in the outbox (`messages`), keyed by an idempotency key, so
that a journey step replayed after a crash, a campaign started twice or a retried request queues it once.
The dispatcher takes it from there (dispatch.Dispatcher)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.privacy import analytics_trigger
from boomerang.customers.merge import move_rows
from boomerang.customers.privacy import hooks as privacy
from boomerang.db import executemany, in_chunks, insert_ignore
from boomerang.messaging.models import Message, MessageEvent

ERASED = "customer erased"  # the reason of the queued messages an erasure suppresses


def message(
    *,
    key: str,
    source: str,
    customer_id: str,
    channels: Sequence[str],
    template: str,
    category: str,
    now: datetime,
    send_after: datetime | None = None,
    when_capped: str = "defer",
    instance_id: str | None = None,
    node: str | None = None,
    variant: str | None = None,
    subject: str | None = None,
    trigger: dict | None = None,
    held_out: str | None = None,
) -> dict:
    """An outbox row; `subject`: what the message is about (a journey's product, cart or order), `trigger`: the
    event that started its journey ({"event", "key", "properties"}); `held_out`: why it is logged and never
    sent (a control group, a holdout)."""
    return {
        "key": key,
        "source": source,
        "instance_id": instance_id,
        "node": node,
        "customer_id": customer_id,
        "channels": list(channels),
        "channel": None,
        "template": template,
        "category": category,
        "when_capped": when_capped,
        "status": "held_out" if held_out else "queued",
        "reason": held_out,
        "send_after": send_after or now,
        "attempts": 0,
        "created_at": now,
        "sent_at": None,
        "variant": variant,
        "subject": subject,
        "trigger": trigger,
        "provider_id": None,
    }


INSERTS = {name: insert_ignore(name, Message.__table__) for name in ("sqlite", "postgresql")}
JSON_FIELDS = ("channels", "trigger")


def queue(session: Session, rows: list[dict]) -> None:
    """Put messages in the outbox; a key already there is not queued again. On SQLite straight through the
    driver, JSON written once with orjson: SQLAlchemy's per-row JSON handling cost more than SQLite's work."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        rows = [{**row, **{f: _json(row[f]) for f in JSON_FIELDS}} for row in rows]
    executemany(session, INSERTS[dialect], rows)


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def follow_merge(session: Session, from_id: str, into_id: str, now: datetime) -> None:
    """The merged profile's messages are the surviving profile's: they count for its caps, and show in its log."""
    move_rows(session, Message.customer_id, from_id, into_id)


def export_customer(session: Session, customer_ids: list[str]) -> dict[str, Any]:
    """The customers' messages (the outbox and delivery log), each with what happened to it after it left
    (a privacy export's section)."""
    messages = privacy.rows_of(session, Message.customer_id, customer_ids, order_by=Message.id)
    events: dict[int, list[dict[str, Any]]] = {}
    for row in in_chunks(
        session,
        lambda ids: sa.select(MessageEvent).where(MessageEvent.message_id.in_(ids)).order_by(MessageEvent.id),
        [m["id"] for m in messages],
    ):
        events.setdefault(row.MessageEvent.message_id, []).append(
            privacy.as_dict(row.MessageEvent, leave=("message_id",))
        )
    for message in messages:
        message["events"] = events.get(message["id"], [])
    return {"messages": messages}


def erase_customer(session: Session, customer_id: str, pseudonym: str, now: datetime) -> privacy.Tally:
    """An erased customer's queued messages are suppressed; every message stays for campaign and journey
    results, under the pseudonym, its trigger stripped to what counts need and its events' details (the link
    clicked, a bounce's diagnostic with the address) gone."""
    mine = Message.customer_id == customer_id
    options = {"synchronize_session": False}
    queued = session.execute(
        sa.update(Message).where(mine, Message.status == "queued").values(status="suppressed", reason=ERASED),
        execution_options=options,
    ).rowcount
    details = session.execute(
        sa.update(MessageEvent)
        .where(MessageEvent.message_id.in_(sa.select(Message.id).where(mine)), MessageEvent.detail.is_not(None))
        .values(detail=None),
        execution_options=options,
    ).rowcount
    for message in session.scalars(sa.select(Message).where(mine, Message.trigger.is_not(None))):
        message.trigger = analytics_trigger(message.trigger)
    session.flush()
    privacy.rename_in(session, Message.key, customer_id, pseudonym)
    moved = privacy.move_to(session, Message.customer_id, customer_id, pseudonym)
    return {
        "suppressed": {"queued_messages": queued},
        "deleted": {"message_details": details},
        "pseudonymised": {"messages": moved},
    }
