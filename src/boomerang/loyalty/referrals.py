"""Referrals: a friend who comes with a customer's code is attributed to them, and when the friend's first paid
order is delivered (and not lost), the referrer earns `referrer_points` and the friend `friend_points`. Every
decision is a row of `loyalty_referral_decisions` with its reason; points go through the ledger once per reference
(`referral:{friend}:referrer`, `referral:{friend}:friend`), so a retried or reordered batch pays nothing twice.

- **Attribution** (`follow`, on every accepted batch): an event of any type carrying a code
  (`referrals_guards.code_in`) attributes its customer (the friend) to the code's owner, once per friend and code.
  It is rejected with a reason when the code is no one's (`unknown_code`); the friend is the referrer, or shares an
  email, a phone, a device or a shipping address with them (`self_referral`); the friend already has a referral
  (`already_referred`: the first attribution wins); the friend bought before: an order of theirs earned points in
  an earlier batch, or was placed before the event in this one (`not_new`); or one device or network has brought
  too many friends within the window (`velocity`).
- **The first order** is the friend's first order seen paid (paid, shipped, delivered, partially refunded) that was
  placed after the attributing event; one placed before it shows the friend was not new (`not_new`).
- **Reward** when that order is `delivered` and not wholly cancelled or returned: the guards run again, with what
  is known of the friend by then (`self_referral`; `velocity` when the referrer had `max_rewards_per_referrer`
  rewards within the window), then both are paid as lots spendable at once, and a `Referral Rewarded` event is told
  for the referrer (`friend_id`, `order_id`, `points`, `friend_points`). A first order lost before delivery ends
  the referral without reward (`void`).
- **Reversal**: a first order wholly cancelled or returned after the reward takes both awards back from their lots,
  as far as the lots still hold them (what was spent meanwhile is recorded as unrecovered). A partial refund keeps
  the reward.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.config import LoyaltySettings
from boomerang.customers.merge import live_ids
from boomerang.db import insert_ignore
from boomerang.loyalty import due, lots, programme
from boomerang.loyalty import referrals_guards as guards
from boomerang.loyalty.ledger import TRANSACTIONS, Book
from boomerang.loyalty.orders import OrderLike, lost_share
from boomerang.loyalty.referrals_links import DECISIONS, REFERRALS, owner
from boomerang.loyalty.tiers import Notice

SOURCE = "referral"
REWARDED = "Referral Rewarded"
PAID = ("paid", "shipped", "delivered", "partially_refunded")
ROLES = ("referrer", "friend")


def decide(session: Session, key: str, decision: str, reason: str, now: datetime, **row: Any) -> bool:
    """Log a decision once per key; returns whether it is new."""
    values = {"friend_id": None, "referrer_id": None, "code": None, "order_id": None, "message_id": None} | row
    values["detail"] = values.get("detail") or {}
    statement = insert_ignore(session, DECISIONS).values(key=key, decision=decision, reason=reason, at=now, **values)
    return session.execute(statement.returning(DECISIONS.c.id)).first() is not None  # rowcount: -1 on psycopg


def follow(session: Session, happenings: Sequence[Any], orders: Sequence[OrderLike], *, now: datetime) -> list[Notice]:
    """Attribute the friends these events bring, and reward, void or reverse on the orders they touched; flushes.
    Returns the `Referral Rewarded` events to tell."""
    settings = programme.of(session)
    if not settings.referrals.enabled:
        return []
    ids = {h.customer_id for h in happenings if h.customer_id} | {o.customer_id for o in orders if o.customer_id}
    live = live_ids(session, ids)
    landings = [
        (h, cid, landing)
        for h in happenings
        if (cid := live.get(h.customer_id)) and (landing := guards.code_in(session, h))
    ]
    # Marks are read only for those they can matter to: referrers and friends already, and the friends landing now.
    concerned = guards.involved(session, set(live.values())) | {cid for _, cid, _ in landings}
    seen: dict[str, set[tuple[str, str]]] = {}
    for h in happenings:
        cid = live.get(h.customer_id)
        if cid in concerned:
            seen.setdefault(cid, set()).update(guards.marks_of(session, h))
    for h, cid, landing in landings:
        _attribute(session, h, cid, landing, orders, live, seen.get(cid, set()), settings, now)
    guards.remember(session, seen, now=now)
    return _follow_orders(session, orders, live, settings, now)


# -- attribution -------------------------------------------------------------------------------------------------


def _attribute(
    session: Session,
    happening: Any,
    friend: str,
    landing: guards.Landing,
    orders: Sequence[OrderLike],
    live: dict[str, str],
    marks: set[tuple[str, str]],
    settings: LoyaltySettings,
    now: datetime,
) -> None:
    key = f"code:{friend}:{landing.code}"
    if session.scalar(sa.select(DECISIONS.c.id).where(DECISIONS.c.key == key)) is not None:
        return  # decided already: the same code again changes nothing
    referrer = owner(session, landing.code)
    row = {"friend_id": friend, "referrer_id": referrer, "code": landing.code, "message_id": happening.message_id[:128]}
    if referrer is None:
        decide(session, key, "rejected", "unknown_code", now, **row)
        return
    if referrer == friend:
        decide(session, key, "rejected", "self_referral", now, **row, detail={"shared": ["customer"]})
        return
    earlier = session.scalar(sa.select(REFERRALS.c.referrer_id).where(REFERRALS.c.friend_id == friend))
    if earlier is not None:
        decide(session, key, "rejected", "already_referred", now, **row, detail={"referred_by": earlier})
        return
    if bought := _bought_before(session, friend, happening.timestamp, orders, live):
        decide(session, key, "rejected", "not_new", now, **row, detail={"orders": bought[:10]})
        return
    if shared := guards.shared(session, friend, referrer, marks):
        decide(session, key, "rejected", "self_referral", now, **row, detail={"shared": shared})
        return
    if crowded := guards.crowded(session, landing, settings.referrals, now):
        decide(session, key, "rejected", "velocity", now, **row, detail=crowded)
        return
    referral = {
        "friend_id": friend,
        "referrer_id": referrer,
        "code": landing.code,
        "status": "attributed",
        "channel": landing.channel,
        "device": landing.device,
        "network": landing.network,
        "message_id": row["message_id"],
        "landed_at": happening.timestamp,
        "attributed_at": now,
        "order_id": None,
        "rewarded_at": None,
        "updated_at": now,
    }
    added = session.execute(insert_ignore(session, REFERRALS).values(**referral).returning(REFERRALS.c.friend_id))
    if added.first() is None:  # another worker attributed the friend meanwhile
        decide(session, key, "rejected", "already_referred", now, **row)
        return
    decide(session, key, "attributed", "code", now, **row, detail={"channel": landing.channel})


def _bought_before(
    session: Session, friend: str, landed_at: datetime, orders: Sequence[OrderLike], live: dict[str, str]
) -> list[str]:
    """The friend's orders that earned points before the code came: in an earlier batch, or placed before it."""
    earned = session.scalars(
        sa.select(TRANSACTIONS.c.order_id).where(
            TRANSACTIONS.c.customer_id == friend, TRANSACTIONS.c.kind == "earn", TRANSACTIONS.c.order_id.is_not(None)
        )
    ).all()
    later = {str(o.id) for o in orders if live.get(o.customer_id) == friend and o.placed_at >= landed_at}
    return sorted(set(earned) - later)


