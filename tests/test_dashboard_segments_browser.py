"""The segment pages in a real headless Chromium: the builder's live preview, the trend charts, explain.

The shop is the segments' test shop (tests/segments_data.py) served by `boomerang serve`; the server runs on
the real clock, so the rules here are on profile fields, which do not depend on the day, or on the coffee views
the fixture adds as of the real now (`RECENT`).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

import segments_data
from boomerang.auth.users import create_user
from boomerang.bootstrap import open_workspace
from boomerang.config import Settings
from boomerang.core.clock import SystemClock
from boomerang.events.ingest import record
from boomerang.orchestration.rounds import move_events
from boomerang.segments import membership, service
from browser_support import chart_pixels, login, need_browser, serving, shot

pytestmark = pytest.mark.browser
EXPECTED_ERRORS = ("status of 400",)  # the previews of unfinished rules
MARKETER = {"username": "mia", "password": "correct-horse"}
# Coffee views in the last days of the real clock, by user id: ann and fay have email consent, bob has none,
# and gus viewed only twice; so "Coffee views at least 3 times in 7 days and reachable by email" is ann and fay.
RECENT = {"ann": 3, "bob": 3, "fay": 4, "gus": 2}


def _recent(ws) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    at = lambda hours: (now - timedelta(hours=hours)).isoformat() + "Z"  # noqa: E731
    messages = [
        {
            "type": "identify",
            "userId": u,
            "timestamp": at(100),
            "traits": {"email": f"{u}@example.org", "consents": {"email": True}},
        }
        for u in ("fay", "gus")
    ]
    messages += [
        {
            "type": "track",
            "userId": u,
            "event": "Product Viewed",
            "timestamp": at(6 * i + 1),
            "properties": {"sku": "C2", "category": "Coffee"},
        }
        for u, times in RECENT.items()
        for i in range(times)
    ]
    ws.clock = SystemClock()
    with ws.uow.session() as session:
        record(session, messages, now=now, limits=ws.settings.ingest, source="test")
    move_events(ws)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The segments' shop with a marketer and one segment refreshed twice, and `boomerang serve` on it."""
    need_browser()
    home = tmp_path_factory.mktemp("segments-dashboard") / "ws"
    ws = open_workspace(Settings(home=home))
    segments_data.load(ws)
    _recent(ws)
    with ws.uow.session() as s:
        create_user(s, role="marketer", now=segments_data.NOW, **MARKETER)
        service.save(
            s,
            {"name": "kyiv", "title": "Kyiv", "rule": {"attribute": "city", "op": "eq", "value": "Kyiv"}},
            now=segments_data.NOW,
        )
    membership.refresh(ws.segments, ["kyiv"])
    membership.refresh(ws.segments, ["kyiv"])
    ws.engine.dispose()
    with serving(home) as base:
        yield {"base": base, "marketer": MARKETER}


def test_the_builder_previews_the_rule_as_it_is_typed(page, server):
    login(page, server["marketer"], "/segments/new")
    assert page.url.endswith("/segments/new")
    page.wait_for_selector("#preview[data-state=ok]")  # the example rule, previewed on load
    page.fill("#rule", "")
    page.locator("#rule").press_sequentially('{"attribute": "city", "op": "eq", "value": "Kyiv"}', delay=10)
    page.wait_for_selector('#preview[data-size="2"]')
    assert page.inner_text("#preview-size") == "2"
    assert "28.6% of 7 customers" in page.inner_text("#preview-share")
    assert page.locator("#preview-sample li a[href^='/customers/cus_']").count() == 2

    page.fill("#rule", '{"attribute": "shoe_size", "op": "eq", "value": 1}')
    page.wait_for_selector("#preview[data-state=error]")
    assert "rule.attribute" in page.inner_text("#preview-errors") and page.inner_text("#preview-size") == "–"

    page.fill("#rule", "attribute: city\nop: eq\nvalue: Lviv\n")  # YAML too
    page.wait_for_selector('#preview[data-size="1"]')
    assert page.locator("#preview-sample li").count() == 1
    shot(page, "segment-builder")

    page.fill("input[name=name]", "lviv")
    page.fill("input[name=title]", "Lviv")
    page.click("#segment-form button[type=submit]")
    page.wait_for_url("**/segments/lviv")
    assert page.inner_text("h1") == "Lviv" and "Lviv" in page.inner_text("#definition")


