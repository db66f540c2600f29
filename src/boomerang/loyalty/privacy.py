"""Loyalty's part in merges and privacy requests.

A merge moves the merged profile's points to the surviving one as a ledger transfer (lot by lot, pending and held
points too) and its lots, holds, promo codes (and their redemptions) and history with them. An export shows the customer's movements,
codes, lots and holds. An erasure ends the customer's points (open holds released, every lot closed into
`adjusted`) and keeps the ledger whole under the pseudonym: entries, transactions and lots are renamed, the balance
row added to the pseudonym's, free-text reasons dropped."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.customers.merge import move_rows
from boomerang.customers.privacy import hooks as privacy
from boomerang.loyalty import achievements_store, holds, referrals_privacy, tiers, view
from boomerang.loyalty.ledger import BALANCES, LOTS, TRANSACTIONS, Book, Posting
from boomerang.loyalty.models import (
    ACCOUNTS,
    LoyaltyEntry,
    LoyaltyHold,
    LoyaltyLedgerEntry,
    LoyaltyLot,
    LoyaltyTier,
    PromoCode,
    PromoPool,
    PromoRedemption,
)
from boomerang.loyalty.models import LoyaltyTransaction as Tx

ERASURE = "erasure"  # the source of what closes an erased customer's points


def _has_ledger(session: Session, customer_id: str) -> bool:
    return session.scalar(sa.select(BALANCES.c.customer_id).where(BALANCES.c.customer_id == customer_id)) is not None


def follow_merge(session: Session, from_id: str, into_id: str, now: datetime) -> None:
    """The merged profile's points, lots, holds, codes and history are the surviving profile's."""
    move_rows(session, LoyaltyEntry.customer_id, from_id, into_id)
    tiers.follow_merge(session, from_id, into_id, now)  # the higher of the two tiers stays
    move_rows(session, PromoCode.__table__.c.customer_id, from_id, into_id)
    move_rows(session, PromoRedemption.__table__.c.customer_id, from_id, into_id)
    referrals_privacy.follow_merge(session, from_id, into_id, now)
    achievements_store.follow_merge(session, from_id, into_id, now)  # progress combined
    if not _has_ledger(session, from_id):
        return
    book = Book(session, now)
    book.lock([from_id, into_id])
    reference = f"merge:{from_id}:{into_id}"
    if not book.taken([reference]):
        book.lots_of(into_id)
        posting = Posting(reference, "transfer", into_id, "merge", now)
        for lot in list(book.lots_of(from_id)):
            posting.move(lot.remaining, lot.account, lot.account, lot=lot, owner=from_id, to=into_id)
            book.moved(lot, from_id, into_id)
        posting.move(book.balance(from_id)["held"], "held", "held", owner=from_id, to=into_id)
        if posting.entries:
            book.post(posting)
        book.due(into_id, book.balance(from_id)["due_at"])
        book.set_due(from_id, None)
    book.write()
    for column in (LOTS.c.customer_id, LoyaltyHold.__table__.c.customer_id, TRANSACTIONS.c.customer_id):
        session.execute(sa.update(column.table).where(column == from_id).values({column.key: into_id}))


def export_customer(session: Session, customer_ids: list[str]) -> dict[str, Any]:
    """The customers' points movements and promo codes (`loyalty`), their lots and checkout holds."""
    codes = privacy.rows_of(session, LoyaltyEntry.customer_id, customer_ids, order_by=LoyaltyEntry.at)
    codes += privacy.plain(
        [
            {**row._mapping, "kind": "promo_code", "at": row.created_at}
            for row in session.execute(
                sa.select(*PromoCode.__table__.c, PromoPool.name.label("pool"))
                .join(PromoPool, PromoPool.id == PromoCode.pool_id)
                .where(PromoCode.customer_id.in_(customer_ids))
            )
        ]
    )
    moves = [
        {**entry, "kind": "points", "movement": entry["kind"]}
        for cid in customer_ids
        for entry in reversed(privacy.plain(view.history(session, cid, limit=1_000_000)))  # oldest first
    ]
    return {
        "loyalty": sorted(codes + moves, key=lambda e: e["at"]),
        "loyalty_lots": privacy.rows_of(session, LoyaltyLot.customer_id, customer_ids, order_by=LoyaltyLot.id),
        "loyalty_holds": privacy.rows_of(
            session, LoyaltyHold.customer_id, customer_ids, order_by=LoyaltyHold.created_at
        ),
        "loyalty_tier": privacy.rows_of(session, LoyaltyTier.customer_id, customer_ids),
        "promo_redemptions": privacy.rows_of(
            session, PromoRedemption.customer_id, customer_ids, order_by=PromoRedemption.created_at
        ),
        **referrals_privacy.export_customer(session, customer_ids),
        **achievements_store.export_customer(session, customer_ids),
    }


