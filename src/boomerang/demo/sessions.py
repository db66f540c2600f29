"""Visits as funnel steps: browsing, carts and checkouts left behind, purchases, anonymous visits before sign-up.

A visit becomes a run of steps in a fixed order (landing page, product views, sign-up, adds, removes,
cart, checkout, order), each a row of numpy arrays; the frames with dicts are made later.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from boomerang.demo.behaviour import FAVOURITE_WEIGHTS, Calendar, Customers, Lines, Purchases, local_time
from boomerang.demo.catalog import Catalog

BROWSE, CART, CHECKOUT, PURCHASE = range(4)
(
    PAGE,
    VIEW,
    IDENTIFY,
    ADD,
    REMOVE,
    CART_VIEWED,
    CHECKOUT_STARTED,
    ORDER,
    SHIPPED,
    DELIVERED,
    CANCELLED,
    REFUNDED,
    NPS,
    REVIEW,
    PROFILE,
) = range(15)
BLOCKS = np.array([PAGE, VIEW, IDENTIFY, ADD, REMOVE, CART_VIEWED, CHECKOUT_STARTED, ORDER])


@dataclass
class Visitors:
    """People who browse anonymously and never sign up."""

    offset: np.ndarray
    favourites: np.ndarray


@dataclass
class Sessions:
    actor: np.ndarray  # customers first, then visitors
    start: np.ndarray
    kind: np.ndarray
    signup: np.ndarray  # the visit in which the customer signs up
    order: np.ndarray  # the order it places, -1 for none
    focus: np.ndarray  # the leaf category it is about
    home: np.ndarray  # lands on the home page (else on the focus category's page)
    lead: np.ndarray  # a product a browsing visit comes to look at (-1 for none)
    item_start: np.ndarray  # where its cart items begin in the item arrays
    item_product: np.ndarray  # cart items of all visits, grouped by visit; removed ones last
    item_quantity: np.ndarray
    item_removed: np.ndarray


@dataclass
class Steps:
    """One row per event to be: who, when, what, and what it is about."""

    actor: np.ndarray
    t: np.ndarray
    code: np.ndarray
    anonymous: np.ndarray  # carries only the anonymous id
    session: np.ndarray  # -1 outside visits
    product: np.ndarray  # -1 for none
    quantity: np.ndarray
    order: np.ndarray  # -1 for none
    value: np.ndarray  # NPS score or review rating

    @staticmethod
    def concat(parts: list[Steps]) -> Steps:
        return Steps(*(np.concatenate([getattr(p, name) for p in parts]) for name in Steps.__dataclass_fields__))

    def take(self, index: np.ndarray) -> Steps:
        return Steps(*(getattr(self, name)[index] for name in Steps.__dataclass_fields__))


def _leaf(rng: np.random.Generator, favourites: np.ndarray, catalog: Catalog, loyal: float) -> np.ndarray:
    """A favourite leaf (by preference) with probability `loyal`, else any leaf by popularity."""
    n = len(favourites)
    slot = np.minimum(np.searchsorted(np.cumsum(FAVOURITE_WEIGHTS), rng.random(n), side="right"), 2)
    return np.where(rng.random(n) < loyal, favourites[np.arange(n), slot], catalog.random_leaves(rng, n))


def _visits(
    rng: np.random.Generator, c: Customers, visitors: Visitors, p: Purchases, lines: Lines, cal: Calendar
) -> list[tuple]:
    """Visits as (actor, start, kind, is_signup, order, forced product) arrays, one tuple per reason to visit."""
    n, v, days = len(c.signup), len(visitors.offset), cal.days
    signup = np.r_[c.signup, np.full(v, np.inf)]
    offset = np.r_[c.offset, visitors.offset]
    parts = []

    def add(actor, start, kind, is_signup=False, order=None, forced=None):
        k = len(actor)
        parts.append(
            (
                actor,
                start,
                np.broadcast_to(kind, k),
                np.broadcast_to(is_signup, k),
                np.full(k, -1) if order is None else order,
                np.full(k, -1) if forced is None else forced,
            )
        )

    at_signup = np.full(n, -1)
    at_signup[p.customer[p.at_signup]] = np.flatnonzero(p.at_signup)
    add(
        np.arange(n),
        c.signup,
        np.where(at_signup >= 0, PURCHASE, np.where(rng.random(n) < 0.15, CART, BROWSE)),
        True,
        at_signup,
    )
    later = np.flatnonzero(~p.at_signup)
    add(p.customer[later], p.start[later], PURCHASE, order=later)
    # A third of purchases follow a cart left behind earlier with the same product (carts get recovered).
    recovered = later[rng.random(len(later)) < 0.35]
    before = p.start[recovered] - rng.uniform(0.05, 2.5, len(recovered))
    ok = before > c.signup[p.customer[recovered]]
    first_line = np.searchsorted(lines.order, recovered[ok])
    add(
        p.customer[recovered[ok]],
        before[ok],
        np.where(rng.random(ok.sum()) < 0.3, CHECKOUT, CART),
        forced=lines.product[first_line],
    )
    # Research before buying: visits to the same category in the week before a purchase.
    research = np.repeat(later, rng.poisson(0.8, len(later)))
    before = local_time(rng, p.start[research] - rng.uniform(0.1, 7.0, len(research)), offset[p.customer[research]])
    ok = (before > c.signup[p.customer[research]]) & (before < p.start[research])
    add(p.customer[research[ok]], before[ok], BROWSE, forced=lines.product[np.searchsorted(lines.order, research[ok])])
    # Anonymous visits in the days before signing up.
    who = np.repeat(np.arange(n), rng.poisson(0.8, n))
    start = local_time(rng, signup[who] - rng.exponential(4.0, len(who)), offset[who])
    ok = (start >= 0) & (start < signup[who] - 0.003)
    add(who[ok], start[ok], np.where(rng.random(ok.sum()) < 0.08, CART, BROWSE))
    # Browsing while interested: engaged buyers visit more; interest fades after dropping out.
    interest = np.where(
        c.buyer,
        np.where(np.isfinite(p.last), p.last + rng.exponential(25.0, n), days),
        c.signup + rng.exponential(40.0, n),
    )
    w0, w1 = cal.warp(c.signup), cal.warp(np.minimum(interest, days))
    who = np.repeat(np.arange(n), rng.poisson((0.06 + 1.8 * c.rate) * np.maximum(w1 - w0, 0)))
    start = local_time(rng, cal.unwarp(w0[who] + rng.random(len(who)) * (w1 - w0)[who]), offset[who])
    u = rng.random(len(who))
    add(who, start, np.where(u < 0.12, CHECKOUT, np.where(u < 0.36, CART, BROWSE)))
    # Visitors: one visit, sometimes a few more within days.
    who = n + np.repeat(np.arange(v), 1 + rng.poisson(0.4, v))
    first = cal.unwarp(rng.random(v) * cal.warp(np.array([days]))[0])
    repeat = np.r_[False, who[1:] == who[:-1]]
    start = local_time(rng, first[who - n] + repeat * rng.exponential(6.0, len(who)), offset[who])
    add(who, start, np.where(rng.random(len(who)) < 0.12, CART, BROWSE))
    return parts


def plan(
    rng: np.random.Generator,
    c: Customers,
    visitors: Visitors,
    p: Purchases,
    lines: Lines,
    cal: Calendar,
    catalog: Catalog,
) -> Sessions:
    """Every visit of a slice of customers and visitors, sorted by person and time."""
    parts = _visits(rng, c, visitors, p, lines, cal)
    actor, start, kind, is_signup, order, forced = (np.concatenate(col) for col in zip(*parts))
    keep = (kind == PURCHASE) | ((start >= 0) & (start < cal.days - 0.05))
    actor, start, kind, is_signup, order, forced = (a[keep] for a in (actor, start, kind, is_signup, order, forced))
    sort = np.lexsort((start, actor))
    actor, start, kind, is_signup, order, forced = (a[sort] for a in (actor, start, kind, is_signup, order, forced))
    s = len(actor)
    favourites = np.vstack([c.favourites, visitors.favourites])[actor]
    focus = _leaf(rng, favourites, catalog, 0.8)
    focus = np.where(forced >= 0, catalog.leaf[np.maximum(forced, 0)], focus)
    if len(lines.product):
        first_line = np.minimum(np.searchsorted(lines.order, np.maximum(order, 0)), len(lines.product) - 1)
        focus = np.where(order >= 0, catalog.leaf[lines.product[first_line]], focus)
    lead = np.where(kind == BROWSE, forced, -1)
    return _with_items(
        rng,
        Sessions(
            actor,
            start,
            kind,
            is_signup,
            order,
            focus,
            rng.random(s) < 0.45,
            lead,
            np.zeros(0, int),
            np.zeros(0, int),
            np.zeros(0),
            np.zeros(0, bool),
        ),
        favourites,
        forced,
        lines,
        catalog,
    )


def _with_items(rng, s: Sessions, favourites, forced, lines: Lines, catalog: Catalog) -> Sessions:
    """Cart items: an order's lines, or one or two products of a cart left behind; some added then removed."""
    count = len(s.actor)
    session_of_order = np.full(int(s.order.max(initial=-1)) + 1, -1)
    buys = np.flatnonzero(s.order >= 0)
    session_of_order[s.order[buys]] = buys
    carts = np.flatnonzero((s.kind == CART) | (s.kind == CHECKOUT))
    second = rng.random(len(carts)) < 0.35
    first_product = np.where(forced[carts] >= 0, forced[carts], catalog.available[catalog.pick(rng, s.focus[carts])])
    other = catalog.available[catalog.pick(rng, _leaf(rng, favourites[carts], catalog, 0.85))]
    second &= other != first_product
    removed_second = second & (rng.random(len(carts)) < 0.2)
    extra = buys[rng.random(len(buys)) < 0.12]
    parts = [
        (session_of_order[lines.order], lines.product, lines.quantity, np.zeros(len(lines.order), bool)),
        (carts, first_product, 1.0 + (rng.random(len(carts)) < 0.15), np.zeros(len(carts), bool)),
        (carts[second], other[second], np.ones(second.sum()), removed_second[second]),
        (extra, catalog.available[catalog.pick(rng, s.focus[extra])], np.ones(len(extra)), np.ones(len(extra), bool)),
    ]
    session, product, quantity, removed = (np.concatenate(col) for col in zip(*parts))
    keep = session >= 0
    sort = np.argsort(session[keep], kind="stable")
    session, product, quantity, removed = (a[keep][sort] for a in (session, product, quantity, removed))
    s.item_start = np.searchsorted(session, np.arange(count))
    s.item_product, s.item_quantity, s.item_removed = product, quantity, removed
    return s


