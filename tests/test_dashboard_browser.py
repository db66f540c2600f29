"""The dashboard in a real headless Chromium (Debian's), driven by Playwright, against `boomerang serve` on a demo shop.

Screenshots are decoded (a small PNG reader in browser_support.py, standard library only) and must not be blank.
Set BOOMERANG_SCREENSHOTS=DIR to keep them for a look.
"""

from __future__ import annotations

import re
import struct
import zlib

import pytest

from browser_support import chart_pixels, colours, demo_server, login, shot

pytestmark = pytest.mark.browser
EXPECTED_ERRORS = ("status of 401", "status of 403")  # a wrong password, a page the role may not see


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A demo shop (200 customers, 90 days), a viewer besides the demo's admin, and `boomerang serve` on it."""
    with demo_server(tmp_path_factory.mktemp("dashboard") / "ws", customers=200, days=90) as found:
        yield found


def test_login_and_overview_with_charts(page, server):
    page.goto("/")
    assert page.url.endswith("/login")
    shot(page, "login")
    page.fill("input[name=username]", server["admin"]["username"])
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert "Wrong username or password" in page.inner_text(".error")
    login(page, server["admin"])
    assert page.url == server["base"] + "/"
    assert page.inner_text("h1") == "Overview"
    tiles = page.inner_text(".tiles")
    for label in (
        "CUSTOMERS",
        "IDENTIFIED",
        "ORDERS",
        "REVENUE",
        "REPEAT PURCHASE RATE",
        "RETENTION RATE",
        "CHURN RATE",
        "AVERAGE ORDER VALUE",
        "NPS",
    ):
        assert label in tiles.upper()
    assert chart_pixels(page, "#sales-chart") > 2000
    assert chart_pixels(page, "#activity-chart") > 500
    shot(page, "overview")
    canvas = page.locator("#sales-chart").screenshot()
    distinct, busy = colours(canvas)
    assert distinct > 20 and busy > 0.02
    page.select_option("select[name=interval]", "week")  # submits by itself
    page.wait_for_url("**interval=week**")
    assert chart_pixels(page, "#sales-chart") > 2000 and "per week" in page.inner_text("h2")


def test_cohorts_rfm_and_funnel_pages(page, server):
    login(page, server["admin"], "/cohorts")
    assert page.url.endswith("/cohorts")
    assert page.locator("#cohort-table tbody tr").count() >= 3
    assert page.locator("#cohort-table td.heat-10").count() >= 3
    shot(page, "cohorts")

    page.click("nav >> text=RFM")
    assert page.locator("#rfm-grid tbody tr").count() == 5 and page.locator("#rfm-grid tbody td").count() == 25
    assert page.locator("#rfm-groups tbody tr").count() == 11
    shot(page, "rfm")

    page.click("nav >> text=Funnel")
    assert chart_pixels(page, "#funnel-chart") > 1000
    leaks = page.inner_text("#leaks")
    assert "→" in leaks and "drop-off" in leaks
    assert page.locator("#funnel-categories tbody tr").count() >= 2
    shot(page, "funnel")
    category = page.inner_text("#funnel-categories tbody tr:first-child td:first-child a")
    page.click("#funnel-categories tbody tr:first-child td:first-child a")
    assert page.input_value("input[name=category]") == category
    assert chart_pixels(page, "#funnel-chart") > 500


def test_customer_list_and_page(page, server):
    login(page, server["admin"], "/customers")
    assert page.locator("#customers tbody tr").count() == 50
    contacts = page.locator("#customers tbody td:nth-child(2)").all_inner_texts()  # email, then phone
    email = next(found.group(0) for c in contacts if (found := re.search(r"\S+@\S+", c)))
    page.fill("input[name=q]", email)
    page.press("input[name=q]", "Enter")
    page.wait_for_load_state("networkidle")
    assert page.locator("#customers tbody tr").count() == 1
    page.click("#customers tbody tr:first-child a")
    page.wait_for_load_state("networkidle")
    assert "/customers/" in page.url
    assert email in page.inner_text("main")
    assert page.locator("#identities tbody tr").count() >= 1
    assert page.locator("#timeline li").count() >= 1
    assert (
        "predicted clv" in page.inner_text("main").lower()
    )  # the demo stores predictions: values, or none for non-buyers
    shot(page, "customer")


