"""Identity resolution: every id a customer shows up with resolves to one profile.

Rules: an anonymous visitor who identifies becomes (or is merged into) the known profile, and
their history follows; a known profile is never merged implicitly into another known one (only
`alias` and an explicit merge do that); a shared device's anonymous id moves to whoever
identified on it last.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.ids import new_id
from boomerang.core.vocab import PROFILE_FIELDS
from boomerang.customers.merge import follow
from boomerang.customers.models import Consent, ConsentChange, Customer, Identity, Merge
from boomerang.db import among, chunked


class Resolver:
    """Resolves ids to customer ids within one unit of work, caching what it has looked up.

    Profiles are loaded as ORM objects only when they must change (promotion, identify, merge):
    resolving a batch of events from known visitors reads ids and writes nothing.
    """

    def __init__(self, session: Session, *, now: datetime) -> None:
        self.session = session
        self.now = now
        self._ids: dict[tuple[str, str], str | None] = {}
        self._external: dict[str, str | None] = {}  # external id of each customer id looked up
        self._customers: dict[str, Customer] = {}  # strong references: the identity map's are weak
        self.merged: dict[str, str] = {}  # profiles merged away in this unit of work -> where they went

    def preload(self, keys: set[tuple[str, str]]) -> None:
        """Look up many (kind, value) pairs in one query per kind and 5,000 values."""
        by_kind: dict[str, list[str]] = {}
        for kind, value in keys:
            if (kind, value) not in self._ids:
                by_kind.setdefault(kind, []).append(value)
                self._ids[(kind, value)] = None
        for kind, values in by_kind.items():
            for chunk in chunked(values):
                rows = self.session.execute(
                    sa.select(Identity.value, Identity.customer_id, Customer.external_id)
                    .join(Customer, Customer.id == Identity.customer_id)
                    .where(Identity.kind == kind, among(self.session, Identity.value, chunk))
                )
                for value, cid, external_id in rows:
                    self._ids[(kind, value)] = cid
                    self._external.setdefault(cid, external_id)

    def find_id(self, kind: str, value: str | None) -> str | None:
        if not value:
            return None
        if (kind, value) not in self._ids:
            self.preload({(kind, value)})
        return self._ids[(kind, value)]

    def customer(self, cid: str) -> Customer:
        """The profile as an ORM object, to change it."""
        if cid not in self._customers:
            self._customers[cid] = self.session.get(Customer, cid)
        return self._customers[cid]

    def external_id(self, cid: str) -> str | None:
        if cid in self._customers:
            return self._customers[cid].external_id
        if cid not in self._external:
            self._external[cid] = self.customer(cid).external_id
        return self._external[cid]

    def create(self, **fields) -> Customer:
        customer = Customer(id=new_id("cus"), attributes={}, created_at=self.now, updated_at=self.now, **fields)
        self.session.add(customer)
        self._customers[customer.id] = customer
        return customer

    def link(self, kind: str, value: str, cid: str) -> None:
        """Point (kind, value) at the customer, adding or moving the identity."""
        current = self._ids.get((kind, value))
        if current == cid:
            return
        if current is None:
            self.session.add(Identity(kind=kind, value=value, customer_id=cid, created_at=self.now))
        else:
            self.session.flush()
            self.session.execute(
                sa.update(Identity).where(Identity.kind == kind, Identity.value == value).values(customer_id=cid)
            )
        self._ids[(kind, value)] = cid

    def unlink(self, kind: str, value: str, cid: str) -> None:
        """Forget that (kind, value) finds the customer: an address they replaced or cleared."""
        self.session.flush()
        self.session.execute(
            sa.delete(Identity).where(Identity.kind == kind, Identity.value == value, Identity.customer_id == cid)
        )
        if self._ids.get((kind, value)) == cid:
            self._ids[(kind, value)] = None

    def resolve(self, user_id: str | None, anonymous_id: str | None) -> str:
        """The customer id for this pair of ids, creating, promoting or merging as the rules say."""
        known = self.find_id("user", user_id)
        visitor = self.find_id("anonymous", anonymous_id)
        if user_id is None:
            if visitor is None:
                visitor = self.create().id
                self.link("anonymous", anonymous_id, visitor)
            return visitor
        if known is None:
            if visitor is not None and self.external_id(visitor) is None:
                known = visitor  # the visitor identifies: promote their profile
                self.customer(known).external_id = user_id
            else:
                known = self.create(external_id=user_id).id
            self.link("user", user_id, known)
        if anonymous_id is not None and visitor != known:
            if visitor is not None and self.external_id(visitor) is None:
                self.merge(self.customer(visitor), self.customer(known), reason="identify")
            else:
                self.link("anonymous", anonymous_id, known)
        return known

    def claim(self, kind: str, value: str | None, cid: str) -> None:
        """Attach an email/phone/Telegram/device identity unless another known profile owns it."""
        if not value:
            return
        owner = self.find_id(kind, value)
        if owner is None:
            self.link(kind, value, cid)
        elif owner != cid and self.external_id(owner) is None and self.external_id(cid) is not None:
            self.merge(self.customer(owner), self.customer(cid), reason=f"same {kind}")

    def merge(self, source: Customer, target: Customer, *, reason: str) -> Customer:
        """Fold `source` into `target`: identities, consents and whatever each domain keeps move (see merge.py);
        `source` remains as a pointer."""
        if source.id == target.id:
            return target
        session = self.session
        session.flush()
        session.execute(sa.update(Identity).where(Identity.customer_id == source.id).values(customer_id=target.id))
        for key, cid in self._ids.items():
            if cid == source.id:
                self._ids[key] = target.id
        self._merge_consents(source, target)
        session.execute(
            sa.update(ConsentChange).where(ConsentChange.customer_id == source.id).values(customer_id=target.id)
        )
        follow(session, source.id, target.id, self.now)  # orders, messages, journeys, segments, loyalty...
        external_id = source.external_id
        for name in PROFILE_FIELDS:
            if name != "external_id" and getattr(target, name) is None and getattr(source, name) is not None:
                setattr(target, name, getattr(source, name))
        target.attributes = {**(source.attributes or {}), **(target.attributes or {})}
        target.first_seen_at = min(filter(None, (source.first_seen_at, target.first_seen_at)), default=None)
        target.last_seen_at = max(filter(None, (source.last_seen_at, target.last_seen_at)), default=None)
        target.updated_at = source.updated_at = self.now
        source.merged_into_id = target.id
        source.external_id = None  # the user identity now resolves to the target
        session.add(Merge(from_customer_id=source.id, into_customer_id=target.id, reason=reason, at=self.now))
        self.merged[source.id] = target.id
        for merged_id, into in self.merged.items():
            if into == source.id:
                self.merged[merged_id] = target.id
        session.flush()
        if target.external_id is None and external_id is not None:
            target.external_id = external_id
        return target

    def _merge_consents(self, source: Customer, target: Customer) -> None:
        mine = {c.channel: c for c in self.session.scalars(sa.select(Consent).where(Consent.customer_id == target.id))}
        for theirs in self.session.scalars(sa.select(Consent).where(Consent.customer_id == source.id)).all():
            kept = mine.get(theirs.channel)
            if kept is None or theirs.updated_at > kept.updated_at:
                if kept is None:
                    self.session.add(
                        Consent(
                            customer_id=target.id,
                            channel=theirs.channel,
                            granted=theirs.granted,
                            source=theirs.source,
                            updated_at=theirs.updated_at,
                        )
                    )
                else:
                    kept.granted, kept.source, kept.updated_at = theirs.granted, theirs.source, theirs.updated_at
            self.session.delete(theirs)
