"""Ordered funnels: of the customers who did the first step in a period, how many did each next step,
in order, within the conversion window from the first one.

Defaults: Product Viewed -> Product Added -> Checkout Started -> Order Completed, a 7-day window.
The first step can be narrowed to a category (its `category` property starting with it); a breakdown
by the first step's top-level category is given for the whole period, and the counts per interval unless `series`
is off (a page that shows the whole period alone); `categories` off leaves the breakdown out (and the log's JSON
unread when the first steps come from the rollup). The leak report names the
three steps that lose the most customers. `still_open` counts the customers whose window had not ended by the
latest event of the funnel's steps: the funnel cannot know yet whether they go on.
"""

from __future__ import annotations

from typing import Any

import ibis
import pandas as pd
from ibis import _
from pydantic import Field, field_validator

from boomerang.metrics import source
from boomerang.metrics.base import (
    Data,
    Metric,
    Query,
    as_json,
    bounds,
    materialize,
    period_and_series,
    periods_table,
    register,
)

DEFAULT_STEPS = ["Product Viewed", "Product Added", "Checkout Started", "Order Completed"]
ALL = "(all)"  # every first step's category, when the breakdown is not asked for


class FunnelQuery(Query):
    steps: list[str] = Field(default_factory=lambda: list(DEFAULT_STEPS), min_length=2, max_length=10)
    window_hours: int = Field(default=168, ge=1, le=24 * 365, description="conversion window from the first step")
    category: str | None = Field(default=None, description="only first steps in this category (or below it)")
    series: bool = Field(default=True, description="also count each interval (false: the whole period alone)")
    categories: bool = Field(default=True, description="also count by the first step's top category")

    @field_validator("steps")
    @classmethod
    def _named(cls, steps: list[str]) -> list[str]:
        if any(not s.strip() for s in steps):
            raise ValueError("a step needs an event name")
        return steps


def _top_category(category: ibis.Value) -> ibis.Value:
    at = category.find(" > ")
    return (at >= 0).ifelse(category.substr(0, at), category)


def _firsts(data: Data, query: FunnelQuery, buckets: ibis.Table) -> ibis.Table:
    """key, customer_id, start: each customer's first first step in each of `buckets` (key, bucket, bucket_end; from
    midnight to midnight). From the log's daily rollup where the data has one and the step needs no property: the
    first time of a customer's day is the rollup's `first_at`."""
    if data.rollup is not None and not query.category:
        rows = data.rollup.filter((_.event == query.steps[0]) & _.customer_id.notnull())
        rows = rows.join(buckets, [rows.day >= buckets.bucket.date(), rows.day < buckets.bucket_end.date()])
        return rows.group_by(["key", "customer_id"]).aggregate(start=_.first_at.min())
    first = data.events.filter((_.event == query.steps[0]) & _.customer_id.notnull())
    if query.category:
        first = first.filter(source.text(first, "category").startswith(query.category))
    times = first.select("customer_id", "timestamp")
    times = times.join(buckets, [times.timestamp >= buckets.bucket, times.timestamp < buckets.bucket_end])
    return times.group_by(["key", "customer_id"]).aggregate(start=_.timestamp.min())


def _anchors(data: Data, query: FunnelQuery, periods: ibis.Table, start, end) -> ibis.Table:
    """key, customer_id, start, category: each customer's first first step in each interval (key 1, 2, ...; or in the
    whole period, key 0, without the series); the earliest of a customer's is also their first in the whole period,
    and only it has a `category` (the top level of its own; the JSON of the log is read for those steps only)."""
    anchors = _firsts(data, query, periods.filter(~periods.whole if query.series else periods.whole))
    whole = anchors.group_by("customer_id").aggregate(start=_.start.min())
    if not query.categories:  # no breakdown asked: no JSON read
        found = whole.select("customer_id", timestamp=whole.start, category=ibis.literal(ALL))
        joined = anchors.left_join(found, [anchors.customer_id == found.customer_id, anchors.start == found.timestamp])
        return joined.select(anchors.key, anchors.customer_id, anchors.start, found.category)
    first = data.events.filter(
        (_.event == query.steps[0]) & _.customer_id.notnull() & (_.timestamp >= start) & (_.timestamp < end)
    )
    if query.category:
        first = first.filter(source.text(first, "category").startswith(query.category))
    found = first.join(whole, [first.customer_id == whole.customer_id, first.timestamp == whole.start])
    found = found.select(found.customer_id, found.timestamp, category=_top_category(source.text(found, "category")))
    found = found.group_by(["customer_id", "timestamp"]).aggregate(  # one per customer, even on a tie
        category=_.category.min().coalesce("(none)")
    )
    joined = anchors.left_join(found, [anchors.customer_id == found.customer_id, anchors.start == found.timestamp])
    return joined.select(anchors.key, anchors.customer_id, anchors.start, found.category)


