"""Loyalty in the operational store: the points ledger (transactions and their entries, lots, the balances they
add up to, checkout holds) and the promo codes journeys issue.

The ledger is double-entry and append-only: a transaction (`loyalty_transactions`, unique by its external
reference) writes entries (`loyalty_ledger`) that move points from one account to another, so its amounts sum to
zero. Every account belongs to one customer (their wallet, pending and held points; and the programme's side of
what they earned, redeemed, lost to expiry or had adjusted), so one customer's movements lock one balance row.
Lots (`loyalty_lots`) are what each earn left unspent; `loyalty_balances` caches every account's sum."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from boomerang.db import Base, BigInt, Money

# A customer's accounts. An entry's amount moves points into its account (positive) or out of it (negative):
# wallet, pending and held are what the customer has; the others are where points come from and go to, so their
# balances are zero or negative (earned) and zero or positive (redeemed, expired), adjusted either.
ACCOUNTS = ("wallet", "pending", "held", "earned", "redeemed", "expired", "adjusted")
LOT_STATES = ("pending", "available", "expired")
HOLD_STATES = ("held", "confirmed", "cancelled", "expired")


class LoyaltyEntry(Base):
    """Promo codes issued by journeys (and, before the ledger, their points: moved into lots by migration 0016)."""

    __tablename__ = "loyalty_entries"

    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)  # idempotency
    customer_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # promo_code
    points: Mapped[int | None]
    code: Mapped[str | None] = mapped_column(sa.String(32), unique=True)
    discount_percent: Mapped[float | None]
    expires_at: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(sa.String(100))
    at: Mapped[datetime]


class LoyaltyTransaction(Base):
    """One movement of points, done once per external reference (`order:o1:earn`, `journey:i1:n2`...)."""

    __tablename__ = "loyalty_transactions"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(sa.String(200), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # earn, award, mature, hold, redeem, release, expire...
    customer_id: Mapped[str] = mapped_column(sa.String(40), index=True)  # whom it is about (follows merges)
    order_id: Mapped[str | None] = mapped_column(sa.String(128), index=True)
    source: Mapped[str] = mapped_column(sa.String(100))
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime]


class LoyaltyLedgerEntry(Base):
    """One side of a movement: `amount` points into (or, negative, out of) a customer's account, from a lot."""

    __tablename__ = "loyalty_ledger"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    transaction_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("loyalty_transactions.id"), index=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40), index=True)  # the account's owner, as written
    account: Mapped[str] = mapped_column(sa.String(16))
    lot_id: Mapped[int | None] = mapped_column(BigInt)
    amount: Mapped[int] = mapped_column(BigInt)


class LoyaltyLot(Base):
    """What one earn (an order, a journey's award, an adjustment) left: `remaining` of `amount` is in the
    customer's pending account until `available_at`, then in their wallet until spent, held or `expires_at`.
    Its id is the id of the transaction that made it."""

    __tablename__ = "loyalty_lots"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=False)
    customer_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    order_id: Mapped[str | None] = mapped_column(sa.String(128), index=True)  # the order that earned it
    amount: Mapped[int] = mapped_column(BigInt)
    remaining: Mapped[int] = mapped_column(BigInt)
    reversed: Mapped[int] = mapped_column(BigInt, default=0)  # of the order's earn, taken back by refunds so far
    state: Mapped[str] = mapped_column(sa.String(12))
    available_at: Mapped[datetime]
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
    created_at: Mapped[datetime]


class LoyaltyBalance(Base):
    """Each account's sum of entries, kept in the transaction that writes them (`ledger.check` proves it), and the
    row a customer's movements lock. `due_at`: the earliest time a lot or a hold of theirs may change by itself."""

    __tablename__ = "loyalty_balances"

    customer_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    wallet: Mapped[int] = mapped_column(BigInt, default=0)
    pending: Mapped[int] = mapped_column(BigInt, default=0)
    held: Mapped[int] = mapped_column(BigInt, default=0)
    earned: Mapped[int] = mapped_column(BigInt, default=0)
    redeemed: Mapped[int] = mapped_column(BigInt, default=0)
    expired: Mapped[int] = mapped_column(BigInt, default=0)
    adjusted: Mapped[int] = mapped_column(BigInt, default=0)
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    updated_at: Mapped[datetime]