# -- the first order ---------------------------------------------------------------------------------------------


def _follow_orders(
    session: Session, orders: Sequence[OrderLike], live: dict[str, str], settings: LoyaltySettings, now: datetime
) -> list[Notice]:
    mine: dict[str, list[OrderLike]] = {}
    for order in orders:
        if (cid := live.get(order.customer_id)) is not None:
            mine.setdefault(cid, []).append(order)
    if not mine:
        return []
    rows = session.execute(
        sa.select(REFERRALS).where(
            REFERRALS.c.friend_id.in_(sorted(mine)), REFERRALS.c.status.in_(("attributed", "rewarded"))
        )
    ).all()
    notices = []
    for row in rows:
        theirs = sorted(mine[row.friend_id], key=lambda o: (o.placed_at, str(o.id)))
        base = {"friend_id": row.friend_id, "referrer_id": row.referrer_id, "code": row.code}
        early = [str(o.id) for o in theirs if o.status in PAID and o.placed_at < row.landed_at]
        if row.status == "attributed" and early:
            _end(session, row, "rejected", "not_new", now, **base, order_id=early[0], detail={"orders": early[:10]})
            continue
        order_id = row.order_id
        if order_id is None:
            first = next((o for o in theirs if o.status in PAID), None)
            if first is None:
                continue
            order_id = str(first.id)
            session.execute(
                sa.update(REFERRALS).where(REFERRALS.c.friend_id == row.friend_id).values(order_id=order_id)
            )
        order = next((o for o in theirs if str(o.id) == order_id), None)
        if order is None:
            continue
        lost = lost_share(order) >= 1
        base["order_id"] = order_id
        if row.status == "attributed" and lost:
            _end(session, row, "void", order.status, now, **base)
        elif row.status == "attributed" and order.status == "delivered":
            notices += _reward(session, row, order_id, base, settings, now)
        elif row.status == "rewarded" and lost:
            _reverse(session, row.friend_id, now)
            _end(session, row, "reversed", order.status, now, **base)
    return notices


