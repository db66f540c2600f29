"""Referrals (issue 15): a code and a link per customer, friends attributed by the events that carry the code, the
reward paid once when the friend's first order is delivered and taken back when it comes back whole, the guards
(self-referral by email, phone, device or address; velocity by device, network and rewards per referrer) each a
decision with its reason; the API, the CLI, the dashboard, templates, /bonus, the customer's view and privacy."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api_helpers import Api
from boomerang.auth import users
from boomerang.bot.service import _balance
from boomerang.cli.app import app as cli
from boomerang.core.clock import FixedClock
from boomerang.customers import privacy
from boomerang.customers import service as customers
from boomerang.customers.models import Customer
from boomerang.events.models import inbox
from boomerang.loyalty import codes, referrals, service
from boomerang.loyalty.models import LoyaltyReferralCode, LoyaltyReferralDecision
from boomerang.messaging.context import ContextLoader

T0 = datetime(2026, 5, 1, 12, 0)
SHOP = "https://shop.example.com"


@pytest.fixture
def api(ws) -> Api:
    ws.clock = FixedClock(T0)
    return Api(ws)


@pytest.fixture
def stores(any_ws) -> Api:
    """The same test on SQLite and on PostgreSQL."""
    any_ws.clock = FixedClock(T0)
    return Api(any_ws)


def _cid(ws, who: str) -> str:
    with ws.uow.session() as s:
        return customers.lookup(s, who).id


def _referrer(api: Api, who: str = "alice", traits: dict | None = None) -> tuple[str, str]:
    """A customer who asks for their link: their id and their code."""
    api.track("identify", {"userId": who, "traits": traits or {"email": f"{who}@example.org"}}, server=True)
    answer = api.api("GET", f"/loyalty/referrals/customers/{who}")
    assert answer.status_code == 200, answer.text
    return answer.json()["customer_id"], answer.json()["code"]


def _land(api: Api, friend: str, code: str, *, ip: str = "198.51.100.7", device: str | None = None, **body) -> None:
    """The friend opens the referral link: a page call from analytics.js, the code in the page's address."""
    url = f"{SHOP}/?ref={code}&utm_source=referral&utm_medium=email&utm_campaign=referral"
    context = {"ip": ip, "page": {"url": url}, "campaign": {"source": "referral", "medium": "email"}}
    if device:
        context["device"] = {"id": device}
    answer = api.track("page", {"userId": friend, "name": "Home", "context": context, **body})
    assert answer.status_code == 200, answer.text


def _order(api: Api, who: str, order_id: str, total: float = 100.0, **properties) -> None:
    body = {"order_id": order_id, "total": total, "products": [{"sku": "A", "price": total}], **properties}
    api.track("track", {"userId": who, "event": "Order Completed", "properties": body}, server=True)


def _event(api: Api, who: str, event: str, order_id: str, **properties) -> None:
    api.track("track", {"userId": who, "event": event, "properties": {"order_id": order_id, **properties}}, server=True)


def _wallet(ws, cid: str) -> service.Wallet:
    with ws.uow.session() as s:
        return service.wallets(s, [cid], now=ws.now())[cid]


def _decisions(ws, friend: str | None = None) -> list[tuple[str, str]]:
    with ws.uow.session() as s:
        query = sa.select(LoyaltyReferralDecision.decision, LoyaltyReferralDecision.reason)
        if friend:
            query = query.where(LoyaltyReferralDecision.friend_id == friend)
        return [tuple(r) for r in s.execute(query.order_by(LoyaltyReferralDecision.id))]


def _told(ws) -> list[tuple[str, dict]]:
    with ws.engine.connect() as conn:
        rows = conn.execute(
            sa.select(inbox.c.customer_id, inbox.c.properties).where(inbox.c.event == referrals.REWARDED)
        ).all()
    return [(cid, json.loads(props)) for cid, props in rows]


def _proof(ws) -> dict:
    with ws.uow.session() as s:
        return service.check(s)


# -- codes and links ----------------------------------------------------------------------------------------------


def test_a_customer_gets_one_readable_unguessable_code_and_a_tagged_link(api):
    cid, code = _referrer(api)
    assert re.fullmatch(f"[{codes.ALPHABET}]{{11}}", code) and not set(code) & set("0O1I")
    again = api.api("GET", f"/loyalty/referrals/customers/{cid}", params={"channel": "sms"}).json()
    assert again["code"] == code and again["customer_id"] == cid
    parts = urlsplit(again["link"])
    assert f"{parts.scheme}://{parts.netloc}" == SHOP
    assert parse_qs(parts.query) == {
        "ref": [code],
        "utm_source": ["referral"],
        "utm_medium": ["sms"],
        "utm_campaign": ["referral"],
    }
    assert again["referrals"] == {"attributed": 0, "rewarded": 0, "void": 0, "rejected": 0, "reversed": 0}


