"""What happens after an order (shipping, delivery, cancellation, refund, NPS, reviews) and later profile updates."""

from __future__ import annotations

import numpy as np

from boomerang.demo.behaviour import Customers, Lines, Orders, Purchases, local_time
from boomerang.demo.catalog import Catalog
from boomerang.demo.sessions import CANCELLED, DELIVERED, NPS, PROFILE, REFUNDED, REVIEW, SHIPPED, Steps


def _steps(actor, t, code, *, order=None, product=None, value=None) -> Steps:
    k = len(actor)
    return Steps(
        actor=actor,
        t=t,
        code=np.full(k, code),
        anonymous=np.zeros(k, bool),
        session=np.full(k, -1),
        product=np.full(k, -1) if product is None else product,
        quantity=np.zeros(k),
        order=np.full(k, -1) if order is None else order,
        value=np.zeros(k, int) if value is None else value,
    )


def after_orders(
    rng: np.random.Generator,
    c: Customers,
    p: Purchases,
    lines: Lines,
    o: Orders,
    placed: np.ndarray,
    days: int,
    catalog: Catalog,
) -> Steps:
    """Status events within the period, an NPS survey a week after some deliveries, some product reviews."""
    m = len(placed)
    ids = np.arange(m)
    who = p.customer
    parts = []
    for code, at in ((CANCELLED, o.cancelled), (SHIPPED, o.shipped), (DELIVERED, o.delivered), (REFUNDED, o.refunded)):
        done = at < days
        parts.append(_steps(who[done], at[done], code, order=ids[done]))
    delivered = o.delivered < days
    # Loyal customers (low dropout) are promoters; slow deliveries and returns make detractors.
    asked = o.delivered + 7 + rng.random(m)
    surveyed = delivered & (rng.random(m) < 0.2) & (asked < days)
    slow = (o.delivered - placed) > 5
    mood = 10.2 - 4.0 * c.dropout[who] - 1.5 * slow - 3.0 * (o.refunded < asked) + rng.normal(0, 1.5, m)
    score = np.clip(np.round(mood), 0, 10).astype(int)
    parts.append(_steps(who[surveyed], asked[surveyed], NPS, order=ids[surveyed], value=score[surveyed]))
    count = np.bincount(lines.order, minlength=m)
    line = np.cumsum(count) - count + (rng.random(m) * count).astype(int)
    product = lines.product[np.minimum(line, len(lines.product) - 1)]
    written = o.delivered + rng.uniform(1, 12, m)
    reviews = delivered & (rng.random(m) < 0.12) & (written < days)
    stars = catalog.quality[product] - 1.5 * (o.refunded < written) + rng.normal(0, 0.8, m)
    rating = np.clip(np.round(stars), 1, 5).astype(int)
    parts.append(
        _steps(
            who[reviews], written[reviews], REVIEW, order=ids[reviews], product=product[reviews], value=rating[reviews]
        )
    )
    return Steps.concat(parts)


def profile_updates(
    rng: np.random.Generator, c: Customers, p: Purchases, later: np.ndarray, withdraws: np.ndarray, days: int
) -> Steps:
    """A later Identify: Telegram connected weeks after sign-up, or e-mail withdrawn around dropping out."""
    n = len(c.signup)
    connect = c.signup + 1 + rng.exponential(30.0, n)
    fade = np.where(np.isfinite(p.last), p.last + rng.uniform(5, 40, n), c.signup + rng.random(n) * (days - c.signup))
    at = local_time(rng, np.where(withdraws, fade, connect), c.offset)
    chosen = np.flatnonzero(later & (at > c.signup + 0.01) & (at < days))
    return _steps(chosen, at[chosen], PROFILE)
