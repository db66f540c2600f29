"""Loyalty's front door: each customer's wallet (the one balance templates, the Telegram bot and the dashboard show),
points and promo codes awarded by journeys (idempotent by key), manual adjustments, a customer's account and
history, the expiry round and the ledger's proof. Services flush; the caller commits.

The ledger itself: `ledger` (postings, the locked book), `proof` (`check`), `lots`, `holds`, `due` (what time changes),
`checkout` (estimate, hold, confirm, cancel), `orders` (points that follow orders), `privacy` (merges, exports,
erasures)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.config import LoyaltySettings
from boomerang.core.errors import Conflict, ValidationFailed
from boomerang.core.ids import new_id
from boomerang.db import UnitOfWork, in_chunks
from boomerang.loyalty import checkout, codes, due, lots, programme, proof, tiers, view
from boomerang.loyalty.ledger import BALANCES, Book, Posting
from boomerang.loyalty.privacy import erase_customer, export_customer, follow_merge

__all__ = [
    "Code",
    "Wallet",
    "account",
    "adjust",
    "award",
    "check",
    "code_row",
    "erase_customer",
    "expire",
    "export_customer",
    "follow_merge",
    "history",
    "points_row",
    "wallets",
    "write",
]


@dataclass(frozen=True)
class Code:
    code: str
    discount_percent: float | None  # the value of a percent code; None for the other kinds
    expires_at: datetime | None
    kind: str = "percent"  # percent, fixed, free_shipping, points_multiplier
    value: float | None = None


@dataclass
class Wallet:
    """A customer's points as of a moment, and the promo codes still valid, oldest first."""

    points: int = 0  # spendable now
    pending: int = 0
    held: int = 0
    expiring: int = 0  # of `points`, expiring within 30 days
    expiring_at: datetime | None = None
    codes: list[Code] = field(default_factory=list)
    tier: tiers.Standing | None = None  # their loyalty tier, the next one and what is missing to it

    @property
    def latest_code(self) -> Code | None:
        return self.codes[-1] if self.codes else None


def points_row(key: str, customer_id: str, points: int, *, source: str, now: datetime) -> dict:
    """An award of `points` (written by `write`, into the ledger, once per key)."""
    return {"key": key, "customer_id": customer_id, "kind": "points", "points": points, "source": source, "at": now}


def code_row(
    key: str, customer_id: str, discount_percent: float, valid_days: int, *, source: str, now: datetime
) -> dict:
    """A new personal promo code of the pool "journeys" (written by `write`, once per key)."""
    return {
        "key": key,
        "customer_id": customer_id,
        "kind": "promo_code",
        "points": None,
        "code": codes.random_codes(1, prefix="BMR-")[0],
        "discount_percent": discount_percent,
        "source": source,
        "at": now,
        "expires_at": now + timedelta(days=valid_days),
    }


def write(session: Session, rows: list[dict]) -> None:
    """Record awards and codes; one whose key was written already is not written again."""
    issued = [r for r in rows if r["kind"] == "promo_code"]
    if issued:
        codes.write_issued(session, issued)
    awards = [r for r in rows if r["kind"] == "points"]
    if awards:
        award(session, awards, now=max(r["at"] for r in awards))


def award(session: Session, rows: list[dict], *, now: datetime, settings: LoyaltySettings | None = None) -> int:
    """Points given outright (a journey's award: `points_row`s): a lot each, spendable at once, expiring by the
    programme; returns how many were new."""
    settings = settings or programme.of(session)
    book = Book(session, now)
    ids = [r["customer_id"] for r in rows]
    book.lock(ids)
    book.preload(ids)  # their lots at once, not a query per award
    taken = book.taken(r["key"] for r in rows)
    new = 0
    for row in rows:
        if row["key"] in taken or row["points"] <= 0:
            continue
        taken.add(row["key"])
        due.settle(book, row["customer_id"])
        lots.credit(
            book,
            row["customer_id"],
            int(row["points"]),
            reference=row["key"],
            kind="award",
            source=row["source"],
            available_at=row["at"],
            expires_at=programme.expires_at(row["at"], settings),
        )
        new += 1
    book.write()
    return new