def erase_customer(session: Session, customer_id: str, pseudonym: str, now: datetime) -> privacy.Tally:
    """An erased customer's points end and their promo codes expire now; what loyalty gave stays, under the
    pseudonym."""
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
    expired += session.execute(
        sa.update(PromoCode)
        .where(
            PromoCode.customer_id == customer_id,
            PromoCode.uses < PromoCode.max_uses,
            sa.or_(PromoCode.expires_at.is_(None), PromoCode.expires_at > now),
        )
        .values(expires_at=now),
        execution_options={"synchronize_session": False},
    ).rowcount
    privacy.rename_in(session, LoyaltyEntry.key, customer_id, pseudonym)
    privacy.rename_in(session, PromoCode.key, customer_id, pseudonym)
    moved = privacy.move_to(session, LoyaltyEntry.customer_id, customer_id, pseudonym)
    moved += privacy.move_to(session, PromoCode.customer_id, customer_id, pseudonym)
    privacy.move_to(session, PromoRedemption.customer_id, customer_id, pseudonym)
    ended, renamed = _close(session, customer_id, pseudonym, now) if _has_ledger(session, customer_id) else (0, 0)
    tally = {
        "deleted": {
            "loyalty_tiers": tiers.erase(session, customer_id),
            "loyalty_achievement_progress": achievements_store.erase_customer(session, customer_id),
        },
        "ended": {"promo_codes": expired, "points": ended},
        "pseudonymised": {"loyalty_entries": moved, "loyalty_transactions": renamed},
    }
    return privacy.add(tally, referrals_privacy.erase_customer(session, customer_id, pseudonym, now))


def _close(session: Session, customer_id: str, pseudonym: str, now: datetime) -> tuple[int, int]:
    """Release the customer's open holds and close every lot into `adjusted`, then rename the ledger to the
    pseudonym; returns the points ended and the transactions renamed."""
    book = Book(session, now)
    book.lock([customer_id, pseudonym])
    for hold in session.execute(
        sa.select(holds.HOLDS).where(holds.HOLDS.c.customer_id == customer_id, holds.HOLDS.c.state == "held")
    ):
        holds.release(book, holds.Hold(**hold._mapping), "cancelled", source=ERASURE)
    posting = Posting(f"{ERASURE}:{pseudonym}:{secrets.token_hex(4)}", "close", customer_id, ERASURE, now)
    for lot in list(book.lots_of(customer_id)):
        posting.move(lot.remaining, lot.account, "adjusted", lot=lot)
        lot.state = "expired"
        book.touch(lot)
    ended = posting.points
    if posting.entries:
        book.post(posting)
    book.set_due(customer_id, None)
    book.write()
    _rename(session, customer_id, pseudonym, now)
    return ended, session.execute(
        sa.update(TRANSACTIONS)
        .where(TRANSACTIONS.c.customer_id == customer_id)
        .values(customer_id=pseudonym, reason=None),
        execution_options={"synchronize_session": False},
    ).rowcount


def _rename(session: Session, customer_id: str, pseudonym: str, now: datetime) -> None:
    """The customer's ledger rows under the pseudonym: entries, lots, holds, references; their balance row added
    to the pseudonym's."""
    privacy.rename_in(session, Tx.reference, customer_id, pseudonym)
    for column in (LoyaltyLedgerEntry.customer_id, LoyaltyLot.customer_id, LoyaltyHold.customer_id):
        privacy.move_to(session, column, customer_id, pseudonym)
    row = session.execute(sa.select(BALANCES).where(BALANCES.c.customer_id == customer_id)).one()
    session.execute(
        sa.update(BALANCES)
        .where(BALANCES.c.customer_id == pseudonym)
        .values({a: BALANCES.c[a] + getattr(row, a) for a in ACCOUNTS} | {"updated_at": now})
    )
    session.execute(sa.delete(BALANCES).where(BALANCES.c.customer_id == customer_id))
