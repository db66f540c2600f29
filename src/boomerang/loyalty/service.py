"""Points and promo codes: awarding them (idempotent by key) and each customer's wallet, the one balance
that templates, the Telegram bot and the dashboard show. Services flush; the caller commits."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.customers.merge import move_rows
from boomerang.customers.privacy import hooks as privacy
from boomerang.db import in_chunks, insert_ignore
from boomerang.loyalty.models import LoyaltyEntry


@dataclass(frozen=True)
class Code:
    code: str
    discount_percent: float | None
    expires_at: datetime | None


@dataclass
class Wallet:
    """A customer's points and the promo codes still valid, oldest first."""

    points: int = 0
    codes: list[Code] = field(default_factory=list)

    @property
    def latest_code(self) -> Code | None:
        return self.codes[-1] if self.codes else None


def points_row(key: str, customer_id: str, points: int, *, source: str, now: datetime) -> dict:
    """The entry that awards `points` (written by `write`)."""
    return {
        "key": key,
        "customer_id": customer_id,
        "kind": "points",
        "points": points,
        "code": None,
        "discount_percent": None,
        "source": source,
        "at": now,
        "expires_at": None,
    }


def code_row(
    key: str, customer_id: str, discount_percent: float, valid_days: int, *, source: str, now: datetime
) -> dict:
    """The entry that issues a new personal promo code (written by `write`)."""
    return {
        "key": key,
        "customer_id": customer_id,
        "kind": "promo_code",
        "points": None,
        "code": f"BMR-{secrets.token_hex(4).upper()}",
        "discount_percent": discount_percent,
        "source": source,
        "at": now,
        "expires_at": now + timedelta(days=valid_days),
    }


def write(session: Session, rows: list[dict]) -> None:
    """Record entries; an entry whose key is already there is not written again."""
    if rows:
        session.connection().execute(insert_ignore(session, LoyaltyEntry.__table__), rows)


def wallets(session: Session, customer_ids: Iterable[str], *, now: datetime) -> dict[str, Wallet]:
    """The wallet of each customer (an empty one for those with no entries)."""
    out = {cid: Wallet() for cid in customer_ids}
    rows = in_chunks(
        session,
        lambda ids: sa.select(
            LoyaltyEntry.customer_id,
            LoyaltyEntry.kind,
            LoyaltyEntry.points,
            LoyaltyEntry.code,
            LoyaltyEntry.discount_percent,
            LoyaltyEntry.expires_at,
            LoyaltyEntry.at,
        ).where(LoyaltyEntry.customer_id.in_(ids)),
        out,
    )
    for row in sorted(rows, key=lambda r: r.at):
        wallet = out[row.customer_id]
        wallet.points += row.points or 0
        if row.kind == "promo_code" and row.code and (row.expires_at is None or row.expires_at > now):
            wallet.codes.append(Code(row.code, row.discount_percent, row.expires_at))
    return out


def follow_merge(session: Session, from_id: str, into_id: str, now: datetime) -> None:
    """The merged profile's points and codes are the surviving profile's."""
    move_rows(session, LoyaltyEntry.customer_id, from_id, into_id)


ERASURE = "erasure"  # the source of the entry that closes an erased customer's balance


def export_customer(session: Session, customer_ids: list[str]) -> dict[str, Any]:
    """The customers' points and promo codes (a privacy export's section)."""
    return {"loyalty": privacy.rows_of(session, LoyaltyEntry.customer_id, customer_ids, order_by=LoyaltyEntry.at)}


def erase_customer(session: Session, customer_id: str, pseudonym: str, now: datetime) -> privacy.Tally:
    """An erased customer's wallet ends: promo codes expire now, an entry takes the points balance to zero; the
    entries stay, for what loyalty gave, under the pseudonym."""
    mine = LoyaltyEntry.customer_id == customer_id
    expired = session.execute(
        sa.update(LoyaltyEntry)
        .where(
            mine,
            LoyaltyEntry.kind == "promo_code",
            sa.or_(LoyaltyEntry.expires_at.is_(None), LoyaltyEntry.expires_at > now),
        )
        .values(expires_at=now),
        execution_options={"synchronize_session": False},
    ).rowcount
    balance = session.scalar(sa.select(sa.func.coalesce(sa.func.sum(LoyaltyEntry.points), 0)).where(mine))
    if balance:
        key = f"{ERASURE}:{pseudonym}:{secrets.token_hex(4)}"
        write(session, [points_row(key, customer_id, -int(balance), source=ERASURE, now=now)])
    privacy.rename_in(session, LoyaltyEntry.key, customer_id, pseudonym)
    moved = privacy.move_to(session, LoyaltyEntry.customer_id, customer_id, pseudonym)
    return {"ended": {"promo_codes": expired, "points": int(balance)}, "pseudonymised": {"loyalty_entries": moved}}
