"""The events debugger in a real headless Chromium against `boomerang serve`: with Live on, an event sent with the
write key appears without reloading the page, and the server's own round takes it from pending to flushed."""

from __future__ import annotations

import httpx
import pytest

from boomerang.auth.service import create_key
from boomerang.auth.users import create_user
from boomerang.bootstrap import open_workspace
from boomerang.config import Settings
from browser_support import login, need_browser, serving, shot

pytestmark = pytest.mark.browser
VIEWER = {"username": "vera", "password": "correct-horse"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """An empty shop with a write key and a viewer, and `boomerang serve` on it."""
    need_browser()
    home = tmp_path_factory.mktemp("events-dashboard") / "ws"
    ws = open_workspace(Settings(home=home))
    with ws.uow.session() as s:
        _, write_key = create_key(s, kind="write", name="site", now=ws.now())
        create_user(s, role="viewer", now=ws.now(), **VIEWER)
    ws.engine.dispose()
    with serving(home) as base:
        yield {"base": base, "viewer": VIEWER, "write_key": write_key}


def test_live_shows_an_event_as_it_arrives(page, server):
    login(page, server["viewer"], "/events")
    assert page.inner_text("h1") == "Events" and page.locator("#no-events").count() == 1
    turned_on = "() => { document.getElementById('live-toggle').click(); return document.getElementById('live').dataset.state; }"
    assert page.evaluate(turned_on) == "busy" and page.inner_text("#live-status") == "Loading…"
    page.wait_for_selector("#live-status[data-state=ok]")
    assert "live=1" in page.url
    event = {"userId": "debug-1", "event": "Debugger Checked", "properties": {"note": "<b>hi</b>"}}
    sent = httpx.post(f"{server['base']}/v1/track", json=event, auth=(server["write_key"], ""))
    assert sent.status_code == 200
    row = 'tr:has(td.event-name:text-is("Debugger Checked"))'
    page.wait_for_selector(row, timeout=15_000)
    assert "debug-1" in page.inner_text(row) and "write key" in page.inner_text(row)
    page.click(f"{row} summary")
    page.wait_for_selector(f"{row} .status-flushed", timeout=15_000)  # the serve's round moved it into the log
    assert page.is_visible(f'{row} pre.json:has-text("<b>hi</b>")')  # still open after the refreshes, as text
    page.uncheck("#live-toggle")
    assert "live=1" not in page.url and page.inner_text("#live-status") == ""
    shot(page, "events-debugger")
