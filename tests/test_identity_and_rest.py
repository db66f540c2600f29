"""Identity resolution and merges, and the secret-key REST API."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from api_helpers import Api
from boomerang.customers.models import Customer


@pytest.fixture
def api(any_ws):
    return Api(any_ws)


def _live(api) -> int:
    with api.ws.uow.session() as s:
        return s.scalar(sa.select(sa.func.count()).where(Customer.merged_into_id.is_(None)))


def test_anonymous_history_moves_to_the_known_profile_on_identify(api):
    api.track(
        "track", {"event": "Product Viewed", "anonymousId": "anon-1", "messageId": "v1", "properties": {"sku": "A"}}
    )
    api.track("identify", {"userId": "u1", "messageId": "i1", "traits": {"email": "ann@example.org"}})
    api.events()  # u1 exists and the visitor's event is already in the log
    api.track("identify", {"userId": "u1", "anonymousId": "anon-1", "messageId": "i2"})
    rows = api.events()
    assert len({r[2] for r in rows}) == 1
    assert _live(api) == 1
    profile = api.api("GET", f"/customers/{rows[0][2]}").json()
    assert {(i["kind"], i["value"]) for i in profile["identities"]} >= {
        ("user", "u1"),
        ("anonymous", "anon-1"),
        ("email", "ann@example.org"),
    }


def test_visitor_who_identifies_first_time_is_promoted_not_copied(api):
    api.track("page", {"anonymousId": "anon-2", "messageId": "p1"})
    api.track("identify", {"userId": "u2", "anonymousId": "anon-2", "messageId": "i1", "traits": {"firstName": "Bo"}})
    assert _live(api) == 1
    (cid,) = {r[2] for r in api.events()}
    assert api.api("GET", f"/customers/{cid}").json()["external_id"] == "u2"


def test_two_known_profiles_are_not_merged_by_a_shared_device(api):
    api.track("identify", {"userId": "alice", "anonymousId": "tablet", "messageId": "a"})
    api.track("identify", {"userId": "bob", "anonymousId": "tablet", "messageId": "b"})
    assert _live(api) == 2
    api.track("track", {"event": "X", "anonymousId": "tablet", "messageId": "x"})
    rows = dict((r[0], r[2]) for r in api.events())
    assert rows["x"] == rows["b"]  # the device now belongs to whoever identified on it last


def test_explicit_merge_of_two_known_profiles_moves_orders_consents_and_events(api):
    a = api.api(
        "POST", "/customers", json={"external_id": "shop-1", "email": "x@example.org", "consents": {"email": True}}
    ).json()
    b = api.api(
        "POST",
        "/customers",
        json={"external_id": "bot-77", "telegram_chat_id": "777", "city": "Kyiv", "consents": {"telegram": True}},
    ).json()
    api.api("POST", "/orders", json={"id": "o-9", "external_id": "bot-77", "total": 12.5, "currency": "UAH"})
    merged = api.api("POST", f"/customers/{a['id']}/merge", json={"from": b["id"]})
    assert merged.status_code == 200, merged.text
    body = merged.json()
    assert body["telegram_chat_id"] == "777" and body["city"] == "Kyiv"
    assert set(body["consents"]) == {"email", "telegram"}
    assert api.api("GET", "/orders", params={"customer_id": a["id"]}).json()["items"][0]["id"] == "o-9"
    assert {r[2] for r in api.events()} == {a["id"]}
    assert api.api("GET", f"/customers/{b['id']}").json()["id"] == a["id"]  # the old id follows the merge
    bad = api.api("POST", f"/customers/{a['id']}/merge", json={"from": a["id"]})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "from"


def test_consents_keep_their_history(api):
    c = api.api("POST", "/customers", json={"external_id": "c1"}).json()
    for granted in (True, True, False):
        api.api(
            "POST", f"/customers/{c['id']}/consents", json={"channel": "sms", "granted": granted, "source": "checkout"}
        )
    history = api.api("GET", f"/customers/{c['id']}/consents/history").json()["items"]
    assert [h["granted"] for h in history] == [True, False]
    bad = api.api("POST", f"/customers/{c['id']}/consents", json={"channel": "pigeon", "granted": True})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "channel"


def test_products_bulk_upsert_stock_and_errors(api):
    items = [
        {"sku": f"P{i}", "name": f"Product {i}", "category": "Tea > Green", "price": 3.5 + i, "currency": "EUR"}
        for i in range(5)
    ]
    assert api.api("PUT", "/products", json=items).json() == {"created": 5, "updated": 0}
    assert api.api("PUT", "/products", json=items[:2]).json() == {"created": 0, "updated": 2}
    assert api.api("POST", "/products/stock", json=[{"sku": "P1", "stock_quantity": 0}]).json() == {"updated": 1}
    assert api.api("GET", "/products/P1").json()["in_stock"] is False
    assert len(api.api("GET", "/products", params={"category": "Tea", "in_stock": True}).json()["items"]) == 4
    bad = api.api(
        "POST", "/products/stock", json=[{"sku": "P2", "stock_quantity": 1}, {"sku": "nope", "in_stock": False}]
    )
    assert bad.status_code == 404 and bad.json()["errors"][0]["field"] == "[1].sku"
    assert api.api("GET", "/products/P2").json()["stock_quantity"] is None  # the whole call was rolled back
    bad = api.api("PUT", "/products", json=[{"sku": "P9", "price": -1}])
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"].endswith("price")


def test_orders_status_refund_and_keys(api):
    created = api.api(
        "POST",
        "/orders",
        json={"id": "o-1", "external_id": "u5", "currency": "EUR", "lines": [{"sku": "S", "price": 20, "quantity": 2}]},
    )
    assert created.json()["total"] == 40 and created.json()["status"] == "paid"
    assert api.api("POST", "/orders/o-1/status", json={"status": "shipped"}).json()["status"] == "shipped"
    api.api("POST", "/orders/o-1/refunds", json={"amount": 15, "refund_id": "r1"})
    done = api.api("POST", "/orders/o-1/refunds", json={"amount": 15, "refund_id": "r1"}).json()
    assert (done["status"], done["refunded_total"]) == ("partially_refunded", 15)
    assert api.api("POST", "/orders/o-1/status", json={"status": "lost"}).status_code == 400
    assert api.api("POST", "/orders", json={"id": "o-2"}).status_code == 400
    events = [r[1] for r in api.events()]
    assert events.count("Order Completed") == 1 and "Order Shipped" in events and events.count("Order Refunded") == 1

    made = api.api("POST", "/keys", json={"kind": "write", "name": "site"}).json()
    assert made["key"].startswith("bk_w_")
    assert all("key" not in k for k in api.api("GET", "/keys").json()["items"])
    api.api("DELETE", f"/keys/{made['id']}")
    api.client.app.state.keys._cache.clear()
    assert api.client.post("/v1/track", json={"event": "X", "userId": "u", "writeKey": made["key"]}).status_code == 401


def test_device_id_from_a_mobile_sdk_becomes_an_identity_of_the_known_profile(api):
    context = {"device": {"id": "B5372DB0-C21E-11E4", "type": "ios"}}
    api.track("identify", {"userId": "m1", "anonymousId": "app-install-1", "context": context, "messageId": "d1"})
    api.track("track", {"userId": "m2", "event": "App Opened", "context": context, "messageId": "d2"})
    (cid,) = {r[2] for r in api.events() if r[0] == "d1"}
    identities = {(i["kind"], i["value"]) for i in api.api("GET", f"/customers/{cid}").json()["identities"]}
    assert ("device", "B5372DB0-C21E-11E4") in identities
    assert _live(api) == 2  # the second known user on the same device is not merged into the first


def test_search_finds_a_customer_by_any_id_they_were_known_by(api):
    """An anonymous id aliased to a user, and the email of a profile merged away, still find the live profile."""
    api.track("page", {"anonymousId": "anon-77", "name": "Home"})
    api.track("identify", {"userId": "u-77", "anonymousId": "anon-77", "traits": {"email": "u77@example.org"}})
    a = api.api("POST", "/customers", json={"external_id": "shop-2", "email": "keep@example.org"}).json()
    b = api.api("POST", "/customers", json={"external_id": "old-2", "email": "Old@Example.org"}).json()
    assert api.api("POST", f"/customers/{a['id']}/merge", json={"from": b["id"]}).status_code == 200

    def found(q: str) -> list[str]:
        return [c["external_id"] for c in api.api("GET", "/customers", params={"q": q}).json()["items"]]

    assert found("anon-77") == ["u-77"]
    assert found("old@example.org") == found("Old@Example.org") == found("old-2") == ["shop-2"]
