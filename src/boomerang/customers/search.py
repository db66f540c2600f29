"""One way to find customers from what a person types: a name (first, last or both, any case and script, part of
it), an email (any case, part of it), a phone in any format, an external id, an internal id, or any id or address
the customer was known by. Only live profiles match: a merged-away profile leads to the one it was merged into,
and an erased customer is gone with their row.

Names and phones are compared as their folded keys (customers.search_keys), so the same SQL works on SQLite and
PostgreSQL: a scan of short columns in the database, never a scan in Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.customers.merge import live_ids
from boomerang.customers.models import IDENTITY_KINDS, Customer, Identity
from boomerang.customers.search_keys import digits, fold
from boomerang.db import in_chunks

MIN_PHONE_DIGITS = 6  # fewer digits are more likely part of an id or a name than a phone
MAX_QUERY = 320
MAX_TOKENS = 6
SHOWN = 5  # candidates listed when a value matches several customers
_PHONE_LIKE = re.compile(r"^\+?[\d\s().\-/]+$")

LIVE = Customer.merged_into_id.is_(None)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _contains(column, text: str):
    return column.like(f"%{_escape(text)}%", escape="\\")


def owners(text: str) -> sa.Select:
    """customer_id of every identity with this value (as typed, or lower-cased as an email), of any kind: kinds
    named, so the (kind, value) key finds them rather than a scan of every identity."""
    return sa.select(Identity.customer_id).where(
        Identity.kind.in_(IDENTITY_KINDS), Identity.value.in_(sorted({text, text.lower()}))
    )


def known_as(session: Session, text: str) -> list[str]:
    """The live profiles an identity with this value (as typed, or lower-cased as an email) resolves to."""
    return sorted(set(live_ids(session, set(session.scalars(owners(text)))).values()))


def phone_digits(text: str) -> str | None:
    """The digits a phone search matches at the end of a stored number: "(067) 123-4567" -> "671234567" (a trunk
    prefix dropped, so a national number finds the international one); None when `text` is not a phone."""
    if not _PHONE_LIKE.match(text):
        return None
    found = digits(text) or ""
    national = found.lstrip("0")
    return national if len(national) >= MIN_PHONE_DIGITS else None


def exact(session: Session, text: str) -> sa.ColumnElement[bool]:
    """Profiles that are exactly this value: internal id (following merges), external id, email, phone, or an
    identity they were known by."""
    matches = [Customer.external_id == text, Customer.email == text.lower()]
    ids = set(known_as(session, text)) | set(live_ids(session, [text]).values())
    if ids:
        matches.append(Customer.id.in_(sorted(ids)))
    if phone_digits(text) is not None:
        matches.append(Customer.phone_key == digits(text))
    return sa.or_(*matches)


def matching(session: Session, q: str) -> sa.ColumnElement[bool]:
    """Live profiles that match what was typed (see the module); every profile for an empty text."""
    text = q.strip()[:MAX_QUERY]
    if not text:
        return LIVE
    matches = [exact(session, text), Customer.external_id.like(f"{_escape(text)}%", escape="\\")]
    if "@" in text or " " not in text:
        matches.append(_contains(Customer.email, text.lower()))
    if (phone := phone_digits(text)) is not None:
        matches.append(Customer.phone_key.like(f"%{_escape(phone)}", escape="\\"))
    tokens = (fold(text) or "").split()[:MAX_TOKENS]
    if tokens and "@" not in text:
        matches.append(
            sa.and_(
                *(sa.or_(_contains(Customer.first_name_key, t), _contains(Customer.last_name_key, t)) for t in tokens)
            )
        )
    return sa.and_(LIVE, sa.or_(*matches))


def find(session: Session, q: str = "", *, limit: int = 50, offset: int = 0) -> tuple[list[Customer], int]:
    """Live profiles matching `q`, newest first, and how many match."""
    where = matching(session, q)
    total = session.scalar(sa.select(sa.func.count()).select_from(Customer).where(where))
    rows = session.scalars(
        sa.select(Customer).where(where).order_by(Customer.created_at.desc(), Customer.id).limit(limit).offset(offset)
    ).all()
    return list(rows), int(total or 0)


@dataclass(frozen=True)
class Candidate:
    id: str
    label: str


def label(customer: Customer) -> str:
    """How a person recognises the customer: name, then what reaches them, then the id."""
    name = " ".join(filter(None, (customer.first_name, customer.last_name)))
    reach = ", ".join(filter(None, (customer.email, customer.phone, customer.external_id)))
    if name and reach:
        return f"{name} ({reach})"
    return name or reach or customer.id


def resolve(session: Session, text: str, *, field: str = "customer") -> Customer:
    """The one live customer `text` stands for; ValidationFailed naming `field` when it is empty or matches
    several (listing some, and how to be more specific), NotFound when it matches nobody."""
    text = (text or "").strip()
    if not text:
        raise ValidationFailed([{"field": field, "reason": "required: a name, email, phone or id"}])
    if len(text) > MAX_QUERY:
        raise ValidationFailed([{"field": field, "reason": f"at most {MAX_QUERY} characters"}])
    exact_rows = session.scalars(
        sa.select(Customer).where(LIVE, exact(session, text)).order_by(Customer.created_at).limit(SHOWN + 1)
    ).all()
    rows = (
        exact_rows
        or session.scalars(
            sa.select(Customer).where(matching(session, text)).order_by(Customer.created_at).limit(SHOWN + 1)
        ).all()
    )
    if len(rows) == 1:
        return rows[0]
    if not rows:
        raise NotFound(f"no customer matches '{text}': try their email, phone, name or id", field=field)
    listed = "; ".join(f"{label(c)} [{c.id}]" for c in rows[:SHOWN])
    more = " and more" if len(rows) > SHOWN else ""
    reason = f"'{text}' matches several customers ({listed}{more}): type more of the name, or their email, phone or id"
    raise ValidationFailed([{"field": field, "reason": reason}])


def candidates(session: Session, text: str, *, limit: int = SHOWN) -> list[Candidate]:
    """Up to `limit` customers matching `text`, for a picker."""
    rows, _ = find(session, text, limit=limit)
    return [Candidate(c.id, label(c)) for c in rows]


def labels(session: Session, customer_ids: Iterable[str]) -> dict[str, Candidate]:
    """How to show each of these customers (following merges: the live profile's id and label); ids of no
    profile are left out."""
    live = live_ids(session, set(customer_ids))
    found = {
        c.id: c
        for (c,) in in_chunks(session, lambda ids: sa.select(Customer).where(Customer.id.in_(ids)), set(live.values()))
    }
    out = {}
    for cid, live_id in live.items():
        customer = found.get(live_id)
        if customer is not None:
            out[cid] = Candidate(live_id, label(customer) if customer.identified or customer.first_name else "")
    return out
