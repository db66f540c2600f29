"""Honest numbers on the analytics pages: incomplete periods marked or compared with the same days, every KPI
against the period before (by the metric's own code), cards that follow the chosen dates, the shop's currency."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from tests.test_dashboard import _login, _user, client, shop  # noqa: F401 - the fixtures

from boomerang.metrics import periods, service
from boomerang.metrics.periods import Period
from test_metrics import calc, data  # noqa: F401 - the hand-made shop's fixture

# --- periods ------------------------------------------------------------------------------------------


def test_a_month_in_progress_is_cut_and_compared_with_the_same_days_before():
    current, before = periods.compared(date(2026, 11, 1), date(2026, 11, 30), date(2026, 11, 5))
    assert current == Period(date(2026, 11, 1), date(2026, 11, 5), complete=False)
    assert before == Period(date(2026, 10, 1), date(2026, 10, 5))
    # whole months go back by months, other runs of days by days
    assert periods.compared(date(2024, 3, 1), date(2024, 3, 31), date(2024, 5, 1))[1] == Period(
        date(2024, 2, 1), date(2024, 2, 29)
    )
    assert periods.compared(date(2024, 3, 10), date(2024, 3, 19), date(2024, 5, 1))[1] == Period(
        date(2024, 2, 29), date(2024, 3, 9)
    )


def test_the_last_whole_month_and_the_change():
    assert periods.last_complete_month(date(2025, 12, 7), date(2026, 12, 7)) == Period(
        date(2026, 11, 1), date(2026, 11, 30)
    )
    assert periods.last_complete_month(date(2025, 12, 1), date(2025, 12, 31)) == Period(
        date(2025, 12, 1), date(2025, 12, 31)
    )
    assert periods.last_complete_month(date(2025, 12, 7), date(2025, 12, 31)) is None  # the data starts inside it
    churn = periods.change(0.3, 0.2, better="down", rate=True)
    assert churn["delta"] == pytest.approx(0.1) and churn["relative"] is None and churn["good"] is False
    orders = periods.change(15, 10)
    assert orders["relative"] == 0.5 and orders["direction"] == "up" and orders["good"] is True
    assert periods.change(None, 10)["direction"] is None


def test_series_say_which_buckets_are_whole(data):  # noqa: F811
    cut = calc(data, "average_order_value", date_from=date(2024, 1, 10), date_to=date(2024, 4, 10))
    assert [row["complete"] for row in cut["series"]] == [False, True, True, False]
    whole = calc(data, "average_order_value")
    assert all(row["complete"] for row in whole["series"])


def test_cohort_average_leaves_out_a_month_in_progress(data):  # noqa: F811
    whole = calc(data, "cohorts")
    assert whole["details"]["last_month_complete"] is True
    cut = calc(data, "cohorts", date_to=date(2024, 4, 10))
    assert cut["details"]["last_month_complete"] is False
    # The January cohort's April (M3) is ten days old: only the cohorts that lived a whole M3 count, none here.
    assert cut["details"]["average_retention"][3] is None
    assert whole["details"]["average_retention"][3] == 0.5


def test_retention_flags_months_without_a_window_of_history(data):  # noqa: F811
    retention = calc(data, "retention_rate", window_days=60)
    # First purchase 2024-01-05: a period must start on 2024-03-05 or later to know everyone active at its start.
    assert [row["full_history"] for row in retention["series"]] == [False, False, False, True]
    assert retention["details"]["full_history"] is False


# --- the pages ----------------------------------------------------------------------------------------


def _chart(html: str, name: str) -> dict:
    return json.loads(re.search(rf'id="{name}-data">(.*?)</script>', html, re.S).group(1))


def _tiles(html: str) -> dict[str, str]:
    """Tile label -> the text of its tile."""
    section = re.search(r'<section class="tiles" id="kpi-tiles">(.*?)</section>', html, re.S).group(1)
    tiles = re.findall(r'<span class="label">(.*?)</span>(.*?)</div>', section, re.S)
    return {label: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).strip() for label, body in tiles}


@pytest.fixture
def viewer(shop, client):  # noqa: F811
    _user(shop, "ann", "viewer")
    _login(client, "ann")
    return client


def test_the_overview_headline_is_the_last_whole_month_against_the_one_before(shop, viewer):  # noqa: F811
    # The shop's data ends on 2024-04-02: April is two days old, March is the last whole month.
    page = viewer.get("/").text
    assert "Tiles: <strong>Mar 2024</strong>" in page and "each against Feb 2024" in page
    tiles = _tiles(page)
    march = service.run(shop.uow, shop.log, "average_order_value", {"date_from": "2024-03-01", "date_to": "2024-03-31"})
    february = service.run(
        shop.uow, shop.log, "average_order_value", {"date_from": "2024-02-01", "date_to": "2024-02-29"}
    )
    assert (march["details"]["orders"], february["details"]["orders"]) == (1, 2)
    assert tiles["Orders"].startswith("1 ▼ -1 (-50.0%) vs 2")
    assert "30.00 EUR" in tiles["Average order value"] and "vs 30.00 EUR" in tiles["Average order value"]
    assert "all time" in tiles["Customers"]
    # The charts reach twelve months back from the data's end; April is marked incomplete.
    sales = _chart(page, "sales-chart")
    assert sales["labels"][-1] == "2024-04" and sales["partial"][-1] is True and not any(sales["partial"][:-1])
    assert sales["datasets"][1]["label"] == "Revenue (EUR)" and "2024-04 (Apr 1–2)" in sales["notes"][0]


@pytest.mark.parametrize("reach", [None, Period(date(2024, 1, 1), date(2024, 4, 2))])
def test_two_whole_months_read_from_one_run_say_what_each_run_alone_says(shop, reach):  # noqa: F811
    """The tiles of two months in a row come from one run by month over both (or over the chart's reach): each month
    as its own run says it, for the rollup's metrics and the others."""
    from boomerang.dashboard.data import Analytics
    from boomerang.metrics import headline

    asked = []

    def run(name, params):
        asked.append(name)
        return Analytics(shop).metric(name, params)

    march, february = Period(date(2024, 3, 1), date(2024, 3, 31)), Period(date(2024, 2, 1), date(2024, 2, 29))
    now, then = headline.measure_both(run, march, february, reach=reach)
    assert len(asked) == 3
    for got, period in ((now, march), (then, february)):
        alone = headline.measure(lambda n, p: service.run(shop.uow, shop.log, n, p), period)
        assert headline.values(got) == headline.values(alone), period
    assert headline.values(now)["orders"] > 0
    odd = Period(date(2024, 3, 1), date(2024, 3, 20))  # not a whole month: each period is run on its own
    asked.clear()
    headline.measure_both(run, odd, Period(date(2024, 2, 10), date(2024, 2, 29)))
    assert len(asked) == 6


def test_a_period_in_progress_is_compared_with_the_same_days(shop, viewer):  # noqa: F811
    page = viewer.get("/", params={"date_from": "2024-04-01", "date_to": "2024-04-30"}).text
    assert "Apr 1–2, 2024 (incomplete)" in page and "each against Mar 1–2, 2024 (the same days)" in page
    now = service.run(shop.uow, shop.log, "retention_rate", {"date_from": "2024-04-01", "date_to": "2024-04-02"})
    before = service.run(shop.uow, shop.log, "retention_rate", {"date_from": "2024-03-01", "date_to": "2024-03-02"})
    tiles = _tiles(page)
    assert tiles["Orders"].startswith("1 ▲ +1")  # o3 on Apr 2; nothing on Mar 1-2
    if now["details"]["full_history"] and before["details"]["full_history"]:
        assert f"{now['value'] * 100:.1f}%" in tiles["Retention rate"]
    else:
        assert tiles["Retention rate"].startswith("–") and "days of purchases before" in tiles["Retention rate"]


def test_every_kpi_follows_the_chosen_dates(shop, viewer):  # noqa: F811
    period = {"date_from": "2024-02-01", "date_to": "2024-03-31"}
    page = viewer.get("/", params=period).text
    tiles = _tiles(page)
    chosen = service.run(shop.uow, shop.log, "average_order_value", period)
    assert chosen["details"]["orders"] == 3 and tiles["Orders"] == "3"
    assert tiles["Revenue"].startswith("90.00 EUR")
    nps = service.run(shop.uow, shop.log, "nps", period)
    assert tiles["NPS"].startswith(f"{nps['value']:.1f}") and "1 answers" in tiles["NPS"]
    # Dec-Jan, the two months before, start before the data (2024-01-01): nothing is set against them.
    assert "no whole earlier period in the data to compare with (Dec 1, 2023 – Jan 31, 2024)" in page
    assert "▲" not in page and "▼" not in page
    assert _chart(page, "sales-chart")["labels"] == ["2024-02", "2024-03"]


def test_bad_dates_are_the_askers_error_and_name_the_field(viewer):
    for path in ("/", "/cohorts", "/funnel"):
        response = viewer.get(path, params={"date_from": "2024-13-01"})
        assert response.status_code == 400 and "date_from: must be a date" in response.text, path
    reversed_ = viewer.get("/", params={"date_from": "2024-03-01", "date_to": "2024-01-01"})
    assert reversed_.status_code == 400 and "date_from: must not be after date_to" in reversed_.text
    assert viewer.get("/rfm", params={"date_to": "soon"}).status_code == 400


def test_cohorts_and_funnel_say_what_is_still_in_progress(shop, viewer):  # noqa: F811
    cohorts = viewer.get("/cohorts").text
    assert 'id="cohort-partial"' in cohorts and cohorts.count(' partial"') == 2  # each cohort's April cell
    # A customer's funnel starts at their first step in the period: from 2024-03-20, u1's view on Apr 2, 09:00, an
    # hour before the steps' latest event, whose 7-day window is still open; over the whole data, none is.
    assert service.run(shop.uow, shop.log, "funnel", {})["details"]["still_open"] == 0
    recent = service.run(shop.uow, shop.log, "funnel", {"date_from": "2024-03-20"})
    assert recent["details"]["still_open"] == 1 and recent["steps"][0]["customers"] == 1
    assert "1 of the 1 customers" in viewer.get("/funnel", params={"date_from": "2024-03-20"}).text
    assert 'id="funnel-open"' not in viewer.get("/funnel").text


def test_the_funnel_page_opens_on_the_last_whole_month_with_the_whole_data_a_click_away(shop, viewer):  # noqa: F811
    page = viewer.get("/funnel").text  # the data runs from 2024-01-01 to 2024-04-02: March is the last whole month
    march = service.run(shop.uow, shop.log, "funnel", {"date_from": "2024-03-01", "date_to": "2024-03-31"})
    assert "between 2024-03-01 and 2024-03-31 (the last whole" in page
    assert f"Overall conversion: <strong>{march['value'] * 100:.1f}" in page.replace("\n", " ")
    link = page.split('id="funnel-whole" href="')[1].split('"')[0].replace("&amp;", "&")
    assert link == "/funnel?date_from=2024-01-01&date_to=2024-04-02&category="
    whole = viewer.get(link).text
    steps = viewer.get("/funnel", params={"step": ["Product Viewed", "Order Completed"]}).text  # the steps go along
    assert "date_to=2024-04-02&amp;category=&amp;step=Product+Viewed&amp;step=Order+Completed" in steps
    everything = service.run(shop.uow, shop.log, "funnel", {"date_from": "2024-01-01", "date_to": "2024-04-02"})
    assert "between 2024-01-01 and 2024-04-02," in whole and 'id="funnel-whole"' not in whole
    assert everything["steps"][0]["customers"] > march["steps"][0]["customers"]
