"""Small builders for messaging tests: customers with consents, a template, a computed segment, a message."""

from __future__ import annotations

from datetime import datetime

from boomerang.customers.models import Consent, Customer
from boomerang.messaging import service as templates
from boomerang.messaging.models import Message
from boomerang.segments.models import Segment, SegmentMember

NOW = datetime(2026, 3, 10, 12, 0)  # noon UTC: daytime where the timezone is unknown

GREETING = {
    "name": "greeting",
    "title": "Greeting",
    "topic": "offers",
    "default_locale": "en",
    "locales": {
        "en": {
            "subject": "Hello {{ first_name }}",
            "text": "You have {{ loyalty.points }} {{ loyalty.points|plural(one='point', other='points') }}.",
            "url": "{{ shop.url }}/sale",
            "email": {"html": '<p>Hi {{ first_name }}</p><a href="{{ shop.url }}/sale">Sale</a>'},
            "telegram": {
                "text": "<b>Hi {{ first_name }}</b>",
                "buttons": [{"label": "Open", "url": "{{ shop.url }}/sale"}],
            },
        },
        "uk": {
            "subject": "Вітаємо, {{ first_name }}",
            "text": "У вас {{ loyalty.points }} {{ loyalty.points|plural(one='бал', few='бали', many='балів') }}.",
        },
    },
}


def add_customer(
    session, cid, *, consents=("email",), email="x", phone=None, telegram=None, tz=None, locale=None, first_name="Ann"
):
    session.add(
        Customer(
            id=cid,
            email=f"{cid}@example.com" if email == "x" else email,
            phone=phone,
            telegram_chat_id=telegram,
            timezone=tz,
            locale=locale,
            first_name=first_name,
            attributes={},
            created_at=NOW,
            updated_at=NOW,
        )
    )
    session.flush()
    for channel in consents:
        session.add(Consent(customer_id=cid, channel=channel, granted=True, source="test", updated_at=NOW))
    session.flush()


def add_template(session, definition=GREETING):
    return templates.save(session, definition, now=NOW)


def add_segment(session, name, members):
    segment = Segment(
        name=name,
        definition={"event": "Order Completed"},
        triggers=[],
        expires=False,
        size=len(members),
        refreshed_at=NOW,
        created_at=NOW,
        updated_at=NOW,
    )
    session.add(segment)
    session.flush()
    for cid in members:
        session.add(SegmentMember(segment_id=segment.id, customer_id=cid, entered_at=NOW))
    session.flush()
    return segment


def queue(
    session, key, cid, *, channels=("email",), template="greeting", category="triggered", instance_id=None, subject=None
):
    message = Message(
        key=key,
        source="journey:test",
        instance_id=instance_id,
        subject=subject,
        node="n",
        customer_id=cid,
        channels=list(channels),
        template=template,
        category=category,
        when_capped="defer",
        status="queued",
        send_after=NOW,
        attempts=0,
        created_at=NOW,
    )
    session.add(message)
    session.flush()
    return message
