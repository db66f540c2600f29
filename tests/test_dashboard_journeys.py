"""The dashboard's journey pages: the list with activate and pause, the drawn graph with its counts, the approval
queue, and the journeys card of a customer's page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.test_dashboard import XSS, _csrf, _login, _user

import segments_data
from boomerang.api.app import create_app
from boomerang.config import GuardSettings
from boomerang.dashboard.views.journey_graph import layout
from boomerang.events.schemas import Logged
from boomerang.journeys import models as m
from boomerang.journeys import runtime, service
from boomerang.journeys.definition import parse_journey
from boomerang.messaging.models import Message
from test_journeys_engine import CART

T0 = segments_data.NOW
VIP = {
    "name": "vip",
    "title": XSS,
    "trigger": {"manual": True},
    "control_share": 0,
    "start": "ask",
    "nodes": {
        "ask": {"type": "approval", "note": f"a gift? {XSS}", "next": "gift", "on_reject": "end"},
        "gift": {"type": "send", "channel": "email", "template": "vip_gift", "next": "end"},
        "end": {"type": "exit"},
    },
}


@pytest.fixture
def shop(ws):
    """The segments' test shop (now is 2024-05-01 12:00), a viewer, a marketer and an admin; nobody in the global
    control group (its 5 % are drawn by customer id, new on each run)."""
    ws.settings.guards = GuardSettings(global_control_share=0)
    ids = segments_data.load(ws)
    for name, role in (("vera", "viewer"), ("mark", "marketer"), ("root", "admin")):
        _user(ws, name, role)
    return ws, ids


def _client(ws, username: str) -> TestClient:
    client = TestClient(create_app(ws, background=False))
    assert _login(client, username).status_code == 303
    return client


def _added(customer_id: str, cart: str, at=T0) -> Logged:
    return Logged(customer_id, "track", "Product Added", at, {"cart_id": cart})


def save(ws, raw: dict) -> dict:
    with ws.uow.session() as s:
        return service.save(s, raw, now=ws.now())


def set_status(ws, name: str, status: str) -> dict:
    with ws.uow.session() as s:
        return service.set_status(s, name, status, now=ws.now())


def enter_manually(ws, name: str, customer_id: str) -> dict:
    with ws.uow.session() as s:
        return runtime.enter_manually(s, name, customer_id, now=ws.now())


def _list(ws) -> list[dict]:
    with ws.uow.session() as s:
        return service.list_journeys(s)


def run_cart(ws, ids) -> None:
    """The abandoned cart journey: bob and cat leave carts and are reminded, bob orders, cat's wait runs out and
    the split sends them on; ann leaves a cart later and is still waiting."""
    save(ws, {**CART, "title": "Abandoned cart", "control_share": 0})
    set_status(ws, "cart", "active")
    runtime.on_events(ws.uow, [_added(ids["bob"], "k1"), _added(ids["cat"], "k2")], T0)
    assert runtime.run_due(ws.uow, T0 + timedelta(hours=1)) == 2
    order = Logged(ids["bob"], "track", "Order Completed", T0 + timedelta(hours=2), {"cart_id": "k1", "revenue": 55.5})
    runtime.on_events(ws.uow, [order], T0 + timedelta(hours=2))
    assert runtime.run_due(ws.uow, T0 + timedelta(hours=25)) == 1
    runtime.on_events(ws.uow, [_added(ids["ann"], "k3", T0 + timedelta(hours=25))], T0 + timedelta(hours=25))


def _nodes(html: str) -> dict[str, str]:
    """Each node box of the graph: its name and the markup inside."""
    svg = re.search(r'<svg class="journey-graph".*?</svg>', html, re.S).group(0)
    return dict(re.findall(r'<g class="jnode[^"]*" data-node="([^"]+)"[^>]*>(.*?)</g>', svg, re.S))


def test_the_list_shows_journeys_with_their_counts(shop):
    ws, ids = shop
    run_cart(ws, ids)
    save(ws, VIP)
    vera = _client(ws, "vera")
    page = vera.get("/journeys")
    assert page.status_code == 200 and 'href="/journeys"' in page.text and ">Journeys</a>" in page.text  # the nav
    rows = dict(re.findall(r'<tr data-journey="(\w+)">(.*?)</tr>', page.text, re.S))
    assert list(rows) == ["cart", "vip"]
    cart = {cls: value for cls, value in re.findall(r'<td class="num (\w+)">(\d+)', rows["cart"])}
    assert cart == {"running": "1", "entered": "3", "converted": "1"}
    assert "Abandoned cart" in rows["cart"] and "status-active" in rows["cart"] and "v1" in rows["cart"]
    assert "event Product Added, one instance per cart_id" in rows["cart"]
    assert "status-draft" in rows["vip"] and "manual or API entry" in rows["vip"]
    assert XSS not in page.text and "&lt;script&gt;" in page.text
    assert "/activate" not in page.text and "/pause" not in page.text  # a viewer gets no buttons
    assert "No journeys yet" not in page.text


def test_activate_and_pause_need_a_marketer_and_the_csrf_token(shop):
    ws, _ = shop
    save(ws, VIP)
    vera = _client(ws, "vera")
    token = _csrf(vera.get("/journeys").text)
    assert vera.post("/journeys/vip/activate", data={"csrf_token": token}).status_code == 403
    assert _list(ws)[0]["status"] == "draft"

    mark = _client(ws, "mark")
    listing = mark.get("/journeys").text
    assert 'href="/journeys/vip/activate"' in listing  # a confirmation first (test_journey_editor.py)
    for data in ({}, {"csrf_token": "forged"}):
        refused = mark.post("/journeys/vip/activate", data=data)
        assert refused.status_code == 403 and "Form expired" in refused.text
    assert _list(ws)[0]["status"] == "draft"
    done = mark.post("/journeys/vip/activate", data={"csrf_token": _csrf(listing)})
    assert done.status_code == 200 and 'id="changed"' in done.text and 'action="/journeys/vip/pause"' in done.text
    assert done.url.path == "/journeys" and done.url.query == b"changed=vip"  # a reload sends nothing again
    assert '<span class="mono">vip</span> is active' in done.text
    assert _list(ws)[0]["status"] == "active"

    paused = mark.post("/journeys/vip/pause", data={"csrf_token": _csrf(listing), "back": "journey"})
    assert paused.status_code == 200 and 'id="journey-graph"' in paused.text  # back on the journey's page
    assert 'id="journey-status">paused<' in paused.text and _list(ws)[0]["status"] == "paused"
    assert mark.post("/journeys/nowhere/activate", data={"csrf_token": _csrf(listing)}).status_code == 404
    anonymous = TestClient(mark.app)
    assert anonymous.get("/journeys", follow_redirects=False).headers["location"] == "/login?next=/journeys"


def test_the_graph_has_a_box_per_node_with_its_counts(shop):
    ws, ids = shop
    run_cart(ws, ids)
    vera = _client(ws, "vera")
    page = vera.get("/journeys/cart")
    assert page.status_code == 200 and page.text.count("<svg") == 1
    nodes = _nodes(page.text)
    assert sorted(nodes) == sorted(CART["nodes"])
    assert "wait event" in nodes["wait"] and "for Checkout Started" in nodes["wait"] and "timeout 1 h" in nodes["wait"]
    assert "here: 1 waiting" in nodes["wait"]  # ann
    assert "email → telegram" in nodes["remind"] and "template cart_1" in nodes["remind"]
    assert "messages: 2 queued" in nodes["remind"]
    assert "wait 1 d" in nodes["later"] and "here: 1 done" in nodes["later"]  # bob converted there
    assert "conversions: 1 · 55.50" in nodes["later"]
    assert "here: 1 done" in nodes["done"]  # cat, whichever variant
    with ws.uow.session() as s:
        stats = service.stats(s, "cart")
    if stats["nodes"].get("offer"):
        assert "messages: 1 queued" in nodes["offer"]
    else:
        assert "nobody yet" in nodes["offer"]
    labels = re.findall(r'<g class="edge-label[^"]*">.*?<text[^>]*>([^<]+)</text>', page.text, re.S)
    assert sorted(labels) == ["a 50%", "b 50%", "on_event", "timeout"]
    assert page.text.count('<path class="edge') == 7  # every way out of every node
    assert 'class="jnode type-wait_event busy"' in page.text  # someone is waiting there

    overall = page.text[page.text.index('id="tests"') : page.text.index('id="lift-over-time"')]
    groups = dict(re.findall(r'<tr data-arm="([\w ]+)">(.*?)</tr>', overall, re.S))
    treated = re.findall(r'<td class="num">([^<]*)</td>', groups["treated"])
    assert treated == ["3", "1", "33.3%", "55.50 USD", "18.50 USD"]  # in the currency of the shop's orders
    assert re.findall(r'<td class="num">([^<]*)</td>', groups["control"]) == ["0", "0", "–", "0.00 USD", "–"]
    assert 'id="lift">–<' in page.text and "Not enough data yet: control has 0 of the 30 needed" in page.text
    assert "&#34;Checkout Started&#34;" in page.text  # the definition, as pretty JSON
    assert "boomerang journeys create FILE" in page.text and 'data-row="remind"' in page.text
    assert vera.get("/journeys/nowhere").status_code == 404
    assert vera.get("/journeys/cart?version=9").status_code == 404


def test_versions_and_escaping_on_the_graph_page(shop):
    ws, _ = shop
    save(ws, VIP)
    changed = {**VIP, "nodes": {**VIP["nodes"], "gift": {**VIP["nodes"]["gift"], "template": "vip_gift_2"}}}
    save(ws, changed)
    mark = _client(ws, "mark")
    page = mark.get("/journeys/vip")
    assert page.status_code == 200 and XSS not in page.text and "&lt;script&gt;" in page.text
    assert "template vip_gift_2" in _nodes(page.text)["gift"] and 'href="/journeys/vip?version=1"' in page.text
    old = mark.get("/journeys/vip?version=1")
    assert "template vip_gift" in _nodes(old.text)["gift"] and "not the current one, v2" in old.text
    labels = re.findall(r'<g class="edge-label[^"]*">.*?<text[^>]*>([^<]+)</text>', page.text, re.S)
    assert sorted(labels) == ["approved", "on_reject"]


def test_every_ready_made_journey_is_laid_out_without_overlaps():
    from boomerang.journeys import library

    loop = parse_journey(
        {
            "name": "loop",
            "trigger": {"manual": True},
            "start": "nudge",
            "nodes": {
                "nudge": {"type": "send", "channel": "email", "template": "t", "next": "pause"},
                "pause": {"type": "wait", "days": 3, "next": "check"},
                "check": {"type": "branch", "rule": {"reachable": "email"}, "yes": "nudge", "no": "end"},
                "end": {"type": "exit"},
            },
        }
    )
    for journey in [*library.definitions(), parse_journey(CART), loop]:
        graph = layout(journey, {})
        assert len(graph.boxes) == len(journey.nodes) and graph.width > 0 and graph.height > 0
        for a in graph.boxes:
            assert 0 <= a.x and a.x + a.w <= graph.width and 0 <= a.y and a.y + a.h <= graph.height, journey.name
            for b in graph.boxes:
                if a is not b:
                    apart = a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + a.h <= b.y or b.y + b.h <= a.y
                    assert apart, (journey.name, a.name, b.name)
    graph = layout(loop, {})
    assert [e.label for e in graph.edges if e.back] == ["yes"]  # the loop goes back up


def _approvals(ws, ids):
    save(ws, VIP)
    set_status(ws, "vip", "active")
    for who in ("ann", "bob"):
        assert enter_manually(ws, "vip", ids[who])["instance"]
    with ws.uow.session() as s:
        return {r["customer_id"]: r["key"] for r in service.pending_approvals(s)}


def _instance(ws, customer_id: str) -> tuple:
    with ws.engine.connect() as conn:
        return conn.execute(
            sa.select(m.Instance.status, m.Instance.node, m.Instance.outcome).where(
                m.Instance.customer_id == customer_id
            )
        ).one()


def test_approve_and_reject_from_the_queue(shop):
    ws, ids = shop
    keys = _approvals(ws, ids)
    vera = _client(ws, "vera")
    queue = vera.get("/journeys/approvals")
    assert queue.status_code == 200 and queue.text.count("<tr data-approval=") == 2
    assert XSS not in queue.text and "a gift? &lt;script&gt;" in queue.text
    assert f'href="/customers/{ids["ann"]}">ann@example.com<' in queue.text and "vip_gift" in queue.text
    assert 'action="/journeys/approvals/' not in queue.text and "A marketer or an admin can decide" in queue.text
    assert (
        vera.post(
            f"/journeys/approvals/{keys[ids['ann']]}", data={"csrf_token": _csrf(queue.text), "decision": "approve"}
        ).status_code
        == 403
    )

    mark = _client(ws, "mark")
    queue = mark.get("/journeys/approvals").text
    token = _csrf(queue)
    assert queue.count('<form method="post" action="/journeys/approvals/') == 2
    refused = mark.post(f"/journeys/approvals/{keys[ids['ann']]}", data={"decision": "approve"})
    assert refused.status_code == 403 and "Form expired" in refused.text
    assert _instance(ws, ids["ann"])[0] == "approval"

    approved = mark.post(
        f"/journeys/approvals/{keys[ids['ann']]}",
        data={"csrf_token": token, "decision": "approve", "template": " vip_gift_kind "},
    )
    assert approved.status_code == 200 and "Approved:" in approved.text and ids["ann"] in approved.text
    assert approved.url.path == "/journeys/approvals" and b"decided=" in approved.url.query  # no re-submission
    assert approved.text.count("<tr data-approval=") == 1
    assert _instance(ws, ids["ann"]) == ("done", "end", "exited")  # went on: the gift, then the end
    rejected = mark.post(
        f"/journeys/approvals/{keys[ids['bob']]}",
        data={"csrf_token": token, "decision": "reject", "template": "ignored"},
    )
    assert rejected.status_code == 200 and "Rejected:" in rejected.text and 'id="queue-empty"' in rejected.text
    assert _instance(ws, ids["bob"]) == ("done", "end", "exited")  # the on_reject way
    with ws.engine.connect() as conn:
        sent = conn.execute(sa.select(Message.customer_id, Message.template)).all()
    assert sent == [(ids["ann"], "vip_gift_kind")]
    decided = re.search(r'id="decided-list">(.*?)</table>', rejected.text, re.S).group(1)
    assert "vip_gift_kind" in decided and "mark" in decided and "rejected" in decided and "ignored" not in decided

    again = mark.post(f"/journeys/approvals/{keys[ids['ann']]}", data={"csrf_token": token, "decision": "reject"})
    assert again.status_code == 400 and "already approved by mark" in again.text
    assert mark.post("/journeys/approvals/nope", data={"csrf_token": token, "decision": "approve"}).status_code == 404
    odd = mark.post("/journeys/approvals/nope", data={"csrf_token": token, "decision": "maybe"})
    assert odd.status_code == 400 and "decision: approve or reject" in odd.text


def test_the_customer_page_lists_instances_and_messages(shop):
    ws, ids = shop
    run_cart(ws, ids)
    save(
        ws,
        {
            "name": "hold",
            "trigger": {"manual": True},
            "control_share": 0.999,
            "start": "hi",
            "nodes": {
                "hi": {"type": "send", "channel": "sms", "template": "hello", "next": "end"},
                "end": {"type": "exit"},
            },
        },
    )
    set_status(ws, "hold", "active")
    enter_manually(ws, "hold", ids["cat"])
    with ws.uow.session() as s:  # what the dispatcher's guards would have made of cat's cart reminder
        reminder = s.scalar(sa.select(Message).where(Message.customer_id == ids["cat"], Message.node == "remind"))
        reminder.status, reminder.reason = "suppressed", "consent: no consent for email or telegram"
    vera = _client(ws, "vera")

    bob = vera.get(f"/customers/{ids['bob']}").text
    card = re.search(r'id="customer-journeys">(.*?)</table>', bob, re.S).group(1)
    instance = re.search(r"<li data-instance=.*?</li>", card, re.S).group(0)
    assert 'href="/journeys/cart">Abandoned cart</a>' in instance and "v1" in instance
    assert "converted" in instance and 'key <span class="mono">k1</span>' in instance
    assert re.findall(r'<span class="chip[^"]*">(\w+)</span>', instance) == ["wait", "remind", "later"]
    assert re.findall(r'<tr data-status="(\w+)">', card) == ["queued"] and "cart_1" in card

    cat = vera.get(f"/customers/{ids['cat']}").text
    card = re.search(r'id="customer-journeys">(.*?)</table>', cat, re.S).group(1)
    assert card.count("<li data-instance=") == 2 and "control group" in card
    statuses = re.findall(r'<tr data-status="(\w+)">', card)
    assert statuses[-2:] == ["suppressed", "held_out"]  # newest first: the manual entry was at T0
    assert "journey control group" in card and "consent: no consent for email or telegram" in card

    ann = vera.get(f"/customers/{ids['ann']}").text
    card = re.search(r'id="customer-journeys">(.*?)</table>', ann, re.S).group(1)
    assert "waiting" in card and "for Checkout Started" in card and 'class="chip current">wait<' in card
    assert "No messages." in card
    assert "In no journey yet." in vera.get(f"/customers/{ids['eve']}").text

    with ws.uow.session() as s:  # a message a guard put off until the morning
        s.add(
            Message(
                key="campaign:spring:dan",
                source="campaign:spring",
                customer_id=ids["dan"],
                channels=["telegram"],
                template="spring",
                category="promotional",
                status="queued",
                reason="deferred by quiet_hours: 23:10 local time",
                send_after=T0 + timedelta(hours=9),
                created_at=T0,
            )
        )
    dan = vera.get(f"/customers/{ids['dan']}").text
    row = re.search(r'<tr data-status="deferred">(.*?)</tr>', dan, re.S).group(1)
    assert "campaign:spring" in row and "after 2024-05-01 21:00" in row and "deferred by quiet_hours" in row


def test_a_marketer_tries_a_journey_on_one_customer(shop):
    ws, ids = shop
    save(ws, {**CART, "name": "cart"})
    mark = _client(ws, "mark")
    page = mark.get("/journeys/cart").text
    assert 'action="/journeys/cart/test"' in page
    tried = mark.post(
        "/journeys/cart/test", data={"csrf_token": _csrf(page), "customer": "ann@example.com", "speed": "60"}
    )
    # to the journey's page, so that a reload does not start the test again
    assert tried.status_code == 200 and tried.url.path == "/journeys/cart" and "tested=" in str(tried.url)
    assert "Test run started for " + ids["ann"] in tried.text and "60× shorter" in tried.text
    unknown = mark.post("/journeys/cart/test", data={"csrf_token": _csrf(page), "customer": "nobody", "speed": "60"})
    assert unknown.status_code == 409 and "nobody" in unknown.text and 'id="tested"' in unknown.text
    forged = mark.get("/journeys/cart", params={"tested": "jin_not_a_test_run"}).text
    assert 'id="tested"' not in forged  # only a real test run of this journey is shown
    with ws.engine.connect() as conn:
        assert conn.execute(sa.select(m.Instance.customer_id, m.Instance.test)).all() == [(ids["ann"], True)]
    vera = _client(ws, "vera")
    assert (
        vera.post("/journeys/cart/test", data={"csrf_token": _csrf(page), "customer": "ann@example.com"}).status_code
        == 403
    )
