"""Referrals in merges and privacy requests (called by `loyalty.privacy`).

A merge gives the surviving profile the merged one's codes (both keep attributing), marks, decisions and referrals
(as referrer, and as friend where the survivor was referred by no one: otherwise the survivor's referral stays,
the first attribution winning); a referral whose friend and referrer became one profile is rejected. An export
lists the customer's codes, their referrals (as friend and as referrer) and the decisions about them. An erasure
deletes their codes (their links stop working) and marks, ends their open referrals (`void`, `erased`), and keeps
the rest under the pseudonym without the device, the network or the decisions' details."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.customers.privacy import hooks as privacy
from boomerang.loyalty.models import LoyaltyReferral, LoyaltyReferralCode, LoyaltyReferralDecision, LoyaltyReferralMark
from boomerang.loyalty.referrals import decide

REFERRALS, MARKS = LoyaltyReferral.__table__, LoyaltyReferralMark.__table__
FAST = {"synchronize_session": False}


def follow_merge(session: Session, from_id: str, into_id: str, now: datetime) -> None:
    """The merged profile's referral codes, marks, decisions and referrals are the surviving profile's."""
    session.execute(
        sa.update(LoyaltyReferralCode).where(LoyaltyReferralCode.customer_id == from_id).values(customer_id=into_id),
        execution_options=FAST,
    )
    theirs = sa.select(MARKS.c.kind, MARKS.c.value).where(MARKS.c.customer_id == into_id)
    session.execute(
        sa.delete(MARKS).where(MARKS.c.customer_id == from_id, sa.tuple_(MARKS.c.kind, MARKS.c.value).in_(theirs))
    )
    session.execute(sa.update(MARKS).where(MARKS.c.customer_id == from_id).values(customer_id=into_id))
    for column in (LoyaltyReferralDecision.friend_id, LoyaltyReferralDecision.referrer_id, LoyaltyReferral.referrer_id):
        session.execute(
            sa.update(column.class_).where(column == from_id).values({column.key: into_id}), execution_options=FAST
        )
    if session.scalar(sa.select(REFERRALS.c.friend_id).where(REFERRALS.c.friend_id == into_id)) is not None:
        session.execute(sa.delete(REFERRALS).where(REFERRALS.c.friend_id == from_id))
    else:
        session.execute(sa.update(REFERRALS).where(REFERRALS.c.friend_id == from_id).values(friend_id=into_id))
    selfish = session.execute(
        sa.update(REFERRALS)
        .where(REFERRALS.c.friend_id == into_id, REFERRALS.c.referrer_id == into_id, REFERRALS.c.status == "attributed")
        .values(status="rejected", updated_at=now)
    ).rowcount
    if selfish:
        decide(
            session,
            f"reward:{into_id}",
            "rejected",
            "self_referral",
            now,
            friend_id=into_id,
            referrer_id=into_id,
            detail={"shared": ["customer"], "merged": from_id},
        )


def export_customer(session: Session, customer_ids: list[str]) -> dict[str, Any]:
    """The customers' referral codes, their referrals as friend or referrer, and the decisions about them."""
    mine = sa.or_(REFERRALS.c.friend_id.in_(customer_ids), REFERRALS.c.referrer_id.in_(customer_ids))
    decisions = LoyaltyReferralDecision
    return {
        "loyalty_referral_codes": privacy.rows_of(session, LoyaltyReferralCode.customer_id, customer_ids),
        "loyalty_referrals": privacy.plain(
            [dict(r._mapping) for r in session.execute(sa.select(REFERRALS).where(mine).order_by("attributed_at"))]
        ),
        "loyalty_referral_decisions": privacy.plain(
            [
                privacy.as_dict(row)
                for row in session.scalars(
                    sa.select(decisions)
                    .where(sa.or_(decisions.friend_id.in_(customer_ids), decisions.referrer_id.in_(customer_ids)))
                    .order_by(decisions.id)
                )
            ]
        ),
    }


def erase_customer(session: Session, customer_id: str, pseudonym: str, now: datetime) -> privacy.Tally:
    """Codes and marks deleted, open referrals ended, the rest kept under the pseudonym without details."""
    codes = privacy.delete_of(session, LoyaltyReferralCode.customer_id, customer_id)
    marks = privacy.delete_of(session, LoyaltyReferralMark.customer_id, customer_id)
    theirs = sa.or_(REFERRALS.c.friend_id == customer_id, REFERRALS.c.referrer_id == customer_id)
    for row in session.execute(sa.select(REFERRALS).where(theirs, REFERRALS.c.status == "attributed")).all():
        decide(
            session,
            f"reward:{row.friend_id}",
            "void",
            "erased",
            now,
            friend_id=row.friend_id,
            referrer_id=row.referrer_id,
            code=row.code,
        )
    ended = session.execute(
        sa.update(REFERRALS).where(theirs, REFERRALS.c.status == "attributed").values(status="void", updated_at=now)
    ).rowcount
    decisions = LoyaltyReferralDecision
    cleared = sa.or_(decisions.friend_id == customer_id, decisions.referrer_id == customer_id)
    session.execute(sa.update(decisions).where(cleared).values(detail={}, message_id=None), execution_options=FAST)
    privacy.rename_in(session, decisions.key, customer_id, pseudonym)
    renamed = privacy.move_to(session, decisions.friend_id, customer_id, pseudonym)
    renamed += privacy.move_to(session, decisions.referrer_id, customer_id, pseudonym)
    referrals = privacy.move_to(
        session, LoyaltyReferral.friend_id, customer_id, pseudonym, device=None, network=None, message_id=None
    )
    referrals += privacy.move_to(session, LoyaltyReferral.referrer_id, customer_id, pseudonym)
    return {
        "deleted": {"loyalty_referral_codes": codes, "loyalty_referral_marks": marks},
        "ended": {"referrals": ended},
        "pseudonymised": {"loyalty_referrals": referrals, "loyalty_referral_decisions": renamed},
    }