def _end(session: Session, row: Any, status: str, reason: str, now: datetime, **decision: Any) -> bool:
    """Move the referral on from the status it was read in, and log why; returns whether this call moved it."""
    moved = session.execute(
        sa.update(REFERRALS)
        .where(REFERRALS.c.friend_id == row.friend_id, REFERRALS.c.status == row.status)
        .values(status=status, updated_at=now, **({"rewarded_at": now} if status == "rewarded" else {}))
    ).rowcount
    stage = "reward" if row.status == "attributed" else "reverse"
    decide(session, f"{stage}:{row.friend_id}", "rejected" if status == "rejected" else status, reason, now, **decision)
    return moved == 1


# -- paying and taking back --------------------------------------------------------------------------------------


def _reward(
    session: Session, row: Any, order_id: str, base: dict[str, Any], settings: LoyaltySettings, now: datetime
) -> list[Notice]:
    friend, referrer = row.friend_id, row.referrer_id
    if shared := guards.shared(session, friend, referrer):
        _end(session, row, "rejected", "self_referral", now, **base, detail={"shared": shared})
        return []
    if full := guards.rewards_full(session, referrer, settings.referrals, now):
        _end(session, row, "rejected", "velocity", now, **base, detail=full)
        return []
    points = {"referrer": settings.referrals.referrer_points, "friend": settings.referrals.friend_points}
    book = Book(session, now)
    book.lock([referrer, friend])
    taken = book.taken(f"referral:{friend}:{role}" for role in ROLES)
    for role, cid in (("referrer", referrer), ("friend", friend)):
        reference = f"referral:{friend}:{role}"
        if points[role] <= 0 or reference in taken:
            continue
        due.settle(book, cid)
        posting = lots.credit(
            book,
            cid,
            points[role],
            reference=reference,
            kind="award",
            source=SOURCE,
            available_at=now,
            expires_at=programme.expires_at(now, settings),
            reason=f"referral: the first order {order_id} delivered",
        )
        posting.detail = {"role": role, "friend_id": friend, "referrer_id": referrer, "order_id": order_id}
    book.write()
    if not _end(session, row, "rewarded", "first_order_delivered", now, **base, detail=points):
        return []
    properties = {"friend_id": friend, "order_id": order_id, "points": points["referrer"]}
    return [
        Notice(f"referral-rewarded:{friend}", REWARDED, referrer, now, properties | {"friend_points": points["friend"]})
    ]


def _reverse(session: Session, friend: str, now: datetime) -> None:
    """Take both awards of the friend's referral back from their lots, as far as the lots still hold them."""
    references = [f"referral:{friend}:{role}" for role in ROLES]
    paid = session.execute(
        sa.select(TRANSACTIONS.c.id, TRANSACTIONS.c.reference, TRANSACTIONS.c.customer_id).where(
            TRANSACTIONS.c.reference.in_(references)
        )
    ).all()
    book = Book(session, now)
    book.lock([p.customer_id for p in paid])
    done = book.taken(f"{p.reference}:reverse" for p in paid)
    for p in paid:
        if f"{p.reference}:reverse" in done:
            continue
        lot = book.lot(p.id)  # a lot's id is the id of the transaction that made it
        book.lock([lot.customer_id])
        lots.revoke(book, lot, f"{p.reference}:reverse", SOURCE, {"friend_id": friend})
    book.write()
