"""What happens to a message after it leaves: delivered, opened, clicked, bounced, complained,
unsubscribed. `record` keeps it in three places in the caller's transaction: a `message_events`
row, the message's status (it only moves forward), and, the first time of each kind, a
"Message <Kind>" event in the inbox on its way to the log, where segments and journeys see it.
The signed links that lead here are made by `links.Links`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.channels import service as channels
from boomerang.core.errors import ValidationFailed
from boomerang.core.vocab import CHANNELS
from boomerang.customers import profiles
from boomerang.customers.models import Customer
from boomerang.db import chunked
from boomerang.events import own
from boomerang.messaging.models import Message, MessageEvent

KINDS = ("delivered", "opened", "clicked", "bounced", "complained", "unsubscribed")
# a message's status only moves right: an open after a click leaves it clicked
PROGRESS = ("queued", "sending", "sent", "delivered", "opened", "clicked", "bounced", "complained", "unsubscribed")
EVENT_NAMES = {kind: f"Message {kind.capitalize()}" for kind in KINDS}


def record(session: Session, message: Message, kind: str, *, at: datetime, detail: str | None = None) -> bool:
    """Keep that `kind` happened to `message`; False when it adds nothing new (a second open is still kept
    as a row but changes no status and writes no event). Unsubscribes and complaints withdraw consent."""
    if kind not in KINDS:
        raise ValidationFailed([{"field": "kind", "reason": f"unknown delivery event (one of {', '.join(KINDS)})"}])
    first = (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(MessageEvent)
            .where(
                MessageEvent.message_id == message.id,
                MessageEvent.kind == kind,
                *([MessageEvent.detail == detail] if kind == "clicked" else []),
            )
        )
        == 0
    )
    session.add(MessageEvent(message_id=message.id, kind=kind, detail=detail, at=at))
    if message.status in PROGRESS and PROGRESS.index(kind) > PROGRESS.index(message.status):
        message.status = kind
    if kind in ("unsubscribed", "complained") and message.channel in CHANNELS:
        customer = session.get(Customer, message.customer_id)
        if customer is not None:
            profiles.set_consent(session, customer, message.channel, False, source=f"{kind}:{message.channel}", at=at)
    if first:
        own.log_later(session, [_event(message, kind, at, detail)])
    session.flush()
    return first


def _event(message: Message, kind: str, at: datetime, detail: str | None) -> dict:
    suffix = f":{hashlib.sha256(detail.encode()).hexdigest()[:16]}" if kind == "clicked" and detail else ""
    props = {
        "message_key": message.key,
        "message_id": message.id,
        "channel": message.channel,
        "template": message.template,
        "source": message.source,
        "instance_id": message.instance_id,
    }
    if kind == "clicked" and detail:
        props["url"] = detail
    elif detail:
        props["reason"] = detail[:500]
    return own.internal(
        f"message:{message.id}:{kind}{suffix}",
        EVENT_NAMES[kind],
        message.customer_id,
        at=at,
        source="messaging",
        properties=props,
    )


def record_for(
    session: Session, message_id: int, kind: str, *, at: datetime, detail: str | None = None
) -> Message | None:
    """`record` for the message with this id (from a signed link); None when it no longer exists."""
    message = session.get(Message, message_id)
    if message is not None:
        record(session, message, kind, at=at, detail=detail)
    return message


def record_receipts(session: Session, channel: str, receipts: list[tuple[str, str, datetime, str | None]]) -> int:
    """A provider's reports (provider id, kind, at, detail) about messages it was given on `channel`;
    how many named a message sent here (the others are ignored)."""
    found = {
        m.provider_id: m
        for chunk in chunked({r[0] for r in receipts})
        for m in session.scalars(sa.select(Message).where(Message.channel == channel, Message.provider_id.in_(chunk)))
    }
    recorded = 0
    for provider_id, kind, at, detail in receipts:
        if (message := found.get(provider_id)) is not None:
            record(session, message, kind, at=at, detail=detail)
            recorded += 1
    return recorded


def message(session: Session, message_id: int) -> Message | None:
    return session.get(Message, message_id)


# -- the in-app inbox, as the customer's app reads it ----------------------------------------------


def inbox_items(session: Session, customer_id: str, *, now: datetime, unread: bool = False) -> list[dict]:
    """The customer's unexpired in-app messages, newest first."""
    return [
        {
            "id": i.id,
            "title": i.title,
            "body": i.body,
            "url": i.url,
            "created_at": i.created_at.isoformat(),
            "expires_at": i.expires_at.isoformat() if i.expires_at else None,
            "read": i.read_at is not None,
        }
        for i in channels.inbox(session, customer_id, now=now, unread=unread)
    ]


def inbox_action(session: Session, customer_id: str, item_id: int, *, clicked: bool, now: datetime) -> None:
    """An item read (an open of its message) or clicked (a click on its link)."""
    item = channels.mark(session, customer_id, item_id, clicked=clicked, now=now)
    record_for(session, item.message_id, "opened", at=now)
    if clicked:
        record_for(session, item.message_id, "clicked", at=now, detail=item.url)
