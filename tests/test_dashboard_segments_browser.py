"""The segment pages in a real headless Chromium: the builder's live preview, the trend charts, explain.

The shop is the segments' test shop (tests/segments_data.py) served by `boomerang serve`; the server runs on
the real clock, so the rules here are on profile fields, which do not depend on the day.
"""

from __future__ import annotations

import pytest

import segments_data
from boomerang.auth.users import create_user
from boomerang.bootstrap import open_workspace
from boomerang.config import Settings
from boomerang.segments import membership, service
from browser_support import chart_pixels, login, need_browser, serving, shot

pytestmark = pytest.mark.browser
EXPECTED_ERRORS = ("status of 400",)  # the previews of unfinished rules
MARKETER = {"username": "mia", "password": "correct-horse"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The segments' shop with a marketer and one segment refreshed twice, and `boomerang serve` on it."""
    need_browser()
    home = tmp_path_factory.mktemp("segments-dashboard") / "ws"
    ws = open_workspace(Settings(home=home))
    segments_data.load(ws)
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
    assert "40.0% of 5 customers" in page.inner_text("#preview-share")
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
