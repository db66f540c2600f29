"""Points and promo codes: awarding them (idempotent by key) and each customer's wallet, the one balance
that templates, the Telegram bot and the dashboard show. Services flush; the caller commits."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.customers.merge import move_rows
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