def test_a_customer_found_by_a_cyrillic_name_in_another_case(page, server):
    """The list's search folds Cyrillic case (SQLite's own LIKE would not), and the profile opens with its summary."""
    login(page, server["admin"], "/customers?sort=spend")
    names = page.locator("#customers tbody td:first-child a").all_inner_texts()
    name = next(n for n in names if re.search("[а-яіїєґ]", n.lower()) and " " in n)
    first, last = name.split(" ", 1)
    page.fill("input[name=q]", f"{last[:-1].lower()} {first.upper()}")
    page.press("input[name=q]", "Enter")
    page.wait_for_load_state("networkidle")
    found = page.locator("#customers tbody td:first-child a", has_text=name)
    assert found.count() >= 1
    shot(page, "customers-found")
    found.first.click()
    page.wait_for_load_state("networkidle")
    assert name in page.inner_text("h1")
    assert page.locator("#customer-summary").count() == 1 and page.locator("#timeline li").count() >= 1
    shot(page, "customer-found-by-name")


def test_a_customer_with_orders_shows_their_rfm_group(page, server):
    login(page, server["admin"], "/rfm")
    page.goto("/customers?page=2")
    for link in page.locator("#customers tbody a").all()[:50]:
        href = link.get_attribute("href")
        page.goto(href)
        if page.locator("#rfm-group").count():
            break
        page.go_back()
    else:
        pytest.fail("no customer on page 2 with an RFM group")
    assert page.inner_text("#rfm-group").strip()
    assert page.locator("details.order").count() >= 1
    page.locator("details.order summary").first.click()
    assert page.locator("details.order[open] table tbody tr").count() >= 1
    shot(page, "customer-with-orders")


def test_a_viewer_sees_pages_but_not_users(page, server):
    login(page, server["viewer"])
    assert page.locator("nav a", has_text="Users").count() == 0
    assert page.inner_text(".who .badge") == "viewer"
    response = page.goto("/users")
    assert response.status == 403 and "Not allowed" in page.inner_text("h1")
    page.goto("/")
    page.click("button:has-text('Log out')")
    page.wait_for_url("**/login")
    assert page.goto("/rfm").url.endswith("/login?next=/rfm")


def test_an_admin_creates_and_disables_a_user(page, server, browser):
    login(page, server["admin"], "/users")
    page.fill("#create-user input[name=username]", "mia")
    page.select_option("#create-user select[name=role]", "marketer")
    page.click("#create-user button[type=submit]")
    password = page.inner_text("#new-password")
    shot(page, "users")
    other = browser.new_context(base_url=server["base"]).new_page()
    login(other, {"username": "mia", "password": password})
    assert other.inner_text(".who .badge") == "marketer"
    page.goto("/users")
    page.locator("#users tr", has_text="mia").locator("button:has-text('Disable')").click()
    page.wait_for_load_state("networkidle")
    assert "disabled" in page.locator("#users tr", has_text="mia").inner_text()
    assert other.goto("/funnel").url.endswith("/login?next=/funnel")
    other.context.close()


def test_the_layout_fits_a_phone(browser, server):
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=server["base"])
    tab = context.new_page()
    login(tab, server["admin"])
    assert chart_pixels(tab, "#sales-chart") > 500
    assert tab.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    shot(tab, "overview-phone")
    context.close()


def test_png_reader_sees_a_blank_image_as_blank():
    width = height = 8
    rows = b"".join(b"\x00" + b"\xff\xff\xff" * width for _ in range(height))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    assert colours(png) == (1, 0.0)
