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


def purchase_days(events: ibis.Table) -> ibis.Table:
    """customer_id, day: the days on which each customer bought."""
    purchases = source.purchases(events)
    return purchases.select("customer_id", day=purchases.ts.truncate("D")).distinct()


def inactivity_window(events: ibis.Table) -> int:
    """The shop's inactivity window in days (see the module's docstring)."""
    days = purchase_days(events)
    w = ibis.window(group_by="customer_id", order_by="day")
    seconds = days.day.epoch_seconds() - days.day.lag().over(w).epoch_seconds()
    gaps = days.select(gap=seconds / 86400).filter(_.gap.notnull())
    p90 = gaps.aggregate(p90=_.gap.quantile(0.9)).execute().iloc[0]["p90"]
    if p90 is None or p90 != p90:
        return DEFAULT_WINDOW
    return int(min(MAX_WINDOW, max(MIN_WINDOW, round(float(p90)))))


def window_of(data: Data, query: WindowQuery) -> int:
    return query.window_days or inactivity_window(data.events)


def _active_at(days: ibis.Table, periods: ibis.Table, edge: str, window: int) -> ibis.Table:
    """key, customer_id: the customers active at each period's start or end (`edge`)."""
    at = periods[edge]
    joined = days.join(periods, [days.day >= at - ibis.interval(days=window), days.day < at])
    return joined.select("key", "customer_id").distinct()


def _known(since: pd.Timestamp | None, start: str) -> bool:
    """Whether a period from `start` begins a whole window after the first purchase (`since`)."""
    return since is not None and pd.Timestamp(start) >= since


class _Activity(Metric):
    query_type = WindowQuery

    def calculate(self, data: Data, query: WindowQuery) -> dict[str, Any]:
        start, end = bounds(data.events, query)
        window = window_of(data, query)
        periods = periods_table(start, end, query.interval)
        days = purchase_days(data.events)
        at_start = _active_at(days, periods, "bucket", window)
        at_end = _active_at(days, periods, "bucket_end", window)
        firsts = days.group_by("customer_id").aggregate(first=_.day.min())
        new = firsts.join(periods, [firsts.first >= periods.bucket, firsts.first < periods.bucket_end])
        lost = at_start.anti_join(at_end, ["key", "customer_id"])
        gained = at_end.anti_join(at_start, ["key", "customer_id"])
        counts = {
            "at_start": at_start.group_by("key").aggregate(at_start=_.count()),
            "at_end": at_end.group_by("key").aggregate(at_end=_.count()),
            "new": new.group_by("key").aggregate(new=_.count()),
            "lost": lost.group_by("key").aggregate(lost=_.count()),
            "gained": gained.group_by("key").aggregate(gained=_.count()),
        }
        frame = None
        for part in counts.values():
            part = part.execute()
            frame = part if frame is None else frame.merge(part, on="key", how="outer")
        result = report(self, query, start, end, frame, self.value)
        first = firsts.aggregate(first=_.first.min()).execute().iloc[0]["first"]
        since = (pd.Timestamp(first) + pd.Timedelta(days=window)) if pd.notna(first) else None
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
