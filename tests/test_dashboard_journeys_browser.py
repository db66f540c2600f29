"""The journey pages in a real headless Chromium: the drawn graph is visible, approving from the queue works, and a
journey drawn on the canvas from blank is saved, activated after its confirmation and run for a test customer.

The shop is the segments' test shop (tests/segments_data.py) with the abandoned cart journey run through the
runtime on its clock and a manual journey with an approval, served by `boomerang serve` (on the real clock).
"""

from __future__ import annotations

import pytest

import segments_data
from boomerang.auth.users import create_user
from boomerang.bootstrap import open_workspace
from boomerang.config import Settings
from boomerang.messaging import service as templates
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
        templates.save(s, {"name": "canvas_hello", "locales": {"en": {"subject": "Hi", "text": "Hello"}}}, now=ws.now())
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


def _drag(page, source, target) -> None:
    """Press on one element and let go over another, through the mouse, in steps (pointer events on the way)."""
    a, b = source.bounding_box(), target.bounding_box()
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=8)
    page.mouse.up()


def _within(page, locator) -> tuple[float, float]:
    """Where an element is on the canvas."""
    box, canvas = locator.bounding_box(), page.locator("#jc-canvas").bounding_box()
    return box["x"] - canvas["x"], box["y"] - canvas["y"]


def _valid(page) -> None:
    page.wait_for_selector("#jc-state[data-state=ok]")  # the page's CSP allows no evaluated strings


def test_a_journey_drawn_from_blank_runs_for_a_test_customer(page, server):
    login(page, server["marketer"], "/journeys")
    page.click("#new-journey")
    page.wait_for_url("**/journeys/new")
    page.fill("#jc-panel input[name=name]", "canvas_test")
    page.fill("#jc-panel input[name=title]", "Canvas test")
    node = 'g.jc-node[data-node="{}"]'.format
    page.click(node("@trigger"))
    page.select_option("#jc-panel select[name=trigger_kind]", "manual")
    page.click("#jc-palette button[data-type=wait]")  # follows the selected trigger: the start
    page.fill("#jc-panel input[name=hours]", "1")
    page.click("#jc-palette button[data-type=send]")  # follows the wait
    page.select_option("#jc-panel select[name=channel]", "email")
    page.fill("#jc-panel input[name=template]", "canvas_hello")
    page.click("#jc-canvas", position={"x": 580, "y": 20})  # nothing selected: the new exit stands alone
    page.click("#jc-palette button[data-type=exit]")
    page.wait_for_selector(node("send_1") + ".invalid")  # the engine's error, on its box
    assert "needs next" in page.locator(node("send_1")).text_content()
    shot(page, "journey-canvas-error")
    exit_box = page.locator(node("exit_1") + " rect.box")
    before = exit_box.bounding_box()
    page.mouse.move(before["x"] + 60, before["y"] + 20)  # moved aside by hand
    page.mouse.down()
    page.mouse.move(before["x"] + 320, before["y"] + 40, steps=6)
    page.mouse.up()
    moved = _within(page, exit_box)
    assert moved[0] - _within(page, page.locator(node("send_1") + " rect.box"))[0] > 200
    _drag(page, page.locator(node("send_1") + " circle.port.out"), exit_box)
    _valid(page)
    assert page.locator("#jc-canvas g.jc-edge").count() == 3
    page.click('g.jc-edge[data-from="send_1"] path.hit', force=True)  # select the connection, and cut it
    page.click("g.jc-unlink")
    page.wait_for_selector(node("send_1") + ".invalid")
    assert page.locator("#jc-canvas g.jc-edge").count() == 2
    _drag(page, page.locator(node("send_1") + " circle.port.out"), exit_box)
    _valid(page)
    assert page.locator("#jc-canvas g.jc-node.invalid").count() == 0

    text = page.input_value("#jc-text")  # the text view: the same definition, and applying it redraws
    assert '"exit_1"' in text and '"start": "wait_1"' in text
    page.fill("#jc-text", text.replace('"hours": 1', '"minutes": 30'))
    page.click("#jc-apply")
    page.locator(node("wait_1"), has_text="wait 30 min").wait_for()
    _valid(page)
    shot(page, "journey-canvas")
    page.click("#jc-save")
    page.wait_for_url("**/journeys/canvas_test/edit?saved=1")
    assert page.locator("#jc-canvas g.jc-node").count() == 4 and page.locator("#jc-canvas g.jc-edge").count() == 3
    kept = _within(page, exit_box)  # drawn where it was left
    assert abs(kept[0] - moved[0]) < 2 and abs(kept[1] - moved[1]) < 2

    page.click("#jc-activate")
    page.wait_for_url("**/journeys/canvas_test/activate")
    assert "email" in page.inner_text("#activate-sandbox") and "canvas_hello" in page.inner_text("#activate-sends")
    page.click("#activate-confirm")
    page.wait_for_selector("#changed")
    assert page.inner_text("#journey-status") == "active"
    page.fill("#test-form input[name=customer]", "ann@example.com")
    page.select_option("#test-form select[name=speed]", "3600")  # the 30 min wait lasts half a second
    page.click("#test-form button[type=submit]")
    page.wait_for_selector("#tested")
    path = None
    for _ in range(40):  # `serve` runs the rounds: the wait ends, the message is queued, the exit reached
        page.goto(f"/customers/{server['ann']}")
        tried = page.locator("#journey-instances li", has_text="Canvas test")
        if tried.count() and "at exit_1," in tried.locator(".instance-head").inner_text():  # ended there
            path = tried.locator(".path").inner_text()
            break
        page.wait_for_timeout(500)
    assert path is not None, page.inner_text("#customer-journeys")
    assert "wait_1" in path and "send_1" in path and "exit_1" in path
    sent = page.locator("#journey-messages tbody tr", has_text="canvas_hello")
    assert sent.count() == 1 and sent.get_attribute("data-status") in ("queued", "sent", "deferred")
