"""The loyalty pages in a real headless Chromium (Debian's), driven by Playwright, against `boomerang serve` on a
demo shop: a pool made and filled through the forms, a background generation followed to its end, a code looked up,
the tiers with their chart and the review, the programme's settings; the section's tabs between them.

Set BOOMERANG_SCREENSHOTS=DIR to keep the screenshots for a look."""

from __future__ import annotations

import csv
import io

import pytest

from browser_support import chart_pixels, demo_server, login, shot

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A demo shop (its orders give customers tiers), a viewer besides the demo's admin, and `boomerang serve`."""
    with demo_server(tmp_path_factory.mktemp("loyalty") / "ws", customers=150, days=60) as found:
        yield found


def test_a_pool_made_and_filled_through_the_forms_is_listed(page, server):
    login(page, server["admin"], "/loyalty/codes")
    assert page.inner_text("h1") == "Promo codes"
    assert page.inner_text("nav.tabs a.active") == "Codes"
    page.fill("#pool-name", "summer")
    page.select_option("#pool-discount_kind", "fixed")
    page.fill("#pool-value", "5")
    page.fill("#pool-min_order", "30")
    page.fill("#pool-prefix", "sun-")
    page.fill("#pool-valid_until", "2030-08-31T23:59")
    page.fill("#pool-low_stock_alert", "100")
    page.click("#pool-form button[type=submit]")
    page.wait_for_url("**/loyalty/codes/summer?created=1")
    assert "Pool summer created." in page.inner_text("#created")
    assert page.inner_text("#pool-codes") == "0" and "low stock" in page.inner_text("#pool-tiles").lower()

    page.fill("#generate-form input[name=count]", "500")
    page.click("#generate-form button[type=submit]")
    page.wait_for_url("**/loyalty/codes/summer?generated=500")
    assert "500 codes generated." in page.inner_text("#generated")
    assert page.inner_text("#pool-codes") == "500" and page.inner_text("#pool-unused") == "500"
    assert chart_pixels(page, "#redemptions-chart") > 300  # the axes, with no redemption yet
    shot(page, "loyalty-pool")

    page.click("nav.tabs >> text=Codes")
    row = page.locator("#pools tr[data-pool=summer]")
    assert row.locator("td.codes").inner_text() == "500" and "5.00 off" in row.inner_text()
    assert "SUN-" in row.inner_text()
    shot(page, "loyalty-codes")

    exported = page.request.get("/loyalty/codes/summer/codes.csv")
    assert exported.ok and exported.headers["content-type"].startswith("text/csv")
    codes = [r["code"] for r in csv.DictReader(io.StringIO(exported.text()))]
    assert len(codes) == 500 and all(c.startswith("SUN-") for c in codes)
    page.fill("#lookup input[name=code]", codes[7].lower())
    page.press("#lookup input[name=code]", "Enter")
    page.wait_for_selector("#lookup-result")
    result = page.inner_text("#lookup-result")
    assert codes[7] in result and "unused" in result and "summer" in result and "0 of 1" in result
    shot(page, "loyalty-lookup")


def test_a_large_count_is_made_in_the_background_and_its_progress_shown(page, server):
    login(page, server["admin"], "/loyalty/codes")
    page.fill("#pool-name", "bulk")
    page.fill("#pool-value", "10")
    page.click("#pool-form button[type=submit]")
    page.wait_for_url("**/loyalty/codes/bulk?created=1")
    # far above what is made while the browser waits: some seconds in the background, 25,000 a transaction with a
    # pause between them, so that the page (which waits for the lock on SQLite) shows the job under way
    page.fill("#generate-form input[name=count]", "300000")
    page.click("#generate-form button[type=submit]")
    page.wait_for_url("**/loyalty/codes/bulk?generating=300000")
    assert "Generating 300,000 codes" in page.inner_text("#generation")
    shot(page, "loyalty-generating")
    # the box follows the progress until the page reloads by itself with the codes made
    page.wait_for_url("**/loyalty/codes/bulk?finished=1#generation", timeout=240_000)
    assert "300,000 codes generated in the background." in page.inner_text("#generation")
    assert page.inner_text("#pool-codes") == "300,000"


def test_tiers_programme_and_the_tabs(page, server):
    login(page, server["admin"], "/loyalty")
    assert page.inner_text("nav.tabs a.active") == "Liability"
    page.click("nav.tabs >> text=Tiers")
    page.wait_for_url("**/loyalty/tiers")
    assert page.inner_text("h1") == "Loyalty tiers"
    assert chart_pixels(page, "#tiers-chart") > 500
    assert page.locator("#tiers tbody tr").count() == 3
    shot(page, "loyalty-tiers")
    page.click("#review-form button[type=submit]")
    page.wait_for_url("**/loyalty/tiers?reviewed=*")
    assert "Tier review done" in page.inner_text("#reviewed")

    page.click("nav.tabs >> text=Programme")
    page.wait_for_url("**/loyalty/programme")
    table = page.inner_text("#programme")
    assert "BOOMERANG_LOYALTY__CASHBACK_PERCENT" in table and "5 % of an order's paid amount" in table
    shot(page, "loyalty-programme")


def test_a_viewer_sees_the_pages_without_their_forms(page, server):
    login(page, server["viewer"], "/loyalty/codes")
    assert page.locator("#pool-form").count() == 0
    page.goto("/loyalty/tiers")
    assert page.locator("#review-form").count() == 0
    for pool in page.locator("#pools tr[data-pool]").all()[:1]:  # the pools the other tests made, if any
        pool.locator("a").first.click()
        page.wait_for_url("**/loyalty/codes/*")
        assert page.locator(
            "#generate-form, #upload-form"
        ).count() == 0 and "A marketer or an admin" in page.inner_text("main")
