"""A customer's data export: one JSON-ready document with everything held about them, in both stores.

The profile, the profiles merged into it, identities, consents with their history and merges come from here;
every other domain adds its sections through its export hook (orders and carts, messages and their events,
preferences, push subscriptions and the in-app inbox, loyalty, journeys, segments, events still in the
inbox); the event log adds the events and the stored traits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.customers.models import Consent, ConsentChange, Merge
from boomerang.customers.privacy import audit
from boomerang.customers.privacy.hooks import EXPORTS, as_dict, plain, rows_of
from boomerang.customers.privacy.subject import Subject, find
from boomerang.customers.search_keys import KEY_COLUMNS

FORMAT = 1  # the document's version, for whoever reads it back


class History(Protocol):
    """What an export reads from the event log (events.log.EventLog)."""

    def customer_history(self, customer_ids: list[str], *, user_ids: list[str] = ()) -> list[dict[str, Any]]: ...

    def customer_traits(self, customer_ids: list[str]) -> dict[str, list[dict[str, Any]]]: ...


def export(session: Session, log: History, customer_id: str, *, actor: str, now: datetime) -> dict[str, Any]:
    """Everything held about the customer (and the profiles merged into them); recorded in the audit log.
    NotFound for an unknown or erased customer."""
    subject = find(session, customer_id)
    document = {"format": FORMAT, "customer_id": subject.profile.id, "exported_at": now, **_own(session, subject)}
    for hook in EXPORTS:
        document.update(hook(session, subject.ids))
    document["events"] = log.customer_history(subject.ids, user_ids=subject.user_ids)
    document["traits"] = log.customer_traits(subject.ids)
    document = plain(document)
    audit.record(
        session,
        actor=actor,
        action="export",
        customer_id=subject.profile.id,
        detail={"profiles": subject.ids, "sections": sections(document)},
        now=now,
    )
    return document


def _own(session: Session, subject: Subject) -> dict[str, Any]:
    ids = subject.ids
    merges = session.scalars(
        sa.select(Merge)
        .where(sa.or_(Merge.from_customer_id.in_(ids), Merge.into_customer_id.in_(ids)))
        .order_by(Merge.id)
    )
    return {
        "profile": as_dict(subject.profile, leave=KEY_COLUMNS),
        "merged_profiles": [as_dict(c, leave=KEY_COLUMNS) for c in subject.merged],
        "identities": [as_dict(i) for i in subject.identities],
        "consents": rows_of(session, Consent.customer_id, ids, order_by=Consent.channel),
        "consent_history": rows_of(session, ConsentChange.customer_id, ids, order_by=ConsentChange.id),
        "merges": [as_dict(m, leave=("applied_to_log",)) for m in merges],
    }


def sections(document: dict[str, Any]) -> dict[str, int]:
    """How many items each list of the document holds (traits: rows of every kind), what an audit entry says
    was exported."""
    counts = {name: len(value) for name, value in document.items() if isinstance(value, list)}
    counts["traits"] = sum(len(rows) for rows in document["traits"].values())
    return counts
