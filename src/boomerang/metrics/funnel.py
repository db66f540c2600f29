"""Ordered funnels: of the customers who did the first step in a period, how many did each next step,
in order, within the conversion window from the first one.

Defaults: Product Viewed -> Product Added -> Checkout Started -> Order Completed, a 7-day window.
The first step can be narrowed to a category (its `category` property starting with it); a breakdown
by the first step's top-level category is given for the whole period. The leak report names the
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
from boomerang.metrics.base import Data, Metric, Query, as_json, bounds, period_and_series, periods_table, register

DEFAULT_STEPS = ["Product Viewed", "Product Added", "Checkout Started", "Order Completed"]


class FunnelQuery(Query):
    steps: list[str] = Field(default_factory=lambda: list(DEFAULT_STEPS), min_length=2, max_length=10)
    window_hours: int = Field(default=168, ge=1, le=24 * 365, description="conversion window from the first step")
    category: str | None = Field(default=None, description="only first steps in this category (or below it)")

    @field_validator("steps")
    @classmethod
    def _named(cls, steps: list[str]) -> list[str]:
        if any(not s.strip() for s in steps):
            raise ValueError("a step needs an event name")
        return steps


def _top_category(category: ibis.Value) -> ibis.Value:
    at = category.find(" > ")
    return (at >= 0).ifelse(category.substr(0, at), category)


def _first_steps(events: ibis.Table, query: FunnelQuery) -> ibis.Table:
    """customer_id, timestamp, category: the first step's events (in the query's category)."""
    first = events.filter(_.event == query.steps[0])
    first = first.select("customer_id", "timestamp", category=source.text(first, "category"))
    return first.filter(first.category.startswith(query.category)) if query.category else first


def _still_open(data: Data, query: FunnelQuery, start, end) -> int:
    """Customers whose first step in the period is less than the window before the log's last event: they may
    still go on, so the funnel undercounts them (the latest event of the steps stands for "now" in the data)."""
    events = data.events.filter(_.customer_id.notnull())
    first = _first_steps(events, query)
    first = first.filter((first.timestamp >= start) & (first.timestamp < end))
    anchors = first.group_by("customer_id").aggregate(at=_.timestamp.min())
    steps = data.events.filter(_.event.isin(query.steps))
    last = steps.timestamp.max().as_scalar()  # the funnel's own latest event, not a system one logged today
    return int(anchors.filter(anchors.at + ibis.interval(hours=query.window_hours) > last).count().execute())


def _counts(data: Data, query: FunnelQuery, periods: ibis.Table, by_category: bool) -> pd.DataFrame:
    """key, [category], step, customers: how many customers reached each step, per period."""
    events = data.events.filter(_.customer_id.notnull())
    first = _first_steps(events, query)
    first = first.join(periods, [first.timestamp >= periods.bucket, first.timestamp < periods.bucket_end])
    groups = ["key", "customer_id"]
    anchor = first.group_by(groups).aggregate(start=_.timestamp.min(), category=_.category.argmin(_.timestamp))
    anchor = anchor.mutate(category=_top_category(anchor.category).coalesce("(none)"), at=anchor.start)
    window = ibis.interval(hours=query.window_hours)
    keys = ["key", "category"] if by_category else ["key"]
    counts = [anchor.group_by(keys).aggregate(customers=_.count()).mutate(step=0)]
    reached = anchor
    for index, step in enumerate(query.steps[1:], start=1):
        later = events.filter(_.event == step).select(cid=_.customer_id, ts=_.timestamp)
        joined = reached.join(
            later, [reached.customer_id == later.cid, later.ts >= reached.at, later.ts <= reached.start + window]
        )
        reached = joined.group_by(["key", "customer_id", "category", "start"]).aggregate(at=_.ts.min())
        counts.append(reached.group_by(keys).aggregate(customers=_.count()).mutate(step=index))
    out = counts[0]
    for part in counts[1:]:
        out = out.union(part)
    return out.execute()


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
        start, end = bounds(data.events, query)
        periods = periods_table(start, end, query.interval)
        counts = _counts(data, query, periods, by_category=False)
        per_key = {k: dict(zip(g["step"], g["customers"])) for k, g in counts.groupby("key")}
        steps = _steps(query, per_key.get(0, {}))
        leaks = sorted(steps[1:], key=lambda s: s["lost"], reverse=True)[:3]
        whole = periods_table(start, end, "month").filter(_.key == 0)
        by_category = _counts(data, query, whole, by_category=True)
        buckets = period_and_series(start, end, query.interval)
        return {
            "metric": self.name,
            "title": self.title,
            "from": as_json(start.date()),
            "to": as_json((end - pd.Timedelta(days=1)).date()),
            "interval": query.interval,
            "value": steps[-1]["conversion"],
            "details": {"still_open": _still_open(data, query, start, end)},
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
            ],
            "series": [
                {"bucket": as_json(row.bucket), "steps": _steps(query, per_key.get(row.key, {}))}
                for row in buckets.iloc[1:].itertuples()
            ],
        }