class LoyaltyHold(Base):
    """Points set aside for an order at checkout, like a card authorisation: confirmed when it is paid, released
    when cancelled or when `expires_at` passes. `drawn` repeats the lots its transaction's entries drew on (what
    ends it goes back to them without reading the entries); `returned`: of the confirmed points, given back by
    refunds."""

    __tablename__ = "loyalty_holds"

    order_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    transaction_id: Mapped[int] = mapped_column(BigInt)  # the hold's own transaction
    points: Mapped[int] = mapped_column(BigInt)
    drawn: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {lot id: points}: the lots it drew on, in order
    total: Mapped[float] = mapped_column(Money)
    state: Mapped[str] = mapped_column(sa.String(12))
    expires_at: Mapped[datetime] = mapped_column(index=True)
    returned: Mapped[int] = mapped_column(BigInt, default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


# -- promo codes ---------------------------------------------------------------------------------------------------

POOL_KINDS = ("generated", "uploaded")
DISCOUNT_KINDS = ("percent", "fixed", "free_shipping", "points_multiplier")
REDEMPTION_STATES = ("held", "confirmed", "cancelled", "expired")


class PromoPool(Base):
    """A pool of promo codes (generated here or uploaded from another system) and the discount they give. When
    its unused codes fall below `low_stock_alert` the listings say so (and the log, once: `warned_at`)."""

    __tablename__ = "promo_pools"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(12))  # generated, uploaded
    discount_kind: Mapped[str] = mapped_column(sa.String(20))  # percent, fixed, free_shipping, points_multiplier
    value: Mapped[float] = mapped_column(Money)
    min_order: Mapped[float] = mapped_column(Money, default=0)
    uses_per_code: Mapped[int] = mapped_column(default=1)
    prefix: Mapped[str] = mapped_column(sa.String(16), default="")
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    low_stock_alert: Mapped[int | None]
    warned_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class PromoCode(Base):
    """One code of a pool: anyone's, or personal (`customer_id`); `uses` counts its held and confirmed
    redemptions, never above `max_uses`. `key`: the idempotency key of a code a journey issued; `value`: its own
    discount where it differs from the pool's."""

    __tablename__ = "promo_codes"

    code: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    pool_id: Mapped[int] = mapped_column(sa.ForeignKey("promo_pools.id"), index=True)
    customer_id: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    key: Mapped[str | None] = mapped_column(sa.String(200), unique=True)
    value: Mapped[float | None] = mapped_column(Money)
    uses: Mapped[int] = mapped_column(default=0)
    max_uses: Mapped[int]
    expires_at: Mapped[datetime | None]
    source: Mapped[str | None] = mapped_column(sa.String(100))
    created_at: Mapped[datetime]


class PromoRedemption(Base):
    """A code used on an order, once per code and order: held at checkout until `expires_at`, then confirmed
    (paid), cancelled, or expired (its use given back)."""

    __tablename__ = "promo_redemptions"
    __table_args__ = (sa.UniqueConstraint("code", "order_id"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(sa.String(40), sa.ForeignKey("promo_codes.code"))
    order_id: Mapped[str] = mapped_column(sa.String(128), index=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    state: Mapped[str] = mapped_column(sa.String(12))
    total: Mapped[float] = mapped_column(Money)
    amount: Mapped[float] = mapped_column(Money)  # the discount given
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class LoyaltyTier(Base):
    """A customer's tier (`loyalty.tiers`): held `since`, qualified by their paid spend and orders over the rolling
    period as last counted; `below_since`: when they were first seen below it (a downgrade waits out the grace)."""

    __tablename__ = "loyalty_tiers"

    customer_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    tier: Mapped[str] = mapped_column(sa.String(40), index=True)
    since: Mapped[datetime]
    below_since: Mapped[datetime | None]
    qualified_spend: Mapped[float] = mapped_column(Money, default=0.0)
    qualified_orders: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(index=True)  # last counted


class LoyaltyExpiryNotice(Base):
    """A lot whose coming expiry was announced (`Loyalty Points Expiring`): once per lot."""

    __tablename__ = "loyalty_expiry_notices"

    lot_id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=False)
    sent_at: Mapped[datetime]


# -- earn rules ----------------------------------------------------------------------------------------------------


class LoyaltyRuleVersion(Base):
    """One version of the programme's earn rules (`loyalty.rules`): the newest is the one in force. Every earn
    records the version it was computed by."""

    __tablename__ = "loyalty_rule_versions"

    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    rules: Mapped[dict[str, Any]]
    note: Mapped[str] = mapped_column(sa.String(500), default="")
    author: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime]


class LoyaltyDailyEarn(Base):
    """Points a customer earned by the earn rules on one day (of the order or the event), for `caps.per_day`:
    written with the customer's balance row locked."""

    __tablename__ = "loyalty_daily_earn"

    customer_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date(), primary_key=True)
    points: Mapped[int] = mapped_column(BigInt, default=0)


