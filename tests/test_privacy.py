"""Privacy requests: a customer's data export and erasure, on both operational stores and the event log; the
suppression of erased addresses; the audit log; the API, the CLI and the dashboard."""

from __future__ import annotations

import json
import re
import zipfile
from datetime import datetime, timedelta

import orjson
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api_helpers import Api
from boomerang.api.app import create_app
from boomerang.auth import users
from boomerang.bootstrap import open_workspace
from boomerang.channels.models import FakeChannelLog, InboxItem, PushSubscription
from boomerang.cli.app import app as cli
from boomerang.config import Settings
from boomerang.core.privacy import analytics_properties, normalise_address
from boomerang.customers import privacy
from boomerang.customers.models import AuditEntry, Customer, Identity
from boomerang.events import bulk
from boomerang.journeys.engine import State
from boomerang.journeys.models import ApprovalRequest, Conversion, Instance, Journey
from boomerang.loyalty import service as loyalty
from boomerang.messaging import outbox
from boomerang.messaging.models import Message, MessageEvent, Preference
from boomerang.models import Base
from boomerang.orchestration.rounds import move_events
from boomerang.orchestration.status import summary
from boomerang.orders.models import Order
from boomerang.segments import profiles as mirror
from boomerang.segments.models import Segment, SegmentMember
from browser_support import login, need_browser, serving, shot

USER = "user-anna-77"
EMAIL, OLD_EMAIL, PHONE = "anna.k@example.com", "anna.alt@example.com", "+1 555 0100"
IP, AGENT = "203.0.113.7", "AnnaBrowser/1.0"
# Every string that names her, wherever it was written: none may be left after the erasure.
TRACES = [
    USER,
    EMAIL,
    OLD_EMAIL,
    PHONE,
    "+15550100",
    "Annabel",
    "Kowalczyk",
    "Zielonka",
    "annie_k",
    "anon-anna-1",
    "anon-anna-2",
    "12 Lipowa",
    IP,
    AGENT,
]
T0 = datetime(2026, 3, 1, 10, 0)


def _track(api: Api, kind: str, body: dict, *, context: dict | None = None) -> None:
    context = context or {"ip": IP, "userAgent": AGENT}
    response = api.track(kind, {"context": context, "timestamp": T0.isoformat() + "Z", **body}, server=True)
    assert response.status_code == 200, response.text


def _her_history(api: Api) -> None:
    """Two visits that end in one known profile (the second merged into it), a cart and an order."""
    _track(api, "track", {"anonymousId": "anon-anna-1", "event": "Product Viewed", "properties": {"sku": "MUG-1"}})
    _track(
        api,
        "track",
        {
            "anonymousId": "anon-anna-1",
            "event": "Product Added",
            "properties": {"cart_id": "cart-1", "sku": "MUG-1", "price": 15, "quantity": 2, "note": "for Annabel"},
        },
    )
    traits = {
        "email": EMAIL,
        "phone": PHONE,
        "firstName": "Annabel",
        "lastName": "Kowalczyk",
        "birthday": "1990-04-01",
        "city": "Zielonka",
        "nickname": "annie_k",
        "consents": {"email": True, "sms": True},
    }
    _track(api, "identify", {"userId": USER, "anonymousId": "anon-anna-1", "traits": traits})
    _track(api, "identify", {"anonymousId": "anon-anna-2", "traits": {"email": OLD_EMAIL, "firstName": "Annabel"}})
    _track(api, "track", {"anonymousId": "anon-anna-2", "event": "Product Viewed", "properties": {"sku": "MUG-2"}})
    _track(api, "identify", {"userId": USER, "anonymousId": "anon-anna-2", "traits": {}})
    order = {
        "order_id": "o-anna-1",
        "total": 120.5,
        "currency": "EUR",
        "cart_id": "cart-1",
        "shipping_address": "12 Lipowa St, Zielonka",
        "products": [{"sku": "MUG-1", "name": "Mug", "price": 15, "quantity": 2, "engraving": "Annabel"}],
    }
    _track(api, "track", {"userId": USER, "event": "Order Completed", "properties": order})
    api.events()  # processed and flushed into the log


