"""One contract for every channel adapter, each against a real peer on loopback (SMTP server, Bot API,
SMS provider, push service, webhook receiver) or the store (in-app, sandbox):

- built by the registry from stored settings, with the adapter's shape (name, in_store, Config, close);
- a queued message goes through the dispatcher and reaches the peer exactly once, status sent;
- a peer that cannot be reached is a temporary failure, retried later, whose reason holds no secret
  and no address.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from boomerang.channels import config as settings
from boomerang.channels.models import FakeChannelLog, InboxItem, PushSubscription
from boomerang.channels.webpush import generate_vapid_keys
from boomerang.config import GuardSettings
from boomerang.core.clock import FixedClock
from boomerang.messaging.models import Message
from messaging_data import NOW, add_customer, add_template, queue
from push_server import PushServer
from sms_server import ACCOUNT_SID, AUTH_TOKEN, SmsServer
from smtp_server import SmtpServer
from telegram_server import TelegramServer

SECRETS = ("hunter2", AUTH_TOKEN, "999:secret-bot-token", "gateway-key-123")
ADDRESSES = ("ann@example.com", "+380501112233", "777000")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Peer:
    channel: str
    provider: str | None  # None: the channel's default (sandbox, inbox)
    values: dict
    count: Callable[[], int]
    to: str | None = None  # the webhook's URL (a journey's node gives it)
    broken: dict | None = None  # settings that point nowhere


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver: keeps each body, answers 200."""

    bodies: list[bytes] = []

    def do_POST(self) -> None:
        type(self).bodies.append(self.rfile.read(int(self.headers.get("content-length") or 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@contextmanager
def peer(kind: str, ws, monkeypatch) -> Iterator[Peer]:
    dead = f"http://127.0.0.1:{closed_port()}"
    if kind == "sandbox":
        yield Peer("sms", None, {}, lambda: _rows(ws, FakeChannelLog))
    elif kind == "inapp":
        yield Peer("inapp", None, {}, lambda: _rows(ws, InboxItem))
    elif kind == "email":
        with SmtpServer(username="shop", password="hunter2") as smtp:
            values = {
                "host": "127.0.0.1",
                "port": smtp.port,
                "security": "none",
                "username": "shop",
                "password": "hunter2",
                "from_address": "shop@example.com",
                "from_name": "Магазин",
            }
            yield Peer("email", "smtp", values, lambda: smtp.count, broken={**values, "port": closed_port()})
    elif kind == "telegram":
        with TelegramServer(token="999:secret-bot-token") as tg:
            values = {"token": tg.token, "base_url": tg.url}
            yield Peer(
                "telegram", "bot", values, lambda: len(tg.calls_to("sendMessage")), broken={**values, "base_url": dead}
            )
    elif kind in ("twilio", "generic"):
        with SmsServer() as sms:
            values = (
                {
                    "account_sid": ACCOUNT_SID,
                    "auth_token": AUTH_TOKEN,
                    "sender": "+15550001111",
                    "base_url": sms.base_url,
                }
                if kind == "twilio"
                else {"url": f"{sms.base_url}/generic", "auth_value": "Bearer gateway-key-123", "sender": "Shop"}
            )
            field = "base_url" if kind == "twilio" else "url"
            yield Peer("sms", kind, values, lambda: len(sms.requests), broken={**values, field: dead})
    elif kind == "webpush":
        with PushServer() as push:
            monkeypatch.setenv("REQUESTS_CA_BUNDLE", push.ca_file)
            private, public = generate_vapid_keys()
            browser = push.browser("ann").subscription()
            with ws.uow.session() as s:
                s.add(
                    PushSubscription(
                        endpoint=browser["endpoint"],
                        customer_id="ann",
                        p256dh=browser["keys"]["p256dh"],
                        auth=browser["keys"]["auth"],
                        created_at=NOW,
                    )
                )
            values = {
                "vapid_private_key": private,
                "vapid_public_key": public,
                "subject": "mailto:ops@shop.example",
                "push_hosts": ["127.0.0.1"],
            }
            yield Peer("webpush", "vapid", values, lambda: len(push.received))
    elif kind == "webhook":
        Receiver.bodies = []
        server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        try:
            yield Peer(
                "webhook",
                "http",
                {"secret": "hunter2"},
                lambda: len(Receiver.bodies),
                to=f"http://127.0.0.1:{server.server_port}/hook?token=gateway-key-123",
            )
        finally:
            server.shutdown()
            server.server_close()


def _rows(ws, model) -> int:
    with ws.uow.session() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(model))


KINDS = ("sandbox", "inapp", "email", "telegram", "twilio", "generic", "webpush", "webhook")


@pytest.fixture
def store(ws):
    ws.settings.guards = GuardSettings(global_control_share=0)
    ws.clock = FixedClock(NOW)
    with ws.uow.session() as s:
        add_customer(
            s,
            "ann",
            consents=("email", "sms", "telegram", "webpush", "inapp"),
            phone="+380501112233",
            telegram="777000",
        )
        add_template(s)
    return ws


def configure(ws, p: Peer, values: dict) -> None:
    if p.provider:
        with ws.uow.session() as s:
            settings.save(s, p.channel, p.provider, values, secret=ws.secret, now=NOW)


def send_one(ws, p: Peer) -> Message:
    with ws.uow.session() as s:
        message = queue(s, "m1", "ann", channels=(p.channel,), template=p.to or "greeting")
        message_id = message.id
    ws.dispatcher.dispatch(now=NOW)
    with ws.uow.session() as s:
        message = s.get(Message, message_id)
        s.expunge(message)
        return message


@pytest.mark.parametrize("kind", KINDS)
def test_the_adapter_is_built_from_stored_settings(store, kind, monkeypatch):
    with peer(kind, store, monkeypatch) as p:
        configure(store, p, p.values)
        with store.uow.session() as s:
            adapter = store.channels.get(s, p.channel)
            assert isinstance(adapter.name, str) and isinstance(adapter.in_store, bool) and adapter.concurrency >= 1
            assert issubclass(type(adapter).Config, BaseModel)
            described = json.dumps(settings.describe(s, p.channel, secret=store.secret))
        assert not any(secret in described for secret in SECRETS)  # masked
        if not adapter.in_store:
            assert store.channels.get(s, p.channel) is adapter  # kept with its connections
        store.channels.close()
        store.channels.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_message_reaches_the_peer_exactly_once(store, kind, monkeypatch):
    with peer(kind, store, monkeypatch) as p:
        configure(store, p, p.values)
        message = send_one(store, p)
        assert (message.status, message.channel) == ("sent", p.channel), message.reason
        assert p.count() == 1
        store.dispatcher.dispatch(now=NOW)
        assert p.count() == 1
        store.channels.close()


@pytest.mark.parametrize("kind", [k for k in KINDS if k not in ("sandbox", "inapp", "webpush", "webhook")])
def test_an_unreachable_peer_is_retried_and_says_nothing_secret(store, kind, monkeypatch):
    with peer(kind, store, monkeypatch) as p:
        configure(store, p, p.broken)
        message = send_one(store, p)
        assert message.status == "queued" and message.attempts == 1 and message.send_after > NOW
        assert "attempt 1 of 5" in message.reason
        assert not any(text in message.reason for text in SECRETS + ADDRESSES), message.reason
        store.channels.close()
