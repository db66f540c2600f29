"""Points from orders: the ledger follows each order's state, however and in whatever order its events came.

A paid order earns once (`order:{id}:earn`) what the earn rules in force give it (`rules.order_points`, over its
lines as the caller's `baskets` reads them), as a lot pending until `pending_days` after it was placed; one first
seen already cancelled or wholly refunded earns nothing. A customer's first earning order also earns the
`first_order` bonus, where the rules have one (taken back if that order is cancelled or returned whole). A
cancellation or a refund takes back
the share of that earn the order has lost (all of it when cancelled; refunded / total otherwise, rounded down, never
more than was earned), from the same lot, as far as the lot still holds it; and gives back the same share of the
points the order spent (its confirmed checkout hold). What each order has had taken back or given back is kept (on
the lot and the hold), so every step is a difference from there: retried or reordered events land on the same
balances. An order's `coupon`, where it is one of our promo codes, is redeemed for it (`codes_redeem`). Loyalty
and orders are siblings; the event pipeline, which sees both, hands the orders it touched to
`follow`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, Protocol

from sqlalchemy.orm import Session

from boomerang.config import LoyaltySettings
from boomerang.customers.merge import live_ids
from boomerang.loyalty import bonuses, codes_redeem, holds, lots, programme, rule_versions, rules, tiers
from boomerang.loyalty.daily import DailyCap
from boomerang.loyalty.ledger import Book, Lot, Posting

SOURCE = "order"
NOT_EARNING = ("placed",)  # not paid yet

Baskets = Callable[[Session, Sequence[str]], dict[str, list[rules.Line]]]  # order id -> its lines


class OrderLike(Protocol):
    """What the ledger reads of an order (an `orders.models.Order` is one)."""

    id: str
    customer_id: str | None
    status: str
    total: float
    refunded_total: float
    placed_at: datetime


@dataclass(frozen=True)
class OrderState:
    id: str
    customer_id: str | None
    status: str
    total: float
    refunded_total: float
    placed_at: datetime
    coupon: str | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> OrderState:
        """From an order as a mapping (an importer's row)."""
        return cls(
            id=str(row["id"]),
            customer_id=row.get("customer_id"),
            status=row.get("status") or "paid",
            total=float(row.get("total") or 0),
            refunded_total=float(row.get("refunded_total") or 0),
            placed_at=row["placed_at"],
            coupon=row.get("coupon"),
        )


def lost_share(order: OrderLike) -> Fraction:
    """How much of the order is gone: all of it when cancelled, the refunded share otherwise."""
    total, refunded = float(order.total or 0), float(order.refunded_total or 0)
    if order.status == "cancelled":
        return Fraction(1)
    if total > 0 and refunded > 0:
        return min(Fraction(1), Fraction(Decimal(repr(refunded))) / Fraction(Decimal(repr(total))))
    return Fraction(1) if order.status == "returned" else Fraction(0)


def _part(points: int, share: Fraction) -> int:
    return points if share >= 1 else math.floor(points * share)


def follow(
    session: Session,
    orders: Iterable[OrderLike],
    *,
    now: datetime,
    settings: LoyaltySettings | None = None,
    source: str = SOURCE,
    baskets: Baskets | None = None,
) -> dict[str, int]:
    """Make the ledger agree with these orders (earn, take back, give back); flushes. Returns transactions by kind.
    Without `baskets`, an order earns on its total alone."""
    latest = {str(o.id): o for o in orders}
    if not latest:
        return {}
    settings = settings or programme.of(session)
    version, earn_rules = rule_versions.current(session, settings)
    live = live_ids(session, {o.customer_id for o in latest.values() if o.customer_id})
    book = Book(session, now)
    book.lock(live.values())
    earned = book.order_lots(latest)
    held = {}
    ids = sorted(latest)
    for start in range(0, len(ids), 5000):
        held.update(holds.of_orders(session, ids[start : start + 5000]))
    book.lock([lot.customer_id for lot in earned.values()] + [h.customer_id for h in held.values()])
    multipliers = tiers.multipliers(session, live.values(), settings)  # the tier held when the order earns
    earning = [i for i in ids if i not in earned and _may_earn(latest[i], live)]
    may_earn = set(earning)  # asked once per order below: a list would make a large import quadratic
    lines = baskets(session, earning) if baskets and earning else {}
    cap = DailyCap(earn_rules.caps.per_day, session)
    cap.preload(live[latest[i].customer_id] for i in earning)
    earner = _Earner(book, settings, earn_rules, version, cap, source)
    lost: dict[str, str] = {}  # customer -> an order of theirs cancelled or returned whole
    for order_id in ids:
        order = latest[order_id]
        lot = earned.get(order_id)
        customer = live.get(order.customer_id) if order.customer_id else None
        share = lost_share(order)
        if lot is None and customer and order_id in may_earn:
            lot = earner.earn(order, customer, lines.get(order_id, ()), multipliers.get(customer, 1.0))
        if lot is not None and share > 0:
            _take_back(book, lot, _part(lot.amount, share), source)
        if customer and share >= 1:
            lost[customer] = order_id
        hold = held.get(order_id)
        if hold is not None and share > 0:
            _give_back(book, hold, share, source)
    earner.first_orders()
    if lost:
        bonuses.revoke_first_orders(book, lost, source)
    counts: dict[str, int] = {}
    for posting in book.postings:
        counts[posting.kind] = counts.get(posting.kind, 0) + 1
    book.write()
    cap.write()
    if redeemed := codes_redeem.follow_orders(session, latest.values(), now=now):
        counts["promo_code"] = redeemed
    return counts


def _may_earn(order: OrderLike, live: Mapping[str, str]) -> bool:
    return bool(order.customer_id in live and order.status not in NOT_EARNING and lost_share(order) < 1)


class _Earner:
    """Earns orders by the rules in force, under the daily cap; remembers whose first order earned."""

    def __init__(
        self,
        book: Book,
        settings: LoyaltySettings,
        earn_rules: rules.EarnRules,
        version: int,
        cap: DailyCap,
        source: str,
    ) -> None:
        self.book, self.settings, self.rules, self.version = book, settings, earn_rules, version
        self.cap, self.source = cap, source
        self.firsts: dict[str, OrderLike] = {}

    def earn(self, order: OrderLike, customer: str, lines: Iterable[rules.Line], multiplier: float) -> Lot | None:
        first = self.firsts.get(customer)
        if self.rules.bonus("first_order") and (first is None or order.placed_at < first.placed_at):
            self.firsts[customer] = order
        got = rules.order_points(float(order.total or 0), lines, order.placed_at, self.rules, self.settings, multiplier)
        points = self.cap.grant(customer, order.placed_at.date(), got.points)
        if points <= 0:
            return None
        available = programme.available_at(order.placed_at, self.settings)
        posting = lots.credit(
            self.book,
            customer,
            points,
            reference=f"order:{order.id}:earn",
            kind="earn",
            source=self.source,
            available_at=available,
            expires_at=programme.expires_at(available, self.settings),
            order_id=str(order.id),
        )
        posting.detail = {"rules_version": self.version, "tier_multiplier": multiplier}
        if got.campaign:
            posting.detail["campaign"] = got.campaign
        if points < got.uncapped:
            posting.detail["capped_from"] = got.uncapped
        return posting.lot

    def first_orders(self) -> None:
        """The first-order bonus, for customers whose earliest earning order is among these (and none before)."""
        if self.firsts:
            bonuses.first_orders(self.book, self.firsts, self.rules, self.settings, self.cap, self.version, self.source)


def _take_back(book: Book, lot: Lot, target: int, source: str) -> None:
    """Of the lot's earn, take back up to `target` in all, as far as the lot still holds it."""
    if target <= lot.reversed:
        return
    wanted = target - lot.reversed
    taken = 0 if lot.state == "expired" else min(wanted, lot.remaining)
    posting = Posting(f"order:{lot.order_id}:reverse:{target}", "reverse", lot.customer_id, source, book.now)
    posting.order_id = lot.order_id
    posting.detail = {"reversed_to": target, "unrecovered": wanted - taken}
    posting.move(taken, lot.account, "earned", lot=lot)
    book.post(posting)
    lot.reversed = target
    book.touch(lot)


def _give_back(book: Book, hold: holds.Hold, share: Fraction, source: str) -> None:
    """The order's spent points: a hold still open ends when the order is gone; a confirmed one gives back its
    share."""
    if hold.state == "held" and share >= 1:
        holds.release(book, hold, "cancelled", source=source)
    elif hold.state == "confirmed":
        target = _part(hold.points, share)
        holds.give_back(book, hold, target, f"order:{hold.order_id}:return:{target}", source=source)
