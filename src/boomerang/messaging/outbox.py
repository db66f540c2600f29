"""The one way a message is queued: a row in the outbox (`messages`), keyed by an idempotency key, so
that a journey step replayed after a crash, a campaign started twice or a retried request queues it once.
The dispatcher takes it from there (dispatch.Dispatcher)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from boomerang.customers.merge import move_rows
from boomerang.db import insert_ignore
from boomerang.messaging.models import Message


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


def queue(session: Session, rows: list[dict]) -> None:
    """Put messages in the outbox; a key already there is not queued again."""
    if rows:
        session.connection().execute(insert_ignore(session, Message.__table__), rows)


def follow_merge(session: Session, from_id: str, into_id: str, now: datetime) -> None:
    """The merged profile's messages are the surviving profile's: they count for its caps, and show in its log."""
    move_rows(session, Message.customer_id, from_id, into_id)
