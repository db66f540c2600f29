"""The messaging pages in a real headless Chromium: the template editor's live preview as one types, a
campaign's charts, and choosing a channel's provider.

The shop is the segments' test shop (tests/segments_data.py) with the ready-made templates and an A/B campaign
sent through the sandbox (tests/test_dashboard_messaging.py), served by `boomerang serve` on the real clock.
"""

from __future__ import annotations

import pytest

import segments_data
from boomerang.auth.users import create_user
from boomerang.bootstrap import Workspace, open_workspace
from boomerang.channels import config as channel_settings
from boomerang.config import GuardSettings, Settings
from boomerang.messaging import service
from browser_support import chart_pixels, login, need_browser, serving, shot
from smtp_server import SmtpServer
from test_dashboard_messaging import SALE, run_campaign

pytestmark = pytest.mark.browser
EXPECTED_ERRORS = ("status of 400",)  # the previews of unfinished templates
MARKETER = {"username": "mia", "password": "correct-horse"}
ADMIN = {"username": "ada", "password": "correct-horse"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The shop with its templates, a campaign with results, a marketer and an admin, and `boomerang serve` on it."""
    need_browser()
    home = tmp_path_factory.mktemp("messaging-dashboard") / "ws"
    ws = open_workspace(Settings(home=home))
    ids = segments_data.load(ws)
    ws.settings.guards = GuardSettings(global_control_share=0)
    with ws.uow.session() as s:
        service.install(s, now=segments_data.NOW)
        create_user(s, role="marketer", now=segments_data.NOW, **MARKETER)
        create_user(s, role="admin", now=segments_data.NOW, **ADMIN)
    run_campaign(ws)
    ws.engine.dispose()
    with serving(home) as base:
        yield {"base": base, "marketer": MARKETER, "admin": ADMIN, "dan": ids["dan"], "home": home}


def _card(channel: str, field: str) -> str:
    return f'.channel-preview[data-channel="{channel}"] [data-field="{field}"]'


def test_the_template_editor_previews_each_channel_as_it_is_typed(page, server):
    login(page, server["marketer"], "/templates/new")
    assert page.url.endswith("/templates/new")
    assert page.locator("#preview[data-state=ok]").count() == 1  # the example, previewed by the server
    page.fill("#definition", SALE)
    page.wait_for_selector(f'{_card("sms", "text")}:text-is("A sale at Boomerang Shop")')
    assert page.inner_text(_card("sms", "count")) == "24 characters · 1 part · GSM-7"
    assert page.inner_text(_card("email", "subject")) == "Hi Olena"
    assert page.inner_text(_card("telegram", "buttons")) == "Open → https://shop.example.com"
    assert page.inner_text(_card("webpush", "subject")) == "Hi Olena"
    email = page.frame_locator("iframe.email-frame").locator("h1")
    assert email.inner_text() == "Hi Olena"
    assert email.evaluate("h => getComputedStyle(h).color") == "rgb(34, 34, 34)"  # its inline style applies

    text = page.locator("#definition")
    text.press("Control+End")
    text.press_sequentially('    sms:\n      text: "{{ shop.name }}: sale {{ loyalty.promo_code }}"\n', delay=5)
    page.wait_for_selector(f'{_card("sms", "text")}:text-is("Boomerang Shop: sale WELCOME-7Q2K")')
    assert page.inner_text(_card("sms", "count")) == "33 characters · 1 part · GSM-7"

    page.fill("#definition", SALE.replace("{{ first_name or 'there' }}", "{{ first_name or }}"))
    page.wait_for_selector("#preview[data-state=error]")
    errors = page.inner_text("#preview-errors")
    assert "locales.en.subject" in errors and "template error (line 1)" in errors
    assert page.inner_text(_card("email", "subject")) == "Hi Olena"  # the last good preview stays, dimmed

    page.fill("#definition", SALE)
    page.fill("#preview-customer", server["dan"])
    page.wait_for_selector(f'{_card("email", "subject")}:text-is("Hi Dan")')
    assert page.locator("#preview-errors").is_hidden()
    assert page.frame_locator("iframe.email-frame").locator("h1").inner_text() == "Hi Dan"
    shot(page, "template-editor")

    page.click("#template-form button[type=submit]")
    page.wait_for_url(f"**/templates/sale?saved=1&customer={server['dan']}")
    assert page.is_visible("#saved") and "Hi Dan" in page.inner_text(_card("email", "subject"))


def test_a_campaign_page_draws_its_charts(page, server):
    login(page, server["marketer"], "/campaigns")
    page.click("#campaigns a:has-text('Spring')")
    page.wait_for_url("**/campaigns/spring")
    assert page.locator("#groups tbody tr").count() == 3
    assert chart_pixels(page, "#rates-chart") > 300
    assert chart_pixels(page, "#revenue-chart") > 300
    shot(page, "campaign")


def test_an_admin_picks_a_channel_provider_and_sees_its_settings(page, server):
    login(page, server["admin"], "/channels")
    card = page.locator("#channel-sms")
    assert card.locator("input[name='config.account_sid']").count() == 0
    card.locator("select[name=provider]").select_option("twilio")  # the form goes by itself
    page.wait_for_selector("#channel-sms input[name='config.account_sid']")
    assert card.locator("input[type=password][name='config.auth_token']").count() == 1
    assert card.locator("input[name=provider]").get_attribute("value") == "twilio"
    shot(page, "channels")


def test_a_marketer_designs_an_email_from_blocks_previews_it_on_a_phone_tests_and_saves_it(page, server):
    ws = Workspace(Settings(home=server["home"]))  # the store only: `serve` holds the event log
    with SmtpServer() as smtp:
        with ws.uow.session() as s:  # the email channel to a loopback SMTP server, for the test send
            config = {"port": smtp.port, "security": "none", "from_address": "shop@example.com"}
            channel_settings.save(s, "email", "smtp", config, secret=ws.secret, now=segments_data.NOW)
        try:
            login(page, server["marketer"], "/templates/new")
            page.click("#open-designer")
            page.wait_for_url("**/templates/new/design")
            page.fill("#d-name", "designed_mail")
            page.fill("#d-subject", "For you, {{ first_name }}")
            canvas = page.locator("#canvas li[data-index]")
            assert canvas.count() == 4  # the starter: heading, text, button, footer
            drag = page.evaluate_handle("() => new DataTransfer()")  # HTML5 drag and drop, as a browser does it
            page.locator("#palette li[data-kind=products]").dispatch_event("dragstart", {"dataTransfer": drag})
            canvas.nth(2).dispatch_event("drop", {"dataTransfer": drag})  # onto the button: before it
            page.wait_for_selector("#canvas li[data-index='2'][data-type=products]")
            assert canvas.count() == 5
            canvas.nth(0).click()
            page.fill("#panel-fields textarea[name=text]", "Hello {{ first_name }} <b>!</b>")
            frame = page.frame_locator("#preview-frame")
            frame.locator("text=Hello Olena <b>!</b>").wait_for()
            assert frame.locator("text=Tea set").count() == 1  # a product card from the recommendations
            assert page.inner_text("#preview-subject") == "For you, Olena"
            page.click("#view-mobile")
            assert page.locator("#preview-frame").bounding_box()["width"] == 375
            shot(page, "email-designer-mobile")

            page.fill("#test-to", "me@example.com")
            page.click("#test-button")
            page.wait_for_selector("#test-result[data-status=sent]")
            [mail] = smtp.received
            assert mail.rcpt_tos == ["me@example.com"] and mail.parsed()["Subject"] == "[Test] For you, Olena"
            assert "Tea set" in mail.parsed().get_body(("html",)).get_content()

            page.click("#design-save")
            page.wait_for_url("**/templates/designed_mail/design?saved=1")
            assert page.is_visible("#saved") and page.locator("#canvas li[data-index]").count() == 5
            page.reload()  # the address is remembered in the browser
            assert page.input_value("#test-to") == "me@example.com"
        finally:
            with ws.uow.session() as s:
                channel_settings.save(s, "email", "sandbox", {}, secret=ws.secret, now=segments_data.NOW)
            ws.engine.dispose()
