"""Customer retention and churn, for a shop without subscriptions: a customer is active while their
last purchase is less than an inactivity window old.

The window defaults to the shop's own rhythm: the 90th percentile of the gaps between a customer's
consecutive purchase days (within 30 to 365 days; 90 when nobody bought twice). Then, per period
[start, end): S = customers active at the start, E = active at the end, N = customers gained in the
period (active at the end but not at the start: first-time buyers and returning lapsed ones);
retention rate = (E - N) / S, the share of S still active at the end; churn rate = the share of S
no longer active at the end, its complement. `new` (first purchases in the period) is reported too.

A period that starts less than a window after the first purchase in the log has `full_history` false: the
customers active at its start are not all known (an import that starts mid-history), or could not lapse yet
(a young shop, whose first months show a retention of 100% by construction).
"""

from __future__ import annotations

from typing import Any

import ibis
import pandas as pd
from ibis import _
from pydantic import Field

from boomerang.metrics import source
from boomerang.metrics.base import Data, Metric, Query, bounds, periods_table, register, report

DEFAULT_WINDOW, MIN_WINDOW, MAX_WINDOW = 90, 30, 365


class WindowQuery(Query):
    window_days: int | None = Field(
        default=None, ge=1, le=3650, description="inactivity window (default: from the data)"
    )


def purchase_days(purchases: ibis.Table) -> ibis.Table:
    """customer_id, day: the days on which each customer bought (from source.purchases)."""
    return purchases.select("customer_id", day=purchases.ts.truncate("D")).distinct()


def gap_window(days: ibis.Table) -> int:
    """The inactivity window in days from the purchase days (see the module's docstring)."""
    w = ibis.window(group_by="customer_id", order_by="day")
    seconds = days.day.epoch_seconds() - days.day.lag().over(w).epoch_seconds()
    gaps = days.select(gap=seconds / 86400).filter(_.gap.notnull())
    p90 = gaps.aggregate(p90=_.gap.quantile(0.9)).execute().iloc[0]["p90"]
    if p90 is None or p90 != p90:
        return DEFAULT_WINDOW
    return int(min(MAX_WINDOW, max(MIN_WINDOW, round(float(p90)))))


def inactivity_window(events: ibis.Table) -> int:
    """The shop's inactivity window in days (see the module's docstring)."""
    return gap_window(purchase_days(source.purchases(events)))


def default_window(data: Data) -> int:
    """inactivity_window() from the data's purchases."""
    return gap_window(purchase_days(data.purchases()))


def window_of(data: Data, query: WindowQuery) -> int:
    return query.window_days or default_window(data)


def activity_counts(purchases: ibis.Table, periods: ibis.Table, window: int) -> ibis.Table:
    """key, at_start, at_end, new, lost, gained: per period [bucket, bucket_end), the customers active at its start
    and at its end (a purchase in the window before), those whose first purchase is in it, those active at the
    start but not at the end, and the other way round.

    One pass over the purchases: each is paired with the periods whose start or end it keeps active (from a window
    before the start to the end), then per period and customer whether any does so at either edge."""
    span = ibis.interval(days=window)
    rows = purchases.join(periods, [purchases.ts >= periods.bucket - span, purchases.ts < periods.bucket_end])
    per = rows.group_by(["key", "customer_id"]).aggregate(
        s=(rows.ts < rows.bucket).any(), e=(rows.ts >= rows.bucket_end - span).any()
    )
    count = lambda flag: flag.ifelse(1, 0).sum()  # noqa: E731
    active = per.group_by("key").aggregate(
        at_start=count(per.s), at_end=count(per.e), lost=count(per.s & ~per.e), gained=count(per.e & ~per.s)
    )
    firsts = purchases.group_by("customer_id").aggregate(first=_.ts.min())
    new = (
        firsts.join(periods, [firsts.first >= periods.bucket, firsts.first < periods.bucket_end])
        .group_by("key")
        .aggregate(new=_.count())
    )
    both = active.outer_join(new, "key")
    return both.select(
        key=both.key.coalesce(both.key_right), **{c: both[c].coalesce(0) for c in [*active.columns[1:], "new"]}
    )


def _known(since: pd.Timestamp | None, start: str) -> bool:
    """Whether a period from `start` begins a whole window after the first purchase (`since`)."""
    return since is not None and pd.Timestamp(start) >= since


class _Activity(Metric):
    query_type = WindowQuery

    def calculate(self, data: Data, query: WindowQuery) -> dict[str, Any]:
        start, end = bounds(data, query)
        window = window_of(data, query)
        frame = activity_counts(data.purchases(), periods_table(start, end, query.interval), window).execute()
        result = report(self, query, start, end, frame, self.value)
        first = data.purchases().ts.min().execute()
        since = (pd.Timestamp(first).normalize() + pd.Timedelta(days=window)) if pd.notna(first) else None
        result["details"].update(window_days=window, full_history=_known(since, result["from"]))
        for row in result["series"]:
            row["full_history"] = _known(since, row["bucket"])
        return result


@register
class RetentionRate(_Activity):
    name, title = "retention_rate", "Customer retention rate"
    description = "(active at the end - gained in the period) / active at the start, with an inactivity window."

    @staticmethod
    def value(row):
        return (row["at_end"] - row["gained"]) / row["at_start"] if row["at_start"] else None


@register
class ChurnRate(_Activity):
    name, title = "churn_rate", "Churn rate"
    description = "Share of the customers active at the start who are no longer active at the end."

    @staticmethod
    def value(row):
        return row["lost"] / row["at_start"] if row["at_start"] else None
