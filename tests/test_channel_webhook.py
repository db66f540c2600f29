"""The webhook channel against a local receiver: the signed body, and what each answer means."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from boomerang.channels import config as settings
from boomerang.channels.base import Outbound
from boomerang.channels.webhook import derived_secret, sign, verify_signature

NOW = datetime(2025, 3, 1, 12, 0)


class Receiver:
    """Keeps every POST; answers `status` (with `headers`) after `delay` seconds."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status, self.headers, self.delay = 200, {}, 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                time.sleep(receiver.delay)
                self.send_response(receiver.status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/hooks/boomerang?token=abc"


@pytest.fixture
def receiver():
    running = Receiver()
    threading.Thread(target=running.httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()


def _adapter(ws, **values):
    with ws.uow.session() as session:
        settings.save(session, "webhook", "http", values, secret=ws.secret, now=NOW)
        return ws.channels.get(session, "webhook")


def _outbound(to: str | None, **data) -> Outbound:
    return Outbound(
        key="journey:1:send:0",
        message_id=7,
        customer_id="cus_1",
        channel="webhook",
        to=to,
        text="",
        data=data or {"event": "cart_abandoned", "cart": {"total": 42.5}},
    )


def test_signed_body_and_headers(ws, receiver):
    result = _adapter(ws, secret="whsec-1").send(_outbound(receiver.url))
    assert result.ok
    [(headers, body)] = receiver.received
    payload = json.loads(body)
    assert {k: payload[k] for k in ("id", "customer_id", "channel", "data")} == {
        "id": "journey:1:send:0",
        "customer_id": "cus_1",
        "channel": "webhook",
        "data": {"event": "cart_abandoned", "cart": {"total": 42.5}},
    }
    assert abs(datetime.fromisoformat(payload["sent_at"]).timestamp() - time.time()) < 60
    assert headers["idempotency-key"] == "journey:1:send:0" and headers["content-type"] == "application/json"
    signature = headers["x-boomerang-signature"]
    assert verify_signature("whsec-1", signature, body)
    assert verify_signature(b"whsec-1", signature, body.decode())
    assert not verify_signature("whsec-2", signature, body)
    assert not verify_signature("whsec-1", signature, body.replace(b"42.5", b"99.5"))  # tampered


def test_no_secret_signs_with_the_key_derived_from_the_workspace(ws, receiver):
    assert _adapter(ws).send(_outbound(receiver.url)).ok
    [(headers, body)] = receiver.received
    assert verify_signature(derived_secret(ws.secret), headers["x-boomerang-signature"], body)


def test_verify_signature_rejects_stale_malformed_and_accepts_a_rotated_key():
    body = b'{"id":"x"}'
    now = 1_700_000_000
    header = sign("s", body, now)
    assert verify_signature("s", header, body, now=now + 299)
    assert not verify_signature("s", header, body, now=now + 301)  # replayed later
    assert not verify_signature("s", header, body, now=now - 301)
    assert not verify_signature("s", header.replace(f"t={now}", f"t={now + 1}"), body, now=now)
    for broken in ("", "v1=abc", f"t={now}", "t=soon,v1=abc", f"t={now},v1=é"):
        assert not verify_signature("s", broken, body, now=now)
    rotated = f"{header},v1={sign('old', body, now).rpartition('v1=')[2]}"
    assert verify_signature("old", rotated, body, now=now) and verify_signature("s", rotated, body, now=now)


@pytest.mark.parametrize(
    "status, headers, expected",
    [
        (204, {}, ("sent", False, None)),
        (410, {}, ("failed", True, None)),
        (429, {"Retry-After": "12"}, ("rate_limited", False, 12.0)),
        (429, {}, ("rate_limited", False, 1.0)),
        (400, {}, ("failed", True, None)),
        (301, {"Location": "https://elsewhere.example/"}, ("failed", True, None)),
        (500, {}, ("failed", False, None)),
        (503, {"Retry-After": "5"}, ("failed", False, None)),
    ],
)
def test_answers(ws, receiver, status, headers, expected):
    receiver.status, receiver.headers = status, headers
    result = _adapter(ws).send(_outbound(receiver.url))
    assert (result.status, result.permanent, result.retry_after) == expected
    if not result.ok:
        assert str(status) in result.error and "token=abc" not in result.error and "127.0.0.1" not in result.error


def test_timeouts_and_unreachable_endpoints_are_temporary(ws, receiver):
    receiver.delay = 1.0
    result = _adapter(ws, timeout=0.2).send(_outbound(receiver.url))
    assert (result.status, result.permanent, result.error) == (
        "failed",
        False,
        "the webhook endpoint did not answer in time",
    )
    result = _adapter(ws, timeout=2).send(_outbound("http://127.0.0.1:9/nothing"))
    assert (result.status, result.permanent) == ("failed", False) and "127.0.0.1" not in result.error


@pytest.mark.parametrize("to", [None, "", "ftp://example.com/x", "file:///etc/passwd", "not a url", "http://"])
def test_only_http_urls(ws, receiver, to):
    result = _adapter(ws).send(_outbound(to))
    assert (result.status, result.permanent) == ("failed", True) and result.error.startswith("to:")
    assert receiver.received == []
