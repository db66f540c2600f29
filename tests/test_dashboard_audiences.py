"""Acting on what the analytics pages count: each cohort, cohort month, RFM group and cell, and funnel leak opens
the segment builder with a rule whose members are the customers the page counted there."""

from __future__ import annotations

import html
import re
from datetime import date, datetime
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from tests.test_dashboard import _login, _user, client, shop  # noqa: F401 - the fixtures

from boomerang.metrics import service as metrics
from boomerang.metrics.rfm import GROUP_NAMES
from boomerang.segments import audiences

PERIOD = {"date_from": "2024-01-01", "date_to": "2024-04-30"}


def _opened(href: str) -> tuple[dict, dict]:
    """The rule and the rest of the query of a link to the segment builder."""
    url = urlsplit(html.unescape(href))
    assert url.path == "/segments/new"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    return orjson.loads(query.pop("rule")), query


def _size(ws, rule: dict, name: str, as_of: str = "2024-04-30") -> int:
    return ws.segments.preview({"name": name, "rule": rule}, as_of=as_of)["size"]


def test_each_cohort_and_cohort_month_opens_the_rule_of_its_customers(shop, client):  # noqa: F811
    _user(shop, "ann", "viewer")
    _login(client, "ann")
    page = client.get("/cohorts", params=PERIOD).text
    rows = re.findall(r'<tr><th scope="row"><a href="([^"]+)"[^>]*>(\d{4}-\d{2})</a></th><td class="num">(\d+)<', page)
    assert [(month, int(n)) for _, month, n in rows] == [("2024-01", 2), ("2024-02", 1)]
    for href, month, customers in rows:
        rule, query = _opened(href)
        assert query == {"name": f"cohort_{month.replace('-', '_')}", "title": f"First bought in {month}"}
        assert _size(shop, rule, query["name"]) == int(customers)
    # January's cohort: ann bought again in February (M1) and April (M3), bob in March (M2)
    january = page.split("2024-01</a>")[1].split("</tr>")[0]
    cells = re.findall(r'title="(\d+) buyers[^"]*"><a href="([^"]+)"', january)
    assert [int(n) for n, _ in cells] == [2, 1, 1, 1]
    for buyers, href in cells[1:]:
        rule, query = _opened(href)
        assert _size(shop, rule, query["name"]) == int(buyers), query["title"]


def test_each_rfm_group_and_cell_opens_its_customers_and_its_rule(shop, client):  # noqa: F811
    _user(shop, "ann", "viewer")
    _login(client, "ann")
    page = client.get("/rfm", params={"date_to": "2024-04-30"}).text
    cells = re.findall(r'title="R(\d) F(\d): (\d+) customers[^"]*">\s*<a href="([^"]+)"', page)
    assert len(cells) == 25 and sum(int(n) for *_, n, _ in cells) == 3
    r, f, _, href = next(c for c in cells if c[2] != "0")
    rule, query = _opened(href)
    assert rule == audiences.rfm_cell(int(r), int(f)) and query["name"] == f"rfm_r{r}_f{f}"
    groups = re.findall(r'<tr data-group="([a-z_]+)">.*?href="([^"]+)">customers</a> · <a href="([^"]+)"', page, re.S)
    assert groups
    for group, customers, segment in groups:
        assert html.unescape(customers) == f"/customers?rfm={group}"
        rule, query = _opened(segment)
        assert rule == audiences.rfm_group(group) and query["name"] == f"rfm_{group}"


def test_a_funnel_leak_opens_the_rule_of_the_customers_it_lost(shop, client):  # noqa: F811
    _user(shop, "ann", "viewer")
    _login(client, "ann")
    page = client.get("/funnel", params=PERIOD).text.split('id="leaks">')[1].split("</ol>")[0]
    leaks = re.findall(r"<strong>(.*?) → (.*?)</strong>: (\d+) customers lost.*?href=\"([^\"]+)\"", page, re.S)
    assert leaks
    for step, next_step, lost, href in leaks:
        rule, query = _opened(href)
        assert query["name"].startswith("leak_") and html.unescape(step) in query["title"]
        assert _size(shop, rule, query["name"]) == int(lost), (step, next_step)


@pytest.mark.parametrize(
    ("month", "offset", "first", "later"),
    [
        (date(2024, 11, 1), 2, ["2024-11-01", "2024-11-30"], ["2025-01-01", "2025-01-31"]),
        (date(2024, 2, 1), 0, ["2024-02-01", "2024-02-29"], None),
    ],
)
def test_a_cohort_rule_spans_whole_months_across_years(month, offset, first, later):
    rule = audiences.cohort(month, offset)
    if later is None:
        assert rule["value"] == first
    else:
        assert rule["all"][0]["value"] == first and rule["all"][1]["between"] == later


def test_names_for_segments_are_valid_names():
    assert (
        audiences.name_for("leak", "Product Viewed", "not", "Product Added") == "leak_product_viewed_not_product_added"
    )
    assert audiences.name_for("2024-01", "m1") == "s_2024_01_m1"


def test_a_filtered_customer_list_opens_the_rule_of_the_customers_it_lists(shop, client):  # noqa: F811
    metrics.store_traits(shop.uow, shop.log, "rfm", {}, now=datetime(2024, 5, 1))
    metrics.store_traits(shop.uow, shop.log, "lifecycle", {}, now=datetime(2024, 5, 1))
    _user(shop, "mia", "marketer")
    _login(client, "mia")
    assert 'id="as-segment"' not in client.get("/customers").text  # nothing filtered: everyone
    listed = 0
    for group in GROUP_NAMES:
        page = client.get("/customers", params={"rfm": group}).text
        total = int(re.search(r'id="customer-count">(\d+)', page).group(1))
        if not total:
            continue
        rule, query = _opened(
            re.search(r'id="as-segment" href="([^"]+)"|href="([^"]+)" id="as-segment"', page).group(2)
        )
        assert rule == audiences.rfm_group(group) and query["name"] == f"customers_{group}"
        assert shop.segments.preview({"name": query["name"], "rule": rule})["size"] == total
        listed += total
    assert listed == 3  # every customer is in one group
    rule = audiences.traits(rfm="lost", stage="churned", churn=(0.7, float("inf")))
    assert rule == {
        "all": [
            audiences.rfm_group("lost"),
            {"trait": "lifecycle_stage", "op": "eq", "value": "churned"},
            {"trait": "churn_probability", "op": "gte", "value": 0.7},
        ]
    }