def test_trends_the_size_chart_and_explain(page, server):
    login(page, server["marketer"], "/segments")
    assert page.locator("#segments tbody tr").count() >= 1
    assert chart_pixels(page, "#trend-kyiv") > 30
    shot(page, "segments")
    page.click("#segments a:has-text('Kyiv')")
    page.wait_for_url("**/segments/kyiv")
    assert chart_pixels(page, "#size-chart") > 300
    assert page.inner_text("#members") == "2" and page.locator("#members-sample tbody tr").count() == 2
    page.fill("#explain input[name=customer]", "ann")
    page.click("#explain button[type=submit]")
    page.wait_for_selector("#explain-tree")
    assert "is a member" in page.inner_text("#verdict")
    assert "value seen: Kyiv" in page.inner_text("#explain-tree")
    shot(page, "segment")
    page.goto("/segments/matrix")
    assert "nobody speaks to this segment" in page.inner_text("#matrix")


COFFEE_FANS = {
    "all": [
        {
            "event": "Product Viewed",
            "where": [{"property": "category", "op": "starts_with", "value": "Coffee"}],
            "within_days": 7,
            "op": "gte",
            "value": 3,
        },
        {"reachable": "email"},
    ]
}


def test_a_segment_built_from_rows_is_counted_paged_and_exported(page, server):
    login(page, server["marketer"], "/segments/new")
    page.wait_for_selector("#builder-rows[data-state=ready]")
    while page.locator(".cond-row").count():  # the example's rows go: the rule is built from scratch
        page.locator(".cond-row [data-action=remove]").first.click()
    add = page.locator("#builder-rows > .cond-group > .group-actions [data-action=add-condition]")
    add.click()
    viewed = page.locator(".cond-row").nth(0)
    viewed.locator("[data-field=event]").fill("Product Viewed")
    viewed.locator("[data-field=event]").dispatch_event("change")  # its properties are offered now
    viewed.locator("[data-action=add-where]").click()
    where = viewed.locator(".where-row").first
    where.locator("[data-field=where-property]").fill("category")
    where.locator("[data-field=where-property]").dispatch_event("change")
    where.locator("[data-field=where-op]").select_option("starts_with")
    where.locator("[data-field=where-value]").fill("Coffee")
    viewed.locator("[data-field=event-value]").fill("3")
    viewed.locator("[data-field=days]").fill("7")
    add.click()
    consent = page.locator(".cond-row").nth(1)
    consent.locator("[data-field=kind]").select_option("reachable")
    consent.locator("[data-field=reachable]").select_option("email")
    page.wait_for_selector('#preview[data-size="2"]')  # ann and fay; bob has no consent, gus viewed twice
    assert json.loads(page.input_value("#rule")) == COFFEE_FANS
    page.fill("#builder-explain-customer", "bob")  # why bob is out: viewed enough, but no email consent
    page.click("#builder-explain-button")
    page.wait_for_selector("#builder-explain[data-state=ok]")
    assert "is not a member" in page.inner_text("#builder-explain-verdict")
    assert page.locator("#builder-explain-tree .explain-node.fail").count() == 2  # the consent, and so the whole

    # the text rebuilds the rows: a condition added there shows as a row, negated
    page.fill("#rule", json.dumps({"all": [*COFFEE_FANS["all"], {"not": {"segment": "kyiv"}}]}))
    page.click("#apply-text")
    page.wait_for_selector(".cond-row[data-kind=segment]")
    assert page.locator(".cond-row[data-kind=segment] [data-field=not]").is_checked()
    page.wait_for_selector('#preview[data-size="1"]')
    page.locator(".cond-row[data-kind=segment] [data-action=remove]").click()
    page.wait_for_selector('#preview[data-size="2"]')
    shot(page, "segment-builder-rows")

    page.fill("input[name=name]", "coffee_fans")
    page.fill("input[name=title]", "Coffee fans")
    page.click("#segment-form button[type=submit]")
    page.wait_for_url("**/segments/coffee_fans")
    assert page.inner_text("#members") == "2" and "counted: 2" in page.inner_text("#saved")

    page.goto("/segments/coffee_fans?sort=email&dir=asc&per_page=1")
    assert page.locator("#members-sample tbody tr").count() == 1 and "ann@example.com" in page.inner_text(
        "#members-sample"
    )
    page.click("#members-pager a[rel=next]")
    assert "page 2 of 2" in page.inner_text("#members-pager") and "fay@example.org" in page.inner_text(
        "#members-sample"
    )
    with page.expect_download() as download:
        page.click("#members-csv")
    rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert sorted(r["email"] for r in rows) == ["ann@example.com", "fay@example.org"]
