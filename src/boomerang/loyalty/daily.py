"""The daily cap (`caps.per_day`): what each customer earned by the earn rules on each day, so that no day earns
more than the cap, whichever order the orders and bonuses come in. Live, the counts are rows read and written with
the customers' balance rows locked; a dry run keeps them in memory (no session)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.db import in_chunks, upsert
from boomerang.loyalty.models import LoyaltyDailyEarn

DAILY = LoyaltyDailyEarn.__table__


class DailyCap:
    def __init__(self, limit: int | None, session: Session | None = None) -> None:
        self.limit = limit
        self.session = session
        self.used: dict[tuple[str, date], int] = {}
        self.changed: set[tuple[str, date]] = set()
        self.read: set[str] = set()

    def preload(self, customer_ids: Iterable[str]) -> None:
        """Read the counts of these customers (live only, and only when there is a cap)."""
        wanted = sorted(set(customer_ids) - self.read)
        if self.session is None or not self.limit or not wanted:
            return
        self.read.update(wanted)
        rows = in_chunks(
            self.session,
            lambda ids: sa.select(DAILY.c.customer_id, DAILY.c.day, DAILY.c.points).where(DAILY.c.customer_id.in_(ids)),
            wanted,
        )
        for customer_id, day, points in rows:
            self.used[(customer_id, day)] = int(points)

    def grant(self, customer_id: str, day: date, points: int) -> int:
        """Of `points` earned on `day`, what the cap leaves (all of it without a cap); counts what it grants."""
        if points <= 0:
            return 0
        if self.limit:
            self.preload([customer_id])
            points = max(0, min(points, self.limit - self.used.get((customer_id, day), 0)))
        if points:
            key = (customer_id, day)
            self.used[key] = self.used.get(key, 0) + points
            self.changed.add(key)
        return points

    def write(self) -> None:
        if self.session is None or not self.limit or not self.changed:
            return
        rows = [{"customer_id": c, "day": d, "points": self.used[(c, d)]} for c, d in sorted(self.changed)]
        self.session.execute(upsert(self.session, DAILY, ["customer_id", "day"], rows), rows)
        self.changed.clear()
