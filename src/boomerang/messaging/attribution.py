"""Last-touch attribution, shown beside the incremental figures (never instead of them): each counted order goes
to the last message that left for its customer within `window_days` before it, and so to that message's journey
or campaign and channel. Attributed revenue flatters (people who would have bought anyway count too); it says
where the orders came from, the tests say what the messages changed.

Per month it also splits the revenue into triggered (journeys), mass (campaigns), other sends and none: the share
of revenue that follows communication of each kind."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.errors import ValidationFailed
from boomerang.messaging.models import Message
from boomerang.orders.models import Order
from boomerang.orders.per_customer import NOT_COUNTED

LEFT = ("sent", "delivered", "opened", "clicked", "complained", "unsubscribed")  # statuses of a message that left
WINDOW_DAYS = 5
KINDS = ("triggered", "mass", "other", "none")


def kind_of(source: str | None) -> str:
    if source is None:
        return "none"
    return "triggered" if source.startswith("journey:") else "mass" if source.startswith("campaign:") else "other"


def _frames(session: Session, since: datetime, until: datetime, window: timedelta) -> tuple[pd.DataFrame, pd.DataFrame]:
    orders = pd.DataFrame(
        session.execute(
            sa.select(Order.customer_id, Order.placed_at, Order.total - sa.func.coalesce(Order.refunded_total, 0))
            .where(
                Order.placed_at >= since,
                Order.placed_at < until,
                Order.customer_id.is_not(None),
                Order.status.not_in(NOT_COUNTED),
            )
            .order_by(Order.placed_at)
        ).all(),
        columns=["customer_id", "at", "revenue"],
    )
    messages = pd.DataFrame(
        session.execute(
            sa.select(Message.customer_id, Message.sent_at, Message.source, Message.channel)
            .where(
                Message.status.in_(LEFT),
                Message.sent_at >= since - window,
                Message.sent_at < until,
                ~Message.source.startswith("journey-test:"),
            )
            .order_by(Message.sent_at)
        ).all(),
        columns=["customer_id", "at", "source", "channel"],
    )
    return orders, messages


def attribute(session: Session, *, since: datetime, until: datetime, window_days: float = WINDOW_DAYS) -> pd.DataFrame:
    """Each counted order in [since, until): customer_id, at, revenue, and the source and channel of the last
    message that left for the customer within the window before it (None when there was none)."""
    if not 0 < window_days <= 90:
        raise ValidationFailed([{"field": "window_days", "reason": "a number of days above 0, at most 90"}])
    window = timedelta(days=window_days)
    orders, messages = _frames(session, since, until, window)
    if orders.empty:
        return orders.assign(source=None, channel=None)
    orders["revenue"] = orders["revenue"].astype(float)
    if messages.empty:
        return orders.assign(source=None, channel=None)
    for frame in (orders, messages):
        frame["at"] = pd.to_datetime(frame["at"])
    joined = pd.merge_asof(
        orders.sort_values("at"),
        messages.sort_values("at").rename(columns={"at": "touched_at"}).assign(at=lambda f: f["touched_at"]),
        on="at",
        by="customer_id",
        direction="backward",
        tolerance=window,
    )
    return joined.drop(columns=["touched_at"]).astype({"source": object, "channel": object})


def summary(session: Session, *, since: datetime, until: datetime, window_days: float = WINDOW_DAYS) -> dict[str, Any]:
    """Orders and revenue per source and per channel, and per month the revenue of each kind with its share."""
    found = attribute(session, since=since, until=until, window_days=window_days)
    found["kind"] = found["source"].map(lambda s: kind_of(s if isinstance(s, str) else None))

    def grouped(column: str) -> list[dict[str, Any]]:
        touched = found[found["source"].notna()]
        sums = touched.groupby(column)["revenue"].agg(["count", "sum"]).sort_values("sum", ascending=False)
        return [{column: k, "orders": int(n), "revenue": round(float(r), 2)} for k, (n, r) in sums.iterrows()]

    months = []
    if not found.empty:
        found["month"] = found["at"].dt.strftime("%Y-%m")
        for month, rows in found.groupby("month"):
            total = float(rows["revenue"].sum())
            by_kind = rows.groupby("kind")["revenue"].sum()
            kinds = {k: round(float(by_kind.get(k, 0.0)), 2) for k in KINDS}
            shares = {k: round(v / total, 4) if total else None for k, v in kinds.items()}
            start = datetime.strptime(month, "%Y-%m")
            end = (start + timedelta(days=32)).replace(day=1)
            partial = start < since or end > until  # the period cuts the month: its figures are not the whole month's
            months.append(
                {"month": month, "partial": partial, "revenue": round(total, 2), "by_kind": kinds, "shares": shares}
            )
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "window_days": window_days,
        "orders": len(found),
        "revenue": round(float(found["revenue"].sum()), 2) if len(found) else 0.0,
        "by_source": grouped("source"),
        "by_channel": grouped("channel"),
        "months": months,
    }
