"""The data subject of a privacy request: one person's live profile, every profile merged into it, and the
identities that resolve to them."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.errors import NotFound
from boomerang.customers.merge import canonical
from boomerang.customers.models import Customer, Identity
from boomerang.customers.privacy import audit


@dataclass
class Subject:
    profile: Customer  # the live profile
    merged: list[Customer]  # the profiles merged into it, directly or through others
    identities: list[Identity]

    @property
    def profiles(self) -> list[Customer]:
        return [self.profile, *self.merged]

    @property
    def ids(self) -> list[str]:
        """Every profile id, the live one first."""
        return [c.id for c in self.profiles]

    @property
    def user_ids(self) -> list[str]:
        """The shop's ids for them (external ids, user identities)."""
        external = {c.external_id for c in self.profiles if c.external_id}
        return sorted(external | self._values("user"))

    @property
    def anonymous_ids(self) -> list[str]:
        return sorted(self._values("anonymous"))

    @property
    def addresses(self) -> set[tuple[str, str]]:
        """(kind, value) of every email and phone they were known by."""
        found = {("email", c.email) for c in self.profiles if c.email}
        found |= {("phone", c.phone) for c in self.profiles if c.phone}
        return found | {(i.kind, i.value) for i in self.identities if i.kind in ("email", "phone")}

    def _values(self, kind: str) -> set[str]:
        return {i.value for i in self.identities if i.kind == kind}


def find(session: Session, customer_id: str) -> Subject:
    """The person behind a profile id (a merged-away id leads to the live profile); NotFound for an unknown id,
    saying when it was erased if it was."""
    profile = canonical(session, customer_id)
    if profile is None:
        erased = audit.erased_at(session, customer_id)
        reason = f"customer '{customer_id}' was erased on {erased:%Y-%m-%d %H:%M} UTC" if erased else None
        raise NotFound(reason or f"unknown customer '{customer_id}'", field="customer_id")
    merged = merged_into(session, profile.id)
    ids = [profile.id, *(c.id for c in merged)]
    identities = session.scalars(
        sa.select(Identity).where(Identity.customer_id.in_(ids)).order_by(Identity.kind, Identity.value)
    )
    return Subject(profile, merged, list(identities))


def merged_into(session: Session, customer_id: str) -> list[Customer]:
    """The profiles merged into this one, directly or through others, oldest merge first."""
    found: list[Customer] = []
    frontier, seen = [customer_id], {customer_id}
    while frontier:
        rows = session.scalars(
            sa.select(Customer).where(Customer.merged_into_id.in_(frontier)).order_by(Customer.updated_at, Customer.id)
        ).all()
        rows = [c for c in rows if c.id not in seen]
        seen.update(c.id for c in rows)
        found += rows
        frontier = [c.id for c in rows]
    return found
