"""The dashboard's metrics read from the log's daily rollup (events.rollups) instead of the raw events: the same
answers as their runners over the events (tests/test_dashboard_rollups.py holds them equal), in a scan of a table
many times smaller, with no JSON to read.

Purchases are whole days in the rollup, and every metric here needs no finer time: its periods are whole days
(metrics.base) and it counts orders, buyers, revenue and purchase days per period. `run` answers the metrics in
`ROLLED`; another metric is None, for the caller to run over the events. The funnel follows each customer's events in
time, finer than days: `answer` runs it over the events, with only the open ends of its period from the rollup.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import ibis
import pandas as pd
from ibis import _

from boomerang.core.errors import ValidationFailed
from boomerang.db import UnitOfWork
from boomerang.events.log import EventLog
from boomerang.events.reader import Reader
from boomerang.metrics import activity, service, source
from boomerang.metrics.base import REGISTRY, Data, Query, periods_table, report

Once = Callable[[str, Callable[[], Any]], Any]
ORDER_KPIS = ("average_order_value", "repeat_purchase_rate", "purchase_frequency")
ACTIVITY = ("retention_rate", "churn_rate")
SALES = "sales"  # the average order value's orders and revenue per period, without its per-customer counts
ROLLED = (*ORDER_KPIS, *ACTIVITY, "cohorts", SALES)
WITHIN = ("nps",)  # reads no event outside its period: the log's other days are skipped (it is in time order)
DATED = ("funnel",)  # per event, not per day: run over the events, only the open ends of the period from the rollup


def _bought(rollup: ibis.Table) -> ibis.Value:
    """Whether a rollup row holds purchases: a known customer's orders, not all of them cancelled."""
    return (rollup.event == source.ORDER_COMPLETED) & rollup.customer_id.notnull() & (rollup.events > rollup.cancelled)


def purchases(rollup: ibis.Table) -> ibis.Table:
    """customer_id, day (a timestamp at midnight), orders, revenue: each known customer's purchases per day, as
    metrics.source.purchases counts them (orders not cancelled)."""
    rows = rollup.filter(_bought(rollup))
    return rows.select(
        "customer_id",
        day=rows.day.cast("timestamp"),
        orders=rows.events - rows.cancelled,
        revenue=rows.value.coalesce(0.0) - rows.cancelled_value,
    )


def bounds(rollup: ibis.Table | None, query: Query) -> tuple[datetime, datetime]:
    """[start, end) as metrics.base.bounds fills the open ends: the first purchase's day, the last event's (the rollup
    is read only for an open end)."""
    start = datetime.combine(query.date_from, datetime.min.time()) if query.date_from else None
    end = datetime.combine(query.date_to + timedelta(days=1), datetime.min.time()) if query.date_to else None
    if start is None or end is None:
        span = rollup.aggregate(first=rollup.day.min(where=_bought(rollup)), last=rollup.day.max()).execute()
        first, last = span["first"].iloc[0], span["last"].iloc[0]
        if pd.isna(last):
            raise ValueError("the event log is empty")
        first_day = first if pd.notna(first) else last
        start = start or pd.Timestamp(first_day).to_pydatetime()
        end = end or (pd.Timestamp(last) + pd.Timedelta(days=1)).to_pydatetime()
    return start, end


def _order_kpis(rollup: ibis.Table, name: str, query: Query, per_customer: bool = True) -> dict[str, Any]:
    """The order KPIs' report; without `per_customer`, orders and revenue alone (no buyers, no repeaters: a sales
    chart's, in a sum per period instead of a count per customer)."""
    start, end = bounds(rollup, query)
    periods = periods_table(start, end, query.interval)
    # the period's days alone, as a plain filter: the rollup's row groups of other days are skipped
    bought = purchases(rollup.filter((rollup.day >= start.date()) & (rollup.day < end.date())))
    rows = bought.join(periods, [bought.day >= periods.bucket, bought.day < periods.bucket_end])
    if per_customer:
        customers = rows.group_by(["key", "customer_id"]).aggregate(orders=_.orders.sum(), revenue=_.revenue.sum())
        per = customers.group_by("key").aggregate(
            customers=_.count(), repeaters=(_.orders >= 2).sum(), orders=_.orders.sum(), revenue=_.revenue.sum()
        )
    else:
        per = rows.group_by("key").aggregate(orders=_.orders.sum(), revenue=_.revenue.sum())
    metric = REGISTRY[name]
    return report(metric, query, start, end, per.execute(), metric.value)


