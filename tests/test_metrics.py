"""Every metric on the hand-made shop of metrics_data.py, against values worked out by hand."""

from __future__ import annotations

from datetime import date

import ibis
import pytest

import metrics_data
from boomerang.metrics import service
from boomerang.metrics.base import REGISTRY, Data

PERIOD = {"date_from": date(2024, 1, 1), "date_to": date(2024, 4, 30), "interval": "month"}


def duckdb_data() -> Data:
    con = ibis.duckdb.connect()
    con.con.register("raw_events", metrics_data.events())  # Ibis 12's create_table(frame) fails on DuckDB 2
    con.raw_sql(
        "CREATE TABLE events AS SELECT * REPLACE (CAST(properties AS JSON) AS properties, "
        "CAST(context AS JSON) AS context) FROM raw_events"
    )
    return Data(events=con.table("events"), consents=ibis.memtable(metrics_data.consents()))


@pytest.fixture(scope="module")
def data() -> Data:
    return duckdb_data()


def calc(data: Data, name: str, **params):
    m = REGISTRY[name]
    return m.calculate(data, service.parse(m, {**PERIOD, **params}))


def series(result, field="value"):
    return [row[field] for row in result["series"]]


def test_order_kpis(data):
    aov = calc(data, "average_order_value")
    assert aov["value"] == pytest.approx(370 / 7) and aov["details"]["orders"] == 7  # o6 was cancelled
    assert series(aov, "orders") == [3, 1, 2, 1] and series(aov, "revenue") == [190, 10, 110, 60]
    assert [b["bucket"] for b in aov["series"]] == ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]
    rpr = calc(data, "repeat_purchase_rate")
    assert rpr["value"] == 0.5 and series(rpr) == [0.5, 0, 0, 0]
    assert calc(data, "purchase_frequency")["value"] == 1.75
    weekly = calc(data, "purchase_frequency", interval="week")
    assert weekly["series"][0]["bucket"] == "2024-01-01" and sum(series(weekly, "orders")) == 7


def test_revenue_new_vs_returning_and_ltv(data):
    split = calc(data, "revenue_new_vs_returning")
    assert (split["details"]["new"], split["details"]["returning"]) == (370, 0)
    assert series(split, "new") == [190, 10, 80, 0] and series(split, "returning") == [0, 0, 30, 60]
    ltv = calc(data, "historical_ltv")
    assert ltv["value"] == pytest.approx(345 / 4)  # 370 bought, 25 refunded, 4 customers
    assert series(ltv) == pytest.approx([95, 200 / 3, 77.5, 86.25])


def test_nps(data):
    nps = calc(data, "nps")
    assert nps["value"] == 25 and nps["details"] == {"answers": 4, "promoters": 2, "detractors": 1}
    assert series(nps) == [None, 100, -50, None]


def test_retention_and_churn_with_a_60_day_window(data):
    retention = calc(data, "retention_rate", window_days=60)
    assert series(retention) == pytest.approx([None, 1.0, 2 / 3, 1 / 3], nan_ok=True)
    assert series(retention, "at_start") == [0, 2, 3, 3] and series(retention, "gained") == [2, 1, 1, 1]
    churn = calc(data, "churn_rate", window_days=60)
    assert series(churn) == pytest.approx([None, 0, 1 / 3, 2 / 3], nan_ok=True)
    assert churn["details"]["window_days"] == 60


def test_default_window_comes_from_the_gaps_between_purchases(data):
    # Gaps: A 15 and 50 days, B 96 days; the 90th percentile is 86.8, so 87 days.
    assert calc(data, "churn_rate")["details"]["window_days"] == 87


def test_cohorts(data):
    cohorts = calc(data, "cohorts", date_from=None)["cohorts"]
    assert [(c["cohort"], c["customers"], c["revenue"]) for c in cohorts] == [
        ("2024-01", 2, 280),
        ("2024-02", 1, 10),
        ("2024-03", 1, 80),
    ]
    assert [c["retention"] for c in cohorts] == [[1, 0, 0.5, 0.5], [1, 0, 0], [1, 0]]
    assert calc(data, "cohorts")["details"]["average_retention"] == pytest.approx([1, 0, 1 / 3, 0.5])


