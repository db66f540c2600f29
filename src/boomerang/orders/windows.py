"""What customers spent in a window around a moment of their own (entering a journey, a campaign's start): the
outcome of a test after it, and the pre-period spend before it that makes the test's intervals narrower."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.db import in_chunks
from boomerang.orders.models import Order
from boomerang.orders.per_customer import NOT_COUNTED

PRE_PERIOD = timedelta(days=90)


def spend_around(
    session: Session, units: pd.DataFrame, *, after: timedelta | None, before: timedelta = PRE_PERIOD
) -> pd.DataFrame:
    """For each row of `units` (customer_id, at): `pre`, the spend in `before` up to `at`; and, with `after`,
    `after_orders` and `after_revenue` in [at, at + after). Orders cancelled or returned do not count; refunds are taken off.
    Rows keep their index and order."""
    out = units.assign(pre=0.0, **({"after_orders": 0, "after_revenue": 0.0} if after is not None else {}))
    if units.empty:
        return out
    since, until = units["at"].min() - before, units["at"].max() + (after or timedelta(0))
    rows = in_chunks(
        session,
        lambda ids: sa.select(
            Order.customer_id, Order.placed_at, Order.total - sa.func.coalesce(Order.refunded_total, 0)
        ).where(
            Order.customer_id.in_(ids),
            Order.placed_at >= since,
            Order.placed_at < until,
            Order.status.not_in(NOT_COUNTED),
        ),
        units["customer_id"].unique().tolist(),
    )
    if not rows:
        return out
    orders = pd.DataFrame(rows, columns=["customer_id", "placed_at", "value"])
    orders["value"] = orders["value"].astype(float)
    pairs = units[["customer_id", "at"]].reset_index(names="_unit").merge(orders, on="customer_id")
    pre = pairs[(pairs.placed_at >= pairs["at"] - before) & (pairs.placed_at < pairs["at"])]
    out["pre"] = pre.groupby("_unit")["value"].sum().reindex(units.index, fill_value=0.0).to_numpy()
    if after is not None:
        post = pairs[(pairs.placed_at >= pairs["at"]) & (pairs.placed_at < pairs["at"] + after)]
        sums = post.groupby("_unit")["value"].agg(["count", "sum"]).reindex(units.index, fill_value=0)
        out["after_orders"], out["after_revenue"] = sums["count"].to_numpy(), sums["sum"].astype(float).to_numpy()
    return out
