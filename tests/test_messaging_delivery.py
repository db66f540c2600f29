"""Messages composed and delivered: tracked links, the open pixel, one-click unsubscribe, the preference
centre, the in-app inbox, provider results (rate limits, opt-outs), and a crash that sends nothing twice."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from api_helpers import Api
from boomerang.channels.base import SendResult
from boomerang.channels.models import InboxItem
from boomerang.config import GuardSettings
from boomerang.core.clock import FixedClock
from boomerang.customers.models import Consent
from boomerang.events.models import InboxEvent
from boomerang.messaging import preferences
from boomerang.messaging.models import Message, MessageEvent
from messaging_data import NOW, add_customer, add_template, queue


class Recording:
    """A network channel that keeps what it was given and answers what it is told."""

    name, in_store, concurrency = "recording", False, 2

    def __init__(self, answer=None):
        self.sent, self.answer = [], answer or SendResult.sent("prov-1")

    def send(self, message):
        self.sent.append(message)
        return self.answer

    def close(self):
        pass


@pytest.fixture
def store(ws):
    ws.settings.guards = GuardSettings(global_control_share=0)
    ws.clock = FixedClock(NOW)
    return ws


def statuses(ws):
    with ws.uow.session() as s:
        return {m.key: (m.status, m.reason) for m in s.scalars(sa.select(Message))}


def test_an_email_is_composed_with_tracked_links_pixel_and_one_click_unsubscribe(store):
    email = Recording()
    store.channels.override("email", lambda ctx: email)
    with store.uow.session() as s:
        add_customer(s, "ann", first_name="Ann")
        add_template(s)
        queue(s, "m1", "ann")
    assert store.dispatcher.dispatch(now=NOW)["sent"] == 1
    (out,) = email.sent
    assert out.to == "ann@example.com" and out.subject == "Hello Ann"
    assert "/t/c/" in out.html and 'href="https://shop.example.com/sale"' not in out.html  # every link tracked
    assert "/t/o/" in out.html  # the open pixel
    assert out.headers["List-Unsubscribe"].startswith("<http://127.0.0.1:8600/u/")
    assert out.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/preferences/" in out.text
    assert statuses(store)["m1"] == ("sent", None)
    with store.uow.session() as s:
        assert s.scalar(sa.select(Message.provider_id)) == "prov-1"


def test_links_record_clicks_opens_and_unsubscribes_and_refuse_tampering(store):
    email = Recording()
    store.channels.override("email", lambda ctx: email)
    with store.uow.session() as s:
        add_customer(s, "ann")
        add_template(s)
        queue(s, "m1", "ann")
    store.dispatcher.dispatch(now=NOW)
    out = email.sent[0]
    click = next(u for u in out.html.split('"') if "/t/c/" in u)
    pixel = next(u for u in out.html.split('"') if "/t/o/" in u)
    client = Api(store).client
    path = lambda url: urlsplit(url).path  # noqa: E731
    answer = client.get(path(click), follow_redirects=False)
    assert answer.status_code == 302 and answer.headers["location"] == "https://shop.example.com/sale"
    body, mac = path(click).rsplit("/", 1)[1].split(".")
    for forged in (f"/t/c/{body}.{'A' * len(mac)}", f"/t/c/{body[:-2]}xx.{mac}", "/t/c/aHR0cHM6Ly9ldmlsLnRlc3Q"):
        refused = client.get(forged, follow_redirects=False)
        assert refused.status_code == 400 and "location" not in refused.headers  # no open redirect
        assert refused.json()["errors"][0]["field"] == "token"
    assert client.get(path(pixel)).headers["content-type"] == "image/gif"
    assert client.get(path(pixel)).status_code == 200  # a second open is kept, changes nothing
    assert statuses(store)["m1"][0] == "clicked"  # an open after a click leaves it clicked
    unsubscribe = path(out.headers["List-Unsubscribe"].strip("<>"))
    assert "Unsubscribe" in client.get(unsubscribe).text  # a GET only asks
    with store.uow.session() as s:
        assert s.get(Consent, ("ann", "email")).granted
    answer = client.post(
        unsubscribe,
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200 and "unsubscribed" in answer.text
    with store.uow.session() as s:
        assert not s.get(Consent, ("ann", "email")).granted
        kinds = [e.kind for e in s.scalars(sa.select(MessageEvent).order_by(MessageEvent.id))]
        events = [e.event for e in s.scalars(sa.select(InboxEvent).where(InboxEvent.source == "messaging"))]
    assert kinds == ["clicked", "opened", "opened", "unsubscribed"]
    assert sorted(events) == ["Message Clicked", "Message Opened", "Message Unsubscribed"]  # once each, to the log
    assert statuses(store)["m1"][0] == "unsubscribed"


def test_the_preference_centre_changes_what_the_guards_let_through_at_once(store):
    email = Recording()
    store.channels.override("email", lambda ctx: email)
    with store.uow.session() as s:
        add_customer(s, "ann", consents=("email", "sms"), phone="+380501112233")
        add_template(s)  # topic: offers
    client = Api(store).client
    page = urlsplit(store.links.preferences("ann")).path
    assert 'value="offers" checked' in client.get(page).text
    assert client.get(page[:-3] + "abc").status_code == 400
    saved = client.post(
        page, data={"channel": ["email"], "topic": ["reminders"], "frequency": "weekly", "action": "save"}
    )
    assert saved.status_code == 200 and 'id="saved"' in saved.text
    with store.uow.session() as s:
        prefs = preferences.get(s, "ann")
        queue(s, "offer", "ann", category="promotional")
        queue(s, "receipt", "ann", category="transactional")
    assert prefs["topics"]["offers"] is False and prefs["channels"] == {
        **prefs["channels"],
        "email": True,
        "sms": False,
    }
    assert prefs["frequency"] == "weekly"
    store.dispatcher.dispatch(now=NOW)
    got = statuses(store)
    assert got["offer"] == ("suppressed", "preferences: topic offers turned off by the customer")
    assert got["receipt"][0] == "sent"  # a receipt is not marketing
    client.post(page, data={"action": "unsubscribe_all"})
    with store.uow.session() as s:
        assert not any(c.granted for c in s.scalars(sa.select(Consent).where(Consent.customer_id == "ann")))


def test_weekly_frequency_defers_the_second_marketing_message(store):
    email = Recording()
    store.channels.override("email", lambda ctx: email)
    with store.uow.session() as s:
        add_customer(s, "ann")
        add_template(s, {**__import__("messaging_data").GREETING, "topic": None})
        preferences.update(s, "ann", now=NOW, source="test", frequency="weekly")
        queue(s, "first", "ann")
    store.dispatcher.dispatch(now=NOW)
    with store.uow.session() as s:
        queue(s, "second", "ann")
    store.dispatcher.dispatch(now=NOW + timedelta(days=1))
    got = statuses(store)
    assert got["first"][0] == "sent"
    assert got["second"][0] == "queued" and got["second"][1].startswith("deferred by preferences")


def test_the_in_app_inbox_delivers_once_and_tracks_reads_and_clicks(store):
    with store.uow.session() as s:
        add_customer(s, "ann", consents=("inapp",), email=None)
        add_template(s)
        queue(s, "m1", "ann", channels=("inapp",))
    assert store.dispatcher.dispatch(now=NOW)["sent"] == 1
    api = Api(store)
    token = api.api("GET", "/customers/ann/inbox-token").json()["token"]
    inbox = api.client.get(f"/v1/inbox/{token}").json()
    assert inbox["unread"] == 1
    item = inbox["items"][0]
    assert item["title"] == "Hello Ann" and "/t/c/" in item["url"]
    assert api.client.get(f"/v1/inbox/{token}x").status_code == 401
    assert api.client.post(f"/v1/inbox/{token}/{item['id']}/click").json() == {"success": True}
    assert api.client.get(f"/v1/inbox/{token}?unread=true").json()["items"] == []
    assert statuses(store)["m1"][0] == "clicked"
    other = api.api("GET", "/customers/nobody/inbox-token")
    assert other.status_code == 404
    with store.uow.session() as s:  # expired items are not shown
        s.execute(sa.update(InboxItem).values(expires_at=NOW - timedelta(seconds=1)))
    store.clock = FixedClock(NOW)
    assert api.client.get(f"/v1/inbox/{token}").json()["items"] == []


@pytest.mark.parametrize(
    "answer, status, reason, attempts",
    [
        (SendResult.rate_limited(7), "queued", "email: rate limited (retry after 7 s)", 0),
        (SendResult.unsubscribed("recipient opted out"), "unsubscribed", "email: recipient opted out", 1),
        (SendResult.bounced("550 mailbox unavailable"), "bounced", "email: 550 mailbox unavailable", 1),
    ],
)
def test_provider_results(store, answer, status, reason, attempts):
    store.channels.override("email", lambda ctx: Recording(answer))
    with store.uow.session() as s:
        add_customer(s, "ann")
        add_template(s)
        queue(s, "m1", "ann")
    store.dispatcher.dispatch(now=NOW)
    with store.uow.session() as s:
        message = s.scalar(sa.select(Message))
        assert (message.status, message.reason, message.attempts) == (status, reason, attempts)
        if status == "queued":
            assert message.send_after == NOW + timedelta(seconds=7)
        consent = s.get(Consent, ("ann", "email")).granted
    assert consent is (status != "unsubscribed")


def test_a_crash_mid_send_sends_nothing_twice(store):
    email = Recording()
    store.channels.override("email", lambda ctx: email)
    with store.uow.session() as s:
        add_customer(s, "ann")
        add_template(s)
        queue(s, "m1", "ann")
        s.flush()
        s.execute(sa.update(Message).values(status="sending", sent_at=NOW, attempts=1))  # a worker died here
    assert store.dispatcher.dispatch(now=NOW + timedelta(minutes=5))["sent"] == 0
    assert statuses(store)["m1"][0] == "sending"  # maybe still going out elsewhere
    store.dispatcher.dispatch(now=NOW + timedelta(minutes=11))
    assert statuses(store)["m1"] == ("failed", "interrupted while sending: not sent again, so that nothing goes twice")
    assert email.sent == []


def test_a_missing_template_fails_the_message_but_the_sandbox_records_it(store):
    store.channels.override("email", lambda ctx: Recording())
    with store.uow.session() as s:
        add_customer(s, "ann", consents=("email", "sms"), phone="+380501112233")
        queue(s, "m_email", "ann", template="nowhere")
        queue(s, "m_sms", "ann", template="nowhere", channels=("sms",))
    store.dispatcher.dispatch(now=NOW)
    got = statuses(store)
    assert got["m_email"] == ("failed", "email: template 'nowhere' does not exist (permanent)")
    assert got["m_sms"][0] == "sent"  # sms is still the sandbox: nothing leaves


def test_channel_secrets_are_encrypted_at_rest_masked_and_kept(store):
    api = Api(store)
    body = {
        "provider": "smtp",
        "config": {
            "host": "127.0.0.1",
            "port": 2525,
            "security": "none",
            "from_address": "shop@example.com",
            "password": "hunter2-secret",
        },
    }
    answer = api.api("PUT", "/channels/email", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["config"]["password"] == "********" and "hunter2" not in answer.text
    with store.engine.connect() as conn:
        raw = conn.execute(sa.text("SELECT config FROM channel_settings")).scalar_one()
    assert "hunter2" not in raw and "encrypted" in raw
    body["config"]["password"] = "********"  # the form sends the mask back: the secret stays
    api.api("PUT", "/channels/email", json=body)
    from boomerang.channels import config

    with store.uow.session() as s:
        assert config.load(s, "email", secret=store.secret)[1].password.get_secret_value() == "hunter2-secret"
    bad = api.api("PUT", "/channels/email", json={"provider": "smtp", "config": {"port": "many"}})
    assert bad.status_code == 400 and {e["field"] for e in bad.json()["errors"]} >= {"config.port"}
    assert (
        api.api("PUT", "/channels/email", json={"provider": "carrier-pigeon"}).json()["errors"][0]["field"]
        == "provider"
    )


def test_a_click_moves_on_the_journey_that_sent_the_message(store):
    """wait_event on "Message Clicked": the click flows back through the log to that instance only."""
    from boomerang.journeys import runtime
    from boomerang.journeys import service as journeys
    from boomerang.journeys.models import Instance
    from boomerang.orchestration.rounds import move_events, react, tick

    email = Recording()
    store.channels.override("email", lambda ctx: email)
    with store.uow.session() as s:
        journeys.save(
            s,
            {
                "name": "nudge",
                "trigger": {"manual": True},
                "control_share": 0,
                "start": "hello",
                "nodes": {
                    "hello": {"type": "send", "channel": "email", "template": "greeting", "next": "wait"},
                    "wait": {
                        "type": "wait_event",
                        "event": "Message Clicked",
                        "timeout_hours": 48,
                        "on_event": "clicked",
                        "next": "ignored",
                    },
                    "clicked": {"type": "exit"},
                    "ignored": {"type": "exit"},
                },
            },
            now=NOW,
        )
        journeys.set_status(s, "nudge", "active", now=NOW)
    with store.uow.session() as s:
        add_customer(s, "ann")
        add_customer(s, "bob")
        add_template(s)
    with store.uow.session() as s:
        for cid in ("ann", "bob"):
            runtime.enter_manually(s, "nudge", cid, now=NOW)
    tick(store, NOW)
    assert len(email.sent) == 2
    ann = next(o for o in email.sent if o.customer_id == "ann")
    click = next(u for u in ann.html.split('"') if "/t/c/" in u)
    Api(store).client.get(urlsplit(click).path, follow_redirects=False)
    react(store, move_events(store), NOW)
    with store.uow.session() as s:
        nodes = {i.customer_id: (i.status, i.node) for i in s.scalars(sa.select(Instance))}
    assert nodes == {"ann": ("done", "clicked"), "bob": ("waiting", "wait")}


def test_a_journey_keyed_by_a_sku_speaks_of_that_product(store):
    """Back in stock, price drop, replenishment: `product` in the template is the instance's SKU."""
    from boomerang.catalog.models import Product
    from boomerang.journeys import service as journeys
    from boomerang.journeys.models import Instance
    from boomerang.messaging.compose import Composer

    email = Recording()
    store.channels.override("email", lambda ctx: email)
    with store.uow.session() as s:
        journeys.save(
            s,
            {
                "name": "restock",
                "trigger": {"event": "Back In Stock", "key": "sku"},
                "start": "tell",
                "nodes": {
                    "tell": {"type": "send", "channel": "email", "template": "stock", "next": "done"},
                    "done": {"type": "exit"},
                },
            },
            now=NOW,
        )
    with store.uow.session() as s:
        add_customer(s, "ann")
        add_template(
            s,
            {
                "name": "stock",
                "locales": {
                    "en": {
                        "subject": "{{ product.name }} is back",
                        "text": "{{ product.price|money(product.currency) }}",
                    }
                },
            },
        )
        s.add(
            Product(
                sku="mug-1", name="Blue mug", price=12.5, currency="EUR", attributes={}, created_at=NOW, updated_at=NOW
            )
        )
        from boomerang.journeys.models import Journey

        jid = s.scalar(sa.select(Journey.id))
        s.add(
            Instance(
                id="inst1",
                journey_id=jid,
                version=1,
                customer_id="ann",
                key="mug-1",
                status="running",
                node="tell",
                control=False,
                state={},
                entered_at=NOW,
                updated_at=NOW,
            )
        )
        queue(s, "m1", "ann", template="stock", instance_id="inst1", subject="mug-1")
    store.dispatcher.dispatch(now=NOW)
    assert email.sent[0].subject == "Blue mug is back" and email.sent[0].text.startswith("€12.50")
    with store.uow.session() as s:  # a campaign's message has no product
        assert (
            Composer(s, store.links, store.settings.messaging, now=NOW).product_of(
                queue(s, "m2", "ann", template="stock")
            )
            is None
        )