def _activity(rollup: ibis.Table, name: str, query: activity.WindowQuery, once: Once) -> dict[str, Any]:
    """metrics.activity's counts (active at each period's start and end, new, lost, gained) over the purchase days:
    its periods' edges are midnights, so a purchase's day stands for its time."""
    start, end = bounds(rollup, query)
    days = purchases(rollup).select("customer_id", "day")
    window = query.window_days or once("window", lambda: activity.gap_window(days))
    periods = periods_table(start, end, query.interval)
    frame = activity.activity_counts(days.select("customer_id", ts=days.day), periods, window).execute()
    metric = REGISTRY[name]
    result = report(metric, query, start, end, frame, metric.value)
    first = once("first", lambda: days.day.min().execute())
    since = (pd.Timestamp(first) + pd.Timedelta(days=window)) if pd.notna(first) else None
    result["details"].update(window_days=window, full_history=activity._known(since, result["from"]))
    for row in result["series"]:
        row["full_history"] = activity._known(since, row["bucket"])
    return result


def _cohorts(rollup: ibis.Table, query: Query) -> dict[str, Any]:
    """metrics.cohorts' cells (buyers and revenue per cohort and month since the first purchase)."""
    start, end = bounds(rollup, query)
    bought = purchases(rollup).filter(_.day < end)
    firsts = bought.group_by("customer_id").aggregate(first=_.day.min())
    firsts = firsts.filter((firsts.first >= start) & (firsts.first < end))
    rows = bought.join(firsts, "customer_id")
    month = lambda ts: ts.year() * 12 + ts.month()  # noqa: E731
    rows = rows.select(
        "customer_id", "revenue", cohort=rows.first.truncate("M"), offset=month(rows.day) - month(rows.first)
    )
    cells = (
        rows.group_by(["cohort", "offset"])
        .aggregate(customers=_.customer_id.nunique(), revenue=_.revenue.sum())
        .execute()
    )
    return REGISTRY["cohorts"]._matrix(cells, query, start, end)


def _each_time(key: str, compute: Callable[[], Any]) -> Any:
    return compute()


def run(rollup: ibis.Table, name: str, query: Query, once: Once = _each_time) -> dict[str, Any] | None:
    """The metric's answer from the rollup (as its runner's `calculate` gives it); None for a metric not in ROLLED.
    `once(key, compute)` may keep what depends on the data alone (the inactivity window, the first purchase day)."""
    if name in ORDER_KPIS:
        return _order_kpis(rollup, name, query)
    if name == SALES:
        return _order_kpis(rollup, "average_order_value", query, per_customer=False)
    if name in ACTIVITY:
        return _activity(rollup, name, query, once)
    if name == "cohorts":
        return _cohorts(rollup, query)
    return None


_KEPT: weakref.WeakKeyDictionary[Reader, dict[str, Any]] = weakref.WeakKeyDictionary()


def _once(reader: Reader, key: str, compute: Callable[[], Any]) -> Any:
    """What depends on the data alone, computed once per reader (the metrics of one page share one)."""
    kept = _KEPT.setdefault(reader, {})
    if key not in kept:
        kept[key] = compute()
    return kept[key]


def answer(
    uow: UnitOfWork | None, log: EventLog, name: str, params: dict[str, Any], reader: Reader | None = None
) -> dict[str, Any]:
    """metrics.service.run's JSON answer, as every surface asks for it (the API, the CLI, the dashboard, the review):
    from the rollup for a metric in ROLLED; for one in DATED, its runner over the events with the open ends of its
    period filled from the rollup (as it would fill them from the events); any other, or where the log keeps no
    rollup (the lake), its runner over the events. Through `reader` when given (a page's metrics share one), else a new one."""
    m = service.metric("average_order_value" if name == SALES else name)
    if m.needs_consents:
        return service.run(uow, log, m.name, params)
    query = service.parse(m, params)
    with nullcontext(reader) if reader is not None else log.reader() as r:
        rollup = r.kept_rollup
        try:
            if name in ROLLED and rollup is not None:
                result = run(rollup, name, query, partial(_once, r))
            else:
                asked, events = query, r.events
                if name in DATED and rollup is not None:
                    start, end = bounds(rollup, query)
                    asked = query.model_copy(
                        update={"date_from": start.date(), "date_to": (end - timedelta(days=1)).date()}
                    )
                if name in WITHIN and query.date_from and query.date_to:
                    start, end = bounds(rollup, query)  # both ends given: the rollup is not read (nor needed)
                    events = events.filter((events.timestamp >= start) & (events.timestamp < end))
                result = m.calculate(Data(events=events, cancelled=r.cancelled, rollup=r.kept_rollup), asked)
        except ValueError as exc:  # an empty log
            raise ValidationFailed([{"field": "events", "reason": str(exc)}]) from None
    return {**result, "query": query.model_dump(mode="json")}
