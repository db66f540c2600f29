"""Referral codes and links, and reading referrals and their decisions (the API, the CLI, the dashboard, templates,
the Telegram bot and the customer's own view).

A customer's code is made the first time anyone asks for it (11 symbols drawn with `secrets` from the promo codes'
readable alphabet, without 0/O/1/I: about 54 bits, so nobody finds codes by guessing) and never changes; after a
merge a customer may have two, and the oldest is the one their links carry (both still attribute). The link is the
shop's address (`messaging.shop_url`) with `ref=CODE&utm_source=referral&utm_medium=CHANNEL&utm_campaign=referral`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.customers.merge import live_ids
from boomerang.db import in_chunks, insert_ignore
from boomerang.loyalty import checkout, codes
from boomerang.loyalty.models import REFERRAL_STATES, LoyaltyReferral, LoyaltyReferralCode, LoyaltyReferralDecision
from boomerang.loyalty.referrals_guards import CHANNEL, CODE, CODE_PARAM

CODES = LoyaltyReferralCode.__table__
REFERRALS = LoyaltyReferral.__table__
DECISIONS = LoyaltyReferralDecision.__table__
DECISION_KINDS = ("attributed", "rejected", "rewarded", "void", "reversed")
MAX_LIMIT = 1000


def codes_of(session: Session, customer_ids: Iterable[str], *, now: datetime) -> dict[str, str]:
    """Each customer's referral code, made for those who have none yet (flushes)."""
    ids = set(customer_ids)
    out: dict[str, str] = {}
    for _ in range(3):  # a fresh code taken meanwhile (astronomically rare) is drawn again
        query = lambda chunk: (  # noqa: E731
            sa.select(CODES.c.customer_id, CODES.c.code)
            .where(CODES.c.customer_id.in_(chunk))
            .order_by(CODES.c.created_at.desc(), CODES.c.code.desc())
        )
        out.update({row.customer_id: row.code for row in in_chunks(session, query, ids)})  # the oldest wins
        missing = sorted(ids - set(out))
        if not missing:
            break
        fresh = codes.random_codes(len(missing), length=codes.MIN_LENGTH)
        rows = [{"code": c, "customer_id": cid, "created_at": now} for cid, c in zip(missing, fresh)]
        session.execute(insert_ignore(session, CODES), rows)
    return out


def code_of(session: Session, customer_id: str, *, now: datetime) -> str:
    return codes_of(session, [customer_id], now=now)[customer_id]


def owner(session: Session, code: str) -> str | None:
    """The live customer whose code it is, or None."""
    if not CODE.match(code):
        return None
    found = session.scalar(sa.select(CODES.c.customer_id).where(CODES.c.code == code))
    return live_ids(session, [found]).get(found) if found else None