def _someone_else(api: Api) -> None:
    his = {"ip": "198.51.100.9"}
    _track(
        api, "identify", {"userId": "user-bob", "traits": {"email": "bob@example.com", "firstName": "Bob"}}, context=his
    )
    order = {"order_id": "o-bob-1", "total": 40, "currency": "EUR", "products": [{"sku": "MUG-2", "quantity": 1}]}
    _track(api, "track", {"userId": "user-bob", "event": "Order Completed", "properties": order}, context=his)
    api.events()


def _her_id(ws) -> str:
    with ws.uow.session() as s:
        return s.scalar(sa.select(Customer.id).where(Customer.external_id == USER))


def _what_domains_keep(ws, cid: str) -> None:
    """Rows of every other domain, written the way those domains write them."""
    now = ws.now()
    trigger = {"event": "Order Completed", "key": "o-anna-1", "properties": {"total": 120.5, "email": EMAIL}}
    with ws.uow.session() as s:
        outbox.queue(
            s,
            [
                outbox.message(
                    key=f"campaign:spring:{cid}",
                    source="campaign:spring",
                    customer_id=cid,
                    channels=["email"],
                    template="greeting",
                    category="promotional",
                    now=now,
                    trigger=trigger,
                ),
                outbox.message(
                    key=f"campaign:later:{cid}",
                    source="campaign:later",
                    customer_id=cid,
                    channels=["email"],
                    template="greeting",
                    category="promotional",
                    now=now,
                ),
            ],
        )
        sent = s.scalar(sa.select(Message).where(Message.source == "campaign:spring"))
        sent.status, sent.channel, sent.sent_at = "bounced", "email", now
        s.add(MessageEvent(message_id=sent.id, kind="bounced", detail=f"550 <{EMAIL}>: no such user", at=now))
        s.add(
            FakeChannelLog(message_key=sent.key, channel="email", customer_id=cid, address=EMAIL, template="g", at=now)
        )
        s.add(InboxItem(message_key="in-1", message_id=sent.id, customer_id=cid, title="Hi Annabel", created_at=now))
        s.add(
            PushSubscription(
                endpoint="https://push.example/anna", customer_id=cid, p256dh="k", auth="a", created_at=now
            )
        )
        s.add(Preference(customer_id=cid, topics_off=["news"], frequency="weekly", updated_at=now))
        loyalty.write(
            s,
            [
                loyalty.points_row(f"welcome:{cid}", cid, 50, source="journey:welcome", now=now),
                loyalty.code_row("code-1", cid, 10.0, 30, source="journey:welcome", now=now),
            ],
        )
        journey = Journey(name="welcome", definition={}, created_at=now, updated_at=now)
        s.add(journey)
        segment = Segment(
            name="buyers", definition={}, triggers=[], expires=False, size=1, created_at=now, updated_at=now
        )
        s.add(segment)
        s.flush()
        state = State("jin-1", cid, "o-anna-1", False, "Europe/Warsaw", now, "wait", status="waiting", trigger=trigger)
        s.add(
            Instance(
                id="jin-1",
                journey_id=journey.id,
                version=1,
                customer_id=cid,
                key="o-anna-1",
                status="waiting",
                node="wait",
                wake_at=now + timedelta(days=1),
                control=False,
                state=state.to_data(),
                entered_at=now,
                updated_at=now,
            )
        )
        s.add(
            Conversion(
                instance_id="jin-1",
                journey_id=journey.id,
                customer_id=cid,
                node="wait",
                control=False,
                revenue=120.5,
                at=now,
            )
        )
        s.add(
            ApprovalRequest(
                key="apr-1",
                instance_id="jin-1",
                journey_id=journey.id,
                node="gift",
                customer_id=cid,
                note="call Annabel",
                created_at=now,
            )
        )
        s.add(SegmentMember(segment_id=segment.id, customer_id=cid, entered_at=now))
        order = s.get(Order, "o-anna-1")
        order.attributes = {**(order.attributes or {}), "shipping_address": "12 Lipowa St", "refunds": {}}
    ws.log.save_traits("rfm", pd.DataFrame({"customer_id": [cid], "rfm_group": ["champions"], "r_score": [5]}))
    mirror.sync(ws.uow, ws.log, now=now)