def wallets(session: Session, customer_ids: Iterable[str], *, now: datetime) -> dict[str, Wallet]:
    """The wallet of each customer as of `now` (an empty one for those with nothing). Reads only."""
    ids = list(dict.fromkeys(customer_ids))
    out = {
        cid: Wallet(p.available, p.pending, p.held, p.expiring, p.expiring_at)
        for cid, p in view.points(session, ids, now=now).items()
    }
    mine = codes.CODES
    rows = in_chunks(
        session,
        lambda chunk: (
            sa.select(
                mine.c.customer_id,
                mine.c.code,
                sa.func.coalesce(mine.c.value, codes.POOLS.c.value).label("value"),
                codes.POOLS.c.discount_kind,
                mine.c.expires_at,
                codes.POOLS.c.valid_from,
                codes.POOLS.c.valid_until,
            )
            .join(codes.POOLS, codes.POOLS.c.id == mine.c.pool_id)
            .where(mine.c.customer_id.in_(chunk), mine.c.uses < mine.c.max_uses)
            .order_by(mine.c.created_at, mine.c.code)
        ),
        ids,
    )
    for row in rows:  # in time order: a customer's codes come in one chunk
        ends = min((t for t in (row.expires_at, row.valid_until) if t is not None), default=None)
        if (ends is None or ends > now) and (row.valid_from is None or row.valid_from <= now):
            percent = row.value if row.discount_kind == "percent" else None
            out[row.customer_id].codes.append(Code(row.code, percent, ends, row.discount_kind, row.value))
    for cid, standing in tiers.standings(session, ids).items():
        out[cid].tier = standing
    return out


def _settled(session: Session, customer_id: str, now: datetime) -> None:
    """Bring the customer's ledger up to `now` where anything of theirs is due (a short lock, only then)."""
    due_at = session.scalar(sa.select(BALANCES.c.due_at).where(BALANCES.c.customer_id == customer_id))
    if due_at is not None and due_at <= now:
        book = Book(session, now)
        book.lock([customer_id])
        due.settle(book, customer_id)
        book.write()


def account(session: Session, customer_id: str, *, now: datetime, settings: LoyaltySettings) -> dict[str, Any]:
    """A customer's points: available, pending, held, expiring soon, their lots and lifetime totals; their tier."""
    cid = checkout.customer(session, customer_id)
    _settled(session, cid, now)
    mine = view.points(session, [cid], now=now, with_lots=True)[cid]
    return {
        "customer_id": cid,
        "unit": settings.unit_name,
        "balance": mine.available,
        "pending": mine.pending,
        "held": mine.held,
        "expiring_soon": {"points": mine.expiring, "first_at": mine.expiring_at, "within_days": view.SOON_DAYS},
        "totals": view.totals(session, cid),
        "lots": mine.lots,
        "tier": tiers.standings(session, [cid], settings)[cid].as_dict(),
    }


def history(session: Session, customer_id: str, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
    cid = checkout.customer(session, customer_id)
    return {"customer_id": cid, "items": view.history(session, cid, limit=limit, offset=offset), "limit": limit}


def adjust(
    session: Session,
    customer_id: str,
    points: Any,
    *,
    reason: Any,
    now: datetime,
    settings: LoyaltySettings,
    reference: str | None = None,
    source: str = "manual",
) -> dict[str, Any]:
    """A manual adjustment with its reason: points added as a lot spendable now, or taken from the spendable lots
    (nearest expiry first; never more than there are). Idempotent by `reference` when one is given."""
    negative = isinstance(points, int | float) and not isinstance(points, bool) and points < 0
    size = checkout.whole_points(-points if negative else points)
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
        raise ValidationFailed([{"field": "reason", "reason": "say why, in 1 to 500 characters"}])
    if reference is not None and (not isinstance(reference, str) or not 0 < len(reference) <= 150):
        raise ValidationFailed([{"field": "reference", "reason": "must be 1 to 150 characters"}])
    cid = checkout.customer(session, customer_id)
    book = Book(session, now)
    book.lock([cid])
    key = f"adjust:{reference}" if reference else new_id("adjust")
    if book.taken([key]):
        book.write()
        return {"customer_id": cid, "reference": key, "points": -size if negative else size, "new": False}
    due.settle(book, cid)
    if negative:
        spendable = lots.available(book, cid)
        if size > spendable:
            raise Conflict(f"only {spendable} points are available to take", field="points")
        posting = Posting(key, "adjust", cid, source, now, reason=reason.strip())
        lots.draw(book, posting, size, "adjusted")
        book.post(posting)
    else:
        lots.credit(
            book,
            cid,
            size,
            reference=key,
            kind="adjust",
            source=source,
            available_at=now,
            expires_at=programme.expires_at(now, settings),
            reason=reason.strip(),
            origin="adjusted",
        )
    book.write()
    return {"customer_id": cid, "reference": key, "points": -size if negative else size, "new": True}


def expire(uow: UnitOfWork, now: datetime) -> dict[str, int]:
    """The expiry round: every customer due (pending lots now spendable, lots expired, holds past their time)."""
    return due.run_due(uow, now)


def check(session: Session) -> dict[str, Any]:
    """Replay the ledger and prove the balances, lots and holds right (`proof.check`)."""
    return proof.check(session)