def link(code: str, shop_url: str, channel: str = "link") -> str:
    """The shop's address with the code and the referral UTM tags (what the shop's URL has already is kept)."""
    if not isinstance(channel, str) or not CHANNEL.match(channel):
        raise ValidationFailed([{"field": "channel", "reason": "must be 1 to 32 of a-z, 0-9, '_', '.', '-'"}])
    parts = urlsplit(shop_url.rstrip("/") + "/")
    tags = {CODE_PARAM: code, "utm_source": "referral", "utm_medium": channel, "utm_campaign": "referral"}
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in tags] + list(tags.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def links_of(session: Session, customer_ids: Iterable[str], *, shop_url: str, now: datetime) -> dict[str, str]:
    """Each customer's referral link (channel `link`), their code made where they have none."""
    return {cid: link(code, shop_url) for cid, code in codes_of(session, customer_ids, now=now).items()}


def referral_link(
    session: Session, customer: str, *, shop_url: str, now: datetime, channel: str = "link"
) -> dict[str, Any]:
    """A customer's code and link (made on demand), and how their referrals stand."""
    link("X", shop_url, channel)  # the channel checked before anything is written
    cid = checkout.customer(session, customer)
    code = code_of(session, cid, now=now)
    counts = dict(
        session.execute(
            sa.select(REFERRALS.c.status, sa.func.count()).where(REFERRALS.c.referrer_id == cid).group_by("status")
        ).all()
    )
    return {
        "customer_id": cid,
        "code": code,
        "channel": channel,
        "link": link(code, shop_url, channel),
        "referrals": {state: counts.get(state, 0) for state in REFERRAL_STATES},
    }


# -- reading -------------------------------------------------------------------------------------------------------


def _page(limit: Any, offset: Any) -> None:
    problems = []
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        problems.append({"field": "limit", "reason": f"must be a whole number from 1 to {MAX_LIMIT}"})
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= 1_000_000_000:
        problems.append({"field": "offset", "reason": "must be a whole number from 0"})
    if problems:
        raise ValidationFailed(problems)


def _customer(session: Session, text: str | None, field: str) -> str | None:
    if text is None or text == "":
        return None
    try:
        return checkout.customer(session, text)
    except NotFound:
        raise NotFound(f"unknown customer '{text}'", field=field) from None


def _one_of(value: str | None, allowed: tuple[str, ...], field: str) -> None:
    if value not in (None, "") and value not in allowed:
        raise ValidationFailed([{"field": field, "reason": f"must be one of {', '.join(allowed)}"}])


def referrals(
    session: Session, *, referrer: str | None = None, status: str | None = None, limit: int = 50, offset: int = 0
) -> dict[str, Any]:
    """Referrals, newest first, of one referrer or everyone's, in one status or all."""
    _page(limit, offset)
    _one_of(status, REFERRAL_STATES, "status")
    cid = _customer(session, referrer, "referrer")
    query = sa.select(REFERRALS).order_by(REFERRALS.c.attributed_at.desc(), REFERRALS.c.friend_id)
    if cid is not None:
        query = query.where(REFERRALS.c.referrer_id == cid)
    if status:
        query = query.where(REFERRALS.c.status == status)
    rows = session.execute(query.limit(limit).offset(offset)).all()
    return {"items": [dict(r._mapping) for r in rows], "limit": limit, "offset": offset}


def decisions(
    session: Session,
    *,
    referrer: str | None = None,
    friend: str | None = None,
    decision: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """Every decision with its reason, newest first, of one referrer, one friend, one kind, or all."""
    _page(limit, offset)
    _one_of(decision, DECISION_KINDS, "decision")
    referrer_id, friend_id = _customer(session, referrer, "referrer"), _customer(session, friend, "friend")
    query = sa.select(DECISIONS).order_by(DECISIONS.c.id.desc())
    if referrer_id is not None:
        query = query.where(DECISIONS.c.referrer_id == referrer_id)
    if friend_id is not None:
        query = query.where(DECISIONS.c.friend_id == friend_id)
    if decision:
        query = query.where(DECISIONS.c.decision == decision)
    rows = session.execute(query.limit(limit).offset(offset)).all()
    return {"items": [dict(r._mapping) for r in rows], "limit": limit, "offset": offset}


def summary(session: Session) -> dict[str, Any]:
    """Referrals by status, decisions by kind and reason, and the referrers with the most friends."""
    states = dict(session.execute(sa.select(REFERRALS.c.status, sa.func.count()).group_by(REFERRALS.c.status)).all())
    reasons = session.execute(
        sa.select(DECISIONS.c.decision, DECISIONS.c.reason, sa.func.count())
        .group_by(DECISIONS.c.decision, DECISIONS.c.reason)
        .order_by(sa.func.count().desc(), DECISIONS.c.decision, DECISIONS.c.reason)
    ).all()
    top = session.execute(
        sa.select(REFERRALS.c.referrer_id, sa.func.count().label("friends"))
        .group_by(REFERRALS.c.referrer_id)
        .order_by(sa.func.count().desc(), REFERRALS.c.referrer_id)
        .limit(10)
    ).all()
    return {
        "by_status": {state: states.get(state, 0) for state in REFERRAL_STATES},
        "by_reason": [{"decision": d, "reason": r, "count": n} for d, r, n in reasons],
        "top_referrers": [{"referrer_id": r.referrer_id, "friends": r.friends} for r in top],
        "codes": session.scalar(sa.select(sa.func.count()).select_from(CODES)),
    }
