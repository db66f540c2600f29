"""Erasing a customer: what names the person goes from both stores; what analytics counts stays, under a
pseudonym nothing leads back from.

The pseudonym is a new, empty profile (a random id, no fields but when it was first and last seen) that
takes over the rows analytics counts: orders, carts, messages, conversions, journey instances, segment
memberships, points, consent history, and the person's events in the log, which keep their name, time and
totals only. What is the person goes: the profile and every profile merged into it, identities, consents,
preferences, push subscriptions, the in-app inbox, addresses in the sandbox's record. Their emails and phones
are suppressed (kept as keyed hashes only), so an old import or a later event does not bring them back.

The operational store's part runs in the caller's transaction; the event log's, in its own, comes last, so
that a failure before it leaves both stores as they were. Recorded in the audit log (without the pseudonym).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.ids import new_id
from boomerang.customers.models import Consent, ConsentChange, Customer, Identity, Merge
from boomerang.customers.privacy import audit
from boomerang.customers.privacy.hooks import ERASURES, Tally, add, delete_of, move_to
from boomerang.customers.privacy.subject import Subject, find
from boomerang.customers.privacy.suppression import suppress

WITHDRAWN_BY = "erasure"  # the source of the consent withdrawals an erasure records


class Forgetting(Protocol):
    """What an erasure asks of the event log (events.log.EventLog)."""

    def erase_customers(
        self, customer_ids: list[str], pseudonym: str, *, user_ids: list[str] = (), anonymous_ids: list[str] = ()
    ) -> dict[str, int]: ...


def erase(session: Session, log: Forgetting, customer_id: str, *, actor: str, now: datetime) -> dict[str, Any]:
    """Erase the customer (and the profiles merged into them) from both stores; what was done, counted.
    NotFound for an unknown or already erased customer."""
    subject = find(session, customer_id)
    pseudonym = _stand_in(session, subject, now)
    tally: Tally = {"deleted": {}, "pseudonymised": {}, "ended": {}, "suppressed": {}}
    for cid in subject.ids:
        for hook in ERASURES:  # first: a hook may still read the profile and its identities
            add(tally, hook(session, cid, pseudonym, now))
    add(tally, _consents(session, subject.ids, pseudonym, now))
    add(tally, {"suppressed": {"addresses": suppress(session, subject.addresses, now=now)}})
    add(tally, _profiles(session, subject))
    session.flush()
    logged = log.erase_customers(subject.ids, pseudonym, user_ids=subject.user_ids, anonymous_ids=subject.anonymous_ids)
    add(tally, {"pseudonymised": {"events": logged["events"], "traits": logged["traits"]}})
    add(tally, {"deleted": {"profile_mirror": logged["profile_mirror"]}})
    if "recommendation_model" in logged:  # the workspace's erasure reaches the trained recommendations too
        add(tally, {"deleted": {"recommendation_model": logged["recommendation_model"]}})
    audit.record(
        session,
        actor=actor,
        action="erase",
        customer_id=subject.profile.id,
        detail={"profiles": subject.ids, **tally},
        now=now,
    )
    return {"customer_id": subject.profile.id, "erased_at": now, "profiles": subject.ids, **tally}


def _stand_in(session: Session, subject: Subject, now: datetime) -> str:
    """The pseudonymous profile that keeps what analytics counts: no field but the times it spans."""
    profiles = subject.profiles
    stand_in = Customer(
        id=new_id("cus"),
        attributes={},
        first_seen_at=min((c.first_seen_at for c in profiles if c.first_seen_at), default=None),
        last_seen_at=max((c.last_seen_at for c in profiles if c.last_seen_at), default=None),
        created_at=min(c.created_at for c in profiles),
        updated_at=now,
    )
    session.add(stand_in)
    session.flush()
    return stand_in.id


def _consents(session: Session, ids: list[str], pseudonym: str, now: datetime) -> Tally:
    """Consents still granted are withdrawn (a history row, so subscriber counts see them leave), then deleted;
    the history stays, under the pseudonym."""
    current = session.scalars(sa.select(Consent).where(Consent.customer_id.in_(ids))).all()
    for channel in sorted({c.channel for c in current if c.granted}):
        session.add(ConsentChange(customer_id=ids[0], channel=channel, granted=False, source=WITHDRAWN_BY, at=now))
    session.flush()
    deleted = session.execute(
        sa.delete(Consent).where(Consent.customer_id.in_(ids)), execution_options={"synchronize_session": False}
    ).rowcount
    moved = sum(move_to(session, ConsentChange.customer_id, cid, pseudonym) for cid in ids)
    return {"deleted": {"consents": deleted}, "pseudonymised": {"consent_history": moved}}


def _profiles(session: Session, subject: Subject) -> Tally:
    """The identities, the merges between the profiles, and the profiles themselves."""
    ids = subject.ids
    identities = sum(delete_of(session, Identity.customer_id, cid) for cid in ids)
    merges = session.execute(
        sa.delete(Merge).where(sa.or_(Merge.from_customer_id.in_(ids), Merge.into_customer_id.in_(ids))),
        execution_options={"synchronize_session": False},
    ).rowcount
    for profile in subject.profiles:
        session.expunge(profile)
    options = {"synchronize_session": False}
    session.execute(
        sa.update(Customer).where(Customer.id.in_(ids)).values(merged_into_id=None), execution_options=options
    )
    profiles = session.execute(sa.delete(Customer).where(Customer.id.in_(ids)), execution_options=options).rowcount
    return {"deleted": {"profiles": profiles, "identities": identities, "merges": merges}}
