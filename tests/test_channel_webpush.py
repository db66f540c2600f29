"""Web push end to end: browsers subscribe through the API, the adapter pushes to a local push service
that checks VAPID and decrypts each payload; gone subscriptions are deleted; the service worker."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from api_helpers import Api, basic
from boomerang.channels import config as settings
from boomerang.channels.base import Outbound
from boomerang.channels.models import PushSubscription
from boomerang.channels.webpush import generate_vapid_keys, public_key
from boomerang.core.errors import ValidationFailed
from boomerang.customers.models import Consent
from push_server import PushServer

NOW = datetime(2025, 3, 1, 12, 0)
SUBJECT = "mailto:ops@shop.example"


@pytest.fixture
def push(monkeypatch):
    with PushServer() as server:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", server.ca_file)  # trust the local push service's CA
        yield server


@pytest.fixture
def api(ws):
    return Api(ws)


@pytest.fixture
def vapid(ws, push):
    private, public = generate_vapid_keys()
    push.expected_key = public
    _configure(ws, {"vapid_private_key": private, "vapid_public_key": public})
    return public


def _configure(ws, values: dict):
    with ws.uow.session() as session:
        settings.save(
            session,
            "webpush",
            "vapid",
            {"subject": SUBJECT, "push_hosts": ["127.0.0.1"], "ttl": 3600, **values},
            secret=ws.secret,
            now=NOW,
        )


def _subscribe(api, subscription: dict, **ids):
    return api.client.post(
        "/v1/push/subscriptions", json={**ids, "subscription": subscription}, headers=basic(api.write_key)
    )


def _customer_of(ws, endpoint: str) -> str:
    with ws.uow.session() as session:
        return session.get(PushSubscription, endpoint).customer_id


def _endpoints(ws) -> set[str]:
    with ws.uow.session() as session:
        return set(session.scalars(sa.select(PushSubscription.endpoint)))


def _send(ws, customer_id: str):
    with ws.uow.session() as session:
        adapter = ws.channels.get(session, "webpush")
    return adapter.send(
        Outbound(
            key="journey:1:push:0",
            message_id=3,
            customer_id=customer_id,
            channel="webpush",
            to=None,
            text="Your cart misses you",
            subject="Still thinking?",
            url="https://shop.example/t/c/abc",
        )
    )


def test_public_key_only_once_configured(ws, api, push):
    assert api.client.get("/v1/push/key").status_code == 404
    private, public = generate_vapid_keys()
    _configure(ws, {"vapid_private_key": private, "vapid_public_key": public})
    assert api.client.get("/v1/push/key").json() == {"publicKey": public}


def test_subscribe_send_and_decrypt_on_every_browser(ws, api, push, vapid):
    laptop, phone = push.browser("laptop"), push.browser("phone")
    assert _subscribe(api, laptop.subscription(), userId="u1").json() == {"success": True}
    assert _subscribe(api, phone.subscription(), userId="u1").status_code == 200
    customer = _customer_of(ws, laptop.endpoint)
    assert _customer_of(ws, phone.endpoint) == customer
    with ws.uow.session() as session:
        consent = session.get(Consent, (customer, "webpush"))
        assert (consent.granted, consent.source) == (True, "webpush:subscribe")

    result = _send(ws, customer)
    assert result.ok and result.provider_id.endswith("/2")
    assert push.rejected == []
    expected = {
        "title": "Still thinking?",
        "body": "Your cart misses you",
        "url": "https://shop.example/t/c/abc",
        "tag": "journey:1:push:0",
    }
    assert sorted(d.name for d in push.received) == ["laptop", "phone"]
    for delivery in push.received:
        assert delivery.payload == expected
        assert delivery.claims["sub"] == SUBJECT and delivery.claims["aud"] == push.origin
        assert delivery.headers["ttl"] == "3600"


def test_gone_subscriptions_are_deleted(ws, api, push, vapid):
    kept, stale = push.browser("kept"), push.browser("stale")
    for browser in (kept, stale):
        _subscribe(api, browser.subscription(), anonymousId="a1")
    customer = _customer_of(ws, kept.endpoint)
    push.gone("stale")
    assert _send(ws, customer).ok
    assert _endpoints(ws) == {kept.endpoint}
    push.answer("kept", 404)
    result = _send(ws, customer)
    assert (result.status, result.permanent) == ("failed", True) and "no push subscription left" in result.error
    assert _endpoints(ws) == set()
    result = _send(ws, customer)
    assert (result.status, result.permanent, result.error) == ("failed", True, "no push subscription")


@pytest.mark.parametrize(
    "status, headers, expected",
    [
        (429, {"Retry_After": "30"}, ("rate_limited", False, 30.0)),
        (500, {}, ("failed", False, None)),
        (413, {}, ("failed", True, None)),
    ],
)
def test_push_service_errors(ws, api, push, vapid, status, headers, expected):
    browser = push.browser("b")
    _subscribe(api, browser.subscription(), userId="u2")
    push.answer("b", status, **headers)
    result = _send(ws, _customer_of(ws, browser.endpoint))
    assert (result.status, result.permanent, result.retry_after) == expected
    assert _endpoints(ws) == {browser.endpoint}  # kept: the push service still knows it


def test_one_browser_failing_does_not_hold_back_the_others(ws, api, push, vapid):
    good, busy = push.browser("good"), push.browser("busy")
    for browser in (good, busy):
        _subscribe(api, browser.subscription(), userId="u3")
    push.answer("busy", 503)
    result = _send(ws, _customer_of(ws, good.endpoint))
    assert result.ok and result.provider_id.endswith("/1")  # not retried: "good" would get it twice


def test_a_key_the_browser_did_not_subscribe_with_is_refused(ws, api, push, vapid):
    browser = push.browser("b")
    _subscribe(api, browser.subscription(), userId="u4")
    private, public = generate_vapid_keys()
    _configure(ws, {"vapid_private_key": private, "vapid_public_key": public})  # keys rotated under the browser
    result = _send(ws, _customer_of(ws, browser.endpoint))
    assert (result.status, result.permanent) == ("failed", True) and "401" in result.error
    assert push.rejected == ["k is not the application server key the browser subscribed with"]


def test_subscribing_again_moves_the_browser_and_unsubscribe_deletes_it(ws, api, push, vapid):
    browser = push.browser("shared")
    _subscribe(api, browser.subscription(), anonymousId="visitor")
    visitor = _customer_of(ws, browser.endpoint)
    _subscribe(api, browser.subscription(), userId="u5", anonymousId="visitor")  # the visitor signed in
    assert _customer_of(ws, browser.endpoint) == visitor  # the anonymous profile was promoted
    _subscribe(api, browser.subscription(), userId="u6")  # someone else on the same browser
    assert _customer_of(ws, browser.endpoint) != visitor
    r = api.client.request(
        "DELETE", "/v1/push/subscriptions", json={"endpoint": browser.endpoint}, headers=basic(api.write_key)
    )
    assert r.json() == {"success": True, "deleted": True}
    assert _endpoints(ws) == set()


def test_subscription_input_is_checked(ws, api, push, vapid):
    browser = push.browser("b")
    good = browser.subscription()
    r = api.client.post("/v1/push/subscriptions", json={"userId": "u", "subscription": good})
    assert r.status_code == 401 and r.json()["errors"][0]["field"] == "authorization"
    r = api.client.post("/v1/push/subscriptions", json={"userId": "u", "subscription": good, "writeKey": api.write_key})
    assert r.status_code == 200
    cases = [
        ({"subscription": good}, "userId"),
        ({"userId": "u", "subscription": {**good, "endpoint": "http://127.0.0.1:1/push/b"}}, "subscription.endpoint"),
        (
            {"userId": "u", "subscription": {**good, "endpoint": "https://169.254.169.254/latest"}},
            "subscription.endpoint",
        ),
        (
            {"userId": "u", "subscription": {**good, "keys": {**good["keys"], "p256dh": "AAAA"}}},
            "subscription.keys.p256dh",
        ),
        (
            {"userId": "u", "subscription": {**good, "keys": {**good["keys"], "auth": "c2hvcnQ"}}},
            "subscription.keys.auth",
        ),
        ({"userId": "u", "subscription": {"endpoint": good["endpoint"]}}, "subscription.keys"),
    ]
    for body, field in cases:
        r = api.client.post("/v1/push/subscriptions", json=body, headers=basic(api.write_key))
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == field, (field, r.text)
    assert _endpoints(ws) == {browser.endpoint}


def test_settings_are_checked_and_name_the_field(ws, push):
    private, public = generate_vapid_keys()
    other = generate_vapid_keys()[1]
    for values, field in [
        ({"vapid_private_key": private, "vapid_public_key": other}, "config.vapid_public_key"),
        ({"vapid_private_key": "nonsense", "vapid_public_key": public}, "config.vapid_private_key"),
        ({"vapid_private_key": private, "vapid_public_key": public, "subject": "ops"}, "config.subject"),
    ]:
        with pytest.raises(ValidationFailed) as error:
            _configure(ws, values)
        assert error.value.errors[0]["field"] == field


def test_a_pem_private_key_works(ws, api, push):
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    push.expected_key = public_key(key.public_key())
    _configure(ws, {"vapid_private_key": pem, "vapid_public_key": push.expected_key})
    browser = push.browser("b")
    _subscribe(api, browser.subscription(), userId="u7")
    assert _send(ws, _customer_of(ws, browser.endpoint)).ok and len(push.received) == 1


def test_service_worker_route(api):
    r = api.client.get("/push-sw.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/javascript")
    assert r.headers["service-worker-allowed"] == "/"
    assert "showNotification" in r.text and "openWindow" in r.text


HARNESS = """
const listeners = {}, shown = [], opened = [], waits = [];
globalThis.self = {
  addEventListener: (type, listener) => { listeners[type] = listener; },
  registration: { showNotification: async (title, options) => { shown.push({ title, options }); } },
  clients: { matchAll: async () => [], openWindow: async (url) => { opened.push(url); } },
};
require("vm").runInThisContext(require("fs").readFileSync(process.argv[1], "utf8"));
const payload = { title: "Still thinking?", body: "Your cart", url: "https://shop.example/c", tag: "k1" };
listeners.push({ data: { json: () => payload, text: () => JSON.stringify(payload) }, waitUntil: (p) => waits.push(p) });
listeners.notificationclick({ notification: { close() {}, data: shown[0].options.data }, waitUntil: (p) => waits.push(p) });
Promise.all(waits).then(() => console.log(JSON.stringify({ shown, opened })));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_service_worker_shows_the_payload_and_opens_its_url(api, tmp_path):
    worker = tmp_path / "push-sw.js"
    worker.write_text(api.client.get("/push-sw.js").text)
    out = subprocess.run(["node", "-e", HARNESS, str(worker)], capture_output=True, text=True, timeout=30, check=True)
    seen = json.loads(out.stdout)
    assert seen["shown"] == [
        {
            "title": "Still thinking?",
            "options": {"body": "Your cart", "data": {"url": "https://shop.example/c"}, "tag": "k1"},
        }
    ]
    assert seen["opened"] == ["https://shop.example/c"]
