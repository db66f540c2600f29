"""The events debugger page: the latest events wherever they are (inbox or log), filters, paging, the set-aside
messages with their reasons, escaping, who may see it, and the live fragment."""

from __future__ import annotations

import re

import pytest
from tests.api_helpers import Api
from tests.test_dashboard import XSS, _login, _user

from boomerang.core.errors import ValidationFailed
from boomerang.events import debugger
from boomerang.orchestration.rounds import move_events


@pytest.fixture
def shop(ws):
    """Through the write key: a page view, an identify with an email, a batch of two good events and a bad one (no
    event name), flushed into the log; then an order sent with the secret key and a visit still waiting in the inbox."""
    api = Api(ws)
    assert api.track("page", {"anonymousId": "anon-1", "name": "Home"}).status_code == 200
    assert api.track("identify", {"userId": "u2", "traits": {"email": "Bea@Example.org"}}).status_code == 200
    batch = [
        {"type": "track", "userId": "u2", "event": "Product Viewed", "properties": {"sku": "T1", "note": XSS}},
        {"type": "track", "userId": "u2", "properties": {"note": XSS}},
        {"type": "track", "anonymousId": "anon-1", "event": "Product Added", "properties": {"sku": "T1"}},
    ]
    answer = api.track("batch", {"batch": batch, "context": {"library": {"name": XSS}}}).json()
    assert answer["accepted"] == 2 and answer["set_aside"][0]["index"] == 1
    move_events(ws)
    order = {"userId": "u2", "event": "Order Completed", "properties": {"order_id": "o1", "total": 5}}
    assert api.track("track", order, server=True).status_code == 200  # processed, not yet flushed
    visit = {"anonymousId": "anon-9", "event": "Product Viewed", "properties": {"sku": "T2"}}
    assert api.track("track", visit, process_now=False).status_code == 200  # waiting in the inbox
    for name, role in (("vera", "viewer"), ("root", "admin")):
        _user(ws, name, role)
    assert _login(api.client, "vera").status_code == 303
    return api


def _rows(html: str) -> list[str]:
    """The message ids of the listed rows, in order."""
    return re.findall(r'<tr data-message="([^"]*)"', html)


def _names(html: str) -> list[str]:
    return re.findall(r'<td class="event-name">([^<]*)</td>', html)


def test_the_page_lists_the_latest_events_newest_first_waiting_ones_first(shop):
    page = shop.client.get("/events")
    assert page.status_code == 200 and 'href="/events" class="active"' in page.text
    names = _names(page.text)  # the batch's two share a time of receipt
    assert names[:2] == ["Product Viewed", "Order Completed"]  # the visit waiting in the inbox, then the order
    assert sorted(names[2:4]) == ["Product Added", "Product Viewed"] and names[4:] == ["Identify", "Page Viewed"]
    statuses = re.findall(r'class="badge status-(\w+)"', page.text)
    assert statuses == ["pending", "processed", "flushed", "flushed", "flushed", "flushed"]
    assert page.text.count('key-server">secret key<') == 1 and page.text.count('key-browser">write key<') == 5
    for shown in (">track<", ">identify<", ">page<", "u2", "anon-1", "anon-9"):
        assert shown in page.text
    assert re.search(r'id="received-count">6<', page.text) and re.search(r'id="set-aside-count">1<', page.text)
    assert "&#34;sku&#34;: &#34;T2&#34;" in page.text  # the whole message, as JSON, in the row's details


def test_filters_narrow_the_list(shop):
    c = shop.client
    assert _names(c.get("/events?type=identify").text) == ["Identify"]
    assert _names(c.get("/events?event=VIEWED").text) == ["Product Viewed", "Product Viewed", "Page Viewed"]
    by_email = c.get("/events", params={"user": "bea@example.org"}).text  # u2's events, by the profile's email
    assert _names(by_email) == ["Order Completed", "Product Viewed", "Identify"]
    assert sorted(_names(c.get("/events?user=anon-1").text)) == ["Page Viewed", "Product Added"]
    assert (
        _names(c.get("/events?user=nobody").text) == []
        and "No events match these filters" in c.get("/events?user=nobody").text
    )
    assert _names(c.get("/events?source=server").text) == ["Order Completed"]
    assert len(_names(c.get("/events?source=browser").text)) == 5
    bad = c.get("/events?type=nonsense")
    assert bad.status_code == 400 and "type: must be one of track" in bad.text


