"""Who buys what and when: sign-ups, a BG/NBD-like purchase process, order lines, coupons and order lifecycles.

Times are float days since the first simulated day (midnight UTC). Everything is numpy arrays over a
slice of customers; nothing here builds dicts or frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from boomerang.demo.catalog import Catalog

# Shares of visits by local hour: quiet nights, a lunch bump, busy evenings.
HOURS = np.array(
    [
        0.6,
        0.3,
        0.2,
        0.15,
        0.15,
        0.3,
        0.8,
        1.6,
        2.4,
        2.8,
        3.0,
        3.2,
        3.6,
        3.4,
        3.0,
        3.0,
        3.2,
        3.6,
        4.2,
        5.2,
        5.8,
        5.4,
        3.8,
        1.8,
    ]
)
HOUR_CUM = np.cumsum(HOURS) / HOURS.sum()
# Seasonality of visits and purchases: by month (gift season at the end of the year) and by weekday (Monday first).
MONTHS = np.array([0.85, 0.9, 0.95, 0.95, 0.95, 0.88, 0.82, 0.85, 1.0, 1.05, 1.2, 1.45])
WEEKDAYS = np.array([1.0, 1.0, 1.0, 1.02, 0.95, 0.88, 1.12])
COUPONS = (
    "WINTER10",
    "WINTER10",
    "SPRING10",
    "SPRING10",
    "SPRING10",
    "SUMMER10",
    "SUMMER10",
    "SUMMER10",
    "AUTUMN10",
    "AUTUMN10",
    "HOLIDAY15",
    "HOLIDAY15",
)


@dataclass
class Calendar:
    """Seasonal intensity per day, and the time warp that makes a constant-rate process seasonal."""

    days: int
    intensity: np.ndarray  # per day, mean 1 over the simulated days
    month: np.ndarray  # 1..12 per day
    black_friday: np.ndarray  # bool per day: Black Friday to Cyber Monday
    _grid: np.ndarray
    _cum: np.ndarray

    def warp(self, t: np.ndarray) -> np.ndarray:
        return np.interp(t, self._grid, self._cum)

    def unwarp(self, w: np.ndarray) -> np.ndarray:
        return np.interp(w, self._cum, self._grid)

    def day(self, t: np.ndarray) -> np.ndarray:
        return np.clip(np.floor(t).astype(int), 0, self.days)


def calendar(start: date, days: int) -> Calendar:
    """The shop's year: busier in November and December, a Black Friday peak, quieter summer Saturdays."""
    dates = [start + timedelta(days=d) for d in range(days + 2)]
    month = np.array([d.month for d in dates])
    weekday = np.array([d.weekday() for d in dates])
    friday = np.array([d.month == 11 and d.weekday() == 4 and 22 <= d.day <= 28 for d in dates])
    black_friday = np.zeros(len(dates), bool)
    for at in np.flatnonzero(friday):
        black_friday[at : at + 4] = True
    christmas = np.array([d.month == 12 and 24 <= d.day <= 26 for d in dates])
    intensity = MONTHS[month - 1] * WEEKDAYS[weekday] * np.where(black_friday, 2.2, 1.0) * np.where(christmas, 0.6, 1.0)
    intensity = intensity / intensity[:days].mean()
    cum = np.r_[0.0, np.cumsum(intensity)]
    return Calendar(
        days=days,
        intensity=intensity,
        month=month,
        black_friday=black_friday,
        _grid=np.arange(len(cum), dtype=float),
        _cum=cum,
    )


def sign_ups(rng: np.random.Generator, n: int, cal: Calendar) -> np.ndarray:
    """Sorted sign-up times: seasonal, and more each month as the shop grows."""
    growth = 0.7 + 0.6 * np.arange(cal.days) / max(cal.days, 1)
    cum = np.r_[0.0, np.cumsum(cal.intensity[: cal.days] * growth)]
    days = np.interp(rng.random(n) * cum[-1], cum, np.arange(cal.days + 1, dtype=float))
    return np.sort(days)


