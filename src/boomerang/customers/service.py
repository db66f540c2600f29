"""Customers as people look them up: search, one profile with its identities and consents, consent
history, an explicit merge. Services flush; the caller commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.customers import search
from boomerang.customers.identity import Resolver
from boomerang.customers.merge import canonical, live_ids
from boomerang.customers.models import Consent, ConsentChange, Customer, Identity
from boomerang.customers.search_keys import KEY_COLUMNS
from boomerang.db import in_chunks


def live(session: Session, customer_id: str) -> Customer:
    """The live profile for an id (following merges); NotFound for an unknown one."""
    customer = canonical(session, customer_id)
    if customer is None:
        raise NotFound(f"unknown customer '{customer_id}'", field="customer_id")
    return customer


def lookup(session: Session, text: str) -> Customer | None:
    """A live customer by id (following merges), external id, email, or any id they were known by (an
    anonymous id, a user id or an email of a profile merged into them); the oldest when several match.

    One query in the usual case: every profile that is the id, has the external id or email, or owns an identity
    with the value; merges are followed (a second query) only for a matching profile that was merged away."""
    text = text.strip()
    known = Customer.id.in_(search.owners(text))
    rows = session.execute(
        sa.select(Customer, known).where(
            sa.or_(Customer.id == text, Customer.external_id == text, Customer.email == text.lower(), known)
        )
    ).all()
    by_id = next((customer for customer, _ in rows if customer.id == text), None)
    if by_id is not None:  # the id itself comes first, as the live profile it was merged into
        return by_id if by_id.merged_into_id is None else canonical(session, text)
    found = {customer.id: customer for customer, _ in rows if customer.merged_into_id is None}
    merged = [customer.id for customer, is_known in rows if is_known and customer.merged_into_id is not None]
    if merged:  # an identity of a profile merged away counts for the profile it lives on in
        targets = set(live_ids(session, merged).values()) - set(found)
        if targets:
            found.update((c.id, c) for c in session.scalars(sa.select(Customer).where(Customer.id.in_(targets))))
    return min(found.values(), key=lambda c: (c.created_at, c.id), default=None)


def find(
    session: Session, q: str = "", *, prefix: bool = False, limit: int = 50, offset: int = 0
) -> tuple[list[Customer], int]:
    """Live profiles, newest first, and how many match: all of them, or those who are `q` exactly (internal or
    external id, email, phone in any format, an id or address they were known by); with `prefix`, whatever
    customers.search matches (names in any case and script, parts of emails and phones, external id prefixes)."""
    if prefix or not q.strip():
        return search.find(session, q, limit=limit, offset=offset)
    where = sa.and_(search.LIVE, search.exact(session, q.strip()))
    total = session.scalar(sa.select(sa.func.count()).select_from(Customer).where(where))
    rows = session.scalars(
        sa.select(Customer).where(where).order_by(Customer.created_at.desc(), Customer.id).limit(limit).offset(offset)
    ).all()
    return list(rows), int(total or 0)


def identities(session: Session, customer_id: str) -> list[Identity]:
    return list(
        session.scalars(
            sa.select(Identity).where(Identity.customer_id == customer_id).order_by(Identity.kind, Identity.value)
        )
    )


def consents(session: Session, customer_id: str) -> list[Consent]:
    return list(session.scalars(sa.select(Consent).where(Consent.customer_id == customer_id).order_by(Consent.channel)))


def consenting(session: Session, customer_ids: set[str]) -> set[str]:
    """Those of the customers who still grant at least one channel (a customer who withdrew every consent
    is told nothing more, and given nothing to be told about)."""
    return {
        row.customer_id
        for row in in_chunks(
            session,
            lambda ids: sa.select(Consent.customer_id).where(Consent.customer_id.in_(ids), Consent.granted.is_(True)),
            customer_ids,
        )
    }


def consent_history(session: Session, customer_id: str, *, newest_first: bool = False) -> list[ConsentChange]:
    order = (ConsentChange.at.desc(), ConsentChange.id.desc()) if newest_first else (ConsentChange.id,)
    return list(
        session.scalars(sa.select(ConsentChange).where(ConsentChange.customer_id == customer_id).order_by(*order))
    )


def profile(session: Session, customer: Customer) -> dict[str, Any]:
    """The profile with its identities and consents, as the API answers it."""
    data = {c.key: getattr(customer, c.key) for c in Customer.__table__.columns if c.key not in KEY_COLUMNS}
    data["identified"] = customer.identified
    data["identities"] = [{"kind": i.kind, "value": i.value} for i in identities(session, customer.id)]
    data["consents"] = {
        c.channel: {"granted": c.granted, "source": c.source, "at": c.updated_at}
        for c in consents(session, customer.id)
    }
    return data


def merge(session: Session, target_id: str, source_id: str, *, now: datetime) -> Customer:
    """Fold one profile into another: its identities, consents, orders, messages and events follow."""
    target, source = live(session, target_id), live(session, source_id)
    if source.id == target.id:
        raise ValidationFailed([{"field": "from", "reason": "a profile cannot be merged into itself"}])
    return Resolver(session, now=now).merge(source, target, reason="api")


def anonymous_ids(session: Session, customer_id: str) -> list[str]:
    return list(
        session.scalars(
            sa.select(Identity.value).where(Identity.customer_id == customer_id, Identity.kind == "anonymous")
        )
    )