def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(api):
    api.track("identify", {"userId": "bob", "traits": {"email": "bob@example.org"}}, server=True)
    bad = api.api("GET", "/loyalty/referrals/customers/bob", params={"channel": "e mail!"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "channel"
    with api.ws.uow.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(LoyaltyReferralCode)) == 0  # no code half-made
    unknown = api.api("GET", "/loyalty/referrals/customers/nobody")
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["field"] == "customer_id"
    for path, params, field in (
        ("", {"status": "paid"}, "status"),
        ("", {"referrer": "nobody"}, "referrer"),
        ("", {"limit": 0}, "limit"),
        ("/decisions", {"decision": "maybe"}, "decision"),
        ("/decisions", {"friend": "nobody"}, "friend"),
    ):
        answer = api.api("GET", f"/loyalty/referrals{path}", params=params)
        assert answer.status_code in (400, 404) and answer.json()["errors"][0]["field"] == field, answer.text
    assert api.client.get("/api/loyalty/referrals").status_code == 401  # the secret key is required


# -- the reward ---------------------------------------------------------------------------------------------------


def test_the_reward_is_paid_once_when_the_first_order_is_delivered(stores):
    api = stores
    ws = api.ws
    alice, code = _referrer(api)
    _land(api, "fred", code)
    fred = _cid(ws, "fred")
    assert _decisions(ws) == [("attributed", "code")]
    _order(api, "fred", "f-1")
    _event(api, "fred", "Order Shipped", "f-1")
    assert _wallet(ws, alice).points == 0 and _told(ws) == []  # paid and shipped: not yet
    for _ in range(2):  # the delivery told twice
        _event(api, "fred", "Order Delivered", "f-1")
    _land(api, "fred", code)  # the link opened again
    _order(api, "fred", "f-2")
    _event(api, "fred", "Order Delivered", "f-2")  # a second order pays nothing
    assert _wallet(ws, alice).points == 100
    assert (_wallet(ws, fred).points, _wallet(ws, fred).pending) == (50, 10)  # 50 now; the orders' cashback later
    assert _decisions(ws) == [("attributed", "code"), ("rewarded", "first_order_delivered")]
    assert _told(ws) == [(alice, {"friend_id": fred, "order_id": "f-1", "points": 100, "friend_points": 50})]
    listed = api.api("GET", "/loyalty/referrals", params={"referrer": "alice@example.org"}).json()["items"]
    assert [(r["friend_id"], r["status"], r["order_id"], r["channel"]) for r in listed] == [
        (fred, "rewarded", "f-1", "email")
    ]
    with ws.uow.session() as s:
        references = {i["reference"] for i in service.history(s, alice)["items"]}
    assert references == {f"referral:{fred}:referrer"} and _proof(ws)["ok"]


def test_a_delivery_told_before_the_order_still_pays_once(api):
    ws = api.ws
    alice, code = _referrer(api)
    _land(api, "gia", code)
    _event(api, "gia", "Order Delivered", "g-1", total=80.0)  # the status came first
    _order(api, "gia", "g-1", 80.0)
    _event(api, "gia", "Order Delivered", "g-1", total=80.0)
    assert _wallet(ws, alice).points == 100 and len(_told(ws)) == 1 and _proof(ws)["ok"]


def test_a_first_order_lost_before_delivery_pays_nothing_and_one_lost_after_is_taken_back(stores):
    api = stores
    ws = api.ws
    alice, code = _referrer(api)
    _land(api, "hal", code, ip="198.51.100.8")
    _order(api, "hal", "h-1")
    _event(api, "hal", "Order Cancelled", "h-1")
    _order(api, "hal", "h-2")
    _event(api, "hal", "Order Delivered", "h-2")  # not the first order
    assert _wallet(ws, alice).points == 0
    assert _decisions(ws, _cid(ws, "hal")) == [("attributed", "code"), ("void", "cancelled")]

    _land(api, "ivy", code, ip="198.51.100.9")
    _order(api, "ivy", "i-1")
    _event(api, "ivy", "Order Delivered", "i-1")
    assert _wallet(ws, alice).points == 100
    with ws.uow.session() as s:  # the referrer spends 30 of the 100 before the order comes back
        service.adjust(s, alice, -30, reason="spent", now=ws.now(), settings=ws.settings.loyalty)
    _event(api, "ivy", "Order Refunded", "i-1", total=100.0)  # returned whole
    _event(api, "ivy", "Order Refunded", "i-1", total=100.0)
    ivy = _cid(ws, "ivy")
    assert (_wallet(ws, alice).points, _wallet(ws, ivy).points) == (0, 0)
    assert _decisions(ws, ivy)[-1] == ("reversed", "returned")
    with ws.uow.session() as s:
        taken = [i for i in service.history(s, alice)["items"] if i["kind"] == "reverse"]
    assert [(t["change"], t["detail"]["unrecovered"]) for t in taken] == [({"wallet": -70}, 30)]
    assert _proof(ws)["ok"]


# -- the guards ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shared", ["email", "phone", "device"])
def test_self_referral_by_a_shared_email_phone_or_device_is_refused_with_its_reason(api, shared):
    ws = api.ws
    alice, code = _referrer(api, traits={"email": "alice.smith@gmail.com", "phone": "+14155550100"})
    api.track("track", {"userId": "alice", "event": "App Opened", "context": {"device": {"id": "dev-9"}}})
    friend = {
        "email": {"email": "alicesmith+deals@gmail.com"},  # the same mailbox
        "phone": {"email": "mallory@example.org", "phone": "+1 415 555 0100"},
        "device": {"email": "mallory@example.org"},
    }[shared]
    api.track("identify", {"userId": "mallory", "traits": friend}, server=True)
    _land(api, "mallory", code, device="dev-9" if shared == "device" else None)
    mallory = _cid(ws, "mallory")
    with ws.uow.session() as s:
        (row,) = s.scalars(sa.select(LoyaltyReferralDecision)).all()
    assert (row.decision, row.reason, row.friend_id, row.referrer_id) == ("rejected", "self_referral", mallory, alice)
    assert shared in row.detail["shared"]
    _order(api, "mallory", "m-1")
    _event(api, "mallory", "Order Delivered", "m-1")
    assert _wallet(ws, alice).points == 0


def test_self_referral_by_a_shared_shipping_address_is_caught_when_the_order_comes(api):
    ws = api.ws
    address = {"street": "12 Baker Street", "city": "London", "postal_code": "NW1 6XE", "country": "GB"}
    alice, code = _referrer(api)
    _order(api, "alice", "a-1", shipping_address=address)
    _land(api, "max", code)
    assert _decisions(ws) == [("attributed", "code")]  # nothing shared yet
    same = {**address, "street": "12, baker street ", "postal_code": "nw1 6xe"}
    _order(api, "max", "x-1", shipping_address=same)
    _event(api, "max", "Order Delivered", "x-1")
    assert _decisions(ws)[-1] == ("rejected", "self_referral") and _wallet(ws, alice).points == 0
    listed = api.api("GET", "/loyalty/referrals/decisions", params={"decision": "rejected"}).json()["items"]
    assert listed[0]["detail"] == {"shared": ["address"]} and listed[0]["order_id"] == "x-1"


def test_velocity_from_one_device_one_network_and_rewards_per_referrer(api):
    ws = api.ws
    ws.settings.loyalty.referrals.max_friends_per_network = 2
    ws.settings.loyalty.referrals.max_rewards_per_referrer = 1
    alice, code = _referrer(api)
    for n in range(3):  # the same phone, several accounts
        _land(api, f"d{n}", code, device="one-phone", ip=f"203.0.{113 + n}.1")
    for n in range(3):  # the same office network
        _land(api, f"n{n}", code, ip=f"192.0.2.{n + 10}")
    assert [d for d in _decisions(ws) if d[0] == "rejected"] == [("rejected", "velocity")] * 2
    rejected = api.api("GET", "/loyalty/referrals/decisions", params={"decision": "rejected"}).json()["items"]
    assert [(d["detail"]["by"], d["detail"]["limit"]) for d in rejected] == [("network", 2), ("device", 2)]
    assert rejected[0]["detail"]["network"] == "192.0.2.0/24"
    ws.clock = FixedClock(T0 + timedelta(days=8))  # a week later the device may bring a friend again
    _land(api, "d9", code, device="one-phone", ip="203.0.120.99")
    assert _decisions(ws, _cid(ws, "d9")) == [("attributed", "code")]
    for who in ("d0", "d1"):
        _order(api, who, f"{who}-o")
        _event(api, who, "Order Delivered", f"{who}-o")
    assert [d for d in _decisions(ws) if d[0] != "attributed"][-2:] == [
        ("rewarded", "first_order_delivered"),
        ("rejected", "velocity"),
    ]
    assert _wallet(ws, alice).points == 100


def test_unknown_codes_second_referrers_and_customers_who_bought_before_are_refused(api):
    ws = api.ws
    _, code = _referrer(api)
    _, other = _referrer(api, "bea")
    _land(api, "ned", "NOSUCHCODE9")
    _land(api, "ned", code)
    _land(api, "ned", other)  # the first attribution wins
    _order(api, "old", "o-1")  # a customer already
    _land(api, "old", code)
    _land(api, "alice", code)  # their own link
    assert _decisions(ws) == [
        ("rejected", "unknown_code"),
        ("attributed", "code"),
        ("rejected", "already_referred"),
        ("rejected", "not_new"),
        ("rejected", "self_referral"),
    ]


# -- surfaces -----------------------------------------------------------------------------------------------------


def test_the_cli_prints_links_referrals_and_decisions_as_json(api):
    ws = api.ws
    _, code = _referrer(api)
    _land(api, "fay", code)
    run = CliRunner()
    home = ["--home", str(ws.settings.home)]
    link = run.invoke(cli, [*home, "referrals", "link", "alice@example.org", "--channel", "telegram", "--json"])
    assert link.exit_code == 0, link.output
    assert json.loads(link.output)["code"] == code and "utm_medium=telegram" in json.loads(link.output)["link"]
    listed = run.invoke(cli, [*home, "referrals", "list", "--referrer", "alice", "--json"])
    assert [r["status"] for r in json.loads(listed.output)["items"]] == ["attributed"]
    decided = run.invoke(cli, [*home, "referrals", "decisions", "--json"])
    assert [(d["decision"], d["reason"]) for d in json.loads(decided.output)["items"]] == [("attributed", "code")]
    table = run.invoke(cli, [*home, "referrals", "decisions"])
    assert table.exit_code == 0 and "attributed" in table.output
    bad = run.invoke(cli, [*home, "referrals", "list", "--status", "paid"])
    assert bad.exit_code == 2 and "status" in bad.output


def test_the_dashboard_page_shows_referrals_and_decisions(api):
    ws = api.ws
    _, code = _referrer(api)
    _land(api, "zoe", code)
    _land(api, "zed", "NOSUCHCODE9")
    with ws.uow.session() as s:
        users.create_user(s, username="viewer", role="viewer", password="correct-horse", now=T0)
    client = TestClient(api.client.app)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": "viewer", "password": "correct-horse", "csrf_token": token})
    page = client.get("/loyalty/referrals")
    assert page.status_code == 200 and 'href="/loyalty/referrals" class="active"' in page.text
    assert "unknown_code" in page.text and code in page.text and 'data-status="attributed"' in page.text
    bad = client.get("/loyalty/referrals", params={"status": "paid"})
    assert bad.status_code == 400 and "status: must be one of" in bad.text


def test_templates_the_bot_and_the_customers_own_view_carry_the_link(api):
    ws = api.ws
    alice, code = _referrer(api)
    with ws.uow.session() as s:
        data = ContextLoader(s, ws.settings.messaging, now=ws.now()).load({alice})[alice]
        text = _balance(s, s.get(Customer, alice), "en", ws.now(), ws.settings.messaging.shop_url)
    assert data["loyalty"]["referral_link"].startswith(f"{SHOP}/?ref={code}&utm_source=referral")
    assert f"Invite a friend: {SHOP}/?ref={code}" in text
    token = api.api("GET", f"/loyalty/customers/{alice}/token").json()["token"]
    mine = api.client.get(f"/v1/loyalty/{token}").json()
    assert mine["referral_link"] == data["loyalty"]["referral_link"]


def test_privacy_follows_merges_exports_and_erases_referrals(api):
    ws = api.ws
    alice, code = _referrer(api)
    api.track("identify", {"userId": "kim", "traits": {"email": "kim@example.org"}}, server=True)
    url = f"{SHOP}/?ref={code}"
    api.track("page", {"anonymousId": "anon-1", "context": {"page": {"url": url}, "ip": "198.51.100.3"}})
    api.track("identify", {"userId": "kim", "anonymousId": "anon-1"}, server=True)  # the visitor was kim
    kim = _cid(ws, "kim")
    listed = api.api("GET", "/loyalty/referrals").json()["items"]
    assert [(r["friend_id"], r["referrer_id"]) for r in listed] == [(kim, alice)]
    assert [d["friend_id"] for d in api.api("GET", "/loyalty/referrals/decisions").json()["items"]] == [kim]
    with ws.uow.session() as s:
        doc = privacy.export(s, ws.log, alice, actor="test", now=ws.now())
    assert [r["friend_id"] for r in doc["loyalty_referrals"]] == [kim]
    assert [c["code"] for c in doc["loyalty_referral_codes"]] == [code]
    with ws.uow.session() as s:
        done = privacy.erase(s, ws.log, alice, actor="test", now=ws.now())
    assert done["deleted"]["loyalty_referral_codes"] == 1 and done["ended"]["referrals"] == 1
    with ws.engine.connect() as conn:
        for table in ("loyalty_referrals", "loyalty_referral_decisions", "loyalty_referral_codes"):
            assert alice not in json.dumps(
                [list(r) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))], default=str
            )
    _land(api, "lee", code)  # the erased customer's link attributes no one now
    assert _decisions(ws, _cid(ws, "lee")) == [("rejected", "unknown_code")]
