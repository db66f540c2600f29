"""The SMTP email channel against a real loopback SMTP server, and the signed bounce/complaint hook."""

from __future__ import annotations

import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from boomerang.api.app import create_app
from boomerang.channels import config as settings
from boomerang.channels.base import Outbound
from boomerang.channels.registry import Registry
from boomerang.channels.smtp import SmtpChannel, hook_signature, message_id
from boomerang.customers.models import Customer
from boomerang.messaging.models import Message, MessageEvent
from smtp_server import SmtpServer

FROM = "shop@bumerang.example"
PASSWORD = "s3cret-Pa55"
NOW = datetime(2026, 3, 10, 12, 0)
UNSUBSCRIBE = {
    "List-Unsubscribe": "<https://shop.example/u/abc>, <mailto:unsub@bumerang.example?subject=u>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}


def outbound(key: str = "journey:cart:1", to: str = "ann@example.com", **kw) -> Outbound:
    values = {
        "text": "Привіт, Анно! У кошику 2 товари.",
        "subject": "Ваш кошик чекає 🛒",
        "html": "<p>Привіт, <b>Анно</b>! У кошику 2 товари.</p>",
        "headers": UNSUBSCRIBE,
        **kw,
    }
    return Outbound(key=key, message_id=1, customer_id="ann", channel="email", to=to, **values)


def channel(server: SmtpServer, **config) -> SmtpChannel:
    security = {None: "none", "starttls": "starttls", "ssl": "ssl"}[server.tls]
    return SmtpChannel(
        SmtpChannel.Config(
            **{
                "port": server.port,
                "security": security,
                "ca_file": server.ca_file,
                "from_address": FROM,
                "from_name": "Магазин Бумеранг",
                **config,
            }
        )
    )


@pytest.fixture(params=[False, True], ids=["step-by-step", "pipelined"])
def server(request):
    """Every test on both paths: MAIL, RCPT and DATA one by one, and in one write (RFC 2920)."""
    with SmtpServer(refuse={"gone@example.com": 550, "full@example.com": 451}, pipelining=request.param) as s:
        yield s


def test_a_ukrainian_email_arrives_intact_with_both_parts_and_its_headers(server):
    ch = channel(server, reply_to="help@bumerang.example")
    result = ch.send(outbound())
    ch.close()
    assert result.status == "sent" and result.provider_id == message_id("journey:cart:1", FROM)
    (got,) = server.received
    assert (got.mail_from, got.rcpt_tos) == (FROM, ["ann@example.com"]) and "SMTPUTF8" not in got.mail_options
    head = got.content.split(b"\r\n\r\n", 1)[0]
    assert b"=?utf-8?" in head and head.isascii()  # RFC 2047 words, not raw UTF-8
    mail = got.parsed()
    assert mail["Subject"] == "Ваш кошик чекає 🛒"
    assert (mail["From"].addresses[0].display_name, mail["From"].addresses[0].addr_spec) == ("Магазин Бумеранг", FROM)
    assert (mail["To"], mail["Reply-To"], mail["Message-ID"]) == (
        "ann@example.com",
        "help@bumerang.example",
        result.provider_id,
    )
    assert mail["Date"].datetime is not None
    assert {name: mail[name].strip() for name in UNSUBSCRIBE} == UNSUBSCRIBE  # folded after the colon: a space
    assert mail.get_content_type() == "multipart/alternative"
    text, html = mail.iter_parts()
    assert (text.get_content_type(), text.get_content_charset(), text.get_content().strip()) == (
        "text/plain",
        "utf-8",
        "Привіт, Анно! У кошику 2 товари.",
    )
    assert (html.get_content_type(), html.get_content().strip()) == (
        "text/html",
        "<p>Привіт, <b>Анно</b>! У кошику 2 товари.</p>",
    )


def test_the_message_id_comes_from_the_key(server):
    ch = channel(server)
    ids = [ch.send(outbound(key)).provider_id for key in ("a", "b", "a")]
    assert ids[0] == ids[2] != ids[1]
    assert ids[0] == f"<{hashlib.sha256(b'a').hexdigest()[:32]}@bumerang.example>"  # the same in every process
    assert [r.parsed()["Message-ID"] for r in server.received] == ids


def test_text_only_and_international_addresses(server):
    ch = channel(server)
    assert ch.send(outbound("k1", to="olena@приклад.укр", html=None)).ok
    assert ch.send(outbound("k2", to="олена@example.com")).ok
    punycode, utf8 = server.received
    assert punycode.rcpt_tos == ["olena@xn--80aikifvh.xn--j1amh"] and "SMTPUTF8" not in punycode.mail_options
    assert punycode.parsed().get_content_type() == "text/plain"
    assert utf8.rcpt_tos == ["олена@example.com"] and "SMTPUTF8" in utf8.mail_options
    assert utf8.parsed()["To"] == "олена@example.com"


def test_bad_addresses_and_headers_fail_for_good_without_a_connection(server):
    ch = channel(server)
    for result in (
        ch.send(outbound(to=None)),
        ch.send(outbound(to="not an address")),
        ch.send(outbound(headers={"X-Note": "a\r\nBcc: eve@example.com"})),
    ):
        assert result.status == "failed" and result.permanent and "@" not in result.error
    assert server.connections == 0


def test_refused_recipients_bounce_or_wait_and_the_connection_goes_on(server):
    ch = channel(server)
    bounced, deferred, sent = (
        ch.send(outbound(to=a)) for a in ("gone@example.com", "full@example.com", "ann@example.com")
    )
    assert (bounced.status, bounced.permanent) == ("bounced", True)
    assert "550" in bounced.error and "User unknown" in bounced.error and "gone@" not in bounced.error
    assert (deferred.status, deferred.permanent) == ("failed", False)
    assert "451" in deferred.error and "full@" not in deferred.error
    assert sent.ok and server.connections == 1 and len(server.received) == 1


def test_starttls_with_auth_and_a_wrong_password(caplog):
    caplog.set_level(logging.DEBUG)
    with SmtpServer(tls="starttls", username="shop", password=PASSWORD) as server:
        ch = channel(server, username="shop", password=PASSWORD)
        assert ch.send(outbound()).ok and len(server.received) == 1  # the server takes nothing before STARTTLS
        ch.close()
        wrong = channel(server, username="shop", password=PASSWORD + "!")
        result = wrong.send(outbound())
        untrusted = channel(server, username="shop", password=PASSWORD, ca_file=None).send(outbound())
        unverified = channel(server, username="shop", password=PASSWORD, ca_file=None, verify_tls=False).send(
            outbound()
        )
    assert (result.status, result.permanent) == ("failed", True)  # a 535 is not retried five times
    assert "SMTP authentication failed (535)" in result.error and PASSWORD not in result.error
    assert PASSWORD not in caplog.text
    assert (untrusted.status, untrusted.permanent) == ("failed", False) and "certificate" in untrusted.error
    assert unverified.ok


def test_implicit_tls():
    with SmtpServer(tls="ssl", username="shop", password=PASSWORD) as server:
        ch = channel(server, username="shop", password=PASSWORD)
        assert ch.send(outbound()).ok
        assert server.received[0].parsed()["Subject"] == "Ваш кошик чекає 🛒"


def test_connections_are_pooled_across_threads(server):
    ch = channel(server, pool_size=4)
    assert ch.concurrency == 4
    with ThreadPoolExecutor(8) as pool:  # more threads than connections: they wait for one
        results = list(pool.map(lambda i: ch.send(outbound(f"k{i}", to=f"c{i}@example.com")), range(50)))
    assert all(r.ok for r in results) and len(server.received) == 50
    assert 1 <= server.connections <= 4
    assert len({r.provider_id for r in results}) == 50
    ch.close()
    assert ch.send(outbound("after")).ok  # a send after close still goes, on a connection not kept


@pytest.mark.parametrize("pipelining", [False, True])
def test_a_dropped_or_timed_out_connection_is_replaced(pipelining):
    with SmtpServer(timeout=0.3, pipelining=pipelining) as server:
        ch = channel(server)
        assert ch.send(outbound("k1")).ok
        server.drop_connections()  # hung up without a word: the next command finds the socket closed
        assert ch.send(outbound("k2")).ok
        time.sleep(0.6)  # the server's idle timeout: it says 421 and hangs up
        assert ch.send(outbound("k3")).ok
        assert (len(server.received), server.connections) == (3, 3)


def test_a_connection_lost_after_the_message_went_is_not_retried(server):
    ch = channel(server)
    assert ch.send(outbound("k1")).ok  # now a pooled connection, which a dropped one would be retried on
    server.hang_up_after_data = True  # the server takes the next message and hangs up before answering
    result = ch.send(outbound("k2"))
    assert (result.status, result.permanent) == ("failed", True) and "may have been delivered" in result.error
    assert [r.parsed()["Message-ID"] for r in server.received] == [message_id("k1", FROM), message_id("k2", FROM)]


def test_an_unreachable_server_is_a_temporary_failure(server):
    port = server.port
    server.stop()
    result = SmtpChannel(SmtpChannel.Config(port=port, security="none", from_address=FROM, timeout=2)).send(outbound())
    assert (result.status, result.permanent) == ("failed", False) and f"127.0.0.1:{port}" in result.error


def test_settings_encrypt_the_password_and_build_the_channel(ws):
    assert settings._secret_fields(SmtpChannel.Config) == {"password"}
    with pytest.raises(ValueError, match="bare email address"):
        SmtpChannel.Config(from_address="Shop <shop@example.com>")
    with ws.uow.session() as session:
        settings.save(
            session,
            "email",
            "smtp",
            {"host": "mail.example", "from_address": FROM, "username": "shop", "password": PASSWORD, "pool_size": 3},
            secret=ws.secret,
            now=NOW,
        )
    with ws.uow.session() as session:
        shown = settings.describe(session, "email", secret=ws.secret)
        stored = orjson.dumps(session.scalar(sa.text("SELECT config FROM channel_settings"))).decode()
        adapter = Registry(ws.uow, secret=ws.secret, clock=ws.clock).get(session, "email")
    assert shown["config"]["password"] == settings.MASK and PASSWORD not in stored
    assert isinstance(adapter, SmtpChannel) and adapter.concurrency == 3
    assert adapter.config.password.get_secret_value() == PASSWORD


# -- the hook ----------------------------------------------------------------------------------------


@pytest.fixture
def hooks(ws):
    app = create_app(ws, background=False)
    with ws.uow.session() as session:
        session.add(Customer(id="ann", email="ann@example.com", attributes={}, created_at=NOW, updated_at=NOW))
        session.flush()
        session.add(
            Message(
                key="m1",
                source="journey:cart",
                customer_id="ann",
                channels=["email"],
                channel="email",
                template="cart",
                category="triggered",
                status="sent",
                send_after=NOW,
                created_at=NOW,
                sent_at=NOW,
                provider_id=message_id("m1", FROM),
            )
        )
    with TestClient(app) as client:
        yield client


def post(client: TestClient, ws, payload: dict, signature: str | None = "good"):
    body = orjson.dumps(payload)
    headers = {"Content-Type": "application/json"}
    if signature:
        headers["X-Boomerang-Signature"] = hook_signature(ws.secret, body) if signature == "good" else signature
    return client.post("/hooks/email/events", content=body, headers=headers)


def test_the_hook_records_a_bounce(ws, hooks):
    bare = message_id("m1", FROM).strip("<>")  # providers often drop the angle brackets
    response = post(
        hooks,
        ws,
        {
            "events": [
                {
                    "type": "bounce",
                    "message_id": bare,
                    "reason": "550 5.1.1 user unknown",
                    "at": "2026-03-10T12:05:00Z",
                },
                {"type": "complaint", "message_id": "<nobody@elsewhere.example>"},
            ]
        },
    )
    assert response.status_code == 200
    assert response.json() == {"success": True, "recorded": 1, "unknown": 1}
    with ws.uow.session() as session:
        assert session.scalar(sa.select(Message.status).where(Message.key == "m1")) == "bounced"
        events = session.execute(sa.select(MessageEvent.kind, MessageEvent.detail, MessageEvent.at)).all()
    assert events == [("bounced", "550 5.1.1 user unknown", datetime(2026, 3, 10, 12, 5))]


def test_the_hook_refuses_bad_signatures_and_bodies(ws, hooks):
    payload = {"events": [{"type": "bounce", "message_id": message_id("m1", FROM)}]}
    for signature in (None, "sha256=" + "0" * 64, hook_signature(ws.secret, b"{}")):
        response = post(hooks, ws, payload, signature)
        assert response.status_code == 401
        assert response.json()["success"] is False
        assert response.json()["errors"][0]["field"] == "X-Boomerang-Signature"
    bad = post(hooks, ws, {"events": [{"type": "opened", "message_id": "x"}]})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "events.0.type"
    assert post(hooks, ws, {"events": "none"}).json()["errors"][0]["field"] == "events"
    with ws.uow.session() as session:
        assert session.scalar(sa.select(Message.status)) == "sent"
        assert session.scalar(sa.select(sa.func.count()).select_from(MessageEvent)) == 0