def _reached(data: Data, query: FunnelQuery, anchors: ibis.Table, start, end) -> list[ibis.Table]:
    """For each next step, the anchors (by `aid`) that reached it in order within the window: `aid`, `at` (when).
    One join per step over its events from `start` to a window after `end`, each from the anchors that reached the
    step before; grouped by the anchors' integer id alone, which costs far less than by customer and interval."""
    window = ibis.interval(hours=query.window_hours)
    base = anchors.select("aid", "customer_id", "start")
    reached, out = anchors.select("aid", at=anchors.start), []
    for step in query.steps[1:]:
        later = data.events.filter(
            (_.event == step)
            & _.customer_id.notnull()
            & (_.timestamp >= start)
            & (_.timestamp <= ibis.literal(end) + window)
        ).select(cid=_.customer_id, ts=_.timestamp)
        going = base.join(reached, "aid")
        joined = going.join(
            later, [going.customer_id == later.cid, later.ts >= going.at, later.ts <= going.start + window]
        )
        reached = joined.group_by("aid").aggregate(at=joined.ts.min())
        if len(out) < len(query.steps) - 2:  # the next step reads it
            reached = materialize(reached)
        out.append(reached)
    return out


def _counts(data: Data, query: FunnelQuery, anchors: ibis.Table, start, end) -> pd.DataFrame:
    """key, category, step, customers: how many customers reached each step, per interval, and for the whole
    period (key 0) per category."""
    reached = [anchors, *_reached(data, query, anchors, start, end)]
    steps = [r.select(aid=r.aid.cast("int64"), step=ibis.literal(i, "int8")) for i, r in enumerate(reached)]
    tagged = ibis.union(*steps).join(anchors.select("aid", "key", "category"), "aid")
    frame = tagged.group_by(["key", "category", "step"]).aggregate(customers=_.count()).execute()
    whole = frame[frame["category"].notna()].assign(key=0)
    frame = pd.concat([whole, frame.assign(category=None)]) if query.series else whole
    return frame.groupby(["key", "category", "step"], dropna=False, as_index=False)["customers"].sum()


def _still_open(data: Data, query: FunnelQuery, anchors: ibis.Table) -> int:
    """Customers whose first step in the period is less than the window before the log's last event of the steps:
    they may still go on, so the funnel undercounts them (that event stands for "now" in the data, not a system
    one logged today)."""
    if data.rollup is not None:
        last = data.rollup.filter(_.event.isin(query.steps)).last_at.max().as_scalar()
    else:
        last = data.events.filter(_.event.isin(query.steps)).timestamp.max().as_scalar()
    whole = anchors.filter(anchors.category.notnull())
    return int(whole.filter(whole.start + ibis.interval(hours=query.window_hours) > last).count().execute())


def _steps(query: FunnelQuery, counts: dict[int, int]) -> list[dict[str, Any]]:
    first = counts.get(0, 0)
    rows = []
    for i, name in enumerate(query.steps):
        n, before = counts.get(i, 0), counts.get(i - 1, 0) if i else None
        rows.append(
            {
                "step": name,
                "customers": n,
                "conversion": as_json(n / first) if first else None,
                "from_previous": as_json(n / before) if before else None,
                "lost": (before - n) if before is not None else 0,
            }
        )
    return rows


@register
class Funnel(Metric):
    name, title = "funnel", "Funnel"
    description = (
        "Customers reaching each step in order within the window, drop-off per step, and the three worst leaks."
    )
    query_type = FunnelQuery

    def calculate(self, data: Data, query: FunnelQuery) -> dict[str, Any]:
        start, end = bounds(data, query)
        anchors = _anchors(data, query, periods_table(start, end, query.interval), start, end)
        anchors = materialize(anchors.mutate(aid=ibis.row_number()))  # an integer id for the steps' joins
        counts = _counts(data, query, anchors, start, end)
        totals = counts.groupby(["key", "step"])["customers"].sum()
        per_key = {k: dict(zip(g.index.get_level_values("step"), g)) for k, g in totals.groupby(level="key")}
        steps = _steps(query, per_key.get(0, {}))
        leaks = sorted(steps[1:], key=lambda s: s["lost"], reverse=True)[:3]
        by_category = counts[counts["key"] == 0]
        buckets = period_and_series(start, end, query.interval)
        return {
            "metric": self.name,
            "title": self.title,
            "from": as_json(start.date()),
            "to": as_json((end - pd.Timedelta(days=1)).date()),
            "interval": query.interval,
            "value": steps[-1]["conversion"],
            "details": {"still_open": _still_open(data, query, anchors)},
            "steps": steps,
            "leaks": [
                {
                    "from": query.steps[query.steps.index(s["step"]) - 1],
                    "to": s["step"],
                    "lost": s["lost"],
                    "drop_off": as_json(1 - s["from_previous"]) if s["from_previous"] is not None else None,
                }
                for s in leaks
            ],
            "by_category": [
                {"category": cat, "steps": _steps(query, dict(zip(g["step"], g["customers"])))}
                for cat, g in by_category.groupby("category")
                if query.categories
            ],
            "series": [
                {"bucket": as_json(row.bucket), "steps": _steps(query, per_key.get(row.key, {}))}
                for row in (buckets.iloc[1:].itertuples() if query.series else ())
            ],
        }
