"""The Segment-compatible tracking API: happy paths, idempotency, e-commerce effects, bad input."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import sqlalchemy as sa

from api_helpers import Api, basic
from boomerang.catalog.models import Product
from boomerang.events import intake
from boomerang.events.models import inbox
from boomerang.events.process import process
from boomerang.orders.models import Order, OrderLine


@pytest.fixture
def api(any_ws):
    return Api(any_ws)


def test_track_identify_page_screen_group_alias_land_in_the_log(api):
    assert api.track("track", {"event": "Signed Up", "userId": "u1", "messageId": "m1"}).json()["success"]
    assert (
        api.track("identify", {"userId": "u1", "traits": {"email": "U1@Example.com"}, "messageId": "m2"}).status_code
        == 200
    )
    assert api.track("page", {"anonymousId": "a1", "name": "Home", "messageId": "m3"}).status_code == 200
    assert api.track("screen", {"userId": "u1", "name": "Cart", "messageId": "m4"}).status_code == 200
    assert api.track("group", {"userId": "u1", "groupId": "acme", "messageId": "m5"}).status_code == 200
    assert api.track("alias", {"userId": "u1", "previousId": "a1", "messageId": "m6"}).status_code == 200
    rows = api.events()
    assert [r[1] for r in rows] == ["Signed Up", "Identify", "Page Viewed", "Screen Viewed", "Group", "Alias"]
    # the alias merged the anonymous visitor: every event now belongs to one profile
    assert len({r[2] for r in rows}) == 1


def test_same_message_id_is_stored_once_before_and_after_flush(api):
    body = {
        "batch": [
            {
                "type": "track",
                "event": "Product Viewed",
                "anonymousId": "a",
                "messageId": "dup",
                "properties": {"sku": "S1"},
            }
        ]
        * 3
    }
    assert api.track("batch", body).json() == {"success": True, "accepted": 1, "duplicates": 2}
    api.events()
    assert api.track("batch", body).status_code == 200  # the inbox is empty now; the log still dedupes
    assert api.events("SELECT count(*) FROM events") == [(1,)]


def test_batch_of_2500_events_and_gzip(api):
    batch = [
        {
            "type": "track",
            "event": "Product Viewed",
            "anonymousId": f"a{i % 300}",
            "messageId": f"m{i}",
            "properties": {"sku": f"S{i % 40}", "price": 5},
        }
        for i in range(2500)
    ]
    body = gzip.compress(orjson.dumps({"batch": batch}))
    assert len(orjson.dumps({"batch": batch})) < 500 * 1024
    r = api.client.post(
        "/v1/batch",
        content=body,
        headers={**basic(api.write_key), "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 2500
    assert api.events("SELECT count(*), count(DISTINCT customer_id) FROM events") == [(2500, 300)]


def test_order_completed_records_order_lines_and_products_then_refund_and_cancel(api):
    props = {
        "order_id": "o-1",
        "total": 30.0,
        "currency": "EUR",
        "coupon": "WELCOME",
        "products": [
            {"product_id": "SKU-1", "name": "Mug", "category": "Kitchen > Mugs", "price": 10, "quantity": 2},
            {"sku": "SKU-2", "name": "Tea", "price": 10, "quantity": 1},
        ],
    }
    assert api.track("track", {"event": "Order Completed", "userId": "u9", "properties": props}).status_code == 200
    with api.ws.uow.session() as s:
        order = s.get(Order, "o-1")
        assert (order.status, order.total, order.coupon, order.currency) == ("paid", 30.0, "WELCOME", "EUR")
        assert s.scalar(sa.select(sa.func.count()).select_from(OrderLine)) == 2
        assert s.get(Product, "SKU-1").category == "Kitchen > Mugs"
    refund = {
        "event": "Order Refunded",
        "userId": "u9",
        "messageId": "r1",
        "properties": {"order_id": "o-1", "total": 10},
    }
    api.track("track", refund)
    api.track("track", refund)  # sent twice: refunded once
    with api.ws.uow.session() as s:
        order = s.get(Order, "o-1")
        assert (order.status, order.refunded_total) == ("partially_refunded", 10.0)
    api.track("track", {"event": "Order Cancelled", "userId": "u9", "properties": {"order_id": "o-1"}})
    with api.ws.uow.session() as s:
        assert s.get(Order, "o-1").status == "cancelled"


def _error(response, status=400):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    return body["errors"]


@pytest.mark.parametrize(
    ("kind", "body", "field", "reason"),
    [
        ("track", {"event": "X"}, "body", "userId or anonymousId"),
        ("track", {"userId": "u"}, "event", "Field required"),
        ("track", {"userId": {"a": 1}, "event": "X"}, "userId", "string"),
        ("track", {"userId": "u", "event": "X", "properties": [1]}, "properties", "dictionary"),
        ("track", {"userId": "u", "event": "X", "timestamp": "yesterday-ish"}, "timestamp", "datetime"),
        ("track", {"userId": "u", "event": "X", "timestamp": "2999-01-01T00:00:00Z"}, "timestamp", "future"),
        ("track", {"userId": "u", "event": "X", "timestamp": "1970-01-01T00:00:00Z"}, "timestamp", "before 1990"),
        (
            "track",
            {"userId": "u", "event": "Order Completed", "properties": {"total": 3}},
            "properties.order_id",
            "required",
        ),
        (
            "track",
            {"userId": "u", "event": "Order Completed", "properties": {"order_id": "o", "total": "lots"}},
            "properties.total",
            "number",
        ),
        ("identify", {"userId": "u", "traits": {"birthday": "31/02/1990"}}, "traits.birthday", "date"),
        ("identify", {"userId": "u", "traits": {"consents": {"fax": True}}}, "traits.consents.fax", "unknown channel"),
        ("alias", {"userId": "u"}, "previousId", "Field required"),
    ],
)
def test_bad_messages_name_the_field_and_store_nothing(api, kind, body, field, reason):
    errors = _error(api.track(kind, body))
    assert any(e["field"] == field and reason.lower() in e["reason"].lower() for e in errors), errors
    assert api.events("SELECT count(*) FROM events") == [(0,)]


def test_a_batch_keeps_its_good_messages_and_sets_the_bad_ones_aside(api):
    """Segment's SDKs do not retry a 4xx: one bad message must not take its 20 good neighbours with it."""
    deep = current = {}
    for _ in range(300):
        current["a"] = current = {}
    good = [{"type": "track", "event": "Good", "userId": "u", "messageId": f"g{i}"} for i in range(20)]
    bad = [
        {"type": "track", "event": "B" * 300, "userId": "u", "messageId": "long"},
        {"type": "track", "event": "Ahead", "userId": "u", "timestamp": "2099-01-01T00:00:00Z"},
        {"type": "track", "event": "Deep", "userId": "u", "properties": deep},
        {"type": "track", "event": "Nobody"},
        {"type": "nonsense", "userId": "u"},
        {
            "type": "track",
            "event": "Order Completed",
            "userId": "u",
            "properties": {"order_id": "o1", "products": "many"},
        },
        "not an object",
    ]
    answer = api.track("batch", {"batch": good[:10] + bad + good[10:]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["accepted"], body["duplicates"]) == (20, 0)
    aside = {item["index"]: item for item in body["set_aside"]}
    assert sorted(aside) == list(range(10, 17))
    fields = {index: {e["field"] for e in item["errors"]} for index, item in aside.items()}
    assert fields[10] == {"batch[10].event"} and aside[10]["messageId"] == "long"
    assert fields[11] == {"batch[11].timestamp"} and fields[12] == {"batch[12].properties"}
    assert (
        fields[13] == {"batch[13]"}
        and fields[14] == {"batch[14].type"}
        and fields[15] == {"batch[15].properties.products"}
    )
    assert api.events("SELECT count(*) FROM events WHERE event = 'Good'") == [(20,)]
    listed = api.api("GET", "/events/set-aside", params={"limit": 3}).json()
    assert listed["total"] == 7 and [i["index"] for i in listed["items"]] == [16, 15, 14]
    assert listed["items"][2]["errors"][0]["reason"].startswith("must be one of")
    assert api.client.get("/api/events/set-aside", headers=basic(api.write_key)).status_code == 401


def test_a_single_bad_message_or_a_malformed_batch_is_refused(api):
    errors = _error(api.track("track", {"event": "B"}))
    assert errors[0]["reason"] == "userId or anonymousId is required"
    assert _error(api.track("batch", {"batch": "everything"}))[0]["field"] == "batch"
    assert api.events("SELECT count(*) FROM events") == [(0,)]


def test_body_that_is_not_json_too_large_or_too_many(api):
    errors = _error(api.client.post("/v1/track", content=b"{nope", headers=basic(api.write_key)))
    assert errors[0]["field"] == "body" and "JSON" in errors[0]["reason"]
    big = {"batch": [{"type": "track", "event": "X" * 200, "userId": "u"}] * 2600}
    assert api.track("batch", big).status_code == 413
    many = {"batch": [{"type": "track", "event": "X", "userId": "u"}] * 2501}
    assert any(e["field"] == "batch" for e in _error(api.track("batch", many)))


def test_wrong_or_missing_key_is_401(api):
    body = {"event": "X", "userId": "u"}
    assert api.client.post("/v1/track", json=body).status_code == 401
    assert api.client.post("/v1/track", json=body, headers=basic("bk_w_wrong")).status_code == 401
    assert api.client.post("/v1/track", json={**body, "writeKey": api.write_key}).status_code == 200
    r = api.client.get("/api/customers", headers={"Authorization": f"Bearer {api.write_key}"})
    assert r.status_code == 401 and r.json()["errors"][0]["field"] == "authorization"


def test_clock_skew_is_corrected_with_sent_at(api):
    now = datetime.now(UTC)
    body = {
        "batch": [
            {
                "type": "track",
                "event": "X",
                "userId": "u",
                "messageId": "skew",
                "originalTimestamp": (now + timedelta(hours=5, minutes=-1)).isoformat(),
            }
        ],
        "sentAt": (now + timedelta(hours=5)).isoformat(),
    }
    assert api.track("batch", body).status_code == 200
    ((ts,),) = api.events("SELECT timestamp FROM events")
    assert abs((ts - (now.replace(tzinfo=None) - timedelta(minutes=1))).total_seconds()) < 30


def test_the_answer_does_not_wait_for_processing_and_processing_follows_in_order(api):
    body = {
        "batch": [
            {
                "type": "identify",
                "userId": "u7",
                "anonymousId": "a7",
                "traits": {"email": "u7@example.org"},
                "messageId": "p1",
            },
            {
                "type": "track",
                "event": "Order Completed",
                "anonymousId": "a7",
                "messageId": "p2",
                "properties": {"order_id": "o-77", "total": 12},
            },
        ]
    }
    assert api.track("batch", body, process_now=False).json()["accepted"] == 2
    with api.ws.uow.session() as s:
        intake.take_into(s)  # as the events debugger shows them (on PostgreSQL they are in the inbox already)
    assert api.ws.intake.waiting() == 0
    with api.ws.uow.session() as s:
        waiting = s.execute(sa.select(inbox.c.message_id, inbox.c.customer_id, inbox.c.processed_at)).all()
        assert {(m, c, p) for m, c, p in waiting} == {("p1", None, None), ("p2", None, None)}
        assert s.get(Order, "o-77") is None
    assert process(api.ws.uow, api.ws.clock, chunk_rows=api.ws.settings.ingest.process_chunk_rows) == 2
    rows = api.events("SELECT message_id, customer_id, properties->>'email' FROM events ORDER BY message_id")
    assert rows[0][1] == rows[1][1] and rows[0][2] == "u7@example.org"  # identify keeps its traits in the log
    with api.ws.uow.session() as s:
        assert s.get(Order, "o-77").customer_id == rows[0][1]


def test_an_event_that_cannot_be_applied_does_not_hold_up_the_others(api, caplog):
    now = datetime(2026, 1, 1)
    row = {
        "type": "identify",
        "event": "Identify",
        "user_id": "u",
        "anonymous_id": None,
        "timestamp": now,
        "received_at": now,
        "source": "api",
        "context": "{}",
    }
    with api.ws.uow.session() as s:
        s.execute(
            inbox.insert(),
            [
                {**row, "message_id": "bad", "properties": '{"birthday": "not a date"}'},  # bypassed the API's checks
                {**row, "message_id": "good", "user_id": "v", "properties": '{"city": "Lviv"}'},
            ],
        )
    assert process(api.ws.uow, api.ws.clock, chunk_rows=api.ws.settings.ingest.process_chunk_rows) == 2
    assert "bad" in caplog.text
    rows = dict(api.events("SELECT message_id, customer_id FROM events"))
    assert rows["bad"] is None and rows["good"] is not None


def test_cors_lets_only_the_shops_own_sites_call_v1(ws):
    from fastapi.testclient import TestClient

    from boomerang.api.app import create_app

    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    closed = TestClient(create_app(ws, background=False))  # by default: no cross-origin calls at all
    assert (
        "access-control-allow-origin"
        not in closed.options("/v1/track", headers={"Origin": "https://shop.example.com", **preflight}).headers
    )
    ws.settings.cors_origins = ["https://shop.example.com"]
    client = TestClient(create_app(ws, background=False))
    answer = client.options("/v1/push/subscriptions", headers={"Origin": "https://shop.example.com", **preflight})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "https://shop.example.com"
    assert "authorization" in answer.headers["access-control-allow-headers"].lower()
    other = client.options("/v1/track", headers={"Origin": "https://evil.example", **preflight})
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers


def test_rudderstack_identify_traits_in_the_context_reach_the_profile(ws):
    """RudderStack's SDKs put identify traits in context.traits (issue 14.4); the message's own traits win."""
    from api_helpers import Api
    from boomerang.customers.models import Consent, Customer

    api = Api(ws)
    body = {
        "userId": "r1",
        "context": {
            "library": {"name": "rudder-analytics-python", "version": "2.0.2"},
            "traits": {
                "email": "R1@Example.com",
                "firstName": "Rudy",
                "phone": "+380501112200",
                "consents": {"email": True},
            },
        },
        "traits": {"firstName": "Rudolf"},
    }
    assert api.track("identify", body).status_code == 200
    with ws.uow.session() as s:
        customer = s.scalar(sa.select(Customer).where(Customer.external_id == "r1"))
        assert (customer.email, customer.first_name, customer.phone) == ("r1@example.com", "Rudolf", "+380501112200")
        assert s.get(Consent, (customer.id, "email")).granted
