"""Query runners: a typed query in, Ibis expressions out, executed on whichever engine holds the events.

Every metric is a `Metric` subclass registered by name. `calculate(data, query)` returns a
JSON-ready dict: the value over the whole period (`value`), the same metric per interval
(`series`) and whatever details the metric has. Periods are whole days: `date_from` and `date_to`
are both included.

Metrics start from the purchases and refunds, not from the raw log: `Data` extracts them from the
events' JSON once, into a table on the engine, and every metric computed on that `Data` reads it (the
JSON of the log is the costly part of reading it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, ClassVar, Literal

import ibis
import ibis.expr.operations as ops
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from boomerang.metrics import source

Interval = Literal["day", "week", "month"]


class Query(BaseModel):
    """The period to measure and the width of the series' buckets."""

    model_config = ConfigDict(extra="forbid")

    date_from: date | None = Field(default=None, description="first day (default: the first purchase)")
    date_to: date | None = Field(default=None, description="last day, included (default: the last event)")
    interval: Interval = "month"

    @model_validator(mode="after")
    def _ordered(self):
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("date_from must not be after date_to")
        return self


def materialize(t: ibis.Table) -> ibis.Table:
    """`t` computed once into a table on its engine, for the queries after: a temporary table where the engine
    has them (it lasts as long as the connection, a reader's block), else the engine's cache (Spark), except for
    an expression that reads an in-memory table (Ibis' cache does not register those): each query computes it."""
    backend = ibis.get_backend(t)
    try:
        return backend.create_table(ibis.util.gen_name("metrics"), t, temp=True)
    except NotImplementedError:
        return t if t.op().find(ops.InMemoryTable) else t.cache()


@dataclass
class Data:
    """The tables a metric reads, on one engine: the event log, and consent changes for the metrics that ask.

    `purchases()`, `refunds()` (and what a metric `keep`s) are extracted from the log the first time a metric asks,
    then kept: metrics computed on the same `Data` share them."""

    events: ibis.Table
    consents: ibis.Table | None = None  # customer_id, channel, granted, at
    cancelled: ibis.Table | None = None  # the log's kept cancelled orders, where it keeps them (Reader.cancelled)
    rollup: ibis.Table | None = None  # the daily rollup where the log keeps one (Reader.kept_rollup)
    _kept: dict[str, ibis.Table] = field(default_factory=dict, init=False, repr=False)

    def purchases(self) -> ibis.Table:
        """source.purchases of the log, computed once."""
        return self.keep("purchases", lambda events: source.purchases(events, cancelled=self.cancelled))

    def refunds(self) -> ibis.Table:
        """source.refunds of the log, computed once."""
        return self.keep("refunds", source.refunds)

    def keep(self, name: str, build) -> ibis.Table:
        """`build(events)` computed once (see `materialize`) and kept under `name` for the metrics after."""
        if name not in self._kept:
            self._kept[name] = materialize(build(self.events))
        return self._kept[name]


class Metric:
    """A named metric; subclasses set `name`, `title`, `query_type` and implement `calculate`.

    A metric with a `trait` also has `per_customer`, whose frame is stored as that trait kind.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    query_type: ClassVar[type[Query]] = Query
    needs_consents: ClassVar[bool] = False
    trait: ClassVar[str | None] = None

    def calculate(self, data: Data, query: Query) -> dict[str, Any]:
        raise NotImplementedError

    def per_customer(self, data: Data, query: Query) -> pd.DataFrame:
        raise NotImplementedError


REGISTRY: dict[str, Metric] = {}


def register(cls: type[Metric]) -> type[Metric]:
    REGISTRY[cls.name] = cls()
    return cls


def bounds(data: Data, query: Query) -> tuple[datetime, datetime]:
    """[start, end) of the query's period, filling the open ends from the data."""
    start = datetime.combine(query.date_from, datetime.min.time()) if query.date_from else None
    end = datetime.combine(query.date_to + timedelta(days=1), datetime.min.time()) if query.date_to else None
    if start is None or end is None:
        purchases, events = data.purchases(), data.events
        first = purchases.aggregate(first=purchases.ts.min()).execute().iloc[0]["first"]
        last = events.aggregate(last=events.timestamp.max()).execute().iloc[0]["last"]
        row = {"first": first, "last": last}
        first_day = row["first"] if pd.notna(row["first"]) else row["last"]
        if pd.isna(first_day):
            raise ValueError("the event log is empty")
        start = start or pd.Timestamp(first_day).normalize().to_pydatetime()
        end = end or (pd.Timestamp(row["last"]).normalize() + pd.Timedelta(days=1)).to_pydatetime()
    return start, end


