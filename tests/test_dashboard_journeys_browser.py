"""The journey pages in a real headless Chromium: the drawn graph is visible, and approving from the queue works.

The shop is the segments' test shop (tests/segments_data.py) with the abandoned cart journey run through the
runtime on its clock and a manual journey with an approval, served by `boomerang serve` (on the real clock).
"""

from __future__ import annotations

import pytest

import segments_data
from boomerang.auth.users import create_user
from boomerang.bootstrap import open_workspace
from boomerang.config import Settings
from browser_support import login, need_browser, serving, shot
from test_dashboard_journeys import VIP, enter_manually, run_cart, save, set_status

pytestmark = pytest.mark.browser
MARKETER = {"username": "mia", "password": "correct-horse"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    need_browser()
    home = tmp_path_factory.mktemp("journeys-dashboard") / "ws"
    ws = open_workspace(Settings(home=home))
    ids = segments_data.load(ws)
    with ws.uow.session() as s:
        create_user(s, role="marketer", now=segments_data.NOW, **MARKETER)
    run_cart(ws, ids)
    save(ws, {**VIP, "title": "VIP gift"})
    set_status(ws, "vip", "active")
    enter_manually(ws, "vip", ids["ann"])
    ws.engine.dispose()
    # nobody in the global control group: its 5 % are drawn by customer id, new on each run
    with serving(home, {"BOOMERANG_GUARDS__GLOBAL_CONTROL_SHARE": "0"}) as base:
        yield {"base": base, "marketer": MARKETER, "ann": ids["ann"]}


def test_the_graph_is_drawn_and_an_approval_goes_through(page, server):
    login(page, server["marketer"], "/journeys")
    assert page.locator("#journeys tbody tr").count() == 2
    page.click("#journeys a:has-text('Abandoned cart')")
    page.wait_for_url("**/journeys/cart")
    svg = page.locator("#journey-graph").bounding_box()
    assert svg and svg["width"] > 200 and svg["height"] > 400
    boxes = page.locator("#journey-graph g.jnode")
    assert boxes.count() == 6
    for i in range(6):
        box = boxes.nth(i).bounding_box()
        assert box and box["width"] > 100 and box["height"] > 40
        assert svg["x"] <= box["x"] and box["x"] + box["width"] <= svg["x"] + svg["width"] + 1
    remind = page.locator('#journey-graph g.jnode[data-node="remind"]')
    assert "messages: 2 queued" in remind.text_content()
    stroke = remind.locator("rect.box").evaluate("r => getComputedStyle(r).stroke")
    assert stroke not in ("", "none")  # styled by app.css
    shot(page, "journey-graph")
    remind.click()  # a box links to its row in the nodes table
    assert page.url.endswith("#node-1") or page.url.endswith("#node-2")
    page.goto("/journeys/approvals")
    assert page.locator("#approvals tbody tr[data-approval]").count() == 1
    page.fill("#approvals input[name=template]", "vip_gift_kind")
    page.click("#approvals button[value=approve]")
    page.wait_for_selector("#decided")
    assert "Approved" in page.inner_text("#decided")
    assert page.locator("#approvals tbody tr[data-approval]").count() == 0
    assert "vip_gift_kind" in page.inner_text("#decided-list")
    shot(page, "journey-approvals")
    page.goto(f"/customers/{server['ann']}")
    gift = page.locator("#journey-messages tbody tr", has_text="vip_gift_kind")
    assert gift.count() == 1  # queued, or sent already: `serve` runs the worker and the dispatcher
    assert gift.get_attribute("data-status") in ("queued", "sent", "deferred")  # deferred: quiet hours, real clock
    assert page.locator("#journey-instances li").count() == 2  # the cart and the VIP gift
    shot(page, "customer-journeys")