def steps(rng: np.random.Generator, s: Sessions, signup: np.ndarray, catalog: Catalog) -> Steps:
    """The events of every visit, in funnel order, seconds to minutes apart."""
    count = len(s.actor)
    items = np.diff(np.r_[s.item_start, len(s.item_product)])
    removed = np.bincount(
        np.searchsorted(s.item_start, np.flatnonzero(s.item_removed), side="right") - 1, minlength=count
    )
    views = items + np.where(s.kind == BROWSE, 1 + rng.poisson(2.0, count), rng.poisson(1.6, count))
    cart_viewed = (s.kind >= CHECKOUT) | ((s.kind == CART) & (rng.random(count) < 0.55))
    sizes = np.stack(
        [
            np.ones(count, int),
            views,
            s.signup.astype(int),
            items,
            removed,
            cart_viewed.astype(int),
            (s.kind >= CHECKOUT).astype(int),
            (s.kind == PURCHASE).astype(int),
        ],
        axis=1,
    )
    ends = np.cumsum(sizes, axis=1)
    total = ends[:, -1]
    session = np.repeat(np.arange(count), total)
    pos = np.arange(len(session)) - np.repeat(np.cumsum(total) - total, total)
    block = (pos[:, None] >= ends[session]).sum(axis=1)
    within = pos - (ends - sizes)[session, block]
    code = BLOCKS[block]
    item = s.item_start[session] + within
    item = np.where(code == REMOVE, item + (items - removed)[session], item)
    has_item = ((code == VIEW) & (within < items[session])) | (code == ADD) | (code == REMOVE)
    browsing = np.where(rng.random(len(session)) < 0.75, s.focus[session], catalog.random_leaves(rng, len(session)))
    item = np.where(has_item, item, len(s.item_product))  # points at the padding below
    item_product, item_quantity = np.r_[s.item_product, -1], np.r_[s.item_quantity, 0.0]
    product = np.where(has_item, item_product[item], np.where(code == VIEW, catalog.pick(rng, browsing), -1))
    lead = (code == VIEW) & (within == 0) & (s.lead[session] >= 0)
    product = np.where(lead, s.lead[session], product)
    quantity = np.where(has_item & (code != VIEW), item_quantity[item], 0.0)
    gap = np.minimum(
        np.where(code == ORDER, 60 + rng.exponential(90.0, len(code)), 8 + rng.exponential(45.0, len(code))), 900
    )
    gap[pos == 0] = 0.0
    seconds = np.cumsum(gap)
    seconds -= np.repeat(seconds[np.cumsum(total) - total], total)
    t = s.start[session] + seconds / 86400
    actor = s.actor[session]
    anonymous = (s.start[session] < signup[actor]) | (s.signup[session] & (block < 2))
    return Steps(
        actor=actor,
        t=t,
        code=code,
        anonymous=anonymous,
        session=session,
        product=product,
        quantity=quantity,
        order=np.where(code == ORDER, s.order[session], -1),
        value=np.zeros(len(code), int),
    )
