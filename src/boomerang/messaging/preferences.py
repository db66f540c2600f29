"""The preference centre's model: which channels (consents), which topics and how often a customer
wants to hear from the shop, or nothing at all. The guards read it for every message, so a change
holds from the next message on."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.core.vocab import CHANNELS
from boomerang.customers import profiles
from boomerang.customers.merge import canonical
from boomerang.customers.models import Consent, Customer
from boomerang.customers.privacy import hooks as privacy
from boomerang.messaging.models import Preference

TOPICS = {
    "offers": "Offers and discounts",
    "new_arrivals": "New arrivals and back in stock",
    "reminders": "Reminders (your cart, refills)",
    "loyalty": "Points, bonuses and your tier",
    "feedback": "Reviews and surveys",
    "news": "News from the shop",
}
# at most one marketing message in this many days; "normal" leaves the shop's own caps
FREQUENCIES = {"normal": None, "weekly": 7.0, "monthly": 30.0}


def _customer(session: Session, customer_id: str) -> Customer:
    customer = canonical(session, customer_id)
    if customer is None:
        raise NotFound(f"no customer {customer_id!r}", field="customer")
    return customer


def get(session: Session, customer_id: str) -> dict[str, Any]:
    """Channels (granted or not), topics (on or off) and frequency of one customer."""
    customer = _customer(session, customer_id)
    consents = {
        c.channel: c.granted for c in session.scalars(sa.select(Consent).where(Consent.customer_id == customer.id))
    }
    pref = session.get(Preference, customer.id)
    off = set(pref.topics_off) if pref else set()
    return {
        "customer_id": customer.id,
        "channels": {c: bool(consents.get(c, False)) for c in CHANNELS},
        "topics": {t: t not in off for t in TOPICS},
        "frequency": pref.frequency if pref else "normal",
    }


def update(
    session: Session,
    customer_id: str,
    *,
    now: datetime,
    source: str,
    channels: dict[str, bool] | None = None,
    topics: dict[str, bool] | None = None,
    frequency: str | None = None,
) -> dict[str, Any]:
    """Change what is given and leave the rest; flushes."""
    errors = [
        {"field": f"channels.{c}", "reason": f"unknown channel (one of {', '.join(CHANNELS)})"}
        for c in (channels or {})
        if c not in CHANNELS
    ]
    errors += [
        {"field": f"topics.{t}", "reason": f"unknown topic (one of {', '.join(TOPICS)})"}
        for t in (topics or {})
        if t not in TOPICS
    ]
    if frequency is not None and frequency not in FREQUENCIES:
        errors.append({"field": "frequency", "reason": f"must be one of {', '.join(FREQUENCIES)}"})
    if errors:
        raise ValidationFailed(errors)
    customer = _customer(session, customer_id)
    for channel, granted in (channels or {}).items():
        profiles.set_consent(session, customer, channel, bool(granted), source=source, at=now)
    if topics is not None or frequency is not None:
        pref = session.get(Preference, customer.id)
        if pref is None:
            pref = Preference(customer_id=customer.id, topics_off=[], frequency="normal", updated_at=now)
            session.add(pref)
        if topics is not None:
            off = (set(pref.topics_off) | {t for t, on in topics.items() if not on}) - {
                t for t, on in topics.items() if on
            }
            pref.topics_off = sorted(off)
        if frequency is not None:
            pref.frequency = frequency
        pref.updated_at = now
    session.flush()
    return get(session, customer.id)


def unsubscribe_all(session: Session, customer_id: str, *, now: datetime, source: str) -> dict[str, Any]:
    """Withdraw consent on every channel."""
    return update(session, customer_id, now=now, source=source, channels=dict.fromkeys(CHANNELS, False))


def follow_merge(session: Session, from_id: str, into_id: str, now: datetime) -> None:
    """The surviving profile keeps its own choices; it takes the merged one's when it had made none."""
    theirs = session.get(Preference, from_id)
    if theirs is None:
        return
    if session.get(Preference, into_id) is None:
        session.add(
            Preference(
                customer_id=into_id,
                topics_off=list(theirs.topics_off or []),
                frequency=theirs.frequency,
                updated_at=theirs.updated_at,
            )
        )
    session.delete(theirs)
    session.flush()


def export_customer(session: Session, customer_ids: list[str]) -> dict[str, Any]:
    """What the customers chose in the preference centre (a privacy export's section)."""
    return {"preferences": privacy.rows_of(session, Preference.customer_id, customer_ids)}


def erase_customer(session: Session, customer_id: str, pseudonym: str, now: datetime) -> privacy.Tally:
    """An erased customer's choices go with them."""
    return {"deleted": {"preferences": privacy.delete_of(session, Preference.customer_id, customer_id)}}
