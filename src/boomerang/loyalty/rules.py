"""The programme's earn rules, as data: what an order earns (a base cashback, other percentages by category or brand,
exclusions, dated campaign multipliers, caps) and the fixed bonuses events earn (registration, first order, a
review, an NPS answer, a birthday, joining the Telegram bot). Validated like segments and journeys, versioned in the
store (`rule_versions`), and applied the same way live (`orders`, `bonuses`) and in a dry run over history.

An order's points: its paid total is spread over its lines in proportion to their amounts (so shipping, tax and
an order-wide discount fall on every line alike); an excluded line earns nothing; every other line earns its
share times the percentage of the most specific cashback rule that matches it (a brand, else the longest category
prefix, else `base_percent`), times the best campaign running when the order was placed, times the customer's tier
multiplier. The sum is rounded down once, then capped per order (`caps.per_order`) and per customer and day
(`caps.per_day`, which counts bonuses too). An order without lines earns the base percentage of its total."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from boomerang.config import LoyaltySettings
from boomerang.core.clock import naive_utc
from boomerang.core.errors import ValidationFailed

# Bonuses for what a customer does, by name: the event that earns it and how often (once per customer, once per
# event, once a year). "First Order" and "Birthday" are not events a shop sends: the ledger sees a customer's first
# paid order, and the daily round finds birthdays.
BONUS_TRIGGERS: dict[str, tuple[str, str]] = {
    "registration": ("Signed Up", "customer"),
    "first_order": ("First Order", "customer"),
    "review": ("Product Reviewed", "event"),
    "nps_answer": ("NPS Survey Answered", "event"),
    "birthday": ("Birthday", "year"),
    "telegram_joined": ("Telegram Bot Joined", "customer"),
}
MAX_POINTS = 10_000_000


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Cashback(_Rule):
    """A percentage for the lines of one category (and what is below it) or one brand."""

    percent: float = Field(ge=0, le=100)
    category: str | None = Field(default=None, min_length=1, max_length=1024, description='"Coffee > Beans"')
    brand: str | None = Field(default=None, min_length=1, max_length=255)

    @model_validator(mode="after")
    def _one_target(self) -> Cashback:
        if (self.category is None) == (self.brand is None):
            raise ValueError("name either a category or a brand")
        return self


class Campaign(_Rule):
    """Orders placed from `starts` until `ends` earn `multiplier` times (on `categories` only, where given)."""

    name: str = Field(min_length=1, max_length=100)
    multiplier: float = Field(gt=0, le=100)
    starts: datetime
    ends: datetime
    categories: list[str] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _in_order(self) -> Campaign:
        self.starts, self.ends = naive_utc(self.starts), naive_utc(self.ends)
        if self.ends <= self.starts:
            raise ValueError("ends must be after starts")
        return self


class Bonus(_Rule):
    kind: Literal["registration", "first_order", "review", "nps_answer", "birthday", "telegram_joined"]
    points: int = Field(gt=0, le=MAX_POINTS)


class Caps(_Rule):
    per_order: int | None = Field(default=None, gt=0, le=MAX_POINTS, description="most points one order earns")
    per_day: int | None = Field(default=None, gt=0, le=MAX_POINTS, description="most points a customer earns a day")


class Exclusions(_Rule):
    gift_cards: bool = Field(default=True, description="lines of gift cards earn nothing")
    discounted_items: bool = Field(default=False, description="lines sold below their catalog price earn nothing")
    categories: list[str] = Field(default_factory=list, max_length=1000)
    skus: list[str] = Field(default_factory=list, max_length=10_000)


class EarnRules(_Rule):
    base_percent: float = Field(ge=0, le=100, description="of an order's paid amount, as points")
    cashback: list[Cashback] = Field(default_factory=list, max_length=1000)
    campaigns: list[Campaign] = Field(default_factory=list, max_length=100)
    bonuses: list[Bonus] = Field(default_factory=list, max_length=len(BONUS_TRIGGERS))
    caps: Caps = Field(default_factory=Caps)
    exclude: Exclusions = Field(default_factory=Exclusions)

    @model_validator(mode="after")
    def _one_bonus_each(self) -> EarnRules:
        kinds = [b.kind for b in self.bonuses]
        if len(set(kinds)) != len(kinds):
            raise ValueError("each bonus kind may appear once")
        return self

    def bonus(self, kind: str) -> int:
        return next((b.points for b in self.bonuses if b.kind == kind), 0)


def initial(settings: LoyaltySettings) -> EarnRules:
    """The rules before a shop writes any: the settings' cashback on every order, gift cards excluded."""
    return EarnRules(base_percent=settings.cashback_percent)


