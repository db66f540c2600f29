"""The dashboard in a real headless Chromium (Debian's), driven by Playwright, against `boomerang serve` on a demo shop.

Screenshots are decoded (a small PNG reader in browser_support.py, standard library only) and must not be blank.
Set BOOMERANG_SCREENSHOTS=DIR to keep them for a look. At the end: every page on a phone (390 px wide: no page wider
than the screen, a wide table scrolls inside its card), the loading bar, a confirmation, and the campaign wizard.
"""

from __future__ import annotations

import re
import struct
import time
import zlib

import pytest
from playwright.sync_api import expect

from browser_support import chart_pixels, colours, demo_server, login, shot

pytestmark = pytest.mark.browser
EXPECTED_ERRORS = ("status of 401", "status of 403", "status of 400")  # a wrong password, a page the role may not
# see, the campaign wizard's text view asking about a form still being filled in


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
    page.once("dialog", lambda dialog: dialog.accept())  # "Disable this user?"
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


# --- on a phone, and what every page shares -------------------------------------------------------------

PHONE = {"width": 390, "height": 844}
PAGES = (
    "/",
    "/customers",
    "/cohorts",
    "/rfm",
    "/funnel",
    "/segments",
    "/segments/new",
    "/segments/matrix",
    "/journeys",
    "/journeys/approvals",
    "/campaigns",
    "/campaigns/new",
    "/experiments",
    "/predictions",
    "/review",
    "/loyalty",
    "/loyalty/codes",
    "/loyalty/tiers",
    "/loyalty/programme",
    "/loyalty/achievements",
    "/loyalty/referrals",
    "/loyalty/rules",
    "/recommendations",
    "/templates",
    "/templates/new",
    "/deliveries",
    "/events",
    "/channels",
    "/users",
    "/account",
)
# list pages, and the link on each that leads to one of their items (the demo has no campaign: the wizard's test
# makes one and looks at its pages on a phone)
ITEMS = {
    "/customers": "/customers/",
    "/segments": "/segments/",
    "/journeys": "/journeys/",
    "/templates": "/templates/",
    "/recommendations": "/recommendations/blocks/",
}
WIDER = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.scroll, pre, textarea, canvas, svg'))
  .slice(0, 3).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : ''))"""


def _width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_no_page_is_wider_than_a_phone(page, server):
    login(page, server["admin"], "/")
    page.set_viewport_size(PHONE)
    seen, too_wide = [], {}
    for path in PAGES:
        page.goto(path)
        seen.append(path)
        if _width(page) > PHONE["width"]:
            too_wide[path] = (_width(page), page.evaluate(WIDER))
        prefix = ITEMS.get(path)
        if prefix:
            links = [
                h
                for h in page.eval_on_selector_all(f'main a[href^="{prefix}"]', "els => els.map(e => e.pathname)")
                if re.fullmatch(re.escape(prefix) + r"[^/]+", h) and not h.endswith(("/new", "/matrix", "/approvals"))
            ]
            assert links, f"no item linked from {path}"
            page.goto(links[0])
            seen.append(links[0])
            if _width(page) > PHONE["width"]:
                too_wide[links[0]] = (_width(page), page.evaluate(WIDER))
    assert too_wide == {}, "\n".join(f"{k}: {v}" for k, v in too_wide.items())
    assert len(seen) == len(PAGES) + len(ITEMS)
    page.goto("/customers")
    shot(page, "phone-customers")


def test_a_slow_page_says_it_is_loading_and_a_risky_form_asks_first(page, server):
    login(page, server["admin"], "/campaigns")
    # the bar shows while the next page is on its way: the answer comes a second late, and the page notes the bar
    page.evaluate(
        """() => new MutationObserver(() => {
             if (!document.getElementById('loading').hidden) sessionStorage.setItem('loading-shown', '1');
           }).observe(document.getElementById('loading'), {attributes: true})"""
    )
    page.route("**/funnel", lambda route: (time.sleep(1), route.continue_()))
    page.click("nav >> text=Funnel")
    page.wait_for_url("**/funnel")
    assert page.evaluate("sessionStorage.getItem('loading-shown')") == "1"
    assert page.locator("#loading").is_hidden()  # the new page starts without it
    page.unroute("**/funnel")
    page.goto("/users")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.locator("form[data-confirm] button[type=submit]").first.click()
    assert asked and "Disable this user?" in asked[0]
    assert page.url.endswith("/users")  # dismissed: nothing sent


def test_the_campaign_wizard_counts_its_audience_and_saves_a_draft_to_confirm(page, server):
    login(page, server["admin"], "/campaigns/new")
    page.fill("#f-title", "Spring sale")
    segment = page.eval_on_selector("#f-segment option:nth-child(2)", "o => o.value")
    page.select_option("#f-segment", segment)
    page.check("input[name=channels][value=sms]")
    page.wait_for_selector("#audience[data-state=ok]")
    members = int(page.inner_text("#audience-members").replace(",", ""))
    assert members > 0 and page.locator("#audience-channels tr").count() == 2
    template = page.eval_on_selector("#f-template option:nth-child(2)", "o => o.value")
    page.select_option("#f-template", template)
    expect(page.locator("#definition")).to_have_value(re.compile("name: spring_sale"))
    assert f"segment: {segment}" in page.input_value("#definition")
    assert "lift of" in page.inner_text("#lift") or "too few" in page.inner_text("#lift")
    shot(page, "campaign-wizard")
    page.click("#step-save button[value=form]")
    page.wait_for_url("**/campaigns/spring_sale")
    page.set_viewport_size(PHONE)
    assert _width(page) <= PHONE["width"], page.evaluate(WIDER)
    page.click("#schedule button[type=submit]")
    page.wait_for_url("**/campaigns/spring_sale/schedule**")
    assert _width(page) <= PHONE["width"], page.evaluate(WIDER)
    assert page.inner_text("#members").replace(",", "") == str(members)
    assert "Nothing will leave on" in page.inner_text("#sandbox-warning")  # the demo's channels are the sandbox
    page.click("#confirm-schedule button[type=submit]")
    page.wait_for_url("**/campaigns/spring_sale?done=scheduled")
    assert page.inner_text("#campaign-status") == "scheduled"
