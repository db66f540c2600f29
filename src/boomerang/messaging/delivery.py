"""Sending one message now (`send_test`), previewing a template with a real customer's data, and the
delivery log with its filters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.config import MessagingSettings
from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.core.ids import new_id
from boomerang.customers.models import Customer
from boomerang.messaging import outbox, service, templates
from boomerang.messaging.context import ContextLoader, shop_data
from boomerang.messaging.dispatch import Dispatcher
from boomerang.messaging.models import Message, MessageEvent
from boomerang.messaging.picks import Recommend

SAMPLE = {
    "first_name": "Olena",
    "customer": {"id": "sample", "first_name": "Olena"},
    "currency": "EUR",
    "order": {
        "id": "1001",
        "total": 59.9,
        "currency": "EUR",
        "items": [{"name": "Ceramic mug", "quantity": 2, "price": 12.5}],
    },
    "loyalty": {"points": 120, "promo_code": "WELCOME-7Q2K", "discount_percent": 10},
    "recommendations": [{"name": "Tea set", "price": 34.0, "currency": "EUR", "url": "https://shop.example.com/p/1"}],
    "favourite_category": "Kitchen",
}
STATUSES = (
    "queued",
    "sending",
    "sent",
    "delivered",
    "opened",
    "clicked",
    "bounced",
    "complained",
    "unsubscribed",
    "suppressed",
    "held_out",
    "failed",
)


def _sample_recommend(block: str, size: int = 4) -> list[dict[str, Any]]:
    """The sample customer's `recommend(block, size)`: the sample's products, whatever the block."""
    return SAMPLE["recommendations"][:size]


def send_test(
    dispatcher: Dispatcher, *, channel: str, customer_id: str, template: str, now: datetime
) -> dict[str, Any]:
    """Send `template` to the customer on `channel` now, as a transactional message, through the dispatcher's
    path: consent and an address are still required, caps and quiet hours are not. The message is kept in the
    delivery log."""
    with dispatcher.uow.session() as session:
        if session.get(Customer, customer_id) is None:
            raise NotFound(f"no customer {customer_id!r}", field="customer")
        service.get(session, template)
    row = outbox.message(
        key=f"test:{new_id('msg')}",
        source="test",
        customer_id=customer_id,
        channels=[channel],
        template=template,
        category="transactional",
        now=now,
    )
    message = dispatcher.send_now(row, now=now)
    return {
        "key": message.key,
        "status": message.status,
        "channel": message.channel,
        "reason": message.reason,
        "provider_id": message.provider_id,
    }


def test_sent(session: Session, key: str) -> dict[str, Any] | None:
    """What became of the test message `key` (None when no test message has that key)."""
    message = session.scalar(sa.select(Message).where(Message.key == key, Message.source == "test"))
    if message is None:
        return None
    return {
        "key": message.key,
        "customer_id": message.customer_id,
        "template": message.template,
        "channels": message.channels,
        "status": message.status,
        "channel": message.channel,
        "reason": message.reason,
        "provider_id": message.provider_id,
    }


def preview(
    session: Session,
    shop: MessagingSettings,
    template: str | dict[str, Any],
    *,
    customer_id: str | None = None,
    channels: list[str] | None = None,
    now: datetime,
    recommend: Recommend | None = None,
) -> dict[str, Any]:
    """A template (saved, or a definition being edited) rendered for each channel with a customer's data
    (a sample customer when none is given), without sending or saving anything; a customer's recommendations come
    from `recommend` as they would at send time (the shop's best sellers without it), the sample's are made up."""
    definition = (
        service.as_dict(service.get(session, template)) if isinstance(template, str) else service.validate(template)
    )
    if customer_id:
        if session.get(Customer, customer_id) is None:
            raise NotFound(f"no customer {customer_id!r}", field="customer")
        data = ContextLoader(session, shop, now=now, recommend=recommend).load({customer_id})[customer_id]
    else:
        data = {**SAMPLE, "shop": shop_data(shop), "recommend": _sample_recommend}
    locale = templates.choose_locale(definition["locales"], data.get("locale"), definition["default_locale"])
    out = {}
    for channel in channels or [c for c in templates.CHANNEL_FIELDS if c != "webhook"]:
        if channel not in templates.CHANNEL_FIELDS:
            raise ValidationFailed([{"field": "channel", "reason": f"unknown channel {channel!r}"}])
        try:
            c = templates.render(
                definition["locales"],
                channel,
                locale,
                {**data, "links": {"preferences": "#preferences", "unsubscribe": "#unsubscribe"}},
            )
            out[channel] = {
                "subject": c.subject,
                "text": c.text,
                "html": c.html,
                "url": c.url,
                "buttons": [{"label": b[0], "url": b[1]} for b in c.buttons],
            }
        except ValidationFailed as exc:
            out[channel] = {"error": exc.message}
    return {"template": definition["name"], "locale": locale, "customer": customer_id, "channels": out}


def log(
    session: Session,
    *,
    status: str | None = None,
    channel: str | None = None,
    source: str | None = None,
    customer_id: str | None = None,
    template: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """The delivery log, newest first, with filters; counts per status for the same filters."""
    if status and status not in STATUSES:
        raise ValidationFailed([{"field": "status", "reason": f"one of {', '.join(STATUSES)}"}])
    if not 1 <= limit <= 1000:
        raise ValidationFailed([{"field": "limit", "reason": "between 1 and 1000"}])
    filters = [
        c
        for c in (
            Message.channel == channel if channel else None,
            Message.source == source if source else None,
            Message.customer_id == customer_id if customer_id else None,
            Message.template == template if template else None,
            Message.created_at >= since if since else None,
        )
        if c is not None
    ]
    counts = dict(
        session.execute(sa.select(Message.status, sa.func.count()).where(*filters).group_by(Message.status)).all()
    )
    rows = list(
        session.scalars(
            sa.select(Message)
            .where(*filters, *([Message.status == status] if status else []))
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )
    events: dict[int, list] = {}
    for e in session.scalars(
        sa.select(MessageEvent).where(MessageEvent.message_id.in_([r.id for r in rows])).order_by(MessageEvent.at)
    ):
        events.setdefault(e.message_id, []).append({"kind": e.kind, "at": e.at.isoformat(), "detail": e.detail})
    return {
        "counts": counts,
        "messages": [
            {
                "id": r.id,
                "key": r.key,
                "source": r.source,
                "customer_id": r.customer_id,
                "channel": r.channel,
                "channels": r.channels,
                "template": r.template,
                "category": r.category,
                "status": r.status,
                "reason": r.reason,
                "variant": r.variant,
                "attempts": r.attempts,
                "created_at": r.created_at.isoformat(),
                "send_after": r.send_after.isoformat(),
                "sent_at": r.sent_at.isoformat() if r.sent_at else None,
                "events": events.get(r.id, []),
            }
            for r in rows
        ],
    }


def of_customer(session: Session, customer_id: str, *, limit: int) -> list[Message]:
    """A customer's latest messages, newest first."""
    return list(
        session.scalars(
            sa.select(Message)
            .where(Message.customer_id == customer_id)
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(limit)
        )
    )
