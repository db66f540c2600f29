"""A dry run of earn rules over history: what a set of rules would have awarded, and cost, had it been in force over
a past period, computed by the same functions the ledger earns with (`rules.order_points`, the daily cap, the
bonuses' once-per semantics). Nothing is written. The caller gathers the period's orders with their lines and the
events that earn bonuses (`orchestration.loyalty_dry_run`); tiers are the customers' current ones."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from boomerang.config import LoyaltySettings
from boomerang.loyalty import bonuses, rules
from boomerang.loyalty.daily import DailyCap
from boomerang.loyalty.orders import OrderLike, lost_share


@dataclass(frozen=True)
class BonusEvent:
    """An event that may earn a bonus: `kind` as in `rules.BONUS_TRIGGERS` (first orders and birthdays included)."""

    kind: str
    customer_id: str
    at: datetime
    message_id: str | None = None


@dataclass
class Totals:
    points: int = 0  # awarded
    taken_back: int = 0  # of the orders' points, by their cancellations and refunds
    orders: int = 0  # earning
    customers: set[str] = field(default_factory=set)
    cashback: int = 0
    capped: int = 0  # points the caps held back
    bonuses: dict[str, int] = field(default_factory=dict)
    campaigns: dict[str, int] = field(default_factory=dict)
    by_month: dict[str, int] = field(default_factory=dict)

    def add(self, customer: str, at: datetime, points: int) -> None:
        self.points += points
        self.customers.add(customer)
        month = at.strftime("%Y-%m")
        self.by_month[month] = self.by_month.get(month, 0) + points

    def report(self, settings: LoyaltySettings, months: Sequence[str]) -> dict[str, Any]:
        net = self.points - self.taken_back
        return {
            "points": self.points,
            "cost": round(self.points * settings.point_value, 2),
            "net_points": net,
            "net_cost": round(net * settings.point_value, 2),
            "taken_back": self.taken_back,
            "orders": self.orders,
            "customers": len(self.customers),
            "cashback": self.cashback,
            "capped": self.capped,
            "bonuses": dict(sorted(self.bonuses.items())),
            "campaigns": dict(sorted(self.campaigns.items())),
            "by_month": [{"month": m, "points": self.by_month.get(m, 0)} for m in months],
        }


def simulate(
    earn_rules: rules.EarnRules,
    orders: Iterable[tuple[OrderLike, Sequence[rules.Line]]],
    events: Iterable[BonusEvent],
    *,
    settings: LoyaltySettings,
    tiers: Mapping[str, float],
) -> Totals:
    """What `earn_rules` award for these orders (with their lines; customer ids live) and bonus events, taken in
    time order."""
    stream = sorted(
        [(o.placed_at, 0, o, lines) for o, lines in orders] + [(e.at, 1, e, ()) for e in events],
        key=lambda item: (item[0], item[1]),
    )
    cap = DailyCap(earn_rules.caps.per_day)
    totals, given = Totals(), set()
    for at, _, item, lines in stream:
        if isinstance(item, BonusEvent):
            _bonus(earn_rules, item, cap, totals, given)
            continue
        order, customer = item, item.customer_id
        if not customer or lost_share(order) >= 1 or order.status in ("placed",):
            continue
        got = rules.order_points(float(order.total or 0), lines, at, earn_rules, settings, tiers.get(customer, 1.0))
        points = cap.grant(customer, at.date(), got.points)
        totals.capped += got.uncapped - points
        if points <= 0:
            continue
        totals.orders += 1
        totals.cashback += points
        totals.add(customer, at, points)
        if got.campaign:
            totals.campaigns[got.campaign] = totals.campaigns.get(got.campaign, 0) + points
        share = lost_share(order)
        totals.taken_back += points if share >= 1 else int(points * share)
    return totals


def _bonus(earn_rules: rules.EarnRules, event: BonusEvent, cap: DailyCap, totals: Totals, given: set[str]) -> None:
    wanted = earn_rules.bonus(event.kind)
    key = bonuses.reference(event.kind, event.customer_id, event.at, event.message_id)
    if not wanted or key in given:
        return
    given.add(key)
    points = cap.grant(event.customer_id, event.at.date(), wanted)
    totals.capped += wanted - points
    if points:
        totals.bonuses[event.kind] = totals.bonuses.get(event.kind, 0) + points
        totals.add(event.customer_id, event.at, points)


def compare(
    current: tuple[int, rules.EarnRules],
    proposed: rules.EarnRules,
    orders: Sequence[tuple[OrderLike, Sequence[rules.Line]]],
    events: Sequence[BonusEvent],
    *,
    settings: LoyaltySettings,
    tiers: Mapping[str, float],
    since: datetime,
    until: datetime,
) -> dict[str, Any]:
    """The rules in force and the proposed ones over the same history, side by side, and the difference."""
    months = _months(since, until)
    now = simulate(current[1], orders, events, settings=settings, tiers=tiers).report(settings, months)
    new = simulate(proposed, orders, events, settings=settings, tiers=tiers).report(settings, months)
    keys = ("points", "cost", "net_points", "net_cost", "orders", "customers")
    return {
        "since": since,
        "until": until,
        "unit": settings.unit_name,
        "point_value": settings.point_value,
        "current_version": current[0],
        "current": now,
        "proposed": new,
        "difference": {k: round(new[k] - now[k], 2) for k in keys},
    }


def _months(since: datetime, until: datetime) -> list[str]:
    out, year, month = [], since.year, since.month
    while (year, month) <= (until.year, until.month):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out
