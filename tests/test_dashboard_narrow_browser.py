"""The dashboard on a phone (390 px wide) and the conveniences every page shares, in a real headless Chromium
against `boomerang serve` on a demo shop: no page is wider than the screen (a wide table scrolls inside its card),
a slow page says it is loading, a form with data-confirm asks first, and the campaign wizard counts its audience
as it is filled in, then saves a draft whose schedule asks to confirm."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from browser_support import demo_server, login, shot

pytestmark = pytest.mark.browser
EXPECTED_ERRORS = ("status of 400",)  # the wizard's text view asks about a form still being filled in
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


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with demo_server(tmp_path_factory.mktemp("narrow") / "ws", customers=120, days=60) as found:
        yield found


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