def _not_logged_yet(api: Api) -> None:
    """A message of hers set aside from a batch (its timestamp is in the future), and an event not processed yet."""
    ahead = {"type": "track", "event": "Ahead", "userId": USER, "timestamp": "2099-01-01T00:00:00Z"}
    batch = [{**ahead, "properties": {"email": EMAIL}}, {"type": "track", "event": "Fine", "userId": "user-bob"}]
    assert api.track("batch", {"batch": batch}, server=True).json()["set_aside"][0]["index"] == 0
    waiting = {"userId": USER, "event": "Page Viewed", "context": {"ip": IP}, "properties": {"url": "/?e=" + EMAIL}}
    assert api.track("track", waiting, process_now=False, server=True).status_code == 200


@pytest.fixture
def shop(any_ws):
    api = Api(any_ws)
    _her_history(api)
    _someone_else(api)
    cid = _her_id(any_ws)
    _what_domains_keep(any_ws, cid)
    _not_logged_yet(api)
    return api, cid


def _operational_text(ws) -> dict[str, str]:
    """Every table of the operational store, as text."""
    out = {}
    with ws.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = conn.execute(sa.select(table)).all()
            out[table.name] = orjson.dumps([list(r) for r in rows], default=str).decode()
    return out


def _log_text(ws) -> dict[str, str]:
    """Every table of the event log's DuckDB file (events, the profile mirror, traits...), as text."""
    with ws.log.connect() as conn:
        names = [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        return {name: str(conn.execute(f'SELECT * FROM "{name}"').fetchall()) for name in names}


def _where(texts: dict[str, str], needle: str) -> list[str]:
    return [name for name, text in texts.items() if needle.lower() in text.lower()]


def _counts(ws) -> dict:
    data = summary(ws.uow, ws.log)
    return {k: data[k] for k in ("orders", "revenue", "buyers", "repeat_purchase_rate")} | {
        "events": data["events"]["by_type"]
    }


def test_the_export_holds_every_kind_of_data_she_has(shop):
    api, cid = shop
    response = api.api("GET", f"/customers/{cid}/export")
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["customer_id"] == cid and doc["profile"]["email"] == EMAIL and doc["profile"]["first_name"] == "Annabel"
    assert doc["profile"]["attributes"] == {"nickname": "annie_k"}
    assert [p["email"] for p in doc["merged_profiles"]] == [OLD_EMAIL]
    assert {(i["kind"], i["value"]) for i in doc["identities"]} >= {
        ("user", USER),
        ("anonymous", "anon-anna-1"),
        ("anonymous", "anon-anna-2"),
        ("email", EMAIL),
        ("phone", "+15550100"),  # as stored: E.164
    }
    assert {c["channel"] for c in doc["consents"]} == {"email", "sms"} and len(doc["consent_history"]) == 2
    assert doc["merges"][0]["into_customer_id"] == cid
    names = [e["event"] for e in doc["events"]]
    assert names.count("Product Viewed") == 2 and "Order Completed" in names and "Product Added" in names
    assert {e["context"].get("ip") for e in doc["events"]} == {IP}
    assert doc["orders"][0]["id"] == "o-anna-1" and doc["orders"][0]["lines"][0]["sku"] == "MUG-1"
    assert doc["carts"][0]["id"] == "cart-1"
    by_source = {m["source"]: m for m in doc["messages"]}
    assert (
        by_source["campaign:spring"]["events"][0]["kind"] == "bounced"
        and by_source["campaign:later"]["status"] == "queued"
    )
    assert doc["preferences"][0]["frequency"] == "weekly"
    assert doc["push_subscriptions"] == [
        {
            "endpoint": "https://push.example/anna",
            "customer_id": cid,
            "created_at": doc["push_subscriptions"][0]["created_at"],
        }
    ]
    assert doc["inbox_items"][0]["title"] == "Hi Annabel" and doc["sandbox_deliveries"][0]["address"] == EMAIL
    assert {e["kind"] for e in doc["loyalty"]} == {"points", "promo_code"}
    assert doc["journey_instances"][0]["id"] == "jin-1" and doc["journey_conversions"][0]["revenue"] == 120.5
    assert doc["journey_approvals"][0]["note"] == "call Annabel"
    assert doc["segment_memberships"] == [
        {"customer_id": cid, "name": "buyers", "title": "", "entered_at": doc["segment_memberships"][0]["entered_at"]}
    ]
    assert doc["traits"]["rfm"][0]["rfm_group"] == "champions"
    assert [e["event"] for e in doc["pending_events"]] == ["Page Viewed"] and doc["pending_events"][0]["context"][
        "ip"
    ] == IP
    assert [e["message_id"] for e in doc["set_aside_events"]] == [None] and EMAIL in doc["set_aside_events"][0][
        "payload"
    ]
    assert "bob@example.com" not in json.dumps(doc)  # nobody else's data
    with api.ws.uow.session() as s:
        entry = s.scalar(sa.select(AuditEntry))
    assert (entry.action, entry.customer_id, entry.actor) == ("export", cid, f"key:{_key_id(api)}")
    assert entry.detail["sections"]["orders"] == 1 and entry.detail["profiles"][0] == cid


def _key_id(api: Api) -> str:
    return api.client.app.state.keys.identify(api.secret_key)[1]


def test_erasure_leaves_no_trace_of_her_in_either_store_and_the_numbers_stand(shop):
    api, cid = shop
    ws = api.ws
    before = _counts(ws)
    with ws.uow.session() as s:
        merged = [c for (c,) in s.execute(sa.select(Customer.id).where(Customer.merged_into_id == cid))]
    assert merged and all(_where(_operational_text(ws), t) for t in (EMAIL, OLD_EMAIL, "Annabel"))

    response = api.api("DELETE", f"/customers/{cid}")
    assert response.status_code == 200, response.text
    done = response.json()
    assert done["customer_id"] == cid and done["profiles"] == [cid, *merged]
    assert done["deleted"]["profiles"] == 2 and done["deleted"]["identities"] >= 5
    assert (
        done["deleted"]["push_subscriptions"] == done["deleted"]["inbox_items"] == done["deleted"]["preferences"] == 1
    )
    assert done["suppressed"] == {"addresses": 3, "queued_messages": 1}
    assert done["pseudonymised"]["orders"] == 1 and done["pseudonymised"]["events"] >= 6
    assert (
        done["ended"]["journey_instances"] == 1 and done["ended"]["promo_codes"] == 1 and done["ended"]["points"] == 56
    )  # points: the journey's 50 and her order's 6 (5% of 120.50)
    assert done["deleted"]["profile_mirror"] == 1
    assert done["pseudonymised"]["pending_events"] == 1 and done["deleted"]["set_aside_events"] == 1

    move_events(ws)  # nothing waiting in the inbox brings her back
    operational, logged = _operational_text(ws), _log_text(ws)
    for trace in TRACES:
        assert _where(operational, trace) == [] and _where(logged, trace) == [], trace
    for erased in (cid, *merged):  # her ids: only in the audit log, which says she was erased
        assert _where(operational, erased) == ["audit_log"] and _where(logged, erased) == [], erased
    assert "Bob" in operational["customers"] and "bob@example.com" in logged["profiles"]

    after = _counts(ws)
    waited = after["events"].pop("Page Viewed"), after["events"].pop("Fine")  # in the inbox before, counted now
    assert waited == (1, 1) and after == before
    with ws.uow.session() as s:
        queued = s.scalar(sa.select(Message).where(Message.source == "campaign:later"))
        assert (queued.status, queued.reason) == ("suppressed", "customer erased")
        stand_in = s.get(Customer, queued.customer_id)
        assert stand_in.email is None and stand_in.external_id is None and stand_in.attributes == {}
        assert s.get(Order, "o-anna-1").customer_id == stand_in.id
        assert s.get(Order, "o-anna-1").attributes == {"refunds": {}}
        instance = s.get(Instance, "jin-1")
        assert (instance.status, instance.outcome, instance.customer_id) == ("done", "exited", stand_in.id)
        assert instance.state["trigger"]["properties"] == {"total": 120.5} and instance.state["timezone"] is None
        assert loyalty.wallets(s, [stand_in.id], now=ws.now())[stand_in.id].points == 0
        erasure = s.scalar(sa.select(AuditEntry).where(AuditEntry.action == "erase"))
        assert (erasure.customer_id, erasure.actor) == (cid, f"key:{_key_id(api)}")
        assert stand_in.id not in orjson.dumps(erasure.detail).decode()  # the audit log does not lead to her data
    with ws.log.connect() as conn:
        kept = conn.execute(
            "SELECT DISTINCT customer_id, user_id, anonymous_id, CAST(context AS VARCHAR) FROM events "
            "WHERE customer_id = ?",
            [stand_in.id],
        ).fetchall()
        order = conn.execute(
            "SELECT CAST(properties AS VARCHAR) FROM events WHERE event = 'Order Completed' AND customer_id = ?",
            [stand_in.id],
        ).fetchall()
    assert kept == [(stand_in.id, None, None, "{}")]
    assert json.loads(order[0][0])["total"] == 120.5 and "shipping_address" not in order[0][0]

    again = api.api("DELETE", f"/customers/{cid}")
    assert again.status_code == 404 and "was erased on" in again.json()["errors"][0]["reason"]
    assert api.api("GET", f"/customers/{cid}").status_code == 404


def test_an_old_import_does_not_bring_her_addresses_back(ws):
    api = Api(ws)
    _her_history(api)
    cid = _her_id(ws)
    with ws.uow.session() as s:
        privacy.erase(s, ws.log, cid, actor="cli", now=T0 + timedelta(days=3))
    old = pd.DataFrame(
        {
            "external_id": [USER, "user-cy"],
            "email": ["  Anna.K@Example.COM", "cy@example.com"],
            "phone": ["+1 (555) 0100", None],
            "first_name": ["Annabel", "Cy"],
        }
    )
    bulk.load(ws.uow, ws.log, bulk.Chunk(customers=old), source="old-import", now=T0 + timedelta(days=4))
    with ws.uow.session() as s:
        back = s.scalar(sa.select(Customer).where(Customer.external_id == USER))
        cy = s.scalar(sa.select(Customer).where(Customer.external_id == "user-cy"))
        assert (back.email, back.phone, back.first_name) == (None, None, "Annabel")  # a new profile, no address
        assert cy.email == "cy@example.com"
        assert privacy.is_suppressed(s, "email", "ANNA.K@example.com ") and privacy.is_suppressed(
            s, "phone", "+15550100"
        )
        assert privacy.is_suppressed(s, "email", OLD_EMAIL) and not privacy.is_suppressed(s, "email", "cy@example.com")
        assert not privacy.is_suppressed(s, "user", USER) and not privacy.is_suppressed(s, "email", None)
        assert s.scalar(sa.select(sa.func.count()).select_from(Identity).where(Identity.value == EMAIL)) == 0


def test_suppression_needs_the_workspace_secret(ws):
    with sa.orm.Session(ws.engine) as s, pytest.raises(RuntimeError, match="no secret"):
        privacy.is_suppressed(s, "email", EMAIL)
    with ws.uow.session() as s:
        privacy.suppression.suppress(s, [("email", EMAIL)], now=T0)
        digest = s.scalar(sa.text("SELECT digest FROM suppressed_addresses"))
    assert EMAIL not in digest and len(digest) == 64


def test_what_analytics_keeps_of_an_event():
    props = {
        "order_id": "o1",
        "total": 10,
        "email": "x@y.z",
        "address": {"city": "Zielonka"},
        "products": [{"sku": "A", "quantity": 1, "engraving": "Ann"}],
    }
    assert analytics_properties(props) == {"order_id": "o1", "total": 10, "products": [{"sku": "A", "quantity": 1}]}
    assert (
        normalise_address("email", " A@B.c ") == "a@b.c" and normalise_address("phone", "+1 (555) 01-00") == "+15550100"
    )


def test_api_answers_unknown_unauthorised_and_write_keys(ws):
    api = Api(ws)
    _track(api, "identify", {"userId": "u1", "traits": {"email": "u1@example.com"}})
    cid = _her_id_of(ws, "u1")
    assert api.api("GET", "/customers/cus_nobody/export").status_code == 404
    assert api.api("DELETE", "/customers/cus_nobody").json()["errors"][0]["field"] == "customer_id"
    for headers in ({}, {"Authorization": f"Bearer {api.write_key}"}):
        assert api.client.get(f"/api/customers/{cid}/export", headers=headers).status_code == 401
        assert api.client.delete(f"/api/customers/{cid}", headers=headers).status_code == 401
    with ws.uow.session() as s:
        assert s.get(Customer, cid).email == "u1@example.com" and s.scalar(sa.select(sa.func.count(AuditEntry.id))) == 0


def _her_id_of(ws, user: str) -> str:
    with ws.uow.session() as s:
        return s.scalar(sa.select(Customer.id).where(Customer.external_id == user))


def test_cli_exports_to_json_or_zip_and_erases_with_yes(ws, tmp_path):
    api = Api(ws)
    _her_history(api)
    cid = _her_id(ws)
    runner = CliRunner()
    home = ["--home", str(ws.settings.home)]

    shown = runner.invoke(cli, [*home, "customers", "export", USER])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["profile"]["email"] == EMAIL

    nowhere = runner.invoke(cli, [*home, "customers", "export", USER, "--out", str(tmp_path / "no" / "a.zip")])
    assert nowhere.exit_code == 2 and "--out" in nowhere.output
    out = tmp_path / "anna.zip"
    written = runner.invoke(cli, [*home, "customers", "export", EMAIL, "--out", str(out), "--json"])
    assert written.exit_code == 0, written.output
    assert json.loads(written.stdout)["sections"]["orders"] == 1
    with zipfile.ZipFile(out) as archive:
        assert json.loads(archive.read(f"customer-{cid}.json"))["customer_id"] == cid

    refused = runner.invoke(cli, [*home, "customers", "erase", cid, "--json"])
    assert refused.exit_code == 2 and "--yes" in refused.output
    erased = runner.invoke(cli, [*home, "customers", "erase", cid, "--yes", "--json"])
    assert erased.exit_code == 0, erased.output
    assert json.loads(erased.stdout)["deleted"]["profiles"] == 2
    gone = runner.invoke(cli, [*home, "customers", "erase", cid, "--yes", "--json"])
    assert gone.exit_code == 2 and "was erased" in gone.output

    audit = json.loads(runner.invoke(cli, [*home, "customers", "audit", "--json"]).stdout)
    assert [(e["action"], e["actor"], e["customer_id"]) for e in audit] == [
        ("erase", "cli", cid),
        ("export", "cli", cid),
        ("export", "cli", cid),
    ]


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _logged_in(ws, username: str, role: str) -> TestClient:
    with ws.uow.session() as s:
        users.create_user(s, username=username, role=role, password="correct-horse", now=T0)
    client = TestClient(create_app(ws, background=False))
    token = _csrf(client.get("/login").text)
    client.post("/login", data={"username": username, "password": "correct-horse", "csrf_token": token, "next": "/"})
    return client


def test_dashboard_export_and_erase_need_an_admin_and_the_forms_token(ws):
    api = Api(ws)
    _her_history(api)
    cid = _her_id(ws)
    viewer, admin = _logged_in(ws, "vic", "viewer"), _logged_in(ws, "ann", "admin")

    assert 'id="erase"' not in viewer.get(f"/customers/{cid}").text
    token = _csrf(viewer.get(f"/customers/{cid}").text)
    assert viewer.post(f"/customers/{cid}/export", data={"csrf_token": token}).status_code == 403
    assert viewer.get(f"/customers/{cid}/erase").status_code == 403
    assert viewer.post(f"/customers/{cid}/erase", data={"csrf_token": token, "confirm": cid}).status_code == 403

    page = admin.get(f"/customers/{cid}").text
    assert 'id="export-data"' in page and 'id="erase"' in page
    token = _csrf(page)
    assert admin.post(f"/customers/{cid}/export", data={"csrf_token": "forged"}).status_code == 403
    download = admin.post(f"/customers/{cid}/export", data={"csrf_token": token})
    assert download.status_code == 200 and f'filename="customer-{cid}.json"' in download.headers["content-disposition"]
    assert download.json()["profile"]["email"] == EMAIL

    confirm = admin.get(f"/customers/{cid}/erase")
    assert confirm.status_code == 200 and "Annabel Kowalczyk" in confirm.text and "1 profile(s) merged" in confirm.text
    assert admin.post(f"/customers/{cid}/erase", data={"csrf_token": "forged", "confirm": cid}).status_code == 403
    wrong = admin.post(f"/customers/{cid}/erase", data={"csrf_token": token, "confirm": "yes"})
    assert wrong.status_code == 400 and "type the customer id" in wrong.text
    with ws.uow.session() as s:
        assert s.get(Customer, cid) is not None
    done = admin.post(f"/customers/{cid}/erase", data={"csrf_token": token, "confirm": cid})
    assert done.status_code == 200 and 'id="erased"' in done.text
    assert admin.get(f"/customers/{cid}").status_code == 404
    with ws.uow.session() as s:
        actions = s.execute(sa.select(AuditEntry.action, AuditEntry.actor).order_by(AuditEntry.id)).all()
    assert [tuple(a) for a in actions] == [("export", "user:ann"), ("erase", "user:ann")]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`boomerang serve` on a workspace with her history and an admin, for the browser test."""
    need_browser()
    ws = open_workspace(Settings(home=tmp_path_factory.mktemp("privacy") / "ws"))
    _her_history(Api(ws))
    with ws.uow.session() as s:
        users.create_user(s, username="root", role="admin", password="correct-horse", now=T0)
    cid = _her_id(ws)
    ws.engine.dispose()
    with serving(ws.settings.home) as base:
        yield {"base": base, "admin": {"username": "root", "password": "correct-horse"}, "customer": cid}


@pytest.mark.browser
def test_an_admin_downloads_her_data_then_erases_her_in_the_browser(page, server):
    cid = server["customer"]
    login(page, server["admin"], f"/customers/{cid}")
    shot(page, "customer_privacy")
    with page.expect_download() as download:
        page.click("#export-data button")
    assert json.loads(download.value.path().read_text())["profile"]["email"] == EMAIL
    page.click("#erase")
    page.wait_for_load_state("networkidle")
    shot(page, "customer_erase")
    page.fill("input[name=confirm]", cid)
    page.click("#confirm-erase button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "erased" in page.inner_text("#erased") and page.locator("#erasure tbody tr").count() > 5
    shot(page, "customer_erased")