def local_time(rng: np.random.Generator, t: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Move each time to a likely hour of its local day (offset: hours from UTC)."""
    local_day = np.floor(t + offset / 24)
    hour = np.searchsorted(HOUR_CUM, rng.random(len(t)), side="right") + rng.random(len(t))
    return local_day + (hour - offset) / 24


@dataclass
class Customers:
    """Hidden traits of a slice of customers that drive what they do."""

    signup: np.ndarray
    offset: np.ndarray  # hours from UTC
    rate: np.ndarray  # purchases per day while alive (gamma across customers)
    dropout: np.ndarray  # chance of leaving after each purchase (beta across customers)
    buyer: np.ndarray  # ever buys
    immediate: np.ndarray  # buys in the sign-up session
    spend: np.ndarray  # mean order value (gamma across customers)
    coupons: np.ndarray  # how often a coupon is used
    favourites: np.ndarray  # (n, 3) leaf indexes, most liked first
    staple: np.ndarray  # the consumable leaf they replenish
    usual: np.ndarray  # their usual product of that leaf
    affinity: np.ndarray  # chance that an order replenishes the staple


FAVOURITE_WEIGHTS = np.array([0.55, 0.3, 0.15])


def favourites(rng: np.random.Generator, n: int, catalog: Catalog) -> np.ndarray:
    """Three distinct leaves per person, popular leaves more often (Gumbel top-k)."""
    keys = np.log(catalog.leaf_weight)[None, :] + rng.gumbel(size=(n, len(catalog.leaf_weight)))
    return np.argsort(-keys, axis=1)[:, :3]


def customers(rng: np.random.Generator, signup: np.ndarray, offset: np.ndarray, catalog: Catalog) -> Customers:
    """Draw the hidden traits: BG/NBD rate and dropout, gamma spend, favourite and staple categories."""
    n = len(signup)
    fav = favourites(rng, n, catalog)
    cycle = catalog.leaf_cycle
    consumable = cycle[fav] > 0
    first = np.where(consumable.any(axis=1), fav[np.arange(n), consumable.argmax(axis=1)], -1)
    fallback = np.flatnonzero(cycle > 0)
    weights = catalog.leaf_weight[fallback] / catalog.leaf_weight[fallback].sum()
    staple = np.where(first >= 0, first, rng.choice(fallback, size=n, p=weights))
    likes_staple = consumable[:, :2].any(axis=1)
    affinity = np.where(likes_staple, rng.beta(4, 2, n), rng.beta(1, 5, n))
    rate = np.minimum(rng.gamma(1.2, (1 / 60) / 1.2, n), 0.2)
    return Customers(
        signup=signup,
        offset=offset,
        rate=rate,
        dropout=rng.beta(1.6, 1.9, n),
        buyer=rng.random(n) < 0.66,
        immediate=rng.random(n) < 0.45,
        spend=rng.gamma(4.0, 38.0 / 4.0, n),
        coupons=rng.beta(1, 7, n),
        favourites=fav,
        staple=staple,
        usual=catalog.available[catalog.pick(rng, staple)],
        affinity=affinity,
    )


@dataclass
class Purchases:
    """Orders as the sessions that place them: who, when, and whether they replenish the staple."""

    customer: np.ndarray
    start: np.ndarray  # the purchase session's start
    first: np.ndarray  # the customer's first order
    at_signup: np.ndarray  # placed in the sign-up session
    replenish: np.ndarray
    last: np.ndarray  # per customer: time of the last purchase before dropping out, inf if still alive


def purchases(rng: np.random.Generator, c: Customers, cal: Calendar, catalog: Catalog) -> Purchases:
    """BG/NBD with a replenishment clock: exponential gaps on seasonal time, cut short when the staple runs out."""
    n = len(c.signup)
    horizon = cal.days - 0.2  # leaves room for the purchase session itself
    delayed = local_time(rng, cal.unwarp(cal.warp(c.signup) + rng.exponential(12.0, n)), c.offset)
    t = np.where(c.buyer, np.where(c.immediate, c.signup, np.maximum(delayed, c.signup + 0.01)), np.inf)
    alive = t < horizon
    last = np.full(n, np.inf)
    cycle = catalog.leaf_cycle[c.staple]
    parts = []
    number = 0
    while alive.any():
        idx = np.flatnonzero(alive)
        now = t[idx]
        replenish = rng.random(len(idx)) < c.affinity[idx]
        parts.append((idx, now, np.full(len(idx), number == 0), c.immediate[idx] & (number == 0), replenish))
        leaves = rng.random(len(idx)) < c.dropout[idx]
        last[idx[leaves]] = now[leaves]
        gap = cal.unwarp(cal.warp(now) + rng.exponential(1.0, len(idx)) / c.rate[idx])
        # Most who replenish come back when the pack runs out; some forget and drift to their usual rate.
        runs_out = now + cycle[idx] * rng.gamma(9.0, 1 / 9.0, len(idx)) * rng.choice([1.0, 1.0, 1.5], len(idx))
        remembers = replenish & (rng.random(len(idx)) < 0.6)
        nxt = local_time(rng, np.where(remembers, np.minimum(gap, runs_out), gap), c.offset[idx])
        nxt = np.maximum(nxt, now + 0.05)
        t[idx] = nxt
        alive[idx] = ~leaves & (nxt < horizon)
        number += 1
    if not parts:
        empty = np.zeros(0, int)
        return Purchases(empty, np.zeros(0), empty.astype(bool), empty.astype(bool), empty.astype(bool), last)
    cols = [np.concatenate(col) for col in zip(*parts)]
    order = np.lexsort((cols[1], cols[0]))
    customer, start, first, at_signup, replenish = (col[order] for col in cols)
    return Purchases(customer, start, first, at_signup, replenish, last)


@dataclass
class Lines:
    """Order lines, grouped by order (index into Purchases)."""

    order: np.ndarray
    product: np.ndarray
    quantity: np.ndarray


def lines(rng: np.random.Generator, c: Customers, p: Purchases, cal: Calendar, catalog: Catalog) -> Lines:
    """What each order holds: the staple when replenishing, favourites, a gift in the holiday season."""
    m = len(p.customer)
    who = p.customer
    extra = rng.poisson(np.clip(c.spend[who] / 25 - 0.6, 0.05, 4.0))
    count = 1 + np.minimum(extra, 5)
    holiday = (cal.month[cal.day(p.start)] == 12) | cal.black_friday[cal.day(p.start)]
    gift = holiday & (rng.random(m) < 0.25)
    count = count + gift
    order = np.repeat(np.arange(m), count)
    pos = np.arange(len(order)) - np.repeat(np.cumsum(count) - count, count)
    buyer = who[order]
    slot = np.minimum(np.searchsorted(np.cumsum(FAVOURITE_WEIGHTS), rng.random(len(order)), side="right"), 2)
    leaf = np.where(rng.random(len(order)) < 0.75, c.favourites[buyer, slot], catalog.random_leaves(rng, len(order)))
    gifts = np.flatnonzero(np.array([n.startswith("Gifts") for n in catalog.leaf_names]))
    is_gift = gift[order] & (pos == count[order] - 1)
    leaf = np.where(is_gift, rng.choice(gifts, size=len(order)), leaf)
    first_staple = (pos == 0) & p.replenish[order]
    leaf = np.where(first_staple, c.staple[buyer], leaf)
    product = catalog.available[catalog.pick(rng, leaf)]
    product = np.where(first_staple & (rng.random(len(order)) < 0.75), c.usual[buyer], product)
    # Drop a product drawn twice for one order.
    keep = np.zeros(len(order), bool)
    keep[np.unique(order * catalog.size + product, return_index=True)[1]] = True
    order, product, leaf = order[keep], product[keep], leaf[keep]
    consumable = catalog.leaf_cycle[catalog.leaf[product]] > 0
    more = (rng.random(len(order)) < np.where(consumable, 0.3, 0.08)).astype(int)
    quantity = 1 + more + (consumable & (rng.random(len(order)) < 0.08))
    return Lines(order=order, product=product, quantity=quantity.astype(float))


@dataclass
class Orders:
    """Money and lifecycle of each order; times are inf where a step never happens within the period."""

    subtotal: np.ndarray
    discount: np.ndarray
    shipping: np.ndarray
    total: np.ndarray
    coupon: np.ndarray  # index into coupon_codes, -1 for none
    coupon_codes: tuple
    cancelled: np.ndarray
    shipped: np.ndarray
    delivered: np.ndarray
    refunded: np.ndarray
    refund: np.ndarray  # amount refunded (0 where none by the end)
    refund_line: np.ndarray  # the line index refunded, -1 for the whole order
    status: np.ndarray  # status at the end of the period


CODES = ("WELCOME10", "BLACKFRIDAY20", "WINTER10", "SPRING10", "SUMMER10", "AUTUMN10", "HOLIDAY15")
RATES = np.array([0.10, 0.20, 0.10, 0.10, 0.10, 0.10, 0.15])


def money_and_lifecycle(
    rng: np.random.Generator,
    c: Customers,
    p: Purchases,
    lines_: Lines,
    placed: np.ndarray,
    cal: Calendar,
    catalog: Catalog,
) -> Orders:
    """Totals with coupons and shipping, then paid -> shipped -> delivered, some cancelled, some returned."""
    m = len(placed)
    amount = catalog.price[lines_.product] * lines_.quantity
    subtotal = np.round(np.bincount(lines_.order, amount, minlength=m), 2)
    day = cal.day(placed)
    seasonal = np.array([CODES.index(code) for code in COUPONS])[cal.month[day] - 1]
    coupon = np.select(
        [
            p.first & (rng.random(m) < 0.3),
            cal.black_friday[day] & (rng.random(m) < 0.55),
            rng.random(m) < c.coupons[p.customer],
        ],
        [0, 1, seasonal],
        -1,
    )
    discount = np.where(coupon >= 0, np.round(subtotal * RATES[np.maximum(coupon, 0)], 2), 0.0)
    shipping = np.where(subtotal - discount >= 49, 0.0, 4.9)
    total = np.round(subtotal - discount + shipping, 2)
    end = cal.days
    cancels = rng.random(m) < 0.03
    cancelled = np.where(cancels, placed + rng.uniform(0.02, 0.8, m), np.inf)
    shipped = np.where(cancels, np.inf, placed + 0.3 + rng.gamma(2.0, 0.4, m))
    delivered = shipped + 1.0 + rng.gamma(2.0, 0.8, m)
    durable = np.bincount(lines_.order, catalog.leaf_cycle[catalog.leaf[lines_.product]] == 0, minlength=m) > 0
    returns = ~cancels & (rng.random(m) < np.where(durable, 0.09, 0.04))
    refunded = np.where(returns, delivered + rng.uniform(2, 21, m), np.inf)
    count = np.bincount(lines_.order, minlength=m)
    starts = np.cumsum(count) - count
    partial = (count > 1) & (rng.random(m) < 0.65)
    refund_line = np.where(partial, starts + (rng.random(m) * count).astype(int), -1)
    line_amount = amount[np.maximum(refund_line, 0)] * (1 - RATES[np.maximum(coupon, 0)] * (coupon >= 0))
    refund = np.where(partial, np.round(np.minimum(line_amount, total - 0.01), 2), total)
    times = [np.full(m, -np.inf), shipped, delivered, refunded, cancelled]
    names = np.array(["paid", "shipped", "delivered", "returned", "cancelled"])
    happened = np.stack([t < end for t in times])
    status = names[np.where(happened[4], 4, np.where(happened[3], 3, happened[:3].sum(axis=0) - 1))]
    status = np.where((status == "returned") & partial, "partially_refunded", status)
    refund = np.where(happened[3], refund, 0.0)
    return Orders(
        subtotal=subtotal,
        discount=discount,
        shipping=shipping,
        total=total,
        coupon=coupon,
        coupon_codes=CODES,
        cancelled=cancelled,
        shipped=shipped,
        delivered=delivered,
        refunded=refunded,
        refund=refund,
        refund_line=refund_line,
        status=status,
    )
