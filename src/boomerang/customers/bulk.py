"""Resolve many external or anonymous ids to customer ids at once, creating the missing profiles."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.ids import new_id
from boomerang.customers.models import Consent, ConsentChange, Customer, Identity
from boomerang.customers.privacy.suppression import suppressed
from boomerang.db import chunked, executemany, upsert


def lookup(session: Session, kind: str, values: Iterable[str]) -> dict[str, str]:
    """Customer id for each value of an identity kind that is already known."""
    found: dict[str, str] = {}
    for chunk in chunked(values):
        rows = session.execute(
            sa.select(Identity.value, Identity.customer_id).where(Identity.kind == kind, Identity.value.in_(chunk))
        )
        found.update({value: cid for value, cid in rows})
    return found


def ensure(session: Session, kind: str, values: Iterable[str], *, now: datetime) -> dict[str, str]:
    """Customer id for each value, creating a profile and its identity for the unknown ones.

    `kind` "user" sets the new profile's external id; other kinds create anonymous-looking profiles
    whose fields the caller fills. An erased customer's email or phone gets no profile (and no id).
    """
    values = set(v for v in values if v)
    values = sorted(values - suppressed(session, kind, values))
    found = lookup(session, kind, values)
    missing = [v for v in values if v not in found]
    if missing:
        created = {v: new_id("cus") for v in missing}
        session.connection().execute(
            Customer.__table__.insert(),
            [
                {
                    "id": cid,
                    "external_id": v if kind == "user" else None,
                    "attributes": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for v, cid in created.items()
            ],
        )
        session.connection().execute(
            Identity.__table__.insert(),
            [{"kind": kind, "value": v, "customer_id": cid, "created_at": now} for v, cid in created.items()],
        )
        found.update(created)
    return found


def link(session: Session, kind: str, owners: dict[str, str], *, now: datetime) -> None:
    """Add the identities (kind, value) -> customer id that are not known yet; known ones keep their owner, and an
    erased customer's email or phone is not added."""
    known = lookup(session, kind, owners) | {v: "" for v in suppressed(session, kind, owners)}
    rows = [
        {"kind": kind, "value": v, "customer_id": cid, "created_at": now}
        for v, cid in sorted(owners.items())
        if v not in known
    ]
    if rows:
        session.connection().execute(Identity.__table__.insert(), rows)


def record_consents(session: Session, changes: list[tuple[str, str, bool, datetime]], *, source: str) -> None:
    """Apply (customer id, channel, granted, at) in time order: history rows for real changes only.

    A change no newer than the stored consent is already in it, so loading the same events twice adds nothing.
    """
    if not changes:
        return
    stored = {}
    for chunk in chunked(sorted({c[0] for c in changes})):
        rows = session.execute(
            sa.select(Consent.customer_id, Consent.channel, Consent.granted, Consent.updated_at).where(
                Consent.customer_id.in_(chunk)
            )
        )
        stored.update({(cid, ch): (granted, at) for cid, ch, granted, at in rows})
    current, history = dict(stored), []
    for cid, channel, granted, at in sorted(changes, key=lambda c: (c[3], c[0], c[1])):
        before = current.get((cid, channel))
        if before is not None and (at <= before[1] or granted == before[0]):
            continue
        current[(cid, channel)] = (granted, at)
        history.append({"customer_id": cid, "channel": channel, "granted": granted, "source": source, "at": at})
    final = [
        {"customer_id": cid, "channel": ch, "granted": g, "source": source, "updated_at": at}
        for (cid, ch), (g, at) in current.items()
        if stored.get((cid, ch)) != (g, at)
    ]
    if final:
        session.connection().execute(upsert(session, Consent.__table__, ["customer_id", "channel"], final), final)
    if history:
        session.connection().execute(ConsentChange.__table__.insert(), history)


def _touch_seen_statement() -> sa.Update:
    c = Customer.__table__.c
    first, last = sa.bindparam("first", type_=sa.DateTime()), sa.bindparam("last", type_=sa.DateTime())
    return (
        sa.update(Customer.__table__)
        .where(c.id == sa.bindparam("cid"))
        .values(
            first_seen_at=sa.case(
                (sa.or_(c.first_seen_at.is_(None), c.first_seen_at > first), first), else_=c.first_seen_at
            ),
            last_seen_at=sa.case((sa.or_(c.last_seen_at.is_(None), c.last_seen_at < last), last), else_=c.last_seen_at),
        )
    )


TOUCH_SEEN = _touch_seen_statement()


def touch_seen(session: Session, seen: dict[str, tuple[datetime, datetime]]) -> None:
    """Widen first_seen_at / last_seen_at of each customer to cover (first, last), in one statement."""
    if seen:
        executemany(
            session,
            TOUCH_SEEN,
            [{"cid": cid, "first": first, "last": last} for cid, (first, last) in sorted(seen.items())],
        )