def test_rfm_scores_and_groups(data):
    frame = REGISTRY["rfm"].per_customer(data, service.parse(REGISTRY["rfm"], PERIOD)).set_index("customer_id")
    assert frame.loc["A", ["r_score", "f_score", "m_score", "rfm_group"]].tolist() == [4, 5, 5, "loyal"]
    assert frame.loc["B", ["r_score", "f_score", "m_score", "rfm_group"]].tolist() == [5, 4, 4, "champions"]
    assert frame.loc["C", ["r_score", "f_score", "m_score", "rfm_group"]].tolist() == [1, 1, 1, "lost"]
    assert frame.loc["D", ["r_score", "f_score", "m_score", "rfm_group"]].tolist() == [2, 1, 2, "hibernating"]
    assert frame.loc["A", "recency_days"] == pytest.approx(51 + 15 / 24)  # 2024-03-10 09:00 to 2024-05-01
    result = calc(data, "rfm")
    counts = {g["group"]: g["customers"] for g in result["groups"]}
    assert counts["champions"] == counts["loyal"] == counts["lost"] == counts["hibernating"] == 1
    assert result["grid"][0][3] == 1  # R=5, F=4: B


def test_lifecycle_history(data):
    query = service.parse(REGISTRY["lifecycle"], {**PERIOD, "window_days": 60})
    stages = REGISTRY["lifecycle"].per_customer(data, query).set_index("customer_id")
    assert stages["stage"].to_dict() == {"A": "sleeping", "B": "reactivated", "C": "churned", "D": "churned"}
    assert str(stages.loc["D", "since"].date()) == "2024-04-30"
    events = REGISTRY["lifecycle"].events(data, query)
    history = {c: g.sort_values("timestamp")["stage"].tolist() for c, g in events.groupby("customer_id")}
    assert history == {
        "A": ["new", "active", "sleeping", "active", "sleeping"],
        "B": ["new", "sleeping", "churned", "reactivated"],
        "C": ["new", "sleeping", "churned"],
        "D": ["new", "sleeping", "churned"],
    }
    assert calc(data, "lifecycle", window_days=60)["stages"] == {
        "new": 0,
        "active": 0,
        "sleeping": 1,
        "churned": 2,
        "reactivated": 1,
    }


def test_funnel_with_its_leaks_and_categories(data):
    funnel = calc(data, "funnel")
    assert [s["customers"] for s in funnel["steps"]] == [4, 2, 1, 1]  # B checked out three weeks later
    assert [(leak["to"], leak["lost"]) for leak in funnel["leaks"]] == [
        ("Product Added", 2),
        ("Checkout Started", 1),
        ("Order Completed", 0),
    ]
    by = {b["category"]: [s["customers"] for s in b["steps"]] for b in funnel["by_category"]}
    assert by == {"Coffee": [2, 1, 0, 0], "Tea": [2, 1, 1, 1]}
    tea = calc(data, "funnel", category="Tea")
    assert [s["customers"] for s in tea["steps"]] == [2, 1, 1, 1]
    longer = calc(data, "funnel", window_hours=24 * 30)
    assert [s["customers"] for s in longer["steps"]] == [4, 2, 2, 1]


def test_subscriber_retention(data):
    channels = calc(data, "subscriber_retention")["channels"]
    assert channels["email"]["subscribers"] == 2
    assert (channels["email"]["after_30_days"], channels["email"]["after_90_days"]) == (0.5, 0.5)
    assert channels["email"]["after_365_days"] is None
    assert (channels["sms"]["after_90_days"], channels["sms"]["eligible_90_days"]) == (1, 1)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"date_from": "2024-05-01", "date_to": "2024-01-01"}, "query"),
        ({"interval": "fortnight"}, "interval"),
        ({"window_days": 0}, "window_days"),
    ],
)
def test_bad_queries_name_the_parameter(params, field):
    from boomerang.core.errors import ValidationFailed

    m = REGISTRY["churn_rate"]
    with pytest.raises(ValidationFailed) as err:
        service.parse(m, params)
    assert err.value.errors[0]["field"] == field
