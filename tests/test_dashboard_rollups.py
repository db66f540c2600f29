"""The dashboard's numbers from the daily rollup equal the metrics' runners over the raw events: on the hand-made
shop, and on a random shop after merges of profiles, late events, cancellations, an erasure and a rebuild (that
the rollup itself stays equal to a recount after each write is tests/test_rollups.py's)."""

from __future__ import annotations

import random
from datetime import date

import pandas as pd
import pytest
from tests import metrics_data

from boomerang.dashboard.data import Analytics
from boomerang.events import rollups
from boomerang.events.log import EVENT_COLUMNS
from boomerang.metrics import rolled, service

METRICS = tuple(n for n in rolled.ROLLED if n != rolled.SALES)  # the registered ones (sales: see the page test)
PERIODS = [
    {},
    {"interval": "week"},
    {"interval": "day", "date_from": date(2024, 2, 1), "date_to": date(2024, 3, 10)},
    {"date_from": date(2024, 1, 15), "date_to": date(2024, 4, 10)},
    {"date_from": date(2024, 3, 1)},
]


def _frame(rows: list[tuple], start: int = 0) -> pd.DataFrame:
    frame = metrics_data.event_frame(rows, "2025-01-01")
    frame["message_id"] = [f"m{start + i}" for i in range(len(rows))]
    return frame[EVENT_COLUMNS]


def _rounded(value):
    """Floats to 9 significant digits, in nested answers: sums of the same values added in another order."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _equal(log, names=METRICS, periods=PERIODS, extra=None) -> None:
    for name in names:
        for params in periods:
            params = {**params, **(extra or {}).get(name, {})}
            raw = service.run(None, log, name, params)
            assert _rounded(rolled.answer(None, log, name, params)) == _rounded(raw), (name, params)


@pytest.fixture
def shop(ws):
    ws.log.append(_frame(_rows()))
    return ws


def _rows() -> list[tuple]:
    orders = [(c, "Order Completed", at, {"order_id": o, **props}) for c, o, at, props in metrics_data.ORDERS]
    return orders + list(metrics_data.OTHER)


def test_the_hand_made_shop(shop):
    _funnels_agree(shop.log)
    _equal(shop.log, periods=PERIODS[1:4])
    _equal(shop.log, names=rolled.DATED, periods=[PERIODS[0], PERIODS[4]])
    _equal(shop.log, names=rolled.WITHIN, periods=PERIODS[2:4])  # over the period's events alone
    windows = {"retention_rate": {"window_days": 60}, "churn_rate": {"window_days": 45}}
    _equal(shop.log, names=("retention_rate", "churn_rate"), periods=PERIODS[:1], extra=windows)


def test_the_funnel_of_the_whole_period_alone_says_the_same_from_the_rollup(shop):
    """The pages ask for the whole period alone (`series` off): its first steps come from the daily rollup (without a
    category) and every count equals the runner's over the events, series or not."""
    for params in ({}, {"date_from": date(2024, 3, 1)}, {"category": "Tea"}, {"window_hours": 24 * 30}):
        full = service.run(None, shop.log, "funnel", params)
        alone = rolled.answer(None, shop.log, "funnel", {**params, "series": False})
        assert alone == service.run(None, shop.log, "funnel", {**params, "series": False}), params
        assert alone["series"] == [] and full["series"], params
        for key in ("steps", "leaks", "by_category", "details", "value", "from", "to"):
            assert alone[key] == full[key], (params, key)
        bare = rolled.answer(None, shop.log, "funnel", {**params, "series": False, "categories": False})
        assert bare["by_category"] == [] and full["by_category"], params
        for key in ("steps", "leaks", "details", "value", "from", "to"):
            assert bare[key] == full[key], (params, key)
    assert [s["customers"] for s in alone["steps"]][0] > 0


def _funnels_agree(log) -> None:
    """The funnel's first steps from the rollup (what the service and the pages read) and from the events alone."""
    from boomerang.metrics.base import Data
    from boomerang.metrics.funnel import Funnel, FunnelQuery

    asked = [{}, {"series": False}, {"date_from": date(2024, 3, 1)}, {"category": "Tea"}, {"interval": "week"}]
    asked += [{"categories": False}, {"categories": False, "series": False, "category": "Tea"}]
    with log.reader() as r:
        for params in asked:
            query = FunnelQuery(**params)
            rolled_up = Funnel().calculate(Data(events=r.events, cancelled=r.cancelled, rollup=r.rollup), query)
            assert rolled_up == Funnel().calculate(Data(events=r.events), query), params


