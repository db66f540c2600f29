"""What the guards know of each customer, loaded for a batch in a few queries: the live profile's
addresses, timezone and consents, the preference centre's choices, and the messages sent lately.

A profile merged into another is guarded as that one (its addresses, consents and messages), and the
messages of both count together: both ids share the Context.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.config import GuardSettings
from boomerang.core.vocab import ADDRESS_FIELDS, CHANNELS
from boomerang.customers.merge import live_ids
from boomerang.customers.models import Consent, Customer
from boomerang.db import in_chunks
from boomerang.messaging.guards import Context, Sent, in_global_control
from boomerang.messaging.models import Message, Preference
from boomerang.messaging.preferences import FREQUENCIES

# a message in one of these reached (or may have reached) the customer: the guards count it
SENT = ("sending", "sent", "delivered", "opened", "clicked", "complained", "unsubscribed")
PROFILE = (Customer.id, Customer.timezone, *(getattr(Customer, f) for f in ADDRESS_FIELDS.values()))


def load_contexts(
    session: Session, customer_ids: set[str], now: datetime, settings: GuardSettings
) -> dict[str, Context]:
    """The guards' Context of each customer id."""
    live = live_ids(session, customer_ids)
    people = {cid: live.get(cid, cid) for cid in customer_ids}  # an unknown id stands for itself: not found
    profiles = {
        row.id: row
        for row in in_chunks(session, lambda ids: sa.select(*PROFILE).where(Customer.id.in_(ids)), set(people.values()))
    }
    consents: dict[str, dict[str, bool]] = defaultdict(dict)
    for cid, channel, granted in in_chunks(
        session,
        lambda ids: sa.select(Consent.customer_id, Consent.channel, Consent.granted).where(
            Consent.customer_id.in_(ids)
        ),
        profiles,
    ):
        consents[cid][channel] = bool(granted)
    contexts = {
        cid: Context(
            customer_id=cid,
            found=cid in profiles,
            settings=settings,
            consents=consents.get(cid, {}),
            addresses={f: getattr(profiles[cid], f) for f in ADDRESS_FIELDS.values()} if cid in profiles else {},
            timezone=profiles[cid].timezone if cid in profiles else None,
            global_control=in_global_control(cid, settings.global_control_share),
        )
        for cid in set(people.values())
    }
    for pref in in_chunks(
        session,
        lambda ids: sa.select(Preference.customer_id, Preference.topics_off, Preference.frequency).where(
            Preference.customer_id.in_(ids)
        ),
        contexts,
    ):
        ctx = contexts[pref.customer_id]
        ctx.topics_off, ctx.frequency_days = frozenset(pref.topics_off or ()), FREQUENCIES.get(pref.frequency)
    since = now - timedelta(hours=max(settings.longest_window, max(d for d in FREQUENCIES.values() if d) * 24))
    recent = in_chunks(
        session,
        lambda ids: sa.select(
            Message.customer_id, Message.channel, Message.category, Message.template, Message.source, Message.sent_at
        ).where(
            Message.customer_id.in_(ids),
            Message.status.in_(SENT),
            Message.sent_at > since,
            Message.channel.in_(CHANNELS),
        ),
        set(people) | set(people.values()),
    )
    for customer_id, channel, category, template, source, sent_at in recent:
        contexts[people.get(customer_id, customer_id)].recent.append(Sent(channel, category, template, source, sent_at))
    return {cid: contexts[people[cid]] for cid in customer_ids}