def test_paging_is_bounded(shop):
    c = shop.client
    first, second = c.get("/events?limit=4").text, c.get("/events?limit=4&offset=4").text
    assert len(_rows(first)) == 4 and len(_rows(second)) == 2 and not set(_rows(first)) & set(_rows(second))
    assert "offset=4" in first and "1–4 of 6" in first and "5–6 of 6" in second
    for query, field in (("limit=201", "limit"), ("limit=0", "limit"), ("offset=-1", "offset")):
        refused = c.get(f"/events?{query}")
        assert refused.status_code == 400 and field in refused.text


def test_the_set_aside_messages_show_their_field_and_reason(shop):
    page = shop.client.get("/events?aside=1")
    assert page.status_code == 200 and 'id="set-aside"' in page.text
    assert '<strong class="mono">batch[1].event</strong>: Field required' in page.text
    assert "batch[1]" in page.text and "u2" in page.text and "write key" in page.text
    assert shop.client.get("/events?aside=1&user=u2").text.count("Field required") == 1
    assert "Nothing set aside matches" in shop.client.get("/events?aside=1&user=someone-else").text
    assert "Nothing set aside matches" in shop.client.get("/events?aside=1&type=identify").text
    assert "Field required" in shop.client.get("/events?aside=1&type=track").text


def test_what_the_senders_wrote_is_escaped(shop):
    hostile = {"userId": "u3", "event": XSS, "properties": {"html": XSS}}
    assert shop.track("track", hostile).status_code == 200
    for path in ("/events", "/events?event=script", "/events/live", "/events?aside=1", "/events/live?aside=1"):
        text = shop.client.get(path).text
        assert XSS not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_a_viewer_sees_it_and_a_stranger_is_sent_to_log_in(shop):
    stranger = shop.client.__class__(shop.client.app)
    for path in ("/events", "/events/live"):
        answer = stranger.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == f"/login?next={path}"
    assert _login(stranger, "root").status_code == 303
    assert stranger.get("/events").status_code == 200


def test_the_live_fragment_is_the_list_alone_with_the_same_filters(shop):
    fragment = shop.client.get("/events/live?type=track&live=1")
    assert fragment.status_code == 200 and fragment.headers["content-type"].startswith("text/html")
    assert "<html" not in fragment.text and '<nav class="nav"' not in fragment.text
    names = _names(fragment.text)
    assert names[:2] == ["Product Viewed", "Order Completed"] and sorted(names[2:]) == [
        "Product Added",
        "Product Viewed",
    ]
    assert 'id="received-count"' in fragment.text and fragment.headers["cache-control"] == "no-store"
    assert "Field required" in shop.client.get("/events/live?aside=1").text
    assert shop.client.get("/events/live?source=bogus").status_code == 400
    page = shop.client.get("/events?live=1").text
    assert 'id="live-toggle" checked' in page and '<script src="/static/events.js" defer>' in page
    assert shop.client.get("/static/events.js").status_code == 200


def test_the_domain_reads_both_stores_and_bounds_its_pages(shop):
    ws = shop.ws
    with ws.uow.session() as s:
        rows, total = debugger.latest(s, ws.log, debugger.Filters(), limit=3, offset=1)
        assert total == 6 and [r["status"] for r in rows] == ["processed", "flushed", "flushed"]
        assert rows[0]["key"] == "secret key" and rows[0]["properties"]["order_id"] == "o1"
        everything, _ = debugger.latest(s, ws.log, debugger.Filters(source="all"), limit=200)
        assert len(everything) >= 6
        with pytest.raises(ValidationFailed) as failed:
            debugger.latest(s, ws.log, debugger.Filters(), limit=201)
        assert failed.value.errors == [{"field": "limit", "reason": "must be between 1 and 200"}]
        assert debugger.last_hour(s, ws.log, now=ws.now()) == {"received": 6, "set_aside": 1}