def test_a_funnel_starts_at_the_first_step_of_the_day_from_the_rollup(ws):
    """Several first steps in a day: the rollup's first time of the day is the anchor, as the events say."""
    rows = [
        ("c1", "Product Viewed", "2024-03-04 09:00", {"category": "Tea > Green"}),
        ("c1", "Product Added", "2024-03-04 12:00", {}),
        ("c1", "Product Viewed", "2024-03-04 20:00", {"category": "Coffee"}),
        ("c1", "Checkout Started", "2024-03-04 13:00", {}),
        ("c2", "Product Added", "2024-03-05 08:00", {}),  # before their first view of the day: not counted
        ("c2", "Product Viewed", "2024-03-05 09:30", {"category": "Coffee"}),
        ("c2", "Product Viewed", "2024-03-05 18:00", {"category": "Tea"}),
        ("c3", "Product Viewed", "2024-03-31 23:00", {"category": "Tea"}),
        ("c3", "Product Viewed", "2024-04-01 07:00", {"category": "Coffee"}),
        ("c3", "Product Added", "2024-04-01 08:00", {}),
    ]
    ws.log.append(_frame(rows))
    _funnels_agree(ws.log)
    march = rolled.answer(None, ws.log, "funnel", {"date_from": date(2024, 3, 1), "date_to": date(2024, 3, 31)})
    assert [s["customers"] for s in march["steps"]] == [3, 2, 1, 0]
    by = {b["category"]: [s["customers"] for s in b["steps"]] for b in march["by_category"]}
    assert by == {"Tea": [2, 2, 1, 0], "Coffee": [1, 0, 0, 0]}
    spring = rolled.answer(None, ws.log, "funnel", {"date_from": date(2024, 3, 1), "date_to": date(2024, 4, 30)})
    assert [[s["customers"] for s in row["steps"]] for row in spring["series"]] == [[3, 2, 1, 0], [1, 1, 0, 0]]


def _random_rows(rng: random.Random, n: int, customers: list[str | None]) -> list[tuple]:
    events = [
        "Product Viewed",
        "Order Completed",
        "Order Completed",
        "Order Cancelled",
        "Order Refunded",
        "Page Viewed",
    ]
    rows = []
    for _ in range(n):
        event = rng.choice(events)
        at = f"2024-0{rng.randint(1, 5)}-{rng.randint(10, 28)} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
        props = {"order_id": f"o{rng.randint(1, 60)}"} if event.startswith("Order") else {}
        if rng.random() < 0.8:
            props["revenue" if rng.random() < 0.6 else "total"] = round(rng.random() * 90, 2)
        rows.append((rng.choice(customers), event, at, props))
    return rows


def test_a_random_shop_after_merges_late_events_erasure_and_rebuild(ws):
    rng = random.Random(11)
    customers = [f"c{i}" for i in range(12)] + [None]
    start = 0
    for _ in range(5):  # batches arrive in any time order: each holds late events for the one before
        rows = _random_rows(rng, 60, customers)
        merges = [(rng.choice(customers[:-1]), rng.choice(customers[:-1])) for _ in range(2)]
        ws.log.append(_frame(rows, start), merges=[(a, b) for a, b in merges if a != b])
        start += len(rows)
    ws.log.erase_customers(["c3", "c4"], "erased-1", user_ids=["c5"])
    _funnels_agree(ws.log)
    _equal(ws.log, names=(*METRICS, *rolled.DATED), periods=[PERIODS[0], PERIODS[4]])
    with ws.log.connect() as conn:
        rollups.rebuild(conn)
    _equal(ws.log, names=("average_order_value",), periods=PERIODS[:1])


def test_the_pages_read_the_rollup_and_say_the_same(shop):
    fast, slow = Analytics(shop), Analytics(shop, rollups=False)
    with fast.reading():  # a page's metrics through one reader: the rollup's, and the others over the events
        for name in (*METRICS, *rolled.DATED, "nps", "rfm", "historical_ltv"):
            params = {"interval": "month"} if name != "rfm" else {}
            assert _rounded(fast.metric(name, params)) == _rounded(slow.metric(name, params)), name
    for params in PERIODS[:3]:  # the sales chart's orders and revenue are the average order value's
        sales, aov = fast.sales(params), slow.sales(params)
        pick = lambda rows: [(r["bucket"], r["orders"], r["revenue"], r["complete"]) for r in rows]  # noqa: E731
        assert pick(sales["series"]) == pick(aov["series"]) and sales["to"] == aov["to"]
        assert (sales["value"], sales["details"]["orders"]) == (aov["value"], aov["details"]["orders"])
    with shop.log.connect() as conn:  # the rollup emptied: the page's answer comes from it, not from the events
        conn.execute(f"DELETE FROM {rollups.TABLE}")
    period = {"date_from": date(2024, 1, 1), "date_to": date(2024, 4, 30)}
    assert Analytics(shop).metric("average_order_value", period)["details"]["orders"] == 0
    assert Analytics(shop, rollups=False).metric("average_order_value", period)["details"]["orders"] == 7