def parse(raw: Any) -> EarnRules:
    """Rules from a document (JSON or YAML already read); ValidationFailed naming each bad field."""
    try:
        return EarnRules.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed.of(exc, "rules") from None


# -- what an order earns -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """An order line as the rules read it (the event pipeline joins the catalog's brand and price)."""

    amount: float  # quantity times unit price
    sku: str | None = None
    category: str | None = None
    brand: str | None = None
    name: str | None = None
    catalog_price: float | None = None
    unit_price: float | None = None


@dataclass(frozen=True)
class Earned:
    points: int
    uncapped: int
    multiplier: float  # the campaign's
    campaign: str | None


def _exact(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def _under(category: str | None, prefix: str) -> bool:
    """Whether a category path is `prefix` or below it ("Coffee > Beans" is under "Coffee"), case aside."""
    if not category:
        return False
    path = [p.strip().casefold() for p in category.split(">")]
    want = [p.strip().casefold() for p in prefix.split(">")]
    return path[: len(want)] == want


def excluded(line: Line, exclude: Exclusions) -> bool:
    if line.sku and line.sku in exclude.skus:
        return True
    if any(_under(line.category, c) for c in exclude.categories):
        return True
    if exclude.gift_cards and any("gift card" in (t or "").casefold() for t in (line.category, line.name)):
        return True
    return bool(
        exclude.discounted_items
        and line.catalog_price
        and line.unit_price is not None
        and line.unit_price < line.catalog_price - 0.005
    )


def percent_for(line: Line, rules: EarnRules) -> float:
    """The most specific cashback that matches: a brand's, else the deepest category's, else the base."""
    if line.brand:
        for rule in rules.cashback:
            if rule.brand and rule.brand.casefold() == line.brand.casefold():
                return rule.percent
    best, depth = rules.base_percent, 0
    for rule in rules.cashback:
        if rule.category and _under(line.category, rule.category):
            level = len(rule.category.split(">"))
            if level > depth:
                best, depth = rule.percent, level
    return best


def campaign_at(rules: EarnRules, at: datetime, line: Line | None = None) -> Campaign | None:
    """The best campaign running at `at` (for that line, where a campaign names categories)."""
    running = [
        c
        for c in rules.campaigns
        if c.starts <= at < c.ends
        and (not c.categories or (line is not None and any(_under(line.category, p) for p in c.categories)))
    ]
    return max(running, key=lambda c: c.multiplier, default=None)


def order_points(
    total: float, lines: Iterable[Line], placed_at: datetime, rules: EarnRules, settings: LoyaltySettings, tier: float
) -> Earned:
    """What an order paid `total` earns under `rules` (before the daily cap)."""
    if not total or total <= 0 or not math.isfinite(total):
        return Earned(0, 0, 1.0, None)
    lines = [line for line in lines if line.amount and line.amount > 0 and math.isfinite(line.amount)]
    whole = sum(_exact(line.amount) for line in lines)
    value, best = Decimal(0), None
    if not lines or whole <= 0:
        campaign = campaign_at(rules, placed_at)
        best = campaign
        value = _exact(total) * _exact(rules.base_percent) * _exact(campaign.multiplier if campaign else 1)
    else:
        for line in lines:
            if excluded(line, rules.exclude):
                continue
            share = _exact(total) * _exact(line.amount) / whole
            campaign = campaign_at(rules, placed_at, line)
            if campaign and (best is None or campaign.multiplier > best.multiplier):
                best = campaign
            value += share * _exact(percent_for(line, rules)) * _exact(campaign.multiplier if campaign else 1)
    value = value / 100 / _exact(settings.point_value) * _exact(tier)
    points = max(0, int(value.to_integral_value(rounding="ROUND_FLOOR")))
    capped = min(points, rules.caps.per_order) if rules.caps.per_order else points
    return Earned(capped, points, best.multiplier if best else 1.0, best.name if best else None)