# -- referrals -----------------------------------------------------------------------------------------------------

REFERRAL_STATES = ("attributed", "rewarded", "void", "rejected", "reversed")


class LoyaltyReferralCode(Base):
    """A customer's referral code (`loyalty.referrals_links`): made on demand, never reused. A customer has one,
    or more after a merge (the oldest is the one their links carry; the others still attribute)."""

    __tablename__ = "loyalty_referral_codes"

    code: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    created_at: Mapped[datetime]


class LoyaltyReferral(Base):
    """A friend referred by a referrer, once per friend (the first attribution wins): attributed, then rewarded
    when their first paid order (`order_id`) is delivered, void when it is lost before, reversed when lost after,
    rejected when a guard stops the reward. `device` and `network` (digest, IP prefix) are what velocity counts."""

    __tablename__ = "loyalty_referrals"

    friend_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    referrer_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    code: Mapped[str] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(12), index=True)
    channel: Mapped[str] = mapped_column(sa.String(32))  # the link's utm_medium
    device: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    network: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    message_id: Mapped[str | None] = mapped_column(sa.String(128))  # the event that carried the code
    landed_at: Mapped[datetime]  # that event's own time
    attributed_at: Mapped[datetime] = mapped_column(index=True)  # when Boomerang attributed it
    order_id: Mapped[str | None] = mapped_column(sa.String(128), index=True)  # the friend's first paid order
    rewarded_at: Mapped[datetime | None] = mapped_column(index=True)
    updated_at: Mapped[datetime]


class LoyaltyReferralDecision(Base):
    """Every referral decision with its reason, once per `key`: attributed, rejected (unknown_code, self_referral,
    velocity, not_new, already_referred), rewarded, void, reversed."""

    __tablename__ = "loyalty_referral_decisions"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    decision: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str] = mapped_column(sa.String(32))
    friend_id: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    referrer_id: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    code: Mapped[str | None] = mapped_column(sa.String(32))
    order_id: Mapped[str | None] = mapped_column(sa.String(128))
    message_id: Mapped[str | None] = mapped_column(sa.String(128))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(index=True)


class LoyaltyReferralMark(Base):
    """A device or a shipping address seen on a referrer's or a friend's events, as a digest: what the
    self-referral guard compares."""

    __tablename__ = "loyalty_referral_marks"

    kind: Mapped[str] = mapped_column(sa.String(12), primary_key=True)  # device, address
    value: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, index=True)
    seen_at: Mapped[datetime]


# -- achievements ---------------------------------------------------------------------------------------------------


class LoyaltyAchievement(Base):
    """An achievement (`loyalty.achievements`): a badge and points awarded once when a customer's events meet its
    `condition` (`achievements_rules.Condition`). Editable; archived rather than deleted, so badges earned stay."""

    __tablename__ = "loyalty_achievements"

    key: Mapped[str] = mapped_column(sa.String(60), primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(100))
    description: Mapped[str] = mapped_column(sa.String(500), default="")
    badge: Mapped[str] = mapped_column(sa.String(16))
    points: Mapped[int] = mapped_column(default=0)
    condition: Mapped[dict[str, Any]]
    active: Mapped[bool] = mapped_column(default=False)
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    archived_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class LoyaltyAchievementProgress(Base):
    """One customer's progress towards one achievement: `count` of `target`, the compact `state` it is counted
    from (what was counted, bounded by the target), and `earned_at` once earned."""

    __tablename__ = "loyalty_achievement_progress"

    achievement_key: Mapped[str] = mapped_column(sa.String(60), primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, index=True)
    count: Mapped[int] = mapped_column(default=0)
    target: Mapped[int]
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    earned_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