FREQ = {"day": "D", "week": "W-MON", "month": "MS"}


def _calendar(ts: pd.Timestamp, interval: Interval) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The whole calendar interval (day, week from Monday, month) that contains `ts`: [first, next)."""
    first = ts.normalize()
    if interval == "week":
        first -= pd.Timedelta(days=first.weekday())
    elif interval == "month":
        first = first.replace(day=1)
    return first, first + pd.tseries.frequencies.to_offset(FREQ[interval])


def buckets(start: datetime, end: datetime, interval: Interval) -> pd.DataFrame:
    """bucket, bucket_end, complete: the calendar intervals that cover [start, end), clipped to it; a clipped
    one (the month the period ends in, five days old) is not complete."""
    edges = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq=FREQ[interval], inclusive="neither")
    starts = [pd.Timestamp(start), *edges]
    ends = [*edges, pd.Timestamp(end)]
    complete = [_calendar(s, interval) == (s, e) for s, e in zip(starts, ends)]
    return pd.DataFrame({"bucket": starts, "bucket_end": ends, "complete": complete})


def period_and_series(start: datetime, end: datetime, interval: Interval) -> pd.DataFrame:
    """The whole period as bucket 0, then the series' buckets: one expression computes both."""
    whole = pd.DataFrame(
        {"bucket": [pd.Timestamp(start)], "bucket_end": [pd.Timestamp(end)], "complete": [True], "whole": [True]}
    )
    series = buckets(start, end, interval).assign(whole=False)
    return pd.concat([whole, series], ignore_index=True).assign(key=lambda f: range(len(f)))


def periods_table(start: datetime, end: datetime, interval: Interval) -> ibis.Table:
    """key, bucket, bucket_end, whole: the period (key 0) and its intervals, as a table to join with."""
    return ibis.memtable(period_and_series(start, end, interval))


def report(metric: Metric, query: Query, start: datetime, end: datetime, frame: pd.DataFrame, value) -> dict[str, Any]:
    """The JSON answer: the whole period's value and details, then one entry per interval (`complete`: whether
    it covers its whole calendar day, week or month).

    `frame` has a `key` column (see `period_and_series`) and the metric's counts; a period absent
    from it had nothing to count. `value(row)` turns a row of counts into the metric.
    """
    periods = period_and_series(start, end, query.interval)
    counts = periods[["key", "bucket", "complete"]].merge(frame, on="key", how="left")
    numeric = [c for c in frame.columns if c != "key"]
    counts[numeric] = counts[numeric].astype(float).fillna(0.0)
    rows = [
        {
            "bucket": as_json(row["bucket"]),
            "value": as_json(_number(value(row))),
            **{c: as_json(_number(row[c])) for c in numeric},
        }
        for _, row in counts.iterrows()
    ]
    for row, complete in zip(rows[1:], counts["complete"].iloc[1:]):
        row["complete"] = bool(complete)
    whole = rows[0]
    return {
        "metric": metric.name,
        "title": metric.title,
        "from": as_json(start.date()),
        "to": as_json((end - timedelta(days=1)).date()),
        "interval": query.interval,
        "value": whole["value"],
        "details": {k: v for k, v in whole.items() if k not in ("bucket", "value")},
        "series": rows[1:],
    }


def _number(value: Any) -> Any:
    if value is None:
        return None
    value = float(value)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def as_json(value: Any) -> Any:
    """Numbers rounded for people, NaN as null, timestamps as ISO dates."""
    if isinstance(value, float):
        return None if pd.isna(value) else round(value, 6)
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.date().isoformat() if value == pd.Timestamp(value).normalize() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value
